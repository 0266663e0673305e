"""Replay: a graph structure that recurs runs as one compiled function.

DyNet programs build a new graph per example. When the same structure comes back — the
same operations on the same shapes, wired the same way; only ids, indices, inputs and
parameter values differ (think of an example program that trains on one sentence, or of
sentences of a common length) — running its hundreds of nodes as hundreds of kernel
calls costs far more than the arithmetic. Such a structure is compiled as a whole, once:
one function for the forward and every gradient (in a training loop a replay computes both
in one call), one for the forward alone (compiled when a graph first needs it, if the
structure became due in a training loop), and later graphs of that structure run as one
call each.

Repeated steps (a decoder's, an encoder's) are compiled once each, as the body of a scan
(`_reroll`): what is compiled grows with a structure's distinct code, not its length.

When to compile is a rent-or-buy choice: a structure is compiled once the time its graphs
have spent on the kernel path reaches the estimated cost of compiling it (k·n² for n nodes
compiled, loops rerolled; k measured from earlier compilations; at least 0.8 s). Whatever
the data, this spends at most about twice what the better of the two choices would have;
structures that never recur (every sentence a new shape) never compile — nor get a key: a
structure is keyed and counted from its second sighting on (a cheap fingerprint recognises
it). A compiled structure must then earn its place: "auto" times each iteration of the
program's loop (from one graph of the structure to the next, backward and update included),
and a structure whose replayed iterations take longer than its kernel-path ones runs on the
kernel path for good (a replay runs its nodes one by one: it can lose what autobatching
won). `dy.config(replay=...)` switches it: "auto" (the default), "always" (compile at first
sight; for tests), or "never".

The key of a structure lists, per node, its kernel signature and the indices of its
arguments (leaves: their kind, dims, batch, dtype and constness). Ids, indices, inputs
and parameter values are arguments of the compiled functions, never constants in them.

A replayed graph holds values only for the nodes the user asked for. Anything else — the
value of another node, nodes added after the forward, `gradient()`, `backward(full=True)`
— makes the graph fall back: it runs again on the kernel path (same results). A structure
whose graphs fall back more than one time in four is not replayed again — nor compiled in
the first place when, before that, its graphs went on past it that often (only the first
forward of a graph counts towards the rent: it is what a replay would save).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._xla import kernel_jit
from . import _reroll
from ._graph import CURRENT, Expression, Graph
from ._kernels import Sig, node_function

# Compiling a structure's two functions costs about k·n² seconds for n nodes (unrolled, measured
# on DyNet's rnnlm example, a 2-layer LSTM unrolled over a sentence: 280 nodes 15 s, 560 nodes
# 54 s; a per-node estimate fitted on short structures under-estimates long ones ~2× per
# doubling, which breaks the rent-or-buy bound below).
# k is re-estimated from every compilation (n: the nodes compiled once loops are rerolled);
# the first guess is what DyNet's attention example measured here unrolled (488 nodes: 0.2 +
# 1.0 s tracing, 3 + 16 s XLA:CPU compilation; rerolled it compiles 90 nodes in 7 s).
# A small structure still costs two XLA compilations: at least _LEAST seconds (measured: a
# 17-node structure, the first step of DyNet's rnnlm sampling loop, 0.8 s).
_COST = {"seconds": 0.0, "nodes2": 0.0}
_FIRST_GUESS_K = 19.2 / 488 ** 2
_LEAST = 0.8
_MAX_PLANS = 512  # structures remembered (least recently seen forgotten first)


class Plan:
    """One structure: its key, the time its graphs spent on the kernel path, and — once
    compiled — its functions and where its gradients go."""

    __slots__ = ("key", "loops", "size", "spent", "status", "fwd", "grad", "spec", "rerolled", "dense", "sparse",
                 "then_backward", "pending", "error", "uses", "misses", "seen", "extended", "kernel_s", "replay_s")

    def __init__(self, key: tuple):
        self.key = key
        self.loops = _reroll.find_loops(key)  # its repeated steps (those of the forward function)
        self.size = _reroll.size(key, self.loops)  # the nodes compiled (loops rerolled)
        self.spent = 0.0
        self.status = "new"  # -> "ready" once compiled; "off": run on the kernel path for good
        self.fwd: Any = None
        self.grad: Any = None
        self.spec: Any = None  # the shapes compiled for
        self.rerolled = True  # whether the compiled functions are rerolled
        self.dense: tuple = ()   # leaf positions (in the leaf list) of the trainable parameters reached
        self.sparse: tuple = ()  # (table leaf position, lookup node indices) per table reached by lookups
        self.then_backward = False  # the last forward was followed by backward(): compute both at once
        self.pending: list = [None]  # the last replay's gradients, computed but not yet given (its `grads`)
        self.error: Any = None  # why compiling failed (the structure then stays on the kernel path)
        self.uses = 0  # graphs replayed
        self.misses = 0  # of which fell back
        self.seen = 0  # graphs of this structure before it compiled
        self.extended = 0  # of which went on past it on the kernel path (a replay would have fallen back)
        self.kernel_s: list = []  # seconds from one of its graphs to the next graph, on the kernel path (last 16)
        self.replay_s: list = []  # the same, replayed


_PLANS: OrderedDict[tuple, Plan] = OrderedDict()
# Fingerprints (node count, hash of the node kinds) of the structures seen so far: a structure
# gets its key (`structure`, a tuple per node, hashed on every lookup: 3 ms per graph of
# DyNet's lstmlm-auto, whose 1,150-node graphs never recur) and a plan only when its
# fingerprint comes back.
_SIGHTED: OrderedDict[tuple, None] = OrderedDict()
_MAX_SIGHTED = 4096


def structure(g: Graph, hi: int) -> tuple:
    """The key of nodes[0..hi]."""
    out = []
    for n in g.nodes[:hi + 1]:
        s = n.sig
        if s is not None:
            out.append((s, tuple([a.index for a in n.args])))
        elif n.op.view:
            out.append((n.op, n.static, tuple([a.index for a in n.args])))
        else:
            out.append((n.op, n.part, n.const))
    return tuple(out)


def plan_for(g: Graph, target: Expression) -> Plan | None:
    """The plan of the graph up to `target`, when replay may apply: replay is on, the
    graph has run nothing yet, and autobatching is on (off means the reference order).
    Starts compiling the structure when it is due."""
    mode = CURRENT.replay
    if mode == "never" or not CURRENT.autobatch or g.ran:
        return None
    if mode != "always" and _first_sight(g, target.index):
        return None
    key = structure(g, target.index)
    p = _PLANS.get(key)
    if p is None:
        p = _PLANS[key] = Plan(key)
        if len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    else:
        _PLANS.move_to_end(key)
    _lap(g, mode)
    if p.status == "new":
        p.seen += 1
        if mode == "always" or (p.spent >= _compile_estimate(p.size) and 4 * p.extended <= p.seen):
            leaf_nodes, consts = _arguments(g, target.index)
            # in a training loop the first replay computes the gradient with the value, so
            # only that function is compiled now (the forward alone when a graph needs it)
            training = mode != "always" and CURRENT.training
            _compile(p, [n.val for n in leaf_nodes], consts, forward=not training)
            p.then_backward = training
    CURRENT.lap = (p, time.perf_counter(), g.version, "replay" if p.status == "ready" else "kernel")
    return p


# Replayed graphs are timed against the kernel path (`_lap`) after this many of each.
LAPS_REPLAYED, LAPS_KERNEL = 8, 4


def _lap(g: Graph, mode: str) -> None:
    """Times the program from the previous graph's first forward to this one's (when this
    graph comes right after it: an iteration of the user's loop, its forward, backward and
    update included) as a lap of that graph's structure, run the way it ran. In "auto" mode
    a structure whose replayed laps take longer (median) than its laps on the kernel path
    runs on the kernel path for good: a replay runs its nodes one by one, so it can lose
    what autobatching won — 16 images of DyNet's MNIST MLP per graph ran 35% slower replayed
    (16 matrix-vector products where the kernel path runs one matrix product)."""
    last = CURRENT.lap
    if last is None or last[2] != g.version - 1:
        return
    p, started, _, how = last
    laps = p.replay_s if how == "replay" else p.kernel_s
    laps.append(time.perf_counter() - started)
    del laps[:-16]
    if (mode == "auto" and p.status == "ready" and len(p.replay_s) >= LAPS_REPLAYED
            and len(p.kernel_s) >= LAPS_KERNEL and float(np.median(p.replay_s)) > float(np.median(p.kernel_s))):
        p.status = "off"


def _first_sight(g: Graph, hi: int) -> bool:
    """Whether no structure with the fingerprint of nodes[0..hi] was seen before (remembers it)."""
    fp = (hi, hash(tuple([id(n.sig) if n.sig is not None else id(n.op) for n in g.nodes[:hi + 1]])))
    if fp in _SIGHTED:
        _SIGHTED.move_to_end(fp)
        return False
    _SIGHTED[fp] = None
    if len(_SIGHTED) > _MAX_SIGHTED:
        _SIGHTED.popitem(last=False)
    return True


def _compile_estimate(n_nodes: int) -> float:
    k = _COST["seconds"] / _COST["nodes2"] if _COST["nodes2"] else _FIRST_GUESS_K
    return max(_LEAST, k * n_nodes ** 2)


def forget() -> None:
    """Forgets every structure seen (and its compiled functions)."""
    _PLANS.clear()
    _SIGHTED.clear()


def compiled_count() -> int:
    """How many structures have been compiled whole."""
    return sum(1 for p in _PLANS.values() if p.status == "ready")


# -- building the compiled functions ---------------------------------------------------------

def _is_sparse_lookup(key: tuple, e: tuple) -> bool:
    """A lookup whose table is a parameter leaf: its gradient goes to the table as rows."""
    head = e[0]
    if type(head) is not Sig or head.op.sparse_table is None:
        return False
    t = key[e[1][0]]
    return type(t[0]) is not Sig and t[0].leaf_param is not None


def _routes(key: tuple) -> tuple[tuple, tuple, dict]:
    """Which trainable parameter leaves receive a dense gradient and which lookups send
    rows, counting only what the target reaches (as the kernel path's backward does)."""
    leaf_pos, li = {}, 0
    for i, e in enumerate(key):
        if type(e[0]) is not Sig and not (len(e) == 3 and e[0].view):
            leaf_pos[i] = li
            li += 1
    reached = [False] * len(key)
    reached[-1] = True
    dense, sparse = set(), {}
    for i in range(len(key) - 1, -1, -1):
        if not reached[i]:
            continue
        e = key[i]
        head = e[0]
        if type(head) is Sig:
            if _is_sparse_lookup(key, e):
                table = e[1][0]
                if not key[table][2] and head.op.sparse_table(head.static):
                    sparse.setdefault(leaf_pos[table], []).append(i)
                continue
            for j in e[1]:
                reached[j] = True
        elif len(e) == 3 and head.view:
            for j in e[2]:
                reached[j] = True
        elif head.leaf_param is not None and not e[2]:
            dense.add(leaf_pos[i])
    return tuple(sorted(dense)), tuple((t, tuple(sorted(ix))) for t, ix in sorted(sparse.items())), leaf_pos


def _build(p: Plan, reroll: bool = True) -> tuple:
    """The plan's forward and gradient functions of (leaves, consts); `reroll`: with
    repeated steps as scans (`_reroll`)."""
    key = p.key
    dense, sparse, leaf_pos = _routes(key)
    p.dense, p.sparse = dense, sparse
    given = frozenset(i for _, idx in sparse for i in idx)
    loops_fwd = p.loops if reroll else ()
    loops_grad = (_reroll.find_loops(key, given) if given else loops_fwd) if reroll else ()
    const_at, ci = {}, 0
    for i, e in enumerate(key):
        if type(e[0]) is Sig:
            const_at[i] = ci
            ci += len(e[0].consts)

    def fwd(leaves, consts):
        return _reroll.evaluate(key, loops_fwd, leaves, consts, {})[-1]

    def grad(leaves, consts):
        rows_in = {}
        for _, idx in sparse:
            for i in idx:
                sig = key[i][0]
                c = const_at[i]
                table = leaves[leaf_pos[key[i][1][0]]]
                rows_in[i] = node_function(sig)(table, *consts[c:c + len(sig.consts)])

        def f(dvals, rvals):
            lv = list(leaves)
            for pos, v in zip(dense, dvals):
                lv[pos] = v
            return _reroll.evaluate(key, loops_grad, lv, consts, rvals)[-1]

        out, pull = jax.vjp(f, [leaves[pos] for pos in dense], rows_in)
        d_dense, d_rows = pull(jnp.ones_like(out))
        tables = []
        for t, idx in sparse:
            shape = leaves[t].shape[1:]
            tables.append(jnp.concatenate([d_rows[i].reshape((-1,) + shape) for i in idx]))
        return out, d_dense, tables

    return fwd, grad


def _compile(p: Plan, leaves: list, consts: list, forward: bool = True) -> None:
    """Compiles the plan's gradient function — and, with `forward`, its forward function —
    for the shapes of `leaves`, `consts`: rerolled, or unrolled should that fail; a failure
    of both leaves the structure on the kernel path (and in `p.error`)."""
    p.spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), (leaves, consts))
    for reroll in (True, False):
        try:
            t0 = time.perf_counter()
            fwd, grad = _build(p, reroll)
            p.grad = kernel_jit(grad).lower(*p.spec).compile()
            p.fwd = kernel_jit(fwd).lower(*p.spec).compile() if forward else None
            p.rerolled = reroll
            if not reroll:
                p.size = len(p.key)
            _COST["seconds"] += time.perf_counter() - t0
            _COST["nodes2"] += float(p.size) ** 2
            p.status, p.error = "ready", None
            return
        except Exception as e:  # noqa: BLE001 - reported in p.error; the kernel path stays correct
            p.error, p.status = e, "off"


