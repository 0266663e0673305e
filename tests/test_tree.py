"""`RNNState.transduce_tree`: a tree (forest) of states computed level by level equals the
loop `states[i] = states[parents[i]].add_input(xs[i])` — against a NumPy reference, the
library's own add_input loop, numerical derivatives, and under jit with a schedule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

import dynrnn as dy

from . import references as ref
from .helpers import BUILDERS, count_compiles, layer_params, randomize
from .test_custom_cell import MinimalGatedUnit

n_in, H = 3, 4


def make(name, layers=2, dtype=jnp.float32, seed=0):
    pc = dy.ParameterCollection(seed=seed, dtype=dtype)
    b = BUILDERS[name][0](layers, n_in, H, pc)
    randomize(b, np.random.default_rng(seed + 1))
    return pc, b


def random_forest(rng, n, p_root=0.2):
    """Parents of a random forest of n nodes (each parent before its child)."""
    return [-1 if i == 0 or rng.random() < p_root else int(rng.integers(0, i)) for i in range(n)]


def numpy_tree(name, builder, xs, parents):
    """The NumPy reference: each node one step of the reference stack from its parent's state."""
    _, cell, kw = BUILDERS[name]
    lp = layer_params(builder)
    states, outs = [], []
    for i, p in enumerate(parents):
        out, st_ = ref.run_stack(cell, lp, xs[i:i + 1], None if p < 0 else states[p], **kw)
        states.append(st_[0])
        outs.append(out[0])
    return np.array(outs), states


def loop(s0, xs, parents):
    states = []
    for i, p in enumerate(parents):
        states.append((s0 if p < 0 else states[p]).add_input(xs[i]))
    return states


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_equals_numpy_reference(name, x64, rng):
    pc, b = make(name, dtype=jnp.float64)
    parents = [-1, 0, 0, 1, -1, 4, 3, 2, -1, 8, 9, 9, 0]
    xs = rng.normal(size=(len(parents), n_in))
    out, states = b.initial_state().transduce_tree(xs, parents, return_states=True)
    want, want_states = numpy_tree(name, b, xs, parents)
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-10, atol=1e-12)
    n_comp = len(want_states[0][0])
    for i in range(len(parents)):  # s() is component-major: (c_1..c_L, h_1..h_L) for an LSTM
        got = [np.asarray(a)[i] for a in states.s()]
        ref_s = [want_states[i][li][k] for k in range(n_comp) for li in range(2)]
        for g, w in zip(got, ref_s):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 30), p_root=st.floats(0.0, 1.0), seed=st.integers(0, 10**6),
       name=st.sampled_from(["lstm", "gru", "coupled"]), exact=st.booleans(), width=st.sampled_from([None, 1, 2, 5]))
def test_equals_the_add_input_loop_on_random_forests(n, p_root, seed, name, exact, width):
    rng = np.random.default_rng(seed)
    pc, b = make(name, seed=seed % 7)
    parents = random_forest(rng, n, p_root)
    xs = jnp.asarray(rng.normal(size=(n, n_in)), jnp.float32)
    s0 = b.initial_state()
    sched = dy.tree_schedule(parents, exact=exact, width=width)  # narrow widths split levels
    out, states = s0.transduce_tree(xs, sched, return_states=True)
    want = loop(s0, xs, parents)
    np.testing.assert_allclose(np.asarray(out), np.stack([s.output() for s in want]), rtol=2e-5, atol=2e-6)
    for k, a in enumerate(states.s()):
        np.testing.assert_allclose(np.asarray(a), np.stack([s.s()[k] for s in want]), rtol=2e-5, atol=2e-6)


