"""`RNNStack` against DyNet's way of writing a stack LSTM: a Python list of `RNNState`s,
push = `add_input`, pop = `prev()`. Random push/pop programs (hypothesis) must give the
same tops, the same outputs and the same gradients, eagerly, under jit/scan and vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dynrnn as dy

from .helpers import BUILDERS, randomize

n_in, H, B, CAP = 3, 4, 3, 6


def make(name, layers=2, seed=0):
    pc = dy.ParameterCollection(seed=seed)
    builder = BUILDERS[name][0](layers, n_in, H, pc)
    randomize(builder, np.random.default_rng(seed))
    return pc, builder


# A program: per step, an op code per example (0 = nothing, 1 = push, 2 = pop), kept legal.
@st.composite
def programs(draw, steps=st.integers(1, 10)):
    n = draw(steps)
    depth = [0] * B
    ops = []
    for _ in range(n):
        row = []
        for b in range(B):
            choices = [0] + ([1] if depth[b] < CAP else []) + ([2] if depth[b] > 0 else [])
            op = draw(st.sampled_from(choices))
            depth[b] += {0: 0, 1: 1, 2: -1}[op]
            row.append(op)
        ops.append(row)
    return np.array(ops, dtype=np.int32)


def eager_tops(builder, ops, xs):
    """DyNet style: one Python stack of states per example; returns, per step, each
    example's (top output, the output below it or None, the pushed input)."""
    tops = [builder.initial_state() for _ in range(B)]
    pushed = [[np.zeros(n_in, np.float32)] for _ in range(B)]
    out = []
    for t, row in enumerate(ops):
        for b, op in enumerate(row):
            if op == 1:
                tops[b] = tops[b].add_input(xs[t, b])
                pushed[b].append(xs[t, b])
            elif op == 2:
                tops[b] = tops[b].prev()
                pushed[b].pop()
        out.append([(tops[b].output(), None if tops[b].prev() is None else tops[b].prev().output(), pushed[b][-1])
                    for b in range(B)])
    return out


def run_stack(stack, ops, xs):
    """The same program on one batched stack, as scan-able masked operations."""
    outs = []
    for t in range(len(ops)):
        stack = stack.pop(where=ops[t] == 2).push(xs[t], where=ops[t] == 1)
        outs.append(stack)
    return outs


