"""Bottom-up trees: Tree-LSTM builders computed level by level (children before parents).

A node's height is 0 for a leaf and one more than its tallest child's otherwise; the
nodes of one height are independent, so a forest of many sentences takes as many
sequential steps as its tallest tree, each one batched cell call over every node of that
height. `bottom_up_schedule` plans the levels on the host into index arrays padded to
rounded sizes (a pytree, so a compiled training step compiles once per bucket); the device
runs one loop over the levels (skipping the padding steps), carrying a table of every
node's `(c, h)` with a row of zeros for absent children and a scratch row for padding.

Inputs either come one per node (`xs[i]` is node i's) or, as in Tai et al.'s constituency
model and DyNet's examples/treelstm, at the leaves only (`inputs="leaves"`: `xs[k]` is the
k-th leaf's; the other nodes have none, so their W·x, a product by zeros, is not computed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _params
from ._batching import pow2
from ._compiled import keep_mask
from ._errors import as_rows, check_int, check_key, check_rate
from ._io import savable
from ._params import ParameterCollection, Parameters
from ._tree import LevelSchedule, level_scan, pack_levels, pick_size, round_up
from .cells import ChildSumTreeLSTMCell, NaryTreeLSTMCell


class BottomUpSchedule(LevelSchedule):
    """The levels of a forest read bottom-up: scan step `k` computes the nodes `nodes[k]`
    from the rows `children[k]` (`(steps, width, fan)`; row `size` is an absent child's zeros,
    row `size + 1` the scratch row padding writes to); `tree[i]` is node i's tree (its
    dropout masks); `leaf[i]` is 1 for a node without children — the leaves are computed
    all at once before the steps, which cover the other heights. With `inputs == "leaves"`,
    `leaves[k]` is the row of the k-th leaf (in node order; padding: the scratch row), which
    reads input row k. A pytree: its arrays are leaves, `size` and `inputs` are static."""

    __slots__ = ("nodes", "children", "tree", "leaf", "leaves", "run_steps", "size", "inputs", "count")

    def __init__(self, nodes: Any, children: Any, tree: Any, leaf: Any, leaves: Any, run_steps: Any, size: int,
                 inputs: str = "nodes", count: int | None = None):
        self.nodes, self.children, self.tree, self.leaf, self.leaves = nodes, children, tree, leaf, leaves
        self.run_steps, self.size, self.inputs, self.count = run_steps, size, inputs, count

    @property
    def fan(self) -> int:
        return int(self.children.shape[2])

    @property
    def input_rows(self) -> int:
        """How many input rows the schedule reads: `size` (one per node), or the leaf rows."""
        return self.size if self.inputs == "nodes" else int(self.leaves.shape[0])

    def _extra(self) -> str:
        return f", fan={self.fan}" + (f", inputs=leaves ({self.input_rows} rows)" if self.inputs == "leaves" else "")


jax.tree_util.register_pytree_node(
    BottomUpSchedule, lambda s: ((s.nodes, s.children, s.tree, s.leaf, s.leaves, s.run_steps), (s.size, s.inputs)),
    lambda aux, ch: BottomUpSchedule(*ch, *aux))

INPUTS = ("nodes", "leaves")


def _check_children(where: str, children: Any, arity: int | None) -> tuple[list[list[int]], list[int]]:
    """The children lists as ints, checked, and each node's parent (-1: a root)."""
    if isinstance(children, (np.ndarray, jax.Array)) or not isinstance(children, Sequence):
        raise TypeError(f"{where}: children must be a list with, per node, the list of its children's indices; "
                        f"given {type(children).__name__}.")
    n = len(children)
    out, parent = [], [-1] * n
    for i, kids in enumerate(children):
        if not isinstance(kids, (Sequence, np.ndarray)) or isinstance(kids, str):
            raise TypeError(f"{where}: children[{i}] must be a list of node indices; given {type(kids).__name__}.")
        kids = [int(k) for k in kids]
        if arity is not None and len(kids) > arity:
            raise ValueError(f"{where}: node {i} has {len(kids)} children; this cell takes at most {arity} "
                             f"(use -1 for an absent child in a position).")
        for k in kids:
            if k == -1:
                continue
            if not 0 <= k < n or k == i:
                raise ValueError(f"{where}: children[{i}] names node {k}; a child must be another node "
                                 f"(0 <= index < {n}), or -1 for none.")
            if parent[k] >= 0:
                raise ValueError(f"{where}: node {k} is a child of both node {parent[k]} and node {i}; "
                                 f"each node has at most one parent.")
            parent[k] = i
        out.append(kids)
    return out, parent


