"""DyNet's loss and regularisation expressions (see `_expressions` for the conventions:
the last axis is the vector, a leading axis the batch)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._errors import fmt_shape
from ._expressions import _a, pick_batch
from ._losses import softmax_cross_entropy
from ._random import managed_key


def pickneglogsoftmax(x: Any, v: Any) -> jax.Array:
    """−log softmax(x)[v]: a scalar for a vector; for a batch (B, d) and B ids, (B,)."""
    x, v = _a(x), jnp.asarray(v)
    if v.ndim == 0:
        v = jnp.broadcast_to(v, x.shape[:-1])
    return pickneglogsoftmax_batch(x, v)


def pickneglogsoftmax_batch(x: Any, vs: Any) -> jax.Array:
    """Per-example −log softmax(x_b)[v_b] for a batch (B, d): (B,)."""
    x, vs = _a(x), jnp.asarray(vs)
    if x.ndim < 1 or vs.shape != x.shape[:-1]:
        raise ValueError(f"pickneglogsoftmax_batch: expected one class id per example, shape {fmt_shape(x.shape[:-1])} "
                         f"for x of shape {fmt_shape(x.shape)}; given ids of shape {fmt_shape(vs.shape)}.")
    if not jnp.issubdtype(vs.dtype, jnp.integer):
        raise TypeError(f"pickneglogsoftmax: class ids must be integers; given dtype {vs.dtype}.")
    return softmax_cross_entropy(x, vs)


def binary_log_loss(x: Any, y: Any) -> jax.Array:
    """−Σ [y log x + (1 − y) log(1 − x)] over the vector axis (x are probabilities)."""
    p, t = _a(x), _a(y)
    return -jnp.sum(t * jnp.log(p) + (1 - t) * jnp.log1p(-p), axis=-1)


def squared_distance(x: Any, y: Any) -> jax.Array:
    """Σ (x − y)² over the vector axis."""
    return jnp.sum(jnp.square(_a(x) - _a(y)), axis=-1)


def l1_distance(x: Any, y: Any) -> jax.Array:
    """Σ |x − y| over the vector axis."""
    return jnp.sum(jnp.abs(_a(x) - _a(y)), axis=-1)


def hinge(x: Any, index: Any, m: float = 1.0) -> jax.Array:
    """Σ_{i ≠ index} max(0, m − x[index] + x[i]) (multiclass hinge); batched with B ids."""
    a = _a(x)
    index = jnp.asarray(index)
    correct = a[..., index] if index.ndim == 0 else pick_batch(a, index)
    margins = jnp.maximum(0.0, m - correct[..., None] + a)
    own = jax.nn.one_hot(index, a.shape[-1], dtype=bool)
    return jnp.sum(jnp.where(own, 0.0, margins), axis=-1)


def dropout(x: Any, p: float, *, key: jax.Array | None = None) -> jax.Array:
    """Inverted dropout: each entry is zeroed with probability p, the rest scaled by
    1/(1 − p). The key is `key`, else a managed one (fresh per compiled training step)."""
    a = _a(x)
    if p <= 0.0:
        return a
    keep = jax.random.bernoulli(managed_key() if key is None else key, 1.0 - p, a.shape)
    return jnp.where(keep, a / (1.0 - p), 0.0)


def block_dropout(x: Any, p: float, *, key: jax.Array | None = None) -> jax.Array:
    """Drops whole vectors (each batch element's vector at once) with probability p."""
    a = _a(x)
    if p <= 0.0:
        return a
    keep = jax.random.bernoulli(managed_key() if key is None else key, 1.0 - p, a.shape[:-1] + (1,))
    return jnp.where(keep, a / (1.0 - p), 0.0)


def noise(x: Any, stddev: float, *, key: jax.Array | None = None) -> jax.Array:
    """x plus Gaussian noise of standard deviation `stddev`."""
    a = _a(x)
    return a + stddev * jax.random.normal(managed_key() if key is None else key, a.shape, a.dtype)
