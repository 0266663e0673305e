"""DyNet's expression vocabulary against NumPy, on one vector and on a batch (B, d), and
under jax.grad; DyNet's `*` on Parameters; and DyNet's tutorial code run unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

B, D = 3, 5


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


# (name, dynrnn call, NumPy reference), each taking x (a vector or a batch) and y like it
UNARY = [
    ("tanh", dy.tanh, np.tanh),
    ("logistic", dy.logistic, np_sigmoid),
    ("rectify", dy.rectify, lambda x: np.maximum(x, 0)),
    ("elu", dy.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    ("selu", dy.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    ("softmax", dy.softmax, np_softmax),
    ("log_softmax", dy.log_softmax, lambda x: np.log(np_softmax(x))),
    ("exp", dy.exp, np.exp),
    ("log", lambda x: dy.log(dy.exp(x)), lambda x: x),
    ("square", dy.square, np.square),
    ("sqrt", lambda x: dy.sqrt(dy.abs(x) + 1), lambda x: np.sqrt(np.abs(x) + 1)),
    ("abs", lambda x: dy.abs(x) * x, lambda x: np.abs(x) * x),
    ("sum_elems", dy.sum_elems, lambda x: x.sum(-1)),
    ("mean_elems", dy.mean_elems, lambda x: x.mean(-1)),
    ("max_dim", dy.max_dim, lambda x: x.max(-1)),
    ("pick", lambda x: dy.pick(x, 2), lambda x: x[..., 2]),
    ("pickneglogsoftmax", lambda x: dy.pickneglogsoftmax(x, 1), lambda x: -np.log(np_softmax(x))[..., 1]),
    ("hinge", lambda x: dy.hinge(x, 3, 0.5),
     lambda x: (np.maximum(0, 0.5 - x[..., 3:4] + x) * (np.arange(D) != 3)).sum(-1)),
    ("log_softmax restrict", lambda x: dy.log_softmax(x, restrict=[0, 2])[..., jnp.array([0, 2])],
     lambda x: np.log(np_softmax(x[..., [0, 2]]))),
]
BINARY = [
    ("cmult", dy.cmult, lambda x, y: x * y),
    ("cdiv", lambda x, y: dy.cdiv(x, dy.abs(y) + 1), lambda x, y: x / (np.abs(y) + 1)),
    ("dot_product", dy.dot_product, lambda x, y: (x * y).sum(-1)),
    ("squared_distance", dy.squared_distance, lambda x, y: ((x - y) ** 2).sum(-1)),
    ("l1_distance", dy.l1_distance, lambda x, y: np.abs(x - y).sum(-1)),
    ("binary_log_loss", lambda x, y: dy.binary_log_loss(dy.logistic(x), dy.logistic(y)),
     lambda x, y: -(np_sigmoid(y) * np.log(np_sigmoid(x)) + (1 - np_sigmoid(y)) * np.log(1 - np_sigmoid(x))).sum(-1)),
    ("concatenate", lambda x, y: dy.concatenate([x, y]), lambda x, y: np.concatenate([x, y], -1)),
    ("concatenate_cols", lambda x, y: dy.concatenate_cols([x, y]), lambda x, y: np.stack([x, y], -1)),
    ("esum", lambda x, y: dy.esum([x, y, x]), lambda x, y: 2 * x + y),
    ("average", lambda x, y: dy.average([x, y]), lambda x, y: (x + y) / 2),
    ("emax", lambda x, y: dy.emax([x, y]), np.maximum),
]


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("name, f, ref", UNARY, ids=[u[0] for u in UNARY])
def test_unary_against_numpy_and_differentiable(name, f, ref, batched, rng):
    x = rng.normal(size=(B, D) if batched else (D,)).astype(np.float32)
    np.testing.assert_allclose(f(jnp.asarray(x)), ref(x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    g = jax.grad(lambda x: jnp.sum(f(x)))(jnp.asarray(x))
    assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))
    if batched:  # a batch is its examples, one by one
        np.testing.assert_allclose(jax.vmap(f)(jnp.asarray(x)), f(jnp.asarray(x)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("name, f, ref", BINARY, ids=[b[0] for b in BINARY])
def test_binary_against_numpy_and_differentiable(name, f, ref, batched, rng):
    shape = (B, D) if batched else (D,)
    x, y = (rng.normal(size=shape).astype(np.float32) for _ in range(2))
    np.testing.assert_allclose(f(jnp.asarray(x), jnp.asarray(y)), ref(x.astype(np.float64), y.astype(np.float64)),
                               rtol=1e-5, atol=1e-5)
    gx, gy = jax.grad(lambda x, y: jnp.sum(f(x, y)), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(y))
    assert gx.shape == shape and bool(jnp.all(jnp.isfinite(gx)))


def test_batch_functions(rng):
    x = rng.normal(size=(B, D)).astype(np.float32)
    ids = np.array([4, 0, 2])
    np.testing.assert_allclose(dy.pick_batch(x, ids), x[np.arange(B), ids])
    np.testing.assert_allclose(dy.pick(x, ids), x[np.arange(B), ids])
    np.testing.assert_allclose(dy.pickneglogsoftmax_batch(x, ids), -np.log(np_softmax(x))[np.arange(B), ids], rtol=1e-5)
    np.testing.assert_allclose(dy.hinge(x, ids), [(np.maximum(0, 1 - x[b, i] + x[b]) * (np.arange(D) != i)).sum()
                                                  for b, i in enumerate(ids)], rtol=1e-5)
    np.testing.assert_allclose(dy.sum_batches(dy.pickneglogsoftmax_batch(x, ids)),
                               -np.log(np_softmax(x))[np.arange(B), ids].sum(), rtol=1e-5)
    np.testing.assert_allclose(dy.sum_batches(x), x.sum(0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"one class id per example, shape \(3,\).*given ids of shape \(2,\)"):
        dy.pickneglogsoftmax_batch(x, ids[:2])
    with pytest.raises(TypeError, match="class ids must be integers; given dtype float32"):
        dy.pickneglogsoftmax_batch(x, ids.astype(np.float32))


def test_inputs_and_shapes(rng):
    arr = rng.normal(size=(D, B)).astype(np.float32)
    np.testing.assert_array_equal(dy.inputTensor(arr, batched=True), arr.T)  # DyNet's batch is the last axis
    np.testing.assert_array_equal(dy.inputTensor(arr), arr)
    assert dy.inputVector([1, 2, 3]).dtype == jnp.float32
    assert dy.vecInput(4).shape == (4,) and float(dy.scalarInput(2.5)) == 2.5
    assert dy.zeros(3).shape == (3,) and dy.ones(3, batch_size=2).shape == (2, 3)
    assert dy.random_normal(4, key=jax.random.key(0)).shape == (4,)
    np.testing.assert_array_equal(dy.reshape(jnp.arange(6.0), (2, 3)), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(dy.transpose(jnp.ones((2, 3))), np.ones((3, 2)))
    np.testing.assert_array_equal(dy.select_rows(jnp.arange(6.0).reshape(3, 2), [2, 0]), [[4, 5], [0, 1]])
    assert dy.renew_cg() is None


def test_parameters_lookup_and_affine_transform(rng):
    pc = dy.ParameterCollection(seed=0)
    W1, W2 = pc.add_parameters((3, 4)), pc.add_parameters((3, 2))
    b = pc.add_parameters(3)
    E = pc.add_lookup_parameters((6, 4))
    x1, x2 = E[2], rng.normal(size=2).astype(np.float32)
    want = b.as_array() + W1.as_array() @ E.as_array()[2] + W2.as_array() @ x2
    np.testing.assert_allclose(dy.affine_transform([b, W1, x1, W2, x2]), want, rtol=1e-5)
    X1, X2 = dy.lookup_batch(E, [2, 5]), rng.normal(size=(2, 2)).astype(np.float32)
    got = dy.affine_transform([b, W1, X1, W2, X2])
    np.testing.assert_allclose(got[1], b.as_array() + W1.as_array() @ E.as_array()[5] + W2.as_array() @ X2[1],
                               rtol=1e-5)
    assert dy.parameter(W1) is W1
    np.testing.assert_array_equal(dy.lookup(E, 3), E.as_array()[3])
    np.testing.assert_array_equal(dy.lookup(E), E.as_array()[0])  # DyNet's default index
    g = jax.grad(lambda v: (pc.bind(v).__enter__(), jnp.sum(dy.const_parameter(W1) * 2) +
                            jnp.sum(dy.lookup(E, 1, update=False)))[1])(pc.parameter_values())
    assert float(jnp.abs(g[W1.name()]).sum()) == 0 and float(jnp.abs(g[E.name()]).sum()) == 0


def test_dynet_star_on_parameters_is_the_matrix_product_and_arrays_keep_numpy_meaning():
    pc = dy.ParameterCollection(seed=0)
    R = pc.add_parameters((3, 4))
    h = jnp.arange(4.0)
    np.testing.assert_allclose(R * h, R.as_array() @ np.arange(4.0), rtol=1e-6)  # DyNet: R*h is R·h
    hs = jnp.ones((2, 4))
    np.testing.assert_allclose(R * hs, np.ones((2, 4)) @ R.as_array().T, rtol=1e-6)  # a batch of vectors
    h3 = jnp.asarray(np.arange(24.0).reshape(2, 3, 4), jnp.float32)  # any leading batch axes
    np.testing.assert_allclose(R * h3, np.asarray(h3) @ R.as_array().T, rtol=1e-6)
    np.testing.assert_allclose(R * 2.0, 2 * R.as_array())
    np.testing.assert_allclose(2.0 * R, 2 * R.as_array())
    a = jnp.ones((3, 4))
    assert (a * jnp.ones(4)).shape == (3, 4)  # plain arrays broadcast, as in NumPy
    v = pc.add_parameters(4)
    with pytest.raises(TypeError, match=r"matrix product.*dy.cmult"):
        v * h
    with pytest.raises(TypeError, match="parameter on the left"):
        [1.0, 2.0, 3.0, 4.0] * R


@pytest.mark.parametrize("lead", [(1,), (1, 1), (3,), (2, 3)])
def test_dynet_star_and_affine_transform_for_any_leading_axes_values_and_gradients(lead, rng):
    pc = dy.ParameterCollection(seed=0)
    R, b = pc.add_parameters((5, 4)), pc.add_parameters(5)
    x = rng.normal(size=lead + (4,)).astype(np.float32)
    want = x @ R.as_array().T
    np.testing.assert_allclose(R * jnp.asarray(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dy.affine_transform([b, R, jnp.asarray(x)]), want + b.as_array(), rtol=1e-5, atol=1e-6)

    def loss(values):
        with pc.bind(values):
            return jnp.sum(jnp.sin(R * jnp.asarray(x)))

    g = jax.grad(loss)(pc.parameter_values())
    want_g = (np.cos(want).reshape(-1, 5).T @ x.reshape(-1, 4))  # d/dR of Σ sin(R·x)
    np.testing.assert_allclose(g[R.name()], want_g, rtol=1e-4, atol=1e-5)


def test_dynet_star_on_one_row_is_a_matrix_vector_product_not_a_transposed_one():
    # XLA:CPU lowers `x @ W.T` for a single row x (1, n) to a multiply-and-reduce over W's
    # transpose, about 3x slower inside a decoding loop than the matrix-vector `W @ x`.
    pc = dy.ParameterCollection(seed=0)
    R = pc.add_parameters((5, 4))
    for one_row in (jnp.ones((1, 4)), jnp.ones((1, 1, 4))):
        values = pc.parameter_values()  # parameters enter traced code bound to arguments
        jaxpr = str(jax.make_jaxpr(lambda v, x: _bound(pc, v, lambda: R * x))(values, one_row))
        assert "transpose" not in jaxpr, jaxpr
        jaxpr = str(jax.make_jaxpr(lambda v, x: _bound(pc, v, lambda: dy.affine_transform([jnp.zeros(5), R, x])))(
            values, one_row))
        assert "transpose" not in jaxpr, jaxpr


def test_dropout_noise_and_managed_keys():
    x = jnp.ones((200, 50))
    d = dy.dropout(x, 0.3, key=jax.random.key(0))
    assert abs(float(jnp.mean(d == 0)) - 0.3) < 0.02
    np.testing.assert_allclose(np.unique(np.asarray(d)), [0.0, 1 / 0.7], rtol=1e-6)
    bd = dy.block_dropout(x, 0.5, key=jax.random.key(1))
    rows = np.asarray(bd).max(-1)
    assert set(np.round(np.unique(rows), 5)) == {0.0, 2.0} and np.all(np.asarray(bd).min(-1) == rows)
    dy.set_random_seed(7)
    a = dy.noise(x, 0.1)
    dy.set_random_seed(7)
    np.testing.assert_array_equal(a, dy.noise(x, 0.1))  # seeded
    assert not np.array_equal(a, dy.noise(x, 0.1))  # fresh draw each call
    assert dy.dropout(x, 0.0) is x or bool(jnp.all(dy.dropout(x, 0.0) == x))


def test_dropout_inside_a_training_step_draws_fresh_masks():
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((4, 4), init=1.0)
    def loss(x):
        return jnp.sum(dy.dropout(W * x, 0.5))
    vg = dy.value_and_grad(loss, pc)
    values = {float(vg(jnp.ones(4))[0]) for _ in range(6)}
    assert len(values) > 1


# DyNet's tutorial code itself (do_one_sentence, verbatim, in examples/char_lm.py) is trained
# end to end in tests/test_char_lm.py.


def _bound(pc, values, fn):
    with pc.bind(values):
        return fn()