def bottom_up_schedule(children: Any, *, arity: int | None = None, size: int | None = None,
                       steps: int | Callable[[int], int] | None = None, width: int | None = None,
                       fan: int | None = None, inputs: str = "nodes", leaf_rows: int | None = None,
                       exact: bool = False) -> BottomUpSchedule:
    """Plans a forest for a bottom-up pass.

    Args:
      children: per node, the list of its children's indices, in any node order (each
        node at most one parent; no cycles). With `arity`, positions matter (-1: absent).
      arity: an N-ary cell's N (children are padded to N, in order); None for child-sum.
      size, steps, width, fan: the schedule's shape — node rows, scan steps (one per level,
        or several for a level wider than `width`), nodes per step (default: the widest
        level's), children per node — by default each rounded up by at most 25%, the steps
        to a power of two (the steps after the last level are skipped when run: they cost
        no time), so that similar forests share one compilation; give them to make every
        batch one shape (`steps` may be a function of the steps needed: a rounding rule).
      inputs: "nodes" (the default: input row i is node i's) or "leaves" (input row k is the
        k-th leaf's, in node order; the other nodes have no input).
      leaf_rows: with inputs="leaves", the input rows (at least the number of leaves;
        default rounded up like `size`).
      exact: no rounding (tests).
    """
    where = "bottom_up_schedule"
    if inputs not in INPUTS:
        raise ValueError(f"{where}: inputs must be one of {INPUTS}; given {inputs!r}.")
    if leaf_rows is not None and inputs != "leaves":
        raise ValueError(f"{where}: leaf_rows is for inputs='leaves'; given inputs={inputs!r}.")
    kids, parent = _check_children(where, children, arity)
    n = len(kids)
    height, pending = [0] * n, [sum(k >= 0 for k in ks) for ks in kids]
    ready = [i for i in range(n) if pending[i] == 0]
    done = 0
    while ready:  # Kahn's order: a node once all its children are done
        i = ready.pop()
        done += 1
        p = parent[i]
        if p >= 0:
            height[p] = max(height[p], height[i] + 1)
            pending[p] -= 1
            if pending[p] == 0:
                ready.append(p)
    if done < n:
        stuck = next(i for i in range(n) if pending[i] > 0)
        raise ValueError(f"{where}: the children lists have a cycle (through node {stuck}); a forest has none.")
    tree = [-1] * n
    roots = 0
    for i in sorted(range(n), key=lambda j: -height[j]):  # roots first, then down
        if parent[i] < 0:
            tree[i], roots = roots, roots + 1
        else:
            tree[i] = tree[parent[i]]
    most = max((len(ks) for ks in kids), default=0) if arity is None else arity
    if fan is None:
        k_fan = max(most, 1) if exact or arity is not None else round_up(max(most, 1))
    elif not isinstance(fan, (int, np.integer)) or fan < max(most, 1):
        raise ValueError(f"{where}: fan must be an int >= {max(most, 1)} for this forest; given {fan!r}.")
    else:
        k_fan = int(fan)
    if arity is not None and k_fan != arity:
        raise ValueError(f"{where}: fan must equal arity ({arity}) for an N-ary cell; given {fan!r}.")
    size = pick_size(where, size, n, exact)
    h = np.asarray(height, np.int64)
    inner = np.flatnonzero(h > 0)  # the leaves are computed before the steps
    steps = pow2 if steps is None and not exact else steps  # (padding steps are skipped when run)
    chunks, n_steps, w = pack_levels(h[inner] - 1, steps=steps, width=width, exact=exact, where=where)
    chunks = [inner[c] for c in chunks]
    nodes = np.full((n_steps, w), size + 1, np.int32)
    child_rows = np.full((n_steps, w, k_fan), size, np.int32)
    for k, members in enumerate(chunks):
        for slot, i in enumerate(members.tolist()):
            nodes[k, slot] = i
            for pos, c in enumerate(kids[i]):
                if c >= 0:
                    child_rows[k, slot, pos] = c
    tree_rows = np.zeros(size + 2, np.int32)
    tree_rows[:n] = tree
    leaf = np.zeros(size + 2, np.float32)
    leaf[:n] = h == 0
    if inputs == "leaves":
        ids = np.flatnonzero(h == 0)
        rows = pick_size(where, leaf_rows, len(ids), exact, "leaf_rows", "leaves")
        leaves = np.full(rows, size + 1, np.int32)
        leaves[:len(ids)] = ids
    else:
        leaves = np.zeros(0, np.int32)
    return BottomUpSchedule(nodes, child_rows, tree_rows, leaf, leaves, np.int32(len(chunks)), size, inputs, n)


