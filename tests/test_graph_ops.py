"""DyNet's less common operations in graph mode (moments, standard deviations, log-sum-exp
and cumulative sums along a dimension, element-wise max/min, gradient scaling, argmax, more
losses, small linear algebra, pooling, dropout variants, aliases, tensor contractions,
one-hot inputs, its LSTM node operations — whose equations, forget bias included, were
compared with DyNet 2.1.2's values): values and DyNet dims
against plain NumPy, gradients against finite differences (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dynrnn as dy

from .helpers import check_graph_case, check_graph_gradient

R = np.random.default_rng(7)
A = R.normal(size=(3, 4)).astype(np.float32)
A2 = R.normal(size=(3, 4)).astype(np.float32)
U = R.normal(size=4).astype(np.float32)
V = R.normal(size=4).astype(np.float32)
UB = R.normal(size=(4, 3)).astype(np.float32)  # DyNet layout: 3 batch elements of a (4,) vector
AB = R.normal(size=(3, 4, 2)).astype(np.float32)  # 2 batch elements of a (3, 4) matrix
M = R.normal(size=(3, 3)).astype(np.float32)
S = (M @ M.T + 3 * np.eye(3)).astype(np.float32)  # positive definite
F6 = R.normal(size=(4, 3)).astype(np.float32)
inp = dy.inputTensor


def _lse(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.exp(a - m).sum(axis))


def _hinge_cols(x, idx, m=1.0):
    """Hinge loss of every column of x with the correct row idx[i] (plain loops)."""
    out = np.zeros(x.shape[1])
    for i in range(x.shape[1]):
        for j in range(x.shape[0]):
            if j != idx[i]:
                out[i] += max(0.0, x[j, i] + m - x[idx[i], i])
    return out


def _circ(u, v, sign):
    n = len(u)
    return np.array([sum(u[j] * v[(i + sign * j) % n] for j in range(n)) for i in range(n)])


# constrained softmax: scores whose softmax passes the first bound (0.61 > 0.4)
CZ = np.array([2.0, 1.0, 0.5, -1.0], np.float32)
CU = np.array([0.4, 0.5, 0.5, 0.5], np.float32)


def _csoftmax(z, u):
    """Martins and Kreutzer's constrained softmax as its fixed point p_i = min(u_i, exp(z_i) / t)
    with Σ p = 1, t found by bisection (not DyNet's rounds of capping)."""
    z, u = np.asarray(z, np.float64), np.asarray(u, np.float64)
    q = np.exp(z - z.max())
    lo, hi = 1e-12, q.sum()  # Σ min(u, q / t) falls as t grows: > 1 at lo (u sums past 1), ≤ 1 at hi
    for _ in range(200):
        t = (lo + hi) / 2
        lo, hi = (t, hi) if np.minimum(u, q / t).sum() > 1 else (lo, t)
    return np.minimum(u, q / hi)


def _kmax(a, k):
    return np.array([row[np.sort(np.argsort(-row)[:k])] for row in a])


X3 = R.normal(size=(2, 3, 4)).astype(np.float32)
B23 = R.normal(size=(2, 3)).astype(np.float32)
Z3 = R.normal(size=3).astype(np.float32)
HID, XD = 3, 2
LX, LH, LC = (R.normal(size=n).astype(np.float32) for n in (XD, HID, HID))
LWX, LWH = R.normal(size=(4 * HID, XD)).astype(np.float32), R.normal(size=(4 * HID, HID)).astype(np.float32)
LB = R.normal(size=4 * HID).astype(np.float32)
MX, MH = np.array([2.0, 0.0], np.float32), np.array([0.0, 2.0, 2.0], np.float32)
GATES = R.uniform(size=4 * HID).astype(np.float32)


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _lstm_gates(x, h):
    """DyNet's VanillaLSTMGates: i, f, o, g blocks; a forget bias of 1 inside."""
    v = LWX @ x + LWH @ h + LB
    v[HID:2 * HID] += 1
    return np.concatenate([_sigmoid(v[:3 * HID]), np.tanh(v[3 * HID:])])


def _ngrams(a, n):
    return np.array([[a[i, j:j + n].sum() for j in range(a.shape[1] - n + 1)] for i in range(a.shape[0])])


# name -> (expression builder, NumPy reference (DyNet layout), DyNet dim)
CASES = {
    "contract3d_1d": (lambda: dy.contract3d_1d(inp(X3), inp(U)), lambda: np.einsum("ijk,k->ij", X3, U), ((2, 3), 1)),
    "contract3d_1d_bias": (lambda: dy.contract3d_1d_bias(inp(X3), inp(U), inp(B23)),
                           lambda: np.einsum("ijk,k->ij", X3, U) + B23, ((2, 3), 1)),
    "contract3d_1d_1d": (lambda: dy.contract3d_1d_1d(inp(X3), inp(U), inp(Z3)),
                         lambda: np.einsum("ijk,k,j->i", X3, U, Z3), ((2,), 1)),
    "contract3d_1d_1d_bias": (lambda: dy.contract3d_1d_1d_bias(inp(X3), inp(U), inp(Z3), inp(B23[:, 0])),
                              lambda: np.einsum("ijk,k,j->i", X3, U, Z3) + B23[:, 0], ((2,), 1)),
    "kmh_ngram": (lambda: dy.kmh_ngram(inp(A), 3), lambda: _ngrams(A, 3), ((3, 2), 1)),
    "one_hot": (lambda: dy.one_hot(5, 2), lambda: np.eye(5)[2], ((5,), 1)),
    "one_hot of a minibatch": (lambda: dy.one_hot(5, [1, 3, 0]), lambda: np.eye(5)[[1, 3, 0]].T, ((5,), 3)),
    "hinge_batch": (lambda: dy.hinge_batch(inp(UB, batched=True), [0, 2, 1], 0.5),
                    lambda: [[_hinge_cols(UB[:, i:i + 1], [v], 0.5)[0] for i, v in enumerate([0, 2, 1])]],
                    ((1,), 3)),
    "vanilla_lstm_gates": (lambda: dy.vanilla_lstm_gates(inp(LX), inp(LH), inp(LWX), inp(LWH), inp(LB)),
                           lambda: _lstm_gates(LX, LH), ((12,), 1)),
    "vanilla_lstm_gates_concat": (lambda: dy.vanilla_lstm_gates_concat([inp(LX[:1]), inp(LX[1:])], inp(LH), inp(LWX),
                                                                       inp(LWH), inp(LB)),
                                  lambda: _lstm_gates(LX, LH), ((12,), 1)),
    "vanilla_lstm_gates_dropout": (lambda: dy.vanilla_lstm_gates_dropout(inp(LX), inp(LH), inp(LWX), inp(LWH), inp(LB),
                                                                         inp(MX), inp(MH)),
                                   lambda: _lstm_gates(LX * MX, LH * MH), ((12,), 1)),
    "vanilla_lstm_c": (lambda: dy.vanilla_lstm_c(inp(LC), inp(GATES)),
                       lambda: GATES[HID:2 * HID] * LC + GATES[:HID] * GATES[3 * HID:], ((3,), 1)),
    "vanilla_lstm_h": (lambda: dy.vanilla_lstm_h(inp(LC), inp(GATES)),
                       lambda: GATES[2 * HID:3 * HID] * np.tanh(LC), ((3,), 1)),
    "moment_elems": (lambda: dy.moment_elems(inp(A), 3), lambda: [(A ** 3).mean()], ((1,), 1)),
    "moment_dim": (lambda: dy.moment_dim(inp(A), [1], 2), lambda: (A ** 2).mean(1), ((3,), 1)),
    "moment_dim n": (lambda: dy.moment_dim(inp(A), [0], 2, n=5), lambda: (A ** 2).sum(0) / 5, ((4,), 1)),
    "moment_dim all": (lambda: dy.moment_dim(inp(A), [0, 1], 1), lambda: [A.mean()], ((1,), 1)),
    "moment_dim with the batch": (lambda: dy.moment_dim(inp(UB, batched=True), [0], 2, b=True),
                                  lambda: [(UB ** 2).mean()], ((1,), 1)),
    "moment_batches": (lambda: dy.moment_batches(inp(UB, batched=True), 2), lambda: (UB ** 2).mean(1), ((4,), 1)),
    "std_elems": (lambda: dy.std_elems(inp(A)), lambda: [A.std()], ((1,), 1)),
    "std_elems per batch element": (lambda: dy.std_elems(inp(UB, batched=True)), lambda: UB.std(0)[None, :],
                                    ((1,), 3)),
    "std_dim": (lambda: dy.std_dim(inp(A), [1]), lambda: A.std(1), ((3,), 1)),
    "std_dim per batch element": (lambda: dy.std_dim(inp(AB, batched=True), [0]), lambda: AB.std(0), ((4,), 2)),
    "std_batches": (lambda: dy.std_batches(inp(UB, batched=True)), lambda: UB.std(1), ((4,), 1)),
    "logsumexp_dim 0": (lambda: dy.logsumexp_dim(inp(A), 0), lambda: _lse(A, 0), ((4,), 1)),
    "logsumexp_dim 1": (lambda: dy.logsumexp_dim(inp(A), 1), lambda: _lse(A, 1), ((3,), 1)),
    # (DyNet 2.1.2 gives 0 for the rows of a tall matrix past its column count)
    "logsumexp_dim 1 of a tall matrix": (lambda: dy.logsumexp_dim(inp(F6), 1), lambda: _lse(F6, 1), ((4,), 1)),
    "logsumexp_dim of a vector": (lambda: dy.logsumexp_dim(inp(U)), lambda: [_lse(U, 0)], ((1,), 1)),
    "cumsum": (lambda: dy.cumsum(inp(A), 1), lambda: A.cumsum(1), ((3, 4), 1)),
    "cumsum of a batch": (lambda: dy.cumsum(inp(UB, batched=True)), lambda: UB.cumsum(0), ((4,), 3)),
    "bmax": (lambda: dy.bmax(inp(U), inp(V)), lambda: np.maximum(U, V), ((4,), 1)),
    "bmin": (lambda: dy.bmin(inp(U), inp(V)), lambda: np.minimum(U, V), ((4,), 1)),
    "scale_gradient": (lambda: dy.scale_gradient(inp(U), 0.5), lambda: U, ((4,), 1)),
    "argmax": (lambda: dy.argmax(inp(U)), lambda: np.eye(4)[U.argmax()], ((4,), 1)),
    "argmax per batch element": (lambda: dy.argmax(inp(UB, batched=True), "straight_through_gradient"),
                                 lambda: np.eye(4)[UB.argmax(0)].T, ((4,), 3)),
    "pairwise_rank_loss": (lambda: dy.pairwise_rank_loss(inp(U), inp(V), 0.5),
                           lambda: np.maximum(0.5 - U + V, 0), ((4,), 1)),
    "poisson_loss": (lambda: dy.poisson_loss(inp(np.array([0.3], np.float32)), 2),
                     lambda: [math.exp(0.3) + math.lgamma(3) - 0.3 * 2], ((1,), 1)),
    "hinge_dim columns": (lambda: dy.hinge_dim(inp(A), [0, 2, 1, 1]), lambda: _hinge_cols(A, [0, 2, 1, 1]),
                          ((4,), 1)),
    "hinge_dim rows": (lambda: dy.hinge_dim(inp(A), [3, 0, 1], d=1, m=0.5),
                       lambda: _hinge_cols(A.T, [3, 0, 1], 0.5), ((3,), 1)),
    "hinge_dim per batch element": (lambda: dy.hinge_dim(inp(AB, batched=True), [[0, 1, 2, 0], [2, 2, 1, 0]]),
                                    lambda: np.stack([_hinge_cols(AB[..., 0], [0, 1, 2, 0]),
                                                      _hinge_cols(AB[..., 1], [2, 2, 1, 0])], 1), ((4,), 2)),
    "trace_of_product": (lambda: dy.trace_of_product(inp(A), inp(A2)), lambda: [np.trace(A @ A2.T)], ((1,), 1)),
    "inverse": (lambda: dy.inverse(inp(S)), lambda: np.linalg.inv(S), ((3, 3), 1)),
    "logdet": (lambda: dy.logdet(inp(S)), lambda: [np.log(np.linalg.det(S))], ((1,), 1)),
    "weight_norm": (lambda: dy.weight_norm(inp(A), inp(np.array([1.5], np.float32))),
                    lambda: 1.5 * A / np.linalg.norm(A), ((3, 4), 1)),
    "circ_conv": (lambda: dy.circ_conv(inp(U), inp(V)), lambda: _circ(U, V, -1), ((4,), 1)),
    "circ_corr": (lambda: dy.circ_corr(inp(U), inp(V)), lambda: _circ(U, V, 1), ((4,), 1)),
    "constrained_softmax": (lambda: dy.constrained_softmax(inp(CZ), inp(CU)), lambda: _csoftmax(CZ, CU), ((4,), 1)),
    "constrained_softmax, loose bounds": (lambda: dy.constrained_softmax(inp(U), inp(np.ones(4, np.float32))),
                                          lambda: np.exp(U) / np.exp(U).sum(), ((4,), 1)),
    "constrained_softmax, every bound but one binds": (
        lambda: dy.constrained_softmax(inp(CZ), inp(np.array([0.1, 0.1, 0.1, 0.9], np.float32))),
        lambda: [0.1, 0.1, 0.1, 0.7], ((4,), 1)),
    "fold_rows": (lambda: dy.fold_rows(inp(F6), 2), lambda: F6[0::2] + F6[1::2], ((2, 3), 1)),
    "fold_rows of a vector": (lambda: dy.fold_rows(inp(U), 4), lambda: [[U.sum()]], ((1, 1), 1)),
    "kmax_pooling rows": (lambda: dy.kmax_pooling(inp(A), 2), lambda: _kmax(A, 2), ((3, 2), 1)),
    "kmax_pooling columns": (lambda: dy.kmax_pooling(inp(A), 2, 0), lambda: _kmax(A.T, 2).T, ((2, 4), 1)),
    "strided_select": (lambda: dy.strided_select(inp(A), [1, 2], [1, 0], [3, 4]), lambda: A[1:3, 0:4:2],
                       ((2, 2), 1)),
    "strided_select of batch elements": (lambda: dy.strided_select(inp(UB, batched=True), [2, 2], [0, 0], [4, 3]),
                                         lambda: UB[0:4:2, 0:3:2], ((2,), 2)),
    "pick_range": (lambda: dy.pick_range(inp(U), 1, 3), lambda: U[1:3], ((2,), 1)),
    "inputMatrix": (lambda: dy.inputMatrix([1, 2, 3, 4, 5, 6], (2, 3)), lambda: [[1, 3, 5], [2, 4, 6]], ((2, 3), 1)),
    "zeroes": (lambda: dy.zeroes((2, 3), batch_size=2), lambda: np.zeros((2, 3, 2)), ((2, 3), 2)),
    # DyNet's softmax losses take a column (n, 1) of scores as the vector: W * h of an h
    # reshaped to (d, 1), as its mnist_dynet_minibatch.py makes
    "pickneglogsoftmax of a column": (lambda: dy.pickneglogsoftmax(inp(U[:, None]), 2),
                                      lambda: [_lse(U, 0) - U[2]], ((1,), 1)),
    "pickneglogsoftmax_batch of columns": (lambda: dy.pickneglogsoftmax_batch(inp(UB[:, None, :], batched=True),
                                                                              [0, 2, 1]),
                                           lambda: [[_lse(UB[:, i], 0) - UB[v, i] for i, v in enumerate([0, 2, 1])]],
                                           ((1,), 3)),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("batched", [True, False], ids=["autobatch", "sequential"])
def test_values_and_dims_match_numpy(name, batched):
    check_graph_case(*CASES[name], autobatch=batched)


# name -> a function of one expression (the input the gradient is checked for) and its input
GRADIENTS = {
    "contract3d_1d_1d, d/dz": (lambda z: dy.contract3d_1d_1d(inp(X3.astype(np.float64)), inp(U.astype(np.float64)), z),
                               Z3),
    "contract3d_1d_bias, d/dy": (lambda y: dy.contract3d_1d_bias(inp(X3.astype(np.float64)), y,
                                                                 inp(B23.astype(np.float64))), U),
    "kmh_ngram": (lambda x: dy.kmh_ngram(x, 2), A),
    "vanilla_lstm_gates, d/dWh": (lambda w: dy.vanilla_lstm_gates_dropout(
        *(inp(a.astype(np.float64)) for a in (LX, LH, LWX)), w, inp(LB.astype(np.float64)),
        inp(MX.astype(np.float64)), inp(MH.astype(np.float64))), LWH),
    "vanilla_lstm_c, d/dgates": (lambda g: dy.vanilla_lstm_c(inp(LC.astype(np.float64)), g), GATES),
    "vanilla_lstm_h, d/dc": (lambda c: dy.vanilla_lstm_h(c, inp(GATES.astype(np.float64))), LC),
    "moment_dim": (lambda x: dy.moment_dim(x, [1], 3), A),
    "moment_dim with the batch": (lambda x: dy.moment_dim(x, [0], 2, b=True, n=7), AB),
    "std_elems": (lambda x: dy.std_elems(x), A),
    "std_dim": (lambda x: dy.std_dim(x, [0]), A),
    "std_batches": (lambda x: dy.std_batches(x), AB),
    "logsumexp_dim": (lambda x: dy.logsumexp_dim(x, 1), A),
    "cumsum": (lambda x: dy.cumsum(x, 1), A),
    "bmax": (lambda x: dy.bmax(x, dy.inputTensor(A2.astype(np.float64))), A),
    "pairwise_rank_loss": (lambda x: dy.pairwise_rank_loss(x, dy.inputTensor(A2.astype(np.float64)), 0.7), A),
    "poisson_loss": (lambda x: dy.poisson_loss(x, 3), np.array([0.4])),
    "hinge_dim": (lambda x: dy.hinge_dim(x, [0, 2, 1, 1], m=2.0), A),
    "hinge_dim per batch element": (lambda x: dy.hinge_dim(x, [[0, 1, 2, 0], [2, 2, 1, 0]], m=2.0), AB),
    "trace_of_product": (lambda x: dy.trace_of_product(x, dy.inputTensor(A2.astype(np.float64))), A),
    "inverse": (lambda x: dy.inverse(x), S),
    "logdet": (lambda x: dy.logdet(x), S),
    "weight_norm": (lambda x: dy.weight_norm(x, dy.inputTensor(np.array([1.5]))), A),
    "circ_conv": (lambda x: dy.circ_conv(x, dy.inputTensor(V.astype(np.float64))), U),
    "circ_corr": (lambda x: dy.circ_corr(dy.inputTensor(V.astype(np.float64)), x), U),
    "constrained_softmax, scores": (lambda x: dy.constrained_softmax(x, dy.inputTensor(CU.astype(np.float64))), CZ),
    "constrained_softmax, bounds": (lambda x: dy.constrained_softmax(dy.inputTensor(CZ.astype(np.float64)), x), CU),
    "fold_rows": (lambda x: dy.fold_rows(x, 2), F6),
    "kmax_pooling": (lambda x: dy.kmax_pooling(x, 2), A),
    "pickneglogsoftmax_batch of columns": (lambda x: dy.pickneglogsoftmax_batch(x, [0, 2]), AB[:, :1, :]),
}


@pytest.mark.parametrize("name", list(GRADIENTS))
def test_gradients_match_finite_differences(name, x64):
    """d(c · f(x))/dx by backward() against central differences of the graph's own value,
    in float64."""
    f, x0 = GRADIENTS[name]
    check_graph_gradient(name, f, x0, batched=np.ndim(x0) == 3)


def test_scale_gradient_and_argmax_gradients_follow_dynet():
    dy.renew_cg()
    x = dy.inputTensor(U)
    dy.sum_elems(dy.scale_gradient(x, -0.25)).backward(full=True)
    np.testing.assert_allclose(x.gradient(), np.full(4, -0.25))
    for mode, want in (("zero_gradient", np.zeros(4)), ("straight_through_gradient", np.ones(4))):
        dy.renew_cg()
        x = dy.inputTensor(U)
        dy.sum_elems(dy.cmult(dy.argmax(x, mode), dy.inputTensor(np.ones(4, np.float32)))).backward(full=True)
        np.testing.assert_allclose(x.gradient(), want)


@pytest.mark.parametrize("name", ["round", "ceil", "floor"])
def test_rounding_takes_dynets_gradient_mode(name):
    """DyNet's `round(x, gradient_mode)`, `ceil`, `floor`: the rounded value; a zero gradient
    by default, the identity's with "straight_through_gradient" (DyNet's positional spelling
    `dy.round(x, "straight_through_gradient")` included)."""
    ref = {"round": np.round, "ceil": np.ceil, "floor": np.floor}[name]
    c = R.normal(size=(3, 4))
    for mode, want in (("zero_gradient", np.zeros_like(A)), ("straight_through_gradient", c)):
        dy.renew_cg()
        x = dy.inputTensor(A * 3)
        y = getattr(dy, name)(x, mode)
        assert y.dim() == ((3, 4), 1)
        np.testing.assert_allclose(y.npvalue(), ref(A * 3))
        dy.sum_elems(dy.cmult(y, dy.inputTensor(c))).backward(full=True)
        np.testing.assert_allclose(x.gradient(), want, rtol=1e-6)
    dy.renew_cg()
    np.testing.assert_allclose(getattr(dy, name)(dy.inputTensor(A)).npvalue(), ref(A))
    with pytest.raises(ValueError, match=f"dy.{name}: gradient_mode must be 'zero_gradient' or "
                                         f"'straight_through_gradient'; given 'identity'"):
        getattr(dy, name)(dy.inputTensor(A), "identity")


def test_dropout_dim_and_dropout_batch_share_their_masks_as_dynet_does():
    dy.set_random_seed(3)
    dy.renew_cg()
    x = dy.inputTensor(np.ones((20, 30, 6), np.float32), batched=True)  # dims (20, 30), batch 6
    rows = dy.dropout_dim(x, 1, 0.5).npvalue()  # a mask shared along dimension 1: whole rows
    assert set(np.unique(rows)) <= {0.0, 2.0}
    assert np.all(rows == rows[:, :1, :])  # the same along dimension 1
    assert len({rows[:, 0, b].tobytes() for b in range(6)}) == 6  # but drawn per batch element
    whole = dy.dropout_batch(x, 0.5).npvalue()
    assert all(len(np.unique(whole[..., b])) == 1 for b in range(6))  # whole batch elements
    assert {float(whole[0, 0, b]) for b in range(6)} == {0.0, 2.0}
    with pytest.raises(ValueError, match="rate"):
        dy.dropout_dim(x, 0, 1.5)


def test_random_gumbel_has_the_gumbel_mean_and_variance():
    dy.set_random_seed(0)
    dy.renew_cg()
    g = dy.random_gumbel((4000,)).npvalue()
    assert abs(g.mean() - np.euler_gamma) < 0.06 and abs(g.var() - np.pi ** 2 / 6) < 0.2


def test_bad_arguments_say_what_was_expected():
    dy.renew_cg()
    a = dy.inputTensor(A)
    cases = [
        (lambda: dy.moment_dim(a, [2], 2), "d must be distinct dimensions of dims"),
        (lambda: dy.moment_elems(a, 0), "r must be an int"),
        (lambda: dy.hinge_dim(a, [0, 1]), "indices must be 4 ints in 0..2"),
        (lambda: dy.hinge_dim(dy.inputTensor(U), [0]), "expected a matrix"),
        (lambda: dy.inverse(a), "square matrix"),
        (lambda: dy.poisson_loss(a, 1), "one element"),
        (lambda: dy.poisson_loss(dy.inputTensor(np.ones(1)), -1), "count"),
        (lambda: dy.fold_rows(a, 2), "nrows must divide"),
        (lambda: dy.kmax_pooling(a, 5), "k must be an int in 1..4"),
        (lambda: dy.argmax(a), "expected a vector"),
        (lambda: dy.argmax(dy.inputTensor(U), "soft"), "gradient_mode"),
        (lambda: dy.bmax(a, dy.inputTensor(U)), "dims must match"),
        (lambda: dy.constrained_softmax(a, a), "expected two vectors"),
        (lambda: dy.constrained_softmax(dy.inputTensor(U), dy.inputTensor(np.ones(3))), "dims must match"),
        (lambda: dy.strided_select(a, [1, 1, 1, 1], [], []), "at most 3 entries"),
        (lambda: dy.inputMatrix([1, 2, 3], (2, 2)), "expected 4 values"),
        (lambda: dy.contract3d_1d(a, dy.inputTensor(U)), "x must be a rank-3 tensor"),
        (lambda: dy.contract3d_1d_1d(dy.inputTensor(X3), dy.inputTensor(U), dy.inputTensor(U)),
         r"the vectors must have dims \[\(4,\), \(3,\)\]"),
        (lambda: dy.contract3d_1d_bias(dy.inputTensor(X3), dy.inputTensor(U), dy.inputTensor(U)), r"output's dims"),
        (lambda: dy.kmh_ngram(a, 5), "n in 1..L"),
        (lambda: dy.one_hot(5, 5), "in 0..d-1"),
        (lambda: dy.hinge_batch(dy.inputTensor(UB, batched=True), [0, 1]), "one index per batch element"),
        (lambda: dy.vanilla_lstm_gates(dy.inputTensor(LX), dy.inputTensor(LH), dy.inputTensor(LWH),
                                       dy.inputTensor(LWH), dy.inputTensor(LB)), r"Wx \(4n, d\)"),
        (lambda: dy.vanilla_lstm_gates(*(dy.inputTensor(v) for v in (LX, LH, LWX, LWH, LB)), weightnoise_std=0.1),
         "weightnoise_std is not supported"),
        (lambda: dy.vanilla_lstm_c(dy.inputTensor(LC), dy.inputTensor(LC)), r"gates \(4n,\)"),
        (lambda: dy.pickneglogsoftmax(a, 1), r"x must be a vector \(n,\) or a column \(n, 1\) of scores; given "
                                             r"dims \(3, 4\)"),
        (lambda: dy.pickneglogsoftmax_batch(dy.inputTensor(AB, batched=True), [0, 1]), r"given dims \(3, 4\)"),
    ]
    for call, text in cases:
        with pytest.raises(ValueError, match=text):
            call()
