"""One compile per shape signature, none in steady state (counted from JAX's own log)."""

import jax.numpy as jnp
import numpy as np

import dynrnn as dy

from .helpers import count_compiles


def _ours(names):
    return [n for n in names if "_step" in n or "_scan" in n]


def test_add_input_compiles_once_then_never(rng):
    b = dy.LSTMBuilder(2, 3, 4, dy.ParameterCollection(seed=0))
    xs = [jnp.asarray(x, jnp.float32) for x in rng.normal(size=(40, 3))]
    s = b.initial_state().add_input(xs[0]).add_input(xs[1])  # warm: unbatched-state and vector shapes
    with count_compiles() as names:
        for x in xs:
            s = s.add_input(x)
    assert names == []


def test_transduce_compiles_once_per_shape(rng):
    b = dy.GRUBuilder(1, 3, 4, dy.ParameterCollection(seed=0))
    s0 = b.initial_state()
    xs = {T: jnp.asarray(rng.normal(size=(T, 2, 3)), jnp.float32) for T in (5, 9)}
    lengths = np.array([5, 2])
    with count_compiles() as names:
        s0.transduce(xs[5])
        s0.transduce(xs[9])
    assert len(_ours(names)) == 2  # one per length
    with count_compiles() as names:
        for _ in range(5):
            s0.transduce(xs[5])
            s0.transduce(xs[9])
    assert names == []
    s0.transduce(xs[5], lengths=lengths)
    with count_compiles() as names:
        s0.transduce(xs[5], lengths=np.array([1, 4]))  # new values, same shapes
    assert names == []


def test_new_batch_size_compiles_exactly_one_step(rng):
    b = dy.SimpleRNNBuilder(1, 3, 4, dy.ParameterCollection(seed=0))
    b.initial_state().add_input(jnp.ones((2, 3))).add_input(jnp.ones((2, 3)))
    with count_compiles() as names:
        s = b.initial_state().add_input(jnp.ones((7, 3)))  # unbatched state, batch-7 input
        s = s.add_input(jnp.ones((7, 3)))  # batch-7 state
        s = s.add_input(jnp.ones((7, 3)))
    assert len(_ours(names)) == 2


def test_builders_with_equal_configuration_share_compiled_code():
    pc = dy.ParameterCollection(seed=0)
    a, b = dy.LSTMBuilder(1, 3, 4, pc), dy.LSTMBuilder(1, 3, 4, pc)
    a.initial_state().add_input(jnp.ones(3))
    with count_compiles() as names:
        b.initial_state().add_input(jnp.ones(3))
    assert _ours(names) == []


def test_changing_parameters_does_not_recompile():
    pc = dy.ParameterCollection(seed=0)
    b = dy.LSTMBuilder(1, 3, 4, pc)
    b.initial_state().add_input(jnp.ones(3))
    with count_compiles() as names:
        for p in b.get_parameters()[0]:
            p.set_value(np.ones(p.shape()))
        b.initial_state().add_input(jnp.ones(3))
    assert _ours(names) == []
