"""Graph mode: DyNet's expressions, checked against plain NumPy (values and DyNet dims),
finite differences (gradients), the unbatched schedule (autobatching) and DyNet's rules
(graph lifetime, scalar backward, `*` as a matrix product)."""

from __future__ import annotations

import weakref

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dynrnn as dy

from . import references as ref
from .helpers import count_compiles, dy_config, layer_params, randomize


def autobatch(flag: bool):
    return dy_config(autobatch=flag)


def _softmax(v, axis=0):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


R = np.random.default_rng(42)
A = R.normal(size=(3, 4)).astype(np.float32)
B = R.normal(size=(4, 2)).astype(np.float32)
U = R.normal(size=4).astype(np.float32)
V = R.normal(size=4).astype(np.float32)
W3 = R.normal(size=3).astype(np.float32)
P = (np.abs(R.normal(size=4)) + 0.1).astype(np.float32)
UB = R.normal(size=(4, 3)).astype(np.float32)  # DyNet layout: 3 batch elements of a (4,) vector
inp = dy.inputTensor

# name -> (expression builder, NumPy reference (DyNet layout), DyNet dim)
CASES = {
    "matrix*vector": (lambda: inp(A) * inp(U), lambda: A @ U, ((3,), 1)),
    "matrix*matrix": (lambda: inp(A) * inp(B), lambda: A @ B, ((3, 2), 1)),
    "vector*row (outer)": (lambda: inp(W3) * dy.transpose(inp(U)), lambda: np.outer(W3, U), ((3, 4), 1)),
    "transpose of a vector": (lambda: dy.transpose(inp(U)), lambda: U[None, :], ((1, 4), 1)),
    "transpose of a matrix": (lambda: dy.transpose(inp(A)), lambda: A.T, ((4, 3), 1)),
    "scale": (lambda: inp(U) * 2.5, lambda: U * 2.5, ((4,), 1)),
    "rscale": (lambda: 2.5 * inp(U), lambda: U * 2.5, ((4,), 1)),
    "add": (lambda: inp(U) + inp(V), lambda: U + V, ((4,), 1)),
    "sub": (lambda: inp(U) - inp(V), lambda: U - V, ((4,), 1)),
    "number minus": (lambda: 1.0 - inp(U), lambda: 1.0 - U, ((4,), 1)),
    "divide": (lambda: inp(U) / inp(P), lambda: U / P, ((4,), 1)),
    "neg": (lambda: -inp(U), lambda: -U, ((4,), 1)),
    "cmult": (lambda: dy.cmult(inp(U), inp(V)), lambda: U * V, ((4,), 1)),
    "cdiv": (lambda: dy.cdiv(inp(U), inp(P)), lambda: U / P, ((4,), 1)),
    "colwise_add": (lambda: dy.colwise_add(inp(A), inp(W3)), lambda: A + W3[:, None], ((3, 4), 1)),
    "affine_transform": (lambda: dy.affine_transform([inp(W3), inp(A), inp(U)]), lambda: W3 + A @ U, ((3,), 1)),
    "tanh": (lambda: dy.tanh(inp(U)), lambda: np.tanh(U), ((4,), 1)),
    "logistic": (lambda: dy.logistic(inp(U)), lambda: 1 / (1 + np.exp(-U)), ((4,), 1)),
    "rectify": (lambda: dy.rectify(inp(U)), lambda: np.maximum(U, 0), ((4,), 1)),
    "exp": (lambda: dy.exp(inp(U)), lambda: np.exp(U), ((4,), 1)),
    "log": (lambda: dy.log(inp(P)), lambda: np.log(P), ((4,), 1)),
    "sqrt": (lambda: dy.sqrt(inp(P)), lambda: np.sqrt(P), ((4,), 1)),
    "square": (lambda: dy.square(inp(U)), lambda: U ** 2, ((4,), 1)),
    "cube": (lambda: dy.cube(inp(U)), lambda: U ** 3, ((4,), 1)),
    "abs": (lambda: dy.abs(inp(U)), lambda: np.abs(U), ((4,), 1)),
    "softmax": (lambda: dy.softmax(inp(U)), lambda: _softmax(U), ((4,), 1)),
    "softmax of a matrix (columns)": (lambda: dy.softmax(inp(A)), lambda: _softmax(A, 0), ((3, 4), 1)),
    "log_softmax": (lambda: dy.log_softmax(inp(U)), lambda: np.log(_softmax(U)), ((4,), 1)),
    "log_softmax restricted": (lambda: dy.log_softmax(inp(U), [0, 2]),
                               lambda: np.where([1, 0, 1, 0], U - np.log(np.exp(U[[0, 2]]).sum()), -np.inf),
                               ((4,), 1)),
    "sum_elems": (lambda: dy.sum_elems(inp(A)), lambda: np.array([A.sum()]), ((1,), 1)),
    "mean_elems": (lambda: dy.mean_elems(inp(U)), lambda: np.array([U.mean()]), ((1,), 1)),
    "squared_norm": (lambda: dy.squared_norm(inp(U)), lambda: np.array([(U ** 2).sum()]), ((1,), 1)),
    "l2_norm": (lambda: dy.l2_norm(inp(U)), lambda: np.array([np.sqrt((U ** 2).sum())]), ((1,), 1)),
    "dot_product": (lambda: dy.dot_product(inp(U), inp(V)), lambda: np.array([U @ V]), ((1,), 1)),
    "sum_dim 1": (lambda: dy.sum_dim(inp(A), [1]), lambda: A.sum(1), ((3,), 1)),
    "max_dim": (lambda: dy.max_dim(inp(A), 0), lambda: A.max(0), ((4,), 1)),
    "esum": (lambda: dy.esum([inp(U), inp(V), inp(P)]), lambda: U + V + P, ((4,), 1)),
    "average": (lambda: dy.average([inp(U), inp(V)]), lambda: (U + V) / 2, ((4,), 1)),
    "emax": (lambda: dy.emax([inp(U), inp(V)]), lambda: np.maximum(U, V), ((4,), 1)),
    "logsumexp": (lambda: dy.logsumexp([inp(U), inp(V)]), lambda: np.logaddexp(U, V), ((4,), 1)),
    "concatenate": (lambda: dy.concatenate([inp(U), inp(W3)]), lambda: np.concatenate([U, W3]), ((7,), 1)),
    "concatenate_cols": (lambda: dy.concatenate_cols([inp(U), inp(V)]), lambda: np.stack([U, V], 1), ((4, 2), 1)),
    "reshape (column-major)": (lambda: dy.reshape(inp(A), (4, 3)), lambda: A.reshape((4, 3), order="F"),
                               ((4, 3), 1)),
    "pick": (lambda: dy.pick(inp(U), 2), lambda: U[2:3], ((1,), 1)),
    "indexing": (lambda: inp(U)[1], lambda: U[1:2], ((1,), 1)),
    "pickrange": (lambda: dy.pickrange(inp(U), 1, 3), lambda: U[1:3], ((2,), 1)),
    "select_rows": (lambda: dy.select_rows(inp(A), [2, 0]), lambda: A[[2, 0]], ((2, 4), 1)),
    "select_cols": (lambda: dy.select_cols(inp(A), [3, 1]), lambda: A[:, [3, 1]], ((3, 2), 1)),
    "pickneglogsoftmax": (lambda: dy.pickneglogsoftmax(inp(U), 1), lambda: -np.log(_softmax(U))[1:2], ((1,), 1)),
    "squared_distance": (lambda: dy.squared_distance(inp(U), inp(V)), lambda: np.array([((U - V) ** 2).sum()]),
                         ((1,), 1)),
    "l1_distance": (lambda: dy.l1_distance(inp(U), inp(V)), lambda: np.array([np.abs(U - V).sum()]), ((1,), 1)),
    "binary_log_loss": (lambda: dy.binary_log_loss(dy.logistic(inp(U)), dy.logistic(inp(V))),
                        lambda: np.array([-(_sig(V) * np.log(_sig(U)) + (1 - _sig(V)) * np.log(1 - _sig(U))).sum()]),
                        ((1,), 1)),
    "hinge": (lambda: dy.hinge(inp(U), 0, 1.0),
              lambda: np.array([np.maximum(0, 1.0 - U[0] + U)[1:].sum()]), ((1,), 1)),
    "layer_norm": (lambda: dy.layer_norm(inp(U), inp(P), inp(V)),
                   lambda: P * (U - U.mean()) / np.sqrt(((U - U.mean()) ** 2).mean() + 1e-8) + V, ((4,), 1)),
    # minibatches: DyNet's layout puts the batch last
    "batched input": (lambda: inp(UB, batched=True), lambda: UB, ((4,), 3)),
    "batch + vector broadcast": (lambda: inp(UB, batched=True) + inp(V), lambda: UB + V[:, None], ((4,), 3)),
    "matrix * batch": (lambda: inp(A[:, :4]) * inp(UB, batched=True), lambda: A @ UB, ((3,), 3)),
    "sum_batches": (lambda: dy.sum_batches(inp(UB, batched=True)), lambda: UB.sum(1), ((4,), 1)),
    "pick per batch element": (lambda: dy.pick(inp(UB, batched=True), [0, 3, 1]),
                               lambda: UB[[0, 3, 1], [0, 1, 2]][None, :], ((1,), 3)),
    "pickneglogsoftmax_batch": (lambda: dy.pickneglogsoftmax_batch(inp(UB, batched=True), [0, 3, 1]),
                                lambda: -np.log(_softmax(UB, 0))[[0, 3, 1], [0, 1, 2]][None, :], ((1,), 3)),
    "pick_batch_elem": (lambda: dy.pick_batch_elem(inp(UB, batched=True), 2), lambda: UB[:, 2], ((4,), 1)),
    "pick_batch_elems": (lambda: dy.pick_batch_elems(inp(UB, batched=True), [2, 0]), lambda: UB[:, [2, 0]],
                         ((4,), 2)),
    "concatenate_to_batch": (lambda: dy.concatenate_to_batch([inp(U), inp(V)]), lambda: np.stack([U, V], 1),
                             ((4,), 2)),
    "sum_elems of a batch": (lambda: dy.sum_elems(inp(UB, batched=True)), lambda: UB.sum(0)[None, :], ((1,), 3)),
    "reshape to a batch": (lambda: dy.reshape(inp(U), (2,), batch_size=2), lambda: U.reshape((2, 2), order="F"),
                           ((2,), 2)),
}


