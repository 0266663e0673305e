"""Where the graph layer (`dynrnn.graph`) plugs into the array layer, which never imports
it: `dynrnn.graph` sets `GRAPH` when it is imported. The array layer asks `is_expression`
and, for an expression, hands the call to `GRAPH`."""

from __future__ import annotations

from typing import Any

GRAPH: Any = None  # the graph layer's entry points (dynrnn.graph._bridge), once imported


def is_expression(x: Any) -> bool:
    return getattr(type(x), "__dynrnn_expression__", False)


def any_expression(xs: Any) -> bool:
    """Does a list (or tuple, or generator already made a list) hold an expression?"""
    return isinstance(xs, (list, tuple)) and any(is_expression(x) for x in xs)
