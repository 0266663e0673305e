"""DyNet 2.1.2's less common operations on expressions, on `_ops`' node constructor:
moments and standard deviations, log-sum-exp and cumulative sums along a dimension,
element-wise max/min over the batch, gradient scaling, argmax, more losses, small linear
algebra, pooling, dropout variants, tensor contractions, one-hot inputs and aliases.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._devices import check_device
from ._graph import Expression
from ._loss_ops import dropout_rate, hinge, noise_key, same_dims
from ._ops import (
    Op,
    as_scalar,
    dims_arg,
    dims_shape,
    expr,
    float_array,
    getitem,
    host_rng,
    input_leaf,
    is_number,
    node,
    pickrange,
    reshape,
    zeros,
)

# -- DyNet's less common operations ---------------------------------------------------------------
# Names DyNet 2.1.2 has that programs meet less often: moments and standard deviations,
# log-sum-exp and cumulative sums along a dimension, element-wise max/min, gradient scaling,
# argmax, more losses, small linear algebra, pooling, dropout variants, aliases.

def _dim_list(where: str, x: Expression, d: Any) -> tuple[int, ...]:
    ds: tuple = (d,) if isinstance(d, numbers.Integral) else tuple(d)
    if not ds or len(set(ds)) != len(ds) or any(not isinstance(k, numbers.Integral) or not 0 <= int(k) < len(x.dims)
                                                for k in ds):
        raise ValueError(f"dy.{where}: d must be distinct dimensions of dims {x.dims}; given {d!r}.")
    return tuple(sorted(int(k) for k in ds))


def _reduced_axes(static, a) -> tuple:
    axes, _, _, batched, reduce_batch = static
    off = 1 if batched else 0
    return tuple(k + off for k in axes) + ((0,) if reduce_batch and batched else ())


def _at_least_1(out, static):
    """A reduction down to a scalar per batch element has DyNet's dims (1,)."""
    kept_batch = static[3] and not static[4]
    return out if out.ndim > (1 if kept_batch else 0) else out.reshape(out.shape + (1,))


def _moment_fn(static, a):
    _, r, denom, _, _ = static
    full = _reduced_axes(static, a)
    return _at_least_1(jnp.sum(a ** r, axis=full) / denom, static)


def _std_fn(static, a):
    denom = static[2]
    full = _reduced_axes(static, a)
    mu = jnp.mean(a, axis=full, keepdims=True)
    return _at_least_1(jnp.sqrt(jnp.sum(jnp.square(a - mu), axis=full) / denom), static)


# static: (the dims reduced, the order r (moments), the divisor, batched?, the batch reduced?)
MOMENT = Op("moment", _moment_fn, batch_level=True)
STD = Op("std", _std_fn, batch_level=True)


def _reduce(op: Op, where: str, e: Expression, axes: tuple, r: int | None, b: bool, n: int) -> Expression:
    if not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"dy.{where}: n must be an int ≥ 0; given {n!r}.")
    count = math.prod(e.dims[k] for k in axes) * (e.batch if b else 1)
    return node(op, [e], static=(axes, r, float(n or count), e.batch > 1, bool(b)), batch=1 if b else e.batch,
                where=where)


def moment_elems(x: Any, r: int) -> Expression:
    """The r-th moment of all elements, mean(x**r) (per batch element)."""
    e = expr(x, "moment_elems")
    return _reduce(MOMENT, "moment_elems", e, tuple(range(len(e.dims))), _order("moment_elems", r), False, 0)


def moment_dim(x: Any, d: Any, r: int, b: bool = False, n: int = 0) -> Expression:
    """The r-th moment along dimensions d (and the batch, with b); n, if not 0, divides the
    sum instead of the number of elements (for masking)."""
    e = expr(x, "moment_dim")
    return _reduce(MOMENT, "moment_dim", e, _dim_list("moment_dim", e, d), _order("moment_dim", r), b, n)


def moment_batches(x: Any, r: int) -> Expression:
    e = expr(x, "moment_batches")
    return _reduce(MOMENT, "moment_batches", e, (), _order("moment_batches", r), True, 0)


def std_elems(x: Any) -> Expression:
    """The standard deviation of all elements, sqrt(mean((x − mean(x))²)) (per batch element)."""
    e = expr(x, "std_elems")
    return _reduce(STD, "std_elems", e, tuple(range(len(e.dims))), None, False, 0)


