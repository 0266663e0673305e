"""DyNet's convolution and pooling operations in the graph: `conv2d`, `conv2d_bias`,
`maxpooling2d` (the layers of DyNet's MNIST examples), `filter1d_narrow` and `kmh_ngram`.

DyNet's layout, without the batch: an image is (height, width, channels) and a filter bank
(filter height, filter width, channels in, channels out); `conv2d` is a cross-correlation
(as TensorFlow's, whose Eigen kernel DyNet uses), "VALID" (`is_valid=True`, the default) or
"SAME" with TensorFlow's padding (the output is ceil(size / stride); the extra row or
column of padding goes at the bottom / right). Pooling pads "SAME" windows with -inf.
Values and gradients were compared with DyNet 2.1.2's own (tests check them against
NumPy).
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from ._graph import Expression
from ._ops import Op, expr, node


def _pair(where: str, what: str, v: Any) -> tuple[int, int]:
    """Two positive ints (DyNet's `[rows, cols]` lists)."""
    try:
        out: tuple = tuple(v)
    except TypeError:
        out = ()
    ok = len(out) == 2 and all(isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in out)
    if not ok or min(int(k) for k in out) < 1:
        raise ValueError(f"dy.{where}: {what} must be two positive ints [rows, cols]; given {v!r}.")
    return int(out[0]), int(out[1])


def _image(where: str, x: Any) -> Expression:
    """An image: dims (height, width, channels), or (height, width) for one channel (as
    DyNet allows: a batch of grey images from `dy.inputTensor(images, batched=True)`)."""
    e = expr(x, where)
    if len(e.dims) not in (2, 3):
        raise ValueError(f"dy.{where}: x must be an image of dims (height, width, channels) or (height, width) "
                         f"(and a batch); given dims {e.dims}.")
    return e


def _conv_fn(static: tuple, x: Any, f: Any, b: Any = None) -> Any:
    stride, valid = static
    if x.ndim == 2:  # one channel
        x = x[..., None]
    y = jax.lax.conv_general_dilated(x[None], f, stride, "VALID" if valid else "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
    return y if b is None else y + b


CONV2D = Op("conv2d", _conv_fn)


def conv2d(x: Any, f: Any, stride: Any, is_valid: bool = True) -> Expression:
    """2-D convolution (cross-correlation) of an image x (H, W, Ci) with filters f
    (kH, kW, Ci, Co): (H', W', Co), H' = (H - kH) / stride + 1 "VALID", ceil(H / stride)
    "SAME" (`is_valid=False`). An image of dims (H, W) has one channel."""
    return _conv("conv2d", x, f, None, stride, is_valid)


def conv2d_bias(x: Any, f: Any, b: Any, stride: Any, is_valid: bool = True) -> Expression:
    """`conv2d` plus a bias per output channel, b (Co,)."""
    return _conv("conv2d_bias", x, f, b, stride, is_valid)


def _conv(where: str, x: Any, f: Any, b: Any, stride: Any, is_valid: bool) -> Expression:
    e, fe = _image(where, x), expr(f, where)
    s = _pair(where, "stride", stride)
    if len(fe.dims) != 4 or fe.batch != 1:
        raise ValueError(f"dy.{where}: f must be filters of dims (height, width, channels in, channels out), not "
                         f"batched; given dims {fe.dims}, batch {fe.batch}.")
    kh, kw, ci, co = fe.dims
    h, w, c = (e.dims + (1,))[:3]
    if ci != c:
        raise ValueError(f"dy.{where}: f takes {ci} channels in; x has {c} (dims {e.dims}).")
    if is_valid and (kh > h or kw > w):
        raise ValueError(f"dy.{where}: a {kh}x{kw} filter does not fit in a {h}x{w} image ('VALID' convolution).")
    args = [e, fe]
    if b is not None:
        be = expr(b, where)
        if be.dims != (co,) or be.batch != 1:
            raise ValueError(f"dy.{where}: b must be a vector of the {co} output channels; given dims {be.dims}, "
                             f"batch {be.batch}.")
        args.append(be)
    return node(CONV2D, args, static=(s, bool(is_valid)), where=where)


def _pool_fn(static: tuple, x: Any) -> Any:
    (kh, kw), (sh, sw), valid = static
    rest = (1,) * (x.ndim - 2)  # the channels, if any
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (kh, kw) + rest, (sh, sw) + rest,
                                 "VALID" if valid else "SAME")


MAXPOOL2D = Op("maxpooling2d", _pool_fn)


def maxpooling2d(x: Any, ksize: Any, stride: Any, is_valid: bool = True) -> Expression:
    """2-D max pooling of an image x (H, W, C) per channel (or of an image (H, W)), windows
    `ksize` [rows, cols] moved by `stride`; "SAME" (`is_valid=False`) pads with -inf."""
    e = _image("maxpooling2d", x)
    k, s = _pair("maxpooling2d", "ksize", ksize), _pair("maxpooling2d", "stride", stride)
    if is_valid and (k[0] > e.dims[0] or k[1] > e.dims[1]):
        raise ValueError(f"dy.maxpooling2d: a {k[0]}x{k[1]} window does not fit in a {e.dims[0]}x{e.dims[1]} image "
                         f"('VALID' pooling).")
    return node(MAXPOOL2D, [e], static=(k, s, bool(is_valid)))


def _filter1d_fn(static: Any, x: Any, f: Any) -> Any:
    k = f.shape[1]
    windows = jnp.stack([x[:, j:j + x.shape[1] - k + 1] for j in range(k)], axis=1)  # (n, k, m - k + 1)
    return jnp.einsum("nkj,nko->oj", windows, f.reshape(f.shape[:2] + (-1,)))


FILTER1D = Op("filter1d_narrow", _filter1d_fn)


def filter1d_narrow(x: Any, f: Any) -> Expression:
    """Narrow 1-D convolution of x (n, m) with filters f (n, k) or (n, k, o):
    y[o, j] = Σ_i Σ_t x[i, j + t] · f[i, t, o], of dims (o, m - k + 1) (o = 1 for a
    2-D f)."""
    e, fe = expr(x, "filter1d_narrow"), expr(f, "filter1d_narrow")
    if len(e.dims) != 2 or len(fe.dims) not in (2, 3) or fe.dims[0] != e.dims[0] or fe.dims[1] > e.dims[1]:
        raise ValueError(f"dy.filter1d_narrow: expected x of dims (n, m) and f of dims (n, k) or (n, k, o), k <= m; "
                         f"given x dims {e.dims}, f dims {fe.dims}.")
    return node(FILTER1D, [e, fe])


def _kmh_fn(n: int, x: Any) -> Any:
    m = x.shape[1] - n + 1
    return sum(x[:, t:t + m] for t in range(n))


KMH_NGRAM = Op("kmh_ngram", _kmh_fn)


def kmh_ngram(x: Any, n: int) -> Expression:
    """The sums of n consecutive columns of x (d, L): (d, L - n + 1)."""
    e = expr(x, "kmh_ngram")
    if len(e.dims) != 2 or not isinstance(n, numbers.Integral) or not 1 <= n <= e.dims[1]:
        raise ValueError(f"dy.kmh_ngram: expected a matrix (d, L) and n in 1..L; given dims {e.dims}, n={n!r}.")
    return node(KMH_NGRAM, [e], static=int(n))
