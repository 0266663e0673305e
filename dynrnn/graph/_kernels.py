"""The kernel cache: one `jax.jit` function per (operation, shapes) signature.

A graph never compiles the user's program. Each node's operation is a pure function of
one example's arrays (DyNet's dimensions); this module turns it into compiled kernels:

* `node_kernel(sig)` — one node: the operation, `vmap`-ed over DyNet's minibatch axis
  when the node is batched;
* `group_kernel(sig, shared, modes, n)` — `n` nodes of the same signature as one call
  (autobatching): the node function `vmap`-ed over a stacking axis, with the arguments
  that every node shares (a parameter) passed once;
* `fused_kernel(stages)` — groups that feed one another row by row (each node of a
  stage has its one consumer in the next) as one call: a pipeline of elementwise and
  matrix operations costs one dispatch, and one compilation per group size;
* `packed_kernel(sig)` — one node whose many arguments are rows of one
  stack (an `esum` over a group's outputs), gathered inside the kernel;
* `chain_kernel(sig, shared, modes, n, t, state_pos, x_pos)` — `n` chains of `t`
  recurrent steps (each step's state is the previous step's output) as one `lax.scan`;

and, for each, its VJP (`jax.vjp` of the same function, recomputing the forward inside
the kernel; in a training loop a forward keeps its pullback instead, see `_keeping`).
A group's results stay stacked on the device — the row i of the output is node i's
value — and the next group reads its arguments from such stacks by index (mode "take":
one gather inside the kernel) instead of passing every row as an argument (mode "list").
Group sizes and chain counts are padded by `group_size` (a size already compiled within
4×, else a power of two) so that the number of compiled kernels stays bounded whatever
the data.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._batching import pow2, reuse_size
from .._xla import kernel_jit, plumbing_jit

tree_map = jax.tree_util.tree_map


# Per kernel (a group's signature, shared arguments and input stacks; or a packed node's):
# the padded sizes it has run at.
_GROUP_SIZES: dict[tuple, set] = {}


# A group kernel compiles once per layout of its inputs (the shapes of the stacks its rows
# come from, `_schedule._layout`): few for sequences, whose stacks come in a few sizes, but
# one per combination of producers' and consumer's sizes for trees, whose nodes take their
# children's values from groups of every size (DyNet's Tree-LSTM example: 65 group kernels
# and 63 VJPs compiled in its first 40 trees, 38 s). After MAX_LAYOUTS layouts of one
# kernel, its inputs are stacked by small calls of their own ("dense", `gather_kernel`,
# compiled in milliseconds) and it compiles once per group size.
MAX_LAYOUTS = 6
_LAYOUTS: dict[tuple, set] = {}


def too_many_layouts(key: tuple, layout: tuple) -> bool:
    """Whether a group kernel `key` (signature, shared arguments) should take its inputs
    stacked ("dense") rather than in `layout` (remembered while there are few)."""
    seen = _LAYOUTS.setdefault(key, set())
    if layout in seen or not layout:
        return False
    if len(seen) < MAX_LAYOUTS:
        seen.add(layout)
        return False
    return True


def group_size(key: tuple, n: int) -> int:
    """The padded size for a group of `n` nodes with kernel `key` (signature, shared
    arguments, input stacks): a size this kernel has already run at — compiled, forward
    and VJP — if one is within 4× (`reuse_size`), else the next power of two."""
    return reuse_size(_GROUP_SIZES.setdefault(key, set()), n)


class Sig:
    """A node's kernel signature — what its compiled code depends on — interned, with its
    hash computed once (it keys every cache and every autobatching group).

    op: the Op; static: hashable settings of the op; args: per expression argument
    (dims, batch, dtype); consts: per host constant (ids, indices) (shape, dtype);
    batch: the node's own batch size."""

    __slots__ = ("op", "static", "args", "consts", "batch", "_t", "_h")

    def __init__(self, t: tuple):
        self._t, self._h = t, hash(t)
        self.op, self.static, self.args, self.consts, self.batch = t

    def __hash__(self) -> int:
        return self._h

    def __eq__(self, other: Any) -> bool:
        return self is other or (type(other) is Sig and self._h == other._h and self._t == other._t)

    def __repr__(self) -> str:
        return f"Sig({self.op!r}, {self.static!r}, {self.args}, batch={self.batch})"


