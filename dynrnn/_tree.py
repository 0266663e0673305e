"""Trees of states, computed level by level: the engine of `RNNState.transduce_tree`.

A stack LSTM's pushes, a decoder's beam, a Tree-LSTM read top-down: each is a tree of
states, every node `states[i] = states[parents[i]].add_input(xs[i])` (a root's parent is
the initial state). Its nodes at the same depth are independent, so the whole tree — or
a forest of many sentences — needs only as many sequential steps as it is deep, each one
batched cell call over every node of that depth.

The levels are planned on the host (`tree_schedule`) into two `(steps, width)` index
arrays, padded to rounded sizes so that a training loop compiles once per bucket, never
per tree (a level wider than the width takes several steps). The device side is one
loop over the steps that hold nodes (the padding steps after them are skipped, so a
bucket costs no time) whose carry is a table of every node's state (one row per node,
then the initial state, then a scratch row that padding writes to): each level gathers
its parents' rows, steps, and scatters its rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from ._batching import pow2
from ._compiled import StackSpec, dropout_masks
from .cells import InputProjection


def round_up(n: int) -> int:
    """`n` exactly up to 8, then rounded up by at most 25% (few distinct sizes, little padding)."""
    if n <= 8:
        return max(n, 1)
    step = 2 ** (int(math.log2(n)) - 2)
    return -(-n // step) * step


def check_parents(where: str, parents: Any, n: int | None = None) -> np.ndarray:
    """`parents` as an int64 NumPy vector, checked: `-1 <= parents[i] < i` (a parent comes
    before its children; -1 is the initial state), and `n` entries when `n` is given."""
    if isinstance(parents, Tracer):
        raise TypeError(f"{where}: parents must be known on the host (a list or NumPy array), not a traced array; "
                        f"inside a compiled function pass a dy.tree_schedule(parents) built outside it.")
    p = np.asarray(parents)
    if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
        raise TypeError(f"{where}: parents must be a 1-D sequence of ints; given shape {p.shape}, dtype {p.dtype}.")
    p = p.astype(np.int64)
    if n is not None and len(p) != n:
        raise ValueError(f"{where}: parents has {len(p)} entries and xs has {n} rows; give one parent per input.")
    bad = np.flatnonzero((p < -1) | (p >= np.arange(len(p))))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}: parents[{i}] = {int(p[i])}; each parent must come before its child "
                         f"(-1 <= parents[i] < i, -1 meaning the initial state).")
    return p


def depths(parents: np.ndarray) -> np.ndarray:
    """Each node's depth (a root, whose parent is the initial state, has depth 0)."""
    d = np.zeros(len(parents), np.int64)
    for i, p in enumerate(parents.tolist()):
        if p >= 0:
            d[i] = d[p] + 1
    return d


