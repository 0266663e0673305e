"""Checks at the public boundary, so that bad input fails in Python with a message
that names the method, the argument, what was expected and what was given — never deep
inside XLA."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer


class NonFiniteError(ArithmeticError):
    """A loss, gradient or value that must be finite was NaN or infinite."""


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def refuse_expression(where: str, arg: str, value: Any) -> None:
    """An expression of the computation graph given to a function that works on arrays
    would be read as a constant: the gradient would silently stop there. Refuse it."""
    if getattr(type(value), "__dynrnn_expression__", False):
        raise TypeError(f"{where}: {arg} is an Expression of the computation graph, but {where} works on arrays "
                        f"(compiled mode), where no gradient would reach the graph. Use the graph's operations "
                        f"(dy.pickneglogsoftmax, dy.esum, ...), np.asarray(expr) for a constant, or "
                        f"dy.graph.end_graph() to leave graph mode when the code around it is array code.")


def as_float_array(where: str, arg: str, value: Any, dtype: Any) -> jax.Array:
    """Converts `value` to a floating JAX array of `dtype`.

    Integers, booleans and complex numbers are refused (a `TypeError`): an RNN input
    is a real vector, and silently casting token ids to floats hides a missing lookup.
    Floating inputs of another precision are cast to `dtype`, the parameters' dtype.
    """
    refuse_expression(where, arg, value)
    if hasattr(value, "__jax_array__") and not isinstance(value, jax.Array):
        value = value.__jax_array__()
    if not hasattr(value, "dtype"):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as e:  # ragged lists, objects
            raise TypeError(
                f"{where}: {arg} must be an array of floats; given {type(value).__name__} "
                f"that NumPy cannot convert ({e})."
            ) from None
    kind = np.dtype(value.dtype).kind
    if kind != "f" and "bfloat16" not in str(value.dtype):
        raise TypeError(
            f"{where}: {arg} must have a floating dtype (like the parameters' {np.dtype(dtype).name}); "
            f"given {np.dtype(value.dtype).name}. Look integer ids up with a "
            f"LookupParameters (E[i] or E.batch(ids)) first."
        )
    if value.dtype != dtype:
        value = jnp.asarray(value, dtype=dtype)
    elif not isinstance(value, jax.Array):
        value = jnp.asarray(value)
    return value


def check_vector(where: str, arg: str, x: Any, dim: int, dim_name: str,
                 batch: int | None, batch_from: str = "this state") -> None:
    """`x` must be `(dim,)` or `(batch, dim)`; with `batch` given, exactly `(batch, dim)`."""
    shape = tuple(x.shape)
    expected = f"({dim},) or (batch, {dim})" if batch is None else f"({batch}, {dim})"
    if x.ndim not in (1, 2) or shape[-1] != dim:
        raise ValueError(
            f"{where}: {arg} has shape {fmt_shape(shape)}, but it was created with "
            f"{dim_name}={dim}; expected {expected}."
        )
    if x.ndim == 2 and shape[0] == 0:
        raise ValueError(f"{where}: {arg} has shape {fmt_shape(shape)}: a batch of 0; expected at least one row.")
    if batch is not None and (x.ndim != 2 or shape[0] != batch):
        raise ValueError(
            f"{where}: {arg} has shape {fmt_shape(shape)}, but {batch_from} has batch size "
            f"{batch}; expected {expected}. Start a new sequence with initial_state() for a "
            f"different batch size."
        )


def check_int(where: str, arg: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {arg} must be an int; given {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{where}: {arg} must be >= {minimum}; given {value}.")
    return int(value)


def check_rate(where: str, arg: str, value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {arg} must be a float in [0, 1); given {value!r}.") from None
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{where}: {arg} must be in [0, 1); given {rate}.")
    return rate


def check_real(where: str, arg: str, value: Any, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False, allow_inf: bool = False) -> float:
    """A real number (not a string, None or bool) in the interval given, as a float.

    NaN is always refused; ±inf only with `allow_inf` (and if the interval holds it)."""
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = ""
    if low is not None and high is not None:
        interval = f" in {lo}{low:g}, {high:g}{hi}"
    elif low is not None:
        interval = f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        interval = f" {'<' if high_open else '<='} {high:g}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        if not (isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0
                and np.dtype(value.dtype).kind in "iuf"):
            raise TypeError(f"{where}: {arg} must be a real number{interval}; given {type(value).__name__} {value!r}.")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{where}: {arg} must be a finite number{interval}; given {v}.")
    if (low is not None and (v < low or (low_open and v == low))) or \
            (high is not None and (v > high or (high_open and v == high))):
        raise ValueError(f"{where}: {arg} must be a number{interval}; given {v:g}.")
    return v


def check_key(where: str, key: Any) -> None:
    """A JAX PRNG key: a typed key (`jax.random.key`) or a raw uint32 key (`PRNGKey`)."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if dtype is not None and np.dtype(dtype) == np.uint32 and tuple(key.shape)[-1:] == (2,):
        return
    raise TypeError(f"{where}: key must be a JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)); "
                    f"given {type(key).__name__}{'' if dtype is None else f' of dtype {dtype}'} {key!r}"[:300] + ".")