def test_levels_are_the_depths_and_sizes_are_rounded():
    parents = [-1, 0, 1, 2, -1, 4, 0]
    s = dy.tree_schedule(parents, exact=True)
    assert s.steps == 4 and s.width == 3 and s.size == 7 and s.count == 7
    depth = {int(v): k for k in range(s.steps) for v in s.nodes[k] if v < 7}
    assert depth == {0: 0, 4: 0, 1: 1, 5: 1, 6: 1, 2: 2, 3: 3}
    for k in range(s.steps):  # a node's parent row is its parent (or the initial state's row)
        for v, p in zip(s.nodes[k], s.parents[k]):
            if v < 7:
                assert p == (parents[v] if parents[v] >= 0 else 7)
            else:  # padding writes to the scratch row
                assert v == 8
    big = dy.tree_schedule(random_forest(np.random.default_rng(0), 37))
    assert big.size == 40  # rounded up by at most 25%
    assert dy.tree_schedule([-1] * 9).width == 10
    fixed = dy.tree_schedule(parents, size=20, steps=6, width=5)
    assert (fixed.size, fixed.steps, fixed.width) == (20, 6, 5)
    narrow = dy.tree_schedule(parents, width=2, exact=True)  # level 1 (three nodes) takes two steps
    assert narrow.steps == 5 and sorted(int(v) for v in narrow.nodes[1:3].ravel() if v < 7) == [1, 5, 6]


def test_user_cell_without_input_projection(rng):
    pc = dy.ParameterCollection(seed=0)
    b = dy.RNNBuilder(2, n_in, H, pc, cell=MinimalGatedUnit)
    parents = random_forest(rng, 11)
    xs = jnp.asarray(rng.normal(size=(11, n_in)), jnp.float32)
    s0 = b.initial_state()
    out = s0.transduce_tree(xs, parents)
    np.testing.assert_allclose(np.asarray(out), np.stack([s.output() for s in loop(s0, xs, parents)]),
                               rtol=2e-5, atol=2e-6)


def test_dropout_masks_are_the_loops(rng):
    """A tree is one sequence: every node uses the initial state's masks, as the loop does."""
    pc, b = make("lstm")
    b.set_dropouts(0.5, 0.5)
    s0 = b.initial_state(key=jax.random.key(4))
    parents = random_forest(rng, 15)
    xs = jnp.asarray(rng.normal(size=(15, n_in)), jnp.float32)
    out = s0.transduce_tree(xs, parents)
    np.testing.assert_allclose(np.asarray(out), np.stack([s.output() for s in loop(s0, xs, parents)]),
                               rtol=2e-5, atol=2e-6)
    b.disable_dropout()
    assert not np.allclose(np.asarray(out), np.asarray(b.initial_state().transduce_tree(xs, parents)), atol=1e-3)


@pytest.mark.parametrize("name", ["lstm", "gru", "simple"])
def test_gradients_match_finite_differences(name, x64, rng):
    pc, b = make(name, dtype=jnp.float64)
    parents = [-1, 0, 0, 1, -1, 4, 2]
    xs = jnp.asarray(rng.normal(size=(len(parents), n_in)))
    values = pc.parameter_values()

    def f(values, xs):
        with pc.bind(values):
            return jnp.sum(jnp.sin(b.initial_state().transduce_tree(xs, parents)))

    check_grads(f, (values, xs), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)

    def g(values, xs):  # the same function as the loop
        with pc.bind(values):
            return jnp.sum(jnp.sin(jnp.stack([s.output() for s in loop(b.initial_state(), xs, parents)])))

    got, want = jax.grad(f, argnums=(0, 1))(values, xs), jax.grad(g, argnums=(0, 1))(values, xs)
    for a, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(w), rtol=1e-9, atol=1e-12)


