"""DyNet's operations on expressions: each is an `Op` (a pure function of one example's
arrays, in DyNet's dimensions) and a constructor that checks its arguments and adds a node.

Conventions: a DyNet vector of size d has dims `(d,)` and is a column (`(d, 1)` as a
matrix); a matrix has dims `(rows, cols)`; a scalar has dims `(1,)`. Operations are
written for one batch element; the kernel cache `vmap`s them over DyNet's minibatch axis,
so a batch of one broadcasts against a batch of B as in DyNet. Operations that act across
the batch (`sum_batches`, `lookup_batch`, `pick_batch_elem`, `reshape` to a batch, ...) are
`batch_level`: their function receives the whole arrays.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._batching import pow2
from .._random import seeding
from ._graph import CURRENT, Expression, GraphError, why_stale
from ._kernels import Sig, node_function


class Op:
    """An operation: its name and function `fn(static, *args, *consts)`.

    batch_level: `fn` sees whole arrays (batch axis first when batched) instead of one
      example's; view: the node is a slot of its argument's tuple value (no kernel);
    recurrent: `static -> (state_pos, x_pos)` for steps that may run as one scan per chain;
    scan: `(static, fixed_args, init, xs) -> every step's state` for a whole chain at once,
      with a batch axis (chains that share their parameters run as one minibatch);
    leaf_param: for parameter leaves, how a gradient reaches the parameter;
    sparse_table: for lookups (argument 0 the table, constant 0 the ids): `static -> bool`,
      whether the gradient flows; it reaches the table as rows (see `_schedule`);
    stacked: for n-ary reductions, `(static, rows) -> fn(static, *rows)` on the arguments
      stacked along a new axis 0 (one reduction instead of n - 1 binary operations).
    """

    __slots__ = ("name", "fn", "batch_level", "view", "recurrent", "scan", "leaf_param", "sparse_table", "stacked")

    def __init__(self, name: str, fn: Callable | None = None, *, batch_level: bool = False, view: bool = False,
                 recurrent: Callable | None = None, scan: Callable | None = None,
                 leaf_param: Callable | None = None, sparse_table: Callable | None = None,
                 stacked: Callable | None = None):
        self.name, self.fn, self.batch_level, self.view = name, fn, batch_level, view
        self.recurrent, self.scan, self.leaf_param = recurrent, scan, leaf_param
        self.sparse_table, self.stacked = sparse_table, stacked

    def __repr__(self) -> str:
        return f"Op({self.name})"


def _dims_shape(dims: tuple, batch: int) -> tuple:
    return dims if batch == 1 else (batch,) + dims


def _infer(sig: Sig) -> tuple:
    """(dims, dtype) of a node's output, from its signature. A tuple value (a recurrent
    state) has a dims tuple per slot."""
    def abstract(d, b, t):
        if d and isinstance(d[0], tuple):  # a state: one array per slot
            return tuple(jax.ShapeDtypeStruct(_dims_shape(x, b), np.dtype(t)) for x in d)
        return jax.ShapeDtypeStruct(_dims_shape(d, b), np.dtype(t))

    args = [abstract(d, b, t) for d, b, t in sig.args]
    consts = [jax.ShapeDtypeStruct(s, np.dtype(t)) for s, t in sig.consts]
    out = jax.eval_shape(node_function(sig), *args, *consts)
    cut = 1 if sig.batch > 1 else 0
    if isinstance(out, tuple):
        return tuple(tuple(o.shape[cut:]) for o in out), out[0].dtype
    return tuple(out.shape[cut:]), out.dtype


# signature tuple -> (interned Sig, output dims, output dtype)
_SIGS: dict[tuple, tuple] = {}


def node(op: Op, args: Sequence[Expression], consts: Sequence[Any] = (), static: Any = None, *,
         where: str | None = None, batch: int | None = None) -> Expression:
    """Adds a node computing `op` to the current graph."""
    g = CURRENT.graph
    args = tuple(args)
    version = g.version
    b_max = 1
    const = True
    parts = []
    for a in args:  # one pass: the batch, staleness, constness, and the signature's parts
        if a.gv != version:
            raise GraphError(f"dy.{where or op.name}: an argument {why_stale(a.gv, version)}.")
        b = a.batch
        if b > 1:
            if b_max > 1 and b != b_max and batch is None:
                raise ValueError(f"dy.{where or op.name}: the arguments have batch sizes {b_max} and {b}; "
                                 f"DyNet combines a batch of B only with a batch of B or of 1.")
            b_max = b
        const = const and a.const
        parts.append(a.part)
    if batch is None:
        batch = b_max
    t = (op, static, tuple(parts), tuple([(c.shape, c.dtype.str) for c in consts]) if consts else (), batch)
    hit = _SIGS.get(t)
    if hit is None:
        sig = Sig(t)
        try:
            dims, dtype = _infer(sig)
        except (TypeError, ValueError) as e:
            shown = ", ".join(f"dims {a.dims} batch {a.batch}" for a in args)
            raise ValueError(f"dy.{where or op.name}: cannot apply to arguments with {shown}: {e}") from None
        hit = _SIGS[t] = (sig, dims, dtype)
    sig, dims, dtype = hit
    return Expression(g, op, args, tuple(consts), static, dims, batch, sig, const=const, dtype=dtype)


# -- leaves ---------------------------------------------------------------------------------

INPUT = Op("input")


def _accumulate(n: Expression, ct: Any) -> None:
    if not n.const:
        n.extra.accumulate_grad(ct)


PARAM = Op("parameter", leaf_param=_accumulate)


def _float_array(where: str, arr: Any) -> np.ndarray:
    if isinstance(arr, Expression):
        raise TypeError(f"dy.{where}: given an Expression; it is already in the graph.")
    try:
        a = np.asarray(arr)
    except (TypeError, ValueError) as e:
        raise TypeError(f"dy.{where}: expected numbers (a list or an array); given {type(arr).__name__} ({e}).") \
            from None
    if a.dtype.kind not in "fiub":
        raise TypeError(f"dy.{where}: expected numbers; given an array of dtype {a.dtype}.")
    keep64 = a.dtype == np.float64 and jax.config.jax_enable_x64  # pyright: ignore[reportAttributeAccessIssue]
    return a if keep64 else a.astype(np.float32)


def input_leaf(arr: np.ndarray, batch: int = 1) -> Expression:
    dims = tuple(arr.shape[1:]) if batch > 1 else tuple(arr.shape)
    if dims == ():
        dims, arr = (1,), arr.reshape(arr.shape + (1,))
    return Expression(CURRENT.graph, INPUT, (), (), None, dims, batch, None, value=arr, const=True)


def inputTensor(arr: Any, batched: bool = False) -> Expression:
    """A constant from an array in DyNet's layout; `batched=True`: the **last** axis is
    the batch. A 0-d array is a scalar (dims (1,))."""
    if isinstance(arr, list) and arr and all(isinstance(x, np.ndarray) for x in arr):
        # DyNet: a list of arrays is a minibatch, one element each
        a = np.stack([_float_array("inputTensor", x) for x in arr])
        if a.ndim == 1:
            a = a[:, None]
        return input_leaf(a, a.shape[0]) if a.shape[0] > 1 else input_leaf(a[0])
    a = _float_array("inputTensor", arr)
    if batched:
        if a.ndim < 1:
            raise ValueError("dy.inputTensor: batched=True needs at least one axis (the batch, last).")
        b = a.shape[-1]
        a = np.moveaxis(a, -1, 0)
        if a.ndim == 1:
            a = a[:, None]
        return input_leaf(np.ascontiguousarray(a), b) if b > 1 else input_leaf(a[0])
    return input_leaf(a)


def sparse_inputTensor(idxs: Any, values: Any, shape: Sequence[int], batched: bool = False,
                       defval: float = 0.0) -> Expression:
    """DyNet's sparse input: an array of `shape` filled with `defval`, with `values` at the
    coordinates `idxs` (one index list per dimension); `batched=True`: the last is the batch."""
    a = np.full(tuple(int(d) for d in shape), defval, np.float32)
    try:
        a[tuple(np.asarray(i, np.int64) for i in idxs)] = np.asarray(values, np.float32)
    except (IndexError, ValueError) as e:
        raise ValueError(f"dy.sparse_inputTensor: the indices do not fit shape {tuple(shape)}: {e}") from None
    return inputTensor(a, batched)


def inputVector(v: Sequence[float]) -> Expression:
    a = _float_array("inputVector", v)
    if a.ndim != 1:
        raise ValueError(f"dy.inputVector: expected a flat list of numbers; given shape {a.shape}.")
    return input_leaf(a)


def scalarInput(value: float) -> Expression:
    return input_leaf(_float_array("scalarInput", [value]))


def vecInput(dim: int) -> Expression:
    return input_leaf(np.zeros((int(dim),), np.float32))


def matInput(d1: int, d2: int) -> Expression:
    return input_leaf(np.zeros((int(d1), int(d2)), np.float32))


def _dims(where: str, dim: Any) -> tuple:
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    if not dims or any(not isinstance(d, numbers.Integral) or d < 1 for d in dims):
        raise ValueError(f"dy.{where}: dims must be positive ints; given {dim!r}.")
    return tuple(int(d) for d in dims)


def constant(dim: Any, val: float, batch_size: int = 1) -> Expression:
    d = _dims("constant", dim)
    return input_leaf(np.full(_dims_shape(d, batch_size), val, np.float32), batch_size)


def zeros(dim: Any, batch_size: int = 1) -> Expression:
    return constant(dim, 0.0, batch_size)


def ones(dim: Any, batch_size: int = 1) -> Expression:
    return constant(dim, 1.0, batch_size)


def _host_rng() -> np.random.Generator:
    """This thread's host RNG (dropout and noise keys, random inputs): seeded with 0, and
    again with each `dy.set_random_seed(seed)`."""
    times, seed = seeding()
    if CURRENT.rng is None or CURRENT.rng_seeding != times:
        CURRENT.rng = np.random.default_rng(0 if seed is None else seed)
        CURRENT.rng_seeding = times
    return CURRENT.rng


def random_normal(dim: Any, mean: float = 0.0, stddev: float = 1.0, batch_size: int = 1) -> Expression:
    d = _dims("random_normal", dim)
    a = _host_rng().normal(mean, stddev, _dims_shape(d, batch_size)).astype(np.float32)
    return input_leaf(a, batch_size)


def random_uniform(dim: Any, left: float, right: float, batch_size: int = 1) -> Expression:
    d = _dims("random_uniform", dim)
    return input_leaf(_host_rng().uniform(left, right, _dims_shape(d, batch_size)).astype(np.float32), batch_size)


def random_bernoulli(dim: Any, p: float, scale: float = 1.0, batch_size: int = 1) -> Expression:
    d = _dims("random_bernoulli", dim)
    a = (_host_rng().random(_dims_shape(d, batch_size)) < p).astype(np.float32) * scale
    return input_leaf(a, batch_size)


def parameter(p: Any, update: bool = True) -> Expression:
    """The leaf of parameter `p` in the current graph (one per graph and mode)."""
    g = CURRENT.graph
    key = (id(p), bool(update))
    n = g.params.get(key)
    if n is None:
        v = p.stored_value()
        n = Expression(g, PARAM, (), (), None, tuple(v.shape), 1, None, value=v, const=not update)
        n.extra = p
        g.params[key] = n
    return n


def const_parameter(p: Any) -> Expression:
    return parameter(p, update=False)


def _lookup_fn(static, table, i):
    row = table[i]
    return row if static else jax.lax.stop_gradient(row)


LOOKUP = Op("lookup", _lookup_fn, sparse_table=lambda static: bool(static))


def _lookup_batch_fn(static, table, ids):
    rows = table[ids]
    return rows if static[1] else jax.lax.stop_gradient(rows)


LOOKUP_BATCH = Op("lookup_batch", _lookup_batch_fn, batch_level=True, sparse_table=lambda static: bool(static[1]))


def _ids(where: str, p: Any, ids: Any) -> np.ndarray:
    if type(ids) is int and 0 <= ids < p.shape()[0]:  # one id, in range (most lookups)
        return np.array(ids, np.int32)
    a = np.asarray(ids)
    if a.dtype.kind not in "iu":
        raise TypeError(f"dy.{where}: ids must be integers; given dtype {a.dtype} ({ids!r:.60}).")
    a = a.astype(np.int32)
    n = p.shape()[0]
    if a.size and (a.min() < 0 or a.max() >= n):
        bad = int(a.min() if a.min() < 0 else a.max())
        raise IndexError(f"dy.{where}: id {bad} is out of range for {p.name()!r} with {n} rows (valid: 0..{n - 1}).")
    return a


def lookup(p: Any, index: Any, update: bool = True) -> Expression:
    """Row `index` of a lookup table: dims (d,) (or the row's dims)."""
    i = _ids("lookup", p, index)
    if i.ndim != 0:
        raise ValueError(f"dy.lookup: index must be one integer; given shape {i.shape} (use dy.lookup_batch).")
    return node(LOOKUP, [parameter(p)], [i], bool(update), where="lookup")


def lookup_batch(p: Any, indices: Any, update: bool = True) -> Expression:
    """Rows `indices` as a minibatch: dims (d,), batch size len(indices)."""
    i = _ids("lookup_batch", p, indices)
    if i.ndim != 1 or i.size == 0:
        raise ValueError(f"dy.lookup_batch: indices must be a non-empty list of ints; given shape {i.shape}.")
    if i.size == 1:
        return lookup(p, int(i[0]), update)
    return node(LOOKUP_BATCH, [parameter(p)], [i], ("batch", bool(update), int(i.size)), where="lookup_batch",
                batch=int(i.size))


# -- coercion ------------------------------------------------------------------------------

def is_param(x: Any) -> bool:
    return hasattr(x, "stored_value") and hasattr(x, "accumulate_grad")


def expr(x: Any, where: str) -> Expression:
    """An argument as an expression of the current graph: expressions as they are,
    parameters as their leaf; anything else is refused with a clear message."""
    if isinstance(x, Expression):
        return x
    if is_param(x):
        return parameter(x)
    if isinstance(x, np.ndarray):
        return _array_leaf(where, x)
    if isinstance(x, jax.Array):
        raise TypeError(f"dy.{where}: given a jax.Array where the graph needs an Expression. No gradient could "
                        f"flow through it into the parameters it came from, so it is refused; compute it in "
                        f"the graph, or make a constant of it with dy.inputTensor(np.asarray(x)).")
    raise TypeError(f"dy.{where}: expected an Expression (or Parameters, or a NumPy array as a constant); given "
                    f"{type(x).__name__} {x!r:.60}.")


def _array_leaf(where: str, x: Any) -> Expression:
    """A NumPy array met in a graph operation: a constant input of its shape (as
    `dy.inputTensor(x)`)."""
    if x.dtype.kind not in "fiub":
        raise TypeError(f"dy.{where}: an array used as a constant must hold numbers; given dtype {x.dtype}.")
    if x.dtype.kind != "f":
        x = np.asarray(x, np.float32)
    return input_leaf(x)


def exprs(xs: Any, where: str) -> list[Expression]:
    if isinstance(xs, Expression) or not hasattr(xs, "__iter__"):
        raise TypeError(f"dy.{where}: expected a list of expressions; given {type(xs).__name__}.")
    out = [expr(x, where) for x in xs]
    if not out:
        raise ValueError(f"dy.{where}: expected a non-empty list of expressions; given an empty one.")
    return out


def _number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) or (isinstance(x, (np.ndarray, np.generic))
                                                                       and np.ndim(x) == 0)