def node_function(sig: Sig) -> Callable:
    """The node's function on its arguments' full arrays (batch axis first when batched)."""
    op = sig.op
    f = functools.partial(op.fn, sig.static)
    if op.batch_level or sig.batch == 1:
        return f
    in_axes = tuple(0 if a[1] > 1 else None for a in sig.args) + (None,) * len(sig.consts)
    return jax.vmap(f, in_axes=in_axes)


def _vjp(f: Callable, args: tuple, diff: tuple) -> tuple:
    """`jax.vjp` of `f(*args)` with respect to the arguments at positions `diff`."""
    def at(*d):
        full = list(args)
        for k, v in zip(diff, d):
            full[k] = v
        return f(*full)

    return jax.vjp(at, *(args[k] for k in diff))


def _backward(f: Callable, diff: tuple, name: str, plumbing: bool = False) -> Callable:
    """The compiled VJP of `f(*args)` with respect to the arguments at positions `diff`:
    `(*args, ct) -> their cotangents` (the forward is recomputed inside the kernel)."""
    def backward(*args_and_ct):
        *args, ct = args_and_ct
        return _vjp(f, tuple(args), diff)[1](ct)

    backward.__name__ = backward.__qualname__ = name
    return kernel_jit(backward, plumbing)


@functools.cache
def node_kernel(sig: Sig) -> Callable:
    return kernel_jit(node_function(sig))


@functools.cache
def node_vjp(sig: Sig) -> Callable:
    f = node_function(sig)
    return _backward(lambda args, consts: f(*args, *consts), (0,), "node_backward")


def unpack(mode: str, diff: Any, aux: Any) -> Any:
    """One argument position of a group, stacked: "take" gathers rows `aux` of the stack
    `diff` (a group's output); "masked" too, zeros where `aux`'s mask is off; "sum" adds the
    arrays `diff`; "list" stacks the tuple of arrays `diff`; "dense" is `diff` itself, already
    stacked (by `gather_kernel`)."""
    if mode == "dense":
        return diff
    if mode == "take":
        return tree_map(lambda a: a[aux], diff)
    if mode == "masked":  # rows aux[0] of the stack, where aux[1]; zeros elsewhere
        idx, mask = aux
        return jnp.where(mask.reshape(mask.shape + (1,) * (diff.ndim - 1)), diff[idx], 0)
    if mode == "sum":  # the sum of same-shaped arrays
        return functools.reduce(jnp.add, diff)
    return tree_map(lambda *xs: jnp.stack(xs), *diff)


def _group_function(sig: Sig, shared: tuple, modes: tuple, link: int | None = None) -> Callable:
    """`(shared_args, diffs, auxs, stacked_consts[, prev]) -> stacked outputs`; diffs/auxs
    hold, for each argument that is not shared, its packed rows (see `unpack`). In a fused
    call, argument `link` is `prev`, the previous stage's output (row i for node i)."""
    f = node_function(sig)
    in_axes = tuple(None if s else 0 for s in shared) + (0,) * len(sig.consts)

    def group(shared_args, diffs, auxs, consts, prev=None):
        it_s, it_p = iter(shared_args), iter(zip(modes, diffs, auxs))
        args = [prev if k == link else next(it_s) if s else unpack(*next(it_p)) for k, s in enumerate(shared)]
        return jax.vmap(f, in_axes=in_axes)(*args, *consts)

    return group


@functools.cache
def group_kernel(sig: Sig, shared: tuple, modes: tuple) -> Callable:
    return kernel_jit(_group_function(sig, shared, modes))


@functools.cache
def group_vjp(sig: Sig, shared: tuple, modes: tuple) -> Callable:
    return _backward(_group_function(sig, shared, modes), (0, 1), "group_backward")