def pack_levels(level: Any, *, steps: int | Callable[[int], int] | None = None, width: int | None = None,
                exact: bool = False, where: str = "pack_levels") -> tuple[list[np.ndarray], int, int]:
    """Packs nodes by level into scan steps, as every schedule here does: node i is on
    level `level[i]` (ints ≥ 0); each step holds `width` nodes of one level, and a level
    wider than `width` takes several steps (its nodes are independent). By default the
    width is the widest level's (nothing is split) and `steps` the steps needed, each
    rounded up by at most 25% unless `exact`; `steps` may also be a function of the steps
    needed (a rounding rule). For a `level_scan` of one's own (the parser's compositions).

    Returns (per real step, in order, the ids of its nodes; steps; width)."""
    given = np.asarray(level)
    if given.ndim != 1 or (given.size and given.dtype.kind not in "iu"):
        raise TypeError(f"{where}: levels must be a 1-D sequence of ints; given dtype {given.dtype}, "
                        f"shape {given.shape}.")
    level = given.astype(np.int64)
    if level.size and level.min() < 0:
        raise ValueError(f"{where}: levels must be ints >= 0; given {int(level.min())}.")
    n = len(level)
    counts = np.bincount(level) if n else np.zeros(0, np.int64)
    need_w = int(counts.max()) if n else 1
    if width is None:
        width = need_w if exact else round_up(need_w)
    elif not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"{where}: width must be a positive int; given {width!r}.")
    width = int(width)
    order = np.argsort(level, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    chunks = [order[a:b][k:k + width] for a, b in zip(starts[:-1], starts[1:]) for k in range(0, b - a, width)]
    if steps is None:
        steps = len(chunks) if exact else round_up(len(chunks))
    elif callable(steps):
        steps = steps(len(chunks))
    if not isinstance(steps, (int, np.integer)) or steps < len(chunks):
        raise ValueError(f"{where}: steps must be an int >= {len(chunks)} for this forest at width {width}; "
                         f"given {steps!r}.")
    return chunks, int(steps), width


def pick_size(where: str, size: Any, n: int, exact: bool, name: str = "size", of: str = "nodes") -> int:
    if size is None:
        return n if exact else round_up(n)
    if not isinstance(size, (int, np.integer)) or size < n:
        raise ValueError(f"{where}: {name} must be an int >= the number of {of} ({n}); given {size!r}.")
    return int(size)


class LevelSchedule:
    """What every schedule has: `nodes`, `(steps, width)` — the nodes each scan step
    computes — and `size`, the number of node rows; `count` the real nodes (host only);
    `run_steps`, the steps that hold nodes (an int32 array: the scan skips the padding
    steps after them, so a coarse bucket of `steps` costs compilations, not time)."""

    __slots__ = ()
    nodes: Any
    size: int
    count: int | None
    run_steps: Any

    @property
    def steps(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def width(self) -> int:
        return int(self.nodes.shape[1])

    def _extra(self) -> str:
        return ""

    def __repr__(self) -> str:
        n = "" if self.count is None else f"nodes={self.count}, "
        return f"{type(self).__name__}({n}size={self.size}, steps={self.steps}, width={self.width}{self._extra()})"


class TreeSchedule(LevelSchedule):
    """The levels of a forest, planned on the host: scan step `k` steps the nodes
    `nodes[k]` from the states `parents[k]` (row `size` of the state table is the initial
    state; padding reads it and writes to row `size + 1`).

    A pytree whose leaves are the two index arrays and `run_steps` and whose static part
    is `size`, the number of node rows: passed into a compiled training step as an
    argument, it compiles once per (size, steps, width) shape.
    """

    __slots__ = ("nodes", "parents", "run_steps", "size", "count")

    def __init__(self, nodes: Any, parents: Any, run_steps: Any, size: int, count: int | None = None):
        self.nodes, self.parents, self.run_steps, self.size, self.count = nodes, parents, run_steps, size, count


jax.tree_util.register_pytree_node(
    TreeSchedule, lambda s: ((s.nodes, s.parents, s.run_steps), s.size), lambda size, ch: TreeSchedule(*ch, size))


def tree_schedule(parents: Any, *, size: int | None = None, steps: int | Callable[[int], int] | None = None,
                  width: int | None = None, exact: bool = False) -> TreeSchedule:
    """Plans `parents` (one entry per node, `-1 <= parents[i] < i`; -1: the initial state)
    as levels of equal depth, one scan step per level (or several, for a level wider than
    `width`).

    The schedule's shape — node rows, steps, width — decides the compiled code: by default
    the rows and the width are rounded up (by at most 25%) and the steps to a power of
    two (the steps after the last level are skipped when run, so they cost no time) so
    that forests of similar sizes share one compilation; give them explicitly to make
    every batch of a training loop one shape.

    Args:
      parents: the forest, as ints on the host.
      size: the number of node rows the inputs will have (at least `len(parents)`).
      steps: the number of scan steps (at least the number of levels), or a function
        from the steps this forest needs at this width to the steps to plan (a rounding
        rule: `lambda k: 4 * math.ceil(k / 4)`).
      width: the nodes per step (default: the widest level's).
      exact: no rounding (tests).
    """
    where = "tree_schedule"
    p = check_parents(where, parents)
    size = pick_size(where, size, len(p), exact)
    steps = pow2 if steps is None and not exact else steps  # (padding steps are skipped when run)
    chunks, n_steps, w = pack_levels(depths(p), steps=steps, width=width, exact=exact, where=where)
    nodes = np.full((n_steps, w), size + 1, np.int32)     # padding writes to the scratch row
    parent_rows = np.full((n_steps, w), size, np.int32)   # ... reading the initial state
    for k, members in enumerate(chunks):
        nodes[k, :len(members)] = members
        parent_rows[k, :len(members)] = np.where(p[members] < 0, size, p[members])
    return TreeSchedule(nodes, parent_rows, np.int32(len(chunks)), size, len(p))


def level_scan(fn: Callable, params: Any, table: Any, reads: Any, writes: Any, extras: Any = None, *,
               steps: Any = None) -> Any:
    """The engine of every tree here: for each step k < `steps`, in order,

        table[writes[k]] = fn(params, table[reads[k]], extras[k])

    `table` is a pytree of arrays with rows on axis 0; `reads` `(S, width, fan)` and
    `writes` `(S, width)` are row indices; `extras` a pytree of `(S, width, ...)`
    arrays (each node's own inputs); `fn` maps one step's `width` nodes at once: it gets
    `table[reads[k]]` (rows `(width, fan, ...)`) and returns the written rows `(width, ...)`.
    `steps` (an int, or a traced int32 scalar: a schedule's `run_steps`) runs only the
    first steps and skips the rest as padding, at no cost — so the arrays' S can be a
    coarse bucket (few compilations) without computing its empty steps; None runs all S.
    Contract: a row is written at most once (rows written by padding excepted: a scratch
    row no one reads), and read only after it is written, or never written (an initial row).

    Differentiable in `params`, `table` and `extras`. The backward pass is written out
    (`jax.custom_vjp`), a reverse loop over the same steps that gathers the rows each step
    read from the final table, re-runs `fn` under `jax.vjp`, and scatter-adds into the
    rows it read: it touches O(width) rows per step. Automatic differentiation of the
    forward scan touched the whole table at every step — 8× slower than the forward on a
    1,300-row stack table.
    """
    total = int(np.shape(writes)[0])
    if steps is None:
        steps = total
    elif not isinstance(steps, (int, np.integer)):
        steps = jnp.clip(jnp.asarray(steps, jnp.int32), 0, total)
    elif not 0 <= steps <= total:
        raise ValueError(f"level_scan: steps must be between 0 and the {total} steps of reads/writes; given {steps}.")
    if total == 0:  # no steps (a forest of leaves)
        return table
    extras = jax.tree_util.tree_map(jnp.asarray, extras)  # (indexed by a traced step)
    return _level_scan(fn, params, table, jnp.asarray(reads), jnp.asarray(writes), extras, steps)


def _gather(table: Any, rows: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: a[rows], table)


def _at(tree: Any, k: Any) -> Any:
    """Step k's slice of every array of `tree` (a traced k: a dynamic index)."""
    return jax.tree_util.tree_map(lambda a: a[k], tree)


def _forward(fn, params, table, reads, writes, extras, steps):
    def step(k, tab):
        out = fn(params, _gather(tab, reads[k]), _at(extras, k))
        return jax.tree_util.tree_map(lambda a, o: a.at[writes[k]].set(o), tab, out)

    return jax.lax.fori_loop(0, steps, step, table)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _level_scan(fn, params, table, reads, writes, extras, steps):
    return _forward(fn, params, table, reads, writes, extras, steps)


def _level_scan_fwd(fn, params, table, reads, writes, extras, steps):
    final = _forward(fn, params, table, reads, writes, extras, steps)
    return final, (params, final, reads, writes, extras, steps)


def _level_scan_bwd(fn, res, ct_final):
    params, final, reads, writes, extras, steps = res
    zero_params = jax.tree_util.tree_map(jnp.zeros_like, params)
    zero_extras = jax.tree_util.tree_map(jnp.zeros_like, extras)  # skipped steps: no cotangent

    def step(i, carry):
        ct, d_params, d_extras = carry
        k = steps - 1 - i
        r, w, e = reads[k], writes[k], _at(extras, k)
        ct_out = _gather(ct, w)
        # An overwritten row's start value gets no cotangent: subtract the rows just read
        # (exactly zero for finite values; a non-finite one is rejected by the update's
        # guard either way). `.at[w].set(0)` after the gather made XLA:CPU copy the whole
        # table at every step.
        ct = jax.tree_util.tree_map(lambda a, o: a.at[w].add(-o), ct, ct_out)
        _, pull = jax.vjp(lambda p, x, ee: fn(p, x, ee), params, _gather(final, r), e)
        d_p, d_in, d_e = pull(ct_out)
        ct = jax.tree_util.tree_map(lambda a, d: a.at[r].add(d), ct, d_in)
        d_extras = jax.tree_util.tree_map(lambda a, d: a.at[k].set(d), d_extras, d_e)
        return ct, jax.tree_util.tree_map(jnp.add, d_params, d_p), d_extras

    ct, d_params, d_extras = jax.lax.fori_loop(0, steps, step, (ct_final, zero_params, zero_extras))
    return d_params, ct, None, None, d_extras, None


_level_scan.defvjp(_level_scan_fwd, _level_scan_bwd)


def run_tree(spec: StackSpec, params: Any, layers: tuple, key: Any, xs: jax.Array, schedule: TreeSchedule) -> tuple:
    """Every node's state, per layer a tuple of `(size, state_size)` arrays (rows past the
    forest's nodes hold zeros). `layers` is the initial state (unbatched vectors)."""
    return _tree_function(spec)(params, layers, key, xs, schedule)


@functools.cache
def _tree_function(spec: StackSpec):
    def step(pm, rows, x):
        """One step's nodes: every layer from its parent's state (rows: (width, 1, ...))."""
        params, masks = pm
        new, inp = [], None
        for li, (cell, p, (mx, mh)) in enumerate(zip(spec.cells, params, masks)):
            state = tuple(a[:, 0] for a in rows[li])
            if li == 0 and isinstance(cell, InputProjection):
                out = cell.step_projected(p, state, x, mh)  # x is already W·x (hoisted)
            else:
                x_l = x if li == 0 else inp
                out = cell.step(p, state, x_l if mx is None else x_l * mx, mh)
            new.append(tuple(out))
            inp = out[-1]
        return tuple(new)

    def run(params, layers, key, xs, schedule):
        size, dtype = schedule.size, xs.dtype
        xs = jnp.concatenate([xs, jnp.zeros((size + 2 - xs.shape[0], xs.shape[1]), dtype)])
        # one "sequence" per tree of states: the masks of the initial state's key, shared by
        # every node (as stepping the nodes one by one with add_input gives)
        masks = (dropout_masks(spec, key, (), dtype) if spec.uses_key else [(None, None)] * len(spec.cells))
        table = tuple(tuple(jnp.zeros((size + 2,) + a.shape[-1:], a.dtype).at[size].set(a) for a in layer)
                      for layer in layers)
        first, mx0 = spec.cells[0], masks[0][0]
        if isinstance(first, InputProjection):  # layer 0's W·x for every node in one product
            xs = first.project_input(params[0], xs if mx0 is None else xs * mx0)
        table = level_scan(step, (params, masks), table, schedule.parents[..., None], schedule.nodes,
                           xs[schedule.nodes], steps=schedule.run_steps)
        return tuple(tuple(a[:size] for a in layer) for layer in table)

    return jax.jit(run)
