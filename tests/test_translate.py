"""The attention translator on a synthetic task (map each word, reverse the order): it
learns it, beam search and greedy decode it, attention rows are distributions, and a saved
model reloads to the same translations."""

import os
import sys

import numpy as np
import pytest

import dynrnn as dy

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)

import translate as T  # noqa: E402


def _corpus(n, rng):
    src = [[f"w{v}" for v in rng.integers(0, 8, size=rng.integers(2, 6))] for _ in range(n)]
    return src, [[w.upper() for w in reversed(s)] for s in src]


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    src, tgt = _corpus(600, rng)
    model = T.Translator(T.Vocab.build(src, 1), T.Vocab.build(tgt, 1), embed=24, hidden=48, dropout=0.0, seed=0)
    hist = T.train(model, src, tgt, minutes=None, max_epochs=12, batch_size=32, learning_rate=5e-3, log=lambda m: None)
    return model, hist, _corpus(50, rng)


def test_learns_to_map_and_reverse(trained):
    model, hist, (src, tgt) = trained
    losses = [e["loss"] for e in hist["epochs"]]
    assert losses[-1] < 0.2 * losses[0]
    for beam in (1, 4):
        out = model.translate(src, beam=beam)
        exact = np.mean([o == t for o, t in zip(out, tgt)])
        assert exact >= 0.9, (beam, exact)


def test_attention_rows_are_distributions_over_the_source(trained):
    model, _, (src, tgt) = trained
    a = model.attention(src[0], tgt[0])
    assert a.shape == (len(tgt[0]) + 1, len(src[0]))
    np.testing.assert_allclose(a.sum(1), 1.0, rtol=1e-5)
    # reversing: the first target word looks mostly at the last source word
    assert a[0].argmax() == len(src[0]) - 1


def test_save_and_load_reproduce_translations(trained, tmp_path):
    model, _, (src, _) = trained
    path = str(tmp_path / "m.npz")
    model.save(path)
    again = T.Translator.load(path)
    assert again.translate(src[:10], beam=3) == model.translate(src[:10], beam=3)


def test_batches_are_bucketed_and_masked():
    src, tgt = [[4, 5], [6, 7, 8]], [[9], [10, 11]]
    (s, sl, ti, to, tl), = T.batches(src, tgt, 4, None)
    assert s.shape == (8, 4) and sl.tolist() == [2, 3, 0, 0] and tl.tolist() == [2, 3, 0, 0]
    assert ti[:3, 1].tolist() == [T.BOS, 10, 11] and to[:3, 1].tolist() == [10, 11, T.EOS]


def test_attention_choice():
    src, tgt = [["a", "b"]], [["X"]]
    general = T.Translator(T.Vocab.build(src, 1), T.Vocab.build(tgt, 1), embed=8, hidden=8, attention="general")
    assert "/U_a" not in general.pc.parameter_values()
    (s, sl, ti, to, tl), = T.batches([[4, 5]], [[4]], 8, None)
    assert np.isfinite(float(dy.jit(general.loss, general.pc)(s, sl, ti, to, tl)))
    with pytest.raises(ValueError, match="attention must be 'mlp' or 'general'; given 'dot'"):
        T.Translator(T.Vocab.build(src, 1), T.Vocab.build(tgt, 1), embed=8, hidden=8, attention="dot")


def test_initial_weights_follow_fan_in():
    src, tgt = [["a", "b"]], [["X"]]
    model = T.Translator(T.Vocab.build(src, 1), T.Vocab.build(tgt, 1), embed=16, hidden=32, seed=3)
    v = model.pc.parameter_values()
    assert np.abs(np.asarray(v["/W_c"])).max() <= 1 / np.sqrt(64)
    assert np.asarray(v["/W_c"]).std() > 0.5 / np.sqrt(3 * 64)
    assert 0.5 < np.asarray(v["/E_tgt"]).std() < 1.5 and not np.asarray(v["/b_o"]).any()