def _fused_stages(stages: tuple) -> list:
    """Per stage of a fused call, `(run, n_shared, n_packed, n_consts)`: `run` is the
    stage's group function, taking the previous stage's output at argument `link`."""
    return [(_group_function(sig, shared, modes, link), sum(shared), len(modes), len(sig.consts))
            for sig, shared, modes, link in stages]


def _split(parts: list, shared_args: tuple, diffs: tuple, auxs: tuple, consts: tuple):
    """The arguments of a fused call, cut per stage."""
    i = j = c = 0
    for run, ns, nd, nc in parts:
        yield run, shared_args[i:i + ns], diffs[j:j + nd], auxs[j:j + nd], consts[c:c + nc]
        i, j, c = i + ns, j + nd, c + nc


def _fused_function(stages: tuple) -> Callable:
    """Groups run one after another in one call: stage j's nodes each take their argument
    `link` from the same row of stage j - 1's output (`link` is None for the first stage).
    A stage is `(sig, shared, modes, link)` as for `group_kernel`; the arguments are those
    of the stages' group functions, concatenated: `(shared_args, diffs, auxs,
    stacked_consts) -> every stage's stacked output` (a tuple, one per stage)."""
    parts = _fused_stages(stages)

    def fused(shared_args, diffs, auxs, consts):
        outs: list = []
        for run, sa, df, ax, cs in _split(parts, shared_args, diffs, auxs, consts):
            outs.append(run(sa, df, ax, cs, outs[-1] if outs else None))
        return tuple(outs)

    return fused


@functools.cache
def fused_kernel(stages: tuple) -> Callable:
    return kernel_jit(_fused_function(stages))


def _fused_forward(stages: tuple, policy: Any = None) -> Callable:
    """`(shared_args, diffs, auxs, consts) -> (every stage's output, every stage's pullback)`
    (with a `jax.checkpoint` policy, each pullback keeps only what it allows)."""
    parts = _fused_stages(stages)

    def forward(shared_args, diffs, auxs, consts):
        pulls, outs, prev = [], [], None
        for run, sa, df, ax, cs in _split(parts, shared_args, diffs, auxs, consts):
            def stage(sa, df, pv, run=run, ax=ax, cs=cs):
                return run(sa, df, ax, cs, pv)
            prev, pull = jax.vjp(stage if policy is None else jax.checkpoint(stage, policy=policy), sa, df, prev)
            pulls.append(pull)
            outs.append(prev)
        return tuple(outs), tuple(pulls)

    return forward


def _fused_back(outs: tuple, pulls: tuple, cts: tuple) -> tuple:
    """`(shared cotangents, packed cotangents, every stage's total output cotangent)` from
    the stages' outputs and pullbacks. `cts` holds, per stage, what its output received
    from outside the call, or None (an intermediate stage's nodes feed only the next stage,
    so usually None: no zero table of its size is read and added); the totals add what
    flowed back from the later stages."""
    s_ct: list = []
    d_ct: list = []
    totals: list = [None] * len(pulls)
    carry = None
    for j in reversed(range(len(pulls))):
        own = cts[j]
        totals[j] = (carry if own is None else own if carry is None else own + carry)
        if totals[j] is None:
            totals[j] = tree_map(jnp.zeros_like, outs[j])
        ds, dd, carry = pulls[j](totals[j])
        s_ct[:0], d_ct[:0] = ds, dd
    return tuple(s_ct), tuple(d_ct), tuple(totals)


def _fused_pullback(stages: tuple) -> Callable:
    """`(shared_args, diffs, auxs, consts, cts) -> _fused_back(...)`, the forward computed again."""
    forward = _fused_forward(stages)

    def pullback(shared_args, diffs, auxs, consts, cts):
        outs, pulls = forward(shared_args, diffs, auxs, consts)
        return _fused_back(outs, pulls, cts)

    return pullback


@functools.cache
def fused_vjp(stages: tuple) -> Callable:
    """`(shared_args, diffs, auxs, consts, cts) -> (shared cotangents, packed cotangents)`
    (`cts` as for `_fused_back`)."""
    pull = _fused_pullback(stages)

    def fused_backward(*args):
        s_ct, d_ct, _ = pull(*args)
        return s_ct, d_ct

    return kernel_jit(fused_backward)


