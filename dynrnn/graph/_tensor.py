"""DyNet's `Tensor`: what `expression.tensor_value()` returns — a computed value with DyNet's
dimensions, read with `as_numpy()`, and DyNet's tensor tools on it (`argmax`, `topk`,
`categorical_sample_log_prob`), which give index tensors.

The value stays in dynrnn's layout (batch first) underneath: `np.asarray(t)` and
`jnp.asarray(t)` read it that way, as they read an expression; `as_numpy()` is DyNet's
layout (the batch axis last), as `npvalue()` is.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


class Tensor:
    """A value with DyNet's dims `((d1, d2, ...), batch)` (float values, or the integer
    indices that `argmax`, `topk` and `categorical_sample_log_prob` return)."""

    __slots__ = ("_value", "_dims", "_batch")

    def __init__(self, value: Any, dims: tuple, batch: int):
        self._value, self._dims, self._batch = value, tuple(dims), int(batch)

    def dim(self) -> tuple[tuple[int, ...], int]:
        """DyNet's dimensions: `((d1, d2, ...), batch_size)`."""
        return self._dims, self._batch

    def as_numpy(self) -> np.ndarray:
        """The values as a NumPy array in DyNet's layout (dims, then the batch axis last)."""
        a = np.asarray(self._value)
        return np.array(np.moveaxis(a, 0, -1) if self._batch > 1 else a)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._value, dtype=dtype)

    def __jax_array__(self) -> jax.Array:
        return jax.numpy.asarray(self._value)

    def __repr__(self) -> str:
        kind = "int" if np.asarray(self._value).dtype.kind in "iu" else "float"
        return f"<Tensor:{kind} dims {self._dims} batch {self._batch}>"

    __str__ = __repr__

    # -- DyNet's tensor tools -----------------------------------------------------------
    def _axis(self, where: str, dim: Any, num: Any, many: bool) -> int:
        """The axis of dynrnn's layout for DyNet's `dim` (checked), and `num` checked."""
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 0 <= dim < len(self._dims):
            raise ValueError(f"Tensor.{where}: dim {dim!r} is not one of this tensor's {len(self._dims)} "
                             f"dimension(s) {self._dims}.")
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
            raise ValueError(f"Tensor.{where}: num must be a positive integer; given {num!r}.")
        if not many and num > 1:
            raise ValueError(f"Tensor.{where}: num > 1 is not supported (DyNet 2.1.2 refuses it too); given "
                             f"num={num}. Use topk for the num largest.")
        if num > self._dims[dim]:
            raise ValueError(f"Tensor.{where}: num={num} is more than dimension {dim}'s size {self._dims[dim]}.")
        return int(dim) + (1 if self._batch > 1 else 0)

    def _like(self, a: np.ndarray, axis: int, num: int) -> Tensor:
        """A tensor of `a` (dynrnn's layout), whose DyNet dim at `axis` now has size `num`."""
        d = axis - (1 if self._batch > 1 else 0)
        return Tensor(a, self._dims[:d] + (num,) + self._dims[d + 1:], self._batch)

    def argmax(self, dim: int = 0, num: int = 1) -> Tensor:
        """DyNet's `argmax`: the index of the largest value along `dim` (that dimension
        becomes 1 long), for every other position and every batch element."""
        axis = self._axis("argmax", dim, num, many=False)
        return self._like(np.argmax(np.asarray(self._value), axis=axis, keepdims=True), axis, 1)

    def topk(self, dim: int = 0, num: int = 1) -> tuple[Tensor, Tensor]:
        """DyNet's `topk`: the `num` largest values along `dim`, largest first, and their
        indices (two tensors whose `dim` is `num` long)."""
        axis = self._axis("topk", dim, num, many=True)
        a = np.asarray(self._value)
        ids = np.take(np.argsort(-a, axis=axis, kind="stable"), np.arange(num), axis=axis)
        return self._like(np.take_along_axis(a, ids, axis=axis), axis, num), self._like(ids, axis, num)

    def categorical_sample_log_prob(self, dim: int = 0, num: int = 1) -> Tensor:
        """DyNet's `categorical_sample_log_prob`: an index drawn along `dim` from the
        distribution whose log-probabilities the tensor holds (each position and batch
        element apart), with dynrnn's host generator (seeded by `dy.set_random_seed`)."""
        axis = self._axis("categorical_sample_log_prob", dim, num, many=False)
        from ._ops import host_rng

        logp = np.moveaxis(np.asarray(self._value, np.float64), axis, -1)
        p = np.exp(logp - logp.max(axis=-1, keepdims=True))
        cdf = np.cumsum(p, axis=-1)
        u = host_rng().random(logp.shape[:-1] + (1,)) * cdf[..., -1:]
        ids = np.minimum((cdf <= u).sum(axis=-1, keepdims=True), logp.shape[-1] - 1)
        return self._like(np.moveaxis(ids, -1, axis), axis, 1)