# -- arithmetic ----------------------------------------------------------------------------

def _col(a):  # DyNet's vector is a column
    return a.reshape(a.shape + (1,) * (2 - a.ndim)) if a.ndim < 2 else a


def _bcast_pair(a, b):
    n = max(a.ndim, b.ndim)
    return a.reshape(a.shape + (1,) * (n - a.ndim)), b.reshape(b.shape + (1,) * (n - b.ndim))


def _cwise(f):
    def fn(static, a, b):
        a2, b2 = _bcast_pair(a, b)
        return f(a2, b2)
    return fn


ADD = Op("add", _cwise(jnp.add))
SUB = Op("sub", _cwise(jnp.subtract))
CMULT = Op("cmult", _cwise(jnp.multiply))
CDIV = Op("cdiv", _cwise(jnp.divide))
NEG = Op("neg", lambda s, a: -a)
SCALE = Op("scale", lambda s, a, c: a * c)        # x * c; c a host scalar (a constant argument)
SHIFT = Op("shift", lambda s, a, c: a + c)        # x + c
RSUB = Op("rsub", lambda s, a, c: c - a)          # c - x
RDIV = Op("rdiv", lambda s, a, c: c / a)          # c / x


def _matmul_fn(static, a, b):
    if a.ndim == 2 and b.ndim == 1:
        # matrix · vector as vector · matrixᵀ: `vmap`ped over a group's vectors, the product
        # then comes out with the group's axis first, as the next stage takes it (W·x
        # came out transposed and was copied: measured 5.2 -> 3.0 ms forward for a
        # group of 256 · 10,212×128, 9.2 -> 7.9 ms its VJP)
        return b @ a.T
    out = _col(a) @ _col(b)
    return out[:, 0] if b.ndim == 1 else out