@functools.cache
def fused_keeping(stages: tuple) -> Callable:
    """A training forward's fused call: `(...) -> (outputs, pullbacks)` (see `_keeping`)."""
    forward = _fused_forward(stages, _GROUP_POLICY)
    forward.__name__ = forward.__qualname__ = "fused"
    return kernel_jit(forward)


@functools.cache
def fused_kept_vjp(stages: tuple) -> Callable:
    """`(outputs, pullbacks, cts) -> (shared cotangents, packed cotangents)`: the backward
    of `fused_keeping` (one jitted function per fused kernel)."""
    del stages

    def fused_kept_backward(outs, pulls, cts):
        return _fused_back(outs, pulls, cts)[:2]

    return kernel_jit(fused_kept_backward)


@functools.cache
def fused_totals(stages: tuple) -> Callable:
    """`(shared_args, diffs, auxs, consts, cts) -> every stage's total output cotangent`,
    for the `gradient()` of a node inside the call (compiled only when one is asked for)."""
    pull = _fused_pullback(stages)
    return kernel_jit(lambda *args: pull(*args)[2])


def _packed_function(sig: Sig) -> Callable:
    """One node whose many arguments are rows of one stack (an `esum` of a group's
    outputs): `(diff, aux, pad, m, consts) -> output`, the rows gathered inside the kernel
    instead of each passed as an argument; arguments m and later are `pad` (what an n-ary
    node is padded with to a bucketed count; m is an argument, not compiled in)."""
    n = len(sig.args)
    B = sig.batch
    # every argument at the node's batch: the rows and the padding (batch-1 zeros, as an
    # n-ary node of minibatched terms is padded) are lifted to it before they are merged
    f = node_function(Sig((sig.op, sig.static, tuple((d, B, t) for d, _, t in sig.args), sig.consts, B)))
    stacked = sig.op.stacked

    def lift(a, dims, lead):  # `a` with `lead` leading axes before its value; batch-1 values get the batch axis
        if B == 1 or a.ndim - lead > len(dims):
            return a
        return jnp.broadcast_to(jnp.expand_dims(a, lead), a.shape[:lead] + (B,) + a.shape[lead:])

    def packed(diff, aux, pad, m, consts):
        keep = jnp.arange(n, dtype=m.dtype) < m
        dims = sig.args[0][0]
        rows = tree_map(lambda a, p: jnp.where(keep.reshape((n,) + (1,) * (a.ndim - 1)), lift(a, dims, 1)[aux],
                                               lift(p, dims, 0)), diff, pad)
        if stacked is not None and not consts and not isinstance(rows, tuple):  # one reduction, not n - 1 ops
            if B == 1:
                return stacked(sig.static, rows)
            # (per batch element, as `node_function` maps the node's function: a minibatched
            # esum of 128 terms as n - 1 adds took 1.5 s to compile its VJP, DyNet's rnnlm-batch)
            return jax.vmap(functools.partial(stacked, sig.static), in_axes=1)(rows)
        return f(*(tree_map(lambda a, i=i: a[i], rows) for i in range(n)), *consts)

    return packed


@functools.cache
def packed_kernel(sig: Sig) -> Callable:
    return kernel_jit(_packed_function(sig))


@functools.cache
def packed_vjp(sig: Sig) -> Callable:
    return _backward(_packed_function(sig), (0, 2), "packed_backward")


def _packs_function(sig: Sig) -> Callable:
    """A group of packed nodes (`_packed_function`), all gathering rows of one stack —
    every sentence's `esum` of its words' losses: `(diff, aux (G, n), pad, m (G,)) -> (G,
    ...)`. What it compiles for is the signature, the stack's shape and G, never which
    argument positions of which node are padding (that is `m`, an argument)."""
    packed = _packed_function(sig)

    def packs(diff, aux, pad, m):
        return packed(diff, aux, pad, m, ())

    return jax.vmap(packs, in_axes=(None, 0, None, 0))


