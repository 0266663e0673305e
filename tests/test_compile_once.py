"""One compile per shape signature, none in steady state (counted from JAX's own log)."""

import jax
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


def _scan_unrolls(jaxpr) -> list:
    """The `unroll` of every lax.scan in a jaxpr, sub-jaxprs included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            found.append(eqn.params["unroll"])
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    found += _scan_unrolls(inner)
    return found


def test_scans_unroll_for_values_but_not_under_differentiation(rng):
    """Unrolling by 4 speeds up a forward transduce at batch 32 and slows its gradient
    (measured in dynrnn/_compiled.py): the differentiated scan must not be unrolled, the
    plain one must; small (hoisted) batches are never unrolled."""
    from dynrnn import _compiled

    pc = dy.ParameterCollection(seed=0)
    b = dy.LSTMBuilder(2, 3, 4, pc)
    big = jnp.asarray(rng.normal(size=(7, _compiled.HOIST_MAX_BATCH + 1, 3)), jnp.float32)
    small = big[:, :2]

    def loss(values, xs):
        with pc.bind(values):
            return jnp.sum(b.initial_state().transduce(xs))

    values = pc.parameter_values()
    assert _scan_unrolls(jax.make_jaxpr(loss)(values, big).jaxpr) == [_compiled.SCAN_UNROLL] * 2
    assert _scan_unrolls(jax.make_jaxpr(loss)(values, small).jaxpr) == [1, 1]
    grad_unrolls = _scan_unrolls(jax.make_jaxpr(jax.grad(loss))(values, big).jaxpr)
    assert grad_unrolls and set(grad_unrolls) == {1}
    # and the values do not depend on the unrolling
    np.testing.assert_allclose(loss(values, big), jax.jit(lambda v, x: jax.value_and_grad(loss)(v, x)[0])(values, big),
                               rtol=1e-6)