def _sig(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("batched", [True, False], ids=["autobatch", "sequential"])
def test_expression_value_and_dim_match_numpy(name, batched):
    build, reference, dim = CASES[name]
    with autobatch(batched):
        dy.renew_cg()
        e = build()
        assert isinstance(e, dy.Expression)
        assert e.dim() == dim
        np.testing.assert_allclose(e.npvalue(), reference(), rtol=1e-5, atol=1e-6)


def test_value_forms_follow_dynet():
    dy.renew_cg()
    s = dy.scalarInput(3.5)
    assert s.dim() == ((1,), 1) and s.value() == 3.5 and s.scalar_value() == 3.5
    v = dy.inputVector([1.0, 2.0])
    assert v.value() == [1.0, 2.0] and v.vec_value() == [1.0, 2.0]
    m = dy.inputTensor(A)
    assert isinstance(m.value(), np.ndarray) and m.value().shape == (3, 4)
    assert m.vec_value() == [float(x) for x in A.ravel(order="F")]  # column-major, as DyNet
    b = dy.inputTensor(UB, batched=True)
    assert b.npvalue().shape == (4, 3)  # batch last
    assert np.asarray(b).shape == (3, 4)  # dynrnn's layout for NumPy/JAX: batch first
    np.testing.assert_allclose(np.asarray(jax.numpy.tanh(jax.numpy.asarray(dy.inputTensor(U)))), np.tanh(U), rtol=1e-6)


def test_values_read_out_are_the_callers_own_arrays():
    # DyNet's npvalue() and a matrix's value() are fresh, writable arrays: its DDPG example
    # adds exploration noise in place (`action = actor(obs).npvalue(); action += noise`), and
    # changing a read-out must not change the graph's value.
    dy.renew_cg()
    W = dy.inputTensor(A)
    y = dy.tanh(W)
    yb = dy.tanh(dy.inputTensor(UB, batched=True))
    for e in (y, yb):
        a = e.npvalue()
        a += 1.0
        np.testing.assert_allclose(a - 1.0, e.npvalue(), rtol=1e-6)
    m = y.value()
    m[0, 0] = 99.0
    assert y.npvalue()[0, 0] != 99.0
    c = np.asarray(y, copy=True)
    c[0, 0] = 99.0
    assert y.npvalue()[0, 0] != 99.0


def test_an_expression_kept_past_renew_cg_does_not_keep_its_graph():
    """DyNet's treelstm example keeps each tree node's h on the tree across graphs: the
    kept expression is stale, and it no longer holds the nodes it was computed from (nor
    their values), which had kept every graph of an epoch alive."""
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((3, 3))
    for renew in (dy.renew_cg, dy.graph.end_graph):
        dy.renew_cg()
        mid = dy.tanh(W * dy.inputVector([1.0, 2.0, 3.0]))
        kept = dy.logistic(mid)
        kept.value()
        gone = weakref.ref(mid)
        del mid
        assert gone() is not None  # the graph and `kept` hold it
        renew()
        assert gone() is None  # freed by reference counting, no cycle collection needed
        with pytest.raises(dy.GraphError, match="stale"):
            kept.value()
    dy.renew_cg()  # the same for nodes removed by cg_revert()
    x = dy.inputVector([1.0, 2.0, 3.0])
    dy.cg_checkpoint()
    mid = dy.tanh(W * x)
    kept = dy.logistic(mid)
    kept.value()
    gone = weakref.ref(mid)
    del mid
    dy.cg_revert()
    assert gone() is None
    with pytest.raises(dy.GraphError, match="cg_revert"):
        kept.value()
    dy.renew_cg()


def test_graph_misuse_errors_say_what_happened():
    dy.renew_cg()
    x = dy.inputVector([1.0, 2.0])
    dy.renew_cg()
    with pytest.raises(dy.GraphError, match="renew_cg"):
        x.value()
    with pytest.raises(dy.GraphError, match="stale"):
        dy.tanh(x)
    y = dy.inputVector([1.0, 2.0])
    with pytest.raises(ValueError, match="scalar"):
        y.backward()
    with pytest.raises(ValueError, match="matrix product"):
        dy.inputTensor(A) * dy.inputVector([1.0, 2.0])
    np.testing.assert_allclose((y + np.ones(2, np.float32)).npvalue(), [2.0, 3.0])  # an array is a constant
    with pytest.raises(TypeError, match="Expression"):
        y + "a"
    with pytest.raises(ValueError, match="batch sizes"):
        dy.inputTensor(UB, batched=True) + dy.inputTensor(np.ones((4, 2)), batched=True)
    with pytest.raises(ValueError, match="dims"):
        dy.cmult(y, dy.inputVector([1.0, 2.0, 3.0]))


# -- gradients --------------------------------------------------------------------------------

def _model(dtype):
    pc = dy.ParameterCollection(seed=3, dtype=dtype)
    W = pc.add_parameters((5, 4))
    b = pc.add_parameters((5,))
    E = pc.add_lookup_parameters((7, 4))
    lstm = dy.LSTMBuilder(2, 4, 5, pc)
    return pc, W, b, E, lstm


def _loss(W, b, E, lstm, words, tags):
    dy.renew_cg()
    s = lstm.initial_state()
    errs = []
    for w, t in zip(words, tags):
        s = s.add_input(E[w])
        h = dy.tanh(W * dy.inputTensor(np.linspace(-1, 1, 4)) + b)
        r = dy.affine_transform([b, W, E[w]]) + dy.cmult(h, s.output())
        errs.append(dy.pickneglogsoftmax(r, t))
    return dy.esum(errs)


def test_backward_matches_finite_differences(x64):
    import jax.numpy as jnp
    pc, W, b, E, lstm = _model(jnp.float64)
    words, tags = [1, 4, 2, 6], [0, 3, 3, 1]
    loss = _loss(W, b, E, lstm, words, tags)
    loss.backward()
    params = [W, b, E] + [p for layer in lstm.layer_parameters() for p in layer]
    grads = {p.name(): np.asarray(p.grad()) for p in params}
    rng = np.random.default_rng(0)
    for p in params:
        base = p.as_array()
        for _ in range(3):
            idx = tuple(rng.integers(0, d) for d in base.shape)
            eps = 1e-6
            plus, minus = base.copy(), base.copy()
            plus[idx] += eps
            minus[idx] -= eps
            p.set_value(plus)
            fp = _loss(W, b, E, lstm, words, tags).scalar_value()
            p.set_value(minus)
            fm = _loss(W, b, E, lstm, words, tags).scalar_value()
            p.set_value(base)
            np.testing.assert_allclose(grads[p.name()][idx], (fp - fm) / (2 * eps), rtol=1e-5, atol=1e-8,
                                       err_msg=f"{p.name()}{idx}")
        p.clear_grad()


def test_graph_lstm_equals_array_lstm_and_numpy(rng):
    pc = dy.ParameterCollection(seed=0)
    lstm = dy.LSTMBuilder(2, 3, 4, pc)
    randomize(lstm, rng)
    xs = rng.normal(size=(6, 3)).astype(np.float32)
    expected = ref.run_stack(ref.vanilla_lstm, layer_params(lstm), xs.astype(np.float64))[0]
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            outs = lstm.initial_state().transduce([dy.inputTensor(x) for x in xs])
            np.testing.assert_allclose(np.stack([o.npvalue() for o in outs]), expected, rtol=1e-5, atol=1e-6)
            s = lstm.initial_state()
            for x in xs[:3]:
                s = s.add_input(dy.inputTensor(x))
            np.testing.assert_allclose(s.output().npvalue(), expected[2], rtol=1e-5, atol=1e-6)
            assert len(s.s()) == 4 and s.prev().prev().prev().prev() is not None


def test_backward_equals_value_and_grad_of_the_array_program():
    """The same loss written for the compiled path (arrays, jax.grad) and as a DyNet graph."""
    pc, W, b, E, lstm = _model(np.float32)
    words, tags = [1, 4, 2, 6, 0], [0, 3, 3, 1, 2]

    def array_loss(words, tags):
        s = lstm.initial_state()
        total = 0.0
        for w, t in zip(words, tags):
            s = s.add_input(E[w])
            h = dy.tanh(W * dy.inputTensor(np.linspace(-1, 1, 4)) + b)
            r = dy.affine_transform([b, W, E[w]]) + dy.cmult(h, s.output())
            total = total + dy.pickneglogsoftmax(r, t)
        return total

    value, grads = dy.value_and_grad(array_loss, pc)(words, tags)
    loss = _loss(W, b, E, lstm, words, tags)
    np.testing.assert_allclose(loss.scalar_value(), float(value), rtol=1e-5)
    loss.backward()
    for p in pc.all_parameters():
        np.testing.assert_allclose(np.asarray(p.grad()), np.asarray(grads[p.name()]), rtol=2e-4, atol=1e-6,
                                   err_msg=p.name())
        p.clear_grad()


def _esums_of_minibatched_losses(W, groups, labels):
    """In a new graph: a parameter holding W, and per group of (5, 3) inputs (a minibatch of
    3 per column), the esum of pickneglogsoftmax_batch(W x, labels) over the group."""
    dy.renew_cg()
    Wp = dy.ParameterCollection().add_parameters(W.shape)
    Wp.set_value(W)
    return Wp, [dy.esum([dy.pickneglogsoftmax_batch(Wp * dy.inputTensor(x, batched=True), labels) for x in xs])
                for xs in groups]


@pytest.mark.parametrize("terms", [3, 4, 5, 7, 9])
def test_an_autobatched_esum_of_minibatched_losses_keeps_the_batch(terms):
    """`esum` of many minibatched losses (DyNet's rnnlm-batch, one loss per time step) is
    padded to a bucketed argument count with batch-1 zeros and gathers its terms from one
    stack: its value must keep the terms' batch, not broadcast the padding against it (it
    once gave dims ((1,), 3) a (3, 1, 3) value, and sum_batches three times the loss)."""
    rng = np.random.default_rng(terms)
    W = rng.normal(size=(6, 5)).astype(np.float32)
    xs = [rng.normal(size=(5, 3)).astype(np.float32) for _ in range(terms)]
    labels = [1, 4, 2]
    logits = [W @ x for x in xs]  # (6, 3): one column per batch element
    want = sum(-(lg[labels, range(3)] - np.log(np.exp(lg).sum(0))) for lg in logits)
    for flag in (True, False):
        with autobatch(flag):
            _, (total,) = _esums_of_minibatched_losses(W, [xs], labels)
            assert total.dim() == ((1,), 3)
            np.testing.assert_allclose(total.npvalue(), want.reshape(1, 3), rtol=1e-5)
            np.testing.assert_allclose(dy.sum_batches(total).scalar_value(), want.sum(), rtol=1e-5)


@pytest.mark.parametrize("terms", [4, 5, 7, 9])
@pytest.mark.parametrize("name", ["esum", "emax", "logsumexp"])
def test_nary_reductions_of_minibatched_rows_reduce_per_batch_element(name, terms):
    """esum / emax / logsumexp of k minibatched terms, rows of one stack (padded with
    batch-1 zeros, the terms themselves, or -inf): one reduction over the stacked rows,
    mapped over the batch; values and gradient equal NumPy's, autobatched or not."""
    rng = np.random.default_rng(terms)
    W = rng.normal(size=(4, 5)).astype(np.float32)
    xs = [rng.normal(size=(5, 3)).astype(np.float32) for _ in range(terms)]
    c = rng.normal(size=(4, 3)).astype(np.float32)
    ys = np.stack([W @ x for x in xs])  # (k, 4, 3): DyNet's layout, batch last
    m = ys.max(0)
    want = {"esum": ys.sum(0), "emax": m, "logsumexp": m + np.log(np.exp(ys - m).sum(0))}[name]
    dwant_dy = {"esum": np.ones_like(ys), "emax": (ys == m).astype(np.float32),
                "logsumexp": np.exp(ys - want)}[name] * c  # d(Σ c · reduce)/dy_k
    dW = sum(dwant_dy[k] @ xs[k].T for k in range(terms))
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            Wp = dy.ParameterCollection().add_parameters(W.shape)
            Wp.set_value(W)
            out = getattr(dy, name)([Wp * dy.inputTensor(x, batched=True) for x in xs])
            assert out.dim() == ((4,), 3)
            np.testing.assert_allclose(out.npvalue(), want, rtol=1e-5, atol=1e-6)
            loss = dy.sum_batches(dy.dot_product(out, dy.inputTensor(c, batched=True)))
            loss.backward()
            np.testing.assert_allclose(np.asarray(Wp.grad()), dW, rtol=1e-4, atol=1e-5)


def test_esums_of_minibatched_losses_share_one_kernel_whatever_their_padding():
    """An esum of k minibatched losses is padded to 16 arguments with 16 - k batch-1 zeros
    (DyNet's rnnlm-batch: one loss per time step, a new k per minibatch); its packed kernel
    is keyed by the argument count, not by which arguments are padding, so k = 9..16 compile
    it once (it compiled a kernel and a VJP per k, ~0.9 s, nearly every update), with the
    loss and gradient of NumPy's sums."""
    rng = np.random.default_rng(8)
    W = rng.normal(size=(6, 5)).astype(np.float32)
    labels = [1, 4, 2]

    def run(k):
        xs = [rng.normal(size=(5, 3)).astype(np.float32) for _ in range(k)]
        Wp, (total,) = _esums_of_minibatched_losses(W, [xs], labels)
        loss = dy.sum_batches(total)
        value = loss.scalar_value()
        loss.backward()
        grad = np.zeros_like(W)  # d/dW of Σ -log softmax(W x)[label], per column
        want = 0.0
        for x in xs:
            lg = W @ x
            p = np.exp(lg - lg.max(0)) / np.exp(lg - lg.max(0)).sum(0)
            want += -np.log(p[labels, range(3)]).sum()
            p[labels, range(3)] -= 1
            grad += p @ x.T
        np.testing.assert_allclose(value, want, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(Wp.grad()), grad, rtol=1e-4, atol=1e-5)

    with autobatch(True), dy_config(replay="never"):
        run(9)
        with count_compiles(all_threads=True) as compiled:
            for k in (10, 13, 11, 16, 12, 15):
                run(k)
    assert not [c for c in compiled if "packed" in c], compiled


def test_esums_of_minibatched_losses_run_together_keep_the_batch():
    """Several such `esum`s over one stack (a minibatch of sentences, one esum each) run as
    one "packs" call: the same values and gradient as one by one."""
    rng = np.random.default_rng(5)
    W = rng.normal(size=(6, 5)).astype(np.float32)
    groups = [[rng.normal(size=(5, 3)).astype(np.float32) for _ in range(n)] for n in (3, 5, 3, 6)]
    results = []
    for flag in (True, False):
        with autobatch(flag):
            Wp, sums = _esums_of_minibatched_losses(W, groups, [1, 4, 2])
            total = dy.sum_batches(dy.esum(sums))
            values = [s.npvalue() for s in sums]
            assert all(v.shape == (1, 3) for v in values)
            total.backward()
            results.append((total.scalar_value(), values, np.asarray(Wp.grad())))
    (t1, v1, g1), (t2, v2, g2) = results
    np.testing.assert_allclose(t1, t2, rtol=1e-5)
    np.testing.assert_allclose(np.stack(v1), np.stack(v2), rtol=1e-5)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5)


@settings(max_examples=12)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 6)), min_size=1, max_size=5),
       st.integers(0, 2 ** 31 - 1))
def test_autobatched_equals_sequential_on_random_graphs(examples, seed):
    """Many examples of different lengths in one graph: the same loss and the same
    gradients whether same-signature nodes run together or one by one."""
    pc, W, b, E, lstm = _model(np.float32)
    rng = np.random.default_rng(seed)
    results = []
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            losses = []
            for first, n in examples:
                words = [int(w) for w in rng.integers(0, 7, size=n)]
                s = lstm.initial_state()
                for w in [first] + words:
                    s = s.add_input(E[w])
                    losses.append(dy.squared_norm(s.output() + b) * 0.1 + dy.sum_elems(dy.tanh(W * E[w])))
            total = dy.esum(losses)
            v = total.scalar_value()
            total.backward()
            grads = {p.name(): np.asarray(p.grad()) for p in pc.all_parameters() if p.grad() is not None}
            for p in pc.all_parameters():
                p.clear_grad()
            results.append((v, grads))
        rng = np.random.default_rng(seed)
    (v1, g1), (v2, g2) = results
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    assert g1.keys() == g2.keys()
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-4, atol=1e-5, err_msg=k)


