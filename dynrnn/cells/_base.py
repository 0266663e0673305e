"""The cell protocol: what a recurrent cell must provide to get the builder/state API.

A cell is a *hashable, immutable* description of one layer (a frozen dataclass is the
easy way) with four members:

* `input_dim`, `hidden_dim` — ints;
* `param_specs()` — the layer's parameters as `ParamSpec(name, shape, init)`, in the
  order `get_parameters()` returns them (`init` is anything `add_parameters` accepts);
* `state_sizes()` — the length of each state vector, e.g. `(H, H)` for an LSTM's
  `(c, h)`. The **last** component is the output `h`; `s()` lists components in this
  order, layer by layer (an LSTM's `s()` is `c_1..c_L, h_1..h_L`);
* `step(params, state, x, h_mask=None)` — pure math: `params` is the tuple of arrays in
  `param_specs()` order, `state` the tuple of state arrays of shape `(..., size)`, `x` of
  shape `(..., input_dim)`; it returns the new state tuple. `h_mask`, when given, is the
  recurrent dropout mask to multiply into `h_{t-1}` where it enters the matrix products.

Optionally, a cell may split its step in two so that `transduce` can compute the input
half for every step as one matrix product before the scan (the `InputProjection`
protocol): `project_input(params, x)` (only x, no state; `x` is `(n, input_dim)`) and
`step_projected(params, state, px, h_mask=None)` with `step ≡ step_projected ∘ project_input`.
Subclassing `ProjectedCell` gives that `step`.

Cells import nothing else from dynrnn: they are the math, and only the math.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

Array = jax.Array
State = tuple[Array, ...]


class ParamSpec(NamedTuple):
    """One parameter of a cell: its name, its shape and its initializer."""

    name: str
    shape: tuple[int, ...]
    init: Any = None  # None → Glorot uniform over this (possibly stacked) matrix


class Cell:
    """Base class for cells (optional: any object with the same members works)."""

    input_dim: int
    hidden_dim: int

    def param_specs(self) -> tuple[ParamSpec, ...]:
        raise NotImplementedError

    def state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_dim,)

    def step(self, params: tuple[Array, ...], state: State, x: Array,
             h_mask: Array | None = None) -> State:
        raise NotImplementedError


@runtime_checkable
class InputProjection(Protocol):
    """The optional split of a cell's step: the part that reads only x, then the rest."""

    def project_input(self, params: tuple[Array, ...], x: Array) -> Array: ...

    def step_projected(self, params: tuple[Array, ...], state: State, px: Array,
                       h_mask: Array | None = None) -> State: ...


class ProjectedCell(Cell):
    """A cell whose step is `step_projected ∘ project_input` (see `InputProjection`)."""

    def project_input(self, params: tuple[Array, ...], x: Array) -> Array:
        raise NotImplementedError

    def step_projected(self, params: tuple[Array, ...], state: State, px: Array,
                       h_mask: Array | None = None) -> State:
        raise NotImplementedError

    def step(self, params: tuple[Array, ...], state: State, x: Array,
             h_mask: Array | None = None) -> State:
        return self.step_projected(params, state, self.project_input(params, x), h_mask)


def cell_dataclass(cls: type) -> type:
    """Makes `cls` a frozen (hence hashable) dataclass, as cells must be."""
    return dataclasses.dataclass(frozen=True)(cls)


def linear(W: Array, x: Array) -> Array:
    """W·x over the last axis of x: `(n,)` → `(m,)`, `(..., n)` → `(..., m)`; W is `(m, n)`.

    A single row (`(1, n)`, `(1, 1, n)`, ...) goes through the matrix-vector `W @ x`: XLA:CPU
    lowers `x @ W.T` with one row to a multiply-and-reduce over W's transpose, measured 2.9×
    slower per token in a batch-1 decoding loop (311 → 109 µs). From two rows on, `x @ W.T`
    is as fast or faster.
    """
    if x.ndim == 1:
        return W @ x
    if math.prod(x.shape[:-1]) == 1:
        return (W @ x.reshape(-1)).reshape(x.shape[:-1] + W.shape[:1])
    return x @ W.T


def layer_norm(x: Array, g: Array, b: Array) -> Array:
    """DyNet's `layer_norm`: g ⊙ (x − mean(x)) / (std(x) + 1e-8) + b over the last axis."""
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    # √ has an infinite slope at 0, and W_h·h is exactly 0 at a zero initial state: take
    # the square root only where var > 0, so gradients stay finite (values are unchanged).
    positive = var > 0
    sigma = jnp.where(positive, jnp.sqrt(jnp.where(positive, var, 1.0)), 0.0)
    return g * (x - mu) / (sigma + 1e-8) + b


def masked(h: Array, mask: Array | None) -> Array:
    return h if mask is None else h * mask
