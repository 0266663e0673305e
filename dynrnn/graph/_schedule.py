"""Running a graph: forward by compiled kernels (with autobatching), backward by their VJPs.

Forward (`forward(target)`) evaluates every node up to `target` that has no value yet,
as DyNet's incremental forward does. With autobatching on (the default) it follows
DyNet's agenda strategy (Neubig et al., 2017): nodes whose arguments are ready are
grouped by signature, and the group of lowest average depth runs first, as one kernel
call. Recurrent steps go further: a ready step whose next steps' inputs are already known
extends into a chain, and the chains of a group run as one `lax.scan` — the recurrence of
a sentence becomes one call however long it is (in segments of 16 steps, whose kernels
never depend on a sentence's length: each segment's initial states and inputs are stacked
by a small "gather" call of their own, and a run of several segments is "put" into one
stack, so what takes the steps' values gathers rows of one stack). Groups that feed one
another row by row go further too: when every node of a group has one consumer, and these
consumers are all the nodes of their signature still to compute and wait for nothing else,
they run in the same call ("fused"; a tagger's concatenate → H· → tanh → O· →
pickneglogsoftmax is one call per sentence, one compilation per group size). With
autobatching off, every node runs alone, in creation order (the reference the tests
compare against).

A group's output stays one stacked array on the device; its nodes hold `Slice(stack, i)`.
The next group takes its rows by index inside its kernel, so values cross the host
boundary only when the user asks for them. Every call is recorded as a launch;
`backward(loss)` walks the launches in reverse, assembles each one's output cotangent
(whole stacks from gathering consumers, single rows from the others) and calls its VJP.
"""

from __future__ import annotations

import functools
import gc
import time
from collections import OrderedDict, defaultdict
from typing import Any

import jax
import numpy as np

from .._batching import pow2
from . import _kernels as K
from . import _replay
from ._graph import CURRENT, REVERTED, Expression, Graph, GraphError, release
from ._rnn import PACK


class Slice:
    """Row `i` of `base`, a group's stacked output (an array, or a tuple of arrays for
    recurrent states)."""

    __slots__ = ("base", "i")

    def __init__(self, base: Any, i: int):
        self.base, self.i = base, i


def materialize(g: Graph, v: Any) -> Any:
    """A node's value as plain arrays (rows of a stack are cut once per stack, a chunk at a time)."""
    if isinstance(v, Slice):
        if isinstance(v.base, tuple):
            return tuple(materialize(g, Slice(b, v.i)) for b in v.base)
        start = v.i - v.i % K.ROWS_CHUNK
        rows = g.rows.get((id(v.base), start))
        if rows is None:
            rows = g.rows[id(v.base), start] = K.rows(v.base, start)
        return rows[v.i - start]
    if isinstance(v, tuple):
        return tuple(materialize(g, x) for x in v)
    return v


def _host_value(n: Expression) -> Any:
    """The value of a node computed on the host: a slot of a state, or a state packed
    from expressions."""
    if n.op is PACK:
        return tuple(a.val for a in n.args)
    v = n.args[0].val
    return Slice(v.base[n.static], v.i) if isinstance(v, Slice) else v[n.static]


class Launch:
    """One kernel call: what backward needs to call its VJP and route the cotangents."""

    __slots__ = ("kind", "key", "call_args", "out", "outputs", "shared", "positions", "ahead", "pull")

    def __init__(self, kind: str, key: tuple, call_args: tuple, out: Any, outputs: list,
                 shared: list, positions: list):
        self.kind, self.key, self.call_args, self.out = kind, key, call_args, out
        self.ahead: Any = None  # the VJP's compilation, started ahead (`K.compile_ahead`)
        self.pull: Any = None   # the pullback a training forward kept (`K._keeping`), or None
        self.outputs = outputs      # the nodes computed (for 'node': [the node])
        self.shared = shared        # nodes passed once (their cotangent is whole)
        self.positions = positions  # per packed argument: ('take', base) or ('list', [node or None])


