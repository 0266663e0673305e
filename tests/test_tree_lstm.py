"""Tree-LSTM builders (bottom-up, by levels) against NumPy references written from Tai et
al. (2015) and from DyNet's examples/treelstm model, numerical derivatives, dropout's
one-mask-per-tree rule, save/load, compiled steps and bad inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import dynrnn as dy

from .helpers import count_compiles

N_IN, H = 3, 4


def sig(a):
    return 1 / (1 + np.exp(-a))


def numpy_child_sum(params, xs, children):
    """Tai et al. eqs. 2–8, recursively from the roots (no levels, no padding)."""
    W_iou, U_iou, b_iou, W_f, U_f, b_f = [np.asarray(p, np.float64) for p in params]
    memo = {}

    def node(j):
        if j in memo:
            return memo[j]
        kids = [node(k) for k in children[j]]
        hs = sum((h for _, h in kids), np.zeros(H))
        a = W_iou @ xs[j] + U_iou @ hs + b_iou
        i, o, u = sig(a[:H]), sig(a[H:2 * H]), np.tanh(a[2 * H:])
        c = i * u + sum((sig(W_f @ xs[j] + U_f @ hk + b_f) * ck for ck, hk in kids), np.zeros(H))
        memo[j] = (c, o * np.tanh(c))
        return memo[j]

    out = [node(j) for j in range(len(children))]
    return np.array([h for _, h in out]), np.array([c for c, _ in out])


def numpy_dynet_binary(params, leaf_words, E, tree):
    """DyNet's examples/treelstm TreeLSTMBuilder.expr_for_tree, in NumPy: a leaf (a word)
    reads its embedding with W and no U; an inner node reads its two children with U and
    no W. `tree` is a nested tuple of word ids; returns [(c, h)] of the inner nodes and
    leaves in post-order."""
    W_iou, U_iou, b_iou, W_f, U_f, b_f = [np.asarray(p, np.float64) for p in params]
    Wi, Wo, Wu = W_iou[:H], W_iou[H:2 * H], W_iou[2 * H:]
    Ui, Uo, Uu = U_iou[:H], U_iou[H:2 * H], U_iou[2 * H:]
    bi, bo, bu = b_iou[:H], b_iou[H:2 * H], b_iou[2 * H:]
    Uf1, Uf2 = U_f[:H], U_f[H:]
    out = []

    def expr(t):
        if not isinstance(t, tuple):
            emb = E[t]
            i, o, u = sig(Wi @ emb + bi), sig(Wo @ emb + bo), np.tanh(Wu @ emb + bu)
            c = i * u
            out.append((c, o * np.tanh(c)))
            return out[-1]
        (c1, h1), (c2, h2) = expr(t[0]), expr(t[1])
        e = np.concatenate([h1, h2])
        i, o, u = sig(Ui @ e + bi), sig(Uo @ e + bo), np.tanh(Uu @ e + bu)
        f1, f2 = sig(Uf1 @ e + b_f), sig(Uf2 @ e + b_f)
        c = i * u + f1 * c1 + f2 * c2
        out.append((c, o * np.tanh(c)))
        return out[-1]

    expr(tree)
    return out


def randomize(builder, rng, scale=0.5):
    for p in builder.get_parameters():
        p.set_value(rng.normal(0.0, scale, size=p.shape()))


def random_forest_children(rng, n, p_root=0.2, max_kids=None):
    """Children lists of a random forest over nodes in a shuffled order (children after,
    before or between their parents: the schedule finds the order)."""
    parent = [-1 if i == 0 or rng.random() < p_root else int(rng.integers(0, i)) for i in range(n)]
    perm = rng.permutation(n)  # node i of the tree is row perm[i]
    children = [[] for _ in range(n)]
    for i, p in enumerate(parent):
        if p >= 0 and (max_kids is None or len(children[perm[p]]) < max_kids):
            children[perm[p]].append(int(perm[i]))
    return children


def test_child_sum_equals_numpy_reference(x64, rng):
    pc = dy.ParameterCollection(seed=0, dtype=jnp.float64)
    b = dy.ChildSumTreeLSTMBuilder(N_IN, H, pc)
    randomize(b, rng)
    children = [[3, 1], [], [0, 4, 5], [], [], [], [], [6], [7], [8, 2]]  # rows in any order
    xs = rng.normal(size=(len(children), N_IN))
    h, c = b.transduce(xs, children, return_cells=True)
    want_h, want_c = numpy_child_sum([p.as_array() for p in b.get_parameters()], xs, children)
    np.testing.assert_allclose(np.asarray(h), want_h, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(c), want_c, rtol=1e-10, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 40), p_root=st.floats(0.0, 1.0), seed=st.integers(0, 10**6), exact=st.booleans(),
       width=st.sampled_from([None, 1, 3]))
def test_child_sum_on_random_forests(n, p_root, seed, exact, width):
    rng = np.random.default_rng(seed)
    pc = dy.ParameterCollection(seed=seed % 5)
    b = dy.ChildSumTreeLSTMBuilder(N_IN, H, pc)
    randomize(b, rng)
    children = random_forest_children(rng, n, p_root)
    xs = rng.normal(size=(n, N_IN)).astype(np.float32)
    got = b.transduce(xs, b.schedule(children, exact=exact, width=width))
    want, _ = numpy_child_sum([p.as_array() for p in b.get_parameters()], xs, children)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)


def _binary_forest(trees):
    """Rows for DyNet-style binary trees (nested tuples of word ids), in post-order: xs
    holds a leaf's embedding index (-1 at inner nodes), children the two children."""
    words, children = [], []

    def add(t):
        if not isinstance(t, tuple):
            words.append(t)
            children.append([])
            return len(words) - 1
        left, right = add(t[0]), add(t[1])
        words.append(-1)
        children.append([left, right])
        return len(words) - 1

    for t in trees:
        add(t)
    return words, children


