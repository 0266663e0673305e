"""RNNState semantics: zeros at the start, prev() as a stack, branching, set_h/set_s
(with DyNet's trap fixed), immutability, batching rules."""

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

from .helpers import BUILDERS, N_COMPONENTS, randomize


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_initial_state_has_defined_zeros(name):
    b = BUILDERS[name][0](2, 3, 4, dy.ParameterCollection(seed=0))
    s0 = b.initial_state()
    assert s0.prev() is None
    assert s0.b() is b
    np.testing.assert_array_equal(s0.output(), np.zeros(4))
    assert len(s0.h()) == 2 and all(np.all(np.asarray(h) == 0) for h in s0.h())
    assert len(s0.s()) == 2 * N_COMPONENTS[name] and all(np.all(np.asarray(v) == 0) for v in s0.s())


def test_prev_is_a_stack_and_parents_are_unchanged(rng):
    b = dy.LSTMBuilder(2, 3, 4, dy.ParameterCollection(seed=0))
    s0 = b.initial_state()
    s1 = s0.add_input(rng.normal(size=3))
    before = [np.array(v) for v in s1.s()]
    s2 = s1.add_input(rng.normal(size=3))
    assert s2.prev() is s1 and s1.prev() is s0
    for v, w in zip(s1.s(), before):
        np.testing.assert_array_equal(v, w)
    assert not np.allclose(s2.output(), s1.output())


def test_branches_never_interfere(rng):
    b = dy.GRUBuilder(1, 3, 5, dy.ParameterCollection(seed=0))
    randomize(b, rng)
    x1, x2, x3 = rng.normal(size=(3, 3))
    s1 = b.initial_state().add_input(x1)
    a = s1.add_input(x2)
    c = s1.add_input(x3)
    a_again = b.initial_state().add_input(x1).add_input(x2)
    c_again = b.initial_state().add_input(x1).add_input(x3)
    np.testing.assert_array_equal(a.output(), a_again.output())
    np.testing.assert_array_equal(c.output(), c_again.output())
    assert a.prev() is s1 and c.prev() is s1


def test_states_are_immutable():
    s = dy.SimpleRNNBuilder(1, 2, 2, dy.ParameterCollection(seed=0)).initial_state()
    with pytest.raises(AttributeError, match="immutable"):
        s._layers = ()


def test_set_h_takes_c_from_this_state_not_the_newest(rng):
    """DyNet's trap: set_h copied c from whichever state was created last."""
    b = dy.LSTMBuilder(2, 3, 4, dy.ParameterCollection(seed=0))
    s1 = b.initial_state().add_input(rng.normal(size=3))
    newest = s1.add_input(rng.normal(size=3)).add_input(rng.normal(size=3))  # created after s1
    hs = [jnp.full(4, 0.25), jnp.full(4, -0.5)]
    child = s1.set_h(hs)
    assert child.prev() is s1
    np.testing.assert_array_equal(child.h()[0], hs[0])
    np.testing.assert_array_equal(child.h()[1], hs[1])
    for li in range(2):
        np.testing.assert_array_equal(child.s()[li], s1.s()[li])  # c from s1 ...
        assert not np.allclose(child.s()[li], newest.s()[li])  # ... not from the newest state


def test_set_s_replaces_everything_in_s_order(rng):
    b = dy.LSTMBuilder(2, 3, 4, dy.ParameterCollection(seed=0))
    s1 = b.initial_state().add_input(rng.normal(size=3))
    ss = [rng.normal(size=4).astype(np.float32) for _ in range(4)]
    child = s1.set_s(ss)
    assert child.prev() is s1
    for got, want in zip(child.s(), ss):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(child.h()[1], ss[3])  # h_2 is last
    # stepping from the set state equals starting from initial_state(ss)
    x = rng.normal(size=3)
    np.testing.assert_allclose(child.add_input(x).output(), b.initial_state(ss).add_input(x).output(), rtol=1e-6)


def test_set_h_on_gru_is_set_s():
    b = dy.GRUBuilder(1, 2, 3, dy.ParameterCollection(seed=0))
    s = b.initial_state().set_h([jnp.ones(3)])
    assert len(s.s()) == 1
    np.testing.assert_array_equal(s.s()[0], np.ones(3))


def test_unbatched_state_takes_the_batch_of_its_first_input(rng):
    b = dy.LSTMBuilder(1, 3, 4, dy.ParameterCollection(seed=0))
    s0 = b.initial_state()
    assert s0.batch_size is None
    s1 = s0.add_input(rng.normal(size=(5, 3)))
    assert s1.batch_size == 5 and s1.output().shape == (5, 4)
    with pytest.raises(ValueError, match=r"batch size 5"):
        s1.add_input(rng.normal(size=(2, 3)))
    with pytest.raises(ValueError, match=r"expected \(5, 3\)"):
        s1.add_input(rng.normal(size=3))


def test_get_parameters_layouts_follow_dynet():
    pc = dy.ParameterCollection(seed=0)
    n_in, H = 3, 4
    def shapes(b):
        return [[p.shape() for p in layer] for layer in b.get_parameters()]
    assert shapes(dy.VanillaLSTMBuilder(2, n_in, H, pc)) == [[(16, 3), (16, 4), (16,)], [(16, 4), (16, 4), (16,)]]
    assert shapes(dy.SimpleRNNBuilder(1, n_in, H, pc)) == [[(4, 3), (4, 4), (4,)]]
    assert shapes(dy.GRUBuilder(1, n_in, H, pc)) == [[(4, 3), (4, 4), (4,)] * 3]
    assert shapes(dy.CoupledLSTMBuilder(1, n_in, H, pc)) == [
        [(4, 3), (4, 4), (4, 4), (4,), (4, 3), (4, 4), (4, 4), (4,), (4, 3), (4, 4), (4,)]]
    ln = dy.VanillaLSTMBuilder(1, n_in, H, pc, ln_lstm=True)
    assert shapes(ln) == [[(16, 3), (16, 4), (16,)]]
    assert [[p.shape() for p in layer] for layer in ln.get_ln_parameters()] == [[(16,)] * 4 + [(4,)] * 2]
    assert all(np.all(g.as_array() == 1) for g in ln.get_ln_parameters()[0][0::2])


def test_builders_read_current_parameter_values(rng):
    b = dy.SimpleRNNBuilder(1, 2, 2, dy.ParameterCollection(seed=0))
    x = jnp.ones(2)
    before = b.initial_state().add_input(x).output()
    b.get_parameters()[0][2].set_value(np.full(2, 3.0))
    after = b.initial_state().add_input(x).output()
    assert not np.allclose(before, after)