MATMUL = Op("matmul", _matmul_fn)


def _check_cwise(where: str, a: Expression, b: Expression) -> None:
    da, db = a.dims, b.dims
    n = max(len(da), len(db))
    pa, pb = da + (1,) * (n - len(da)), db + (1,) * (n - len(db))
    if any(x != y and x != 1 and y != 1 for x, y in zip(pa, pb)):
        raise ValueError(f"dy.{where}: dims {da} and {db} do not match (each dimension must be equal or 1).")


def _scalar_const(x: Any, like: Expression) -> np.ndarray:
    return np.asarray(x, like.dt)


def _with_number(x: Any, y: Any, where: str, left: Op, right: Op, right_value=lambda v: v) -> Expression | None:
    """`number OP expr` as `left(expr, number)`, `expr OP number` as `right(expr, f(number))`;
    None when neither side is a number."""
    if _number(x):
        e = expr(y, where)
        return node(left, [e], [_scalar_const(x, e)], where=where)
    if _number(y):
        e = expr(x, where)
        return node(right, [e], [_scalar_const(right_value(float(y)), e)], where=where)
    return None


def add(x: Any, y: Any) -> Expression:
    out = _with_number(x, y, "+", SHIFT, SHIFT)
    if out is not None:
        return out
    a, b = _operand(x, "+"), _operand(y, "+")
    _check_cwise("+", a, b)
    return node(ADD, [a, b], where="+")


def sub(x: Any, y: Any) -> Expression:
    out = _with_number(x, y, "-", RSUB, SHIFT, lambda v: -v)
    if out is not None:
        return out
    a, b = _operand(x, "-"), _operand(y, "-")
    _check_cwise("-", a, b)
    return node(SUB, [a, b], where="-")


def _operand(x: Any, where: str) -> Expression:
    if isinstance(x, (Expression, np.ndarray, jax.Array)) or is_param(x):
        return expr(x, where)
    raise TypeError(f"Expression {where} x: x must be an Expression, Parameters or a number; given "
                    f"{type(x).__name__}.")


def mul(x: Any, y: Any) -> Expression:
    """DyNet's `*`: matrix product of two expressions, or scaling by a number."""
    out = _with_number(x, y, "*", SCALE, SCALE)
    if out is not None:
        return out
    a, b = _operand(x, "*"), _operand(y, "*")
    ra, ca = (a.dims + (1,))[:2]
    rb = b.dims[0]
    if len(a.dims) > 2 or len(b.dims) > 2 or ca != rb:
        raise ValueError(f"Expression * Expression is DyNet's matrix product: the left has dims {a.dims} "
                         f"({ra}×{ca}), so the right needs {ca} rows; given dims {b.dims}. For an elementwise "
                         f"product use dy.cmult(x, y).")
    return node(MATMUL, [a, b], where="*")


def rmul(x: Any, y: Any) -> Expression:
    """`y * x` with x an expression: a number scales it; an expression or parameter on
    the left is a matrix product."""
    return mul(y, x)


