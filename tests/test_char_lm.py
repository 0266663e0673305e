"""The character-LM example trains for real: DyNet's tutorial model learns its sentence,
and the Alice model beats a unigram model on held-out text after 200 updates."""

import collections
import math
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np

import dynrnn as dy

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)

import char_lm  # noqa: E402

FOX = "a quick brown fox jumped over the lazy dog"


def test_dynet_tutorial_lstm_reaches_loss_below_one_and_reproduces_the_sentence():
    """char_lm.do_one_sentence is DyNet's code verbatim (dy.softmax, dy.pick, dy.log, dy.esum,
    R * s.output()): the ported DyNet example, trained end to end."""
    logs = []
    model, loss = char_lm.train_tutorial(dy.LSTMBuilder, FOX, 200, report_every=5, seed=0, log=logs.append)
    assert loss < 1.0
    assert char_lm.generate(model.rnn, model.params, model.int2char, greedy=True) == FOX
    assert len(logs) == 40  # loss printed every 5 iterations, with a sample


def test_the_ported_dynet_loss_equals_the_transduce_loss():
    model = char_lm.Tutorial(dy.GRUBuilder, FOX, seed=1)
    ids = jnp.array([model.char2int[c] for c in [char_lm.EOS] + list(FOX) + [char_lm.EOS]])
    a = char_lm.do_one_sentence(model.rnn, model.params, model.char2int, FOX)  # DyNet's graph, eagerly
    assert isinstance(a, dy.Expression)
    a = a.scalar_value()
    dy.graph.end_graph()  # back to arrays for the compiled-style loss, run eagerly here
    b = char_lm.sentence_loss(model.rnn, model.params, ids)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_alice_model_beats_a_unigram_model_on_held_out_text():
    lines = char_lm.load_lines()
    assert sum(len(line) for line in lines) > 100_000
    train, held = char_lm.split(lines)
    counts = collections.Counter("".join(line + "\n" for line in train))
    total = sum(counts.values())
    held_text = "".join(line + "\n" for line in held)
    unigram_bpc = -sum(math.log2(counts.get(c, 1) / total) for c in held_text) / len(held_text)
    # a fixed number of updates (not a time budget), so a slow or busy machine cannot fail it
    model, hist = char_lm.train_lm(train, held, max_steps=200, progress=False, sample_every=0,
                                   log=lambda s: None)
    assert hist["steps"] == 200
    # measured: 3.13 bits/char after 150 updates, 2.71 after 250, against 4.56 for unigrams
    assert hist["held_out_bpc"] < unigram_bpc - 1.0, (hist["held_out_bpc"], unigram_bpc)
    assert len(model.sample(50, seed=0)) == 50
    assert hist["steps"] == len(hist["loss"]) and hist["chars_per_second"] > 0


def test_batches_are_bucketed_and_masked():
    model = char_lm.CharLM("abc ")
    batches = model.batches(["ab", "abc a", "c", "a b c a b c a b c a b c a b c a b"], 3, shuffle=False,
                            rng=np.random.default_rng(0))
    # each line predicts its characters and the closing boundary; time rounds up to 16s
    assert [ids.shape for ids, _ in batches] == [(17, 3), (49, 3)]
    ids, lengths = batches[0]
    assert list(lengths) == [2, 3, 6]  # sorted by length: "c", "ab", "abc a"
    assert list(ids[:4, 1]) == [0, model.char2int["a"], model.char2int["b"], 0]
    assert list(batches[1][1]) == [34, 0, 0]  # the short last group is padded with empty rows


def test_cli_help_and_a_short_run(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "char_lm.py"), "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "--seconds" in out.stdout and "--steps" in out.stdout
    png, model = str(tmp_path / "loss.png"), str(tmp_path / "alice.npz")
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "char_lm.py"), "--part", "alice", "--steps", "30",
                          "--sample-every", "10", "--no-progress", "--plot", png, "--save", model],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "held-out bits per character" in out.stdout and os.path.getsize(png) > 1000
    assert "30 updates in" in out.stdout and out.stdout.count("sample:") == 4  # 3 while training, 1 after
    rnn, E, R, b = dy.load(model, dy.ParameterCollection())
    assert isinstance(rnn, dy.VanillaLSTMBuilder) and rnn.num_layers == 2
