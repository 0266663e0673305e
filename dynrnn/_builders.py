"""Builders: they own a stack of cells' parameters and make initial states.

`RNNBuilder` works with any cell that follows the protocol in `dynrnn.cells`; the DyNet
builders are thin subclasses that choose a cell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from . import _hooks, _params
from ._compiled import StackSpec
from ._errors import check_int, check_key, check_rate, check_real
from ._io import savable
from ._params import ParameterCollection, Parameters
from ._state import RNNState
from .cells import CoupledLSTMCell, FastLSTMCell, GRUCell, LSTMCell, SimpleRNNCell, SparseLSTMCell


class RNNBuilder:
    """A stack of `layers` recurrent layers built from a cell.

    Args:
      layers: number of stacked layers (≥ 1); layer l+1 reads layer l's output h.
      input_dim: size of each input vector.
      hidden_dim: size of each layer's output h.
      pc: the `ParameterCollection` that owns the parameters (a subcollection is made).
      cell: a callable `(input_dim, hidden_dim) -> cell` (a cell class, usually) whose
        result follows the protocol in `dynrnn.cells`.

    Example (a cell that is not in the library):
      >>> import dataclasses, jax.numpy as jnp, dynrnn as dy
      >>> @dataclasses.dataclass(frozen=True)
      ... class Leaky(dy.cells.Cell):
      ...     input_dim: int
      ...     hidden_dim: int
      ...     def param_specs(self):
      ...         return (dy.cells.ParamSpec("W", (self.hidden_dim, self.input_dim)),)
      ...     def step(self, params, state, x, h_mask=None):
      ...         (W,), (h,) = params, state
      ...         return (0.5 * h + 0.5 * jnp.tanh(x @ W.T),)
      >>> rnn = dy.RNNBuilder(1, 3, 4, dy.ParameterCollection(seed=0), cell=Leaky)
      >>> rnn.initial_state().add_input(jnp.ones(3)).output().shape
      (4,)
    """

    _collection_name = "rnn-builder"

    def __init__(self, layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection,
                 cell: Callable[[int, int], Any] | None = None):
        where = type(self).__name__
        self.num_layers = check_int(where, "layers", layers)
        self.input_dim = check_int(where, "input_dim", input_dim)
        self.hidden_dim = check_int(where, "hidden_dim", hidden_dim)
        if not isinstance(pc, ParameterCollection):
            raise TypeError(f"{where}: pc must be a ParameterCollection; given {type(pc).__name__}.")
        if cell is None:
            raise TypeError(f"{where}: cell= is required (a callable (input_dim, hidden_dim) -> cell).")
        cells = tuple(cell(input_dim if li == 0 else hidden_dim, hidden_dim) for li in range(self.num_layers))
        for c in cells:
            try:
                hash(c)
            except TypeError:
                raise TypeError(f"{where}: cells must be hashable "
                    f"(make {type(c).__name__} a frozen dataclass).") from None
            if c.state_sizes()[-1] != hidden_dim:
                raise ValueError(f"{where}: the cell's last state component (its output h) has size "
                                 f"{c.state_sizes()[-1]}; expected hidden_dim={hidden_dim}.")
        self._cells = cells
        self._pc = pc.add_subcollection(self._collection_name)
        self._layer_params: list[list[Parameters]] = []
        for li, c in enumerate(cells):
            layer_pc = self._pc.add_subcollection(f"layer{li}")
            self._layer_params.append([layer_pc.add_parameters(s.shape, init=s.init, name=s.name)
                                       for s in c.param_specs()])
        self._spec = StackSpec(cells)
        self._values = _params.ValueCache()
        self._zeros = tuple(tuple(jax.device_put(np.zeros((n,), pc.dtype)) for n in c.state_sizes()) for c in cells)

    # -- configuration -------------------------------------------------------------------
    @property
    def dtype(self) -> Any:
        return self._pc.dtype

    @property
    def cells(self) -> tuple:
        return self._cells

    def param_collection(self) -> ParameterCollection:
        return self._pc

    def get_parameters(self) -> list[list[Parameters]]:
        """Per layer, DyNet's list of `Parameters` (see each cell's docstring for the order)."""
        return [list(ps) for ps in self._layer_params]

    def get_parameter_expressions(self) -> list[list[jax.Array]]:
        """Per layer, `get_parameters()` as expressions of the current graph (graph mode),
        else as their current values."""
        if _params.graph_mode():
            if getattr(self, "_graph_version", None) != _hooks.GRAPH.version():
                raise ValueError(f"{type(self).__name__}.get_parameter_expressions: call initial_state() in the "
                                 f"current computation graph first (as DyNet requires).")
            return [[_hooks.GRAPH.parameter(p) for p in ps] for ps in self.get_parameters()]
        return [[p.value for p in ps] for ps in self.get_parameters()]

    def layer_parameters(self) -> list[list[Parameters]]:
        """Per layer, every parameter in the order the cell's step takes them (layer-norm
        gains included, unlike DyNet's `get_parameters()`)."""
        return [list(ps) for ps in self._layer_params]

    def saved_parameters(self) -> list[Parameters]:
        return [p for ps in self._layer_params for p in ps]

    def _param_tree(self) -> tuple:
        """The arrays passed to compiled steps, cached until any parameter changes."""
        return self._values.get(self._layer_params)

    def _s_order(self) -> str:
        n = len(self._cells[0].state_sizes())
        names = ("c", "h") if n == 2 else tuple(f"s{k}" for k in range(n - 1)) + ("h",)
        return ", ".join(f"{nm}_1..{nm}_{self.num_layers}" if self.num_layers > 1 else f"{nm}_1" for nm in names)

    # -- dropout (Gal & Ghahramani 2016: one mask per sequence) --------------------------
    def set_dropout(self, d: float) -> None:
        """Dropout rate `d` on each layer's input and on h_{t−1}; masks are drawn per sequence."""
        self.set_dropouts(d, d)

    def set_dropouts(self, d: float, d_h: float) -> None:
        """Separate rates for the inputs (`d`) and the recurrent h_{t−1} (`d_h`)."""
        where = f"{type(self).__name__}.set_dropouts"
        self._spec = StackSpec(self._cells, check_rate(where, "d", d), check_rate(where, "d_h", d_h))
        _params.CONFIG_VERSION[0] += 1

    def disable_dropout(self) -> None:
        self._spec = StackSpec(self._cells)
        _params.CONFIG_VERSION[0] += 1

    @property
    def dropout(self) -> tuple[float, float]:
        return (self._spec.dropout_x, self._spec.dropout_h)

    def dropout_settings(self) -> list[list[float]]:
        """What save/load keeps of the dropout configuration: `[[d, d_h]]`."""
        return [list(self.dropout)]

    def restore_dropout(self, settings: list) -> None:
        (d, d_h), = settings
        if d or d_h:
            self.set_dropouts(d, d_h)

    # -- states --------------------------------------------------------------------------
    def initial_state(self, vecs: Sequence[Any] | None = None, *, key: jax.Array | None = None) -> RNNState:
        """A new sequence's first state: zeros, or `vecs` in `s()` order.

        Args:
          vecs: optional list of every state vector (LSTM: c_1..c_L, h_1..h_L), each
            `(size,)` or `(batch, size)`.
          key: PRNG key for this sequence's dropout masks; by default the collection
            supplies one. Unused when dropout is off.
        """
        spec = self._spec
        if _params.graph_mode():
            self._graph_version = _hooks.GRAPH.version()
        if key is not None:
            check_key(f"{type(self).__name__}.initial_state", key)
        if spec.uses_key and key is None:
            key = self._pc.next_key()
        elif not spec.uses_key:
            key = None
        state = RNNState(self, spec, self._zeros, key, None)
        if vecs is None:
            return state
        if _hooks.any_expression(vecs):  # a state of the computation graph
            return state.set_s(vecs)
        sizes = [c.state_sizes()[k] for k in range(len(self._cells[0].state_sizes())) for c in self._cells]
        vs = state._vectors("initial_state", "vecs", vecs, sizes)
        L = self.num_layers
        layers = tuple(tuple(vs[k * L + li] for k in range(len(self._cells[li].state_sizes()))) for li in range(L))
        return RNNState(self, spec, layers, key, None)

    def save_config(self) -> tuple[list, dict]:
        """Constructor arguments (besides pc) for save/load."""
        return [self.num_layers, self.input_dim, self.hidden_dim], {}

    # -- DyNet's names -------------------------------------------------------------------
    @property
    def spec(self) -> tuple:
        """DyNet's `spec`: the constructor's arguments besides the collection, in order —
        `(layers, input_dim, hidden_dim)`, and `ln_lstm, forget_bias` for the vanilla LSTM."""
        args, kwargs = self.save_config()
        return tuple(args) + tuple(kwargs.values())

    @classmethod
    def from_spec(cls, spec: Sequence[Any], pc: ParameterCollection) -> RNNBuilder:
        """A new builder of this class in `pc`, made from `spec` (DyNet's `from_spec`)."""
        spec = tuple(spec)
        make: Any = cls  # each builder class takes its own arguments after pc
        return make(*spec[:3], pc, *spec[3:])

    def whoami(self) -> str:
        return type(self).__name__

    def initial_state_from_raw_vectors(self, vecs: Sequence[Any] | None = None) -> RNNState:
        """DyNet's name for `initial_state(vecs)` given arrays."""
        return self.initial_state(vecs)

    def set_dropout_masks(self, batch_size: int = 1) -> None:
        """DyNet draws a sequence's dropout masks here; dynrnn draws them at each
        `initial_state()`, one per batch element, so this only checks its argument."""
        check_int(f"{type(self).__name__}.set_dropout_masks", "batch_size", batch_size)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(layers={self.num_layers}, input_dim={self.input_dim}, "
                f"hidden_dim={self.hidden_dim})")