def div(x: Any, y: Any) -> Expression:
    out = _with_number(x, y, "/", RDIV, SCALE, lambda v: 1.0 / v)
    if out is not None:
        return out
    a, b = _operand(x, "/"), _operand(y, "/")
    _check_cwise("/", a, b)
    return node(CDIV, [a, b], where="/")


def neg(x: Any) -> Expression:
    return node(NEG, [expr(x, "neg")])


POW = Op("pow", _cwise(jnp.power))


def pow(x: Any, y: Any) -> Expression:  # noqa: A001 - DyNet's name
    if _number(y):
        y = constant((1,), float(y))
    a, b = expr(x, "pow"), expr(y, "pow")
    _check_cwise("pow", a, b)
    return node(POW, [a, b], where="pow")


def cmult(x: Any, y: Any) -> Expression:
    a, b = expr(x, "cmult"), expr(y, "cmult")
    _check_cwise("cmult", a, b)
    return node(CMULT, [a, b], where="cmult")


def cdiv(x: Any, y: Any) -> Expression:
    a, b = expr(x, "cdiv"), expr(y, "cdiv")
    _check_cwise("cdiv", a, b)
    return node(CDIV, [a, b], where="cdiv")


def colwise_add(x: Any, bias: Any) -> Expression:
    a, b = expr(x, "colwise_add"), expr(bias, "colwise_add")
    if len(b.dims) != 1 or a.dims[0] != b.dims[0]:
        raise ValueError(f"dy.colwise_add: bias must be a vector of {a.dims[0]} (x's rows); given dims {b.dims}.")
    return node(ADD, [a, b], where="colwise_add")


AFFINE = Op("affine_transform", lambda s, b, *wx: functools.reduce(
    lambda acc, k: acc + _matmul_fn(None, wx[k], wx[k + 1]).reshape(acc.shape), range(0, len(wx), 2), b))


def affine_transform(xs: Sequence[Any]) -> Expression:
    """`[b, W1, x1, W2, x2, ...]` → b + W1·x1 + W2·x2 + ..."""
    es = exprs(xs, "affine_transform")
    if len(es) % 2 != 1:
        raise ValueError(f"dy.affine_transform: expected [b, W1, x1, W2, x2, ...] (an odd count); given {len(es)}.")
    for W, x in zip(es[1::2], es[2::2]):
        cw = (W.dims + (1,))[1]
        if x.dims[0] != cw:
            raise ValueError(f"dy.affine_transform: W has dims {W.dims}, so x needs {cw} rows; given dims {x.dims}.")
    return node(AFFINE, es, where="affine_transform")


# -- elementwise functions ---------------------------------------------------------------------

def _log_sigmoid(a):
    return jax.nn.log_sigmoid(a)


_UNARY = {
    "tanh": jnp.tanh, "logistic": jax.nn.sigmoid, "rectify": jax.nn.relu, "exp": jnp.exp, "log": jnp.log,
    "square": jnp.square, "sqrt": jnp.sqrt, "abs": jnp.abs, "cube": lambda a: a * a * a, "erf": jax.scipy.special.erf,
    "softsign": jax.nn.soft_sign, "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "asin": jnp.arcsin,
    "acos": jnp.arccos, "atan": jnp.arctan, "sinh": jnp.sinh, "cosh": jnp.cosh, "asinh": jnp.arcsinh,
    "acosh": jnp.arccosh, "atanh": jnp.arctanh, "lgamma": jax.scipy.special.gammaln, "log_sigmoid": _log_sigmoid,
    "selu": jax.nn.selu, "silu": jax.nn.silu, "round": jnp.round, "ceil": jnp.ceil, "floor": jnp.floor,
    "sign": jnp.sign,
}
UNARY = Op("unary", lambda s, a: _UNARY[s](a))


def unary(name: str, x: Any) -> Expression:
    return node(UNARY, [expr(x, name)], static=name, where=name)


ELU = Op("elu", lambda s, a: jax.nn.elu(a, s))


def elu(x: Any, alpha: float = 1.0) -> Expression:
    return node(ELU, [expr(x, "elu")], static=float(alpha))


def _axis_check(where: str, x: Expression, d: int) -> int:
    if not isinstance(d, numbers.Integral) or not 0 <= d < max(len(x.dims), 2):
        raise ValueError(f"dy.{where}: d must be a dimension of dims {x.dims}; given {d!r}.")
    return int(d)


def _softmax_fn(static, a):
    d = static
    return jax.nn.softmax(a, axis=d) if a.ndim > d else a / a  # a vector along d=1: softmax of one = 1


SOFTMAX = Op("softmax", _softmax_fn)


def softmax(x: Any, d: int = 0) -> Expression:
    e = expr(x, "softmax")
    return node(SOFTMAX, [e], static=_axis_check("softmax", e, d))


def _log_softmax_fn(static, a, *restrict):
    if restrict:
        keep = jnp.zeros(a.shape[0], bool).at[restrict[0]].set(True)
        a = jnp.where(keep.reshape(keep.shape + (1,) * (a.ndim - 1)), a, -jnp.inf)
    return jax.nn.log_softmax(a, axis=0)


LOG_SOFTMAX = Op("log_softmax", _log_softmax_fn)


def log_softmax(x: Any, restrict: Sequence[int] | None = None) -> Expression:
    e = expr(x, "log_softmax")
    consts = [] if restrict is None else [np.asarray(restrict, np.int32)]
    return node(LOG_SOFTMAX, [e], consts)


SPARSEMAX = Op("sparsemax", lambda s, a: _sparsemax(a))


def _sparsemax(z):
    zs = jnp.sort(z)[::-1]
    k = jnp.arange(1, z.shape[0] + 1, dtype=z.dtype)
    cs = jnp.cumsum(zs)
    support = 1 + k * zs > cs
    kz = jnp.sum(support)
    tau = (jnp.sum(jnp.where(support, zs, 0.0)) - 1) / kz
    return jnp.maximum(z - tau, 0.0)


def sparsemax(x: Any) -> Expression:
    return node(SPARSEMAX, [expr(x, "sparsemax")])


# -- reductions ---------------------------------------------------------------------------

def _to1(v):
    return jnp.reshape(v, (1,))


SUM_ELEMS = Op("sum_elems", lambda s, a: _to1(jnp.sum(a)))
MEAN_ELEMS = Op("mean_elems", lambda s, a: _to1(jnp.mean(a)))
SQUARED_NORM = Op("squared_norm", lambda s, a: _to1(jnp.sum(a * a)))
L2_NORM = Op("l2_norm", lambda s, a: _to1(jnp.sqrt(jnp.sum(a * a))))
DOT = Op("dot_product", lambda s, a, b: _to1(jnp.sum(a * b)))


def sum_elems(x: Any) -> Expression:
    return node(SUM_ELEMS, [expr(x, "sum_elems")])


def mean_elems(x: Any) -> Expression:
    return node(MEAN_ELEMS, [expr(x, "mean_elems")])