def std_dim(x: Any, d: Any, b: bool = False, n: int = 0) -> Expression:
    e = expr(x, "std_dim")
    return _reduce(STD, "std_dim", e, _dim_list("std_dim", e, d), None, b, n)


def std_batches(x: Any) -> Expression:
    return _reduce(STD, "std_batches", expr(x, "std_batches"), (), None, True, 0)


def _order(where: str, r: Any) -> int:
    if not isinstance(r, numbers.Integral) or r < 1:
        raise ValueError(f"dy.{where}: r must be an int ≥ 1; given {r!r}.")
    return int(r)


def _lse_dim_fn(static, a):
    out = jax.nn.logsumexp(a, axis=static)
    return out if out.ndim else out.reshape((1,))


LSE_DIM = Op("logsumexp_dim", _lse_dim_fn)
CUMSUM = Op("cumsum", lambda s, a: jnp.cumsum(a, axis=s))


def logsumexp_dim(x: Any, d: int = 0) -> Expression:
    e = expr(x, "logsumexp_dim")
    return node(LSE_DIM, [e], static=_dim_list("logsumexp_dim", e, d)[0])


def cumsum(x: Any, d: int = 0) -> Expression:
    """y_i = Σ_{j ≤ i} x_j along dimension d."""
    e = expr(x, "cumsum")
    return node(CUMSUM, [e], static=_dim_list("cumsum", e, d)[0])


BMAX = Op("bmax", lambda s, a, b: jnp.maximum(a, b))
BMIN = Op("bmin", lambda s, a, b: jnp.minimum(a, b))


def bmax(x: Any, y: Any) -> Expression:
    """The element-wise maximum."""
    return node(BMAX, same_dims("bmax", x, y))


def bmin(x: Any, y: Any) -> Expression:
    """The element-wise minimum."""
    return node(BMIN, same_dims("bmin", x, y))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _scaled(lambd, a):
    return a


_scaled.defvjp(lambda lambd, a: (a, None), lambda lambd, _, g: (lambd * g,))
SCALE_GRADIENT = Op("scale_gradient", lambda s, a: _scaled(s, a))


def scale_gradient(x: Any, lambd: float = 1.0) -> Expression:
    """The identity forward; backward multiplies the gradient by lambd."""
    if not is_number(lambd):
        raise ValueError(f"dy.scale_gradient: lambd must be a number; given {lambd!r}.")
    return node(SCALE_GRADIENT, [expr(x, "scale_gradient")], static=float(lambd))


def _with_gradient(mode: str, a: Any, value: Any) -> Any:
    """`value` forward; backward, DyNet's `gradient_mode`: zero ("zero_gradient") or the
    identity's, as if `a` had been returned ("straight_through_gradient")."""
    if mode == "straight_through_gradient":
        return a + jax.lax.stop_gradient(value - a)
    return jax.lax.stop_gradient(value)


def _argmax_fn(static, a):
    return _with_gradient(static, a, jax.nn.one_hot(jnp.argmax(a), a.shape[0], dtype=a.dtype))


ARGMAX = Op("argmax", _argmax_fn)


def _gradient_mode(where: str, mode: Any) -> str:
    if mode not in ("zero_gradient", "straight_through_gradient"):
        raise ValueError(f"dy.{where}: gradient_mode must be 'zero_gradient' or 'straight_through_gradient'; "
                         f"given {mode!r}.")
    return mode


def argmax(x: Any, gradient_mode: str = "zero_gradient") -> Expression:
    """The one-hot vector of x's largest entry (the first, on ties). Its gradient is zero
    ("zero_gradient") or the identity's ("straight_through_gradient", Bengio et al. 2013)."""
    e = expr(x, "argmax")
    _gradient_mode("argmax", gradient_mode)
    if len(e.dims) != 1:
        raise ValueError(f"dy.argmax: expected a vector; given dims {e.dims}.")
    return node(ARGMAX, [e], static=gradient_mode)


PAIRWISE_RANK = Op("pairwise_rank_loss", lambda s, a, b: jnp.maximum(s - a + b, 0.0))
def _poisson_fn(static, a, y):
    y = y.astype(a.dtype)
    return jnp.exp(a) + jax.scipy.special.gammaln(y + 1.0) - a * y


POISSON = Op("poisson_loss", _poisson_fn)


