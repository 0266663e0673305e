"""The arc-standard transition system (Nivre 2004) as Dyer et al. (2015) use it, with a
static oracle. Pure Python and NumPy: no model, no JAX.

Words are numbered 1..n; 0 is ROOT, which starts at the bottom of the stack. Actions:

* SHIFT (0): move the next buffer word onto the stack;
* LEFT(r) (1 + 2r): s1 ← s0 with label r (s1 must be a word, not ROOT), pop s1;
* RIGHT(r) (2 + 2r): s0 ← s1 with label r, pop s0. RIGHT onto ROOT only when the buffer
  is empty, so every output has exactly one root word.

A sentence of n words takes exactly 2n transitions and ends with ROOT alone on the stack.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SHIFT = 0


def left(r: int) -> int:
    return 1 + 2 * r


def right(r: int) -> int:
    return 2 + 2 * r


def num_actions(num_rels: int) -> int:
    return 1 + 2 * num_rels


def kind(action: int) -> str:
    return "shift" if action == SHIFT else ("left" if action % 2 == 1 else "right")


def rel_of(action: int) -> int:
    return (action - 1) // 2


def legal(stack_size: int, buffer_size: int, num_rels: int) -> np.ndarray:
    """Which actions may be taken; `stack_size` counts ROOT."""
    mask = np.zeros(num_actions(num_rels), bool)
    mask[SHIFT] = buffer_size > 0
    mask[1::2] = stack_size >= 3
    mask[2::2] = stack_size >= 3 or (stack_size == 2 and buffer_size == 0)
    return mask


def is_projective(heads: Sequence[int]) -> bool:
    """heads[i-1] is word i's head (0 = ROOT): no two arcs cross."""
    arcs = [(min(h, d), max(h, d)) for d, h in enumerate(heads, 1)]
    for a, b in arcs:
        for c, d in arcs:
            if a < c < b < d:
                return False
    return True


def oracle(heads: Sequence[int], rels: Sequence[int]) -> list[int] | None:
    """The static oracle's action sequence for a gold tree (heads as in `is_projective`,
    rels as label ids), or None when arc-standard cannot build it (non-projective)."""
    n = len(heads)
    children_left = [0] * (n + 1)
    for h in heads:
        children_left[h] += 1
    stack, nxt, actions = [0], 1, []
    while nxt <= n or len(stack) > 1:
        if len(stack) >= 2:
            s0, s1 = stack[-1], stack[-2]
            if s1 != 0 and heads[s1 - 1] == s0:
                actions.append(left(rels[s1 - 1]))
                stack.pop(-2)
                children_left[s0] -= 1
                continue
            if heads[s0 - 1] == s1 and children_left[s0] == 0 and (s1 != 0 or nxt > n):
                actions.append(right(rels[s0 - 1]))
                stack.pop()
                children_left[s1] -= 1
                continue
        if nxt > n:
            return None
        actions.append(SHIFT)
        stack.append(nxt)
        nxt += 1
    return actions


def apply(actions: Sequence[int], n: int) -> tuple[list[int], list[int]]:
    """Runs actions on an n-word sentence; returns (heads, rel ids). Raises on an illegal
    action, so it also checks that a sequence is well formed."""
    heads, rels = [-1] * n, [-1] * n
    stack, nxt = [0], 1
    for t, a in enumerate(actions):
        if not legal(len(stack), n - nxt + 1, 1 if a == SHIFT else rel_of(a) + 1)[a]:
            raise ValueError(f"action {a} ({kind(a)}) is illegal at step {t} (stack {stack}, next word {nxt}).")
        if a == SHIFT:
            stack.append(nxt)
            nxt += 1
        elif kind(a) == "left":
            dep = stack.pop(-2)
            heads[dep - 1], rels[dep - 1] = stack[-1], rel_of(a)
        else:
            dep = stack.pop()
            heads[dep - 1], rels[dep - 1] = stack[-1], rel_of(a)
    return heads, rels


def main(argv: Sequence[str] | None = None) -> dict:
    """Checks the oracle on a treebank: every projective sentence's oracle transitions,
    replayed, give back its gold tree; prints how long the sequences and how deep the
    stacks are."""
    import argparse
    import json

    import conllu

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("conllu", help="a CoNLL-U file, e.g. ../shared/data/ud-english-ewt/en_ewt-ud-dev.conllu")
    args = ap.parse_args(argv)
    sentences = conllu.read_conllu(args.conllu)
    lengths, depths = [], []
    rel_ids: dict[str, int] = {}
    for s in sentences:
        if not is_projective(s.heads):
            continue
        rels = [rel_ids.setdefault(r, len(rel_ids)) for r in s.rels]
        actions = oracle(s.heads, rels)
        if actions is None:
            continue
        if apply(actions, len(s)) != (list(s.heads), rels):
            raise AssertionError(f"the oracle's transitions do not rebuild sentence {len(lengths)}'s tree")
        size, deepest = 1, 1  # ROOT
        for a in actions:
            size += 1 if a == SHIFT else -1
            deepest = max(deepest, size)
        lengths.append(len(actions))
        depths.append(deepest)
    out = {"sentences": len(sentences), "projective": len(lengths),
           "transitions_mean": float(np.mean(lengths)) if lengths else 0.0,
           "deepest_stack_mean": float(np.mean(depths)) if depths else 0.0,
           "deepest_stack_max": int(max(depths, default=0)), "relations": len(rel_ids)}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
