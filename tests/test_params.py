"""ParameterCollection, Parameters, LookupParameters and initializers."""

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy


def test_same_seed_same_values_different_seed_different():
    def values(seed):
        pc = dy.ParameterCollection(seed=seed)
        dy.LSTMBuilder(2, 3, 4, pc)
        pc.add_lookup_parameters((10, 3))
        return [p.as_array() for p in pc.all_parameters()]

    for a, b in zip(values(5), values(5)):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(values(5), values(6)) if a.any())


def test_names_counts_and_lists():
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((3, 4), name="W")
    W2 = pc.add_parameters((3, 4), name="W")
    anon = pc.add_parameters(5)
    E = pc.add_lookup_parameters((10, 2), name="E")
    sub = pc.add_subcollection("enc")
    sub2 = pc.add_subcollection("enc")
    V = sub.add_parameters(2, name="V")
    assert (W.name(), W2.name(), anon.name(), E.name()) == ("/W", "/W_1", "/_2", "/E")
    assert (sub.name(), sub2.name(), V.name()) == ("/enc/", "/enc_1/", "/enc/V")
    assert pc.parameters_list() == [W, W2, anon, V]
    assert pc.lookup_parameters_list() == [E]
    assert sub.parameters_list() == [V]
    assert pc.parameter_count() == 12 + 12 + 5 + 20 + 2
    assert W.shape() == (3, 4) and E.shape() == (10, 2)


def test_builder_parameters_live_in_a_subcollection():
    pc = dy.ParameterCollection(seed=0)
    lstm = dy.LSTMBuilder(2, 3, 4, pc)
    assert lstm.param_collection().name() == "/vanilla-lstm-builder/"
    assert [p.name() for p in lstm.get_parameters()[1]] == [
        "/vanilla-lstm-builder/layer1/W_x", "/vanilla-lstm-builder/layer1/W_h", "/vanilla-lstm-builder/layer1/b"]
    assert pc.parameter_count() == (16 * 3 + 16 * 4 + 16) + (16 * 4 + 16 * 4 + 16)


@pytest.mark.parametrize("init, check", [
    (2.5, lambda a: np.all(a == 2.5)),
    ("uniform", lambda a: np.abs(a).max() <= 0.1 and np.abs(a).max() > 0.09),
    ("normal", lambda a: abs(a.mean() - 1.0) < 0.01 and abs(a.std() - 0.1) < 0.01),
    ("glorot", lambda a: np.abs(a).max() <= 0.1 * np.sqrt(6 / 600)),
    ("he", lambda a: abs(a.var() - 2 / 300) < 0.1 * 2 / 300),
    (np.arange(300 * 300, dtype=np.float32).reshape(300, 300), lambda a: a[1, 2] == 302),
    (dy.NormalInitializer(0.0, 4.0), lambda a: abs(a.std() - 2.0) < 0.05),
])
def test_initializers(init, check):
    pc = dy.ParameterCollection(seed=0)
    p = pc.add_parameters((300, 300), init=init, scale=0.1, mean=1.0, std=0.1)
    assert check(p.as_array())


def test_identity_and_lookup_default_init():
    pc = dy.ParameterCollection(seed=0)
    np.testing.assert_array_equal(pc.add_parameters((4, 4), init="identity").as_array(), np.eye(4))
    E = pc.add_lookup_parameters((1000, 12))
    bound = np.sqrt(3 / 12)
    assert np.abs(E.as_array()).max() <= bound and np.abs(E.as_array()).max() > 0.95 * bound


def test_parameters_behave_like_arrays_and_set_value_checks_shape():
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((2, 3), init=1.0)
    b = pc.add_parameters(2, init=0.5)
    h = jnp.ones(3)
    np.testing.assert_allclose(W @ h + b, [3.5, 3.5])
    np.testing.assert_allclose(jnp.tanh(W.expr()), np.tanh(np.ones((2, 3))))
    W.set_value(np.full((2, 3), 2.0))
    np.testing.assert_allclose(W.as_array(), 2.0)
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(3, 2\)"):
        W.set_value(np.zeros((3, 2)))


