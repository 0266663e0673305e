"""A cell that is not in the library gets the whole builder/state API from the protocol."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

import dynrnn as dy

from .helpers import assert_trees_allclose, count_compiles


@dataclasses.dataclass(frozen=True)
class MinimalGatedUnit(dy.cells.Cell):
    """Zhou et al. (2016) MGU: f = σ(W_f·[h; x] + b_f); h̃ = tanh(W_h·[f ⊙ h; x] + b_h);
    h = (1 − f) ⊙ h + f ⊙ h̃. Plus a running-sum state component, to have two."""

    input_dim: int
    hidden_dim: int

    def param_specs(self):
        H, n_in = self.hidden_dim, self.input_dim
        return (dy.cells.ParamSpec("W_f", (H, H + n_in)), dy.cells.ParamSpec("b_f", (H,), 0.0),
                dy.cells.ParamSpec("W_h", (H, H + n_in)), dy.cells.ParamSpec("b_h", (H,), 0.0))

    def state_sizes(self):
        return (self.hidden_dim, self.hidden_dim)  # (running sum of h, h)

    def step(self, params, state, x, h_mask=None):
        W_f, b_f, W_h, b_h = params
        total, h = state
        f = jax.nn.sigmoid(jnp.concatenate([h, x], -1) @ W_f.T + b_f)
        cand = jnp.tanh(jnp.concatenate([f * h, x], -1) @ W_h.T + b_h)
        h = (1 - f) * h + f * cand
        return total + h, h


def numpy_mgu(params, xs):
    W_f, b_f, W_h, b_h = [np.asarray(p, np.float64) for p in params]
    h = np.zeros(W_f.shape[0])
    total = np.zeros_like(h)
    out = []
    for x in xs:
        f = 1 / (1 + np.exp(-(W_f @ np.concatenate([h, x]) + b_f)))
        h = (1 - f) * h + f * np.tanh(W_h @ np.concatenate([f * h, x]) + b_h)
        total = total + h
        out.append(h)
    return np.array(out), total


def test_user_cell_gets_the_builder_and_state_api(rng, tmp_path):
    pc = dy.ParameterCollection(seed=0)
    b = dy.RNNBuilder(1, 3, 4, pc, cell=MinimalGatedUnit)
    for p in b.get_parameters()[0]:
        p.set_value(rng.normal(size=p.shape()))
    xs = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    want, total = numpy_mgu(b.get_parameter_expressions()[0], np.asarray(xs))
    s0 = b.initial_state()
    out, final = s0.transduce(xs, return_state=True)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final.s()[0], total, rtol=1e-5, atol=1e-5)  # s() = (sum, h)
    s = s0
    for x in xs:
        s = s.add_input(x)
    assert_trees_allclose(s.output(), final.output())
    assert s.prev().prev() is not None and len(s0.add_inputs(xs)) == 6
    # batched, lengths, jit, the set_h trap fix
    batch = jnp.stack([xs, xs[::-1]], axis=1)
    got = s0.transduce(batch, lengths=np.array([6, 3]))
    assert_trees_allclose(got[:3, 1], s0.transduce(xs[::-1][:3]))
    child = s.set_h([jnp.zeros(4)])
    assert_trees_allclose(child.s()[0], s.s()[0])
    assert_trees_allclose(dy.jit(lambda st, x: st.add_input(x).output(), pc)(s, xs[0]), s.add_input(xs[0]).output())
    # saved through its collection
    pc.save(str(tmp_path / "mgu.npz"))
    pc2 = dy.ParameterCollection(seed=1)
    b2 = dy.RNNBuilder(1, 3, 4, pc2, cell=MinimalGatedUnit)
    pc2.populate(str(tmp_path / "mgu.npz"))
    assert_trees_allclose(b2.initial_state().transduce(xs), out)


def test_user_cell_compiles_once():
    b = dy.RNNBuilder(2, 3, 4, dy.ParameterCollection(seed=0), cell=MinimalGatedUnit)
    s = b.initial_state().add_input(jnp.ones(3)).add_input(jnp.ones(3))
    with count_compiles() as names:
        for _ in range(10):
            s = s.add_input(jnp.ones(3))
    assert [n for n in names if "_step" in n] == []


def test_unhashable_cell_is_refused():
    class Mutable(dy.cells.Cell):
        __hash__ = None

        def __init__(self, i, h):
            self.input_dim, self.hidden_dim = i, h

    import pytest
    with pytest.raises(TypeError, match="frozen dataclass"):
        dy.RNNBuilder(1, 2, 3, dy.ParameterCollection(seed=0), cell=Mutable)
