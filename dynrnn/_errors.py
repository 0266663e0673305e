"""Checks at the public boundary, so that bad input fails in Python with a message
that names the method, the argument, what was expected and what was given — never deep
inside XLA."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class NonFiniteError(ArithmeticError):
    """A loss, gradient or value that must be finite was NaN or infinite."""


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def as_float_array(where: str, arg: str, value: Any, dtype: Any) -> jax.Array:
    """Converts `value` to a floating JAX array of `dtype`.

    Integers, booleans and complex numbers are refused (a `TypeError`): an RNN input
    is a real vector, and silently casting token ids to floats hides a missing lookup.
    Floating inputs of another precision are cast to `dtype`, the parameters' dtype.
    """
    if hasattr(value, "__jax_array__") and not isinstance(value, jax.Array):
        value = value.__jax_array__()
    if not hasattr(value, "dtype"):
        try:
            value = np.asarray(value)
        except Exception as e:  # ragged lists, objects
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


def check_vector(where: str, arg: str, x: jax.Array, dim: int, dim_name: str,
                 batch: int | None, batch_from: str = "this state") -> None:
    """`x` must be `(dim,)` or `(batch, dim)`; with `batch` given, exactly `(batch, dim)`."""
    shape = tuple(x.shape)
    expected = f"({dim},) or (batch, {dim})" if batch is None else f"({batch}, {dim})"
    if x.ndim not in (1, 2) or shape[-1] != dim:
        raise ValueError(
            f"{where}: {arg} has shape {fmt_shape(shape)}, but it was created with "
            f"{dim_name}={dim}; expected {expected}."
        )
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