def test_a_training_step_compiles_once_per_bucket(rng):
    """The schedule is an argument of the compiled step: new forests of the same rounded
    sizes reuse its compilation; the result equals the eager loop's."""
    pc, b = make("lstm", layers=1)
    W = pc.add_parameters((5, H))
    trainer = dy.SimpleSGDTrainer(pc, 0.1)

    def loss_fn(xs, sched, gold):
        out = b.initial_state().transduce_tree(xs, sched)
        return jnp.sum(jax.vmap(lambda h, y: -jax.nn.log_softmax(W @ h)[y])(out, gold))

    padded = []
    for _ in range(4):  # sizes, depths and widths vary; one shape for all
        parents = random_forest(rng, 30, 0.1)
        padded.append((parents, dy.tree_schedule(parents, size=32, steps=32, width=16)))
    xs = jnp.asarray(rng.normal(size=(32, n_in)), jnp.float32)
    gold = jnp.asarray(rng.integers(0, 5, 32))
    trainer.step(loss_fn, xs, padded[0][1], gold)
    compiled = []
    for parents, s in padded[1:]:
        states = loop(b.initial_state(), xs[:30], parents)  # before the update
        logits = [W.as_array() @ st_.output() for st_ in states] + [W.as_array() @ np.zeros(H)] * 2
        want = sum(float(-jax.nn.log_softmax(z)[y]) for z, y in zip(logits, np.asarray(gold)))
        with count_compiles() as names:
            loss = trainer.step(loss_fn, xs, s, gold)
        compiled += names
        np.testing.assert_allclose(loss, want, rtol=1e-5)
    assert compiled == []


def test_graph_mode_runs_the_loop(rng):
    pc, b = make("lstm")
    parents = [-1, 0, 0, 1]
    xs = rng.normal(size=(4, n_in)).astype(np.float32)
    want = np.asarray(b.initial_state().transduce_tree(xs, parents))
    dy.renew_cg()
    try:
        outs = b.initial_state().transduce_tree([dy.inputTensor(x) for x in xs], parents)
        np.testing.assert_allclose(np.stack([o.npvalue() for o in outs]), want, rtol=1e-5, atol=1e-6)
    finally:
        dy.graph.end_graph()


def test_bad_inputs_get_clear_errors(rng):
    pc, b = make("lstm")
    s0 = b.initial_state()
    xs = rng.normal(size=(3, n_in))
    with pytest.raises(ValueError, match=r"parents\[1\] = 1; each parent must come before its child"):
        s0.transduce_tree(xs, [-1, 1, 0])
    with pytest.raises(ValueError, match=r"parents\[2\] = -2"):
        s0.transduce_tree(xs, [-1, 0, -2])
    with pytest.raises(ValueError, match="parents has 2 entries and xs has 3 rows"):
        s0.transduce_tree(xs, [-1, 0])
    with pytest.raises(TypeError, match="1-D sequence of ints"):
        s0.transduce_tree(xs, [-1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match=r"xs must have shape \(N, input_dim=3\)"):
        s0.transduce_tree(rng.normal(size=(3, 5)), [-1, 0, 0])
    with pytest.raises(ValueError, match="this state is batched"):
        b.initial_state().add_input(np.zeros((2, n_in))).transduce_tree(xs, [-1, 0, 0])
    with pytest.raises(ValueError, match="room for 3"):
        s0.transduce_tree(np.zeros((5, n_in)), dy.tree_schedule([-1, 0, 0], exact=True))
    with pytest.raises(ValueError, match=r"size must be an int >= the number of nodes \(3\)"):
        dy.tree_schedule([-1, 0, 0], size=2)
    with pytest.raises(TypeError, match="built outside it"):
        jax.jit(lambda p: s0.transduce_tree(jnp.zeros((3, n_in)), p))(jnp.array([-1, 0, 0]))


def test_level_scan_equals_the_plain_loop_with_gradients(x64, rng):
    """dy.level_scan against a Python loop of the same gathers and writes (autodiff through
    the loop is the reference for its written-out backward pass): values and gradients in
    params, the initial table and the per-node extras; rows read twice, initial rows read."""
    R, D = 12, 3
    table = jnp.asarray(rng.normal(size=(R, D)))
    # rows 0-3 are initial; step 0 writes 4, 5 from (0, 1), (2, 3); step 1 writes 6 from (4, 5),
    # 7 from (4, 0); step 2 writes 8 from (6, 7) and pads into the scratch row 11 from (10, 10)
    reads = np.array([[[0, 1], [2, 3]], [[4, 5], [4, 0]], [[6, 7], [10, 10]]])
    writes = np.array([[4, 5], [6, 7], [8, 11]])
    extras = jnp.asarray(rng.normal(size=(3, 2, D)))
    W = jnp.asarray(rng.normal(size=(D, 2 * D)))

    def fn(W, rows, e):
        return jnp.tanh(rows.reshape(rows.shape[0], -1) @ W.T + e)

    def loop(W, table, extras):
        for k in range(len(writes)):
            table = table.at[writes[k]].set(fn(W, table[reads[k]], extras[k]))
        return table

    def loss(f):
        return lambda W, table, extras: jnp.sum(jnp.sin(f(W, table, extras)[:9]) ** 2)

    scan = lambda W, table, extras: dy.level_scan(fn, W, table, reads, writes, extras)  # noqa: E731
    np.testing.assert_allclose(np.asarray(scan(W, table, extras))[:9], np.asarray(loop(W, table, extras))[:9],
                               rtol=1e-12)
    got = jax.grad(loss(scan), argnums=(0, 1, 2))(W, table, extras)
    want = jax.grad(loss(loop), argnums=(0, 1, 2))(W, table, extras)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g)[:9] if g.ndim == 2 and g.shape[0] == R else np.asarray(g),
                                   np.asarray(w)[:9] if w.ndim == 2 and w.shape[0] == R else np.asarray(w),
                                   rtol=1e-10, atol=1e-12)
    assert float(jnp.abs(got[1][4:9]).sum()) == 0.0  # written rows: their initial values do not matter
    check_grads(lambda W, e: loss(scan)(W, table, e), (W, extras), order=1, modes=("rev",))


