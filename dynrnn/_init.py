"""Initializers with DyNet's names and meanings.

An initializer is a callable `init(shape, rng, dtype) -> np.ndarray`; values are drawn
with NumPy from the collection's seeded generator, so the same seed gives the same values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._errors import check_real, fmt_shape


class Initializer:
    """Base class: subclasses implement `__call__(shape, rng, dtype)`."""

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator, dtype: Any) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class GlorotInitializer(Initializer):
    """Uniform on ±gain·√(3·ndim / Σdims): ±√(6/(rows+cols)) for a matrix, ±√(3/d) for a
    vector; with `is_lookup=True`, ±√(3/d) for rows of length d (DyNet's lookup default).
    Convolution filters (4 dims: height, width, channels in, channels out) count their
    receptive field, as DyNet's do: ±gain·√(6/((in + out)·height·width))."""

    def __init__(self, is_lookup: bool = False, gain: float = 1.0):
        self.is_lookup = bool(is_lookup)
        self.gain = check_real("GlorotInitializer", "gain", gain, 0.0)

    def __call__(self, shape, rng, dtype):
        dims = shape[1:] if self.is_lookup else shape
        if len(dims) == 4:
            scale = self.gain * math.sqrt(6.0 / ((dims[2] + dims[3]) * dims[0] * dims[1]))
        else:
            scale = self.gain * math.sqrt(3.0 * len(dims) / sum(dims))
        return rng.uniform(-scale, scale, size=shape).astype(dtype)


class HeInitializer(Initializer):
    """Normal with mean 0 and variance gain·2/fan_in, fan_in = number of columns
    (the input size of `W @ x`), or the length of a vector (He et al., 2015)."""

    def __init__(self, gain: float = 1.0):
        self.gain = check_real("HeInitializer", "gain", gain, 0.0)

    def __call__(self, shape, rng, dtype):
        fan_in = shape[-1]
        return rng.normal(0.0, math.sqrt(self.gain * 2.0 / fan_in), size=shape).astype(dtype)


class UniformInitializer(Initializer):
    """Uniform on [-scale, scale]."""

    def __init__(self, scale: float):
        self.scale = check_real("UniformInitializer", "scale", scale, 0.0)

    def __call__(self, shape, rng, dtype):
        return rng.uniform(-self.scale, self.scale, size=shape).astype(dtype)


class NormalInitializer(Initializer):
    """Normal with the given mean and *variance* (DyNet's convention)."""

    def __init__(self, mean: float = 0.0, var: float = 1.0):
        self.mean = check_real("NormalInitializer", "mean", mean)
        self.var = check_real("NormalInitializer", "var", var, 0.0)

    def __call__(self, shape, rng, dtype):
        return rng.normal(self.mean, math.sqrt(self.var), size=shape).astype(dtype)


class ConstInitializer(Initializer):
    """Every entry equal to `c`."""

    def __init__(self, c: float):
        self.c = check_real("ConstInitializer", "c", c)

    def __call__(self, shape, rng, dtype):
        return np.full(shape, self.c, dtype=dtype)


class IdentityInitializer(Initializer):
    """The identity matrix; only for square matrices."""

    def __call__(self, shape, rng, dtype):
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(
                f"IdentityInitializer: expected a square matrix shape (n, n); given {fmt_shape(shape)}."
            )
        return np.eye(shape[0], dtype=dtype)


class SaxeInitializer(Initializer):
    """A random orthogonal matrix times `scale` (Saxe et al., 2014); square matrices."""

    def __init__(self, scale: float = 1.0):
        self.scale = check_real("SaxeInitializer", "scale", scale)

    def __call__(self, shape, rng, dtype):
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(
                f"SaxeInitializer: expected a square matrix shape (n, n); given {fmt_shape(shape)}."
            )
        q, r = np.linalg.qr(rng.normal(size=shape))
        return (self.scale * q * np.sign(np.diag(r))).astype(dtype)


class NumpyInitializer(Initializer):
    """Exactly the given array (its shape must match the parameter's)."""

    def __init__(self, array: Any):
        self.array = np.array(array)

    def __call__(self, shape, rng, dtype):
        if tuple(self.array.shape) != tuple(shape):
            raise ValueError(
                f"NumpyInitializer: the array has shape {fmt_shape(self.array.shape)}, "
                f"but the parameter has shape {fmt_shape(shape)}."
            )
        if self.array.dtype.kind not in "fiu":
            raise TypeError(f"NumpyInitializer: expected a numeric array; given dtype {self.array.dtype}.")
        if not np.isfinite(self.array).all():
            raise ValueError("NumpyInitializer: the array holds NaN or infinite values.")
        return self.array.astype(dtype)


class FromFileInitializer(Initializer):
    """DyNet's `FromFileInitializer(fname)`: the values written in a text file, numbers
    separated by white space, in DyNet's memory order — a matrix column by column, a lookup
    table entry by entry (each entry column by column). The file is read when the
    parameter is made; it must hold exactly as many numbers as the parameter."""

    def __init__(self, fname: str, is_lookup: bool = False):
        self.fname = str(fname)
        self.is_lookup = bool(is_lookup)

    def __call__(self, shape, rng, dtype):
        where = "FromFileInitializer"
        try:
            with open(self.fname) as f:
                words = f.read().split()
        except FileNotFoundError:
            raise FileNotFoundError(f"{where}: no file at {self.fname!r}.") from None
        try:
            values = np.array([float(w) for w in words], np.float64)
        except ValueError as e:
            raise ValueError(f"{where}: {self.fname!r} holds something that is not a number ({e}).") from None
        need = math.prod(shape)
        if values.size != need:
            raise ValueError(f"{where}: {self.fname!r} holds {values.size} numbers, but a parameter of shape "
                             f"{fmt_shape(shape)} needs {need}.")
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: {self.fname!r} holds NaN or infinite values.")
        if self.is_lookup:  # entry by entry, each entry in DyNet's column-major order
            entries = values.reshape((shape[0], -1))
            return np.stack([e.reshape(shape[1:], order="F") for e in entries]).astype(dtype)
        return values.reshape(shape, order="F").astype(dtype)


PyInitializer = Initializer  # DyNet's name of the initializers' base class


INIT_NAMES = ("uniform", "normal", "identity", "glorot", "he", "saxe")


def resolve(init: Any, *, where: str, scale: float = 1.0, mean: float = 0.0, std: float = 1.0,
            is_lookup: bool = False) -> Initializer:
    """Maps DyNet's `init=` argument to an initializer.

    None → Glorot; a number → constant; 'uniform' → U(±scale); 'normal' → N(mean, std²);
    'identity'; 'glorot' (gain=scale); 'he' (variance 2/fan_in); 'saxe'; an ndarray →
    that array; an `Initializer` → itself.
    """
    scale = check_real(where, "scale", scale)
    mean = check_real(where, "mean", mean)
    std = check_real(where, "std", std, 0.0)
    if init is None:
        return GlorotInitializer(is_lookup=is_lookup)
    if isinstance(init, FromFileInitializer) and is_lookup and not init.is_lookup:
        return FromFileInitializer(init.fname, is_lookup=True)  # a table's order: entry by entry
    if isinstance(init, Initializer):
        return init
    if isinstance(init, bool):
        raise TypeError(f"{where}: init must be None, a number, a name, an array or an Initializer; given {init!r}.")
    if isinstance(init, (int, float, np.integer, np.floating)):
        return ConstInitializer(check_real(where, "init", init))
    if isinstance(init, str):
        table = {
            "uniform": lambda: UniformInitializer(scale),
            "normal": lambda: NormalInitializer(mean, std * std),
            "identity": IdentityInitializer,
            "glorot": lambda: GlorotInitializer(is_lookup=is_lookup, gain=scale),
            "he": lambda: HeInitializer(),
            "saxe": lambda: SaxeInitializer(scale),
        }
        if init not in table:
            raise ValueError(f"{where}: unknown init {init!r}; expected one of {', '.join(map(repr, INIT_NAMES))}, "
                             f"a number, an array or an Initializer.")
        return table[init]()
    if isinstance(init, np.ndarray) or hasattr(init, "__array__"):
        return NumpyInitializer(np.asarray(init))
    if callable(init):
        raise TypeError(f"{where}: init must be an Initializer instance (subclass dynrnn.Initializer); "
                        f"given the callable {init!r}.")
    raise TypeError(f"{where}: init must be None, a number, a name, an array or an Initializer; "
                    f"given {type(init).__name__}.")
