"""The same computation, every way it can be spelled: add_input loop ≡ add_inputs ≡
transduce (list / array) ≡ under jit ≡ per example under vmap ≡ in a lax.scan carry;
transduce(lengths=) ≡ each sequence alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy
from dynrnn._compiled import HOIST_MAX_BATCH

from .helpers import BUILDERS, assert_trees_allclose, randomize, reference_outputs

T, B, n_in, H = 7, 3, 4, 5


NAMES = {}


@pytest.fixture(params=sorted(BUILDERS))
def builder(request):
    b = BUILDERS[request.param][0](2, n_in, H, dy.ParameterCollection(seed=0))
    randomize(b, np.random.default_rng(1))
    NAMES[b] = request.param
    return b


def loop(s, xs):
    outs = []
    for x in xs:
        s = s.add_input(x)
        outs.append(s.output())
    return jnp.stack(outs), s


def test_loop_add_inputs_transduce_agree(builder, rng):
    xs = jnp.asarray(rng.normal(size=(T, B, n_in)), jnp.float32)
    s0 = builder.initial_state()
    want, s_end = loop(s0, xs)
    states = s0.add_inputs(xs)
    assert len(states) == T and states[0].prev() is s0 and states[-1].prev() is states[-2]
    assert_trees_allclose(jnp.stack([s.output() for s in states]), want)
    assert_trees_allclose(states[-1].s(), s_end.s())
    assert_trees_allclose(s0.transduce(xs), want)
    as_list = s0.transduce(list(xs))
    assert isinstance(as_list, list) and len(as_list) == T
    assert_trees_allclose(jnp.stack(as_list), want)
    outs, final = s0.transduce(xs, return_state=True)
    assert_trees_allclose(final.s(), s_end.s())
    assert final.prev() is s0


def test_jit_equals_eager(builder, rng):
    xs = jnp.asarray(rng.normal(size=(T, B, n_in)), jnp.float32)
    s0 = builder.initial_state()
    want, s_end = loop(s0, xs)
    pc = builder.param_collection()
    got = dy.jit(lambda s, xs: loop(s, xs), pc)(s0, xs)
    assert_trees_allclose(got[0], want)
    assert_trees_allclose(got[1].s(), s_end.s())
    assert got[1].prev() is None  # a state out of a transformation starts a fresh history
    assert_trees_allclose(dy.jit(lambda s, xs: s.transduce(xs), pc)(s0, xs), want)
    with pytest.raises(dy.StaleParameterError):  # plain jax.jit would freeze the parameters
        jax.jit(lambda s, xs: s.transduce(xs))(s0, xs)


def test_vmap_per_example_equals_batch(builder, rng):
    xs = jnp.asarray(rng.normal(size=(T, B, n_in)), jnp.float32)
    s0 = builder.initial_state()
    batched = s0.transduce(xs)
    per_example = jax.vmap(lambda seq: s0.transduce(seq), in_axes=1, out_axes=1)(xs)
    assert_trees_allclose(per_example, batched)
    # vmap over a batched *state*: each example's state is stepped alone
    s1 = s0.add_input(xs[0])
    stepped = jax.vmap(lambda s, x: s.add_input(x).output())(s1, xs[1])
    assert_trees_allclose(stepped, s1.add_input(xs[1]).output())


def test_state_as_lax_scan_carry(builder, rng):
    xs = jnp.asarray(rng.normal(size=(T, B, n_in)), jnp.float32)
    s0 = builder.initial_state().add_input(xs[0])  # batched, so the carry keeps its shape

    def body(s, x):
        s = s.add_input(x)
        return s, s.output()

    final, outs = dy.jit(lambda s, xs: jax.lax.scan(body, s, xs), builder.param_collection())(s0, xs[1:])
    assert_trees_allclose(outs, s0.transduce(xs[1:]))


def test_pytree_cost_is_layers_not_history(builder, rng):
    s = builder.initial_state()
    n0 = len(jax.tree_util.tree_leaves(s))
    for x in rng.normal(size=(20, n_in)):
        s = s.add_input(x)
    assert len(jax.tree_util.tree_leaves(s)) == n0 == len(builder.initial_state().s())


def test_lengths_equal_each_sequence_alone(builder, rng):
    xs = jnp.asarray(rng.normal(size=(T, B, n_in)), jnp.float32)
    lengths = np.array([T, 3, 1])
    s0 = builder.initial_state()
    outs, final = s0.transduce(xs, lengths=lengths, return_state=True)
    for e, n in enumerate(lengths):
        alone, s_alone = loop(s0, xs[:n, e])
        assert_trees_allclose(outs[:n, e], alone)
        np.testing.assert_array_equal(outs[n:, e], 0.0)
        assert_trees_allclose(tuple(v[e] for v in final.s()), s_alone.s())


def test_zero_length_sequence_keeps_initial_state(rng):
    b = dy.LSTMBuilder(1, n_in, H, dy.ParameterCollection(seed=0))
    vecs = [jnp.ones((2, H)), jnp.full((2, H), 0.5)]
    xs = jnp.asarray(rng.normal(size=(T, 2, n_in)), jnp.float32)
    _, final = b.initial_state(vecs).transduce(xs, lengths=np.array([0, T]), return_state=True)
    np.testing.assert_array_equal(final.s()[0][0], np.ones(H))
    np.testing.assert_array_equal(final.s()[1][0], np.full(H, 0.5))


@pytest.mark.parametrize("batch", [1, HOIST_MAX_BATCH, HOIST_MAX_BATCH + 1])
def test_both_scan_strategies_match_the_reference(builder, batch, rng):
    """Small batches hoist the input projection out of the scan; larger ones do not."""
    xs = rng.normal(size=(T, batch, n_in)).astype(np.float32)
    lengths = rng.integers(1, T + 1, size=batch)
    outs = builder.initial_state().transduce(xs, lengths=lengths)
    for e in range(batch):
        want, _ = reference_outputs(NAMES[builder], builder, xs[: lengths[e], e])
        np.testing.assert_allclose(outs[: lengths[e], e], want, rtol=1e-5, atol=1e-5)