def test_level_scan_runs_only_the_first_steps(x64, rng):
    """`steps` runs the first steps and skips the rest (padding), traced or not: the values
    and gradients of the shorter loop, the skipped steps' extras get zero cotangents, and
    one compilation serves every count."""
    R, D = 10, 3
    table = jnp.asarray(rng.normal(size=(R, D)))
    reads = np.array([[[0, 1]], [[4, 2]], [[5, 3]], [[0, 0]]])
    writes = np.array([[4], [5], [6], [7]])   # step 3 would write row 7 from row 0
    extras = jnp.asarray(rng.normal(size=(4, 1, D)))
    W = jnp.asarray(rng.normal(size=(D, 2 * D)))

    def fn(W, rows, e):
        return jnp.tanh(rows.reshape(rows.shape[0], -1) @ W.T + e)

    def loop(W, table, extras, k):
        for j in range(k):
            table = table.at[writes[j]].set(fn(W, table[reads[j]], extras[j]))
        return table

    def loss(W, table, extras, k, f):
        return jnp.sum(jnp.sin(f(W, table, extras, k)) ** 2)

    scan = jax.jit(lambda W, table, extras, k: dy.level_scan(fn, W, table, reads, writes, extras, steps=k))
    grad = jax.jit(jax.grad(lambda *a: loss(*a, scan), argnums=(0, 1, 2)))
    counts = (3, 1, 4, 0)
    wants = [(loop(W, table, extras, k),
              jax.grad(lambda *a, k=k: loss(*a, k, loop), argnums=(0, 1, 2))(W, table, extras)) for k in counts]
    steps = [jnp.int32(k) for k in counts]
    with count_compiles() as names:
        got = [(scan(W, table, extras, n), grad(W, table, extras, n)) for n in steps]
    assert len(names) == 2  # the values and the gradient, each once for every count
    for k, (value, grads), (want_value, want_grads) in zip(counts, got, wants):
        np.testing.assert_allclose(np.asarray(value), np.asarray(want_value), rtol=1e-12)
        for g, w in zip(grads, want_grads):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)
        assert float(jnp.abs(grads[2][k:]).sum()) == 0.0  # the skipped steps' extras
    np.testing.assert_allclose(np.asarray(dy.level_scan(fn, W, table, reads, writes, extras, steps=2)),
                               np.asarray(loop(W, table, extras, 2)), rtol=1e-12)  # a Python int
    with pytest.raises(ValueError, match="steps must be between 0 and the 4 steps"):
        dy.level_scan(fn, W, table, reads, writes, extras, steps=5)


