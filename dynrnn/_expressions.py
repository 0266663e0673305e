"""DyNet's expression vocabulary as thin functions over `jax.numpy`.

Conventions (DyNet keeps a batch dimension beside each expression's shape; a JAX array
does not): **the last axis is the vector, any leading axis is the batch**. A DyNet vector
of size d is `(d,)`; a minibatch of B of them is `(B, d)`; a batch of scalars (e.g.
per-example losses) is `(B,)`. Functions taking "elements" (`sum_elems`, `softmax`,
`pick`, ...) work on the last axis; `sum_batches` sums the leading axis. Matrices appear as
parameters (`W * x` on a `Parameters` is DyNet's matrix product, see `Parameters.__mul__`).

Everything returns a `jax.Array` and works eagerly and under `jit`, `grad` and `vmap`.
There is no computation graph: `renew_cg()` is a no-op kept so that scripts run unchanged,
and `cg_checkpoint()`/`cg_revert()` have no counterpart (states and arrays are values;
nothing needs reverting).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._devices import check_device
from ._params import LookupParameters, _Param, matvec
from ._random import managed_key


def _a(x: Any) -> jax.Array:
    if isinstance(x, _Param):
        return x.value
    return x if isinstance(x, jax.Array) else jnp.asarray(x)


def _each(where: str, exprs: Any) -> list[jax.Array]:
    """The arrays of a list of expressions (DyNet's list operations), refusing an empty
    list and a lone array (whose rows would be taken for the list)."""
    if isinstance(exprs, (jax.Array, np.ndarray, _Param)) or not hasattr(exprs, "__iter__"):
        raise TypeError(f"dy.{where}: expected a list of expressions; given a {type(exprs).__name__}.")
    out = [_a(e) for e in exprs]
    if not out:
        raise ValueError(f"dy.{where}: the list of expressions is empty; give at least one.")
    return out


def _float(x: Any) -> jax.Array:
    a = _a(x)
    return a if jnp.issubdtype(a.dtype, jnp.floating) else a.astype(jnp.float32)


# -- the graph that is not there ----------------------------------------------------------

def renew_cg(immediate_compute: bool = False, check_validity: bool = False) -> None:
    """A no-op: dynrnn has no computation graph to renew (every value is an array, every
    state a value). Kept so that DyNet scripts run unchanged."""


# -- inputs --------------------------------------------------------------------------------

def inputTensor(arr: Any, batched: bool = False, device: str = "", reusable_expr: bool = False) -> jax.Array:
    """A constant from a NumPy array. With `batched=True` the array's **last** axis is the
    batch (DyNet's convention); it becomes the leading axis here: (d, B) → (B, d)."""
    check_device("dy.inputTensor", device)
    a = _float(np.asarray(arr) if not isinstance(arr, jax.Array) else arr)
    return jnp.moveaxis(a, -1, 0) if batched else a


def inputVector(v: Sequence[float], device: str = "") -> jax.Array:
    """A constant vector (d,) from a list of numbers."""
    check_device("dy.inputVector", device)
    return _float(np.asarray(v, dtype=np.float32))


def vecInput(dim: int, device: str = "") -> jax.Array:
    """DyNet's settable input vector, as zeros (d,): arrays are immutable here, so build a
    new one with `inputVector` instead of calling `.set()`."""
    check_device("dy.vecInput", device)
    return jnp.zeros((dim,), jnp.float32)


def scalarInput(value: float, device: str = "") -> jax.Array:
    check_device("dy.scalarInput", device)
    return jnp.asarray(value, jnp.float32)


def lookup(p: LookupParameters, index: Any = 0, update: bool = True) -> jax.Array:
    """Row `index` of a lookup table (d,); `update=False` stops its gradient."""
    row = p[index]
    return row if update else jax.lax.stop_gradient(row)


def lookup_batch(p: LookupParameters, indices: Any, update: bool = True) -> jax.Array:
    """Rows `indices` as a minibatch (B, d)."""
    rows = p.batch(indices)
    return rows if update else jax.lax.stop_gradient(rows)


def parameter(p: Any, update: bool = True) -> Any:
    """As in DyNet 2, a no-op on `Parameters` (they are usable directly); `update=False`
    gives a constant (no gradient)."""
    return p if update else const_parameter(p)


def const_parameter(p: Any) -> jax.Array:
    """The parameter's value with gradients stopped."""
    return jax.lax.stop_gradient(_a(p))


def zeros(dim: Any, batch_size: int = 1) -> jax.Array:
    shape = (dim,) if isinstance(dim, int) else tuple(dim)
    return jnp.zeros(shape if batch_size == 1 else (batch_size,) + shape, jnp.float32)


def ones(dim: Any, batch_size: int = 1) -> jax.Array:
    shape = (dim,) if isinstance(dim, int) else tuple(dim)
    return jnp.ones(shape if batch_size == 1 else (batch_size,) + shape, jnp.float32)


def random_normal(dim: Any, mean: float = 0.0, stddev: float = 1.0, batch_size: int = 1, *,
                  key: jax.Array | None = None) -> jax.Array:
    """Gaussian noise of shape `dim` (and `batch_size`), from `key` or a managed key."""
    shape = (dim,) if isinstance(dim, int) else tuple(dim)
    shape = shape if batch_size == 1 else (batch_size,) + shape
    return mean + stddev * jax.random.normal(managed_key() if key is None else key, shape)


# -- arithmetic and shape ----------------------------------------------------------------

def affine_transform(exprs: Sequence[Any]) -> jax.Array:
    """`[b, W1, x1, W2, x2, ...]` → b + W1·x1 + W2·x2 + ... (x's may be batches (B, d))."""
    if len(exprs) % 2 != 1:
        raise ValueError(f"affine_transform: expected [b, W1, x1, W2, x2, ...] (an odd count); given {len(exprs)}.")
    out = _a(exprs[0])
    for W, x in zip(exprs[1::2], exprs[2::2]):
        out = out + matvec(_a(W), _a(x))
    return out


def concatenate(exprs: Sequence[Any], d: int = 0) -> jax.Array:
    """Concatenates vectors (DyNet's dimension 0 = the vector axis, the last axis here)."""
    if d != 0:
        raise ValueError("concatenate: only d=0 (the vector axis) has a batch-safe meaning; use jnp.concatenate.")
    return jnp.concatenate(_each("concatenate", exprs), axis=-1)


def concatenate_cols(exprs: Sequence[Any]) -> jax.Array:
    """Column vectors (d,) side by side: a matrix (d, n) (or (B, d, n) for batches)."""
    return jnp.stack(_each("concatenate_cols", exprs), axis=-1)


def reshape(x: Any, d: Any, batch_size: int = 1) -> jax.Array:
    shape = (d,) if isinstance(d, int) else tuple(d)
    return jnp.reshape(_a(x), shape if batch_size == 1 else (batch_size,) + shape)


def transpose(x: Any, dims: Sequence[int] = (1, 0)) -> jax.Array:
    a = _a(x)
    if a.ndim == 1:  # a column vector's transpose is a row: same numbers
        return a
    return jnp.transpose(a, tuple(dims))


def cmult(x: Any, y: Any) -> jax.Array:
    """Elementwise product."""
    return _a(x) * _a(y)


def cdiv(x: Any, y: Any) -> jax.Array:
    """Elementwise quotient."""
    return _a(x) / _a(y)


def dot_product(x: Any, y: Any) -> jax.Array:
    """x·y over the vector axis: a scalar, or (B,) for batches."""
    return jnp.sum(_a(x) * _a(y), axis=-1)


def sum_elems(x: Any) -> jax.Array:
    """Sum over the vector axis: a scalar, or (B,) for a batch."""
    return jnp.sum(_a(x), axis=-1)


def mean_elems(x: Any) -> jax.Array:
    return jnp.mean(_a(x), axis=-1)


def esum(exprs: Sequence[Any]) -> jax.Array:
    """Sum of a list of same-shaped expressions (DyNet's way to add up per-step losses)."""
    return jnp.sum(jnp.stack(_each("esum", exprs)), axis=0)


def average(exprs: Sequence[Any]) -> jax.Array:
    return jnp.mean(jnp.stack(_each("average", exprs)), axis=0)


def sum_batches(x: Any) -> jax.Array:
    """Sum over the leading (batch) axis: (B,) → scalar, (B, d) → (d,)."""
    return jnp.sum(_a(x), axis=0)


def pick(x: Any, index: Any, dim: int = 0) -> jax.Array:
    """Element `index` of a vector; of a batch (B, d), element `index` of every vector
    (with `index` a list of B ids, one per vector: DyNet's `pick` with a list)."""
    a = _a(x)
    if dim != 0:
        raise ValueError("pick: only dim=0 (the vector axis) is supported.")
    index = jnp.asarray(index)
    if index.ndim == 0:
        return a[..., index]
    return pick_batch(a, index)


def pick_batch(x: Any, indices: Any) -> jax.Array:
    """From a batch (B, d), element `indices[b]` of vector b: (B,)."""
    a = _a(x)
    indices = jnp.asarray(indices)
    if a.ndim != 2 or indices.shape != a.shape[:1]:
        raise ValueError(f"pick_batch: expected a batch (B, d) and B indices; given {a.shape} and {indices.shape}.")
    return jnp.take_along_axis(a, indices[:, None], axis=1)[:, 0]


def select_rows(x: Any, rows: Sequence[int]) -> jax.Array:
    """Rows `rows` of a matrix (r, c) → (len(rows), c)."""
    return _a(x)[jnp.asarray(rows)]


def max_dim(x: Any, d: int = 0) -> jax.Array:
    """Maximum over the vector axis: a scalar, or (B,) for a batch."""
    if d != 0:
        raise ValueError("max_dim: only d=0 (the vector axis) is supported; use jnp.max for matrices.")
    return jnp.max(_a(x), axis=-1)


def emax(exprs: Sequence[Any]) -> jax.Array:
    """Elementwise maximum of a list."""
    return jnp.max(jnp.stack(_each("emax", exprs)), axis=0)


# -- nonlinearities -------------------------------------------------------------------

def tanh(x: Any) -> jax.Array:
    return jnp.tanh(_a(x))


def logistic(x: Any) -> jax.Array:
    return jax.nn.sigmoid(_a(x))


def rectify(x: Any) -> jax.Array:
    return jax.nn.relu(_a(x))


def elu(x: Any, alpha: float = 1.0) -> jax.Array:
    return jax.nn.elu(_a(x), alpha)


def selu(x: Any) -> jax.Array:
    return jax.nn.selu(_a(x))


def softmax(x: Any, d: int = 0) -> jax.Array:
    """Softmax over the vector axis."""
    if d != 0:
        raise ValueError("softmax: only d=0 (the vector axis) is supported.")
    return jax.nn.softmax(_a(x), axis=-1)


def log_softmax(x: Any, restrict: Sequence[int] | None = None) -> jax.Array:
    """Log-softmax over the vector axis; with `restrict`, only those entries take part
    (the others are -inf), as in DyNet."""
    a = _a(x)
    if restrict is not None:
        keep = jnp.zeros(a.shape[-1], bool).at[jnp.asarray(restrict)].set(True)
        a = jnp.where(keep, a, -jnp.inf)
    return jax.nn.log_softmax(a, axis=-1)


def exp(x: Any) -> jax.Array:
    return jnp.exp(_a(x))


def log(x: Any) -> jax.Array:
    return jnp.log(_a(x))


def square(x: Any) -> jax.Array:
    return jnp.square(_a(x))


def sqrt(x: Any) -> jax.Array:
    return jnp.sqrt(_a(x))


def abs(x: Any) -> jax.Array:  # noqa: A001 - DyNet's name
    return jnp.abs(_a(x))