def _forward_function(p: Plan) -> Any:
    """The plan's forward function, compiled on first need (a graph without backward)."""
    if p.fwd is None:
        fwd, _ = _build(p, p.rerolled)
        p.fwd = kernel_jit(fwd).lower(*p.spec).compile()
    return p.fwd


# -- running a replay ------------------------------------------------------------------------

def _arguments(g: Graph, hi: int) -> tuple[list, list]:
    """The leaf nodes of nodes[0..hi] (their values are the functions' first argument) and
    every node's host constants, in order."""
    leaf_nodes, consts = [], []
    for n in g.nodes[:hi + 1]:
        if n.sig is not None:
            consts.extend(n.consts)
        elif not n.op.view:
            leaf_nodes.append(n)
    return leaf_nodes, consts


class Replayed:
    """What a replayed graph remembers: its plan, arguments and gradients not yet given
    (`grads[0]`; the plan holds that list too, not the replay, which holds the leaves: a
    plan must not keep an old graph's parameter values alive)."""

    __slots__ = ("plan", "target", "leaf_nodes", "leaves", "consts", "grads")

    def __init__(self, plan: Plan, target: Expression, leaf_nodes: list, consts: list):
        self.plan, self.target, self.leaf_nodes, self.consts = plan, target, leaf_nodes, consts
        self.leaves = [n.val for n in leaf_nodes]
        self.grads: list = [None]


