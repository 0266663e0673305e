"""Variational dropout: masks belong to a sequence (drawn from its key at initial_state),
never to the builder or the compiled function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy
from dynrnn._compiled import StackSpec, dropout_masks

from .helpers import assert_trees_allclose

n_in, H = 6, 8


def test_masks_have_the_rate_and_inverted_scale():
    cells = (dy.cells.LSTMCell(50, 60),)
    (mx, mh), = dropout_masks(StackSpec(cells, 0.3, 0.6), jax.random.key(0), (400,), jnp.float32)
    assert mx.shape == (400, 50) and mh.shape == (400, 60)
    np.testing.assert_allclose(np.unique(np.asarray(mx)), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs(float(jnp.mean(mx == 0)) - 0.3) < 0.02
    assert abs(float(jnp.mean(mh == 0)) - 0.6) < 0.02


def test_a_sequence_keeps_its_masks_whether_stepped_or_scanned(rng):
    b = dy.LSTMBuilder(2, n_in, H, dy.ParameterCollection(seed=0))
    b.set_dropouts(0.5, 0.3)
    xs = jnp.asarray(rng.normal(size=(5, 3, n_in)), jnp.float32)
    s0 = b.initial_state(key=jax.random.key(7))
    s = s0
    outs = []
    for x in xs:
        s = s.add_input(x)
        outs.append(s.output())
    assert_trees_allclose(jnp.stack(outs), s0.transduce(xs))


def test_different_sequences_get_different_masks_and_keys_reproduce(rng):
    b = dy.GRUBuilder(1, n_in, H, dy.ParameterCollection(seed=0))
    b.set_dropout(0.5)
    x = jnp.asarray(rng.normal(size=n_in), jnp.float32)
    a = b.initial_state().add_input(x).output()
    c = b.initial_state().add_input(x).output()
    assert not np.allclose(a, c)
    k = jax.random.key(3)
    assert_trees_allclose(b.initial_state(key=k).add_input(x).output(),
                          b.initial_state(key=k).add_input(x).output())


def test_sequences_of_different_batch_sizes_in_one_step(rng):
    b = dy.LSTMBuilder(1, n_in, H, dy.ParameterCollection(seed=0))
    b.set_dropout(0.4)
    s2 = b.initial_state().add_input(jnp.ones((2, n_in)))
    s5 = b.initial_state().add_input(jnp.ones((5, n_in)))
    assert s2.output().shape == (2, H) and s5.output().shape == (5, H)
    # each example of a batch gets its own mask
    assert not np.allclose(s5.output()[0], s5.output()[1])


def test_disable_dropout_is_deterministic_and_equals_no_dropout(rng):
    pc = dy.ParameterCollection(seed=0)
    b = dy.LSTMBuilder(1, n_in, H, pc)
    x = jnp.asarray(rng.normal(size=n_in), jnp.float32)
    clean = b.initial_state().add_input(x).output()
    b.set_dropout(0.5)
    assert b.dropout == (0.5, 0.5)
    b.disable_dropout()
    assert_trees_allclose(b.initial_state().add_input(x).output(), clean)
    assert_trees_allclose(b.initial_state().add_input(x).output(), clean)


def test_dropout_rate_is_validated():
    b = dy.LSTMBuilder(1, n_in, H, dy.ParameterCollection(seed=0))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        b.set_dropout(1.0)
    with pytest.raises(TypeError):
        b.set_dropouts("a lot", 0.1)