def test_binary_equals_dynet_examples_treelstm(x64, rng):
    """DyNet's example model is the N-ary cell with N = 2, x = 0 at inner nodes (no W·x) and
    no children at leaves (no U·h); a forest of several trees in one call."""
    pc = dy.ParameterCollection(seed=0, dtype=jnp.float64)
    b = dy.NaryTreeLSTMBuilder(N_IN, H, pc, arity=2)
    randomize(b, rng)
    E = rng.normal(size=(9, N_IN))
    trees = [((0, 1), (2, (3, 4))), 5, (6, ((7, 8), 0))]
    words, children = _binary_forest(trees)
    xs = np.array([E[w] if w >= 0 else np.zeros(N_IN) for w in words])
    h, c = b.transduce(xs, children, return_cells=True)
    params = [p.as_array() for p in b.get_parameters()]
    want = [cell for t in trees for cell in numpy_dynet_binary(params, None, E, t)]
    np.testing.assert_allclose(np.asarray(h), np.array([hh for _, hh in want]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(c), np.array([cc for cc, _ in want]), rtol=1e-10, atol=1e-12)


def test_nary_positions_matter_and_absent_children_are_zeros(rng):
    pc = dy.ParameterCollection(seed=0)
    b = dy.NaryTreeLSTMBuilder(N_IN, H, pc, arity=3)
    randomize(b, rng)
    xs = rng.normal(size=(4, N_IN)).astype(np.float32)
    a = np.asarray(b.transduce(xs, [[], [], [], [0, -1, 1]]))
    swapped = np.asarray(b.transduce(xs, [[], [], [], [1, -1, 0]]))
    short = np.asarray(b.transduce(xs, [[], [], [], [0]]))
    absent = np.asarray(b.transduce(xs, [[], [], [], [0, -1, -1]]))
    assert not np.allclose(a[3], swapped[3], atol=1e-4)
    np.testing.assert_allclose(short, absent, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a[:3], swapped[:3], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["child_sum", "nary"])
def test_gradients_match_finite_differences(kind, x64, rng):
    pc = dy.ParameterCollection(seed=0, dtype=jnp.float64)
    b = dy.ChildSumTreeLSTMBuilder(N_IN, H, pc) if kind == "child_sum" else dy.NaryTreeLSTMBuilder(N_IN, H, pc)
    randomize(b, rng)
    children = [[], [], [0, 1], [], [2, 3], [], [5]]
    xs = jnp.asarray(rng.normal(size=(len(children), N_IN)))
    values = pc.parameter_values()
    sched = b.schedule(children)

    def f(values, xs):
        with pc.bind(values):
            h, c = b.transduce(xs, sched, return_cells=True)
            return jnp.sum(jnp.sin(h)) + jnp.sum(c ** 2)

    check_grads(f, (values, xs), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
    grads = jax.grad(f)(values, xs)
    assert all(float(jnp.abs(g).sum()) > 0 for g in grads.values())


def test_dropout_one_mask_per_tree(rng):
    """Two leaves of one tree with the same input get the same h (one mask per tree); the
    same leaves in two trees do not. Off: dropout changes nothing; the key decides."""
    pc = dy.ParameterCollection(seed=0)
    b = dy.ChildSumTreeLSTMBuilder(N_IN, H, pc)
    randomize(b, rng)
    x = rng.normal(size=N_IN)
    xs = np.stack([x, x, np.zeros(N_IN), x, x]).astype(np.float32)
    one_tree = [[], [], [0, 1], [], []]         # leaves 0, 1 under 2; leaves 3, 4 are trees alone
    b.set_dropouts(0.5, 0.0)
    key = jax.random.key(7)
    h = np.asarray(b.transduce(xs, one_tree, key=key))
    np.testing.assert_allclose(h[0], h[1])
    assert not np.allclose(h[3], h[4])
    np.testing.assert_allclose(h, np.asarray(b.transduce(xs, one_tree, key=key)))
    assert not np.allclose(h, np.asarray(b.transduce(xs, one_tree, key=jax.random.key(8))))
    b.disable_dropout()
    plain = np.asarray(b.transduce(xs, one_tree))
    np.testing.assert_allclose(plain[3], plain[4])
    b.set_dropouts(0.0, 0.5)  # on the children's h: the leaves have none, their parent does
    hh = np.asarray(b.transduce(xs, one_tree, key=key))
    np.testing.assert_allclose(hh[[0, 1, 3, 4]], plain[[0, 1, 3, 4]], rtol=1e-6)
    assert not np.allclose(hh[2], plain[2])


def test_save_and_load(tmp_path, rng):
    pc = dy.ParameterCollection(seed=0)
    cs, nary = dy.ChildSumTreeLSTMBuilder(N_IN, H, pc), dy.NaryTreeLSTMBuilder(N_IN, H, pc, arity=3)
    randomize(cs, rng)
    randomize(nary, rng)
    nary.set_dropouts(0.25, 0.5)
    path = str(tmp_path / "trees.npz")
    dy.save(path, [cs, nary])
    pc2 = dy.ParameterCollection(seed=5)
    cs2, nary2 = dy.load(path, pc2)
    assert type(nary2) is dy.NaryTreeLSTMBuilder and nary2.arity == 3 and nary2.dropout == (0.25, 0.5)
    xs = rng.normal(size=(4, N_IN)).astype(np.float32)
    kids = [[], [], [0, 1], [2]]
    np.testing.assert_allclose(np.asarray(cs2.transduce(xs, kids)), np.asarray(cs.transduce(xs, kids)))
    nary.disable_dropout()
    nary2.disable_dropout()
    np.testing.assert_allclose(np.asarray(nary2.transduce(xs, kids)), np.asarray(nary.transduce(xs, kids)))


def test_a_training_step_compiles_once_per_shape_and_learns(rng):
    """Sentiment-style training: the root's label from its h; schedules of one shape are
    arguments of one compiled step; the loss falls."""
    pc = dy.ParameterCollection(seed=0)
    b = dy.ChildSumTreeLSTMBuilder(N_IN, H, pc)
    W = pc.add_parameters((2, H))
    trainer = dy.AdamTrainer(pc, 0.05)
    batches = []
    for _ in range(6):
        children = random_forest_children(rng, 20, 0.15)
        roots = np.array([j for j in range(20) if all(j not in k for k in children)] + [20] * 20)[:20]
        xs = rng.normal(size=(20, N_IN)).astype(np.float32)
        gold = (xs.sum(1) > 0).astype(np.int32)  # a label each node's own input decides
        batches.append((xs, b.schedule(children, size=24, steps=24, width=8, fan=24), gold, roots))

    def loss_fn(xs, sched, gold):
        h = b.transduce(xs, sched)
        return -jnp.mean(jax.vmap(lambda hh, y: jax.nn.log_softmax(W @ hh)[y])(h, gold))

    first = [trainer.step(loss_fn, xs, s, g) for xs, s, g, _ in batches]
    with count_compiles() as compiled:
        for _ in range(30):
            last = [trainer.step(loss_fn, xs, s, g) for xs, s, g, _ in batches]
    assert compiled == []
    assert np.mean(last) < 0.6 * np.mean(first)


@pytest.mark.parametrize("kind", ["child_sum", "nary"])
def test_leaf_inputs_equal_node_inputs_with_zeros_elsewhere(kind, rng):
    """inputs="leaves" (one row per leaf, in node order) gives what one row per node gives
    with zero rows for the other nodes — values, dropout masks (one per tree) and gradients
    of parameters and inputs — eagerly, and inside a compiled function with a padded
    schedule; only W·x of the other nodes, a product by zeros, is skipped."""
    pc = dy.ParameterCollection(seed=0)
    b = dy.ChildSumTreeLSTMBuilder(N_IN, H, pc) if kind == "child_sum" else dy.NaryTreeLSTMBuilder(N_IN, H, pc)
    randomize(b, rng)
    children = [[], [], [0, 1], [], [2, 3], [], [], [5, 6], []]  # two trees and a lone leaf, in any order
    leaves = [i for i, k in enumerate(children) if not k]
    leaf_xs = rng.normal(size=(len(leaves), N_IN)).astype(np.float32)
    node_xs = np.zeros((len(children), N_IN), np.float32)
    node_xs[leaves] = leaf_xs
    b.set_dropouts(0.3, 0.2)
    key = jax.random.key(3)
    want_h, want_c = b.transduce(node_xs, children, key=key, return_cells=True)
    got_h, got_c = b.transduce(leaf_xs, children, key=key, return_cells=True, inputs="leaves")
    np.testing.assert_allclose(np.asarray(got_h), np.asarray(want_h), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_c), np.asarray(want_c), rtol=1e-5, atol=1e-6)

    sched = b.schedule(children, inputs="leaves", size=16, leaf_rows=8, steps=4, width=4)
    assert sched.input_rows == 8 and sched.inputs == "leaves"
    node_sched = b.schedule(children, size=16, steps=4, width=4)
    values = pc.parameter_values()

    def loss(values, xs, schedule):
        with pc.bind(values):
            h = b.transduce(xs, schedule, key=key)
            return jnp.sum(jnp.sin(h[:len(children)]) * jnp.arange(1.0, 1.0 + len(children))[:, None])

    want = jax.jit(jax.value_and_grad(loss, (0, 1)))(values, node_xs, node_sched)
    got = jax.jit(jax.value_and_grad(loss, (0, 1)))(values, leaf_xs, sched)
    np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-5)
    for name in values:
        np.testing.assert_allclose(np.asarray(got[1][0][name]), np.asarray(want[1][0][name]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got[1][1]), np.asarray(want[1][1])[leaves], rtol=1e-4, atol=1e-6)
    assert float(jnp.abs(got[1][1]).sum()) > 0

    with pytest.raises(ValueError, match="the forest has 6 leaves, but xs has 9 rows"):
        b.transduce(node_xs, children, inputs="leaves")
    with pytest.raises(ValueError, match="the schedule was built for inputs='leaves'"):
        b.transduce(leaf_xs, sched, inputs="nodes")
    with pytest.raises(ValueError, match="room for 8 leaf inputs"):
        b.transduce(np.zeros((9, N_IN), np.float32), sched)
    with pytest.raises(ValueError, match="inputs must be one of"):
        b.schedule(children, inputs="roots")
    with pytest.raises(ValueError, match="leaf_rows is for inputs='leaves'"):
        b.schedule(children, leaf_rows=8)
    with pytest.raises(ValueError, match=r"leaf_rows must be an int >= the number of leaves \(6\)"):
        b.schedule(children, inputs="leaves", leaf_rows=4)