@functools.cache
def _bottom_up_function(cell: Any, dropout_x: float, dropout_h: float) -> Callable:
    def run(params, xs, schedule, key):
        size, dtype, H = schedule.size, xs.dtype, cell.hidden_dim
        leaves = schedule.inputs == "leaves"
        rows = schedule.input_rows if leaves else size + 2
        xs = jnp.concatenate([xs, jnp.zeros((rows - xs.shape[0], xs.shape[1]), dtype)])
        # one mask per tree (DyNet's rule: one per sequence), each node taking its tree's
        if dropout_x > 0.0:
            tree = schedule.tree[schedule.leaves] if leaves else schedule.tree
            xs = xs * keep_mask(jax.random.fold_in(key, 0), dropout_x, (size + 2, xs.shape[1]), dtype)[tree]
        mask_h = (keep_mask(jax.random.fold_in(key, 1), dropout_h, (size + 2, H), dtype)[schedule.tree]
                  if dropout_h > 0.0 else None)
        px = cell.project_input(params, xs)  # every input's W·x in one product
        if leaves:  # the other nodes' W·x is zero (W·x has no bias: that is the combination's)
            px = jnp.zeros((size + 2, px.shape[1]), dtype).at[schedule.leaves].set(px)
        # every leaf at once (no children: zeros), then the other heights level by level
        leaf = schedule.leaf.astype(dtype)[:, None]
        c_tab, h_tab = (a * leaf for a in cell.combine_leaf(params, px))
        extras = (px[schedule.nodes], None if mask_h is None else mask_h[schedule.nodes])
        c_tab, h_tab = level_scan(_combine_rows(cell), params, (c_tab, h_tab), schedule.children, schedule.nodes,
                                  extras, steps=schedule.run_steps)
        return c_tab[:size], h_tab[:size]

    return jax.jit(run)


@functools.cache
def _combine_rows(cell: Any) -> Callable:
    def combine(params, rows, extras):
        (child_c, child_h), (px, mh) = rows, extras
        return cell.combine_projected(params, px, child_c, child_h, mh)

    return combine