def squared_norm(x: Any) -> Expression:
    return node(SQUARED_NORM, [expr(x, "squared_norm")])


def l2_norm(x: Any) -> Expression:
    return node(L2_NORM, [expr(x, "l2_norm")])


def dot_product(x: Any, y: Any) -> Expression:
    a, b = expr(x, "dot_product"), expr(y, "dot_product")
    if a.dims != b.dims:
        raise ValueError(f"dy.dot_product: dims must match; given {a.dims} and {b.dims}.")
    return node(DOT, [a, b])


def _reduce_dim(f):
    def fn(static, a):
        d = static
        if a.ndim <= d:
            return a
        out = f(a, axis=d)
        return out if out.ndim else jnp.reshape(out, (1,))
    return fn


_DIM_OPS = {name: Op(name, _reduce_dim(f)) for name, f in
            [("sum_dim", jnp.sum), ("mean_dim", jnp.mean), ("max_dim", jnp.max), ("min_dim", jnp.min)]}


def _dim_op(name: str, x: Any, d: int) -> Expression:
    e = expr(x, name)
    return node(_DIM_OPS[name], [e], static=_axis_check(name, e, d), where=name)


def sum_dim(x: Any, d: Sequence[int] | int, b: bool = False) -> Expression:
    ds = [int(d)] if isinstance(d, numbers.Integral) else [int(k) for k in d]  # type: ignore[union-attr]
    out = expr(x, "sum_dim")
    for k in sorted(ds, reverse=True):
        out = _dim_op("sum_dim", out, k)
    return sum_batches(out) if b else out


def mean_dim(x: Any, d: Sequence[int] | int, b: bool = False, n: int = 0) -> Expression:
    ds = [int(d)] if isinstance(d, numbers.Integral) else [int(k) for k in d]  # type: ignore[union-attr]
    out = expr(x, "mean_dim")
    for k in sorted(ds, reverse=True):
        out = _dim_op("mean_dim", out, k)
    return mean_batches(out) if b else out


def max_dim(x: Any, d: int = 0) -> Expression:
    return _dim_op("max_dim", x, d)


def min_dim(x: Any, d: int = 0) -> Expression:
    return _dim_op("min_dim", x, d)


SUM_BATCHES = Op("sum_batches", lambda s, a: jnp.sum(a, axis=0) if s[1] > 1 else a, batch_level=True)
MEAN_BATCHES = Op("mean_batches", lambda s, a: jnp.mean(a, axis=0) if s[1] > 1 else a, batch_level=True)


def sum_batches(x: Any) -> Expression:
    e = expr(x, "sum_batches")
    return node(SUM_BATCHES, [e], static=("batch", e.batch, 1), batch=1) if e.batch > 1 else e


def mean_batches(x: Any) -> Expression:
    e = expr(x, "mean_batches")
    return node(MEAN_BATCHES, [e], static=("batch", e.batch, 1), batch=1) if e.batch > 1 else e


ESUM = Op("esum", lambda s, *xs: functools.reduce(jnp.add, xs), stacked=lambda s, rows: jnp.sum(rows, axis=0))
EMAX = Op("emax", lambda s, *xs: functools.reduce(jnp.maximum, xs), stacked=lambda s, rows: jnp.max(rows, axis=0))
LOGSUMEXP = Op("logsumexp", lambda s, *xs: jax.scipy.special.logsumexp(jnp.stack(xs), axis=0),
               stacked=lambda s, rows: jax.scipy.special.logsumexp(rows, axis=0))


def _same_dims(where: str, es: list[Expression]) -> None:
    if len({e.dims for e in es}) > 1:
        raise ValueError(f"dy.{where}: every expression must have the same dims; given "
                         f"{sorted({e.dims for e in es})}.")


def _padded_nary(op: Op, es: list[Expression], where: str, pad: Callable[[Expression], Expression]) -> Expression:
    """An n-ary node whose argument count is padded to a power of two with `pad(es[0])`
    (an element that does not change the result), so a new list length seldom means a
    new kernel."""
    n = len(es)
    nb = pow2(n)
    if nb > n:
        p = pad(es[0])
        es = es + [p] * (nb - n)
    return node(op, es, where=where)


def _const_like(e: Expression, value: float) -> Expression:
    """A constant of e's dims (one per graph, dims and value)."""
    g = CURRENT.graph
    key = ("const", e.dims, e.dt, value)
    z = g.params.get(key)
    if z is None:
        z = input_leaf(np.full(e.dims, value, e.dt))
        g.params[key] = z
    return z


def _zero_like(e: Expression) -> Expression:
    return _const_like(e, 0.0)


def esum(xs: Sequence[Any]) -> Expression:
    """The sum of a list of expressions of the same dims."""
    es = exprs(xs, "esum")
    _same_dims("esum", es)
    if len(es) == 1:
        return es[0]
    return _padded_nary(ESUM, es, "esum", _zero_like)


def average(xs: Sequence[Any]) -> Expression:
    es = exprs(xs, "average")
    return esum(es) * (1.0 / len(es)) if len(es) > 1 else es[0]


def emax(xs: Sequence[Any]) -> Expression:
    es = exprs(xs, "emax")
    _same_dims("emax", es)
    return es[0] if len(es) == 1 else _padded_nary(EMAX, es, "emax", lambda e: e)


def logsumexp(xs: Sequence[Any]) -> Expression:
    es = exprs(xs, "logsumexp")
    _same_dims("logsumexp", es)
    return es[0] if len(es) == 1 else _padded_nary(LOGSUMEXP, es, "logsumexp", lambda e: _const_like(e, -np.inf))


# -- shape ----------------------------------------------------------------------------------

CONCAT = Op("concatenate", lambda s, *xs: jnp.concatenate([_as_nd(x, s[1]) for x in xs], axis=s[0]))


def _as_nd(x, n):
    return x.reshape(x.shape + (1,) * (n - x.ndim)) if x.ndim < n else x


def concatenate(xs: Sequence[Any], d: int = 0) -> Expression:
    """Expressions joined along dimension d (DyNet's default 0: the rows)."""
    es = exprs(xs, "concatenate")
    if len(es) == 1:
        return es[0]
    n = max(max(len(e.dims) for e in es), d + 1)
    padded = [e.dims + (1,) * (n - len(e.dims)) for e in es]
    for p in padded[1:]:
        if p[:d] + p[d + 1:] != padded[0][:d] + padded[0][d + 1:]:
            raise ValueError(f"dy.concatenate: every dimension but {d} must match; given dims "
                             f"{[e.dims for e in es]}.")
    return node(CONCAT, es, static=(d, n), where="concatenate")


def concatenate_cols(xs: Sequence[Any]) -> Expression:
    """Column vectors (d,) (or matrices (d, k)) side by side: dims (d, n)."""
    es = exprs(xs, "concatenate_cols")
    if len(es) == 1:
        e = es[0]
        return reshape(e, (e.dims[0], 1)) if len(e.dims) == 1 else e
    return concatenate(es, d=1)