def pairwise_rank_loss(x: Any, y: Any, m: float = 1.0) -> Expression:
    """max(m − x_i + y_i, 0) element by element (DyNet sums it only when asked)."""
    if not is_number(m):
        raise ValueError(f"dy.pairwise_rank_loss: m must be a number; given {m!r}.")
    return node(PAIRWISE_RANK, same_dims("pairwise_rank_loss", x, y), static=float(m))


def poisson_loss(x: Any, y: int) -> Expression:
    """−log Poisson(y | λ = exp(x)) = exp(x) − x·y + log(y!), for a one-element x."""
    e = expr(x, "poisson_loss")
    if int(np.prod(e.dims)) != 1:
        raise ValueError(f"dy.poisson_loss: x must have one element (the log of the rate); given dims {e.dims}.")
    if not isinstance(y, numbers.Integral) or y < 0:
        raise ValueError(f"dy.poisson_loss: y must be a count (an int ≥ 0); given {y!r}.")
    return node(POISSON, [e], [np.asarray(float(y), np.float32)])


def _hinge_dim_fn(static, a, ids):
    d, m, per_element = static

    def one(x, idx):
        xt = x if d == 0 else x.T  # columns are the candidates' scores: (candidates, n)
        correct = jnp.take_along_axis(xt, idx[None, :], axis=0)
        loss = jnp.maximum(xt + m - correct, 0.0)
        return jnp.sum(jnp.where(jnp.arange(xt.shape[0], dtype=idx.dtype)[:, None] == idx[None, :], 0.0, loss),
                       axis=0)

    if a.ndim == 3:  # a minibatch
        return jax.vmap(one, in_axes=(0, 0 if per_element else None))(a, ids)
    return one(a, ids)


HINGE_DIM = Op("hinge_dim", _hinge_dim_fn, batch_level=True)


def hinge_dim(x: Any, indices: Any, d: int = 0, m: float = 1.0) -> Expression:
    """The hinge loss of every column (d=0; of every row, d=1) of a matrix of scores, with
    `indices` the correct row (column) of each; a list per batch element for a minibatch."""
    e = expr(x, "hinge_dim")
    if len(e.dims) != 2 or d not in (0, 1):
        raise ValueError(f"dy.hinge_dim: expected a matrix and d in (0, 1); given dims {e.dims} and d={d!r}.")
    ids = np.asarray(indices)
    n, k = e.dims[1 - d], e.dims[d]
    per_element = ids.ndim == 2
    want = (e.batch, n) if per_element else (n,)
    if ids.dtype.kind not in "iu" or ids.shape != want or (ids.size and (ids.min() < 0 or ids.max() >= k)):
        raise ValueError(f"dy.hinge_dim: indices must be {n} ints in 0..{k - 1} (one per "
                         f"{'column' if d == 0 else 'row'}{', per batch element' if e.batch > 1 else ''}); "
                         f"given {indices!r:.60}.")
    return node(HINGE_DIM, [e], [ids.astype(np.int32)], static=(int(d), float(m), per_element))


TRACE_OF_PRODUCT = Op("trace_of_product", lambda s, a, b: as_scalar(jnp.sum(a * b)))
INVERSE = Op("inverse", lambda s, a: jnp.linalg.inv(a))
LOGDET = Op("logdet", lambda s, a: as_scalar(jnp.linalg.slogdet(a)[1]))


def trace_of_product(x: Any, y: Any) -> Expression:
    """trace(x · yᵀ), as DyNet computes it."""
    return node(TRACE_OF_PRODUCT, same_dims("trace_of_product", x, y))


def _square(where: str, x: Any) -> Expression:
    e = expr(x, where)
    if len(e.dims) != 2 or e.dims[0] != e.dims[1]:
        raise ValueError(f"dy.{where}: expected a square matrix; given dims {e.dims}.")
    return e


def inverse(x: Any) -> Expression:
    return node(INVERSE, [_square("inverse", x)])


def logdet(x: Any) -> Expression:
    """log |det x| (the log-determinant of a positive-definite matrix)."""
    return node(LOGDET, [_square("logdet", x)])


WEIGHT_NORM = Op("weight_norm", lambda s, w, g: w * (g.reshape(()) / jnp.sqrt(jnp.sum(w * w))))


def weight_norm(w: Any, g: Any) -> Expression:
    """g · w / ‖w‖ (Salimans & Kingma 2016); g has one element."""
    ew, eg = expr(w, "weight_norm"), expr(g, "weight_norm")
    if int(np.prod(eg.dims)) != 1:
        raise ValueError(f"dy.weight_norm: g must have one element; given dims {eg.dims}.")
    return node(WEIGHT_NORM, [ew, eg])