@functools.cache
def packs_kernel(sig: Sig) -> Callable:
    return kernel_jit(_packs_function(sig))


@functools.cache
def packs_vjp(sig: Sig) -> Callable:
    return _backward(_packs_function(sig), (0, 2), "packs_backward")


def _sequence_function(key: tuple) -> Callable:
    """Nodes that would each run alone, in creation order, as one function: `(inputs,
    consts) -> every computed node's value` (`_schedule._run_sequence`). `key` has per node
    `(sig, pack, static, refs)`: `sig` None for a view (a state `pack`ed from expressions, or
    slot `static` of a state); `refs` per argument `(inside, k)`: the value of node k of the
    sequence, or input k."""
    def sequence(inputs, consts):
        vals: list = []
        out: list = []
        c = 0
        for sig, pack, static, refs in key:
            args = [vals[k] if inside else inputs[k] for inside, k in refs]
            if sig is None:
                v = tuple(args) if pack else args[0][static]
            else:
                nc = len(sig.consts)
                v = node_function(sig)(*args, *consts[c:c + nc])
                c += nc
                out.append(v)
            vals.append(v)
        return tuple(out)

    return sequence


@functools.cache
def sequence_kernel(key: tuple) -> Callable:
    return kernel_jit(_sequence_function(key))


def _chain_function(sig: Sig, shared: tuple, modes: tuple, n: int, t: int, state_pos: int,
                    x_pos: int, probe: bool = False) -> Callable:
    """n chains of t steps of a recurrent node (argument `state_pos` is the state, which
    each step takes from the previous one; `x_pos` is the step's input): one `lax.scan`
    over time, `vmap`-ed over the chains. Returns every step's state, stacked (n·t, ...):
    row i·t + j is step j of chain i. `modes` packs, in order, the per-chain fixed
    arguments, the initial states and the n·t inputs. With `probe`, the function takes one
    more argument, added to every step's state as it is passed on (zeros: its cotangent is
    each step's total cotangent, what flows back through the later steps included)."""
    f = node_function(sig)
    n_args = len(sig.args)
    fixed = [k for k in range(n_args) if k not in (state_pos, x_pos)]
    if not probe and sig.op.scan is not None and all(shared[k] for k in fixed) and not sig.consts:
        return _merged_chains(sig, modes, n, t)

    def one_chain(fixed_args, state, xs, consts, eps):
        def body(s, x_e):
            x, e = x_e
            args = [None] * n_args
            for k, a in zip(fixed, fixed_args):
                args[k] = a
            args[state_pos], args[x_pos] = s, x
            new = f(*args, *consts)
            if e is not None:
                new = tree_map(jnp.add, new, e)
            return new, new

        return jax.lax.scan(body, state, (xs, eps))[1]

    axes_fixed = tuple(None if shared[k] else 0 for k in fixed)

    def chains(shared_args, diffs, auxs, consts, eps=None):
        packed = iter(zip(modes, diffs, auxs))
        it_s = iter(shared_args)
        fixed_args = tuple(next(it_s) if shared[k] else unpack(*next(packed)) for k in fixed)
        state = unpack(*next(packed))
        xs = tree_map(lambda a: a.reshape((n, t) + a.shape[1:]), unpack(*next(packed)))
        eps = None if eps is None else tree_map(lambda a: a.reshape((n, t) + a.shape[1:]), eps)
        out = jax.vmap(one_chain, in_axes=(axes_fixed, 0, 0, (0,) * len(consts), 0))(fixed_args, state, xs,
                                                                                      tuple(consts), eps)
        return tree_map(lambda o: o.reshape((n * t,) + o.shape[2:]), out)

    return chains


