"""Builders in the graph: `GraphState`, an RNN state whose values are graph nodes.

One `add_input` is one coarse node: every layer's step at once, by the same compiled
step function (`step_layers`) that array-mode states use — not DyNet's subgraph of
per-gate nodes. The node's value is the tuple of every layer's state vectors; `h()`,
`s()` and `output()` are views of its slots. Consecutive steps whose inputs are known
run as one scan (see `_schedule`), so `add_inputs`/`transduce` cost one kernel call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._compiled import broadcast_layers, compiled, dropout_masks, step_layers
from ._graph import CURRENT, Expression
from ._ops import Op, expr, exprs, node, parameter, reshape


def _regroup(flat: Sequence[Any], counts: Sequence[int]) -> tuple:
    out, i = [], 0
    for n in counts:
        out.append(tuple(flat[i:i + n]))
        i += n
    return tuple(out)


class StepConfig:
    """The static part of a step's signature (hash computed once: it is in every step's)."""

    __slots__ = ("spec", "p_counts", "s_counts", "has_key", "_h")

    def __init__(self, spec: Any, p_counts: tuple, s_counts: tuple, has_key: bool):
        self.spec, self.p_counts, self.s_counts, self.has_key = spec, p_counts, s_counts, has_key
        self._h = hash((spec, p_counts, s_counts, has_key))

    def __hash__(self) -> int:
        return self._h

    def __eq__(self, o: Any) -> bool:
        return self is o or (type(o) is StepConfig and self._h == o._h and
                             (self.spec, self.p_counts, self.s_counts, self.has_key) ==
                             (o.spec, o.p_counts, o.s_counts, o.has_key))


def _step_fn(static, *args):
    """args: every layer's parameters (flat), the state (a flat tuple), x, [dropout key]."""
    spec, p_counts, s_counts, has_key = static.spec, static.p_counts, static.s_counts, static.has_key
    n_p = sum(p_counts)
    params = _regroup(args[:n_p], p_counts)
    layers = _regroup(args[n_p], s_counts)
    x = args[n_p + 1]
    batch_shape = x.shape[:-1]
    layers = broadcast_layers(layers, batch_shape)
    if has_key:
        masks = dropout_masks(spec, jax.random.wrap_key_data(args[n_p + 2]), batch_shape, x.dtype)
    else:
        masks = [(None, None)] * len(spec.cells)
    new = step_layers(spec, params, layers, masks, x)
    return tuple(a for layer in new for a in layer)


def _step_scan(static, params_flat, init_flat, xs):
    """A chain of steps without dropout as one compiled scan (the array path's own, with
    its input projection hoisted at small batches): every step's state, per slot
    (time, batch, size)."""
    params = _regroup(params_flat, static.p_counts)
    layers = _regroup(init_flat, static.s_counts)
    _, _, per_layer = compiled(static.spec).scan(params, layers, None, xs, None, collect="stacked", unstack=False)
    return tuple(a for layer in per_layer for a in layer)


def _view_fn(static, value):
    return value[static]


def _pack_fn(static, *values):
    return tuple(values)


def _recurrent(static) -> tuple[int, int]:
    """Where a step's state and input are among its arguments (after the parameters)."""
    n_p = sum(static.p_counts)
    return n_p, n_p + 1


VIEW = Op("state_slot", _view_fn, view=True)
PACK = Op("state", _pack_fn, view=True)
STATE = Op("initial_state")
STEP = Op("rnn_step", _step_fn, batch_level=True, recurrent=_recurrent, scan=_step_scan)


def _state_leaf(layers: tuple) -> Expression:
    flat = tuple(a for layer in layers for a in layer)
    batch = 1 if flat[0].ndim == 1 else int(flat[0].shape[0])
    dims = tuple(tuple(a.shape[-1:]) for a in flat)
    return Expression(CURRENT.graph, STATE, (), (), None, dims, batch, None, value=flat, const=True)