class TreeLSTMBuilder:
    """A Tree-LSTM layer over forests, computed bottom-up by levels (see the cells in
    `dynrnn.cells` for the equations).

    `transduce(xs, children)` returns every node's h — `(N, hidden_dim)` — where node i
    reads `xs[i]` and the states of `children[i]`. Dropout (`set_dropout`): masks on the
    inputs and on the children's h, one per tree, drawn per call.
    """

    _collection_name = "tree-lstm-builder"
    _arity: int | None = None

    def __init__(self, input_dim: int, hidden_dim: int, pc: ParameterCollection, cell: Any):
        where = type(self).__name__
        self.input_dim = check_int(where, "input_dim", input_dim)
        self.hidden_dim = check_int(where, "hidden_dim", hidden_dim)
        if not isinstance(pc, ParameterCollection):
            raise TypeError(f"{where}: pc must be a ParameterCollection; given {type(pc).__name__}.")
        self._cell = cell
        self._pc = pc.add_subcollection(self._collection_name)
        self._params = [self._pc.add_parameters(s.shape, init=s.init, name=s.name) for s in cell.param_specs()]
        self._dropout = (0.0, 0.0)
        self._values = _params.ValueCache()

    @property
    def cell(self) -> Any:
        return self._cell

    @property
    def dtype(self) -> Any:
        return self._pc.dtype

    def param_collection(self) -> ParameterCollection:
        return self._pc

    def get_parameters(self) -> list[Parameters]:
        """`[W_iou, U_iou, b_iou, W_f, U_f, b_f]` (see the cell's docstring)."""
        return list(self._params)

    def saved_parameters(self) -> list[Parameters]:
        return list(self._params)

    def _param_tree(self) -> tuple:
        return self._values.get(self._params)

    # -- dropout ------------------------------------------------------------------------
    def set_dropout(self, d: float) -> None:
        """Rate `d` on the inputs and on the children's h."""
        self.set_dropouts(d, d)

    def set_dropouts(self, d: float, d_h: float) -> None:
        where = f"{type(self).__name__}.set_dropouts"
        self._dropout = (check_rate(where, "d", d), check_rate(where, "d_h", d_h))

    def disable_dropout(self) -> None:
        self._dropout = (0.0, 0.0)

    @property
    def dropout(self) -> tuple[float, float]:
        return self._dropout

    def dropout_settings(self) -> list[list[float]]:
        return [list(self._dropout)]

    def restore_dropout(self, settings: list) -> None:
        (d, d_h), = settings
        self._dropout = (float(d), float(d_h))

    # -- computing ----------------------------------------------------------------------
    def schedule(self, children: Any, **shape: Any) -> BottomUpSchedule:
        """`bottom_up_schedule(children, arity=..., **shape)` for this builder's cell."""
        return bottom_up_schedule(children, arity=self._arity, **shape)

    def transduce(self, xs: Any, children: Any, *, key: jax.Array | None = None,
                  return_cells: bool = False, inputs: str | None = None) -> Any:
        """Every node's output h, `(N, hidden_dim)` (with `return_cells`, `(h, c)`); with
        inputs="leaves" and a schedule, `(schedule.size, hidden_dim)` (rows past the
        forest's nodes hold zeros).

        Args:
          xs: `(N, input_dim)`, node i's input in row i (zeros for nodes without one); with
            inputs="leaves", `(L, input_dim)`, the k-th leaf's input (in node order) in row k.
          children: per node, its children's indices (any node order; a forest), or a
            schedule from `self.schedule(children)` built outside a compiled function
            (xs may then have up to `schedule.size` rows, or `leaf_rows`; extra rows give zeros).
          key: the PRNG key of this call's dropout masks (by default the collection's next).
          inputs: "nodes" (the default) or "leaves": only the leaves have an input, and the
            other nodes' W·x (a product by zeros) is not computed — the same result as
            "nodes" with zero rows for them, in less time. A schedule carries its own.
        """
        where = f"{type(self).__name__}.transduce"
        xs = as_rows(where, xs, self.input_dim, self.dtype)
        n = int(xs.shape[0])
        if isinstance(children, BottomUpSchedule):
            sched = children
            if inputs is not None and inputs != sched.inputs:
                raise ValueError(f"{where}: inputs={inputs!r} but the schedule was built for inputs="
                                 f"{sched.inputs!r} (builder.schedule(children, inputs=...)).")
            if n > sched.input_rows:
                raise ValueError(f"{where}: xs has {n} rows but the schedule has room for {sched.input_rows}"
                                 + (" leaf inputs." if sched.inputs == "leaves" else "."))
            if sched.fan != (self._arity or sched.fan):
                raise ValueError(f"{where}: the schedule has {sched.fan} children per node; this cell takes "
                                 f"{self._arity} (build it with builder.schedule(children)).")
        else:
            inputs = "nodes" if inputs is None else inputs
            if inputs == "nodes" and isinstance(children, Sequence) and len(children) != n:
                raise ValueError(f"{where}: children has {len(children)} entries and xs has {n} rows; give one "
                                 f"list of children per node.")
            sched = self.schedule(children, inputs=inputs)
            n_leaves = int(np.sum(sched.leaf))
            if inputs == "leaves" and n != n_leaves:
                raise ValueError(f"{where}: inputs='leaves' and the forest has {n_leaves} leaves, "
                                 f"but xs has {n} rows; give one input row per leaf, in node order.")
        d, d_h = self._dropout
        if d > 0.0 or d_h > 0.0:
            if key is None:
                key = self._pc.next_key()
            else:
                check_key(where, key)
        else:
            key = None
        c, h = _bottom_up_function(self._cell, d, d_h)(self._param_tree(), xs, sched, key)
        # with leaf inputs, every node's row: the forest's (children lists), or the schedule's size
        m = n if sched.inputs == "nodes" else sched.size if isinstance(children, BottomUpSchedule) else sched.count
        return (h[:m], c[:m]) if return_cells else h[:m]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_dim={self.input_dim}, hidden_dim={self.hidden_dim})"


@savable
class ChildSumTreeLSTMBuilder(TreeLSTMBuilder):
    """Child-Sum Tree-LSTM (Tai et al. 2015; `dynrnn.cells.ChildSumTreeLSTMCell`): any
    number of unordered children — dependency trees."""

    _collection_name = "child-sum-tree-lstm-builder"

    def __init__(self, input_dim: int, hidden_dim: int, pc: ParameterCollection):
        super().__init__(input_dim, hidden_dim, pc, ChildSumTreeLSTMCell(input_dim, hidden_dim))

    def save_config(self) -> tuple[list, dict]:
        return [self.input_dim, self.hidden_dim], {}


@savable
class NaryTreeLSTMBuilder(TreeLSTMBuilder):
    """N-ary Tree-LSTM (Tai et al. 2015; `dynrnn.cells.NaryTreeLSTMCell`): at most `arity`
    children, in positions — binary constituency trees with `arity=2` (the default)."""

    _collection_name = "nary-tree-lstm-builder"

    def __init__(self, input_dim: int, hidden_dim: int, pc: ParameterCollection, arity: int = 2):
        self._arity = check_int(type(self).__name__, "arity", arity)
        super().__init__(input_dim, hidden_dim, pc, NaryTreeLSTMCell(input_dim, hidden_dim, self._arity))

    @property
    def arity(self) -> int:
        return int(self._arity or 0)

    def save_config(self) -> tuple[list, dict]:
        return [self.input_dim, self.hidden_dim], {"arity": self._arity}