def forward(g: Graph, p: Plan, target: Expression) -> None:
    r = Replayed(p, target, *_arguments(g, target.index))
    if p.pending[0] is not None:  # computed gradients nobody took
        p.then_backward = False
    p.pending = r.grads
    p.uses += 1
    if p.then_backward:
        target.val, r.grads[0] = _call_grad(r)
    else:
        target.val = _forward_function(p)(r.leaves, r.consts)
    g.replayed = r


def _call_grad(r: Replayed) -> tuple:
    out, d_dense, tables = r.plan.grad(r.leaves, r.consts)
    return out, (d_dense, tables)


def backward(g: Graph, loss: Expression, full: bool) -> bool:
    """Gives the parameters the gradients of a replayed graph's target. False when this
    backward is not the replayed one (the caller falls back)."""
    r = g.replayed
    if r is None or full or loss is not r.target:
        return False
    p = r.plan
    if r.grads[0] is None:
        p.then_backward = True
        _, r.grads[0] = _call_grad(r)
    d_dense, tables = r.grads[0]
    r.grads[0] = None
    nodes = r.leaf_nodes
    for pos, d in zip(p.dense, d_dense):
        nodes[pos].extra.accumulate_grad(d)
    for (t, idx), rows in zip(p.sparse, tables):
        ids = np.concatenate([g.nodes[i].consts[0].reshape(-1) for i in idx])
        nodes[t].extra.accumulate_sparse(ids, rows)
    g.backward_replayed = loss
    return True


def _often(k: int, n: int) -> bool:
    """k of n graphs fell back (or would have): more than one in four, the first forgiven."""
    return k >= 2 and 4 * k > n


def extended(p: Plan) -> None:
    """A graph of structure `p`, not yet compiled, went on running nodes on the kernel path
    after its first forward (a value of another node, nodes added later: DyNet's eager
    tagging asks for each word's softmax in turn): a replay would have fallen back. A
    structure whose graphs do that as a rule is never compiled."""
    p.extended += 1
    if _often(p.extended, p.seen):
        p.status = "off"


def fall_back(g: Graph) -> None:
    """Forgets a replay (its target's value too): the graph runs again on the kernel path.
    A structure whose graphs fall back more than one time in four (a program that reads
    other nodes, or extends its graphs, as a rule; the first fallback is forgiven) is not
    replayed again."""
    r = g.replayed
    if r is None:
        return
    p = r.plan
    if CURRENT.lap is not None and CURRENT.lap[0] is p:
        CURRENT.lap = None  # (this graph's lap ran both ways)
    p.misses += 1
    if _often(p.misses, p.uses):
        p.status = "off"
    r.target.val = None
    g.replayed = None
    g.ran = True  # this graph now runs on the kernel path, whatever the plan's status
