"""Gradients through add_input chains, transduce and the parameters, checked numerically
(jax.test_util.check_grads, forward and reverse mode, second order) in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import dynrnn as dy

from .helpers import BUILDERS, randomize

T, B, n_in, H = 4, 2, 3, 4
# lstm_fb0 runs the same code as lstm; leaving it out keeps the suite fast.
GRAD_BUILDERS = sorted(set(BUILDERS) - {"lstm_fb0"})


def make(name):
    pc = dy.ParameterCollection(seed=0, dtype=jnp.float64)
    b = BUILDERS[name][0](2, n_in, H, pc)
    randomize(b, np.random.default_rng(3))
    return pc, b


@pytest.mark.parametrize("name", GRAD_BUILDERS)
def test_grads_through_add_input_chain(name, x64, rng):
    pc, b = make(name)
    xs = jnp.asarray(rng.normal(size=(T, B, n_in)))
    h0 = jnp.asarray(rng.normal(size=(B, H)))

    def f(xs, h0):
        s = b.initial_state().add_input(xs[0])
        s = s.set_h([h0, h0])
        for x in xs[1:]:
            s = s.add_input(x)
        return jnp.sum(jnp.sin(s.output()))

    check_grads(f, (xs, h0), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name, batch", [(n, 2) for n in GRAD_BUILDERS] + [("lstm", 9), ("gru", 9)])
def test_grads_through_transduce_with_lengths(name, batch, x64, rng):
    """batch 2 runs the hoisted-projection scan, batch 9 the plain one."""
    pc, b = make(name)
    xs = jnp.asarray(rng.normal(size=(T, batch, n_in)))
    lengths = np.array([T, 2] + [3] * (batch - 2))
    def f(xs):
        return jnp.sum(b.initial_state().transduce(xs, lengths=lengths) ** 2)
    check_grads(f, (xs,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", GRAD_BUILDERS)
def test_grads_with_respect_to_parameters(name, x64, rng):
    pc, b = make(name)
    xs = jnp.asarray(rng.normal(size=(T, B, n_in)))
    values = pc.parameter_values()

    def f(values):
        with pc.bind(values):
            return jnp.sum(jnp.tanh(b.initial_state().transduce(xs)))

    check_grads(f, (values,), order=1, modes=("fwd", "rev"))
    grads = jax.grad(f)(values)
    assert set(grads) == set(values)
    assert all(float(jnp.abs(g).sum()) > 0 for g in grads.values())