def _merged_chains(sig: Sig, modes: tuple, n: int, t: int) -> Callable:
    """Chains that share every fixed argument run as one minibatch: the n chains (times
    the node's own batch) become the batch axis of the op's own scan (`Op.scan`, e.g. the
    compiled path's layer-by-layer scan with its input projection hoisted)."""
    bshape = () if sig.batch == 1 else (sig.batch,)
    m = n * (sig.batch if bshape else 1)

    def chains(shared_args, diffs, auxs, consts):
        packed = iter(zip(modes, diffs, auxs))
        state = unpack(*next(packed))  # per slot (n, [B,] size)
        xs = unpack(*next(packed))     # (n·t, [B,] d)
        xs = jnp.broadcast_to(xs.reshape((n, t) + xs.shape[1:]), (n, t) + bshape + xs.shape[-1:])
        xs = jnp.moveaxis(xs, 1, 0).reshape((t, m) + xs.shape[-1:])
        init = tuple(a.reshape((m,) + a.shape[-1:]) for a in state)
        out = sig.op.scan(sig.static, shared_args, init, xs)  # per slot (t, m, size)
        return tuple(jnp.moveaxis(o.reshape((t, n) + bshape + o.shape[-1:]), 0, 1).reshape((n * t,) + bshape
                                                                                           + o.shape[-1:])
                     for o in out)

    return chains


@functools.cache
def gather_kernel(mode: str) -> Callable:
    """`(diff, aux) -> rows`: one packed argument position stacked by a call of its own
    (`unpack`), so that the kernel that takes it ("dense") depends on the number of rows
    only — not on the shape of the stack they came from, nor on whether they came from one.
    It compiles in milliseconds, where a chain's scan and its VJP take seconds."""
    return plumbing_jit(lambda diff, aux: unpack(mode, diff, aux))


@functools.cache
def gather_vjp(mode: str) -> Callable:
    return _backward(lambda diff, aux: unpack(mode, diff, aux), (0,), "gather_backward", plumbing=True)


def _put(buf: Any, part: Any, at: Any) -> Any:
    """`buf` with its rows from `at` on replaced by `part` (leaf by leaf, for states)."""
    return tree_map(lambda b, p: jax.lax.dynamic_update_slice_in_dim(b, p, at, 0), buf, part)


@functools.cache
def put_kernel() -> Callable:
    """`(buf, part, at) -> buf'`: a chain's segments gathered into one stack (`at` is an
    argument: the kernel depends on the two shapes only)."""
    return plumbing_jit(_put)


@functools.cache
def put_vjp() -> Callable:
    return _backward(_put, (0, 1), "put_backward", plumbing=True)


@functools.cache
def chain_kernel(sig: Sig, shared: tuple, modes: tuple, n: int, t: int, state_pos: int, x_pos: int) -> Callable:
    return kernel_jit(_chain_function(sig, shared, modes, n, t, state_pos, x_pos))


@functools.cache
def chain_vjp(sig: Sig, shared: tuple, modes: tuple, n: int, t: int, state_pos: int, x_pos: int) -> Callable:
    return _backward(_chain_function(sig, shared, modes, n, t, state_pos, x_pos), (0, 1), "chain_backward")


# A training forward keeps what its VJP needs. A VJP from `_backward` computes its forward
# again before it goes back; a kernel from `_keeping` returns, with its output, the pullback
# itself (`jax.vjp`'s function: a pytree of the residuals JAX saves), which `kept_vjp`
# runs. Measured on XLA:CPU, forward + VJP, recomputing -> kept:
# - a 16-step 256 -> 256 LSTM scan (a chain, every residual kept: each step's gates):
#   batch 64 36 -> 28 ms, batch 16 11.8 -> 8.5 ms, batch 1 1.85 -> 1.74 ms; compilation
#   about even (0.45 -> 0.41 s), but the forward's, on the main thread, 0.11 -> 0.22 s;
# - a (256 x 128) -> 10,212 affine + pickneglogsoftmax (a fused call): 20.5 -> 21.1 ms with
#   every residual (the forward wrote the probabilities and W's transpose), 20.5 -> 15.6 ms
#   keeping only the products' outputs (`_GROUP_POLICY`: the backward recomputes the
#   elementwise rest from them, which costs less than writing and reading it).
# Groups and fused calls therefore keep their products' outputs only; for a group of
# elementwise nodes that is nothing but its inputs. The residuals live as long as the graph.
_GROUP_POLICY = jax.checkpoint_policies.dots_saveable