CONCAT_BATCH = Op("concatenate_to_batch", lambda s, *xs: jnp.concatenate(
    [x if b > 1 else x[None] for x, b in zip(xs, s[2])], axis=0), batch_level=True)


def concatenate_to_batch(xs: Sequence[Any]) -> Expression:
    es = exprs(xs, "concatenate_to_batch")
    _same_dims("concatenate_to_batch", es)
    total = sum(e.batch for e in es)
    return node(CONCAT_BATCH, es, static=("batch", total, tuple(e.batch for e in es)), batch=total)


def _reshape_fn(static, a):
    _, b, dims = static
    return a.reshape(((b,) if b > 1 else ()) + dims)


RESHAPE = Op("reshape", _reshape_fn, batch_level=True)


def reshape(x: Any, d: Any, batch_size: int = 1) -> Expression:
    """New dims (and batch size) with the same values, in DyNet's column-major order."""
    e = expr(x, "reshape")
    dims = _dims("reshape", d)
    if math.prod(dims) * batch_size != math.prod(e.dims) * e.batch:
        raise ValueError(f"dy.reshape: dims {e.dims} × batch {e.batch} ({math.prod(e.dims) * e.batch} values) "
                         f"cannot become dims {dims} × batch {batch_size}.")
    if e.dims == dims and e.batch == batch_size:
        return e
    if len(dims) > 1 or len(e.dims) > 1 or batch_size != e.batch:
        return node(RESHAPE_F, [e], static=("batch", batch_size, dims, e.batch), batch=batch_size, where="reshape")
    return node(RESHAPE, [e], static=("batch", batch_size, dims), batch=batch_size, where="reshape")


def _reshape_f_fn(static, a):
    """Column-major reshape (DyNet's memory order), batch last in memory."""
    _, b, dims, b_in = static
    full = jnp.moveaxis(a, 0, -1) if b_in > 1 else a  # dims + (batch,)
    flat = jnp.ravel(full, order="F")
    out = jnp.reshape(flat, dims + ((b,) if b > 1 else ()), order="F")
    return jnp.moveaxis(out, -1, 0) if b > 1 else out


RESHAPE_F = Op("reshape", _reshape_f_fn, batch_level=True)


def _transpose_fn(static, a):
    return jnp.transpose(_as_nd(a, len(static)), static)


TRANSPOSE = Op("transpose", _transpose_fn)


def transpose(x: Any, dims: Sequence[int] = (1, 0)) -> Expression:
    """DyNet's transpose: a vector (d,) becomes a row (1, d)."""
    e = expr(x, "transpose")
    dims = tuple(int(d) for d in dims)
    if sorted(dims) != list(range(len(dims))) or len(dims) < len(e.dims):
        raise ValueError(f"dy.transpose: dims must be a permutation of 0..{max(len(e.dims), 2) - 1}; given {dims}.")
    return node(TRANSPOSE, [e], static=dims)


def _pick_fn(static, a, i):
    d = static
    out = jnp.take(a, i, axis=d)
    return out if out.ndim else jnp.reshape(out, (1,))


PICK = Op("pick", _pick_fn)


def _pick_batch_fn(static, a, ids):
    _, b, d = static
    if b > 1:
        out = jax.vmap(lambda r, i: jnp.take(r, i, axis=d))(a, ids)
    else:
        out = jax.vmap(lambda i: jnp.take(a, i, axis=d))(ids)
    return out if out.ndim > 1 else out[:, None]


PICK_BATCH = Op("pick_batch", _pick_batch_fn, batch_level=True)


def pick(x: Any, index: Any = 0, dim: int = 0) -> Expression:
    """Element `index` along `dim` (a scalar of dims (1,) from a vector); with a list of
    indices, one per batch element (DyNet's `pick` with a vector of indices)."""
    e = expr(x, "pick")
    if isinstance(index, (list, tuple, np.ndarray)) and np.ndim(index) == 1:
        return pick_batch(e, index, dim)
    i = np.asarray(index)
    n = (e.dims + (1,))[_axis_check("pick", e, dim)]
    if i.dtype.kind not in "iu" or i.ndim != 0:
        raise TypeError(f"dy.pick: index must be an int; given {index!r:.40}.")
    if not 0 <= int(i) < n:
        raise IndexError(f"dy.pick: index {int(i)} is out of range for dimension {dim} of size {n}.")
    return node(PICK, [e], [i.astype(np.int32)], static=int(dim))


def pick_batch(x: Any, indices: Sequence[int] | np.ndarray, dim: int = 0) -> Expression:
    e = expr(x, "pick_batch")
    ids = np.asarray(indices)
    n = (e.dims + (1,))[_axis_check("pick_batch", e, dim)]
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise TypeError(f"dy.pick_batch: indices must be a list of ints; given {indices!r:.60}.")
    if e.batch > 1 and len(ids) != e.batch:
        raise ValueError(f"dy.pick_batch: the expression has batch size {e.batch}; given {len(ids)} indices.")
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise IndexError(f"dy.pick_batch: an index is out of range for dimension {dim} of size {n}.")
    return node(PICK_BATCH, [e], [ids.astype(np.int32)], static=("batch", e.batch, int(dim)), batch=len(ids),
                where="pick_batch")


def _pickrange_fn(static, a):
    s, e, d = static
    return jax.lax.slice_in_dim(a, s, e, axis=d)


PICKRANGE = Op("pickrange", _pickrange_fn)


def pickrange(x: Any, s: int, e: int, d: int = 0) -> Expression:
    ex = expr(x, "pickrange")
    n = (ex.dims + (1,))[_axis_check("pickrange", ex, d)]
    if not 0 <= s < e <= n:
        raise ValueError(f"dy.pickrange: need 0 <= s < e <= {n}; given s={s}, e={e}.")
    return node(PICKRANGE, [ex], static=(int(s), int(e), int(d)))


PICK_ELEMS = Op("pick_batch_elems", lambda s, a, ids: a[ids] if len(s) < 3 or s[2] else a[ids[0]], batch_level=True)


def pick_batch_elem(x: Any, v: int) -> Expression:
    e = expr(x, "pick_batch_elem")
    if not 0 <= int(v) < e.batch:
        raise IndexError(f"dy.pick_batch_elem: index {v} is out of range for batch size {e.batch}.")
    if e.batch == 1:
        return e
    return node(PICK_ELEMS, [e], [np.asarray([v], np.int32)], static=("batch", 1, False), batch=1,
                where="pick_batch_elem")


