"""BiRNNBuilder against its definition: forward over xs, backward over reversed xs
(each sequence within its own length), outputs concatenated."""

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

from .helpers import assert_trees_allclose


@pytest.mark.parametrize("cls", [dy.LSTMBuilder, dy.GRUBuilder, dy.CoupledLSTMBuilder, dy.SimpleRNNBuilder])
def test_birnn_is_forward_and_reversed_backward(cls, rng):
    bi = dy.BiRNNBuilder(2, 3, 8, dy.ParameterCollection(seed=0), cls)
    xs = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    inp = xs
    for fb, bb in bi.builder_layers:
        assert fb.hidden_dim == 4 and isinstance(fb, cls)
        f = fb.initial_state().transduce(inp)
        bw = bb.initial_state().transduce(inp[::-1])[::-1]
        inp = jnp.concatenate([f, bw], axis=-1)
    assert_trees_allclose(bi.transduce(xs), inp)
    as_list = bi.transduce(list(xs))
    assert isinstance(as_list, list) and as_list[0].shape == (8,)


def test_birnn_lengths_equal_each_sequence_alone(rng):
    bi = dy.BiRNNBuilder(2, 3, 6, dy.ParameterCollection(seed=0), dy.LSTMBuilder)
    xs = jnp.asarray(rng.normal(size=(5, 3, 3)), jnp.float32)
    lengths = np.array([5, 2, 4])
    got = bi.transduce(xs, lengths=lengths)
    for e, n in enumerate(lengths):
        assert_trees_allclose(got[:n, e], bi.transduce(xs[:n, e]))
        np.testing.assert_array_equal(got[n:, e], 0.0)


def test_reverse_sequences_is_length_aware():
    xs = jnp.arange(8.0).reshape(4, 2, 1)  # time 4, batch 2
    out = dy.reverse_sequences(xs, jnp.array([4, 2]))
    np.testing.assert_array_equal(out[:, 0, 0], [6, 4, 2, 0])
    np.testing.assert_array_equal(out[:, 1, 0], [3, 1, 5, 7])  # padding stays in place


def test_birnn_add_inputs_pairs_states_like_dynet(rng):
    bi = dy.BiRNNBuilder(1, 3, 4, dy.ParameterCollection(seed=0), dy.GRUBuilder)
    xs = [jnp.asarray(x, jnp.float32) for x in rng.normal(size=(4, 3))]
    pairs = bi.add_inputs(xs)
    out = bi.transduce(xs)
    for (f, b), o in zip(pairs, out):
        assert_trees_allclose(jnp.concatenate([f.output(), b.output()]), o)