def test_bad_inputs_get_clear_errors(rng):
    pc = dy.ParameterCollection(seed=0)
    b = dy.ChildSumTreeLSTMBuilder(N_IN, H, pc)
    nary = dy.NaryTreeLSTMBuilder(N_IN, H, pc)
    xs = rng.normal(size=(3, N_IN))
    with pytest.raises(ValueError, match="cycle"):
        b.transduce(xs, [[1], [2], [0]])
    with pytest.raises(ValueError, match="child of both node 1 and node 2"):
        b.transduce(xs, [[], [0], [0]])
    with pytest.raises(ValueError, match=r"children\[1\] names node 5"):
        b.transduce(xs, [[], [5], []])
    with pytest.raises(ValueError, match="node 2 has 3 children; this cell takes at most 2"):
        nary.transduce(xs, [[], [], [0, 1, -1]])
    with pytest.raises(ValueError, match="children has 2 entries and xs has 3 rows"):
        b.transduce(xs, [[], [0]])
    with pytest.raises(TypeError, match="children must be a list"):
        b.transduce(xs, np.array([[0], [1], [2]]))
    with pytest.raises(ValueError, match=r"xs must have shape \(N, input_dim=3\)"):
        b.transduce(rng.normal(size=(3, 2)), [[], [], []])
    with pytest.raises(ValueError, match="fan must equal arity"):
        dy.bottom_up_schedule([[], [0]], arity=2, fan=3)
    with pytest.raises(ValueError, match="this cell takes 2"):
        nary.transduce(xs, b.schedule([[], [], [0, 1]], fan=3))
    with pytest.raises(ValueError, match="d must be"):
        b.set_dropouts(1.5, 0.0)