@savable
class SimpleRNNBuilder(RNNBuilder):
    """Elman RNN layers (`SimpleRNNCell`): h_t = tanh(W_hx·x + W_hh·h_{t−1} + b)."""

    _collection_name = "simple-rnn-builder"

    def __init__(self, layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection):
        super().__init__(layers, input_dim, hidden_dim, pc, cell=SimpleRNNCell)


@savable
class VanillaLSTMBuilder(RNNBuilder):
    """DyNet's standard LSTM (`LSTMCell`): gates [i, f, o, g], constant forget bias,
    optional layer norm (`ln_lstm`)."""

    _collection_name = "vanilla-lstm-builder"
    _cell_class: type = LSTMCell

    def __init__(self, layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection,
                 ln_lstm: bool = False, forget_bias: float = 1.0):
        self._ln = bool(ln_lstm)
        self._forget_bias = check_real(type(self).__name__, "forget_bias", forget_bias)
        super().__init__(layers, input_dim, hidden_dim, pc,
                         cell=lambda i, h: self._cell_class(i, h, ln=self._ln, forget_bias=self._forget_bias))

    def get_parameters(self) -> list[list[Parameters]]:
        """Per layer `[W_x (4H×I), W_h (4H×H), b (4H)]` (layer-norm gains: `get_ln_parameters`)."""
        return [list(ps[:3]) for ps in self._layer_params]

    def get_ln_parameters(self) -> list[list[Parameters]]:
        """Per layer `[g_x, b_x, g_h, b_h, g_c, b_c]` when `ln_lstm=True`, else empty lists."""
        return [list(ps[3:]) for ps in self._layer_params]

    def save_config(self):
        args, _ = super().save_config()
        return args, {"ln_lstm": self._ln, "forget_bias": self._forget_bias}


