"""DyNet's losses, dropout and noise, and its gradient modifiers (`nobackprop`,
`flip_gradient`) as graph operations, on `_ops`' node constructor: `pickneglogsoftmax(_batch)`,
`binary_log_loss`, `squared_distance`, `l1_distance`, `huber_distance`, `hinge`, `layer_norm`,
`dropout`, `block_dropout`, `noise`. Masks and noise come from the graph's host RNG (seeded by
`dy.set_random_seed`): each node gets a fresh key, drawn in blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._graph import CURRENT, Expression
from ._ops import Op, as_scalar, expr, host_rng, is_number, node, reshape


def _pnls_fn(static, a, v):
    # log-sum-exp minus the pick: not the whole log-softmax, which XLA computed for every
    # class before picking one
    return as_scalar(jax.nn.logsumexp(a, axis=0) - a[v])


PNLS = Op("pickneglogsoftmax", _pnls_fn)


def _pnls_batch_fn(static, a, vs):
    _, b = static
    lse = jax.nn.logsumexp(a, axis=-1)
    if b > 1 and a.ndim == 2:
        return (lse - jnp.take_along_axis(a, vs[:, None], axis=1)[:, 0])[:, None]
    return (lse - a[vs])[:, None]


PNLS_BATCH = Op("pickneglogsoftmax_batch", _pnls_batch_fn, batch_level=True)


def _scores(where: str, x: Any) -> Expression:
    """The scores of a softmax loss: a vector (n,), or — as DyNet takes it — a column (n, 1)
    (what `W * h` makes of an h reshaped to (d, 1)), as the vector."""
    e = expr(x, where)
    if len(e.dims) == 2 and e.dims[1] == 1:
        return reshape(e, e.dims[:1], e.batch)
    if len(e.dims) != 1:
        raise ValueError(f"dy.{where}: x must be a vector (n,) or a column (n, 1) of scores; given dims {e.dims}.")
    return e


def pickneglogsoftmax(x: Any, v: Any) -> Expression:
    """−log softmax(x)[v]: dims (1,); with a list of ids, one per batch element. x: a vector
    or a column (n, 1)."""
    e = _scores("pickneglogsoftmax", x)
    if isinstance(v, (list, tuple, np.ndarray)) and np.ndim(v) == 1:
        return pickneglogsoftmax_batch(e, v)
    i = np.asarray(v)
    if i.dtype.kind not in "iu" or i.ndim != 0:
        raise TypeError(f"dy.pickneglogsoftmax: v must be a class id (an int); given {v!r:.40}.")
    if not 0 <= int(i) < e.dims[0]:
        raise IndexError(f"dy.pickneglogsoftmax: class {int(i)} is out of range for {e.dims[0]} classes.")
    return node(PNLS, [e], [i.astype(np.int32)])


def pickneglogsoftmax_batch(x: Any, vs: Sequence[int] | np.ndarray) -> Expression:
    e = _scores("pickneglogsoftmax_batch", x)
    ids = np.asarray(vs)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise TypeError(f"dy.pickneglogsoftmax_batch: vs must be a list of class ids; given {vs!r:.60}.")
    if e.batch > 1 and ids.size != e.batch:
        raise ValueError(f"dy.pickneglogsoftmax_batch: x has batch size {e.batch}; given {ids.size} class ids.")
    if ids.size and (ids.min() < 0 or ids.max() >= e.dims[0]):
        raise IndexError(f"dy.pickneglogsoftmax_batch: a class id is out of range for {e.dims[0]} classes.")
    return node(PNLS_BATCH, [e], [ids.astype(np.int32)], static=("batch", int(ids.size)), batch=int(ids.size),
                where="pickneglogsoftmax_batch")


BINARY_LOG_LOSS = Op("binary_log_loss", lambda s, p, t: as_scalar(-jnp.sum(t * jnp.log(p) + (1 - t) * jnp.log1p(-p))))
SQ_DIST = Op("squared_distance", lambda s, a, b: as_scalar(jnp.sum(jnp.square(a - b))))
L1_DIST = Op("l1_distance", lambda s, a, b: as_scalar(jnp.sum(jnp.abs(a - b))))


def _huber_fn(static, a, b):
    d = jnp.abs(a - b)
    c = static
    return as_scalar(jnp.sum(jnp.where(d < c, 0.5 * d * d, c * d - 0.5 * c * c)))


HUBER = Op("huber_distance", _huber_fn)


def same_dims(where: str, x: Any, y: Any) -> list[Expression]:
    a, b = expr(x, where), expr(y, where)
    if a.dims != b.dims:
        raise ValueError(f"dy.{where}: dims must match; given {a.dims} and {b.dims}.")
    return [a, b]


def binary_log_loss(x: Any, y: Any) -> Expression:
    return node(BINARY_LOG_LOSS, same_dims("binary_log_loss", x, y))


def squared_distance(x: Any, y: Any) -> Expression:
    return node(SQ_DIST, same_dims("squared_distance", x, y))


def l1_distance(x: Any, y: Any) -> Expression:
    return node(L1_DIST, same_dims("l1_distance", x, y))


def huber_distance(x: Any, y: Any, c: float = 1.345) -> Expression:
    return node(HUBER, same_dims("huber_distance", x, y), static=float(c))


def _hinge_fn(static, a, i):
    m = static
    margins = jnp.maximum(0.0, m - a[i] + a)
    return as_scalar(jnp.sum(jnp.where(jnp.arange(a.shape[0]) == i, 0.0, margins)))


HINGE = Op("hinge", _hinge_fn)


def hinge(x: Any, index: int, m: float = 1.0) -> Expression:
    e = expr(x, "hinge")
    i = np.asarray(index)
    if i.ndim != 0 or i.dtype.kind not in "iu" or not 0 <= int(i) < e.dims[0]:
        raise ValueError(f"dy.hinge: index must be an int in 0..{e.dims[0] - 1}; given {index!r:.40}.")
    return node(HINGE, [e], [i.astype(np.int32)], static=float(m))


def _layer_norm_fn(static, x, g, b):
    mu = jnp.mean(x)
    sd = jnp.sqrt(jnp.mean(jnp.square(x - mu)) + 1e-8)
    return g * (x - mu) / sd + b


LAYER_NORM = Op("layer_norm", _layer_norm_fn)


def layer_norm(x: Any, g: Any, b: Any) -> Expression:
    """g ⊙ (x − mean(x)) / std(x) + b over the vector x."""
    es = [expr(x, "layer_norm"), expr(g, "layer_norm"), expr(b, "layer_norm")]
    if not (es[0].dims == es[1].dims == es[2].dims):
        raise ValueError(f"dy.layer_norm: x, g and b need the same dims; given {[e.dims for e in es]}.")
    return node(LAYER_NORM, es)


def _dropout_fn(static, a, key):
    p, block = static
    k = jax.random.wrap_key_data(key)
    shape = (1,) * a.ndim if block else a.shape
    keep = jax.random.bernoulli(k, 1.0 - p, shape)
    return jnp.where(keep, a / (1.0 - p), 0.0)


# Batch level: one key draws the whole minibatch's mask (or noise), so that its elements get
# independent ones, as in DyNet (a per-example function would be mapped over the batch with
# the same key, and every element would get the same mask); block dropout keeps or drops the
# whole minibatch at once, as DyNet's BlockDropout does.
DROPOUT = Op("dropout", _dropout_fn, batch_level=True)


def _noise_fn(static, a, key):
    return a + static * jax.random.normal(jax.random.wrap_key_data(key), a.shape, a.dtype)


NOISE = Op("noise", _noise_fn, batch_level=True)


def noise_key() -> np.ndarray:
    """A fresh PRNG key's data for a noise or dropout node, from a block drawn at once (one
    draw per key cost ~5 µs, as much as building the node)."""
    rng = host_rng()
    block = CURRENT.keys
    if block is None or block[0] is not rng or block[2] == len(block[1]):
        block = CURRENT.keys = [rng, rng.integers(0, 2 ** 32, size=(256, 2), dtype=np.uint32), 0]
    k = block[1][block[2]]
    block[2] += 1
    return k


def dropout_rate(where: str, p: Any) -> float:
    if not is_number(p) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"dy.{where}: the rate must be a number in [0, 1); given {p!r}.")
    return float(p)


def dropout(x: Any, p: float) -> Expression:
    """Inverted dropout: entries zeroed with probability p, the rest scaled by 1/(1−p)."""
    e, p = expr(x, "dropout"), dropout_rate("dropout", p)
    return e if p == 0.0 else node(DROPOUT, [e], [noise_key()], static=(p, False))


def block_dropout(x: Any, p: float) -> Expression:
    e, p = expr(x, "block_dropout"), dropout_rate("block_dropout", p)
    return e if p == 0.0 else node(DROPOUT, [e], [noise_key()], static=(p, True))


def noise(x: Any, stddev: float) -> Expression:
    e = expr(x, "noise")
    if not is_number(stddev) or not float(stddev) >= 0.0:
        raise ValueError(f"dy.noise: stddev must be a number ≥ 0; given {stddev!r}.")
    return node(NOISE, [e], [noise_key()], static=float(stddev))


NOBACKPROP = Op("nobackprop", lambda s, a: jax.lax.stop_gradient(a))


@jax.custom_vjp
def _flip(a):
    return a


_flip.defvjp(lambda a: (a, None), lambda _, g: (-g,))
FLIP = Op("flip_gradient", lambda s, a: _flip(a))


def nobackprop(x: Any) -> Expression:
    return node(NOBACKPROP, [expr(x, "nobackprop")])


def flip_gradient(x: Any) -> Expression:
    return node(FLIP, [expr(x, "flip_gradient")])