_DAG_OPS = (
    lambda W, a, b: dy.tanh(a),
    lambda W, a, b: dy.logistic(b),
    lambda W, a, b: dy.cmult(a, b),
    lambda W, a, b: a + b,
    lambda W, a, b: W * a,
    lambda W, a, b: dy.concatenate([a, b])[1:4],
    lambda W, a, b: dy.nobackprop(a) - b,
)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_DAG_OPS) - 1), st.integers(0, 99), st.integers(0, 99)),
                min_size=1, max_size=12), st.integers(0, 2 ** 31 - 1))
def test_autobatched_equals_sequential_on_random_dags_with_shared_nodes(ops, seed):
    """Random DAGs in which nodes take any earlier node as an argument, the same one more
    than once, and repeat one another (the same operation on the same arguments): the same
    values and gradients whether same-signature nodes run together or one by one."""
    rng = np.random.default_rng(seed)
    W0 = rng.normal(size=(3, 3)).astype(np.float32) * 0.5
    x0 = rng.normal(size=(2, 3)).astype(np.float32)
    results = []
    for flag in (True, False):
        with autobatch(flag), dy_config(replay="never"):
            pc = dy.ParameterCollection(seed=0)
            W = pc.add_parameters((3, 3))
            W.set_value(W0)
            dy.renew_cg()
            pool = [W * dy.inputTensor(x0[0]), dy.inputTensor(x0[1])]
            for op, i, j in ops:
                pool.append(_DAG_OPS[op](W, pool[i % len(pool)], pool[j % len(pool)]))
            total = dy.sum_elems(dy.esum(pool[2:]))
            v = total.scalar_value()
            total.backward()
            results.append((v, W.grad_as_array()))
    (v1, g1), (v2, g2) = results
    np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-5)


def test_gradient_of_a_state_slot_is_its_gradient():
    """`s.output().gradient()` after backward, for a state computed alone (its slots held as
    plain arrays) and inside a chain (rows of a stacked scan), in both schedules."""
    pc, W, b, E, lstm = _model(np.float32)
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            s1 = lstm.initial_state().add_input(E[1])
            loss = dy.sum_elems(s1.output() * 2.0) + dy.sum_elems(dy.cmult(s1.s()[0], s1.s()[0]))
            loss.backward()
            np.testing.assert_allclose(s1.output().gradient(), np.full(5, 2.0), rtol=1e-6)
            c = s1.s()[0].npvalue()
            np.testing.assert_allclose(s1.s()[0].gradient(), 2 * c, rtol=1e-5, atol=1e-7)
            dy.renew_cg()
            s = lstm.initial_state().add_inputs([E[1], E[2], E[3]])
            loss = dy.sum_elems(s[-1].output()) + dy.sum_elems(s[0].output() * 3.0)
            loss.backward()
            h0 = s[0].output().gradient()
            assert h0.shape == (5,) and np.abs(h0).min() > 0  # 3 plus what flows back from the later steps
            np.testing.assert_allclose(s[-1].output().gradient(), np.ones(5), rtol=1e-6)
        for p in pc.all_parameters():
            p.clear_grad()


def test_chains_longer_than_a_segment_are_one_stack_for_what_takes_their_steps(rng):
    """Chains of 37 and 21 steps run as scans of 16 and 4 steps (`SEGMENT_LONG`,
    `SEGMENT_SHORT`) and their segments are put into one stack, so the per-step groups that
    take the outputs gather them from one stack. Values, parameter gradients and the
    `gradient()` of steps in every segment (what flows back through the later steps
    included) equal those of the node-by-node schedule."""
    from dynrnn.graph import _schedule as S

    assert (S.SEGMENT_LONG, S.SEGMENT_SHORT) == (16, 4)  # the lengths below span 3 and 2 segments
    pc = dy.ParameterCollection(seed=2)
    E = pc.add_lookup_parameters((9, 4))
    fwd, bwd = dy.LSTMBuilder(1, 4, 3, pc), dy.LSTMBuilder(1, 4, 3, pc)
    Wo = pc.add_parameters((5, 3))
    a, b = [int(w) for w in rng.integers(0, 9, size=37)], [int(w) for w in rng.integers(0, 9, size=21)]
    results = []
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            f = fwd.initial_state().transduce([E[w] for w in a])
            r = bwd.initial_state().transduce([E[w] for w in b])
            loss = dy.esum([dy.pickneglogsoftmax(Wo * h, w % 5) for h, w in zip(f + r, a + b)])
            value = loss.scalar_value()
            kinds = [la.kind for la in loss.graph.launches]
            loss.backward()
            steps = [np.asarray(h.gradient()) for h in (f[0], f[16], f[33], f[36], r[0], r[20])]
            results.append((value, {p.name(): np.asarray(p.grad()) for p in pc.all_parameters()}, steps, kinds))
            for p in pc.all_parameters():
                p.clear_grad()
    (v1, g1, s1, kinds), (v2, g2, s2, _) = results
    # segments of 16 steps from step 0 and 16 (both chains) and 32 (the first chain's last 5
    # steps, more than SEGMENT_SHORT), each put into the one stack the Wo· group takes from
    assert kinds.count("chain") == 3 and kinds.count("put") == 3, kinds
    assert all(np.abs(x).max() > 0 for x in s1)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-4, atol=1e-6, err_msg=k)
    for x, y in zip(s1, s2):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    # one builder's chain (every fixed argument shared: the op's own scan runs it)
    steps = []
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            f = fwd.initial_state().transduce([E[w] for w in a[:20]])
            loss = dy.esum([dy.pickneglogsoftmax(Wo * h, w % 5) for h, w in zip(f, a)])
            loss.backward()
            steps.append([np.asarray(f[k].gradient()) for k in (0, 15, 16, 19)])
            for p in pc.all_parameters():
                p.clear_grad()
    for x, y in zip(*steps):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_steps_of_a_chain_read_one_by_one_equal_the_node_by_node_values(rng):
    """DyNet's eager tagging: a BiLSTM over a sentence, then one value per word, each read
    as soon as it is built. The steps are rows of the chains' stack, cut a chunk
    (`ROWS_CHUNK`) at a time: every row — first, middle, and those of a last, partial chunk —
    is its own step's, as in the node-by-node schedule."""
    from dynrnn.graph import _kernels as K

    pc = dy.ParameterCollection(seed=4)
    E = pc.add_lookup_parameters((9, 4))
    fwd, bwd = dy.LSTMBuilder(1, 4, 3, pc), dy.LSTMBuilder(1, 4, 3, pc)
    Wo = pc.add_parameters((5, 6))
    words = [int(w) for w in rng.integers(0, 9, size=3 * K.ROWS_CHUNK + 3)]
    got = []
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            xs = [E[w] for w in words]
            f = fwd.initial_state().transduce(xs)
            b = bwd.initial_state().transduce(xs[::-1])[::-1]
            order = rng.permutation(len(words)) if flag else range(len(words))
            vals = {}
            for i in order:
                vals[int(i)] = dy.softmax(Wo * dy.concatenate([f[i], b[i]])).npvalue()
            got.append([vals[i] for i in range(len(words))])
    for i, (x, y) in enumerate(zip(*got)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7, err_msg=f"word {i}")


def test_sampling_step_by_step_equals_the_node_by_node_values():
    """DyNet's rnnlm sampling: each step adds a lookup, an LSTM step, its output, R·, + bias
    and a softmax, and reads the softmax (which picks the next input): a few nodes of distinct
    signatures per forward, run in creation order without the agenda, as node by node."""
    pc = dy.ParameterCollection(seed=5)
    E = pc.add_lookup_parameters((7, 4))
    lstm = dy.LSTMBuilder(2, 4, 5, pc)
    R, bias = pc.add_parameters((7, 5)), pc.add_parameters(7)
    got = []
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            state, w, dists = lstm.initial_state(), 1, []
            for _ in range(9):
                state = state.add_input(E[w])
                dist = dy.softmax(bias + R * state.output()).npvalue()
                dists.append(dist)
                w = int(np.argmax(dist))
            got.append(dists)
    for i, (x, y) in enumerate(zip(*got)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7, err_msg=f"step {i}")


def test_outside_training_a_step_read_by_step_runs_as_one_call_with_the_same_values_and_gradients():
    """Outside a training loop (two graphs in a row without backward()), the few nodes of
    distinct signatures a sampling step adds (lookup, LSTM step, its output, R·, + bias,
    softmax) run as one call (`_schedule._run_sequence`), compiled once for every step of
    that structure from its second sighting on; the values equal the node-by-node
    reference, and a backward() of the graph afterwards (each node recorded as its own
    launch) gives the reference gradients."""
    from dynrnn.graph import _kernels as K
    from dynrnn.graph import _schedule as S
    pc = dy.ParameterCollection(seed=6)
    E = pc.add_lookup_parameters((7, 4))
    lstm = dy.LSTMBuilder(2, 4, 5, pc)
    R, bias = pc.add_parameters((7, 5)), pc.add_parameters(7)

    def sample(steps=9):
        dy.renew_cg()
        state, w, dists, picks = lstm.initial_state(), 1, [], []
        for _ in range(steps):
            state = state.add_input(E[w])
            dist = dy.softmax(bias + R * state.output())
            dists.append(dist.npvalue())
            w = int(np.argmax(dists[-1]))
            picks.append(-dy.log(dy.pick(dist, (w + 1) % 7)))
        return dists, dy.esum(picks)

    got = {}
    for flag in (True, False):
        with autobatch(flag), dy_config(replay="never"):
            sample(2)
            sample(2)  # two graphs without backward(): not a training loop
            K.sequence_kernel.cache_clear()
            S._SEQUENCES.clear()  # (what other tests' graphs sighted)
            dists, loss = sample()
            runs = K.sequence_kernel.cache_info()
            kinds = [la.kind for la in loss.graph.launches]
            loss.backward()
            got[flag] = dists, {p.name(): np.array(p.grad_as_array()) for p in pc.parameters_list()}, runs, kinds
            E_grad = np.array(E.grad_as_array())
            for p in pc.all_parameters():
                p.clear_grad()
            got[flag] += (E_grad,)
    (d1, g1, runs, kinds, e1), (d2, g2, none, _, e2) = got[True], got[False]
    assert none.misses == 0  # (the reference runs node by node)
    assert runs.misses == 1 and runs.hits >= 6, runs  # steps 2-9 share one structure, compiled at step 3
    assert set(kinds) == {"node"}, kinds
    for i, (x, y) in enumerate(zip(d1, d2)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7, err_msg=f"step {i}")
    for k in g2:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-4, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(e1, e2, rtol=1e-4, atol=1e-6)
    assert np.abs(e1).sum() > 0