@savable
class SparseLSTMBuilder(VanillaLSTMBuilder):
    """DyNet's `SparseLSTMBuilder` (`SparseLSTMCell`): a vanilla LSTM whose weight matrices
    are masked; `set_sparsity(fraction)` prunes that fraction of all `W_x`, `W_h` weights,
    those of smallest magnitude over every layer together (Narang et al. 2017), as DyNet's
    does. Raise it in steps during training; pruned weights stay pruned."""

    _collection_name = "sparse-lstm-builder"
    _cell_class = SparseLSTMCell

    def __init__(self, layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection,
                 ln_lstm: bool = False, forget_bias: float = 1.0):
        super().__init__(layers, input_dim, hidden_dim, pc, ln_lstm, forget_bias)
        for ps in self._layer_params:
            for mask in ps[3:5]:
                mask.set_updated(False)  # trainers leave the masks alone

    def get_ln_parameters(self) -> list[list[Parameters]]:
        return [list(ps[5:]) for ps in self._layer_params]

    def get_masks(self) -> list[list[Parameters]]:
        """Per layer `[M_x, M_h]`: 1 where a weight is kept, 0 where pruned."""
        return [list(ps[3:5]) for ps in self._layer_params]

    def set_sparsity(self, fraction: float) -> None:
        """Masks the `fraction` (in [0, 1]) of all `W_x`, `W_h` weights of smallest |w ⊙ mask|."""
        fraction = check_real("SparseLSTMBuilder.set_sparsity", "fraction", fraction, 0.0, 1.0)
        pairs = [(ps[k], ps[k + 3]) for ps in self._layer_params for k in (0, 1)]
        magnitudes = np.concatenate([np.abs(w.as_array() * m.as_array()).ravel() for w, m in pairs])
        prune = np.zeros(magnitudes.size, bool)
        prune[np.argsort(magnitudes, kind="stable")[:int(fraction * magnitudes.size)]] = True
        start = 0
        for w, m in pairs:
            n = int(np.prod(w.shape()))
            m.set_value(np.where(prune[start:start + n].reshape(w.shape()), 0.0, 1.0))
            start += n