def _circ_fn(static, u, v):
    fu, fv = jnp.fft.fft(u), jnp.fft.fft(v)
    return jnp.real(jnp.fft.ifft((jnp.conj(fu) if static else fu) * fv)).astype(u.dtype)


CIRC = Op("circ_conv", _circ_fn)


def _vectors(where: str, u: Any, v: Any) -> list[Expression]:
    es = same_dims(where, u, v)
    if len(es[0].dims) != 1:
        raise ValueError(f"dy.{where}: expected two vectors; given dims {es[0].dims}.")
    return es


def circ_conv(u: Any, v: Any) -> Expression:
    """y_i = Σ_j u_j · v_{(i − j) mod n}."""
    return node(CIRC, _vectors("circ_conv", u, v), static=False)


def circ_corr(u: Any, v: Any) -> Expression:
    """y_i = Σ_j u_j · v_{(i + j) mod n}."""
    return node(CIRC, _vectors("circ_corr", u, v), static=True)


@jax.custom_vjp
def _csoftmax(z, u):
    return _csoftmax_fwd(z, u)[0]


def _csoftmax_fwd(z, u):
    # DyNet's algorithm (Martins and Kreutzer 2017): the softmax over the coordinates still
    # free, scaled to the mass the capped ones left; a coordinate over its bound is capped
    # at it; again until none is over (at most n rounds, each caps one or more).
    q = jnp.exp(z - jnp.max(z))

    def share(free, mass):
        return jnp.where(free, q * (1 - mass) / jnp.sum(jnp.where(free, q, 0.0)), u)

    def round_(st):
        free, mass, _ = st
        over = free & (share(free, mass) > u)
        return free & ~over, mass + jnp.sum(jnp.where(over, u, 0.0)), jnp.any(over)

    free, mass, _ = jax.lax.while_loop(lambda st: st[2], round_,
                                       (jnp.ones(z.shape, bool), jnp.zeros((), z.dtype), jnp.array(True)))
    p = share(free, mass)
    return p, (p, free, mass)


def _csoftmax_bwd(res, d):
    # DyNet's backward: the free coordinates get p·(d − d̂) as the scores' gradient, the capped
    # ones d − d̂ as their bounds', with d̂ = Σ_free p·d / (1 − mass)
    p, free, mass = res
    dhat = jnp.sum(jnp.where(free, p * d, 0.0)) / (1 - mass)
    return jnp.where(free, p * (d - dhat), 0.0), jnp.where(free, 0.0, d - dhat)


_csoftmax.defvjp(_csoftmax_fwd, _csoftmax_bwd)
CONSTRAINED_SOFTMAX = Op("constrained_softmax", lambda s, z, u: _csoftmax(z, u))


def constrained_softmax(x: Any, y: Any) -> Expression:
    """DyNet's constrained softmax (Martins and Kreutzer, 2017): the softmax of the scores `x`
    with upper bounds `y` on the probabilities (a coordinate whose share would pass its bound
    gets the bound, the rest share what is left as a softmax). `x` and `y`: vectors of the
    same size; the bounds must sum to at least 1."""
    return node(CONSTRAINED_SOFTMAX, _vectors("constrained_softmax", x, y))


_ROUNDING = {"round": jnp.round, "ceil": jnp.ceil, "floor": jnp.floor}


def _rounding_fn(static, a):
    name, mode = static
    return _with_gradient(mode, a, _ROUNDING[name](a))


ROUNDING = Op("rounding", _rounding_fn)


def _rounding(name: str) -> Any:
    def f(x: Any, gradient_mode: str = "zero_gradient") -> Expression:
        return node(ROUNDING, [expr(x, name)], static=(name, _gradient_mode(name, gradient_mode)), where=name)
    f.__name__ = name
    f.__doc__ = (f"DyNet's {name}(x, gradient_mode='zero_gradient') elementwise: its gradient is zero, or the "
                 f"identity's with 'straight_through_gradient'.")
    return f


round_, ceil, floor = _rounding("round"), _rounding("ceil"), _rounding("floor")