def test_schedules_bucket_steps_by_powers_of_two_and_run_only_their_levels(rng):
    """By default a schedule's steps are a power of two and its `run_steps` the steps
    holding nodes; forests of 5 and 8 levels share a shape and equal the loop."""
    chain5, chain8 = [-1, 0, 1, 2, 3], [-1, 0, 1, 2, 3, 4, 5, 6]
    s5, s8 = dy.tree_schedule(chain5, size=8), dy.tree_schedule(chain8, size=8)
    assert (s5.steps, int(s5.run_steps), s8.steps, int(s8.run_steps)) == (8, 5, 8, 8)
    assert dy.tree_schedule(chain5, exact=True).steps == 5
    assert dy.tree_schedule(chain5, steps=6).steps == 6
    pc, b = make("lstm", layers=1)
    xs = jnp.asarray(rng.normal(size=(8, n_in)), jnp.float32)
    run = dy.jit(lambda xs, sched: b.initial_state().transduce_tree(xs, sched), pc)
    run(xs, s8)
    with count_compiles() as names:
        out = run(xs, s5)
    assert names == []
    want = loop(b.initial_state(), xs[:5], chain5)
    np.testing.assert_allclose(np.asarray(out)[:5], np.stack([st.output() for st in want]), rtol=2e-5, atol=2e-6)
    sb = dy.NaryTreeLSTMBuilder(n_in, H, dy.ParameterCollection(seed=0), arity=2).schedule(
        [[], [], [0, 1], [], [2, 3], [], [4, 5]])
    assert (sb.steps, int(sb.run_steps)) == (4, 3)


def test_pack_levels_packs_each_level_into_steps_of_width_nodes():
    chunks, steps, width = dy.pack_levels([2, 0, 1, 1, 1, 0], width=2, exact=True)
    assert [c.tolist() for c in chunks] == [[1, 5], [2, 3], [4], [0]] and (steps, width) == (4, 2)
    assert dy.pack_levels([2, 0, 1, 1, 1, 0], width=2, steps=lambda k: 4 * k)[1] == 16  # a rounding rule
    _, steps, width = dy.pack_levels([0, 0, 0, 1], exact=True)
    assert (steps, width) == (2, 3)                                                      # default: widest level
    with pytest.raises(ValueError, match=r"steps must be an int >= 4 .*given 3"):
        dy.pack_levels([2, 0, 1, 1, 1, 0], width=2, steps=lambda k: k - 1)
    with pytest.raises(TypeError, match="levels must be a 1-D sequence of ints; given dtype float64"):
        dy.pack_levels([0.0, 1.5])
    with pytest.raises(ValueError, match="levels must be ints >= 0; given -1"):
        dy.pack_levels([0, -1])


def test_a_steps_rounding_rule_plans_what_the_rounded_count_plans():
    parents = [-1, 0, 1, 2, -1, 4, 0]  # four levels
    exact = dy.tree_schedule(parents, exact=True)
    ruled = dy.tree_schedule(parents, width=exact.width, size=7, steps=lambda k: 4 * k)
    given = dy.tree_schedule(parents, width=exact.width, size=7, steps=16)
    assert (exact.steps, ruled.steps) == (4, 16)
    np.testing.assert_array_equal(ruled.nodes, given.nodes)
    np.testing.assert_array_equal(ruled.parents, given.parents)
