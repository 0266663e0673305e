"""Rerolling: the repeated steps of a replayed structure run as one `lax.scan`.

A structure's key (`_replay.structure`) lists its nodes in creation order. A DyNet program
that loops — a decoder emitting one word per step, an encoder reading one per step —
creates the same run of nodes once per step, wired the same way; unrolled, each step is
compiled again (DyNet's attention example: 488 nodes, 57,000 lines of optimized HLO, 20 s
of XLA:CPU). Rerolled, the step is compiled once, as the body of a scan: compile time
follows the structure's distinct code, not its length.

A loop is `reps` repetitions of `period` nodes from `start` on such that every node has
the kind (signature, or view, or leaf) of its counterpart in the first repetition and
every argument of repetitions 1.. is, for all of them alike:

- "in": a node earlier in the same repetition (the same offset each time);
- "carry": a node of the previous repetition (the same offset): the scan's carry;
- "inv": one node before the loop or in its first repetition (a parameter, an encoding);
- "var": some node before the loop, another per repetition (`zip(fwd, reversed(bwd))`):
  stacked, one row per repetition.

The first repetition runs unrolled (so the carry starts from values of the body's own
type, and nodes a program creates lazily in its first step stay outside); repetitions
1.. are the scan, whose outputs are kept only for the offsets that nodes after the loop
use. Leaves, host constants (ids) and given values (lookup rows, for the gradient) in the
body are stacked per repetition: they stay arguments, never constants.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._kernels import Sig, node_function
from ._rnn import PACK

MIN_REPS = 3  # repetitions (the scan runs reps - 1 of them): fewer are left unrolled
MAX_PERIOD = 256  # nodes per repetition looked for


class Loop:
    """`reps` repetitions of `period` nodes from `start`; per body offset and argument, how
    it is wired (`wiring[j][t]`: ("in", offset) / ("carry", offset) / ("inv", node) /
    ("var", (node per repetition 1..))), the offsets carried, and those used after it."""

    __slots__ = ("start", "period", "reps", "wiring", "carried", "needed")

    def __init__(self, start: int, period: int, reps: int, wiring: list, carried: tuple, needed: tuple):
        self.start, self.period, self.reps = start, period, reps
        self.wiring, self.carried, self.needed = wiring, carried, needed

    @property
    def end(self) -> int:
        return self.start + self.period * self.reps

    def __repr__(self) -> str:
        return f"Loop(start={self.start}, period={self.period}, reps={self.reps})"


def args_of(e: tuple) -> tuple:
    """The argument indices of a key entry (none for a leaf)."""
    head = e[0]
    if type(head) is Sig:
        return e[1]
    if head.view:
        return e[2]
    return ()


def _kind(e: tuple, given: bool) -> Any:
    head = e[0]
    if type(head) is Sig:
        return (head, given)
    if head.view:
        return (head, e[1], len(e[2]))
    return e


def _classify(firsts: list, s: int, P: int, j: int) -> tuple | None:
    """How one argument is wired, from its node index in repetitions 1, 2, ...; None if no
    way fits every repetition."""
    a1 = firsts[0]
    rel = [a - (s + k * P) for k, a in enumerate(firsts, 1)]
    if 0 <= rel[0] < j and all(r == rel[0] for r in rel):
        return ("in", rel[0])
    prev = [r + P for r in rel]
    if 0 <= prev[0] < P and all(r == prev[0] for r in prev):
        return ("carry", prev[0])
    if a1 < s + P and all(a == a1 for a in firsts):
        return ("inv", a1)
    if all(a < s for a in firsts):
        return ("var", tuple(firsts))
    return None


def _wire(key: tuple, s: int, P: int, R: int) -> Loop | None:
    """The longest loop of period P from s of at most R repetitions whose wiring holds."""
    while R >= MIN_REPS:
        wiring, ok = [], True
        for j in range(P):
            slots = []
            for t in range(len(args_of(key[s + j]))):
                c = _classify([args_of(key[s + k * P + j])[t] for k in range(1, R)], s, P, j)
                if c is None:
                    ok = False
                    break
                slots.append(c)
            if not ok:
                break
            wiring.append(slots)
        if ok:
            carried = tuple(sorted({c[1] for slots in wiring for c in slots if c[0] == "carry"}))
            return Loop(s, P, R, wiring, carried, ())
        R -= 1
    return None


def find_loops(key: tuple, given: frozenset = frozenset()) -> tuple[Loop, ...]:
    """The loops of a structure, left to right, each the one covering most nodes from the
    earliest start that has one. `given`: nodes whose values the caller supplies."""
    n = len(key)
    interned: dict = {}
    ks = [interned.setdefault(_kind(e, i in given), len(interned)) for i, e in enumerate(key)]
    loops = []
    s = 0
    while s + MIN_REPS <= n:
        best = None
        for P in range(1, min(MAX_PERIOD, (n - s) // MIN_REPS) + 1):
            if ks[s + P] != ks[s] or ks[s + 2 * P] != ks[s]:
                continue
            body = ks[s:s + P]
            R = 1
            while s + (R + 1) * P <= n and ks[s + R * P:s + (R + 1) * P] == body:
                R += 1
            if R < MIN_REPS or (best is not None and P * R <= best.period * best.reps):
                continue
            loop = _wire(key, s, P, R)
            if loop is not None and (best is None or loop.period * loop.reps > best.period * best.reps):
                best = loop
        if best is None:
            s += 1
        else:
            loops.append(best)
            s = best.end
    # what nodes after each loop (or the structure's last node) use of it
    for lp in loops:
        inner = range(lp.start + lp.period, lp.end)
        used = {a for e in key[lp.end:] for a in args_of(e) if a in inner}
        if n - 1 in inner:
            used.add(n - 1)
        lp.needed = tuple(sorted({(a - lp.start) % lp.period for a in used}))
    return tuple(loops)


def size(key: tuple, loops: tuple) -> int:
    """The nodes compiled: the structure's, less every loop's repetitions after its first."""
    return len(key) - sum(lp.period * (lp.reps - 1) for lp in loops)


def _stack(values: list) -> Any:
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *values)


def evaluate(key: tuple, loops: tuple, leaves: list, consts: list, given: dict) -> list:
    """Every node's value (traced), in order — None for the nodes of a loop's later
    repetitions that nothing after it uses. `given`: node index -> value to use instead."""
    n = len(key)
    leaf_at, const_at = [0] * n, [0] * n
    li = ci = 0
    for i, e in enumerate(key):
        leaf_at[i], const_at[i] = li, ci
        if type(e[0]) is Sig:
            ci += len(e[0].consts)
        elif not e[0].view:
            li += 1

    def node_value(i: int, argv: list, leaf: Any, cs: Any) -> Any:
        e = key[i]
        head = e[0]
        if type(head) is Sig:
            return node_function(head)(*argv, *cs)
        if head.view:
            return tuple(argv) if head is PACK else argv[0][e[1]]
        return leaf

    def own_consts(i: int) -> list:
        e = key[i]
        return consts[const_at[i]:const_at[i] + len(e[0].consts)] if type(e[0]) is Sig else []

    vals: list = [None] * n

    def plain(i: int) -> None:
        if i in given:
            vals[i] = given[i]
        else:
            head = key[i][0]
            leaf = leaves[leaf_at[i]] if type(head) is not Sig and not head.view else None
            vals[i] = node_value(i, [vals[a] for a in args_of(key[i])], leaf, own_consts(i))

    starts = {lp.start: lp for lp in loops}
    i = 0
    while i < n:
        lp = starts.get(i)
        if lp is None:
            plain(i)
            i += 1
            continue
        s, P, R = lp.start, lp.period, lp.reps
        for i0 in range(s, s + P):  # the first repetition, unrolled
            plain(i0)
        later = [[s + k * P + j for k in range(1, R)] for j in range(P)]
        xs = {}  # per repetition 1..: given values, leaves, host constants, "var" arguments
        for j in range(P):
            head = key[s + j][0]
            if later[j][0] in given:
                xs["given", j] = _stack([given[i1] for i1 in later[j]])
                continue
            if type(head) is not Sig and not head.view:
                xs["leaf", j] = _stack([leaves[leaf_at[i1]] for i1 in later[j]])
            elif type(head) is Sig and head.consts:
                xs["consts", j] = [_stack([own_consts(i1)[c] for i1 in later[j]]) for c in range(len(head.consts))]
            for t, (how, what) in enumerate(lp.wiring[j]):
                if how == "var":
                    xs["var", j, t] = _stack([vals[a] for a in what])

        def body(carry, x, lp=lp, s=s, P=P):
            local: list = [None] * P
            slot = {c: k for k, c in enumerate(lp.carried)}
            for j in range(P):
                if ("given", j) in x:
                    local[j] = x["given", j]
                    continue
                argv = []
                for t, (how, what) in enumerate(lp.wiring[j]):
                    if how == "in":
                        argv.append(local[what])
                    elif how == "carry":
                        argv.append(carry[slot[what]])
                    elif how == "inv":
                        argv.append(vals[what])
                    else:
                        argv.append(x["var", j, t])
                local[j] = node_value(s + j, argv, x.get(("leaf", j)), x.get(("consts", j), []))
            return tuple(local[c] for c in lp.carried), tuple(local[j] for j in lp.needed)

        _, ys = jax.lax.scan(body, tuple(vals[s + c] for c in lp.carried), xs, length=R - 1)
        for y, j in zip(ys, lp.needed):
            for k in range(1, R):
                vals[s + k * P + j] = jax.tree_util.tree_map(lambda a, k=k: a[k - 1], y)
        i = lp.end
    return vals
