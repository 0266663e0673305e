"""`BiRNNBuilder`: DyNet's bidirectional stack, with length-aware reversal for minibatches."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _hooks
from ._builders import RNNBuilder, VanillaLSTMBuilder
from ._errors import check_int, check_sequence
from ._io import savable
from ._params import ParameterCollection, Parameters
from ._state import RNNState


def reverse_sequences(xs: jax.Array, lengths: Any = None) -> jax.Array:
    """Reverses a `(time, [batch,] dim)` array along time; with `lengths` (batch,), each
    sequence is reversed within its own length and its padding stays where it was."""
    if lengths is None:
        return xs[::-1]
    T = xs.shape[0]
    t = jnp.arange(T)[:, None]
    idx = jnp.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (time, batch)
    return jnp.take_along_axis(xs, idx[:, :, None], axis=0)


@savable
class BiRNNBuilder:
    """A stack of bidirectional layers (DyNet's `BiRNNBuilder`).

    Each layer runs a forward and a backward builder of `hidden_dim // 2` units (made by
    `builder_class(1, in, hidden_dim // 2, pc)`) and concatenates their outputs, so every
    output has `hidden_dim` units; layer l+1 reads layer l's concatenated outputs.

    Args:
      num_layers: number of bidirectional layers.
      input_dim, hidden_dim: sizes; hidden_dim must be even.
      pc: the owning collection.
      builder_class: any builder class with DyNet's signature (default `VanillaLSTMBuilder`).
    """

    def __init__(self, num_layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection,
                 builder_class: type = VanillaLSTMBuilder):
        where = "BiRNNBuilder"
        self.num_layers = check_int(where, "num_layers", num_layers)
        self.input_dim = check_int(where, "input_dim", input_dim)
        self.hidden_dim = check_int(where, "hidden_dim", hidden_dim)
        if hidden_dim % 2:
            raise ValueError(f"{where}: hidden_dim must be even (each direction gets hidden_dim // 2); "
                             f"given {hidden_dim}.")
        if not (isinstance(builder_class, type) and issubclass(builder_class, RNNBuilder)):
            raise TypeError(f"{where}: builder_class must be a builder class such as dy.VanillaLSTMBuilder; "
                            f"given {builder_class!r}.")
        if not isinstance(pc, ParameterCollection):
            raise TypeError(f"{where}: pc must be a ParameterCollection; given {type(pc).__name__}.")
        self.builder_class = builder_class
        self._pc = pc.add_subcollection("birnn-builder")
        self.builder_layers = []
        for li in range(num_layers):
            d_in = input_dim if li == 0 else hidden_dim
            self.builder_layers.append((builder_class(1, d_in, hidden_dim // 2, self._pc),
                                        builder_class(1, d_in, hidden_dim // 2, self._pc)))

    def param_collection(self) -> ParameterCollection:
        return self._pc

    @property
    def spec(self) -> tuple:
        """DyNet's `spec`: `(num_layers, input_dim, hidden_dim, builder_class)`."""
        return self.num_layers, self.input_dim, self.hidden_dim, self.builder_class

    @classmethod
    def from_spec(cls, spec: Any, pc: ParameterCollection) -> BiRNNBuilder:
        """A new BiRNNBuilder in `pc` made from `spec` (DyNet's `from_spec`)."""
        num_layers, input_dim, hidden_dim, builder_class, *_ = spec
        return cls(num_layers, input_dim, hidden_dim, pc, builder_class)

    def whoami(self) -> str:
        return "BiRNNBuilder"

    def _builders(self) -> list[RNNBuilder]:
        return [b for pair in self.builder_layers for b in pair]

    def saved_parameters(self) -> list[Parameters]:
        return [p for b in self._builders() for p in b.saved_parameters()]

    def get_parameters(self) -> list[list[list[Parameters]]]:
        """Per layer, `[forward builder's get_parameters(), backward builder's]`."""
        return [[f.get_parameters(), b.get_parameters()] for f, b in self.builder_layers]

    def set_dropout(self, d: float) -> None:
        for b in self._builders():
            b.set_dropout(d)

    def set_dropouts(self, d: float, d_h: float) -> None:
        for b in self._builders():
            b.set_dropouts(d, d_h)

    def disable_dropout(self) -> None:
        for b in self._builders():
            b.disable_dropout()

    @property
    def dropout(self) -> tuple[float, float]:
        """(d, d_h) of the first direction's builder (`set_dropout(s)` sets every one alike)."""
        return self._builders()[0].dropout

    def dropout_settings(self) -> list[list[float]]:
        """Every direction's `[d, d_h]`, layer by layer (forward, backward)."""
        return [list(b.dropout) for b in self._builders()]

    def restore_dropout(self, settings: list) -> None:
        for b, s in zip(self._builders(), settings, strict=True):
            b.restore_dropout([s])

    def _as_array(self, method: str, xs: Any, lengths: Any):
        return check_sequence(f"BiRNNBuilder.{method}", xs, lengths, self.input_dim, self._pc.dtype, None)

    def transduce(self, xs: Any, lengths: Any = None) -> Any:
        """Concatenated [forward; backward] top-layer outputs at every step.

        Args:
          xs: a list of `(input_dim,)`/`(batch, input_dim)` arrays or an array
            `(time, [batch,] input_dim)`.
          lengths: optional `(batch,)`: the backward direction starts at each sequence's
            own last element; outputs past a sequence's end are zeros.

        Returns:
          A list (for a list input) or an array `(time, [batch,] hidden_dim)`.
        """
        xs = list(xs) if not isinstance(xs, (jax.Array, np.ndarray, list, tuple)) and hasattr(xs, "__iter__") else xs
        if _hooks.any_expression(xs):  # a graph: each direction is a chain of graph steps
            return [s for s in self._graph_layers(list(xs))]
        arr, was_list, lengths = self._as_array("transduce", xs, lengths)
        for fb, bb in self.builder_layers:
            fs = fb.initial_state().transduce(arr, lengths)
            bs = bb.initial_state().transduce(reverse_sequences(arr, lengths), lengths)
            arr = jnp.concatenate([fs, reverse_sequences(bs, lengths)], axis=-1)
        return list(arr) if was_list else arr

    def add_inputs(self, xs: Any) -> list[tuple[RNNState, RNNState]]:
        """Per step, `(forward state, backward state)` of the top layer, as in DyNet: the
        backward state at step t has read inputs T−1 down to t."""
        xs = list(xs) if not isinstance(xs, (jax.Array, np.ndarray, list, tuple)) and hasattr(xs, "__iter__") else xs
        if _hooks.any_expression(xs):
            xs = list(xs)
            if len(self.builder_layers) > 1:
                xs = self._graph_layers(xs, self.builder_layers[:-1])
            fb, bb = self.builder_layers[-1]
            fwd = fb.initial_state().add_inputs(xs)
            bwd = bb.initial_state().add_inputs(xs[::-1])
            return list(zip(fwd, reversed(bwd)))
        arr, _, _ = self._as_array("add_inputs", xs, None)
        for fb, bb in self.builder_layers[:-1]:
            fs = fb.initial_state().transduce(arr)
            bs = bb.initial_state().transduce(arr[::-1])
            arr = jnp.concatenate([fs, bs[::-1]], axis=-1)
        fb, bb = self.builder_layers[-1]
        fwd = fb.initial_state().add_inputs(arr)
        bwd = bb.initial_state().add_inputs(arr[::-1])
        return list(zip(fwd, reversed(bwd)))

    def _graph_layers(self, xs: list, layers: Any = None) -> list:
        """Expressions through `layers` (default all) of the stack, in the graph."""
        for fb, bb in (self.builder_layers if layers is None else layers):
            fs = fb.initial_state().transduce(xs)
            bs = bb.initial_state().transduce(xs[::-1])[::-1]
            xs = [_hooks.GRAPH.concatenate([f, b]) for f, b in zip(fs, bs)]
        return xs

    def save_config(self) -> tuple[list, dict]:
        return [self.num_layers, self.input_dim, self.hidden_dim], {"builder_class": self.builder_class.__name__}

    def __repr__(self) -> str:
        return (f"BiRNNBuilder(num_layers={self.num_layers}, input_dim={self.input_dim}, "
                f"hidden_dim={self.hidden_dim}, builder_class={self.builder_class.__name__})")
