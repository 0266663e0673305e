"""`RNNStack`: a batch of stacks of RNN states, for stack-LSTM parsers, inside `jax.jit`.

DyNet's stack LSTM is a chain of states: push with `add_input`, pop with `prev()`. That
is exact and cheap one sentence at a time in Python, but a chain of Python objects cannot
live in a `lax.scan` carry, and B sentences doing different actions at the same step need
per-example control. An `RNNStack` keeps the chain as a fixed-capacity array instead::

    slot:   0      1      2      ...  capacity
            base   push1  push2       (per example, per layer, per state component)

`depth[b]` is how many pushes example b has on its stack; its top is slot `depth[b]`
(slot 0 is the state the stack was built from). Pushing steps the builder's layers from
the top state and writes slot `depth+1`; popping only decrements `depth` (O(1), nothing is
recomputed), so a later push overwrites the popped slot. Each slot also keeps the input
that was pushed into it (`input(k)`): a parser's stack elements are (state, representation)
pairs, and the composition function needs the representations.

Full and empty stacks: eagerly (concrete values), a push onto a full stack or a pop from
an empty one raises `ValueError`. Inside `jax.jit`/`lax.scan` values are not known, so
there the offending example's push or pop is skipped (its stack is left unchanged) — give
a capacity of the longest action sequence's depth, or check `depth` yourself.

Gradients: `push` has a hand-written reverse-mode derivative (`jax.custom_vjp`) that updates
the slots' cotangent in place; JAX's automatic one rebuilt full-size arrays at every step
and made a parser's backward pass about 2x slower. So `jax.grad`/`vjp` work (and are tested
against finite differences and against `prev()` chains); forward mode (`jax.jvp`,
`jax.jacfwd`) through `push` does not.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from ._compiled import broadcast_layers, compiled
from ._errors import as_float_array, check_indices, check_int, fmt_shape
from ._state import RNNState


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, Tracer)


def _gather(layers, rows, idx):
    return tuple(tuple(a[rows, idx] for a in layer) for layer in layers)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _push_core(spec, params, slots, inputs, depth, key, x, where):
    return _push_fwd(spec, params, slots, inputs, depth, key, x, where)[0]


def _push_fwd(spec, params, slots, inputs, depth, key, x, where):
    rows = jnp.arange(depth.shape[0])
    where = where & (depth < inputs.shape[1] - 1)
    top = _gather(slots, rows, depth)
    new = compiled(spec).step(params, top, key, x)
    nd = depth + where.astype(depth.dtype)
    keep = where[:, None]
    written = tuple(tuple(jnp.where(keep, n, t) for n, t in zip(nl, tl)) for nl, tl in zip(new, top))
    written_x = jnp.where(keep, x, inputs[rows, depth])
    slots = tuple(tuple(a.at[rows, nd].set(w) for a, w in zip(layer, wl)) for layer, wl in zip(slots, written))
    inputs = inputs.at[rows, nd].set(written_x)
    return (slots, inputs, nd, written, written_x), (params, top, key, x, depth, nd, where)


def _push_bwd(spec, res, g):
    # Written by hand so that the cotangent of the slots is updated in place (read the
    # pushed slot, zero it, add the top's cotangent): JAX's own transpose of the scatter
    # builds full-size temporaries, which made a stack's backward pass 2-3x slower on CPU.
    params, top, key, x, depth, nd, where = res
    d_slots, d_inputs, _, d_written, d_written_x = g
    rows, keep = jnp.arange(depth.shape[0]), where[:, None]
    g_out = jax.tree_util.tree_map(jnp.add, _gather(d_slots, rows, nd), d_written)
    d_slots = tuple(tuple(a.at[rows, nd].set(0.0) for a in layer) for layer in d_slots)
    g_new = jax.tree_util.tree_map(lambda a: jnp.where(keep, a, 0.0), g_out)
    _, vjp = jax.vjp(lambda p, t, x: compiled(spec).step(p, t, key, x), params, top, x)
    d_params, d_top, d_x = vjp(g_new)
    d_top = jax.tree_util.tree_map(lambda d, o: d + jnp.where(keep, 0.0, o), d_top, g_out)
    d_slots = tuple(tuple(a.at[rows, depth].add(d) for a, d in zip(layer, dl)) for layer, dl in zip(d_slots, d_top))
    g_in = d_inputs[rows, nd] + d_written_x
    d_inputs = d_inputs.at[rows, nd].set(0.0).at[rows, depth].add(jnp.where(keep, 0.0, g_in))
    d_x = d_x + jnp.where(keep, g_in, 0.0)
    return d_params, d_slots, d_inputs, None, None, d_x, None


_push_core.defvjp(_push_fwd, _push_bwd)


@functools.partial(jax.jit, static_argnums=0)
def _push(spec, params, slots, inputs, depth, key, x, where):
    return _push_core(spec, params, slots, inputs, depth, key, x, where)


class RNNStack:
    """A batch of `batch_size` stacks of a builder's states, each holding up to `capacity`
    pushes. An immutable JAX pytree: use it in `jax.jit`, `lax.scan` carries and `jax.vmap`.

    Build it from any state (usually `builder.initial_state()`), which becomes every
    stack's bottom (slot 0, `depth` 0)::

        stack = dy.RNNStack(lstm.initial_state(), capacity=50, batch_size=32)
        stack = stack.push(x)                    # x: (32, input_dim), all examples push
        stack = stack.pop(where=is_reduce)       # (32,) bool: only these examples pop
        stack.output()                           # (32, hidden_dim): each top's h
        stack.output(1)                          # the element below each top (`prev()`)

    `push(x, where=m)` / `pop(where=m)` act only on the examples where `m` is True, so B
    sentences can take different transitions in one compiled step. Pop is O(1).
    """

    # _top / _top_input: the top element's state and input, kept beside the slots so that
    # reading the top (the common case) is not a gather whose gradient touches every slot.
    __slots__ = ("_builder", "_spec", "_slots", "_inputs", "_depth", "_key", "_top", "_top_input")

    def __init__(self, state: RNNState, capacity: int, batch_size: int | None = None):
        if not isinstance(state, RNNState):
            raise TypeError(f"RNNStack: expected an RNNState (e.g. builder.initial_state()) to build the stack "
                            f"on; given {type(state).__name__}.")
        capacity = check_int("RNNStack", "capacity", capacity, minimum=1)
        have = state.batch_size
        if batch_size is None:
            if have is None:
                raise ValueError("RNNStack: the state is unbatched; give batch_size= (the number of stacks).")
            batch_size = have
        batch_size = check_int("RNNStack", "batch_size", batch_size, minimum=1)
        if have is not None and have != batch_size:
            raise ValueError(f"RNNStack: the state has batch size {have} but batch_size={batch_size}.")
        b = state.b()
        layers = broadcast_layers(state.layers, (batch_size,))
        slots = tuple(tuple(jnp.zeros((batch_size, capacity + 1) + a.shape[-1:], a.dtype).at[:, 0].set(a)
                            for a in layer) for layer in layers)
        inputs = jnp.zeros((batch_size, capacity + 1, b.input_dim), b.dtype)
        depth = jnp.zeros((batch_size,), jnp.int32)
        self._set(b, state._spec, slots, inputs, depth, state._key, layers, inputs[:, 0])

    def _set(self, *values) -> None:
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    @classmethod
    def _make(cls, *values) -> RNNStack:
        obj = object.__new__(cls)
        obj._set(*values)
        return obj

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("RNNStack is immutable: push/pop return new stacks.")

    # -- shape ------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return int(self._depth.shape[0])

    @property
    def capacity(self) -> int:
        return int(self._inputs.shape[1]) - 1

    @property
    def depth(self) -> jax.Array:
        """`(batch,)` int32: the number of elements pushed (and not popped) on each stack."""
        return self._depth

    def b(self) -> Any:
        """The builder whose states this stack holds."""
        return self._builder

    # -- checks -----------------------------------------------------------------------
    def _mask(self, method: str, where: Any) -> jax.Array:
        B = self.batch_size
        if where is None:
            return jnp.ones((B,), bool)
        if _is_concrete(where):
            a = np.asarray(where)
            if a.dtype != np.bool_:
                raise TypeError(f"RNNStack.{method}: where must be booleans of shape ({B},); given dtype {a.dtype}.")
            where = jnp.asarray(a)
        if where.shape != (B,) or where.dtype != jnp.bool_:
            raise ValueError(f"RNNStack.{method}: where must be a ({B},) bool array, one flag per stack; given "
                             f"{where.dtype} {fmt_shape(where.shape)}.")
        return where

    def _index(self, method: str, k: int) -> jax.Array:
        k = check_int(f"RNNStack.{method}", "k", k, minimum=0)
        return jnp.maximum(self._depth - k, 0)

    # -- operations -------------------------------------------------------------------
    def push(self, x: Any, where: Any = None) -> RNNStack:
        """Steps every layer from each top state with input `x` `(batch, input_dim)` and
        pushes the result, on the stacks where `where` is True (default: all)."""
        b = self._builder
        x = as_float_array("RNNStack.push", "x", x, b.dtype)
        if x.shape != (self.batch_size, b.input_dim):
            raise ValueError(f"RNNStack.push: x has shape {fmt_shape(x.shape)}; expected ({self.batch_size}, "
                             f"{b.input_dim}) = (batch_size, input_dim).")
        where = self._mask("push", where)
        if _is_concrete(where) and _is_concrete(self._depth):
            full = np.asarray(where & (self._depth >= self.capacity))
            if full.any():
                raise ValueError(f"RNNStack.push: stack(s) {np.flatnonzero(full).tolist()} are full (capacity "
                                 f"{self.capacity}); build the stack with a larger capacity.")
        slots, inputs, depth, top, top_input = _push(self._spec, b._param_tree(), self._slots, self._inputs,
                                                     self._depth, self._key, x, where)
        return RNNStack._make(b, self._spec, slots, inputs, depth, self._key, top, top_input)

    def pop(self, where: Any = None) -> RNNStack:
        """Removes the top element of the stacks where `where` is True (default: all). O(1)."""
        where = self._mask("pop", where)
        if _is_concrete(where) and _is_concrete(self._depth):
            empty = np.asarray(where & (self._depth <= 0))
            if empty.any():
                raise ValueError(f"RNNStack.pop: stack(s) {np.flatnonzero(empty).tolist()} are empty (depth 0).")
        depth = self._depth - (where & (self._depth > 0)).astype(self._depth.dtype)
        rows = jnp.arange(self.batch_size)
        return RNNStack._make(self._builder, self._spec, self._slots, self._inputs, depth, self._key,
                              _gather(self._slots, rows, depth), self._inputs[rows, depth])

    def top(self, k: int = 0) -> RNNState:
        """The state k elements below each top (k=0: the top, k=1: DyNet's `top.prev()`),
        as a batched `RNNState` — read it, or keep stepping it with `add_input`. Where a
        stack has fewer than k elements, its base state (slot 0) is returned."""
        idx = self._index("top", k)
        layers = self._top if k == 0 else _gather(self._slots, jnp.arange(self.batch_size), idx)
        return RNNState(self._builder, self._spec, layers, self._key, None)

    def output(self, k: int = 0) -> jax.Array:
        """`top(k).output()`: `(batch, hidden_dim)`."""
        idx = self._index("output", k)
        return self._top[-1][-1] if k == 0 else self._slots[-1][-1][jnp.arange(self.batch_size), idx]

    def input(self, k: int = 0) -> jax.Array:
        """The input that was pushed to make the element k below each top
        `(batch, input_dim)`; zeros for the base (and below it)."""
        idx = self._index("input", k)
        return self._top_input if k == 0 else self._inputs[jnp.arange(self.batch_size), idx]

    def reorder(self, indices: Any) -> RNNStack:
        """Stacks `indices` of this batch (a gather along the batch axis; rows may repeat):
        for beam search over parser states."""
        idx = check_indices("RNNStack.reorder", indices, self.batch_size)
        slots, inputs, depth, top, top_input = jax.tree_util.tree_map(
            lambda a: a[idx], (self._slots, self._inputs, self._depth, self._top, self._top_input))
        return RNNStack._make(self._builder, self._spec, slots, inputs, depth, self._key, top, top_input)

    select = reorder

    def __repr__(self) -> str:
        return f"RNNStack({type(self._builder).__name__}, batch={self.batch_size}, capacity={self.capacity})"


def _flatten(stack: RNNStack):
    children = (stack._slots, stack._inputs, stack._depth, stack._key, stack._top, stack._top_input)
    return children, (stack._builder, stack._spec)


def _unflatten(aux, children):
    return RNNStack._make(aux[0], aux[1], *children)


jax.tree_util.register_pytree_node(RNNStack, _flatten, _unflatten)
