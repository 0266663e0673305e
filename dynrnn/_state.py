"""`RNNState`: an immutable value holding every layer's state after some inputs.

A state is a JAX pytree whose leaves are its layers' state arrays and its dropout key,
so it passes through `jax.jit`, `jax.vmap`, `jax.grad` and `lax.scan`. Its `prev()` link
(the history) is *not* a leaf: transformations see O(layers) arrays, never the chain, and
a state that comes back out of a transformation starts a fresh history (`prev()` is None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _hooks
from ._compiled import compiled
from ._errors import as_float_array, as_rows, check_indices, check_sequence, check_vector
from ._params import graph_mode
from ._tree import TreeSchedule, check_parents, run_tree, tree_schedule


class RNNState:
    """The state of a builder's layers after some inputs (DyNet's `RNNState`).

    Never modified: `add_input` returns a new state whose `prev()` is this one, so a
    state is a stack (pop with `prev()`) and a tree (branch by adding to an old state).

    Shapes: one example has state vectors `(hidden_dim,)`; a minibatch `(batch, hidden_dim)`.
    An unbatched state given a batched input becomes batched.
    """

    __slots__ = ("_builder", "_spec", "_layers", "_key", "_prev")

    def __init__(self, builder: Any, spec: Any, layers: tuple, key: Any, prev: RNNState | None):
        object.__setattr__(self, "_builder", builder)
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_layers", layers)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_prev", prev)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("RNNState is immutable: add_input/set_h/set_s return new states.")

    # -- reading ---------------------------------------------------------------------
    def output(self) -> jax.Array:
        """The top layer's h: `(hidden_dim,)` or `(batch, hidden_dim)`. Zeros initially.
        (In graph mode, after `renew_cg()`, an expression, as are `h()` and `s()`.)"""
        if graph_mode():
            return _hooks.GRAPH.state(self).output()
        return self._layers[-1][-1]

    def h(self) -> tuple[jax.Array, ...]:
        """Each layer's output h, bottom to top."""
        if graph_mode():
            return _hooks.GRAPH.state(self).h()
        return tuple(layer[-1] for layer in self._layers)

    def s(self) -> tuple[jax.Array, ...]:
        """Every state vector, component-major: an LSTM gives (c_1..c_L, h_1..h_L); a GRU
        or SimpleRNN the same as `h()`. `initial_state(vecs)` and `set_s` take this order."""
        if graph_mode():
            return _hooks.GRAPH.state(self).s()
        n = len(self._layers[0])
        return tuple(layer[k] for k in range(n) for layer in self._layers)

    def prev(self) -> RNNState | None:
        """The state this one was made from (None for an initial state)."""
        return self._prev

    def b(self) -> Any:
        """The builder that made this state."""
        return self._builder

    builder = property(b)

    @property
    def spec(self) -> Any:
        """The static description of the stack (cells and dropout rates)."""
        return self._spec

    @property
    def layers(self) -> tuple:
        """Per layer, the tuple of state arrays (the last is the output h)."""
        return self._layers

    @property
    def key(self) -> Any:
        """The sequence's dropout key (None without dropout)."""
        return self._key

    @property
    def batch_size(self) -> int | None:
        """None for an unbatched state, else the batch size."""
        a = self._layers[0][0]
        return None if a.ndim == 1 else int(a.shape[0])

    # -- stepping --------------------------------------------------------------------
    def _where(self, method: str) -> str:
        return f"{type(self._builder).__name__}.{method}"

    def _check_x(self, method: str, x: Any) -> jax.Array:
        b = self._builder
        if isinstance(x, jax.Array) and x.dtype == b.dtype:  # the common case, kept cheap
            shape, state_shape = x.shape, self._layers[0][0].shape
            if shape[-1:] == (b.input_dim,) and (shape[:-1] == state_shape[:-1] or
                                                 (len(shape) == 2 and len(state_shape) == 1 and shape[0] > 0)):
                return x
        x = as_float_array(self._where(method), "x", x, b.dtype)
        check_vector(self._where(method), "x", x, b.input_dim, "input_dim", self.batch_size)
        return x

    def add_input(self, x: Any) -> RNNState:
        """One step of every layer (one compiled call). x: `(input_dim,)` or `(batch, input_dim)`.

        Returns the new state; this one is unchanged and becomes its `prev()`. With an
        expression of the computation graph (`dy.lookup`, `dy.inputTensor`, ...) the step
        is a node of the graph and the result a graph state.
        """
        if _hooks.is_expression(x):
            return _hooks.GRAPH.state(self).add_input(x)
        x = self._check_x("add_input", x)
        layers = self._spec_fns().step(self._builder._param_tree(), self._layers, self._key, x)
        return RNNState(self._builder, self._spec, layers, self._key, self)

    def _spec_fns(self):
        return compiled(self._spec)

    def _check_sequence(self, method: str, xs: Any, lengths: Any):
        """Returns (xs as a (time, [batch,] input_dim) array, was_list, lengths)."""
        b = self._builder
        return check_sequence(self._where(method), xs, lengths, b.input_dim, b.dtype, self.batch_size)

    def transduce(self, xs: Any, lengths: Any = None, *, return_state: bool = False) -> Any:
        """The top layer's output at every step, compiled as one `lax.scan`.

        `transduce(xs)` equals `[s := s.add_input(x) for x in xs]`'s outputs.

        Args:
          xs: a list of `(input_dim,)` / `(batch, input_dim)` arrays, or one array
            `(time, input_dim)` / `(time, batch, input_dim)`.
          lengths: optional `(batch,)` ints: sequence b's state stops changing after
            `lengths[b]` steps, and its outputs past its end are zeros.
          return_state: also return the final `RNNState` (each sequence's state at its end).

        Returns:
          A list of outputs if `xs` was a list, else an array `(time, [batch,] hidden_dim)`;
          with `return_state`, `(outputs, final_state)`.
        """
        if not isinstance(xs, (jax.Array, np.ndarray)) and not isinstance(xs, (list, tuple)):
            xs = list(xs) if hasattr(xs, "__iter__") else xs
        if _hooks.any_expression(xs):
            return _hooks.GRAPH.state(self).transduce(xs)
        xs, was_list, lengths = self._check_sequence("transduce", xs, lengths)
        outs, final, _ = self._spec_fns().scan(self._builder._param_tree(), self._layers, self._key, xs,
                                               lengths, collect=False, unstack=was_list)
        outs = list(outs) if was_list else outs
        if return_state:
            return outs, RNNState(self._builder, self._spec, final, self._key, self)
        return outs

    def add_inputs(self, xs: Any) -> list[RNNState]:
        """`[s := s.add_input(x) for x in xs]`, computed as one compiled scan; each returned
        state's `prev()` is the one before it (the first's is this state)."""
        if not isinstance(xs, (jax.Array, np.ndarray)) and not isinstance(xs, (list, tuple)):
            xs = list(xs) if hasattr(xs, "__iter__") else xs
        if _hooks.any_expression(xs):
            return _hooks.GRAPH.state(self).add_inputs(xs)
        xs, _, _ = self._check_sequence("add_inputs", xs, None)
        _, _, per_step = self._spec_fns().scan(self._builder._param_tree(), self._layers, self._key, xs,
                                               None, collect=True, unstack=True)
        states, prev = [], self
        for layers in per_step:
            prev = RNNState(self._builder, self._spec, layers, self._key, prev)
            states.append(prev)
        return states

    def transduce_tree(self, xs: Any, parents: Any, *, return_states: bool = False) -> Any:
        """Every node's output for a tree (or forest) of states grown from this one:

            for i in range(N):
                states[i] = (self if parents[i] < 0 else states[parents[i]]).add_input(xs[i])

        computed level by level — one batched cell call per depth, as one compiled scan —
        so a forest of many sentences takes as many sequential steps as its deepest tree.

        Args:
          xs: `(N, input_dim)` (an array, or a list of N vectors).
          parents: N ints with `-1 <= parents[i] < i` (-1: this state), known on the host;
            or a `dy.tree_schedule(parents)` built outside a compiled function, to pass into
            one (xs may then have up to `schedule.size` rows; it compiles once per bucket).

        Dropout: a tree is one sequence — every node uses this state's masks, as the loop
        does; give each sentence its own `initial_state()` to draw its own masks.

        Returns:
          `(N, hidden_dim)` outputs (rows of xs past the schedule's nodes give zeros); with
          `return_states`, `(outputs, states)`, states being one `RNNState` batched over the
          N nodes (`h()`, `s()` per node; no history).
        """
        where = self._where("transduce_tree")
        if isinstance(xs, (list, tuple)) and _hooks.any_expression(xs):
            states, outs = [], []
            for i, p in enumerate(check_parents(where, parents, len(xs)).tolist()):
                states.append((self if p < 0 else states[p]).add_input(xs[i]))
                outs.append(states[-1].output())
            return (outs, states) if return_states else outs
        if self.batch_size is not None:
            raise ValueError(f"{where}: this state is batched ({self.batch_size} rows); a tree grows from one "
                             f"unbatched state (put many sentences in one forest instead).")
        xs = as_rows(where, xs, self._builder.input_dim, self._builder.dtype)
        n = int(xs.shape[0])
        if isinstance(parents, TreeSchedule):
            schedule = parents
            if n > schedule.size:
                raise ValueError(f"{where}: xs has {n} rows but the schedule has room for {schedule.size}; "
                                 f"build it with dy.tree_schedule(parents, size={n}).")
        else:
            schedule = tree_schedule(check_parents(where, parents, n))
        table = run_tree(self._spec, self._builder._param_tree(), self._layers, self._key, xs, schedule)
        table = tuple(tuple(a[:n] for a in layer) for layer in table)
        outs = table[-1][-1]
        if return_states:
            return outs, RNNState(self._builder, self._spec, table, self._key, None)
        return outs

    def reorder(self, indices: Any) -> RNNState:
        """The batch rows `indices` of this state, as a new batched state: row i of the
        result is row `indices[i]` here (a gather along the batch axis; rows may repeat).
        Beam search uses it after each top-k to move every hypothesis onto its parent's
        state. The result has no history (`prev()` is None). Dropout masks belong to batch
        positions, not rows, so they do not move: decode with dropout off."""
        where = self._where("reorder")
        B = self.batch_size
        if B is None:
            raise ValueError(f"{where}: the state is unbatched; reorder gathers rows of a batched state "
                             f"(batch, hidden_dim).")
        idx = check_indices(where, indices, B)
        layers = tuple(tuple(a[idx] for a in layer) for layer in self._layers)
        return RNNState(self._builder, self._spec, layers, self._key, None)

    select = reorder

    def detach(self) -> RNNState:
        """This state's values with gradients stopped and no history: the seed for the next
        chunk in truncated backpropagation through time (Torch rnn's `remember()`)."""
        layers = jax.tree_util.tree_map(jax.lax.stop_gradient, self._layers)
        return RNNState(self._builder, self._spec, layers, self._key, None)

    # -- setting ---------------------------------------------------------------------
    def _vectors(self, method: str, arg: str, vecs: Sequence[Any], sizes: Sequence[int],
                 order: str | None = None) -> list[jax.Array]:
        b, where = self._builder, self._where(method)
        if isinstance(vecs, (jax.Array, np.ndarray)) or not hasattr(vecs, "__len__"):
            raise TypeError(f"{where}: {arg} must be a list of {len(sizes)} vectors; given {type(vecs).__name__}.")
        if len(vecs) != len(sizes):
            raise ValueError(f"{where}: {arg} has {len(vecs)} vectors, but this builder has "
                             f"{b.num_layers} layer(s) and needs {len(sizes)} ({order or b._s_order()}).")
        out, batch = [], self.batch_size
        for k, (v, n) in enumerate(zip(vecs, sizes)):
            v = as_float_array(where, f"{arg}[{k}]", v, b.dtype)
            check_vector(where, f"{arg}[{k}]", v, n, "size", batch, batch_from=f"{arg}[0]")
            batch = None if v.ndim == 1 else int(v.shape[0])
            out.append(v)
        if len({v.ndim for v in out}) > 1:
            raise ValueError(f"{where}: {arg} mixes batched and unbatched vectors; "
                f"give all (size,) or all (batch, size).")
        return out

    def _with_layers(self, layers: tuple) -> RNNState:
        return RNNState(self._builder, self._spec, layers, self._key, self)

    def set_h(self, hs: Sequence[Any]) -> RNNState:
        """A child of **this** state whose per-layer outputs h are `hs`; every other part
        (an LSTM's c) is taken from this state (DyNet took it from the newest state)."""
        if _hooks.any_expression(hs):
            return _hooks.GRAPH.state(self).set_h(hs)
        L = len(self._layers)
        order = ", ".join(f"h_{li + 1}" for li in range(L))
        hs = self._vectors("set_h", "hs", hs, [layer[-1].shape[-1] for layer in self._layers], order)
        if self.batch_size is None and hs[0].ndim == 2:
            layers = tuple(tuple(jnp.broadcast_to(a, hs[0].shape[:1] + a.shape) for a in layer)
                           for layer in self._layers)
        else:
            layers = self._layers
        return self._with_layers(tuple(layers[li][:-1] + (hs[li],) for li in range(L)))

    def set_s(self, ss: Sequence[Any]) -> RNNState:
        """A child of this state with every state vector replaced, in `s()` order."""
        if _hooks.any_expression(ss):
            return _hooks.GRAPH.state(self).set_s(ss)
        n, L = len(self._layers[0]), len(self._layers)
        sizes = [self._layers[li][k].shape[-1] for k in range(n) for li in range(L)]
        ss = self._vectors("set_s", "ss", ss, sizes)
        return self._with_layers(tuple(tuple(ss[k * L + li] for k in range(n)) for li in range(L)))

    def __repr__(self) -> str:
        b = self._builder
        batch = "" if self.batch_size is None else f", batch={self.batch_size}"
        return f"RNNState({type(b).__name__}, layers={len(self._layers)}{batch})"


def _flatten(state: RNNState):
    return (state._layers, state._key), (state._builder, state._spec)


def _unflatten(aux, children):
    layers, key = children
    return RNNState(aux[0], aux[1], layers, key, None)


jax.tree_util.register_pytree_node(RNNState, _flatten, _unflatten)