def _gc_paused(f: Any) -> Any:
    """Runs `f` with Python's cyclic garbage collector paused (and as it was, after).
    Running a large graph allocates hundreds of thousands of short-lived objects (slices,
    launches, cotangent dicts), and the collector runs every 700 allocations, while the
    graph's surviving nodes set off full collections of the whole heap, JAX's included.
    Nothing here makes cycles (graphs avoid them: `Expression.gv`), so that work finds
    nothing. Measured on DyNet's Tree-LSTM example (25 trees, ~19,000 nodes per graph),
    200 trees once compiled: 5.3-5.5 s, 4.3-4.4 s paused here (the collector's threshold
    raised for the whole program: 3.1 s). The collector then runs once after a forward or
    backward, not inside it. (The switch is process-wide: a thread that turns it off while
    another runs a graph may find it back on.)"""
    @functools.wraps(f)
    def paused(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():
            return f(*args, **kwargs)
        gc.disable()
        try:
            return f(*args, **kwargs)
        finally:
            gc.enable()
    return paused


# -- forward --------------------------------------------------------------------------------

@_gc_paused
def forward(target: Expression) -> None:
    g = target.graph
    if g.replayed is not None:  # a value the replay did not keep: run on the kernel path
        _replay.fall_back(g)
    elif not g.ran:
        p = _replay.plan_for(g, target)
        if p is not None and p.status == "ready":
            _replay.forward(g, p, target)
            return
        g.plan = p if p is not None and p.status != "off" else None
    started = time.perf_counter()
    first = not g.ran
    g.ran = True
    pending = [n for n in g.nodes[g.evaluated:target.index + 1] if n.val is None]
    if pending:
        if CURRENT.autobatch and not _distinct(pending):
            _agenda(g, pending, target.index)
        elif CURRENT.autobatch and not CURRENT.training and _run_sequence(g, pending):
            pass
        else:
            for n in pending:
                if n.op.view:
                    n.val = _host_value(n)
                else:
                    _run_group(g, n.sig, [n])
    while g.evaluated < len(g.nodes) and g.nodes[g.evaluated].val is not None:
        g.evaluated += 1
    if g.plan is not None:
        if first:  # what a replay of the structure would save
            g.plan.spent += time.perf_counter() - started
        elif pending:  # the graph went on past its structure: a replay would have fallen back
            _replay.extended(g.plan)
            g.plan = None


# The structures `_run_sequence` has met (it compiles one from its second sighting on).
_SEQUENCES: OrderedDict[tuple, None] = OrderedDict()
_MAX_SEQUENCES = 4096
# Longer runs of nodes (a deep MLP's chain) run node by node: the one call's function is
# unrolled, and its compilation grows with its length.
MAX_SEQUENCE = 64


def _run_sequence(g: Graph, pending: list) -> bool:
    """Runs pending nodes that would each run alone, in creation order (`_distinct`), as one
    call (`K.sequence_kernel`, compiled once per structure: ops, shapes and wiring) — outside
    a training loop, where a program reads a value per step (DyNet's eager tagging: a word's
    concatenate -> H* -> tanh -> O* -> softmax, then npvalue(); its sampling: a character's
    lookup, LSTM step, R* + bias, softmax). Each computed node is still recorded as its own
    launch, so a backward() of the graph runs as it would have. False (nothing run) for
    fewer than two computed nodes or more than MAX_SEQUENCE, a node `_run_packed` would run
    (many arguments), or a structure seen for the first time (one that never recurs
    compiles nothing)."""
    computed = [n for n in pending if n.sig is not None]
    if (not 2 <= len(computed) <= MAX_SEQUENCE
            or any(_may_pack(n) and (len(n.args) >= SPREAD_ARGS or _packable(n) is not None) for n in computed)
            or any(n.sig is None and not n.op.view for n in pending)):
        return False
    at: dict[int, int] = {}
    outside: dict[int, int] = {}
    inputs: list = []
    consts: list = []
    key = []
    for j, n in enumerate(pending):
        refs = []
        for a in n.args:
            k = at.get(id(a))
            if k is None:
                k = outside.get(id(a))
                if k is None:
                    k = outside[id(a)] = len(inputs)
                    inputs.append(materialize(g, a.val))
                refs.append((False, k))
            else:
                refs.append((True, k))
        if n.sig is None:
            key.append((None, n.op is PACK, n.static, tuple(refs)))
        else:
            key.append((n.sig, False, None, tuple(refs)))
            consts.extend(n.consts)
        at[id(n)] = j
    structure = tuple(key)
    if structure not in _SEQUENCES:
        _SEQUENCES[structure] = None
        if len(_SEQUENCES) > _MAX_SEQUENCES:
            _SEQUENCES.popitem(last=False)
        return False
    out = K.sequence_kernel(structure)(tuple(inputs), tuple(consts))
    k = 0
    for n, (sig, _, _, refs) in zip(pending, structure):
        if sig is None:
            n.val = _host_value(n)
        else:
            n.val = out[k]
            k += 1
            args = tuple(materialize(g, pending[i].val) if inside else inputs[i] for inside, i in refs)
            g.launches.append(Launch("node", (sig,), (args, n.consts), n.val, [n], [], []))
    return True


# Up to this many pending nodes are checked for signatures in common (`_distinct`).
FEW = 12


def _distinct(pending: list) -> bool:
    """Whether the pending nodes have nothing to run together: a few of them, no two with
    one signature (as in DyNet's eager tagging, a word's concatenate → H· → tanh → O· →
    softmax after the sentence's BiLSTM ran; or its sampling, a character's lookup, LSTM
    step, output, R·, + bias, softmax), or a chain, each node taking the one before it (an
    MLP's affine → tanh → affine → tanh → ... on one input: no two are ever ready at once;
    not recurrent steps, which the agenda runs as one scan). The agenda would run each
    alone too, at several times the bookkeeping; creation order is one of the orders it
    may run them in."""
    if len(pending) <= FEW:
        sigs = [n.sig for n in pending if n.sig is not None]  # (views are computed on the host)
        if len(set(sigs)) == len(sigs):
            return True
    for prev, n in zip(pending, pending[1:]):
        if not any(a is prev for a in n.args):
            return False
    return not any(n.sig is not None and n.sig.op.recurrent is not None for n in pending)


def _agenda(g: Graph, pending: list, hi: int) -> None:
    waiting: dict[Expression, int] = {}
    consumers: dict[Expression, list] = defaultdict(list)
    ready: dict[Any, list] = {}
    depth_sum: dict[Any, int] = {}

    def make_ready(n: Expression) -> None:
        if n.val is not None:  # computed inside a chain already
            return
        if n.op.view:
            n.val = _host_value(n)
            done(n)
            return
        key = n.sig
        if n.op.recurrent is None:
            # nodes group per parameter they read (as DyNet's autobatching does): a group
            # then passes its parameters once, never one matrix per node (a Tree-LSTM's
            # gates, W_i·x, W_o·x, ... of one shape, made one group of per-node matrices:
            # a kernel of hundreds of matrix arguments, whose compilation ran out of
            # memory); lookups group per table, so their gradient reaches each table as
            # rows (`_sparse_lookup`). (Recurrent steps keep theirs: chains of several
            # builders run as one call.)
            params = tuple([a.index for a in n.args if a.op.leaf_param is not None])
            if params:
                key = (n.sig, params)
        ready.setdefault(key, []).append(n)
        depth_sum[key] = depth_sum.get(key, 0) + n.depth

    def done(n: Expression) -> None:
        for c in consumers.pop(n, ()):
            waiting[c] -= 1
            if waiting[c] == 0:
                del waiting[c]
                make_ready(c)

    left: dict[Any, int] = defaultdict(int)  # per signature: nodes not computed yet
    for n in pending:
        left[n.sig] += 1
        count = 0
        for a in n.args:
            if a.val is None:
                count += 1
                consumers[a].append(n)
        if count:
            waiting[n] = count
        else:
            make_ready(n)
    while ready:
        key = min(ready, key=lambda s: depth_sum[s] / len(ready[s]))
        group = ready.pop(key)
        del depth_sum[key]
        sig = group[0].sig
        if len(group) > 1 and not group[0].consts and all(_shared(group)):
            # the same operation on the same arguments, more than once (`dy.tanh(x)` twice):
            # there is nothing to batch (and no axis to batch over), so each runs alone
            for n in group:
                _run_group(g, sig, [n])
                left[sig] -= 1
                done(n)
            continue
        rec = sig.op.recurrent(sig.static) if sig.op.recurrent is not None else None
        computed = _run_chains(g, sig, group, rec, hi) if rec is not None else None
        if computed is None and len(group) > 1 and _run_packs(g, sig, group):
            computed = group
        if computed is None:
            stages = _pipeline(group, consumers, waiting, left) if len(group) > 1 and _fusable(group[0]) else None
            if stages:
                computed = _run_fused(g, [(group, None)] + stages)
            else:
                _run_group(g, sig, group)
                computed = group
        for n in computed:
            left[n.sig] -= 1
            done(n)
    # the two closures refer to each other: break the cycle
    make_ready = done = None  # type: ignore[assignment]  # noqa: F841


def _pack(g: Graph, vals: list) -> tuple:
    """(mode, diff, aux) for one argument position: rows of one stack are gathered inside
    the kernel ('take'); anything else is passed as a list of arrays ('list'). (Rows of a
    few stacks — a long chain's segments — are a list too: gathering them from their
    concatenation would compile a kernel per combination of segment shapes, that is per
    new sentence length.)"""
    b = _one_stack(vals)
    if b is not None:
        return "take", b, np.fromiter((v.i for v in vals), np.int32, len(vals))
    return "list", tuple(materialize(g, v) for v in vals), None


def _one_stack(vals: list) -> Any:
    """The stack every value is a row of, or None."""
    first = vals[0]
    if type(first) is Slice:
        b = first.base
        if all(type(v) is Slice and v.base is b for v in vals):
            return b
    return None


def _call(kernel: Any, call: tuple) -> tuple[Any, bool]:
    """`kernel(*call)`, and whether that call compiled it for these shapes (by the size of
    the jitted function's cache; False where JAX does not tell it)."""
    size = getattr(kernel, "_cache_size", None)
    if size is None:  # pragma: no cover - a JAX without it: nothing is compiled ahead
        return kernel(*call), False
    before = size()
    out = kernel(*call)
    return out, size() != before


def _ahead(launch: Launch, vjp: Any, args: tuple | None = None) -> None:
    """Compiles the VJP of a launch whose forward kernel has just compiled, in the
    background, unless this thread's last two graphs ended without backward(). `args`: the
    VJP's arguments before the cotangent (default: the forward's). Not for lookups: their
    gradient reaches the table as rows, without a VJP (`_sparse_lookup`)."""
    if CURRENT.training and CURRENT.compile_ahead and (not launch.outputs or launch.outputs[0].op.sparse_table is None):
        out = launch.out
        if launch.kind == "fused":  # the usual cotangents: the last stage's only (`K.fused_vjp`)
            out = (None,) * (len(out) - 1) + (out[-1],)
        launch.ahead = K.compile_ahead(vjp, launch.call_args if args is None else args, out)


_RECOMPUTING = {"group": K.group_vjp, "chain": K.chain_vjp, "fused": K.fused_vjp}


def _vjp_call(launch: Launch) -> tuple:
    """`(vjp kernel, its arguments before the cotangent)` of a group's, chain's or fused
    call's launch: the pullback its forward kept, or the forward's own arguments (the VJP
    computes the forward again). What `_ahead` compiles and `_backward` calls."""
    if launch.pull is None:
        return _RECOMPUTING[launch.kind](*launch.key), launch.call_args
    if launch.kind == "fused":
        return K.fused_kept_vjp(*launch.key), (launch.out, launch.pull)
    return K.kept_vjp((launch.kind, launch.key)), (launch.pull,)


def _keeps(sig: Any) -> bool:
    """Whether a group's, fused call's or chain's forward keeps its pullback for backward
    (`K._keeping`): in a training loop (`CURRENT.training`: this thread's last two graphs
    did not both end without backward()), and not for lookups (their gradient reaches the
    table as rows, `_sparse_lookup`)."""
    return CURRENT.training and sig.op.sparse_table is None


def _run_kept(keeping: Any, kernel: Any, keep: bool, call: tuple) -> tuple:
    """`(out, pull, compiled)`: `keeping(*call)` (output and pullback) when `keep`, else
    `kernel(*call)` and no pullback."""
    if keep:
        (out, pull), compiled = _call(keeping, call)
        return out, pull, compiled
    out, compiled = _call(kernel, call)
    return out, None, compiled


def _register(g: Graph, launch: Launch, out: Any) -> None:
    if isinstance(out, tuple):
        g.owners[id(out)] = (launch, "all")
        for k, o in enumerate(out):
            g.owners[id(o)] = (launch, k)
    else:
        g.owners[id(out)] = (launch, None)
    g.launches.append(launch)


class _Inputs:
    """The inputs of one group, fused or chain call, assembled argument by argument: those
    every node shares, passed once, and per other argument position its packed rows
    (`_pack`), in the order of the kernel's `(shared_args, diffs, auxs, consts)`."""

    def __init__(self, g: Graph):
        self.g = g
        self.shared_args: list = []
        self.shared_nodes: list = []  # their nodes (a shared cotangent goes to each whole)
        self.modes: list = []
        self.diffs: list = []
        self.auxs: list = []
        self.positions: list = []  # for backward: where each packed position's rows came from
        self.consts: list = []

    def shared(self, node: Expression) -> None:
        self.shared_args.append(materialize(self.g, node.val))
        self.shared_nodes.append(node)

    def rows(self, vals: list, nodes: list) -> None:
        """One packed position: `vals` (padded), from `nodes` (None for padding)."""
        mode, diff, aux = _pack(self.g, vals)
        self.modes.append(mode)
        self.diffs.append(diff)
        self.auxs.append(aux)
        self.positions.append(("take", diff) if mode == "take" else ("list", nodes))

    def dense(self, vals: list, nodes: list) -> None:
        """One packed position stacked by a call of its own ("gather" launch, whose VJP
        returns the rows' cotangents to where they came from), passed to the kernel as one
        array ("dense"): for chains, whose kernels would otherwise compile once per shape of
        the stack their inputs come from (a new group size) and per origin of their initial
        states (a builder's initial state, or the previous segment's last states); for groups
        whose inputs have come in too many layouts (`K.too_many_layouts`)."""
        if (len(vals) > 1 and all(type(v) is Slice and not isinstance(v.base, tuple) for v in vals)
                and _one_stack(vals) is None):  # rows of several stacks: never cut into rows
            out = self._from_stacks(vals)
        else:
            mode, diff, aux = _pack(self.g, vals)
            out = self._gather(mode, diff, aux, ("list", nodes) if mode == "list" else ("take", diff))
        self.modes.append("dense")
        self.diffs.append(out)
        self.auxs.append(None)
        self.positions.append(("take", out))

    def _gather(self, mode: str, diff: Any, aux: Any, origin: tuple) -> Any:
        out, compiled = _call(K.gather_kernel(mode), (diff, aux))
        launch = Launch("gather", (mode,), (diff, aux), out, [], [], [origin])
        _register(self.g, launch, out)
        if compiled:
            _ahead(launch, K.gather_vjp(mode))
        return out

    def _from_stacks(self, vals: list) -> Any:
        """Rows of several stacks (a Tree-LSTM node's children come from groups of every
        size): per stack, a call that takes its rows (zeros elsewhere), then one that sums
        them. Each kernel depends on one stack's shape, or on how many there are — not on
        the combination of shapes, which one gathering call would compile per new tree."""
        by_base: dict[int, tuple] = {}
        for i, v in enumerate(vals):
            by_base.setdefault(id(v.base), (v.base, []))[1].append(i)
        parts = []
        for base, at in by_base.values():
            idx, mask = np.zeros(len(vals), np.int32), np.zeros(len(vals), bool)
            idx[at] = [vals[i].i for i in at]
            mask[at] = True
            parts.append(self._gather("masked", base, (idx, mask), ("take", base)))
        return self._gather("sum", tuple(parts), None, ("takes", tuple(parts)))

    def group(self, nodes: list, nb: int, shared: tuple, link: int | None = None, dense: bool = False) -> tuple:
        """The arguments of `nodes` (one signature) padded to `nb` rows; `link` (a fused
        stage's input from the stage before) is skipped; `dense`: every position not shared
        is stacked by a call of its own. Returns this group's modes."""
        start = len(self.modes)
        padded = nodes + [nodes[-1]] * (nb - len(nodes))
        real = nodes + [None] * (nb - len(nodes))
        for k, s in enumerate(shared):
            if k == link:
                continue
            if s:
                self.shared(nodes[0].args[k])
            else:
                (self.dense if dense else self.rows)([n.args[k].val for n in padded],
                                                     [n.args[k] if n is not None else None for n in real])
        self.stack_consts(padded)
        return tuple(self.modes[start:])

    def stack_consts(self, padded: list) -> None:
        self.consts.extend(np.stack([n.consts[c] for n in padded]) for c in range(len(padded[0].consts)))

    def call(self) -> tuple:
        return tuple(self.shared_args), tuple(self.diffs), tuple(self.auxs), tuple(self.consts)


# A node with at least this many arguments, all rows of stacks, gathers them inside its
# kernel ("packed") instead of cutting the stacks into rows and passing each.
PACKED_ARGS = 4


# A group of more nodes than this takes a position whose rows come from several stacks (or
# are not rows of stacks) stacked by a call of its own, not as one argument per row.
LONG_LIST = 16


def _may_pack(n: Expression) -> bool:
    """Whether a node run alone may be a packed call (`_run_packed` decides)."""
    return len(n.args) >= PACKED_ARGS and (type(n.args[0].val) is Slice or len(n.args) >= SPREAD_ARGS)


def _run_group(g: Graph, sig: Any, nodes: list) -> None:
    if len(nodes) == 1:
        n = nodes[0]
        if _may_pack(n) and _run_packed(g, sig, n):
            return
        args = tuple(materialize(g, a.val) for a in n.args)
        n.val, compiled = _call(K.node_kernel(sig), (*args, *n.consts))
        launch = Launch("node", (sig,), (args, n.consts), n.val, [n], [], [])
        g.launches.append(launch)
        if compiled and n.args:  # (an attention decoder's steps: one node each)
            _ahead(launch, K.node_vjp(sig))
        return
    shared = _shared(nodes)
    layout = _layout(nodes, shared)
    # dense: inputs stacked by calls of their own, when this kernel has met too many layouts,
    # or would take a long list of arrays (one argument per row: a (1024-argument) VJP of a
    # Tree-LSTM's group compiled in 26 s)
    dense = K.too_many_layouts((sig, shared), layout) or (len(nodes) > LONG_LIST and "list" in layout)
    if dense:
        layout = ("dense",) * len(layout)
    nb = K.group_size((sig, shared, layout), len(nodes))
    inputs = _Inputs(g)
    key = (sig, shared, inputs.group(nodes, nb, shared, dense=dense))
    call = inputs.call()
    out, pull, compiled = _run_kept(K.group_keeping(*key), K.group_kernel(*key), _keeps(sig), call)
    for i, n in enumerate(nodes):
        n.val = Slice(out, i)
    launch = Launch("group", key, call, out, nodes, inputs.shared_nodes, inputs.positions)
    launch.pull = pull
    _register(g, launch, out)
    if compiled:
        _ahead(launch, *_vjp_call(launch))


# At most this many groups run as one fused call.
MAX_STAGES = 8


def _fusable(n: Expression) -> bool:
    """Whether nodes of `n`'s signature may be a stage of a fused call: one array out (not
    a state), not a step of a recurrence (those run as chains), not a lookup (whose
    gradient reaches its table as rows, see `_sparse_lookup`)."""
    op = n.op
    return (op.recurrent is None and op.sparse_table is None and not op.view and op.leaf_param is None
            and not (n.dims and isinstance(n.dims[0], tuple)))


def _pipeline(group: list, consumers: dict, waiting: dict, left: dict) -> list:
    """The groups that can run in one call after `group`: while every node of the last
    stage has exactly one consumer, these consumers share one fusable signature, take that
    node at one and the same argument position, wait for nothing else, and are all the
    nodes of their signature still to compute (so that fusing never splits a group the
    agenda would have formed), they are the next stage. [(nodes, link position), ...]"""
    stages: list = []
    nodes = group
    while len(stages) < MAX_STAGES - 1:
        nxt = []
        for n in nodes:
            cs = consumers.get(n)
            if cs is None or len(cs) != 1:
                return stages
            nxt.append(cs[0])
        c0 = nxt[0]
        sig = c0.sig
        if left[sig] != len(nxt) or not _fusable(c0):
            return stages
        link = _position(c0, nodes[0])
        if link is None:
            return stages
        for c, n in zip(nxt, nodes):
            if c.sig != sig or waiting.get(c) != 1 or c.args[link] is not n:
                return stages
        stages.append((nxt, link))
        nodes = nxt
    return stages


def _position(c: Expression, n: Expression) -> int | None:
    """The one argument position at which `c` takes `n` (None if it takes it twice)."""
    ks = [k for k, a in enumerate(c.args) if a is n]
    return ks[0] if len(ks) == 1 else None


def _run_fused(g: Graph, stages: list) -> list:
    """Runs groups that feed one another row by row as one call (`K.fused_kernel`); every
    stage's output stays stacked, so each node still has its value."""
    first = stages[0][0]
    descr = []
    for nodes, link in stages:
        shared = _shared(nodes, link)
        descr.append((nodes[0].sig, shared, link, _layout(nodes, shared, link)))
    nb = K.group_size(("fused", tuple(descr)), len(first))
    inputs = _Inputs(g)
    key = tuple((sig, shared, inputs.group(nodes, nb, shared, link), link)
                for (nodes, link), (sig, shared, _, _) in zip(stages, descr))
    call = inputs.call()
    out, pull, compiled = _run_kept(K.fused_keeping(key), K.fused_kernel(key), CURRENT.training, call)
    computed = []
    launch = Launch("fused", (key,), call, out, computed, inputs.shared_nodes, inputs.positions)
    launch.pull = pull
    for j, (nodes, _) in enumerate(stages):
        for i, n in enumerate(nodes):
            n.val = Slice(out[j], i)
        computed.extend(nodes)
        g.owners[id(out[j])] = (launch, j)
    g.launches.append(launch)
    if compiled:
        _ahead(launch, *_vjp_call(launch))
    return computed


def _shared(nodes: list, link: int | None = None) -> tuple:
    """Per argument position: whether every node takes the same node there (passed once);
    never the link of a fused stage."""
    first = nodes[0].args
    return tuple(k != link and all(n.args[k] is first[k] for n in nodes) for k in range(len(first)))


def _layout(nodes: list, shared: tuple, link: int | None = None) -> tuple:
    """What a group kernel's input shapes depend on besides the group's size: per argument
    that is not shared (nor the link of a fused stage), the shape of the one stack its rows
    come from, or "list"."""
    out = []
    for k, s in enumerate(shared):
        if s or k == link:
            continue
        b = _one_stack([n.args[k].val for n in nodes])
        out.append("list" if b is None else K.tree_map(lambda a: a.shape, b))
    return tuple(out)


def _packable(n: Expression) -> tuple[int, Any] | None:
    """(m, stack) when node `n`'s first m arguments are rows of one stack and the others,
    if any, one padding value repeated; else None."""
    m = _terms(n.args)
    b = _one_stack([a.val for a in n.args[:m]])
    return None if b is None else (m, b)


def _terms(args: tuple) -> int:
    """How many arguments come before the padding of an n-ary node (one value, not a row
    of a stack, repeated at the end)."""
    m = len(args)
    while m > 1 and args[m - 1] is args[-1] and type(args[-1].val) is not Slice:
        m -= 1
    return m


def _run_packs(g: Graph, sig: Any, nodes: list) -> bool:
    """Runs a group of nodes with many arguments, each gathering rows of the same stack
    (then padding), as one "packs" launch: 16 sentences' `esum`s of their words' losses,
    whose arguments a group launch would pass position by position — compiling once per
    pattern of which positions are padding, that is per minibatch. False (nothing run)
    when they are not such nodes."""
    if len(sig.args) < PACKED_ARGS or sig.consts or type(nodes[0].args[0].val) is not Slice:
        return False
    found = [f for f in map(_packable, nodes) if f is not None]
    if len(found) < len(nodes):
        return False
    base = found[0][1]
    n_args = len(sig.args)
    pads = {id(n.args[-1]): n.args[-1] for n, (m, _) in zip(nodes, found) if m < n_args}
    if any(b is not base for _, b in found) or len(pads) > 1:
        return False
    size = K.group_size(("packs", sig, K.tree_map(lambda a: a.shape, base)), len(nodes))
    aux, m = np.zeros((size, n_args), np.int32), np.zeros(size, np.int32)  # padding rows: all pad
    for r, (n, (k, _)) in enumerate(zip(nodes, found)):
        aux[r, :k] = [a.val.i for a in n.args[:k]]
        m[r] = k
    pad_node = next(iter(pads.values()), None)
    pad = (materialize(g, pad_node.val) if pad_node is not None else
           K.tree_map(lambda a: K.zeros(tuple(a.shape[1:]), a.dtype), base))
    call = (base, aux, pad, m)
    out, compiled = _call(K.packs_kernel(sig), call)
    for i, n in enumerate(nodes):
        n.val = Slice(out, i)
    launch = Launch("packs", (sig,), call, out, nodes, [pad_node] if pad_node is not None else [],
                    [("take", base)])
    _register(g, launch, out)
    if compiled:
        _ahead(launch, K.packs_vjp(sig))
    return True


def _run_packed(g: Graph, sig: Any, n: Expression) -> bool:
    """Runs node `n`, whose arguments are rows of one stack (then, perhaps, one padding
    value repeated), as one "packed" launch; or, for a node of many arguments whose rows
    come from several stacks, those rows stacked first (`_spread`). False (nothing run)
    when they are neither."""
    args = n.args
    found = _packable(n)
    if found is not None:
        m = found[0]
        _, diff, aux = _pack(g, [a.val for a in args[:m]])
    else:  # (checked before `_pack`, which would cut the stacks into rows)
        spread = _spread(g, sig, n)
        if spread is None:
            return False
        m, diff, aux = spread
    padded = m < len(args)
    # A padded node may take more of its (neutral) padding: as groups do, it runs on the
    # kernel of a larger argument count that has already run, if one is within 4x. The
    # kernel is keyed by its argument count and one argument's dims, at the node's batch:
    # which of them are padding is the argument m, and a batch-1 padding is lifted inside
    # (DyNet's rnnlm-batch.py pads each minibatch's esum of batched losses with a different
    # number of batch-1 zeros: keyed by every argument's batch, it compiled a kernel and
    # its VJP, ~0.9 s, nearly every update).
    size = len(args)
    if len({(d, t) for d, _, t in sig.args}) == 1:
        one = (sig.args[0][0], sig.batch, sig.args[0][2])
        if padded:
            size = K.group_size(("packed", sig.op, sig.static, one, sig.consts, sig.batch,
                                 K.tree_map(lambda a: a.shape, diff)), size)
        sig = K.Sig((sig.op, sig.static, (one,) * size, sig.consts, sig.batch))
    aux = np.concatenate([aux, np.zeros(size - m, np.int32)]) if size > m else aux
    if padded:
        pad = materialize(g, args[-1].val)
    elif isinstance(diff, tuple):  # unpadded: zeros that m masks out
        pad = K.tree_map(lambda a: K.zeros(tuple(a.shape[1:]), a.dtype), diff)
    else:  # (one value's dims, as an esum's batch-1 zero padding: the same kernel as padded)
        pad = K.zeros(tuple(sig.args[0][0]), diff.dtype)
    call = (diff, aux, pad, np.int32(m), n.consts)
    n.val, compiled = _call(K.packed_kernel(sig), call)
    launch = Launch("packed", (sig,), call, n.val, [n], [args[-1]] if padded else [], [("take", diff)])
    g.launches.append(launch)
    if compiled:
        _ahead(launch, K.packed_vjp(sig))
    return True


# A reduction (`esum`, `emax`, `logsumexp`) of at least this many terms, rows of several
# stacks, has its rows stacked first (`_spread`).
SPREAD_ARGS = 64


def _spread(g: Graph, sig: Any, n: Expression) -> tuple | None:
    """(m, stack, rows) for a reduction node `n` of many terms whose rows come from several
    stacks (then, perhaps, one padding value repeated): its first m terms stacked, padded
    to a power of two, by calls that each depend on one stack's shape (`_Inputs.dense`).
    DyNet's treelstm example sums ~1,000 node losses computed level by level: passed one
    argument per term, that sum compiled a kernel of 1,024 arguments (1.3 s) and its VJP of
    2,048 (4.1 s), and its cotangents were added into their stacks by a kernel of 1,026.
    None when `n` is not such a node."""
    args = n.args
    if sig.op.stacked is None or len(args) < SPREAD_ARGS or n.consts:
        return None
    m = _terms(args)
    vals = [a.val for a in args[:m]]
    loose = [i for i, v in enumerate(vals) if type(v) is not Slice or isinstance(v.base, tuple)]
    # (terms of one dims and batch size: stacked rows of one shape)
    if m < SPREAD_ARGS or 4 * len(loose) > m or len({a.part for a in args[:m]}) > 1:
        return None
    inputs = _Inputs(g)
    if loose:  # values not rows of a stack (a node computed alone): stacked by one call first
        k = pow2(len(loose))
        arrays = [materialize(g, vals[i]) for i in loose]
        stack = inputs._gather("list", tuple(arrays + arrays[-1:] * (k - len(loose))), None,
                               ("list", [args[i] for i in loose] + [None] * (k - len(loose))))
        for j, i in enumerate(loose):
            vals[i] = Slice(stack, j)
    nb = pow2(m)
    inputs.dense(vals + [vals[-1]] * (nb - m), list(args[:m]) + [None] * (nb - m))
    return m, inputs.diffs[0], np.arange(m, dtype=np.int32)


def _run_chains(g: Graph, sig: Any, heads: list, rec: tuple, hi: int) -> list | None:
    """Extends each ready recurrent step into the chain of steps that follow it and whose
    inputs are known, and runs all chains as one scan. None when no chain is longer than 1."""
    state_pos, x_pos = rec
    fixed = [k for k in range(len(sig.args)) if k not in rec]
    chains = []
    for h in heads:
        chain, c = [h], (None if h.child is None else g.nodes[h.child])
        while (c is not None and c.sig == sig and c.val is None and c.index <= hi
               and c.args[x_pos].val is not None and all(c.args[k] is h.args[k] for k in fixed)):
            chain.append(c)
            c = None if c.child is None else g.nodes[c.child]
        chains.append(chain)
    if max(len(c) for c in chains) == 1:
        return None
    # Segments of SEGMENT_LONG (or, near the end, SEGMENT_SHORT) steps: the kernels depend
    # on the segment length, never on a sentence's, so new lengths compile nothing; each
    # segment starts from the states the previous one left on the device.
    computed, pos, alive, outs = [], 0, chains, []
    while alive:
        left = max(len(c) - pos for c in alive)
        t = SEGMENT_LONG if left > SEGMENT_SHORT else SEGMENT_SHORT  # a short segment only ends a chain
        segs = [c[pos:pos + t] for c in alive]
        outs.append((_run_segment(g, sig, segs, fixed, state_pos, x_pos, t), segs, t))
        for seg in segs:
            computed.extend(seg)
        pos += t
        alive = [c for c in alive if len(c) > pos]
    if len(outs) > 1:
        _assemble(g, outs)
    return computed


def _assemble(g: Graph, outs: list) -> None:
    """Puts the segments' outputs `[(stack, chains, steps), ...]` of one chain run into one
    stack (a power of two of rows; `put` launches, one per segment), so that whatever takes
    the steps' values takes rows of one stack, gathered inside its kernel: not rows of
    several, which would be passed one by one (a kernel argument each, compiled per count)."""
    rows = sum(_leading(out) for out, _, _ in outs)
    buf = K.tree_map(lambda a: K.zeros((pow2(rows),) + tuple(a.shape[1:]), a.dtype), outs[0][0])
    prev: Any = None  # the zeros it starts from have no launch to send a cotangent to
    at = 0
    placed = []
    for out, chains, t in outs:
        call = (buf, out, np.int32(at))
        buf, compiled = _call(K.put_kernel(), call)
        launch = Launch("put", (), call, buf, [], [], [prev, ("take", out)])
        _register(g, launch, buf)
        if compiled:
            _ahead(launch, K.put_vjp())
        prev = ("take", buf)
        placed.extend((n, at + i * t + j) for i, c in enumerate(chains) for j, n in enumerate(c))
        at += _leading(out)
    for n, i in placed:
        n.val = Slice(buf, i)


def _leading(stack: Any) -> int:
    """The number of rows of a stack (of each of its arrays, for a state)."""
    return int(jax.tree_util.tree_leaves(stack)[0].shape[0])


SEGMENT_LONG, SEGMENT_SHORT = 16, 4


def _run_segment(g: Graph, sig: Any, chains: list, fixed: list, state_pos: int, x_pos: int, tb: int) -> Any:
    """One scan of `tb` steps over every chain (each at most tb steps; shorter ones padded).
    The chains are padded as groups are (`K.group_size`): to a count this scan has already
    run at, within 4×, else a power of two — a minibatch's sentences end one by one, so its
    segments come with every count from the minibatch's size down to 1."""
    nb = K.group_size(("chain", sig, tb, state_pos, x_pos), len(chains))
    padded = chains + [chains[-1]] * (nb - len(chains))
    real = chains + [None] * (nb - len(chains))
    head0 = chains[0][0].args
    shared = tuple(k in fixed and all(c[0].args[k] is head0[k] for c in chains) for k in range(len(sig.args)))
    inputs = _Inputs(g)
    for k in fixed:
        if shared[k]:
            inputs.shared(head0[k])
    for k in fixed:
        if not shared[k]:
            inputs.rows([c[0].args[k].val for c in padded], [c[0].args[k] if c else None for c in real])
    inputs.dense([c[0].args[state_pos].val for c in padded], [c[0].args[state_pos] if c else None for c in real])
    xs = [c[min(t, len(c) - 1)].args[x_pos] for c in padded for t in range(tb)]
    inputs.dense([x.val for x in xs], [c[t].args[x_pos] if c and t < len(c) else None for c in real for t in range(tb)])
    inputs.stack_consts([c[0] for c in padded])
    key = (sig, shared, tuple(inputs.modes), nb, tb, state_pos, x_pos)
    call = inputs.call()
    out, pull, compiled = _run_kept(K.chain_keeping(*key), K.chain_kernel(*key), _keeps(sig), call)
    nodes = []
    for i, c in enumerate(chains):
        for t, n in enumerate(c):
            n.val = Slice(out, i * tb + t)
            nodes.append(n)
    launch = Launch("chain", key, call, out, nodes, inputs.shared_nodes, inputs.positions)
    launch.pull = pull
    _register(g, launch, out)
    if compiled:
        _ahead(launch, *_vjp_call(launch))
    return out


def _first_unevaluated(g: Graph) -> int:
    """The index of the graph's first node without a value (its length if none): where
    `g.evaluated` stands after values were dropped."""
    return next((i for i, n in enumerate(g.nodes) if n.val is None), len(g.nodes))


def invalidate(g: Graph) -> None:
    """Forgets every value the graph computed (DyNet's `cg.invalidate()`: after an input's
    `set()`, or for `recalculate=True`), and the gradients of its last backward(): the next
    forward computes every node again, from the inputs' values and the parameters' current
    ones (as DyNet's forward reads them where they are stored). A graph re-run this way is a
    structure like any other: replay may compile it once it keeps coming back."""
    g.replayed = None  # (a replay's values go with the rest; not a fall-back)
    for leaf in g.params.values():
        leaf.val = leaf.extra.stored_value()
    for n in g.nodes:
        if n.sig is not None or n.op.view:
            n.val = None
    g.launches, g.owners, g.rows, g.grads = [], {}, {}, {}
    g.backward_replayed = None
    g.evaluated = _first_unevaluated(g)
    g.ran, g.plan = False, None


def revert(g: Graph) -> None:
    """DyNet's `cg_revert()`: removes the nodes made since the last `cg_checkpoint()` (their
    expressions can no longer be used) and the kernel calls made since, with the values of
    older nodes those calls computed (the next forward computes them again), and forgets
    the last backward's gradients."""
    if not g.checkpoints:
        raise GraphError("dy.cg_revert: no dy.cg_checkpoint() to go back to in this graph.")
    nodes, launches = g.checkpoints.pop()
    if g.replayed is not None:
        _replay.fall_back(g)
    g.plan = None
    dropped = g.launches[launches:]
    del g.launches[launches:]
    gone = {id(launch) for launch in dropped}
    g.owners = {k: v for k, v in g.owners.items() if id(v[0]) not in gone}
    g.rows = {k: v for k, v in g.rows.items() if k[0] in g.owners}
    for launch in dropped:
        for n in launch.outputs:
            n.val = None
    for n in g.nodes[nodes:]:
        n.gv = REVERTED
    release(g.nodes[nodes:])
    del g.nodes[nodes:]
    for n in g.nodes:
        if n.op.view and n.val is not None and any(a.val is None for a in n.args):
            n.val = None  # a slot of a state computed again
        if n.child is not None and n.child >= nodes:
            n.child = None
    g.params = {k: leaf for k, leaf in g.params.items() if leaf.index < nodes}
    g.grads, g.backward_replayed = {}, None
    g.evaluated = _first_unevaluated(g)


# -- backward -------------------------------------------------------------------------------

class _Cotangents:
    """Cotangent contributions: per node for values held as plain arrays, per launch
    (whole stacks and single rows, per output slot) for values held as rows of a stack."""

    def __init__(self, g: Graph, full: bool):
        self.g, self.full = g, full
        self.nodes: dict[Expression, Any] = {}
        self.whole: dict[Launch, dict] = defaultdict(lambda: defaultdict(list))
        self.rows: dict[Launch, dict] = defaultdict(lambda: defaultdict(list))

    def add(self, node: Expression | None, ct: Any) -> None:
        if node is None or ct is None or (node.const and not self.full):
            return
        if node.op is PACK:  # a state made of expressions: each slot to its expression
            for a, c in zip(node.args, ct):
                self.add(a, c)
            return
        v = node.val
        if isinstance(v, Slice):
            self._add_row(v, ct)
        elif node.op.view:  # a slot of a state held as plain arrays
            parent = node.args[0]
            if parent.op is PACK:
                self.add(parent.args[node.static], ct)
            else:
                self.nodes.setdefault(parent, {}).setdefault(node.static, []).append(ct)
        elif isinstance(v, tuple):
            slots = self.nodes.setdefault(node, {})
            for k, c in enumerate(ct):
                slots.setdefault(k, []).append(c)
        else:
            self.nodes.setdefault(node, []).append(ct)

    def _add_row(self, v: Slice, ct: Any) -> None:
        if isinstance(v.base, tuple):
            for b, c in zip(v.base, ct):
                self._add_row(Slice(b, v.i), c)
            return
        launch, slot = self.g.owners[id(v.base)]
        self.rows[launch][slot].append((v.i, ct))

    def add_stack(self, base: Any, ct: Any) -> None:
        """The cotangent of a whole stack (from a kernel that gathered rows of it)."""
        launch, slot = self.g.owners[id(base)]
        if slot == "all":
            for k, c in enumerate(ct):
                self.whole[launch][k].append(c)
        else:
            self.whole[launch][slot].append(ct)

    def node_total(self, node: Expression) -> Any:
        parts = self.nodes.get(node)
        if parts is None:
            return None
        if isinstance(parts, dict):
            return tuple(K.add_all(parts[k]) if k in parts else K.zeros(v.shape, v.dtype)
                         for k, v in enumerate(node.val))
        return K.add_all(parts)

    def launch_total(self, launch: Launch) -> Any:
        whole, rows = self.whole.get(launch), self.rows.get(launch)
        if not whole and not rows:
            return None

        def slot_total(slot: Any, template: Any) -> Any:
            w = whole.get(slot) if whole else None
            r = rows.get(slot) if rows else None
            if not w and not r and launch.kind == "fused":  # (its VJP takes None for "none")
                return None
            acc = K.add_all(w) if w else K.zeros(template.shape, template.dtype)
            if r:
                acc = K.scatter_add(acc, [i for i, _ in r], [c for _, c in r])
            return acc

        if isinstance(launch.out, tuple):
            return tuple(slot_total(k, o) for k, o in enumerate(launch.out))
        return slot_total(None, launch.out)


@_gc_paused
def backward(loss: Expression, full: bool = False, accumulate: bool = True) -> None:
    """Accumulates d(loss)/d(parameter) into the parameters (`accumulate=False`: only
    records every node's gradient, for `gradient()`)."""
    g = loss.graph
    g.trained = g.trained or accumulate
    if g.replayed is not None:
        if accumulate and _replay.backward(g, loss, full):
            return
        _replay.fall_back(g)
        forward(loss)
    started = time.perf_counter()
    _backward(g, loss, full, accumulate)
    p = g.plan
    if p is not None and loss.index == len(p.key) - 1:
        p.spent += time.perf_counter() - started


def _backward(g: Graph, loss: Expression, full: bool, accumulate: bool) -> None:
    cts = _Cotangents(g, full)
    cts.add(loss, K.ones(tuple(loss.shape), loss.dt))  # (jnp.ones would compile per shape)
    for launch in reversed(g.launches):
        if launch.kind in ("gather", "put"):
            ct = cts.launch_total(launch)
            if ct is not None:
                K.claim(launch.ahead)
                vjp = K.gather_vjp(*launch.key) if launch.kind == "gather" else K.put_vjp()
                for position, c in zip(launch.positions, vjp(*launch.call_args, ct)):
                    _route_packed(cts, position, c)
            continue
        if launch.kind == "packed":
            n = launch.outputs[0]
            ct = cts.node_total(n)
            if ct is None or n.index > loss.index:
                continue
            K.claim(launch.ahead)
            d_diff, d_pad = K.packed_vjp(*launch.key)(*launch.call_args, ct)
            _route_packed(cts, launch.positions[0], d_diff)
            if launch.shared:  # the padding value
                cts.add(launch.shared[0], d_pad)
            continue
        if launch.kind == "node":
            n = launch.outputs[0]
            ct = cts.node_total(n)
            if ct is None or n.index > loss.index:
                continue
            if _sparse_lookup(launch, ct, accumulate):
                continue
            args, consts = launch.call_args
            K.claim(launch.ahead)
            for a, c in zip(n.args, K.node_vjp(launch.key[0])(args, consts, ct)[0]):
                cts.add(a, c)
            continue
        ct = cts.launch_total(launch)
        if ct is None:
            continue
        K.claim(launch.ahead)
        g.grads[launch] = ct
        if launch.kind == "packs":
            d_diff, d_pad = K.packs_vjp(*launch.key)(*launch.call_args, ct)
            s_ct, d_ct = (d_pad,), (d_diff,)
        else:
            if launch.kind != "fused" and _sparse_lookup(launch, ct, accumulate):
                continue
            vjp, args = _vjp_call(launch)
            s_ct, d_ct = vjp(*args, ct)
        for node, c in zip(launch.shared, s_ct):
            cts.add(node, c)
        for position, c in zip(launch.positions, d_ct):
            _route_packed(cts, position, c)
    for n, _parts in list(cts.nodes.items()):
        total = cts.node_total(n)
        if n.op.leaf_param is not None and accumulate:
            n.op.leaf_param(n, total)
        g.grads[n] = total


def _route_packed(cts: _Cotangents, position: tuple | None, c: Any) -> None:
    """The cotangent of one packed argument position, to where its rows came from."""
    if position is None:
        return
    mode, where = position
    if mode == "take":
        cts.add_stack(where, c)
    elif mode == "takes":  # rows of several stacks: a cotangent per stack
        for base, cb in zip(where, c):
            cts.add_stack(base, cb)
    else:
        for node, ci in zip(where, c):
            cts.add(node, ci)


def _sparse_lookup(launch: Launch, ct: Any, accumulate: bool) -> bool:
    """A lookup's gradient goes to its table as rows (ids, cotangent rows), not as a dense
    table-sized array: trainers then touch only those rows, as DyNet's sparse updates do.
    True when handled (the launch's only differentiable input is the table)."""
    sig = launch.key[0]
    if not getattr(sig.op, "sparse_table", False):
        return False
    table = launch.outputs[0].args[0] if launch.kind == "node" else (launch.shared[0] if launch.shared else None)
    if table is None or table.op.leaf_param is None:
        return False
    if accumulate and not table.const and sig.op.sparse_table(sig.static):
        ids = launch.call_args[1][0] if launch.kind == "node" else launch.call_args[3][0]
        table.extra.accumulate_sparse(ids, ct)
    return True


def gradient_of(node: Expression) -> Any:
    """The gradient from the last backward() (zeros where none flowed)."""
    g = node.graph
    if g.backward_replayed is not None:  # the replay kept no per-node gradients: compute them
        loss, g.backward_replayed = g.backward_replayed, None
        if g.replayed is not None:
            _replay.fall_back(g)
        forward(loss)
        _backward(g, loss, False, accumulate=False)
    if node.op.view and node.op is not PACK:  # a slot of a state (h(), s(), output())
        parent = node.args[0]
        if parent.op is PACK:
            return gradient_of(parent.args[node.static])
        whole = g.grads.get(parent)
        if isinstance(whole, tuple):  # the state was held as plain arrays: one total per slot
            return whole[node.static]
    v = node.val
    if isinstance(v, Slice) and not isinstance(v.base, tuple):
        launch, slot = g.owners[id(v.base)]
        i = v.i
        while launch.kind == "put":  # a chain's segments put into one stack: the segment's own
            buf, part, at = launch.call_args
            if at <= i < at + _leading(part):
                launch, i = g.owners[id(part)][0], i - int(at)
            else:
                launch = g.owners[id(buf)][0]
        ct = g.grads.get(launch)
        if ct is not None and launch.kind in ("chain", "fused"):  # what flowed back from later steps or stages too
            ct = g.grads.get(("totals", launch))
            if ct is None:
                totals = K.chain_totals if launch.kind == "chain" else K.fused_totals
                ct = g.grads[("totals", launch)] = totals(*launch.key)(*launch.call_args, g.grads[launch])
        if ct is not None:
            return (ct[slot] if slot is not None else ct)[i]
    ct = g.grads.get(node)
    return np.zeros(node.shape, np.float32) if ct is None else ct


# -- parameters written over in place (`_Param.sole_holder`, `_Param.store`) -----------------

def _count(x: Any, arr: Any) -> int:
    return sum(1 for y in jax.tree_util.tree_leaves(x) if y is arr)


def held(arr: Any) -> int:
    """How many references to `arr` (a parameter's stored value) this thread's graph holds:
    its parameter leaves' values and the arguments its kernel calls keep for backward; -1
    (never to be given up) while the graph holds a replay, which keeps the values it ran with
    (a graph that falls back recomputes from them)."""
    g = CURRENT.graph
    if g.replayed is not None:
        return -1
    n = sum(1 for leaf in g.params.values() if leaf.val is arr)
    return n + sum(_count(launch.call_args, arr) for launch in g.launches)


def repoint(old: Any, new: Any, replaced: bool) -> None:
    """A parameter's value `old` was stored over by `new`: this thread's graph reads it
    where it is stored, as DyNet's does (its leaves take `new`: nodes computed from now on
    see it; those computed keep their values). `replaced` (`old` is gone, written over in
    place): the arguments its kernel calls keep for a second backward() take `new` too. A
    graph holding a replay keeps the values it ran with (its fall-back recomputes every
    node, so a value read before the update must not change)."""
    g = CURRENT.graph
    if g.replayed is not None:
        return
    for leaf in g.params.values():
        if leaf.val is old:
            leaf.val = new
    if replaced:
        for launch in g.launches:
            if _count(launch.call_args, old):
                launch.call_args = jax.tree_util.tree_map(lambda x: new if x is old else x, launch.call_args)