def as_rows(where: str, xs: Any, input_dim: int, dtype: Any) -> jax.Array:
    """One input row per node, `(N, input_dim)`, from an array or a list of N vectors."""
    if isinstance(xs, (list, tuple)):
        xs = jnp.stack([jnp.asarray(x) for x in xs]) if xs else np.zeros((0, input_dim))
    xs = as_float_array(where, "xs", xs, dtype)
    if xs.ndim != 2 or xs.shape[1] != input_dim:
        raise ValueError(f"{where}: xs must have shape (N, input_dim={input_dim}); given {tuple(xs.shape)}.")
    return xs


def check_sequence(where: str, xs: Any, lengths: Any, input_dim: int, dtype: Any,
                   batch: int | None) -> tuple[jax.Array, bool, jax.Array | None]:
    """A sequence of RNN inputs: a list of `(input_dim,)`/`(batch, input_dim)` vectors or an
    array `(time, [batch,] input_dim)`, and optional `(batch,)` lengths. Returns (the inputs
    as one array, whether they came as a list, the lengths as int32 or None)."""
    if isinstance(xs, (list, tuple)) or (not hasattr(xs, "shape") and hasattr(xs, "__iter__")):
        items = [as_float_array(where, f"xs[{t}]", x, dtype) for t, x in enumerate(xs)]
        if not items:
            raise ValueError(f"{where}: xs is empty; expected at least one input vector.")
        for t, x in enumerate(items):
            check_vector(where, f"xs[{t}]", x, input_dim, "input_dim", batch)
            if x.shape != items[0].shape:
                raise ValueError(f"{where}: xs[{t}] has shape {fmt_shape(x.shape)} but xs[0] has shape "
                                 f"{fmt_shape(items[0].shape)}; every step needs the same shape.")
        arr, was_list = jnp.stack(items), True
    else:
        arr = as_float_array(where, "xs", xs, dtype)
        if arr.ndim not in (2, 3) or arr.shape[0] == 0:
            raise ValueError(f"{where}: xs has shape {fmt_shape(arr.shape)}; expected a list of vectors, "
                             f"or an array (time, {input_dim}) or (time, batch, {input_dim}) with time >= 1.")
        check_vector(where, "xs[0]", jax.ShapeDtypeStruct(arr.shape[1:], arr.dtype), input_dim, "input_dim", batch)
        was_list = False
    if lengths is not None:
        lengths = check_lengths(where, lengths, arr)
    return arr, was_list, lengths


def check_lengths(where: str, lengths: Any, xs: jax.Array) -> jax.Array:
    """`(batch,)` integer lengths in [0, time] of a `(time, batch, ...)` sequence. Traced
    lengths cannot be checked: they act as if clamped to [0, time]."""
    if xs.ndim != 3:
        raise ValueError(f"{where}: lengths= needs a batched sequence (time, batch, input_dim); "
                         f"given xs of shape {fmt_shape(xs.shape)}.")
    T, B = int(xs.shape[0]), int(xs.shape[1])
    if isinstance(lengths, Tracer):
        if lengths.shape != (B,) or not jnp.issubdtype(lengths.dtype, jnp.integer):
            raise ValueError(f"{where}: lengths must be integers of shape ({B},); given "
                             f"{lengths.dtype} {fmt_shape(lengths.shape)}.")
        return lengths
    a = np.asarray(lengths)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{where}: lengths must be integers; given dtype {a.dtype}.")
    if a.shape != (B,):
        raise ValueError(f"{where}: lengths has shape {fmt_shape(a.shape)}; expected ({B},), one length "
                         f"per batch element.")
    if a.size and (a.min() < 0 or a.max() > T):
        raise ValueError(f"{where}: lengths must lie in [0, {T}] (the sequence has {T} steps); "
                         f"given min {a.min()}, max {a.max()}.")
    return jnp.asarray(a, dtype=jnp.int32)


def check_indices(where: str, indices: Any, batch: int) -> jax.Array:
    """1-D integer row indices into a batch of `batch` rows (checked when concrete)."""
    if isinstance(indices, Tracer):
        if indices.ndim != 1 or not jnp.issubdtype(indices.dtype, jnp.integer):
            raise ValueError(f"{where}: indices must be a 1-D integer array; given {indices.dtype} "
                             f"{fmt_shape(indices.shape)}.")
        return indices
    a = np.asarray(indices)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"{where}: indices must be a 1-D integer array; given {a.dtype} {fmt_shape(a.shape)}.")
    if a.size and (a.min() < 0 or a.max() >= batch):
        raise IndexError(f"{where}: indices must lie in [0, {batch - 1}] (the batch has {batch} rows); given "
                         f"min {a.min()}, max {a.max()}.")
    return jnp.asarray(a, jnp.int32)