@savable
class CompactVanillaLSTMBuilder(VanillaLSTMBuilder):
    """DyNet's `CompactVanillaLSTMBuilder`: the equations and parameters of
    `VanillaLSTMBuilder` (per layer `[W_x (4H×I), W_h (4H×H), b (4H)]`, gates [i, f, o, g], a
    forget bias of 1 added to a `b` that starts at 0), without layer norm; DyNet computes its
    gates with one fused operation, as every builder here does."""

    _collection_name = "compact-vanilla-lstm-builder"

    def __init__(self, layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection):
        super().__init__(layers, input_dim, hidden_dim, pc)

    def save_config(self):
        args, _ = super().save_config()
        return args, {}


LSTMBuilder = VanillaLSTMBuilder


@savable
class CoupledLSTMBuilder(RNNBuilder):
    """LSTM with coupled gates (f = 1 − i) and peepholes (`CoupledLSTMCell`)."""

    _collection_name = "coupled-lstm-builder"

    def __init__(self, layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection):
        super().__init__(layers, input_dim, hidden_dim, pc, cell=CoupledLSTMCell)


@savable
class FastLSTMBuilder(RNNBuilder):
    """DyNet's `FastLSTMBuilder`: coupled gates (f = 1 − i), no peepholes (`FastLSTMCell`)."""

    _collection_name = "fast-lstm-builder"

    def __init__(self, layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection):
        super().__init__(layers, input_dim, hidden_dim, pc, cell=FastLSTMCell)


@savable
class GRUBuilder(RNNBuilder):
    """Gated recurrent units, Cho et al. (2014) form (`GRUCell`)."""

    _collection_name = "gru-builder"

    def __init__(self, layers: int, input_dim: int, hidden_dim: int, pc: ParameterCollection):
        super().__init__(layers, input_dim, hidden_dim, pc, cell=GRUCell)