def pick_batch_elems(x: Any, vs: Sequence[int]) -> Expression:
    e = expr(x, "pick_batch_elems")
    ids = np.asarray(vs, np.int32)
    if ids.ndim != 1 or ids.size == 0 or ids.min() < 0 or ids.max() >= e.batch:
        raise IndexError(f"dy.pick_batch_elems: indices must be a non-empty list in 0..{e.batch - 1}; given {vs!r}.")
    if ids.size == 1:
        return pick_batch_elem(e, int(ids[0]))
    if e.batch == 1:
        return concatenate_to_batch([e] * ids.size)
    return node(PICK_ELEMS, [e], [ids], static=("batch", int(ids.size), True), batch=int(ids.size),
                where="pick_batch_elems")


SELECT_ROWS = Op("select_rows", lambda s, a, rows: _as_nd(a, 1)[rows])
SELECT_COLS = Op("select_cols", lambda s, a, cols: _as_nd(a, 2)[:, cols])


def select_rows(x: Any, rows: Sequence[int]) -> Expression:
    e = expr(x, "select_rows")
    r = np.asarray(rows, np.int32)
    if r.ndim != 1 or r.size == 0 or r.min() < 0 or r.max() >= e.dims[0]:
        raise IndexError(f"dy.select_rows: rows must be a non-empty list in 0..{e.dims[0] - 1}; given {rows!r:.60}.")
    return node(SELECT_ROWS, [e], [r])


def select_cols(x: Any, cols: Sequence[int]) -> Expression:
    e = expr(x, "select_cols")
    c = np.asarray(cols, np.int32)
    n = (e.dims + (1,))[1]
    if c.ndim != 1 or c.size == 0 or c.min() < 0 or c.max() >= n:
        raise IndexError(f"dy.select_cols: cols must be a non-empty list in 0..{n - 1}; given {cols!r:.60}.")
    return node(SELECT_COLS, [e], [c])


STRIDED = Op("strided_select", lambda s, a: a[tuple(slice(*t) for t in s)])


def getitem(x: Expression, index: Any) -> Expression:
    """`x[i]` is `pick(x, i)`; `x[a:b]` is `pickrange(x, a, b)`; a tuple of slices selects
    along each dimension (steps allowed), and one slice more selects batch elements (DyNet's
    strided_select: the batch is the last axis, as in `npvalue()`)."""
    if isinstance(index, tuple):
        if len(index) > len(x.dims) + 1 or not all(isinstance(i, slice) for i in index):
            raise TypeError(f"Expression[...]: a tuple index must hold at most {len(x.dims) + 1} slices (one per "
                            f"dimension of dims {x.dims}, then one for the batch); given {index!r}.")
        ranges = tuple(i.indices(n) for i, n in zip(index, x.dims + (x.batch,)))
        if any(len(range(*r)) == 0 for r in ranges):
            raise ValueError(f"Expression[...]: {index!r} selects nothing from dims {x.dims}, batch {x.batch}.")
        dims = ranges[:len(x.dims)]
        e = x
        if any(r != (0, n, 1) for r, n in zip(dims, x.dims)):
            e = node(STRIDED, [x], static=dims, where="Expression[...]")
        if len(ranges) > len(x.dims) and ranges[-1] != (0, x.batch, 1):
            e = pick_batch_elems(e, list(range(*ranges[-1])))
        return e
    if isinstance(index, slice):
        n = x.dims[0]
        start, stop, step = index.indices(n)
        if step != 1:
            raise ValueError("Expression[a:b]: steps other than 1 are not supported.")
        return pickrange(x, start, stop)
    if isinstance(index, numbers.Integral):
        n = x.dims[0]
        return pick(x, int(index) + n if index < 0 else int(index))
    raise TypeError(f"Expression[index]: index must be an int or a slice; given {type(index).__name__}.")


# -- losses -----------------------------------------------------------------------------------

def _pnls_fn(static, a, v):
    # log-sum-exp minus the pick: not the whole log-softmax, which XLA computed for every
    # class before picking one
    return _to1(jax.nn.logsumexp(a, axis=0) - a[v])


PNLS = Op("pickneglogsoftmax", _pnls_fn)


def _pnls_batch_fn(static, a, vs):
    _, b = static
    lse = jax.nn.logsumexp(a, axis=-1)
    if b > 1 and a.ndim == 2:
        return (lse - jnp.take_along_axis(a, vs[:, None], axis=1)[:, 0])[:, None]
    return (lse - a[vs])[:, None]


PNLS_BATCH = Op("pickneglogsoftmax_batch", _pnls_batch_fn, batch_level=True)


def pickneglogsoftmax(x: Any, v: Any) -> Expression:
    """−log softmax(x)[v]: dims (1,); with a list of ids, one per batch element."""
    e = expr(x, "pickneglogsoftmax")
    if len(e.dims) != 1:
        raise ValueError(f"dy.pickneglogsoftmax: x must be a vector; given dims {e.dims}.")
    if isinstance(v, (list, tuple, np.ndarray)) and np.ndim(v) == 1:
        return pickneglogsoftmax_batch(e, v)
    i = np.asarray(v)
    if i.dtype.kind not in "iu" or i.ndim != 0:
        raise TypeError(f"dy.pickneglogsoftmax: v must be a class id (an int); given {v!r:.40}.")
    if not 0 <= int(i) < e.dims[0]:
        raise IndexError(f"dy.pickneglogsoftmax: class {int(i)} is out of range for {e.dims[0]} classes.")
    return node(PNLS, [e], [i.astype(np.int32)])


def pickneglogsoftmax_batch(x: Any, vs: Sequence[int] | np.ndarray) -> Expression:
    e = expr(x, "pickneglogsoftmax_batch")
    ids = np.asarray(vs)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise TypeError(f"dy.pickneglogsoftmax_batch: vs must be a list of class ids; given {vs!r:.60}.")
    if e.batch > 1 and ids.size != e.batch:
        raise ValueError(f"dy.pickneglogsoftmax_batch: x has batch size {e.batch}; given {ids.size} class ids.")
    if ids.size and (ids.min() < 0 or ids.max() >= e.dims[0]):
        raise IndexError(f"dy.pickneglogsoftmax_batch: a class id is out of range for {e.dims[0]} classes.")
    return node(PNLS_BATCH, [e], [ids.astype(np.int32)], static=("batch", int(ids.size)), batch=int(ids.size),
                where="pickneglogsoftmax_batch")


BINARY_LOG_LOSS = Op("binary_log_loss", lambda s, p, t: _to1(-jnp.sum(t * jnp.log(p) + (1 - t) * jnp.log1p(-p))))
SQ_DIST = Op("squared_distance", lambda s, a, b: _to1(jnp.sum(jnp.square(a - b))))
L1_DIST = Op("l1_distance", lambda s, a, b: _to1(jnp.sum(jnp.abs(a - b))))


def _huber_fn(static, a, b):
    d = jnp.abs(a - b)
    c = static
    return _to1(jnp.sum(jnp.where(d < c, 0.5 * d * d, c * d - 0.5 * c * c)))


HUBER = Op("huber_distance", _huber_fn)