def _keeping(f: Callable, diff: tuple, name: str, policy: Any = None) -> Callable:
    """`(*args) -> (f(*args), its pullback for the arguments at positions diff)`, compiled;
    with a `jax.checkpoint` policy, the pullback keeps only what it allows."""
    g = f if policy is None else jax.checkpoint(f, policy=policy)

    def forward(*args):
        return _vjp(g, args, diff)

    forward.__name__ = forward.__qualname__ = name
    return kernel_jit(forward)


@functools.cache
def group_keeping(sig: Sig, shared: tuple, modes: tuple) -> Callable:
    return _keeping(_group_function(sig, shared, modes), (0, 1), "group", _GROUP_POLICY)


@functools.cache
def chain_keeping(sig: Sig, shared: tuple, modes: tuple, n: int, t: int, state_pos: int, x_pos: int) -> Callable:
    """`(shared_args, diffs, auxs, consts) -> (every step's state, the pullback)`."""
    return _keeping(_chain_function(sig, shared, modes, n, t, state_pos, x_pos), (0, 1), "chains")


def _kept_backward(pull: Any, ct: Any) -> Any:
    return pull(ct)


@functools.cache
def kept_vjp(key: tuple) -> Callable:
    """`(pullback, ct) -> (shared cotangents, packed cotangents)` for the kernel `key`
    (`("group", ...)` or `("chain", ...)`; one jitted function per kernel, each compiling
    once per residuals' shapes)."""
    del key
    return kernel_jit(_kept_backward)


@functools.cache
def chain_totals(sig: Sig, shared: tuple, modes: tuple, n: int, t: int, state_pos: int, x_pos: int) -> Callable:
    """`(shared_args, diffs, auxs, consts, ct) -> every step's total cotangent`, for the
    `gradient()` of a step (compiled only when one is asked for): the cotangent of a zero
    probe added to each step's state (see `_chain_function`)."""
    f = _chain_function(sig, shared, modes, n, t, state_pos, x_pos, probe=True)

    def totals(shared_args, diffs, auxs, consts, ct):
        zero = tree_map(jnp.zeros_like, ct)
        return jax.vjp(lambda e: f(shared_args, diffs, auxs, consts, e), zero)[1](ct)[0]

    return kernel_jit(totals)


# Rows are cut from a stack ROWS_CHUNK at a time, from a start given as an argument: the
# kernel compiles once per stack shape in ~0.12 s (measured: cutting all 128 rows of a
# (128, 50) stack in one call compiled in 1-2 s; per call 23 µs for 8 rows, 236 µs for 128).
ROWS_CHUNK = 8


@functools.cache
def _rows_kernel(k: int) -> Callable:
    return plumbing_jit(lambda a, start: tuple(jax.lax.dynamic_index_in_dim(a, start + i, keepdims=False)
                                               for i in range(k)))


def rows(a: jax.Array, start: int) -> tuple:
    """Rows `start, start + 1, ...` of a stacked array (ROWS_CHUNK of them, fewer at its
    end), as separate arrays, in one call; `start` a multiple of ROWS_CHUNK."""
    n = a.shape[0]
    if n <= ROWS_CHUNK:
        return _rows_kernel(n)(a, np.int32(0))
    return _rows_kernel(ROWS_CHUNK)(a, np.int32(start))


@functools.cache
def zeros(shape: tuple, dtype: Any) -> jax.Array:
    """A cached zero array (cotangents of outputs that nothing used, padding), copied from
    the host: `jnp.zeros` would compile a kernel per shape (measured: 30 of a tagger's first
    200 updates' 115 compilations)."""
    return jax.device_put(np.zeros(shape, dtype))


@functools.cache
def ones(shape: tuple, dtype: Any) -> jax.Array:
    """A cached array of ones (the cotangent a backward() starts from: a copy from the host
    per call cost ~0.1 ms, a quarter of DyNet's xor.py update here)."""
    return jax.device_put(np.ones(shape, dtype))