def test_lookup_rows_batches_and_init():
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((5, 3))
    table = np.arange(15, dtype=np.float32).reshape(5, 3)
    E.init_from_array(table)
    np.testing.assert_array_equal(E[2], table[2])
    np.testing.assert_array_equal(E.batch([4, 0, 4]), table[[4, 0, 4]])
    E.init_row(1, [9.0, 9.0, 9.0])
    np.testing.assert_array_equal(E.as_array()[1], 9.0)
    with pytest.raises(IndexError, match="out of range.*5 rows"):
        E[5]
    with pytest.raises(TypeError, match="integers"):
        E.batch([0.5])
    with pytest.raises(ValueError, match=r"rows of .* have shape \(3,\)"):
        E.init_row(0, [1.0, 2.0])


def test_bind_substitutes_values_inside_the_block_only():
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((2,), init=1.0)
    with pc.bind({"/_0": jnp.array([5.0, 6.0])}):
        np.testing.assert_array_equal(W.expr(), [5.0, 6.0])
    np.testing.assert_array_equal(W.expr(), [1.0, 1.0])
    with pytest.raises(ValueError, match="shape"):
        with pc.bind({"/_0": jnp.zeros(3)}):
            pass


def test_bad_dims_and_init_names():
    pc = dy.ParameterCollection(seed=0)
    with pytest.raises(ValueError, match="positive ints"):
        pc.add_parameters((3, 0))
    with pytest.raises(TypeError):
        pc.add_parameters("3")
    with pytest.raises(ValueError, match="unknown init 'xavier'.*'glorot'"):
        pc.add_parameters(3, init="xavier")
    with pytest.raises(ValueError, match="square"):
        pc.add_parameters((2, 3), init="identity")
    with pytest.raises(TypeError, match="floating"):
        dy.ParameterCollection(seed=0, dtype=jnp.int32)


def test_glorot_counts_a_convolution_filters_receptive_field_as_dynet_does():
    """DyNet's Glorot bound for 4-d parameters (height, width, in, out: conv2d filters) is
    √(6/((in + out)·height·width)), not the √(3·4/Σdims) of other shapes (7x larger here)."""
    pc = dy.ParameterCollection(seed=0)
    f = pc.add_parameters((5, 5, 32, 64)).as_array()
    bound = np.sqrt(6 / ((32 + 64) * 25))
    assert np.abs(f).max() <= bound and np.abs(f).max() > 0.99 * bound
    v = pc.add_parameters((20, 30, 40)).as_array()  # other shapes keep their rule
    assert np.abs(v).max() <= np.sqrt(9 / 90) and np.abs(v).max() > 0.99 * np.sqrt(9 / 90)


def test_dynets_in_place_methods_on_parameters():
    """scale, clip_inplace, scale_gradient, zero and dim() as DyNet 2.1.2 gives them (values
    checked there: a scaled gradient is what the trainer then applies, lookup rows stay rows)."""
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((2, 3))
    E = pc.add_lookup_parameters((4, 2))
    W.set_value(np.arange(6.0).reshape(2, 3))
    E.init_from_array(np.arange(8.0).reshape(4, 2))
    assert W.dim() == ((2, 3), 1) and E.dim() == ((2, 4), 1) and pc.add_parameters(3).dim() == ((3,), 1)
    assert pc.add_lookup_parameters((5, 2, 3)).dim() == ((2, 3, 5), 1)  # DyNet 2.1.2: a row's dims, then the rows
    W.scale(2.0)
    np.testing.assert_array_equal(W.as_array(), [[0, 2, 4], [6, 8, 10]])
    W.clip_inplace(1.0, 7.0)
    np.testing.assert_array_equal(W.as_array(), [[1, 2, 4], [6, 7, 7]])
    E.scale(0.5)
    np.testing.assert_array_equal(E.as_array(), np.arange(8.0).reshape(4, 2) / 2)
    dy.renew_cg()
    x = dy.inputVector([1.0, 2.0, 3.0])
    loss = dy.sum_elems(W * x) + dy.sum_elems(E[1]) + dy.sum_elems(dy.lookup(E, 2))
    loss.backward()
    assert E.sparse_grad() is not None  # rows
    W.scale_gradient(3.0)
    E.scale_gradient(-1.0)
    assert E.sparse_grad() is not None  # still rows: the trainer's sparse update applies
    np.testing.assert_array_equal(W.grad_as_array(), [[3, 6, 9], [3, 6, 9]])
    np.testing.assert_array_equal(E.grad_as_array(), [[0, 0], [-1, -1], [-1, -1], [0, 0]])
    dy.SimpleSGDTrainer(pc, 0.1).update()  # global norm 16 > 5: scaled by 5/16
    np.testing.assert_allclose(W.as_array(), [[0.90625, 1.8125, 3.71875], [5.90625, 6.8125, 6.71875]], rtol=1e-6)
    np.testing.assert_allclose(E.as_array(), [[0, 0.5], [1.03125, 1.53125], [2.03125, 2.53125], [3, 3.5]], rtol=1e-6)
    E.zero()
    assert not E.as_array().any()
    with pytest.raises(ValueError, match="left must be <= right"):
        W.clip_inplace(2.0, 1.0)
    with pytest.raises(TypeError, match="s must be a real number"):
        W.scale("2")