def test_outside_training_a_long_chain_runs_node_by_node():
    """A chain of more than MAX_SEQUENCE nodes (each taking the one before) is not made one
    call: its function would be unrolled, and compile for as long as it is long. A shorter
    one is, from its second sighting on; both give the node-by-node values."""
    from dynrnn.graph import _kernels as K
    from dynrnn.graph import _schedule as S
    pc = dy.ParameterCollection(seed=2)
    W = pc.add_parameters((3, 3))

    def chain(n):
        dy.renew_cg()
        h = dy.inputVector([0.5, -0.25, 1.0])
        for _ in range(n):
            h = dy.tanh(W * h)  # 2 nodes per layer
        return h.npvalue()

    for n, compiled in ((S.MAX_SEQUENCE // 2 + 1, 0), (S.MAX_SEQUENCE // 4, 1)):
        with autobatch(False), dy_config(replay="never"):
            want = chain(n)
        with dy_config(replay="never"):
            chain(1)
            chain(1)  # two graphs without backward(): not a training loop
            K.sequence_kernel.cache_clear()
            S._SEQUENCES.clear()
            got = [chain(n) for _ in range(3)]
        assert K.sequence_kernel.cache_info().misses == compiled, n
        for x in got:
            np.testing.assert_allclose(x, want, rtol=1e-6)


def test_autobatching_runs_many_examples_in_few_calls():
    pc, W, b, E, lstm = _model(np.float32)
    dy.renew_cg()
    losses = []
    for k in range(8):
        s = lstm.initial_state()
        for w in range(k + 3):
            s = s.add_input(E[w % 7])
            losses.append(dy.pickneglogsoftmax(s.output() + b, w % 5))
    total = dy.esum(losses)
    total.forward()
    # lookups, one scan for all 8 chains, W*h, +b, pickneglogsoftmax, esum
    assert len(total.graph.launches) <= 8, [la.kind for la in total.graph.launches]


def _tagger_loss(pc, E, fwd, bwd, H, Wo, words):
    """bilstmtagger.py's loss for one sentence (tags: word id mod 5)."""
    xs = [E[w] for w in words]
    f = fwd.initial_state().transduce(xs)
    b = bwd.initial_state().transduce(xs[::-1])[::-1]
    return dy.esum([dy.pickneglogsoftmax(Wo * dy.tanh(H * dy.concatenate([x, y])), w % 5)
                    for x, y, w in zip(f, b, words)])


def test_groups_that_feed_one_another_run_as_one_fused_call(rng):
    """The tagger's per-word concatenate, H·, tanh, Wo·, pickneglogsoftmax: five groups whose
    nodes each feed one node of the next run as one call, forward and backward, with every
    node's value and gradient those of the node-by-node schedule."""
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((9, 4))
    fwd, bwd = dy.LSTMBuilder(1, 4, 3, pc), dy.LSTMBuilder(1, 4, 3, pc)
    H, Wo = pc.add_parameters((6, 6)), pc.add_parameters((5, 6))
    words = [int(w) for w in rng.integers(0, 9, size=7)]
    results = []
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            loss = _tagger_loss(pc, E, fwd, bwd, H, Wo, words)
            value = loss.scalar_value()
            kinds = [(la.kind, len(la.key[0]) if la.kind == "fused" else None) for la in loss.graph.launches]
            loss.backward()
            results.append((value, {p.name(): np.asarray(p.grad()) for p in pc.all_parameters()}, kinds))
            for p in pc.all_parameters():
                p.clear_grad()
    (v1, g1, kinds), (v2, g2, _) = results
    # the lookups, both LSTMs as one scan (its initial states and inputs each stacked by a
    # gather), the five per-word groups as one call, the esum
    assert kinds == [("group", None), ("gather", None), ("gather", None), ("chain", None), ("fused", 5),
                     ("packed", None)], kinds
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-4, atol=1e-6, err_msg=k)
    with autobatch(True):  # intermediate values and gradients of a fused call
        dy.renew_cg()
        x = [E[w] for w in words]
        G = pc.add_parameters((6, 8))
        hid = [dy.tanh(G * dy.concatenate([a, a])) for a in x]
        loss = dy.esum([dy.pickneglogsoftmax(Wo * h, w % 5) for h, w in zip(hid, words)])
        loss.backward()
        assert [la.kind for la in loss.graph.launches].count("fused") == 1
        h2 = np.tanh(G.as_array() @ np.concatenate([E.as_array()[words[2]]] * 2))
        np.testing.assert_allclose(hid[2].npvalue(), h2, rtol=1e-5, atol=1e-6)
        z = Wo.as_array() @ h2
        p = np.exp(z - z.max())
        p /= p.sum()
        p[words[2] % 5] -= 1.0
        np.testing.assert_allclose(hid[2].gradient(), Wo.as_array().T @ p, rtol=1e-4, atol=1e-6)
        for q in pc.all_parameters():
            q.clear_grad()


def test_a_node_inside_a_fused_call_used_again_later_gets_both_gradients(rng):
    """A fused call's VJP takes no cotangent for the stages no one outside used; when a node
    of such a stage gains a consumer after the call ran, its cotangent reaches it too."""
    pc = dy.ParameterCollection(seed=0)
    E, G, Wo = pc.add_lookup_parameters((9, 4)), pc.add_parameters((6, 8)), pc.add_parameters((5, 6))
    words = [int(w) for w in rng.integers(0, 9, size=6)]
    results = []
    for flag in (True, False):
        with autobatch(flag):
            dy.renew_cg()
            hid = [dy.tanh(G * dy.concatenate([E[w], E[w]])) for w in words]
            loss = dy.esum([dy.pickneglogsoftmax(Wo * h, w % 5) for h, w in zip(hid, words)])
            loss.value()  # runs the fused call
            if flag:
                assert [la.kind for la in loss.graph.launches].count("fused") == 1
            total = loss + dy.squared_norm(hid[2])
            total.backward()
            results.append(({q.name(): np.asarray(q.grad()) for q in pc.all_parameters()},
                            np.asarray(hid[2].gradient()), total.scalar_value()))
            for q in pc.all_parameters():
                q.clear_grad()
    (g1, d1, v1), (g2, d2, v2) = results
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-4, atol=1e-6, err_msg=k)
    h2 = np.tanh(G.as_array() @ np.concatenate([E.as_array()[words[2]]] * 2))
    z = Wo.as_array() @ h2
    p = np.exp(z - z.max())
    p /= p.sum()
    p[words[2] % 5] -= 1.0
    np.testing.assert_allclose(d1, Wo.as_array().T @ p + 2 * h2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d2, d1, rtol=1e-4, atol=1e-6)


