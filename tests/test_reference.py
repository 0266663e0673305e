"""Every builder against the plain-NumPy equations in references.py: multi-layer, batched,
layer norm, forget bias, coupled peepholes, Cho-form GRU — to 1e-5."""

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

from .helpers import BUILDERS, N_COMPONENTS, randomize, reference_outputs

T, n_in, H = 6, 5, 7


def make(name, layers, seed=0):
    pc = dy.ParameterCollection(seed=seed)
    b = BUILDERS[name][0](layers, n_in, H, pc)
    randomize(b, np.random.default_rng(seed + 1))
    return b


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_add_input_matches_reference(name, layers, rng):
    b = make(name, layers)
    xs = rng.normal(size=(T, n_in)).astype(np.float32)
    want_out, want_states = reference_outputs(name, b, xs)
    s = b.initial_state()
    for t in range(T):
        s = s.add_input(xs[t])
        np.testing.assert_allclose(s.output(), want_out[t], rtol=1e-5, atol=1e-5)
        # s() is component-major: c_1..c_L, h_1..h_L
        n = N_COMPONENTS[name]
        want_s = [want_states[t][li][k] for k in range(n) for li in range(layers)]
        assert len(s.s()) == n * layers
        for got, want in zip(s.s(), want_s):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        for li in range(layers):
            np.testing.assert_allclose(s.h()[li], want_states[t][li][-1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_batched_transduce_matches_reference_per_example(name, rng):
    b = make(name, 2)
    B = 4
    xs = rng.normal(size=(T, B, n_in)).astype(np.float32)
    got = b.initial_state().transduce(xs)
    assert got.shape == (T, B, H)
    for e in range(B):
        want, _ = reference_outputs(name, b, xs[:, e])
        np.testing.assert_allclose(got[:, e], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_initial_state_vecs_match_reference(name, rng):
    b = make(name, 2)
    n = N_COMPONENTS[name]
    vecs = [rng.normal(size=H).astype(np.float32) for _ in range(n * 2)]
    state0 = [tuple(vecs[k * 2 + li] for k in range(n)) for li in range(2)]
    xs = rng.normal(size=(T, n_in)).astype(np.float32)
    want, _ = reference_outputs(name, b, xs, state0)
    got = b.initial_state(vecs).transduce(xs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_forget_bias_is_a_constant_not_the_stored_bias():
    pc = dy.ParameterCollection(seed=0)
    b = dy.LSTMBuilder(1, 3, 4, pc)
    assert np.all(b.get_parameters()[0][2].as_array() == 0.0)
    # With zero weights: c1 = σ(0)·tanh(0)=0 ... use c0 = 1 to expose the forget gate.
    for p in b.get_parameters()[0]:
        p.set_value(np.zeros(p.shape()))
    s = b.initial_state([jnp.ones(4), jnp.zeros(4)]).add_input(jnp.zeros(3))
    np.testing.assert_allclose(s.s()[0], 1 / (1 + np.exp(-1.0)), rtol=1e-6)  # σ(0 + 1)·1


def test_lstm_gate_order_is_i_f_o_g():
    """Drive one gate block at a time through the bias and watch which quantity moves."""
    pc = dy.ParameterCollection(seed=0)
    b = dy.LSTMBuilder(1, 2, 3, pc, forget_bias=0.0)
    W_x, W_h, bias = b.get_parameters()[0]
    W_x.set_value(np.zeros((12, 2)))
    W_h.set_value(np.zeros((12, 3)))
    big = np.zeros(12)
    big[9:12] = 20.0  # g block → tanh(g) ≈ 1
    big[0:3] = 20.0  # i block → σ(i) ≈ 1
    bias.set_value(big)
    s = b.initial_state().add_input(jnp.zeros(2))
    np.testing.assert_allclose(s.s()[0], 1.0, atol=1e-6)  # c = f·0 + 1·1
    np.testing.assert_allclose(s.output(), 0.5 * np.tanh(1.0), atol=1e-6)  # o = σ(0)


def test_default_init_glorot_over_stacked_matrices_and_zero_biases():
    pc = dy.ParameterCollection(seed=0)
    b = dy.LSTMBuilder(1, 100, 50, pc)
    W_x, W_h, bias = b.get_parameters()[0]
    bound = np.sqrt(6.0 / (200 + 100))
    assert np.abs(W_x.as_array()).max() <= bound
    assert np.abs(W_x.as_array()).max() > 0.95 * bound
    np.testing.assert_allclose(W_x.as_array().var(), bound**2 / 3, rtol=0.05)
    assert np.all(bias.as_array() == 0)