@functools.cache
def _adder(n: int) -> Callable:
    return plumbing_jit(lambda *xs: functools.reduce(jnp.add, xs))


# Arrays of at most this many elements are summed 8 at a time, the rest padded with zeros:
# one adder per shape, not three (2, 4 and 8 terms; each ~25 ms to compile, and a graph's
# parameters come in many shapes). Larger arrays pad to a power of two: their zeros cost reads.
ADD_PAD_ELEMENTS = 1 << 14


def add_all(xs: list) -> Any:
    """The sum of a list of same-shaped arrays, in few calls."""
    while len(xs) > 1:
        k = min(len(xs), 8)
        part = xs[:k]
        kb = 8 if part[0].size <= ADD_PAD_ELEMENTS else pow2(k)  # few kernels per shape
        if kb > k:
            part = part + [zeros(tuple(part[0].shape), part[0].dtype)] * (kb - k)
        xs = [_adder(kb)(*part)] + xs[k:]
    return xs[0]


@functools.cache
def _scatter_kernel(n: int) -> Callable:
    return plumbing_jit(lambda base, idx, *rows_: base.at[idx].add(jnp.stack(rows_)))


def scatter_add(base: jax.Array, idx: list, rows_: list) -> jax.Array:
    """`base` with `rows_[k]` added at row `idx[k]` (one call; the count is bucketed)."""
    nb = pow2(len(rows_))
    z = zeros(tuple(rows_[0].shape), rows_[0].dtype)
    ids = np.asarray(list(idx) + [0] * (nb - len(idx)), np.int32)
    return _scatter_kernel(nb)(base, ids, *rows_, *([z] * (nb - len(rows_))))


# -- VJPs compiled ahead ----------------------------------------------------------------------
# When a forward kernel call has just compiled, its VJP (which the training loop's
# backward() will need moments later) compiles on one background thread, while the main
# thread goes on with the forward pass: XLA's compilation releases the GIL, so on two
# cores two kernels compile at once.

_AHEAD: list = []  # the background thread's executor, made on first use


def compile_ahead(vjp: Callable, call_args: tuple, out: Any) -> Any:
    """Starts compiling `vjp` for the forward call `call_args` -> `out` (by calling it once
    on a zero cotangent, which fills JAX's own caches for these shapes). Returns a future
    for `claim`, or None when nothing was started."""
    if jax.config.jax_debug_nans:  # pyright: ignore[reportAttributeAccessIssue] (a flag set at run time)
        return None  # (a zero cotangent may well make a NaN somewhere)
    if not _AHEAD:
        _AHEAD.append(concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dynrnn-vjp"))
    return _AHEAD[0].submit(_warm, vjp, call_args, out)


def _warm(vjp: Callable, call_args: tuple, out: Any) -> None:
    # not the cached `zeros`: JAX's config contexts (`enable_x64`, ...) are per thread, so
    # this thread may make another dtype than the caller's, and must not cache it for them
    # (its compilation is then only wasted: the caller's call has another cache key)
    ct = tree_map(lambda o: jax.device_put(np.zeros(o.shape, o.dtype)), out)
    jax.block_until_ready(vjp(*call_args, ct))


def claim(future: Any) -> None:
    """Before calling a VJP compiled ahead: if its compilation has not started, it is called
    off (the caller compiles it, while the background thread works on others); if it is
    under way, waits for it. A failure there is left to the caller's own call to raise."""
    if future is None or future.cancel():
        return
    try:
        future.result()
    except Exception:  # noqa: BLE001 - the real call raises it again, with the real cotangent
        pass


def compile_count() -> int:
    """How many kernels have been built (each compiles once per call signature)."""
    return sum(f.cache_info().currsize for f in (node_kernel, node_vjp, sequence_kernel, group_kernel, group_vjp,
                                                 fused_kernel, fused_vjp, fused_totals, packed_kernel, packed_vjp,
                                                 chain_kernel, chain_vjp, _rows_kernel, _adder, _scatter_kernel))