class GraphState:
    """An RNN state in the computation graph (what DyNet's `RNNState` is).

    Immutable: `add_input` returns a new state whose `prev()` is this one. Outputs are
    expressions: `output()` (top layer's h), `h()`, `s()` (LSTM: c's then h's)."""

    __slots__ = ("_builder", "_spec", "_node", "_key", "_prev", "_slots", "_counts", "_config", "_consts",
                 "_params")

    def __init__(self, builder: Any, spec: Any, state_node: Expression, key: Any, prev: Any, counts: tuple,
                 config: Any = None, consts: Any = None, params: Any = None):
        self._builder, self._spec, self._node, self._key, self._prev = builder, spec, state_node, key, prev
        self._params = params  # the builder's parameter leaves in this state's graph (from the first step on)
        self._slots: dict[int, Expression] = {}
        self._counts = counts  # state vectors per layer
        if config is None:
            p_counts = tuple(len(layer) for layer in builder.layer_parameters())
            config = StepConfig(spec, p_counts, counts, key is not None)
            consts = [] if key is None else [np.asarray(jax.random.key_data(key))]
        self._config, self._consts = config, consts

    @classmethod
    def from_array_state(cls, state: Any) -> GraphState:
        """The graph's view of an array-mode state (an initial state, usually)."""
        counts = tuple(len(layer) for layer in state.layers)
        return cls(state.builder, state.spec, _state_leaf(state.layers), state.key, state, counts)

    # -- reading ---------------------------------------------------------------------
    def _slot(self, i: int) -> Expression:
        e = self._slots.get(i)
        if e is None:
            n = self._node
            n._check_live("RNNState")
            e = Expression(n.graph, VIEW, (n,), (), i, n.dims[i], n.batch, None, const=n.const, dtype=n.dt)
            self._slots[i] = e
        return e

    def _index(self, layer: int, component: int) -> int:
        return sum(self._counts[:layer]) + component

    def output(self) -> Expression:
        """The top layer's h: dims (hidden_dim,). (Only its slot: the lower layers' h's
        are not made nodes of the graph.)"""
        top = len(self._counts) - 1
        return self._slot(self._index(top, self._counts[top] - 1))

    def h(self) -> tuple[Expression, ...]:
        """Each layer's output h, bottom to top."""
        return tuple(self._slot(self._index(li, n - 1)) for li, n in enumerate(self._counts))

    def s(self) -> tuple[Expression, ...]:
        """Every state vector, component-major (an LSTM: c_1..c_L, h_1..h_L)."""
        n = self._counts[0]
        return tuple(self._slot(self._index(li, k)) for k in range(n) for li in range(len(self._counts)))

    def prev(self) -> Any:
        return self._prev

    def b(self) -> Any:
        return self._builder

    builder = property(b)

    @property
    def batch_size(self) -> int | None:
        return None if self._node.batch == 1 else self._node.batch

    # -- stepping --------------------------------------------------------------------
    def _where(self, method: str) -> str:
        return f"{type(self._builder).__name__}.{method}"

    def add_input(self, x: Any) -> GraphState:
        """One step of every layer: one node of the graph. x: dims (input_dim,)."""
        b = self._builder
        x = expr(x, self._where("add_input"))
        if x.dims == (b.input_dim, 1):  # DyNet's column matrix is a vector
            x = reshape(x, (b.input_dim,), x.batch)
        if x.dims != (b.input_dim,):
            raise ValueError(f"{self._where('add_input')}: x has dims {x.dims}, but this builder was created with "
                             f"input_dim={b.input_dim}; expected dims ({b.input_dim},).")
        prev = self._node
        if prev.batch > 1 and x.batch not in (1, prev.batch):
            raise ValueError(f"{self._where('add_input')}: x has batch size {x.batch}, the state {prev.batch}.")
        params = self._params
        if params is None:
            params = [parameter(p) for layer in b.layer_parameters() for p in layer]
        if prev.batch == 1 and x.batch > 1:
            # a minibatch's first step from a batch-1 state (a builder's initial state): the
            # state is broadcast first (as DyNet broadcasts it), so this step has the
            # signature of the minibatch's later steps and runs in their chain — not alone,
            # its output outside the chain's stack, whose consumers would then take every
            # step's output as an argument of its own (64 for rnnlm-batch.py's R * s.output())
            prev = _broadcast(prev, x.batch)
        n = node(STEP, params + [prev, x], self._consts, self._config, where=self._where("add_input"),
                 batch=max(prev.batch, x.batch))
        if prev.child is None:
            prev.child = n.index
        return GraphState(b, self._spec, n, self._key, self, self._counts, self._config, self._consts, params)

    def add_inputs(self, xs: Sequence[Any]) -> list[GraphState]:
        """`[s := s.add_input(x) for x in xs]`; the steps run as one scan when evaluated."""
        states, s = [], self
        for x in exprs(list(xs), self._where("add_inputs")):
            s = s.add_input(x)
            states.append(s)
        return states

    def transduce(self, xs: Sequence[Any]) -> list[Expression]:
        """The outputs of `add_inputs(xs)`."""
        return [s.output() for s in self.add_inputs(xs)]

    # -- setting ---------------------------------------------------------------------
    def _replace(self, method: str, new: dict[int, Any]) -> GraphState:
        n = self._node
        total = sum(self._counts)
        parts = []
        for i in range(total):
            if i in new:
                e = expr(new[i], self._where(method))
                if e.dims != n.dims[i]:
                    raise ValueError(f"{self._where(method)}: vector {i} has dims {e.dims}; expected {n.dims[i]}.")
                parts.append(e)
            else:
                parts.append(self._slot(i))
        batches = {p.batch for p in parts if p.batch > 1}
        if len(batches) > 1:
            raise ValueError(f"{self._where(method)}: the vectors have batch sizes {sorted(batches)}.")
        batch = batches.pop() if batches else 1
        if batch > 1 and any(p.batch == 1 for p in parts):
            parts = [p if p.batch > 1 else _broadcast(p, batch) for p in parts]
        packed = Expression(n.graph, PACK, tuple(parts), (), None, tuple(p.dims for p in parts), batch, None,
                            const=all(p.const for p in parts), dtype=n.dt)
        if all(p.val is not None for p in parts):
            packed.val = tuple(p.val for p in parts)
        return GraphState(self._builder, self._spec, packed, self._key, self, self._counts, self._config,
                          self._consts)

    def set_h(self, hs: Sequence[Any]) -> GraphState:
        """A child of **this** state with each layer's h replaced (an LSTM keeps this c)."""
        hs = list(hs)
        if len(hs) != len(self._counts):
            raise ValueError(f"{self._where('set_h')}: hs has {len(hs)} vectors; this builder has "
                             f"{len(self._counts)} layer(s).")
        return self._replace("set_h", {self._index(li, n - 1): h for li, (n, h) in enumerate(zip(self._counts, hs))})

    def set_s(self, ss: Sequence[Any]) -> GraphState:
        """A child of this state with every state vector replaced, in `s()` order; with
        only the first half (an LSTM's c's), the h's are kept."""
        ss = list(ss)
        L, n = len(self._counts), self._counts[0]
        if len(ss) not in (L * n, L):
            raise ValueError(f"{self._where('set_s')}: ss has {len(ss)} vectors; expected {L * n} (s() order).")
        # entry k of s() order is component k // L of layer k % L
        return self._replace("set_s", {self._index(k % L, k // L): v for k, v in enumerate(ss)})

    def __repr__(self) -> str:
        return f"RNNState(graph, {type(self._builder).__name__}, layers={len(self._counts)})"


# a batch-1 value (a vector, or a whole state: each of its vectors) repeated over a minibatch
BROADCAST = Op("broadcast_batch",
               lambda s, a: jax.tree_util.tree_map(lambda v: jnp.broadcast_to(v, (s[1],) + v.shape), a),
               batch_level=True)


def _broadcast(e: Expression, batch: int) -> Expression:
    return node(BROADCAST, [e], static=("batch", batch), batch=batch)

