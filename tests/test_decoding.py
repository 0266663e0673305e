"""Incremental decoding: `reorder` against a NumPy gather for every state layout; beam 1 is
greedy; the compiled batched beam search returns what the eager one does; a tiny copy task
is learned and decoded perfectly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

from .helpers import BUILDERS, randomize


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_reorder_is_a_gather_along_the_batch_for_every_builder(name, rng):
    pc = dy.ParameterCollection(seed=0)
    builder = BUILDERS[name][0](2, 3, 5, pc)
    randomize(builder, rng)
    s = builder.initial_state().add_input(jnp.asarray(rng.normal(size=(4, 3)), jnp.float32))
    idx = np.array([3, 0, 0, 2, 1, 3])
    r = s.reorder(idx)
    assert r.batch_size == 6 and r.prev() is None
    for got, want in zip(r.s(), s.s()):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want)[idx])
    # stepping a reordered state equals stepping the rows it came from
    x = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    np.testing.assert_allclose(r.add_input(x).output(), np.stack(
        [s.reorder(np.array([i])).add_input(x[k:k + 1]).output()[0] for k, i in enumerate(idx)]), rtol=1e-5, atol=1e-6)
    assert jax.jit(lambda st, i: st.reorder(i).output())(s, jnp.asarray(idx)).shape == (6, 5)
    assert s.select is not None and s.select(idx).batch_size == 6


def test_reorder_errors_and_stacks(rng):
    pc = dy.ParameterCollection(seed=0)
    lstm = dy.LSTMBuilder(1, 3, 4, pc)
    with pytest.raises(ValueError, match="unbatched"):
        lstm.initial_state().reorder([0])
    s = lstm.initial_state().add_input(jnp.ones((2, 3)))
    with pytest.raises(IndexError, match=r"indices must lie in \[0, 1\]"):
        s.reorder([0, 2])
    with pytest.raises(ValueError, match="1-D integer array"):
        s.reorder(np.array([[0]]))
    stack = dy.RNNStack(lstm.initial_state(), 3, batch_size=2).push(jnp.asarray(rng.normal(size=(2, 3)), jnp.float32))
    stack = stack.push(jnp.ones((2, 3)), where=np.array([True, False]))
    r = stack.reorder(np.array([1, 0, 0]))
    np.testing.assert_array_equal(r.depth, [1, 2, 2])
    np.testing.assert_allclose(r.output(), np.asarray(stack.output())[[1, 0, 0]])
    np.testing.assert_allclose(r.output(1), np.asarray(stack.output(1))[[1, 0, 0]])


V, EOS, START = 9, 0, 1


def _lm(seed=0, eos_bias=1.0):
    """A small random decoder: embedding → 2-layer LSTM → log-softmax over V tokens."""
    pc = dy.ParameterCollection(seed=seed)
    E = pc.add_lookup_parameters((V, 6))
    rnn = dy.LSTMBuilder(2, 6, 8, pc)
    randomize(rnn, np.random.default_rng(seed), scale=0.8)
    R = pc.add_parameters((V, 8), init=dy.NormalInitializer(0.0, 1.5))
    b = pc.add_parameters(V, init=np.eye(V)[EOS] * eos_bias)

    def step(state, token):
        state = state.add_input(E[token])
        return state, jax.nn.log_softmax(R * state.output() + b)

    return pc, rnn, step


def _initial_states(rnn, B, seed=0, row=None):
    """B initial states as one batched state, or (row=b) the b-th one unbatched."""
    h = jnp.asarray(np.random.default_rng(seed).normal(size=(B, 8)), jnp.float32)
    h = h if row is None else h[row]
    return rnn.initial_state([h, h, h, h])


def test_beam_of_one_is_greedy():
    _, rnn, step = _lm()
    for b in range(3):
        s0 = _initial_states(rnn, 3, row=b)
        g = dy.greedy_decode(step, s0, START, EOS, 12)
        (h,) = dy.beam_search(step, s0, START, EOS, 1, 12, length_penalty=1.0)
        assert h.tokens == g.tokens and h.finished == g.finished
        np.testing.assert_allclose(h.score, g.score, rtol=1e-5)


@pytest.mark.parametrize("K,penalty", [(1, 1.0), (3, 1.0), (5, 0.0)])
def test_compiled_batched_beam_search_equals_the_eager_one(K, penalty):
    pc, rnn, step = _lm(seed=1, eos_bias=2.0)
    B, L = 4, 10
    states = _initial_states(rnn, B, seed=2)
    out = dy.jit(lambda s: dy.beam_search_batched(step, s, START, EOS, K, L, length_penalty=penalty), pc)(states)
    out = jax.tree_util.tree_map(np.asarray, out)
    for b in range(B):
        eager = dy.beam_search(step, _initial_states(rnn, B, seed=2, row=b), START, EOS, K, L, length_penalty=penalty)
        assert len(eager) == K
        for k, h in enumerate(eager):
            n = out["lengths"][b, k]
            assert out["tokens"][b, k, :n].tolist() == h.tokens, (b, k)
            assert bool(out["finished"][b, k]) == h.finished
            np.testing.assert_allclose(out["scores"][b, k], h.score, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(out["normalized"][b, k], h.normalized, rtol=1e-4, atol=1e-5)
        assert [h.normalized for h in eager] == sorted([h.normalized for h in eager], reverse=True)
    assert out["finished"].any() and out["tokens"].shape == (B, K, L)


def test_beam_search_finds_what_greedy_misses_and_n_best():
    """A two-step model where the greedy first choice leads to a worse sequence."""
    logp = {(): np.log([0.0001, 0.0001, 0.5998, 0.4]), (2,): np.log([0.34, 0.0001, 0.33, 0.3299]),
            (3,): np.log([0.97, 0.01, 0.01, 0.01])}

    def step(prefix, token):
        prefix = prefix if token == START else prefix + (token,)
        table = logp.get(prefix, np.log([0.97, 0.01, 0.01, 0.01]))
        return prefix, jnp.asarray(table, jnp.float32)

    g = dy.greedy_decode(step, (), START, EOS, 5)
    assert g.tokens == [2, 0]                        # 0.5998 * 0.34 = 0.204
    best = dy.beam_search(step, (), START, EOS, 2, 5, length_penalty=0.0)
    assert best[0].tokens == [3, 0] and best[0].score > g.score   # 0.4 * 0.97 = 0.388
    assert len(dy.beam_search(step, (), START, EOS, 2, 5, n_best=1)) == 1


def test_a_copy_task_is_learned_and_beam_search_decodes_it_exactly():
    """Encoder LSTM reads a sequence; the decoder, started from its final state, must copy
    it and stop. Trained with teacher forcing and lengths=, decoded by the compiled search."""
    rng = np.random.default_rng(0)
    Vc, PAD, BOS, EOS_ = 8, 0, 1, 2
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((Vc, 16))
    enc, dec = dy.LSTMBuilder(1, 16, 64, pc), dy.LSTMBuilder(1, 16, 64, pc)
    R, bias = pc.add_parameters((Vc, 64)), pc.add_parameters(Vc, init=0.0)

    def batch(n):
        lens = rng.integers(2, 6, size=n)
        src = np.full((5, n), PAD, np.int32)
        tgt = np.full((7, n), PAD, np.int32)
        for j, m in enumerate(lens):
            seq = rng.integers(3, Vc, size=m)
            src[:m, j] = seq
            tgt[0, j], tgt[1:m + 1, j], tgt[m + 1, j] = BOS, seq, EOS_
        return src, lens.astype(np.int32), tgt

    def encode(src, lens):
        _, final = enc.initial_state().transduce(E.batch(src), lengths=lens, return_state=True)
        return dec.initial_state(final.s())

    def loss(src, lens, tgt):
        hs = encode(src, lens).transduce(E.batch(tgt[:-1]), lengths=lens + 1)
        return dy.sequence_cross_entropy(hs @ R.T + bias.expr(), tgt[1:], lens + 1)

    trainer = dy.AdamTrainer(pc, 0.01)
    for _ in range(1500):
        trainer.step(loss, *batch(32))

    def step(state, token):
        state = state.add_input(E[token])
        return state, jax.nn.log_softmax(R * state.output() + bias)

    src, lens, tgt = batch(64)
    decode = jax.jit(lambda values, s, li: _bound(pc, values, lambda: dy.beam_search_batched(
        step, encode(s, li), BOS, EOS_, 3, 7)))
    out = jax.tree_util.tree_map(np.asarray, decode(pc.parameter_values(), src, lens))
    got = [out["tokens"][j, 0, :out["lengths"][j, 0]].tolist() for j in range(64)]
    wrong = [(g, src[:lens[j], j].tolist()) for j, g in enumerate(got) if g != src[:lens[j], j].tolist() + [EOS_]]
    assert not wrong
    # and the eager search agrees on a few
    for j in range(3):
        s0 = encode(src[:, j:j + 1], lens[j:j + 1])
        s0 = dec.initial_state([v[0] for v in s0.s()])  # unbatched, as an eager decoder would have it
        assert dy.beam_search(step, s0, BOS, EOS_, 3, 7)[0].tokens == src[:lens[j], j].tolist() + [EOS_]


def _bound(pc, values, fn):
    with pc.bind(values):
        return fn()