def test_fusing_never_splits_a_group_the_agenda_would_form():
    """A consumer stage is fused only when it holds every pending node of its signature:
    here the tanh group's three H· consumers are not fused with it (the agenda runs the
    logistic first, then all four H· as one group: fused with their sum_elems)."""
    pc = dy.ParameterCollection(seed=0)
    H = pc.add_parameters((3, 3))
    vecs = [np.array([1.0 * i, 2.0, -1.0]) for i in range(4)]
    with autobatch(True):
        dy.renew_cg()
        xs = [dy.inputVector(list(v)) for v in vecs]
        hs = [H * dy.tanh(x) for x in xs[:3]] + [H * dy.logistic(xs[3])]
        loss = dy.esum([dy.sum_elems(h) for h in hs])
        loss.forward()
        launches = loss.graph.launches
        kinds = [la.kind for la in launches]
        fused = [[(sig.op.name, len(la.outputs) // len(la.key[0])) for sig, *_ in la.key[0]]
                 for la in launches if la.kind == "fused"]
    h = H.as_array()
    want = sum(float(np.sum(h @ np.tanh(v))) for v in vecs[:3]) + float(np.sum(h @ (1 / (1 + np.exp(-vecs[3])))))
    np.testing.assert_allclose(loss.scalar_value(), want, rtol=1e-5)
    assert kinds == ["group", "node", "fused", "packed"], kinds  # tanh; logistic; H·, sum_elems; esum
    assert fused == [[("matmul", 4), ("sum_elems", 4)]], fused


# -- training ---------------------------------------------------------------------------------

def test_backward_then_update_trains_and_clears_gradients(rng):
    pc, W, b, E, lstm = _model(np.float32)
    trainer = dy.AdamTrainer(pc, 0.02)
    data = [([int(w) for w in rng.integers(0, 7, size=n)], None) for n in rng.integers(2, 9, size=30)]
    data = [(ws, [w % 5 for w in ws]) for ws, _ in data]
    first = last = 0.0
    for epoch in range(8):
        total = 0.0
        for ws, ts in data:
            loss = _loss(W, b, E, lstm, ws, ts)
            total += loss.scalar_value()
            loss.backward()
            trainer.update()
            assert all(p.grad() is None for p in pc.all_parameters())
        first = total if epoch == 0 else first
        last = total
    assert last < 0.5 * first, (first, last)
    assert trainer.updates == 8 * len(data)


def test_new_lengths_add_no_compilation_after_warm_up(rng):
    pc = dy.ParameterCollection(seed=0)
    lstm = dy.LSTMBuilder(1, 6, 8, pc)
    E = pc.add_lookup_parameters((11, 6))
    Wo = pc.add_parameters((11, 8))
    trainer = dy.SimpleSGDTrainer(pc, 0.1)

    def step(sent):
        dy.renew_cg()
        s = lstm.initial_state()
        errs = []
        for cw, nw in zip(sent, sent[1:]):
            s = s.add_input(E[cw])
            errs.append(dy.pickneglogsoftmax(Wo * s.output(), nw))
        loss = dy.esum(errs)
        loss.scalar_value()
        loss.backward()
        trainer.update()

    # warm-up: lengths up to 50 and a few longer; then 44 new lengths (51..100) compile nothing
    warm = list(range(2, 51)) + [66, 69, 75, 82, 90, 97]
    for n in warm:
        step([int(w) for w in rng.integers(0, 11, size=n)])
    with count_compiles() as compiled:
        for n in range(51, 101):
            if n not in warm:
                step([int(w) for w in rng.integers(0, 11, size=n)])
    assert compiled == []


def test_minibatches_of_sentences_per_graph_compile_nothing_new_after_warm_up(rng):
    """DyNet's autobatching example (rnnlm/lstmlm-auto.py): several sentences per graph,
    each sentence's loss an esum of its words' losses. The sentences' esums (of different
    lengths, padded) run as one call gathering rows of the words' losses, whatever mix of
    lengths a minibatch has; values and gradients equal the node-by-node schedule's."""
    pc = dy.ParameterCollection(seed=0)
    lstm = dy.VanillaLSTMBuilder(1, 6, 8, pc)
    E = pc.add_lookup_parameters((11, 6))
    Wo = pc.add_parameters((11, 8))
    bo = pc.add_parameters(11)

    def minibatch_loss(sents, check_gradients=False):
        dy.renew_cg()
        losses = []
        for sent in sents:
            s, errs = lstm.initial_state(), []
            for cw, nw in zip(sent, sent[1:]):
                s = s.add_input(E[cw])
                errs.append(dy.pickneglogsoftmax(dy.affine_transform([bo, Wo, s.output()]), nw))
            losses.append(dy.esum(errs))
        loss = dy.esum(losses)
        value = loss.scalar_value()
        loss.backward()
        grads = [p.grad_as_array() for p in (Wo, bo, E)]
        for p in (Wo, bo, E):
            p.clear_grad()
        if check_gradients:  # each sentence's loss enters the sum once, its words' losses its own once
            np.testing.assert_allclose([float(np.asarray(x.gradient()).sum()) for x in losses + errs], 1.0)
        return value, grads

    def batch():
        return [[int(w) for w in rng.integers(0, 11, size=n)] for n in rng.integers(12, 31, size=6)]

    minibatch_loss([[int(w) for w in rng.integers(0, 11, size=30)] for _ in range(6)])  # the most words
    for _ in range(8):
        minibatch_loss(batch())
    with count_compiles() as compiled:
        for _ in range(12):
            minibatch_loss(batch())
    # (a chain or packs kernel may still compile for a new number of sentences in a segment
    # or a new size; group kernels — the esums' before, once per pattern of padded
    # positions, 30 in these 12 minibatches — compile no more)
    assert [c for c in compiled if "jit(group" in c] == []
    sents = batch()
    value, grads = minibatch_loss(sents, check_gradients=True)
    dy.config(autobatch=0)
    try:
        ref_value, ref_grads = minibatch_loss(sents)
    finally:
        dy.config(autobatch=1)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for got, want in zip(grads, ref_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_smaller_group_runs_on_a_larger_groups_kernels(rng):
    """After a 40-word sentence, a 12-word one pads its groups to the 40-word one's size
    (within 4x) instead of compiling kernels of its own, forward and backward; the values
    and gradients are those of the sentence alone."""
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((13, 5))
    W = pc.add_parameters((7, 5))

    def loss_of(sent):
        dy.renew_cg()
        loss = dy.esum([dy.pickneglogsoftmax(W * dy.tanh(E[w]), w % 7) for w in sent])
        value = loss.scalar_value()
        loss.backward()
        grads = (W.grad_as_array(), E.grad_as_array())
        for p in (W, E):
            p.clear_grad()
        return value, grads

    loss_of([int(w) for w in rng.integers(0, 13, size=40)])
    short = [int(w) for w in rng.integers(0, 13, size=12)]
    with count_compiles() as compiled:
        value, (gW, gE) = loss_of(short)
    assert compiled == []
    e, w = E.as_array().astype(np.float64), W.as_array().astype(np.float64)
    ref_value, ref_gW, ref_gE = 0.0, np.zeros_like(w), np.zeros_like(e)
    for t in short:  # NumPy: -log softmax(W tanh(E[t]))[t % 7] and its gradients
        h = np.tanh(e[t])
        z = w @ h
        p = np.exp(z - z.max())
        p /= p.sum()
        ref_value -= np.log(p[t % 7])
        dz = p.copy()
        dz[t % 7] -= 1.0
        ref_gW += np.outer(dz, h)
        ref_gE[t] += (w.T @ dz) * (1 - h ** 2)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    np.testing.assert_allclose(gW, ref_gW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gE, ref_gE, rtol=1e-4, atol=1e-6)


# -- DyNet builders that live beside the graph ---------------------------------------------------

def test_fast_lstm_matches_numpy_in_both_modes(rng):
    pc = dy.ParameterCollection(seed=0)
    lstm = dy.FastLSTMBuilder(2, 3, 4, pc)
    assert [p.shape() for p in lstm.get_parameters()[0]] == [(4, 3), (4, 4), (4, 1), (4,), (4, 3), (4, 4), (4, 1),
                                                            (4,), (4, 3), (4, 4), (4,)]
    randomize(lstm, rng)
    xs = rng.normal(size=(5, 3)).astype(np.float32)
    expected = ref.run_stack(ref.fast_lstm, layer_params(lstm), xs.astype(np.float64))[0]
    np.testing.assert_allclose(lstm.initial_state().transduce(xs), expected, rtol=1e-5, atol=1e-6)
    dy.renew_cg()
    outs = lstm.initial_state().transduce([dy.inputTensor(x) for x in xs])
    np.testing.assert_allclose(np.stack([o.npvalue() for o in outs]), expected, rtol=1e-5, atol=1e-6)


def test_softmax_builders_match_numpy(tmp_path, rng):
    pc = dy.ParameterCollection(seed=1)
    rep = rng.normal(size=3).astype(np.float32)
    sm = dy.StandardSoftmaxBuilder(3, 6, pc)
    sm.b.set_value(rng.normal(size=6))
    dy.renew_cg()
    logits = sm.W.as_array() @ rep + sm.b.as_array()
    want = -np.log(_softmax(logits))[4]
    np.testing.assert_allclose(sm.neg_log_softmax(dy.inputTensor(rep), 4).scalar_value(), want, rtol=1e-5)
    np.testing.assert_allclose(sm.neg_log_softmax(dy.inputTensor(rep), 4, update=False).scalar_value(), want,
                               rtol=1e-5)
    # DyNet's cluster file: "CLASS WORD" per line; class 'b' has one word
    (tmp_path / "clusters").write_text("a w0\na w1\nb w2\nc w3\nc w4\nc w5\n")
    words = {f"w{i}": i for i in range(6)}
    cf = dy.ClassFactoredSoftmaxBuilder(3, str(tmp_path / "clusters"), words, pc)
    for p in [cf.r2c, cf.cbias] + [p for p in cf.rc2w + cf.rc2wbias if p is not None]:
        p.set_value(rng.normal(size=p.shape()))
    c_logp = np.log(_softmax(cf.r2c.as_array() @ rep + cf.cbias.as_array()))
    w_logp = np.log(_softmax(cf.rc2w[2].as_array() @ rep + cf.rc2wbias[2].as_array()))
    np.testing.assert_allclose(cf.neg_log_softmax(dy.inputTensor(rep), 4).scalar_value(), -(c_logp[2] + w_logp[1]),
                               rtol=1e-5)
    np.testing.assert_allclose(cf.neg_log_softmax(dy.inputTensor(rep), 2).scalar_value(), -c_logp[1], rtol=1e-5)
    full = cf.full_log_distribution(dy.inputTensor(rep)).npvalue()
    np.testing.assert_allclose(np.exp(full).sum(), 1.0, rtol=1e-5)
    # each word's log probability, as neg_log_softmax gives it (DyNet 2.1.2's own
    # full_log_distribution adds p(w|c), not log p(w|c), to log p(c): not followed)
    np.testing.assert_allclose(full, [-cf.neg_log_softmax(dy.inputTensor(rep), w).scalar_value() for w in range(6)],
                               rtol=1e-5)
    # DyNet's parameter order: the classes' matrix and biases, then per class of more than one
    # word its matrix and its biases
    order = [cf.r2c, cf.cbias, cf.rc2w[0], cf.rc2wbias[0], cf.rc2w[2], cf.rc2wbias[2]]
    assert [p.name() for p in pc.parameters_list()[2:]] == [p.name() for p in order]
    with pytest.raises(KeyError, match="no class"):
        cf.neg_log_softmax(dy.inputTensor(rep), 9)


def test_sparse_input_and_slices_follow_dynet():
    dy.renew_cg()
    x = dy.sparse_inputTensor(([0, 2], [1, 0]), [5.0, 7.0], (3, 2))
    np.testing.assert_array_equal(x.npvalue(), [[0, 5], [0, 0], [7, 0]])
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    np.testing.assert_array_equal(dy.inputTensor(data)[1:, :3, ::2].npvalue(), data[1:, :3, ::2])
    with pytest.raises(TypeError, match="slices"):
        dy.inputTensor(data)[0, 1]
    # one slice more than the dims selects batch elements (batch last, as npvalue() shows it)
    batched = dy.inputTensor(data, batched=True)  # dims (3, 4), batch 5
    for index in [np.s_[:1, :2, :3], np.s_[1:, ::2, ::2], np.s_[:, :, 4:], np.s_[2:3, 1:, :]]:
        got, want = batched[index], data[index]
        np.testing.assert_array_equal(got.npvalue(), want if want.shape[2] > 1 else want[..., 0])
        assert got.dim() == (want.shape[:2], want.shape[2])
    x = dy.inputTensor(data[0])  # batch 1: the batch slice can only keep it
    np.testing.assert_array_equal(x[1:, :2, :].npvalue(), data[0][1:, :2])
    with pytest.raises(ValueError, match="selects nothing"):
        x[:, :, 1:]
    with pytest.raises(TypeError, match="at most 3 slices"):
        x[:, :, :, :]


def test_dropout_and_noise_draw_each_minibatch_element_its_own():
    """As in DyNet: a minibatch's elements get independent dropout masks and noise (they got
    one mask, repeated, when the per-example function was mapped over the batch with one key);
    block dropout keeps or drops the whole minibatch. The gradient goes through the mask."""
    dy.set_random_seed(5)
    dy.renew_cg()
    x = dy.inputTensor(np.ones((50, 8), np.float32), batched=True)  # dims (50,), batch 8
    d = dy.dropout(x, 0.5)
    m = d.npvalue()
    assert m.shape == (50, 8) and set(np.unique(m)) <= {0.0, 2.0}
    assert len({tuple(col) for col in m.T}) == 8  # eight different masks
    assert 0.4 < (m > 0).mean() < 0.6
    dy.sum_batches(dy.sum_elems(d)).backward(full=True)
    np.testing.assert_array_equal(x.gradient(), m)  # d(sum)/dx = mask / (1 - p)
    z = dy.noise(x, 1.0).npvalue() - 1.0
    assert len({tuple(col) for col in z.T}) == 8 and 0.8 < z.std() < 1.2
    seen = set()
    for _ in range(20):
        dy.renew_cg()
        b = dy.block_dropout(dy.inputTensor(np.ones((5, 4), np.float32), batched=True), 0.5).npvalue()
        assert len(np.unique(b)) == 1  # one decision for the whole minibatch
        seen.add(float(b[0, 0]))
    assert seen == {0.0, 2.0}


def test_debug_nans_raises_where_the_nan_is_made():
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((2, 2))
    trainer = dy.SimpleSGDTrainer(pc)
    assert dy.config()["debug_nans"] is False
    dy.config(debug_nans=True)
    try:
        with pytest.raises(FloatingPointError):
            trainer.step(lambda: jax.numpy.sum(jax.numpy.log(W * jax.numpy.asarray([-1.0, -2.0]) - 10.0)))
        dy.renew_cg()
        with pytest.raises(FloatingPointError):
            dy.log(dy.inputVector([-1.0, 2.0])).value()
    finally:
        dy.config(debug_nans=False)
    assert trainer.updates == 0


def test_birnn_in_the_graph_equals_array_mode_and_trains(rng):
    pc = dy.ParameterCollection(seed=0)
    bi = dy.BiRNNBuilder(2, 3, 4, pc, dy.LSTMBuilder)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    want = np.asarray(bi.transduce(list(x)))
    dy.renew_cg()
    out = bi.transduce([dy.inputTensor(v) for v in x])
    assert all(isinstance(o, dy.Expression) for o in out)
    np.testing.assert_allclose(np.stack([o.npvalue() for o in out]), want, rtol=1e-5, atol=1e-6)
    dy.esum([dy.sum_elems(o) for o in out]).backward()
    assert all(p.grad() is not None and np.abs(np.asarray(p.grad())).sum() > 0 for p in pc.all_parameters()
               if p.shape()[0] > 1)
    fwd, bwd = bi.add_inputs([dy.inputTensor(v) for v in x])[0]
    np.testing.assert_allclose(np.concatenate([fwd.output().npvalue(), bwd.output().npvalue()]), want[0],
                               rtol=1e-5, atol=1e-6)


def test_a_jax_array_in_the_graph_is_refused_not_silently_constant():
    """An array computed outside the graph (from parameters, say) would carry no gradient."""
    dy.renew_cg()
    with pytest.raises(TypeError, match="No gradient could flow"):
        dy.inputVector([1.0, 2.0]) + jax.numpy.ones(2)


def test_an_expression_given_to_an_array_function_is_refused():
    """sequence_cross_entropy works on arrays: an expression there would lose its gradient."""
    dy.renew_cg()
    logits = dy.inputTensor(np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="Expression of the computation graph"):
        dy.sequence_cross_entropy(logits, np.array([0, 1, 2]))


def test_renew_cg_inside_a_compiled_step_leaves_eager_code_on_arrays():
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((4, 3))
    trainer = dy.SimpleSGDTrainer(pc)

    def loss():
        dy.renew_cg()  # DyNet code inside a compiled step: nothing to renew
        return jax.numpy.sum(dy.tanh(E[1]))

    trainer.step(loss)
    assert isinstance(E[1], jax.Array)  # eager code still works on arrays
    dy.renew_cg()
    assert isinstance(E[1], dy.Expression)  # an eager renew_cg opens the graph


@pytest.mark.parametrize("trainer_class", [dy.SimpleSGDTrainer, dy.AdamTrainer, dy.MomentumSGDTrainer])
def test_lookup_rows_update_sparsely_and_like_the_dense_update(trainer_class):
    """backward() gives a table its gradient as rows; update() changes only those rows
    (values and optimizer state), with the same result there as a dense update of the
    same gradient, and the same clipping."""
    def setup():
        pc = dy.ParameterCollection(seed=4)
        E = pc.add_lookup_parameters((50, 3))
        W = pc.add_parameters((2, 3))
        return pc, E, W

    def loss_of(E, W):
        dy.renew_cg()
        return dy.esum([dy.sum_elems(dy.tanh(W * E[i])) * 3.0 for i in (4, 7, 4, 30)])

    results = []
    for sparse in (True, False):
        pc, E, W = setup()
        trainer = trainer_class(pc, 0.5)
        trainer.set_clip_threshold(1.0)  # the gradient's norm is above 1: clipped
        before = E.as_array()
        for _ in range(2):
            loss = loss_of(E, W)
            loss.backward()
            if sparse:
                assert E.sparse_grad() is not None
                trainer.update()
            else:
                trainer.update({p.name(): p.grad() for p in pc.all_parameters()})
                for p in pc.all_parameters():
                    p.clear_grad()
        assert trainer.clips == 2
        results.append((E.as_array(), W.as_array(), before))
    (E1, W1, before), (E2, W2, _) = results
    used = [4, 7, 30]
    np.testing.assert_allclose(E1[used], E2[used], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(W1, W2, rtol=1e-5, atol=1e-7)
    others = [i for i in range(50) if i not in used]
    np.testing.assert_array_equal(E1[others], before[others])  # untouched rows never move
    assert not np.allclose(E1[used], before[used])


@pytest.mark.parametrize("batch", [1, 3, "mixed"])
def test_a_sum_of_many_terms_from_several_stacks_stacks_them_first(batch, rng):
    """DyNet's treelstm example sums ~1,000 node losses that autobatching computed level by
    level, as rows of many stacks (and a few alone): the sum stacks its terms per stack and
    runs as one "packed" call, not as a kernel of one argument per term (1,024 arguments
    compiled for 1.3 s, its VJP 4.1 s); values and gradients equal the unbatched run's.
    Minibatched terms too; terms of several batch sizes keep the one-argument-per-term call."""
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((4, 4))
    b = 1 if batch == "mixed" else batch
    xs = rng.normal(size=(90, 4, b)).astype(np.float32)

    def run():
        dy.renew_cg()
        terms = []
        for i, x in enumerate(xs):
            h = dy.inputTensor(x, batched=True) if b > 1 else dy.inputTensor(x[:, 0])
            for _ in range(i % 5):  # five depths: five groups of losses, five stacks
                h = dy.tanh(W * h)
            terms.append(dy.pickneglogsoftmax_batch(h, [i % 4] * b) if b > 1 else dy.pickneglogsoftmax(h, i % 4))
        if batch == 1:
            terms.append(dy.squared_norm(W))  # a term computed alone (not a row of a stack)
        if batch == "mixed":
            terms.append(dy.pickneglogsoftmax_batch(dy.inputTensor(np.ones((4, 2)), batched=True), [0, 1]))
        loss = dy.sum_batches(dy.esum(terms))
        value = loss.value()
        loss.backward()
        grad = W.grad_as_array().copy()
        W.clear_grad()
        total = loss.args[0] if loss.args and loss.args[0].op.name == "esum" else loss
        kinds = [launch.kind for launch in dy.graph._graph.current_graph().launches if total in launch.outputs]
        return value, grad, kinds

    with dy_config(autobatch=False):
        want, want_grad, _ = run()
    with dy_config(autobatch=True):
        got, grad, kinds = run()
    assert kinds == (["node"] if batch == "mixed" else ["packed"])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)


def test_the_same_operation_on_the_same_arguments_twice_autobatches():
    """Nodes that repeat a computation (`dy.tanh(x)` twice, `W * x` under nobackprop and
    flip_gradient, two LSTM steps from one state on one input) have one signature and all
    arguments in common: autobatching ran them as a group with nothing to batch over and
    failed inside jax.vmap. Values and gradients equal the unbatched run (and DyNet's)."""
    def run():
        pc = dy.ParameterCollection(seed=0)
        W = pc.add_parameters((2, 3))
        lstm = dy.VanillaLSTMBuilder(1, 3, 2, pc)
        dy.renew_cg()
        x = dy.inputVector([1.0, 2.0, 3.0])
        s = lstm.initial_state()
        loss = dy.sum_elems(dy.tanh(W * x) + dy.tanh(W * x) + dy.nobackprop(W * x) + 2 * dy.flip_gradient(W * x)
                            + s.add_input(x).output() + s.add_input(x).output())
        value = loss.value()
        loss.backward()
        return value, [p.grad_as_array() for p in pc.all_parameters()]

    v_auto, g_auto = run()
    with dy_config(autobatch=False):
        v_ref, g_ref = run()
    np.testing.assert_allclose(v_auto, v_ref, rtol=1e-6)
    for a, b in zip(g_auto, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_parameter_expr_is_the_parameters_node_in_the_graph():
    """DyNet's `W.expr(update)`: in the graph, W's node (trainable) or its constant node."""
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((2, 3))
    dy.renew_cg()
    x = dy.inputVector([1.0, 2.0, 3.0])
    assert isinstance(W.expr(), dy.Expression) and W.expr() is dy.parameter(W)
    loss = dy.sum_elems(W.expr(update=False) * x) + dy.sum_elems(W.expr() * x)
    loss.backward()
    np.testing.assert_allclose(W.grad_as_array(), [[1.0, 2.0, 3.0]] * 2)  # one term's gradient, not two


def test_a_chain_of_nodes_runs_in_creation_order_and_a_recurrence_still_runs_as_one_scan():
    """A forward pass over an MLP on one input (affine → tanh → affine → tanh: one signature
    twice, but each node takes the one before) runs node by node in creation order without
    the agenda; the steps of an LSTM over inputs already computed, also a chain, still run
    as one scan. Both give the unbatched values."""
    pc = dy.ParameterCollection(seed=0)
    W1, W2 = pc.add_parameters((5, 3)), pc.add_parameters((5, 5))
    lstm = dy.VanillaLSTMBuilder(1, 3, 4, pc)
    xs = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    got = {}
    for flag in (True, False):
        with autobatch(flag), dy_config(replay="never"):
            dy.renew_cg()
            h = dy.tanh(W2 * dy.tanh(W1 * dy.inputTensor(xs[0])))
            mlp = h.npvalue()
            mlp_kinds = [la.kind for la in h.graph.launches]
            state = lstm.initial_state()
            for x in xs:
                state = state.add_input(dy.inputTensor(x))
            out = state.output()
            got[flag] = (mlp, out.npvalue(), mlp_kinds, [la.kind for la in out.graph.launches][len(mlp_kinds):])
    (m1, o1, k1, r1), (m2, o2, _, _) = got[True], got[False]
    np.testing.assert_allclose(m1, m2, rtol=1e-6)
    np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)
    assert k1 == ["node"] * 4, k1
    assert "chain" in r1, r1


def test_list_operations_take_generators_of_expressions():
    dy.renew_cg()
    vs = [dy.inputVector([1.0, 2.0]), dy.inputVector([3.0, 5.0])]
    total = dy.esum(v for v in vs)
    assert isinstance(total, dy.Expression)
    np.testing.assert_allclose(total.npvalue(), [4.0, 7.0])
    assert dy.concatenate(map(dy.tanh, vs)).dim() == ((4,), 1)
    assert dy.concatenate(xs=vs).dim() == ((4,), 1)  # DyNet's keyword: the list is the graph's too


def test_lookup_without_an_index_is_row_zero_as_in_dynet():
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((3, 2), init=np.arange(6.0, dtype=np.float32).reshape(3, 2))
    dy.renew_cg()
    np.testing.assert_array_equal(dy.lookup(E).npvalue(), [0.0, 1.0])


def test_lookups_of_same_shaped_tables_send_each_table_its_rows():
    """Lookups of two tables of one shape (a seq2seq model's input and output embeddings)
    group per table: each table gets its gradient as rows (a sparse update), equal to what
    the unbatched reference order gives."""
    def grads(autobatch):
        pc = dy.ParameterCollection(seed=5)
        src, tgt = pc.add_lookup_parameters((20, 4)), pc.add_lookup_parameters((20, 4))
        W = pc.add_parameters((3, 8))
        with dy_config(autobatch=autobatch, replay="never"):
            dy.renew_cg()
            loss = dy.esum([dy.sum_elems(dy.tanh(W * dy.concatenate([src[i], tgt[j]])))
                            for i, j in ((1, 2), (3, 2), (5, 7), (1, 9))])
            loss.backward()
        if autobatch:
            assert src.sparse_grad() is not None and tgt.sparse_grad() is not None
        return src.grad(), tgt.grad()

    for got, want in zip(grads(1), grads(0)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        assert np.count_nonzero(np.abs(want).sum(axis=1)) == 3  # rows 1, 3, 5 of src; 2, 7, 9 of tgt


@pytest.mark.parametrize("async_updates", [False, True])
def test_a_non_finite_row_gradient_changes_nothing(async_updates):
    def trained(refuse):
        pc = dy.ParameterCollection(seed=4)
        E = pc.add_lookup_parameters((10, 3))
        trainer = dy.AdamTrainer(pc)

        def good():
            dy.renew_cg()
            dy.sum_elems(dy.square(E[2] + E[5])).backward()
            trainer.update()
        good()  # the moments of rows 2 and 5 are no longer zero
        before = E.as_array()
        for _ in range(refuse):
            dy.renew_cg()
            loss = dy.sum_elems(dy.sqrt(E[2] - 100.0))  # sqrt of negatives: NaN value and gradient
            loss.backward()
            if async_updates:  # stored at once, refused on the device; the verdict comes with the next call
                trainer.update()
                np.testing.assert_array_equal(E.as_array(), before)
                with pytest.raises(dy.NonFiniteError, match="reported late"):
                    trainer.wait()
            else:
                with pytest.raises(dy.NonFiniteError):
                    trainer.update()
            np.testing.assert_array_equal(E.as_array(), before)
            assert trainer.updates == 1 and E.grad() is None
        good()
        return E.as_array()
    # the row update takes the moments over (donates them) and gives them back unchanged
    with dy_config(async_updates=async_updates):
        np.testing.assert_array_equal(trained(2), trained(0))


def _async_model(seed=3):
    pc = dy.ParameterCollection(seed=seed)
    E = pc.add_lookup_parameters((12, 4))
    lstm = dy.LSTMBuilder(1, 4, 5, pc)
    W = pc.add_parameters((3, 5))
    return pc, E, lstm, W


def _async_loss(E, lstm, W, ids, scale=1.0):
    dy.renew_cg()
    s = lstm.initial_state()
    losses = []
    for i in ids:
        s = s.add_input(E[i])
        losses.append(dy.pickneglogsoftmax(W * s.output(), i % 3))
    return dy.esum(losses) * scale


@pytest.mark.parametrize("trainer_class", [dy.SimpleSGDTrainer, dy.AdamTrainer])
def test_async_updates_train_exactly_as_waiting_ones(trainer_class):
    """`update()` after backward() returns before the device has run it (the default):
    the parameters and the counts are those of updates that wait."""
    def trained(flag):
        with dy_config(async_updates=flag):
            pc, E, lstm, W = _async_model()
            trainer = trainer_class(pc)
            trainer.set_clip_threshold(0.5)  # some updates clipped: counted either way
            for ids in ([1, 4, 2], [3, 3, 7, 1], [0, 9], [5, 1, 4, 8, 2]):
                _async_loss(E, lstm, W, ids).backward()
                trainer.update()
            assert trainer._pending is not None if flag else trainer._pending is None  # noqa: SLF001
            trainer.wait()
            return trainer.updates, trainer.clips, {n: np.asarray(v) for n, v in pc.parameter_values().items()}
    (n_async, c_async, p_async), (n_sync, c_sync, p_sync) = trained(True), trained(False)
    assert n_async == n_sync == 4 and c_async == c_sync > 0
    for name in p_sync:  # (the kernel that also picks the values may round Adam's last bit otherwise)
        np.testing.assert_allclose(p_async[name], p_sync[name], rtol=1e-6, atol=1e-8)


def test_a_refused_async_update_is_reported_by_the_next_call_which_keeps_its_gradients():
    """A refused asynchronous update changes nothing (on the device); the next call of the
    trainer raises it before doing anything, leaving its own gradients to a call again; the
    counts and a rate's schedule see only the applied updates."""
    def run(refuse):
        pc, E, lstm, W = _async_model()
        trainer = dy.CyclicalSGDTrainer(pc, 0.01, 0.1, step_size=2)
        _async_loss(E, lstm, W, [1, 4, 2]).backward()
        trainer.update()
        if refuse:
            before = {n: np.asarray(v) for n, v in pc.parameter_values().items()}
            _async_loss(E, lstm, W, [3, 1], scale=np.nan).backward()
            trainer.update()  # returns: the verdict is not read yet
            for n, v in pc.parameter_values().items():
                np.testing.assert_array_equal(np.asarray(v), before[n])
            assert trainer.updates == 1  # reading the count reads the verdict, and keeps the refusal
            _async_loss(E, lstm, W, [5, 0, 2]).backward()
            with pytest.raises(dy.NonFiniteError, match=r"CyclicalSGDTrainer\.update \(the update after update 1, "
                                                        r"reported late.*L2 norm is nan"):
                trainer.update()
            assert W.grad() is not None  # this call's gradients are still there
            trainer.update()  # ... and applied by the next call
        else:
            _async_loss(E, lstm, W, [5, 0, 2]).backward()
            trainer.update()
        trainer.wait()
        return trainer.updates, trainer.learning_rate, {n: np.asarray(v) for n, v in pc.parameter_values().items()}
    with dy_config(async_updates=True):
        (n_ref, lr_ref, p_ref), (n, lr, p) = run(True), run(False)
    assert n_ref == n == 2 and lr_ref == lr
    for name in p:
        np.testing.assert_array_equal(p_ref[name], p[name])


def test_restart_after_a_refused_async_update_restarts_and_the_next_update_reports_it():
    """A refusal is raised by the calls that take gradients or report (update, step,
    status, wait), not by restart(), the usual answer to one."""
    pc, E, lstm, W = _async_model()
    trainer = dy.AdamTrainer(pc)
    with dy_config(async_updates=True):
        _async_loss(E, lstm, W, [3, 1], scale=np.nan).backward()
        trainer.update()
        trainer.restart(learning_rate=0.0005)
        assert trainer.learning_rate == 0.0005 and trainer._state is None  # noqa: SLF001
        _async_loss(E, lstm, W, [5, 0, 2]).backward()
        with pytest.raises(dy.NonFiniteError, match="reported late"):
            trainer.update()
        trainer.update()
        trainer.wait()
        assert trainer.updates == 1


def test_an_unreported_refusal_is_a_warning_and_weight_decay_waits_for_the_verdict():
    """A refused asynchronous update that no call reported is reported when its trainer is
    dropped (or at the interpreter's exit: the same finalizer), once."""
    import gc
    import warnings
    pc, E, lstm, W = _async_model()
    with dy_config(async_updates=True):
        for refused in (True, False):
            trainer = dy.SimpleSGDTrainer(pc)
            _async_loss(E, lstm, W, [3, 1], scale=np.nan if refused else 1.0).backward()
            trainer.update()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                del trainer
                gc.collect()
            assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == (
                ["SimpleSGDTrainer.update: the gradient's L2 norm is nan; no parameter was changed. Check the loss "
                 "for log(0), overflow or a bad learning rate. (reported when the trainer was dropped or at exit: "
                 "no trainer call came after this update)"] if refused else [])
        trainer = dy.SimpleSGDTrainer(pc)
        _async_loss(E, lstm, W, [3, 1], scale=np.nan).backward()
        trainer.update()
        with pytest.raises(dy.NonFiniteError, match="reported late"):
            trainer.wait()
        with warnings.catch_warnings(record=True) as caught:  # reported once: not again when dropped
            warnings.simplefilter("always")
            trainer._unread()  # what the finalizer would run  # noqa: SLF001
        assert not caught
        # a frozen parameter under weight decay decays only after an applied update: such
        # an update waits for its verdict
        frozen = pc.add_parameters(3, init=1.0)
        frozen.set_updated(False)
        pc.set_weight_decay(0.1)
        _async_loss(E, lstm, W, [3, 1], scale=np.nan).backward()
        with pytest.raises(dy.NonFiniteError, match=r"^SimpleSGDTrainer\.update: the gradient's L2 norm"):
            trainer.update()
        np.testing.assert_array_equal(frozen.as_array(), np.ones(3))


@pytest.mark.parametrize("trainer_class", [dy.SimpleSGDTrainer, dy.AdamTrainer])
@pytest.mark.parametrize("replay", ["never", "always"])
def test_a_table_nothing_else_holds_is_updated_in_place_and_one_held_is_left_alone(trainer_class, replay):
    """A row update writes a table over in place when nothing but the parameter and the
    current graph holds it (`sole_holder`): the graph's references then read the new value
    (a lookup added after update() sees it, as in DyNet; a second backward() still runs,
    through the table used as a constant matrix too). A table the user holds is copied
    instead: the held array keeps its old value. Both give the same training. A replayed
    graph keeps the values it ran with (so is never written over): a node added after the
    update, which makes it fall back and recompute, leaves the values read before unchanged.
    (A replayed structure keeps no old graph's values alive.)"""
    from dynrnn.graph import _replay

    def run(hold):
        _replay.forget()  # (each graph falls back, which marks its structure)
        pc = dy.ParameterCollection(seed=7)
        E = pc.add_lookup_parameters((40, 3))
        W = pc.add_parameters((2, 3))
        trainer = trainer_class(pc, 0.3)
        held, in_place = [], []
        with dy_config(replay=replay):
            for step in range(4):
                dy.renew_cg()
                ids = (3, 8, 3, 17 + step) + (1,) * (step % 2)  # two structures, taking turns
                loss = dy.esum([dy.sum_elems(dy.tanh(W * E[i])) for i in ids]
                               + [dy.sum_elems(dy.tanh(dy.const_parameter(E) * E[5]))])  # the table as a matrix too
                value = loss.value()
                loss.backward()
                if hold:
                    held.append((E.stored_value(), E.as_array()))
                replayed = loss.graph.replayed is not None
                in_place.append((E.sole_holder(), replayed))
                before = E.as_array()
                trainer.update()
                loss.backward()  # a second backward of the same graph (its gradients then dropped)
                row = E[8].npvalue()
                np.testing.assert_allclose(row, (before if replayed else E.as_array())[8], rtol=1e-6)
                # (recomputed by kernels after a replay: the same values, up to the last bits)
                assert loss.value() == pytest.approx(value, rel=1e-6, abs=1e-6)
                for p in pc.all_parameters():
                    p.clear_grad()
        for array, copy in held:
            np.testing.assert_array_equal(np.asarray(array), copy)
        return E.as_array(), in_place

    (E1, in_place), (E2, not_in_place) = run(False), run(True)
    assert [sole for sole, _ in in_place] == [not replayed for _, replayed in in_place]
    assert any(replayed for _, replayed in in_place) == (replay == "always")
    assert not any(sole for sole, _ in not_in_place)
    np.testing.assert_allclose(E1, E2, rtol=1e-6)


def test_numpy_views_of_a_table_survive_its_update():
    """NumPy views of a table's array (zero-copy on the CPU) keep the old values across an
    update: `np.asarray(E)` holds the array, so the update copies; `jax.device_get` does
    not hold it, so the update asks to write in place, and the runtime, seeing the view,
    writes elsewhere."""
    import jax

    for take in (np.asarray, lambda E: jax.device_get(E.stored_value())):
        pc = dy.ParameterCollection(seed=1)
        E, W = pc.add_lookup_parameters((300, 8)), pc.add_parameters((2, 8))
        trainer = dy.SimpleSGDTrainer(pc, 0.5)
        view = take(E)
        before = view.copy()
        dy.renew_cg()
        dy.esum([dy.sum_elems(dy.tanh(W * E[i])) for i in (3, 4)]).backward()
        trainer.update()
        _ = [np.full((300, 8), k, np.float32) for k in range(4)]  # reuse of freed memory would show
        np.testing.assert_array_equal(view, before)
        assert not np.allclose(E.as_array()[3], before[3])


def _tagger_graph(seed: int, words: int, dim: int, hidden: int):
    """A lookup table, an LSTM and a softmax layer with an SGD trainer: `graph(ids, train)`
    builds and evaluates one sentence's loss (and with `train`, backward() and update())."""
    pc = dy.ParameterCollection(seed=seed)
    E = pc.add_lookup_parameters((words, dim))
    lstm = dy.LSTMBuilder(1, dim, hidden, pc)
    W = pc.add_parameters((5, hidden))
    trainer = dy.SimpleSGDTrainer(pc, 0.1)

    def graph(ids, train=True):
        dy.renew_cg()
        hs = lstm.initial_state().transduce([E[w] for w in ids])
        loss = dy.esum([dy.pickneglogsoftmax(W * dy.tanh(h), w % 5) for h, w in zip(hs, ids)])
        value = loss.scalar_value()
        if train:
            loss.backward()
            trainer.update()
        return value

    return graph


def test_vjps_compiled_ahead_are_the_ones_backward_calls(monkeypatch):
    """In a training loop, the VJP of a forward kernel that has just compiled compiles on a
    background thread (`_kernels.compile_ahead`); backward() then finds it compiled. Here
    backward always waits for it (instead of calling off one not yet started), so every
    VJP is compiled ahead and the main thread must compile none itself: a VJP compiled
    for other shapes or types than backward's call would show up as a second compilation."""
    from dynrnn.graph import _kernels as K
    monkeypatch.setattr(K, "claim", lambda f: f is None or f.result())
    update = _tagger_graph(seed=3, words=30, dim=7, hidden=9)
    update([1, 2, 3])
    with count_compiles(all_threads=True) as compiled:
        with dy_config(replay="never"):
            value = update([int(w) for w in np.arange(23) % 30])  # new sizes: new kernels
    ahead = [c for c in compiled if c.startswith("dynrnn-vjp")]
    main_backward = [c for c in compiled if not c.startswith("dynrnn-vjp") and "backward" in c]
    assert ahead and all("backward" in c for c in ahead), compiled
    assert main_backward == [], compiled
    assert np.isfinite(value)


def test_single_nodes_compile_their_vjps_ahead(monkeypatch):
    """A node that nothing batches with (an attention decoder's steps: each depends on the
    last) is one kernel call; when its kernel has just compiled, its VJP starts compiling
    ahead, as a group's does (they had compiled on the main thread, one by one, in the first
    backward(), while the background thread was idle), and backward() uses it."""
    from dynrnn.graph import _kernels as K
    monkeypatch.setattr(K, "claim", lambda f: f is None or f.result())
    K.node_kernel.cache_clear()  # (kernels of these signatures another test compiled: compiled again)
    K.node_vjp.cache_clear()
    pc = dy.ParameterCollection(seed=5)
    W, V = pc.add_parameters((13, 13)), pc.add_parameters((3, 13))
    trainer = dy.SimpleSGDTrainer(pc, 0.1)
    with dy_config(replay="never", compile_ahead=True, autobatch=1):
        for f in (dy.tanh, dy.softsign):
            dy.renew_cg()
            h = dy.inputVector([0.1 * k for k in range(13)])
            for _ in range(3):  # each step depends on the last: single-node launches
                h = dy.cmult(f(W * h), dy.softmax(h))
            loss = dy.pickneglogsoftmax(V * h, 1)
            value = loss.scalar_value()
            launches = [la for la in loss.graph.launches if la.kind == "node" and la.outputs[0].op.name == "unary"]
            assert launches and launches[0].ahead is not None  # its kernel compiled just now: its VJP too
            launches[0].ahead.result()
            loss.backward()
            trainer.update()
            assert np.isfinite(value) and np.all(np.isfinite(W.grad_as_array()))


def test_a_minibatched_chain_from_a_batch_1_state_runs_whole():
    """A minibatch's first step from a builder's initial state (batch 1) has the signature of
    the later steps once the state is broadcast, so all steps run as one chain and every
    output is a row of one stack (DyNet's rnnlm-batch: the first step ran alone, and the
    fused affine over all outputs took them as 64 separate arguments); the loss and the
    gradients are those of the node-by-node schedule."""
    rng = np.random.default_rng(3)
    pc = dy.ParameterCollection(seed=2)
    E, R, b = pc.add_lookup_parameters((20, 8)), pc.add_parameters((20, 16)), pc.add_parameters(20)
    lstm = dy.LSTMBuilder(2, 8, 16, pc)
    cids = [list(rng.integers(0, 20, 5)) for _ in range(9)]
    results = []
    for flag in (True, False):
        with autobatch(flag), dy_config(replay="never"):
            dy.renew_cg()
            s = lstm.initial_state().add_input(dy.lookup_batch(E, cids[0]))
            losses = []
            for cid in cids[1:]:
                losses.append(dy.pickneglogsoftmax_batch(dy.affine_transform([b, R, s.output()]), cid))
                s = s.add_input(dy.lookup_batch(E, cid))
            loss = dy.sum_batches(dy.esum(losses))
            value = loss.scalar_value()
            if flag:
                chains = [la for la in loss.graph.launches if la.kind == "chain"]
                assert sum(len(la.outputs) for la in chains) == len(cids)  # every step, the first too
            loss.backward()
            results.append((value, R.grad_as_array(), E.grad_as_array()))
            for p in pc.parameters_list() + pc.lookup_parameters_list():
                p.clear_grad()
    (v1, r1, e1), (v2, r2, e2) = results
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    np.testing.assert_allclose(r1, r2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(e1, e2, rtol=1e-4, atol=1e-6)


def test_a_training_forward_keeps_its_pullback_and_backward_equals_recomputing():
    """In a training loop the forward of a chain, a group and a fused call keeps what its
    VJP needs (`K._keeping`: a chain every residual, groups their products' outputs), so
    backward does not run the forward again; after an evaluation loop (two graphs in a row
    without backward()) nothing is kept and backward recomputes. Both give the loss and the
    gradients of the node-by-node schedule."""
    rng = np.random.default_rng(5)
    pc = dy.ParameterCollection(seed=4)
    E, R, U = pc.add_lookup_parameters((15, 6)), pc.add_parameters((7, 10)), pc.add_parameters((10, 10))
    lstm = dy.LSTMBuilder(2, 6, 10, pc)
    sents = [[int(w) for w in rng.integers(0, 15, n)] for n in (23, 9, 17)]

    def graph(backward: bool) -> tuple:
        dy.renew_cg()
        hs = [h for sent in sents for h in lstm.initial_state().transduce([E[w] for w in sent])]
        ws = [w for sent in sents for w in sent]
        scores = [U * h for h in hs]  # each score feeds two nodes: a group, not fused
        losses = [dy.pickneglogsoftmax(R * (dy.tanh(s) + dy.logistic(s)), w % 7) for s, w in zip(scores, ws)]
        loss = dy.esum(losses)
        value = loss.scalar_value()
        kept = {(la.kind, la.pull is not None) for la in loss.graph.launches if la.kind in ("chain", "group", "fused")
                and (la.kind != "group" or la.outputs[0].op.sparse_table is None)}
        if not backward:
            return value, kept, None
        loss.backward()
        grads = {p.name(): np.asarray(p.grad()) for p in pc.all_parameters()}
        for p in pc.all_parameters():
            p.clear_grad()
        return value, kept, grads

    results = {}
    with dy_config(replay="never"):
        with autobatch(False):
            results["nodes"] = graph(True)
        results["kept"] = graph(True)
        graph(False)
        graph(False)  # an evaluation loop: nothing kept from now on
        results["recomputed"] = graph(True)
    v0, _, g0 = results["nodes"]
    assert results["kept"][1] == {("chain", True), ("group", True), ("fused", True)}, results["kept"][1]
    assert results["recomputed"][1] == {("chain", False), ("group", False), ("fused", False)}, results["recomputed"][1]
    for name in ("kept", "recomputed"):
        v, _, g = results[name]
        np.testing.assert_allclose(v, v0, rtol=1e-5, err_msg=name)
        for k in g0:
            assert np.abs(g0[k]).max() > 0, k
            np.testing.assert_allclose(g[k], g0[k], rtol=1e-4, atol=1e-6, err_msg=f"{name}: {k}")


def test_output_of_a_multi_layer_state_adds_only_the_top_layers_slot():
    """`output()` is the top layer's h (`h()[-1]`), and makes one node of the graph: not a
    slot per layer, which the scheduler would walk at every step of a DyNet loop."""
    pc = dy.ParameterCollection(seed=1)
    lstm = dy.LSTMBuilder(3, 4, 5, pc)
    dy.renew_cg()
    s = lstm.initial_state().add_input(dy.inputVector([0.1, -0.2, 0.3, 0.4]))
    before = len(s.output().graph.nodes)
    out = s.output()
    assert len(out.graph.nodes) == before  # (the first call made it; the second reuses it)
    s2 = s.add_input(dy.inputVector([0.5, 0.1, -0.3, 0.2]))
    n = len(out.graph.nodes)
    top = s2.output()
    assert len(top.graph.nodes) == n + 1
    np.testing.assert_allclose(top.npvalue(), s2.h()[-1].npvalue())
    assert not np.allclose(top.npvalue(), s2.h()[0].npvalue())


def test_backward_starts_from_one_cached_array_of_ones():
    """Each backward() starts from the loss's cotangent of ones: one cached device array per
    shape (`K.ones`), not a copy from the host per call; the gradients stay NumPy's."""
    from dynrnn.graph import _kernels as K
    pc = dy.ParameterCollection(seed=2)
    W = pc.add_parameters((3, 4))
    x = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    K.ones.cache_clear()
    for _ in range(3):
        dy.renew_cg()
        loss = dy.sum_elems(dy.tanh(W * dy.inputVector(list(x))))
        loss.backward()
        w = np.asarray(W.as_array())
        np.testing.assert_allclose(np.asarray(W.grad_as_array()), np.outer(1 - np.tanh(w @ x) ** 2, x),
                                   rtol=1e-5, atol=1e-6)
        W.clear_grad()
    info = K.ones.cache_info()
    assert info.currsize == 1 and info.hits == 2, info


def test_cotangents_of_small_arrays_are_summed_by_one_adder_per_shape():
    """`add_all` sums any number of same-shaped arrays; arrays up to ADD_PAD_ELEMENTS are
    added 8 at a time with zeros as padding (one adder kernel per shape, not one per 2, 4
    and 8 terms), larger ones by adders of 2, 4 or 8 terms."""
    from dynrnn.graph import _kernels as K
    rng = np.random.default_rng(0)
    K._adder.cache_clear()
    for n in (2, 3, 5, 8, 9, 17):
        xs = [rng.normal(size=(3, 5)).astype(np.float32) for _ in range(n)]
        np.testing.assert_allclose(np.asarray(K.add_all([jax.numpy.asarray(x) for x in xs])), np.sum(xs, axis=0),
                                   rtol=1e-6, atol=1e-6)
    assert K._adder.cache_info().currsize == 1  # one arity (8) for all these sums
    big = (K.ADD_PAD_ELEMENTS + 1,)
    xs = [rng.normal(size=big).astype(np.float32) for _ in range(3)]
    np.testing.assert_allclose(np.asarray(K.add_all([jax.numpy.asarray(x) for x in xs])), np.sum(xs, axis=0),
                               rtol=1e-6, atol=1e-5)
    assert K._adder.cache_info().currsize == 2  # and 4 terms for the large arrays


def test_kernels_fall_back_to_plain_jit(monkeypatch):
    """Kernels compile with XLA:CPU options of their own (`_xla.kernel_jit`: LLVM at O1;
    the kernels that only move or add arrays also without fusion emitters); a JAX that
    refuses the options (or lacks `compiler_options`) gets a plain `jax.jit`, with the same
    results."""
    from dynrnn import _xla as K
    xs = [np.arange(6, dtype=np.float32).reshape(2, 3) * k for k in range(1, 4)]
    with_options = [np.asarray(make(lambda *a: sum(a))(*xs)) for make in (K.plumbing_jit, K.kernel_jit)]
    real_jit = jax.jit

    def refusing_jit(f, **kwargs):
        if "compiler_options" in kwargs:
            raise TypeError("jit() got an unexpected keyword argument 'compiler_options'")
        return real_jit(f, **kwargs)

    monkeypatch.setattr(K, "_OPTIONS", [])
    monkeypatch.setattr(K.jax, "jit", refusing_jit)
    plain = [make(lambda *a: sum(a)) for make in (K.plumbing_jit, K.kernel_jit)]
    assert K._OPTIONS == [False]
    for f, expected in zip(plain, with_options):
        np.testing.assert_array_equal(np.asarray(f(*xs)), expected)
        np.testing.assert_array_equal(expected, xs[0] + xs[1] + xs[2])


def test_compiling_ahead_outlasts_one_graph_without_backward(monkeypatch):
    """A program that samples or evaluates once before it trains (DyNet's rnnlm.py samples at
    its first sentence) still has its first training graph's VJPs compiled ahead; two graphs
    in a row without backward() (an evaluation loop) stop it."""
    from dynrnn.graph import _kernels as K
    monkeypatch.setattr(K, "claim", lambda f: f is None or f.result())
    tagger = _tagger_graph(seed=4, words=70, dim=6, hidden=11)

    def graph(n, train):
        tagger(list(range(n)), train)

    def settled():  # what earlier graphs started ahead (an evaluation graph's waste) is done
        if K._AHEAD:
            K._AHEAD[0].submit(lambda: None).result()

    def on_vjp_thread(compiled):
        return [c for c in compiled if c.startswith("dynrnn-vjp")]

    with dy_config(replay="never"):
        graph(2, True)
        graph(5, False)  # one graph without backward
        settled()
        with count_compiles(all_threads=True) as compiled:
            graph(19, True)  # new sizes: new kernels
        assert on_vjp_thread(compiled), compiled
        graph(3, False)
        graph(4, False)  # two in a row
        settled()
        with count_compiles(all_threads=True) as compiled:
            graph(41, True)
        assert not on_vjp_thread(compiled) and any("backward" in c for c in compiled), compiled


def _tree_lstm_forest(rng, n_trees, hdim=4):
    """DyNet's Tree-LSTM example (examples/treelstm/model.py) on random binary trees, its
    word and hidden sizes such that W (h×w) and U (h×2h) have one shape, as there: every
    node classified. Returns (the loss, the parameters)."""
    pc = dy.ParameterCollection(seed=11)
    WS = [pc.add_parameters((hdim, 2 * hdim)) for _ in "iou"]
    US = [pc.add_parameters((hdim, 2 * hdim)) for _ in "iou"]
    UFS = [pc.add_parameters((hdim, 2 * hdim)) for _ in "ff"]
    BS = [pc.add_parameters(hdim) for _ in "iouf"]
    E = pc.add_lookup_parameters((20, 2 * hdim))
    Wc = pc.add_parameters((3, hdim))

    def tree(depth):
        if depth == 0 or rng.random() < 0.3:
            return int(rng.integers(0, 20))
        return (tree(depth - 1), tree(depth - 1))

    def expr(t, losses):
        if isinstance(t, int):
            x = E[t]
            i, o = (dy.logistic(dy.affine_transform([b, W, x])) for b, W in zip(BS[:2], WS[:2]))
            u = dy.tanh(dy.affine_transform([BS[2], WS[2], x]))
            c = dy.cmult(i, u)
        else:
            (h1, c1), (h2, c2) = expr(t[0], losses), expr(t[1], losses)
            e = dy.concatenate([h1, h2])
            i, o = (dy.logistic(dy.affine_transform([b, U, e])) for b, U in zip(BS[:2], US[:2]))
            f1, f2 = (dy.logistic(dy.affine_transform([BS[3], U, e])) for U in UFS)
            u = dy.tanh(dy.affine_transform([BS[2], US[2], e]))
            c = dy.cmult(i, u) + dy.cmult(f1, c1) + dy.cmult(f2, c2)
        h = dy.cmult(o, dy.tanh(c))
        losses.append(dy.pickneglogsoftmax(Wc * h, len(losses) % 3))
        return h, c

    losses: list = []
    for _ in range(n_trees):
        expr(tree(5), losses)
    return dy.esum(losses), pc


def test_tree_lstms_autobatched_equal_sequential_with_parameters_passed_once(rng):
    """DyNet's Tree-LSTM, twelve random trees per graph: nodes group per parameter they read
    (as in DyNet), so no kernel takes one matrix per node (such a group, hundreds of
    matrices as arguments, ran out of memory compiling), and groups of many nodes take rows
    of several stacks gathered per stack, then summed, by calls of their own. Values and
    gradients are the sequential schedule's."""
    from dynrnn.graph import _schedule
    seed = int(rng.integers(0, 1000))
    results = []
    for batched in (False, True):
        with autobatch(batched):
            dy.renew_cg()
            loss, pc = _tree_lstm_forest(np.random.default_rng(seed), 12)
            value = loss.scalar_value()
            loss.backward()
            results.append((value, {p.name(): np.asarray(p.grad()) for p in pc.parameters_list()}))
            if batched:
                launches = loss.graph.launches
                groups = [launch for launch in launches if launch.kind == "group"]
                for launch in groups:
                    for node in launch.outputs:  # a parameter is shared by the whole group
                        assert all(a in launch.shared for a in node.args if a.op.leaf_param is not None)
                    lists = [len(w) for m, w in launch.positions if m == "list"]
                    assert not lists or len(launch.outputs) <= _schedule.LONG_LIST
                assert any(m == "takes" for launch in launches if launch.kind == "gather" for m, _ in launch.positions)
    (v0, g0), (v1, g1) = results
    np.testing.assert_allclose(v1, v0, rtol=1e-5)
    for name in g0:
        np.testing.assert_allclose(g1[name], g0[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_compact_vanilla_lstm_is_dynets_vanilla_lstm_in_both_modes(tmp_path, rng):
    """DyNet's CompactVanillaLSTMBuilder: VanillaLSTMBuilder's equations and parameters
    (checked against NumPy), in the graph and on arrays, saved and loaded as itself."""
    pc = dy.ParameterCollection(seed=4)
    lstm = dy.CompactVanillaLSTMBuilder(2, 5, 4, pc)
    randomize(lstm, rng)
    params = layer_params(lstm)
    xs = rng.normal(size=(6, 5)).astype(np.float32)
    want, _ = ref.run_stack(ref.vanilla_lstm, params, xs)
    np.testing.assert_allclose(np.asarray(lstm.initial_state().transduce(xs)), want, rtol=1e-4, atol=1e-5)
    dy.renew_cg()
    outs = lstm.initial_state().transduce([dy.inputTensor(x) for x in xs])
    np.testing.assert_allclose(np.stack([o.npvalue() for o in outs]), want, rtol=1e-4, atol=1e-5)
    dy.save(str(tmp_path / "m.npz"), [lstm])
    [back] = dy.load(str(tmp_path / "m.npz"), dy.ParameterCollection())
    assert type(back) is dy.CompactVanillaLSTMBuilder
    np.testing.assert_allclose(np.asarray(back.initial_state().transduce(xs)), want, rtol=1e-4, atol=1e-5)


def test_running_a_graph_leaves_the_garbage_collector_as_it_found_it(monkeypatch):
    """forward() and backward() pause Python's collector while they run (their allocations
    would set it off hundreds of times in a large graph) and restore it as found: on, off,
    and after an error."""
    import gc

    from dynrnn.graph import _schedule

    pc = dy.ParameterCollection()
    W = pc.add_parameters((3, 4))
    seen = []
    run_group = _schedule._run_group

    def spy(*args):
        seen.append(gc.isenabled())
        return run_group(*args)

    monkeypatch.setattr(_schedule, "_run_group", spy)
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            dy.renew_cg()
            loss = dy.sum_elems(dy.tanh(W * dy.inputTensor(np.ones(4, np.float32))))
            loss.value()
            assert gc.isenabled() is enabled
            loss.backward()
            assert gc.isenabled() is enabled
        assert seen and not any(seen)  # paused while the kernels ran

        def failing(*args):
            raise RuntimeError("kernel failed")

        monkeypatch.setattr(_schedule, "_run_group", failing)
        gc.enable()
        dy.renew_cg()
        loss = dy.sum_elems(dy.tanh(W * dy.inputTensor(np.ones(4, np.float32))))
        with pytest.raises(RuntimeError, match="kernel failed"):
            loss.value()
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


@pytest.mark.parametrize("autobatch", [True, False])
def test_cg_revert_removes_what_came_after_the_checkpoint(autobatch):
    """DyNet's cg_checkpoint()/cg_revert(): nodes made after the checkpoint go (using one is
    an error naming cg_revert), the graph goes on as if they had never been made — also when
    a forward after the checkpoint computed older nodes (their values are computed again, so
    backward still reaches the parameters through them), and for a builder's state whose
    next step was reverted."""
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((3, 4))
    lstm = dy.LSTMBuilder(1, 4, 3, pc)
    xs = [np.random.default_rng(k).normal(size=4).astype(np.float32) for k in range(3)]

    def fresh():
        dy.renew_cg()
        h = dy.tanh(W * dy.inputTensor(xs[0]))
        s1 = lstm.initial_state().add_input(dy.inputTensor(xs[0]))
        s2 = s1.add_input(dy.inputTensor(xs[2]))
        loss = dy.sum_elems(h) + dy.sum_elems(s2.output())
        value = loss.value()
        loss.backward()
        grads = [p.grad_as_array().copy() for p in (W, *lstm.get_parameters()[0])]
        for p in (W, *lstm.get_parameters()[0]):
            p.clear_grad()
        return value, grads

    with dy_config(autobatch=autobatch):
        want, want_grads = fresh()
        dy.renew_cg()
        h = dy.tanh(W * dy.inputTensor(xs[0]))  # not computed before the checkpoint
        s1 = lstm.initial_state().add_input(dy.inputTensor(xs[0]))
        size = len(dy.graph._graph.current_graph().nodes)
        dy.cg_checkpoint()
        tried = dy.sum_elems(h * 2.0) + dy.sum_elems(s1.add_input(dy.inputTensor(xs[1])).output())
        tried.value()  # computes h and s1 too
        dy.cg_checkpoint()  # nested: reverted first
        extra = tried * 3.0
        dy.cg_revert()
        assert extra.live() is False
        dy.cg_revert()
        assert len(dy.graph._graph.current_graph().nodes) == size
        for gone in (tried, extra):
            with pytest.raises(dy.GraphError, match=r"removed from its graph by dy\.cg_revert\(\)"):
                gone.value()
            with pytest.raises(dy.GraphError, match=r"cg_revert"):
                dy.tanh(gone)
        s2 = s1.add_input(dy.inputTensor(xs[2]))
        loss = dy.sum_elems(h) + dy.sum_elems(s2.output())
        np.testing.assert_allclose(loss.value(), want, rtol=1e-6)
        loss.backward()
        for p, g in zip((W, *lstm.get_parameters()[0]), want_grads):
            assert np.abs(g).max() > 0
            np.testing.assert_allclose(p.grad_as_array(), g, rtol=1e-5, atol=1e-7)
        with pytest.raises(dy.GraphError, match="no dy.cg_checkpoint"):
            dy.cg_revert()


def test_cg_revert_unlinks_a_step_from_its_reverted_next_step():
    """A state whose next step was reverted must not continue into whatever node takes that
    step's place: here a step of the same builder from another (not yet computed) state,
    which would otherwise be computed from the first state instead."""
    pc = dy.ParameterCollection(seed=1)
    lstm = dy.LSTMBuilder(1, 4, 3, pc)
    xs = [np.random.default_rng(10 + k).normal(size=4).astype(np.float32) for k in range(3)]
    h0, c0 = (np.random.default_rng(20 + k).normal(size=3).astype(np.float32) for k in range(2))

    def other():  # a step from a state of expressions computed in the graph
        start = lstm.initial_state([dy.tanh(dy.inputTensor(h0)), dy.tanh(dy.inputTensor(c0))])
        return start.add_input(dy.inputTensor(xs[2]))

    def prefix():
        dy.renew_cg()
        s1 = lstm.initial_state().add_input(dy.inputTensor(xs[0]))
        return s1, len(dy.graph._graph.current_graph().nodes)

    _, base = prefix()
    offset = other().output().args[0].index - base  # where the other step lands
    want = other().output().npvalue()
    s1, base = prefix()
    dy.cg_checkpoint()
    x = dy.inputTensor(xs[1])
    for _ in range(offset - 1):
        x = dy.tanh(x)
    t = s1.add_input(x)
    assert t.output().args[0].index == base + offset  # t's step takes that index
    t.output().value()  # computes s1 and t in one chain (s1's next step: t)
    dy.cg_revert()  # t goes, and s1's value with the chain's launch
    u = other()
    assert u.output().args[0].index == base + offset
    np.testing.assert_allclose(u.output().npvalue(), want, rtol=1e-6)


def test_vec_value_lists_python_floats_column_major_with_the_batch_last():
    dy.renew_cg()
    a = np.arange(12.0, dtype=np.float32).reshape(3, 2, 2)  # DyNet's layout: dims (3, 2), batch 2 (last)
    v = dy.inputTensor(a, batched=True).vec_value()
    assert v == [float(x) for x in np.ravel(a, order="F")] and all(type(x) is float for x in v)
    assert dy.inputVector([1.0, 2.0]).value() == [1.0, 2.0]