@pytest.mark.parametrize("name", ["lstm", "coupled", "gru", "simple"])
@given(ops=programs(), seed=st.integers(0, 2**16))
def test_batched_stack_equals_prev_chains(name, ops, seed):
    _, builder = make(name)
    xs = jnp.asarray(np.random.default_rng(seed).normal(size=(len(ops), B, n_in)), jnp.float32)
    want = eager_tops(builder, ops, xs)
    got = run_stack(dy.RNNStack(builder.initial_state(), CAP, batch_size=B), ops, xs)
    for t, (stack, row) in enumerate(zip(got, want)):
        depth = np.asarray(stack.depth)
        np.testing.assert_array_equal(depth, (ops[:t + 1] == 1).sum(0) - (ops[:t + 1] == 2).sum(0))
        for b, (top, below, pushed) in enumerate(row):
            np.testing.assert_allclose(stack.output()[b], top, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(stack.input()[b], pushed, rtol=1e-6, atol=1e-7)
            if below is not None:
                np.testing.assert_allclose(stack.output(1)[b], below, rtol=1e-5, atol=1e-6)
            else:  # below the base: the base state, by definition
                np.testing.assert_allclose(stack.output(1)[b], 0.0)
        for got_s, _want_s in zip(stack.top().s(), zip(*[builder.initial_state().s()] * B)):
            assert got_s.shape == (B, H)


def _scan_program(builder, ops, xs):
    def body(stack, u):
        op, x = u
        stack = stack.pop(where=op == 2).push(x, where=op == 1)
        return stack, (stack.output(), stack.depth)

    stack0 = dy.RNNStack(builder.initial_state(), CAP, batch_size=B)
    return jax.lax.scan(body, stack0, (jnp.asarray(ops), xs))[1]


@given(ops=programs(st.integers(1, 12)))
def test_stack_in_a_jitted_scan_equals_eager(ops):
    _, builder = make("coupled")
    xs = jnp.asarray(np.random.default_rng(1).normal(size=(len(ops), B, n_in)), jnp.float32)
    outs, depths = dy.jit(lambda o, x: _scan_program(builder, o, x), builder.param_collection())(ops, xs)
    want = eager_tops(builder, ops, xs)
    for t in range(len(ops)):
        np.testing.assert_allclose(outs[t], np.stack([w[0] for w in want[t]]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lstm", "coupled"])
def test_gradients_equal_the_prev_chain_version(name):
    pc, builder = make(name, seed=3)
    rng = np.random.default_rng(3)
    ops = np.array([[1, 1, 1], [1, 2, 0], [1, 1, 1], [2, 0, 1], [1, 2, 1], [2, 1, 2]], np.int32)
    xs = jnp.asarray(rng.normal(size=(len(ops), B, n_in)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(H,)), jnp.float32)

    def eager_loss(xs):
        total = 0.0
        for _t, row in enumerate(eager_tops(builder, ops, xs)):
            total = total + sum(jnp.tanh(top) @ w for top, _, _ in row)
        return total

    def batched_loss(xs):
        outs, _ = _scan_program(builder, ops, xs)
        return jnp.sum(jnp.tanh(outs) @ w)

    le, ge = dy.value_and_grad(eager_loss, pc, jit=False)(xs)
    lb, gb = dy.value_and_grad(batched_loss, pc)(xs)
    np.testing.assert_allclose(lb, le, rtol=1e-5)
    assert ge.keys() == gb.keys() and len(gb) == len(builder.saved_parameters())
    for k in ge:
        np.testing.assert_allclose(gb[k], ge[k], rtol=1e-4, atol=1e-5, err_msg=k)
    # and with respect to the pushed inputs
    gx_e = jax.grad(eager_loss)(xs)
    gx_b = dy.jit(jax.grad(batched_loss), pc)(xs)
    np.testing.assert_allclose(gx_b, gx_e, rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(gx_b)).sum() > 0


def test_pop_is_o1_and_push_after_pop_overwrites():
    _, builder = make("lstm")
    s = dy.RNNStack(builder.initial_state(), 4, batch_size=1)
    x1, x2, x3 = (jnp.full((1, n_in), v, jnp.float32) for v in (0.1, 0.2, 0.3))
    s2 = s.push(x1).push(x2)
    popped = s2.pop()
    assert popped._slots is s2._slots  # nothing recomputed or copied
    np.testing.assert_allclose(popped.output(), s.push(x1).output())
    s3 = popped.push(x3)
    np.testing.assert_allclose(s3.output()[0], builder.initial_state().add_input(x1[0]).add_input(x3[0]).output(),
                               rtol=1e-5, atol=1e-6)
    # the earlier stack value is unchanged (immutability)
    np.testing.assert_allclose(s2.output()[0], builder.initial_state().add_input(x1[0]).add_input(x2[0]).output(),
                               rtol=1e-5, atol=1e-6)
    st_ = s3.top()
    assert isinstance(st_, dy.RNNState) and st_.batch_size == 1


def test_full_and_empty_stacks():
    _, builder = make("gru")
    s = dy.RNNStack(builder.initial_state(), 2, batch_size=2)
    x = jnp.ones((2, n_in), jnp.float32)
    with pytest.raises(ValueError, match=r"stack\(s\) \[0, 1\] are empty"):
        s.pop()
    s = s.push(x).push(x, where=np.array([True, False]))
    with pytest.raises(ValueError, match=r"stack\(s\) \[0\] are full \(capacity 2\)"):
        s.push(x)
    np.testing.assert_allclose(s.output(2)[0], 0.0)  # below the base reads the base state
    # under jit the offending example's operation is skipped, the others happen
    pushed = dy.jit(lambda st, x: st.push(x), builder.param_collection())(s, x)
    np.testing.assert_array_equal(pushed.depth, [2, 2])
    np.testing.assert_allclose(pushed.output()[0], s.output()[0])
    empty = dy.RNNStack(builder.initial_state(), 2, batch_size=2)
    np.testing.assert_array_equal(jax.jit(lambda st: st.pop())(empty).depth, [0, 0])


def test_bad_arguments_get_clear_errors():
    _, builder = make("lstm")
    with pytest.raises(ValueError, match="unbatched; give batch_size"):
        dy.RNNStack(builder.initial_state(), 3)
    with pytest.raises(TypeError, match="expected an RNNState"):
        dy.RNNStack(builder, 3, batch_size=2)
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        dy.RNNStack(builder.initial_state(), 0, batch_size=2)
    s = dy.RNNStack(builder.initial_state(), 3, batch_size=2)
    with pytest.raises(ValueError, match=r"x has shape \(3, 3\); expected \(2, 3\)"):
        s.push(jnp.ones((3, n_in)))
    with pytest.raises(TypeError, match="where must be booleans"):
        s.push(jnp.ones((2, n_in)), where=np.array([1, 0]))
    with pytest.raises(ValueError, match=r"where must be a \(2,\) bool array"):
        s.pop(where=np.array([True]))
    with pytest.raises(AttributeError, match="immutable"):
        s.capacity_ = 3


def test_vmap_over_stacks_and_batched_initial_state():
    _, builder = make("coupled", layers=1)
    rng = np.random.default_rng(0)
    h0 = [jnp.asarray(rng.normal(size=(B, H)), jnp.float32) for _ in range(2)]
    xs = jnp.asarray(rng.normal(size=(B, 4, n_in)), jnp.float32)

    def one(c, h, x):  # one example's stack, batch 1, pushed 4 times then popped twice
        st_ = dy.RNNStack(builder.initial_state([c[None], h[None]]), 4)
        for t in range(4):
            st_ = st_.push(x[t][None])
        return st_.pop().pop().output()[0]

    got = jax.vmap(one)(h0[0], h0[1], xs)
    st_ = dy.RNNStack(builder.initial_state(h0), 4)
    for t in range(4):
        st_ = st_.push(xs[:, t])
    np.testing.assert_allclose(got, st_.output(2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, builder.initial_state(h0).add_input(xs[:, 0]).add_input(xs[:, 1]).output(),
                               rtol=1e-5, atol=1e-6)


@settings(max_examples=8)  # each example compiles a new program: keep the suite quick
@given(ops=programs(st.integers(1, 8)), seed=st.integers(0, 2**16))
def test_gradients_equal_the_prev_chain_version_on_random_programs(ops, seed):
    pc, builder = make("lstm", seed=1)
    rng = np.random.default_rng(seed)
    xs = jnp.asarray(rng.normal(size=(len(ops), B, n_in)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(H,)), jnp.float32)

    def eager_loss(xs):
        return sum(sum(jnp.tanh(top) @ w for top, _, _ in row) for row in eager_tops(builder, ops, xs))

    def batched_loss(xs):
        return jnp.sum(jnp.tanh(_scan_program(builder, ops, xs)[0]) @ w)

    (le, ge), (lb, gb) = (dy.value_and_grad(eager_loss, pc, jit=False)(xs), dy.value_and_grad(batched_loss, pc)(xs))
    np.testing.assert_allclose(lb, le, rtol=1e-5, atol=1e-5)
    for k in ge:
        np.testing.assert_allclose(gb[k], ge[k], rtol=1e-4, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(dy.jit(jax.grad(batched_loss), pc)(xs), jax.grad(eager_loss)(xs), rtol=1e-4, atol=1e-5)


def test_push_gradients_match_finite_differences(x64):
    """The stack's hand-written backward pass against numerical derivatives (float64):
    parameters, pushed inputs and the base state, through pops, masked pushes and reads."""
    from jax.test_util import check_grads

    pc = dy.ParameterCollection(seed=0, dtype=jnp.float64)
    builder = dy.CoupledLSTMBuilder(2, n_in, H, pc)
    randomize(builder, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    xs = jnp.asarray(rng.normal(size=(5, B, n_in)))
    h0 = jnp.asarray(rng.normal(size=(B, H)))
    ops = np.array([[1, 1, 1], [1, 0, 1], [2, 1, 1], [1, 2, 2], [1, 1, 0]], np.int32)
    values = pc.parameter_values()

    def f(values, xs, h0):
        with pc.bind(values):
            stack = dy.RNNStack(builder.initial_state([h0, h0, h0, h0]), 4)
            total = 0.0
            for t in range(len(ops)):
                stack = stack.pop(where=ops[t] == 2).push(xs[t], where=ops[t] == 1)
                total = total + jnp.sum(jnp.sin(stack.output())) + jnp.sum(stack.output(1) ** 2) \
                    + jnp.sum(stack.input(1) * stack.top().s()[0][:, :n_in])
            return total

    check_grads(f, (values, xs, h0), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