def _pair(where: str, x: Any, y: Any) -> list[Expression]:
    a, b = expr(x, where), expr(y, where)
    if a.dims != b.dims:
        raise ValueError(f"dy.{where}: dims must match; given {a.dims} and {b.dims}.")
    return [a, b]


def binary_log_loss(x: Any, y: Any) -> Expression:
    return node(BINARY_LOG_LOSS, _pair("binary_log_loss", x, y))


def squared_distance(x: Any, y: Any) -> Expression:
    return node(SQ_DIST, _pair("squared_distance", x, y))


def l1_distance(x: Any, y: Any) -> Expression:
    return node(L1_DIST, _pair("l1_distance", x, y))


def huber_distance(x: Any, y: Any, c: float = 1.345) -> Expression:
    return node(HUBER, _pair("huber_distance", x, y), static=float(c))


def _hinge_fn(static, a, i):
    m = static
    margins = jnp.maximum(0.0, m - a[i] + a)
    return _to1(jnp.sum(jnp.where(jnp.arange(a.shape[0]) == i, 0.0, margins)))


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


def _key() -> np.ndarray:
    """A fresh PRNG key's data for a noise or dropout node, from a block drawn at once (one
    draw per key cost ~5 µs, as much as building the node)."""
    rng = _host_rng()
    block = CURRENT.keys
    if block is None or block[0] is not rng or block[2] == len(block[1]):
        block = CURRENT.keys = [rng, rng.integers(0, 2 ** 32, size=(256, 2), dtype=np.uint32), 0]
    k = block[1][block[2]]
    block[2] += 1
    return k


def _rate(where: str, p: Any) -> float:
    if not _number(p) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"dy.{where}: the rate must be a number in [0, 1); given {p!r}.")
    return float(p)


def dropout(x: Any, p: float) -> Expression:
    """Inverted dropout: entries zeroed with probability p, the rest scaled by 1/(1−p)."""
    e, p = expr(x, "dropout"), _rate("dropout", p)
    return e if p == 0.0 else node(DROPOUT, [e], [_key()], static=(p, False))


def block_dropout(x: Any, p: float) -> Expression:
    e, p = expr(x, "block_dropout"), _rate("block_dropout", p)
    return e if p == 0.0 else node(DROPOUT, [e], [_key()], static=(p, True))


def noise(x: Any, stddev: float) -> Expression:
    e = expr(x, "noise")
    if not _number(stddev) or not float(stddev) >= 0.0:
        raise ValueError(f"dy.noise: stddev must be a number ≥ 0; given {stddev!r}.")
    return node(NOISE, [e], [_key()], static=float(stddev))


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
    return node(BMAX, _pair("bmax", x, y))


def bmin(x: Any, y: Any) -> Expression:
    """The element-wise minimum."""
    return node(BMIN, _pair("bmin", x, y))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _scaled(lambd, a):
    return a


_scaled.defvjp(lambda lambd, a: (a, None), lambda lambd, _, g: (lambd * g,))
SCALE_GRADIENT = Op("scale_gradient", lambda s, a: _scaled(s, a))


def scale_gradient(x: Any, lambd: float = 1.0) -> Expression:
    """The identity forward; backward multiplies the gradient by lambd."""
    if not _number(lambd):
        raise ValueError(f"dy.scale_gradient: lambd must be a number; given {lambd!r}.")
    return node(SCALE_GRADIENT, [expr(x, "scale_gradient")], static=float(lambd))


def _argmax_fn(static, a):
    onehot = jax.nn.one_hot(jnp.argmax(a), a.shape[0], dtype=a.dtype)
    if static == "straight_through_gradient":  # forward the one-hot, backward the identity
        return a + jax.lax.stop_gradient(onehot - a)
    return jax.lax.stop_gradient(onehot)


ARGMAX = Op("argmax", _argmax_fn)


def argmax(x: Any, gradient_mode: str = "zero_gradient") -> Expression:
    """The one-hot vector of x's largest entry (the first, on ties). Its gradient is zero
    ("zero_gradient") or the identity's ("straight_through_gradient", Bengio et al. 2013)."""
    e = expr(x, "argmax")
    if gradient_mode not in ("zero_gradient", "straight_through_gradient"):
        raise ValueError(f"dy.argmax: gradient_mode must be 'zero_gradient' or 'straight_through_gradient'; "
                         f"given {gradient_mode!r}.")
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
    if not _number(m):
        raise ValueError(f"dy.pairwise_rank_loss: m must be a number; given {m!r}.")
    return node(PAIRWISE_RANK, _pair("pairwise_rank_loss", x, y), static=float(m))


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


TRACE_OF_PRODUCT = Op("trace_of_product", lambda s, a, b: _to1(jnp.sum(a * b)))
INVERSE = Op("inverse", lambda s, a: jnp.linalg.inv(a))
LOGDET = Op("logdet", lambda s, a: _to1(jnp.linalg.slogdet(a)[1]))


def trace_of_product(x: Any, y: Any) -> Expression:
    """trace(x · yᵀ), as DyNet computes it."""
    return node(TRACE_OF_PRODUCT, _pair("trace_of_product", x, y))


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
    es = _pair(where, u, v)
    if len(es[0].dims) != 1:
        raise ValueError(f"dy.{where}: expected two vectors; given dims {es[0].dims}.")
    return es


def circ_conv(u: Any, v: Any) -> Expression:
    """y_i = Σ_j u_j · v_{(i − j) mod n}."""
    return node(CIRC, _vectors("circ_conv", u, v), static=False)


def circ_corr(u: Any, v: Any) -> Expression:
    """y_i = Σ_j u_j · v_{(i + j) mod n}."""
    return node(CIRC, _vectors("circ_corr", u, v), static=True)


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
    e, p = expr(x, "dropout_dim"), _rate("dropout_dim", p)
    dd = _dim_list("dropout_dim", e, d)[0] + (1 if e.batch > 1 else 0)
    return e if p == 0.0 else node(DROPOUT_SHARED, [e], [_key()], static=(p, (dd,)))


def dropout_batch(x: Any, p: float) -> Expression:
    """Dropout of whole batch elements."""
    e, p = expr(x, "dropout_batch"), _rate("dropout_batch", p)
    axes = tuple(range(1 if e.batch > 1 else 0, len(e.dims) + (1 if e.batch > 1 else 0)))
    return e if p == 0.0 else node(DROPOUT_SHARED, [e], [_key()], static=(p, axes))


def random_gumbel(dim: Any, mu: float = 0.0, beta: float = 1.0, batch_size: int = 1) -> Expression:
    d = _dims("random_gumbel", dim)
    a = _host_rng().gumbel(mu, beta, _dims_shape(d, batch_size)).astype(np.float32)
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
    a = _float_array("inputMatrix", v)
    dims = _dims("inputMatrix", d)
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
    vector per index. (`device` is DyNet's; dynrnn has one.)"""
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
