"""DyNet's `StackedRNNState`: several states, each layer's output the next one's input, as
one state (DyNet's way of stacking builders of different kinds or sizes by hand)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class StackedRNNState:
    """`StackedRNNState([s1, s2, ...])`: `add_input(x)` gives `x` to `s1`, `s1`'s output to
    `s2`, and so on, and returns the stacked state of the new states; `output()` is the
    last state's; `h()` and `s()` list each state's; `prev()` is the stacked state it came
    from. Works for compiled states (`RNNState`) and graph-mode states alike."""

    def __init__(self, states: list, prev: StackedRNNState | None = None):
        states = list(states)
        if not states:
            raise ValueError("StackedRNNState: expected at least one state; given none.")
        if prev is not None and not isinstance(prev, StackedRNNState):
            raise TypeError(f"StackedRNNState: prev must be a StackedRNNState or None; given {type(prev).__name__}.")
        self.states = states
        self._prev = prev

    def add_input(self, x: Any) -> StackedRNNState:
        new = []
        for s in self.states:
            new.append(s.add_input(x))
            x = new[-1].output()
        return StackedRNNState(new, self)

    def add_inputs(self, xs: Iterable[Any]) -> list[StackedRNNState]:
        """The stacked states after each of `xs`, added one by one."""
        out, cur = [], self
        for x in xs:
            cur = cur.add_input(x)
            out.append(cur)
        return out

    def output(self) -> Any:
        return self.states[-1].output()

    def prev(self) -> StackedRNNState | None:
        return self._prev

    def h(self) -> list:
        return [s.h() for s in self.states]

    def s(self) -> list:
        return [s.s() for s in self.states]

    def __repr__(self) -> str:
        return f"StackedRNNState({len(self.states)} states)"