def test_builders_answer_to_dynets_spec_from_spec_and_whoami():
    pc = dy.ParameterCollection(seed=0)
    for cls, spec in ((dy.SimpleRNNBuilder, (2, 3, 4)), (dy.GRUBuilder, (2, 3, 4)),
                      (dy.CompactVanillaLSTMBuilder, (2, 3, 4)), (dy.VanillaLSTMBuilder, (2, 3, 4, False, 1.0)),
                      (dy.LSTMBuilder, (2, 3, 4, False, 1.0))):
        b = cls(2, 3, 4, pc)
        assert b.spec == spec and b.whoami() == cls.__name__
        again = cls.from_spec(b.spec, pc)
        assert type(again) is cls and again.spec == spec
    assert dy.VanillaLSTMBuilder(1, 2, 3, pc, ln_lstm=True, forget_bias=0.5).spec == (1, 2, 3, True, 0.5)
    assert dy.LSTMBuilder(1, 2, 3, pc).whoami() == "VanillaLSTMBuilder"
    bi = dy.BiRNNBuilder(1, 2, 4, pc, dy.GRUBuilder)
    assert bi.whoami() == "BiRNNBuilder" and bi.spec == (1, 2, 4, dy.GRUBuilder)
    assert dy.BiRNNBuilder.from_spec(bi.spec + (None,), pc).spec == bi.spec  # DyNet's spec ends with builder_layers
    lstm = dy.VanillaLSTMBuilder(2, 3, 4, pc)
    s = lstm.initial_state_from_raw_vectors([np.ones(4)] * 4)
    np.testing.assert_array_equal(s.output(), np.ones(4))
    lstm.set_dropout_masks(batch_size=8)
    with pytest.raises(TypeError, match="batch_size"):
        lstm.set_dropout_masks(batch_size="8")


def test_making_and_setting_parameters_compiles_nothing():
    """New parameter shapes, set_value and a trainer's zero gradient for a parameter a graph
    did not use compile no XLA kernel (`jnp.asarray` and `jnp.zeros_like` compiled one per
    new shape: a DyNet program's parameters, made before its first graph, cost 7-8 of them)."""
    from dynrnn._trainers import _zeros_like

    from .helpers import count_compiles

    with count_compiles() as compiled:
        pc = dy.ParameterCollection(seed=0)
        W = pc.add_parameters((13, 7))
        E = pc.add_lookup_parameters((11, 5))
        W.set_value(np.ones((13, 7)))
        E.set_value(np.full((11, 5), 2.0))
        zero = _zeros_like(pc.add_parameters((3, 17)).stored_value())
    assert compiled == []
    np.testing.assert_array_equal(W.as_array(), np.ones((13, 7)))
    np.testing.assert_array_equal(E.as_array(), np.full((11, 5), 2.0))
    assert zero.shape == (3, 17) and zero.dtype == W.dtype and not np.any(np.asarray(zero))
