"""Property-based invariances over random layers, sizes, batches and lengths."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import dynrnn as dy

from .helpers import BUILDERS, assert_trees_allclose, reference_outputs

configs = st.fixed_dictionaries({
    "name": st.sampled_from(sorted(BUILDERS)),
    "layers": st.integers(1, 3),
    "I": st.integers(1, 5),
    "H": st.integers(1, 5),
    "B": st.integers(1, 4),
    "T": st.integers(1, 6),
    "seed": st.integers(0, 2**16),
})


@given(configs, st.data())
def test_transduce_with_lengths_matches_reference_per_sequence(c, data):
    rng = np.random.default_rng(c["seed"])
    b = BUILDERS[c["name"]][0](c["layers"], c["I"], c["H"], dy.ParameterCollection(seed=c["seed"]))
    xs = rng.normal(size=(c["T"], c["B"], c["I"])).astype(np.float32)
    lengths = np.array(data.draw(st.lists(st.integers(0, c["T"]), min_size=c["B"], max_size=c["B"])))
    outs, final = b.initial_state().transduce(xs, lengths=lengths, return_state=True)
    assert outs.shape == (c["T"], c["B"], c["H"])
    for e, n in enumerate(lengths):
        if n == 0:
            assert all(np.all(np.asarray(v[e]) == 0) for v in final.s())
            continue
        want, states = reference_outputs(c["name"], b, xs[:n, e])
        np.testing.assert_allclose(outs[:n, e], want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(final.output()[e], want[-1], rtol=1e-5, atol=1e-5)


@given(configs)
def test_step_loop_equals_scan_equals_jit(c):
    rng = np.random.default_rng(c["seed"])
    b = BUILDERS[c["name"]][0](c["layers"], c["I"], c["H"], dy.ParameterCollection(seed=c["seed"]))
    xs = jnp.asarray(rng.normal(size=(c["T"], c["B"], c["I"])), jnp.float32)
    s = s0 = b.initial_state()
    outs = []
    for x in xs:
        s = s.add_input(x)
        outs.append(s.output())
    assert_trees_allclose(s0.transduce(xs), jnp.stack(outs))
    assert_trees_allclose(dy.jit(lambda s, xs: s.transduce(xs), s0.builder.param_collection())(s0, xs), jnp.stack(outs))
    assert_trees_allclose(s0.add_inputs(xs)[-1].s(), s.s())
