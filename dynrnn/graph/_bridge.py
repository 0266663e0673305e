"""What the array layer calls when it meets an expression (see `dynrnn._hooks`)."""

from __future__ import annotations

from typing import Any

from . import _ops, _schedule
from ._graph import cg_version, graph_open
from ._rnn import GraphState


class Bridge:
    active = staticmethod(graph_open)
    version = staticmethod(cg_version)
    add = staticmethod(_ops.add)
    sub = staticmethod(_ops.sub)
    div = staticmethod(_ops.div)
    held = staticmethod(_schedule.held)
    repoint = staticmethod(_schedule.repoint)

    @staticmethod
    def mul(x: Any, y: Any) -> Any:
        return _ops.mul(x, y)

    @staticmethod
    def lookup(p: Any, index: Any) -> Any:
        return _ops.lookup(p, index)

    @staticmethod
    def concatenate(xs: Any) -> Any:
        return _ops.concatenate(xs)

    @staticmethod
    def lookup_batch(p: Any, ids: Any) -> Any:
        return _ops.lookup_batch(p, ids)

    @staticmethod
    def parameter(p: Any, update: bool = True) -> Any:
        return _ops.parameter(p, update)

    @staticmethod
    def state(array_state: Any) -> GraphState:
        return GraphState.from_array_state(array_state)