FOLD_ROWS = Op("fold_rows", lambda s, a: a.reshape((a.shape[0] // s, s) + a.shape[1:]).sum(axis=1))


def fold_rows(x: Any, nrows: int = 2) -> Expression:
    """Sums every `nrows` consecutive rows: (r, c) → (r / nrows, c)."""
    e = expr(x, "fold_rows")
    rows = (e.dims + (0,))[0]
    if len(e.dims) > 2 or not isinstance(nrows, numbers.Integral) or nrows < 1 or rows % nrows:
        raise ValueError(f"dy.fold_rows: nrows must divide the rows of a vector or matrix; given dims {e.dims} "
                         f"and nrows={nrows!r}.")
    if len(e.dims) == 1:
        e = reshape(e, (e.dims[0], 1))
    return node(FOLD_ROWS, [e], static=int(nrows))


def _kmax_fn(static, a):
    k, d = static
    a2 = jnp.moveaxis(a, d, -1)
    top = jnp.sort(jax.lax.top_k(a2, k)[1], axis=-1)  # the k largest, in their original order
    return jnp.moveaxis(jnp.take_along_axis(a2, top, axis=-1), -1, d)


KMAX = Op("kmax_pooling", _kmax_fn)


def kmax_pooling(x: Any, k: int, d: int = 1) -> Expression:
    """The k largest values along dimension d, in their original order."""
    e = expr(x, "kmax_pooling")
    dd = _dim_list("kmax_pooling", e, d)[0]
    if not isinstance(k, numbers.Integral) or not 1 <= k <= e.dims[dd]:
        raise ValueError(f"dy.kmax_pooling: k must be an int in 1..{e.dims[dd]}; given {k!r}.")
    return node(KMAX, [e], static=(int(k), dd))


def _dropout_dim_fn(static, a, key):
    p, axes = static
    shape = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
    keep = jax.random.bernoulli(jax.random.wrap_key_data(key), 1.0 - p, shape)
    return jnp.where(keep, a / (1.0 - p), 0.0)


DROPOUT_SHARED = Op("dropout_dim", _dropout_dim_fn, batch_level=True)


def dropout_dim(x: Any, d: int, p: float) -> Expression:
    """Dropout whose mask is shared along dimension d (drops whole rows or columns), per
    batch element."""
    e, p = expr(x, "dropout_dim"), dropout_rate("dropout_dim", p)
    dd = _dim_list("dropout_dim", e, d)[0] + (1 if e.batch > 1 else 0)
    return e if p == 0.0 else node(DROPOUT_SHARED, [e], [noise_key()], static=(p, (dd,)))


def dropout_batch(x: Any, p: float) -> Expression:
    """Dropout of whole batch elements."""
    e, p = expr(x, "dropout_batch"), dropout_rate("dropout_batch", p)
    axes = tuple(range(1 if e.batch > 1 else 0, len(e.dims) + (1 if e.batch > 1 else 0)))
    return e if p == 0.0 else node(DROPOUT_SHARED, [e], [noise_key()], static=(p, axes))


def random_gumbel(dim: Any, mu: float = 0.0, beta: float = 1.0, batch_size: int = 1) -> Expression:
    d = dims_arg("random_gumbel", dim)
    a = host_rng().gumbel(mu, beta, dims_shape(d, batch_size)).astype(np.float32)
    return input_leaf(a, batch_size)


def zeroes(dim: Any, batch_size: int = 1) -> Expression:
    return zeros(dim, batch_size)


def pick_range(x: Any, s: int, e: int, d: int = 0) -> Expression:
    return pickrange(x, s, e, d)


def strided_select(x: Any, strides: Sequence[int], range_from: Sequence[int], range_to: Sequence[int]) -> Expression:
    """x[from[0]:to[0]:strides[0], ...]; a list may be shorter than the dims (the rest whole)
    or one longer (the batch)."""
    e = expr(x, "strided_select")
    n = max(len(strides), len(range_from), len(range_to))
    sizes = e.dims + (e.batch,)
    if n > len(sizes):
        raise ValueError(f"dy.strided_select: at most {len(sizes)} entries (dims {e.dims}, then the batch); given {n}.")
    index = tuple(slice(range_from[i] if i < len(range_from) else 0, range_to[i] if i < len(range_to) else sizes[i],
                        strides[i] if i < len(strides) else 1) for i in range(n))
    return getitem(e, index) if index else e


def inputMatrix(v: Sequence[float], d: Sequence[int]) -> Expression:
    """DyNet's (deprecated) matrix from a flat list of values, column-major."""
    a = float_array("inputMatrix", v)
    dims = dims_arg("inputMatrix", d)
    if a.ndim != 1 or a.size != int(np.prod(dims)):
        raise ValueError(f"dy.inputMatrix: expected {int(np.prod(dims))} values for dims {dims}; "
                         f"given shape {a.shape}.")
    return input_leaf(np.ascontiguousarray(a.reshape(dims, order="F")))


# -- tensor contractions, one-hot inputs, the batched hinge ----------------------------------

CONTRACT_1D = Op("contract3d_1d", lambda s, x, y, *b: jnp.einsum("ijk,k->ij", x, y) + (b[0] if b else 0.0))
CONTRACT_1D_1D = Op("contract3d_1d_1d",
                    lambda s, x, y, z, *b: jnp.einsum("ijk,k,j->i", x, y, z) + (b[0] if b else 0.0))


def _contract(where: str, x: Any, vectors: Sequence[Any], b: Any) -> list[Expression]:
    e = expr(x, where)
    vs = [expr(v, where) for v in vectors]
    if len(e.dims) != 3:
        raise ValueError(f"dy.{where}: x must be a rank-3 tensor; given dims {e.dims}.")
    want = [(e.dims[2],), (e.dims[1],)][:len(vs)]
    out = (e.dims[0], e.dims[1]) if len(vs) == 1 else (e.dims[0],)
    if [v.dims for v in vs] != want:
        raise ValueError(f"dy.{where}: for x of dims {e.dims} the vectors must have dims {want}; given "
                         f"{[v.dims for v in vs]}.")
    args = [e, *vs]
    if b is not None:
        be = expr(b, where)
        if be.dims != out:
            raise ValueError(f"dy.{where}: b must have the output's dims {out}; given {be.dims}.")
        args.append(be)
    return args


def contract3d_1d(x: Any, y: Any) -> Expression:
    """z[i, j] = Σ_k x[i, j, k] · y[k]."""
    return node(CONTRACT_1D, _contract("contract3d_1d", x, [y], None))


def contract3d_1d_bias(x: Any, y: Any, b: Any) -> Expression:
    """z[i, j] = Σ_k x[i, j, k] · y[k] + b[i, j]."""
    return node(CONTRACT_1D, _contract("contract3d_1d_bias", x, [y], b))


def contract3d_1d_1d(x: Any, y: Any, z: Any) -> Expression:
    """w[i] = Σ_j Σ_k x[i, j, k] · y[k] · z[j]."""
    return node(CONTRACT_1D_1D, _contract("contract3d_1d_1d", x, [y, z], None))


def contract3d_1d_1d_bias(x: Any, y: Any, z: Any, b: Any) -> Expression:
    """w[i] = Σ_j Σ_k x[i, j, k] · y[k] · z[j] + b[i]."""
    return node(CONTRACT_1D_1D, _contract("contract3d_1d_1d_bias", x, [y, z], b))


def one_hot(d: int, idx: Any, device: str = "") -> Expression:
    """A one-hot vector of dimension d (1 at `idx`); a list of indices: a minibatch, one
    vector per index."""
    check_device("dy.one_hot", device)
    ids = np.asarray(idx)
    if (not isinstance(d, numbers.Integral) or d < 1 or ids.dtype.kind not in "iu" or ids.ndim > 1
            or (ids.size and (ids.min() < 0 or ids.max() >= d))):
        raise ValueError(f"dy.one_hot: expected a dimension d >= 1 and an int (or a list of ints) in 0..d-1; "
                         f"given d={d!r}, idx={idx!r:.40}.")
    if ids.ndim == 0:
        return input_leaf(np.eye(d, dtype=np.float32)[int(ids)])
    rows = np.eye(d, dtype=np.float32)[ids]
    return input_leaf(rows, len(ids)) if len(ids) > 1 else input_leaf(rows[0])


def hinge_batch(x: Any, indices: Any, m: float = 1.0) -> Expression:
    """The hinge loss of a minibatch of score vectors, `indices` the correct one per batch
    element: per element Σ_{j ≠ i} max(0, x_j − x_i + m)."""
    e = expr(x, "hinge_batch")
    ids = np.asarray(indices)
    if len(e.dims) != 1 or ids.dtype.kind not in "iu" or ids.shape != (e.batch,):
        raise ValueError(f"dy.hinge_batch: expected a minibatch of vectors and one index per batch element "
                         f"({e.batch}); given dims {e.dims} and indices {indices!r:.40}.")
    if e.batch == 1:
        return hinge(e, int(ids[0]), m)
    return hinge_dim(reshape(e, (e.dims[0], 1), e.batch), ids.reshape(-1, 1), 0, m)
