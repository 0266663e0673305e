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
from .._devices import check_device
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


def dims_shape(dims: tuple, batch: int) -> tuple:
    return dims if batch == 1 else (batch,) + dims


def _infer(sig: Sig) -> tuple:
    """(dims, dtype) of a node's output, from its signature. A tuple value (a recurrent
    state) has a dims tuple per slot."""
    def abstract(d, b, t):
        if d and isinstance(d[0], tuple):  # a state: one array per slot
            return tuple(jax.ShapeDtypeStruct(dims_shape(x, b), np.dtype(t)) for x in d)
        return jax.ShapeDtypeStruct(dims_shape(d, b), np.dtype(t))

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


def float_array(where: str, arr: Any) -> np.ndarray:
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


def inputTensor(arr: Any, batched: bool = False, device: str = "", reusable_expr: bool = False) -> Expression:
    """A constant from an array in DyNet's layout; `batched=True`: the **last** axis is
    the batch. A 0-d array is a scalar (dims (1,)). (`reusable_expr`, DyNet's memory
    setting, changes nothing here.)"""
    check_device("dy.inputTensor", device)
    if isinstance(arr, list) and arr and all(isinstance(x, np.ndarray) for x in arr):
        # DyNet: a list of arrays is a minibatch, one element each
        a = np.stack([float_array("inputTensor", x) for x in arr])
        if a.ndim == 1:
            a = a[:, None]
        return input_leaf(a, a.shape[0]) if a.shape[0] > 1 else input_leaf(a[0])
    a = float_array("inputTensor", arr)
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
                       defval: float = 0.0, device: str = "") -> Expression:
    """DyNet's sparse input: an array of `shape` filled with `defval`, with `values` at the
    coordinates `idxs` (one index list per dimension); `batched=True`: the last is the batch."""
    check_device("dy.sparse_inputTensor", device)
    a = np.full(tuple(int(d) for d in shape), defval, np.float32)
    try:
        a[tuple(np.asarray(i, np.int64) for i in idxs)] = np.asarray(values, np.float32)
    except (IndexError, ValueError) as e:
        raise ValueError(f"dy.sparse_inputTensor: the indices do not fit shape {tuple(shape)}: {e}") from None
    return inputTensor(a, batched)


def inputVector(v: Sequence[float], device: str = "") -> Expression:
    check_device("dy.inputVector", device)
    a = float_array("inputVector", v)
    if a.ndim != 1:
        raise ValueError(f"dy.inputVector: expected a flat list of numbers; given shape {a.shape}.")
    return input_leaf(a)


def scalarInput(value: float, device: str = "") -> Expression:
    check_device("dy.scalarInput", device)
    return input_leaf(float_array("scalarInput", [value]))


def vecInput(dim: int, device: str = "") -> Expression:
    check_device("dy.vecInput", device)
    return input_leaf(np.zeros((int(dim),), np.float32))


def matInput(d1: int, d2: int) -> Expression:
    return input_leaf(np.zeros((int(d1), int(d2)), np.float32))


def dims_arg(where: str, dim: Any) -> tuple:
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    if not dims or any(not isinstance(d, numbers.Integral) or d < 1 for d in dims):
        raise ValueError(f"dy.{where}: dims must be positive ints; given {dim!r}.")
    return tuple(int(d) for d in dims)


def constant(dim: Any, val: float, batch_size: int = 1) -> Expression:
    d = dims_arg("constant", dim)
    return input_leaf(np.full(dims_shape(d, batch_size), val, np.float32), batch_size)


def zeros(dim: Any, batch_size: int = 1) -> Expression:
    return constant(dim, 0.0, batch_size)


def ones(dim: Any, batch_size: int = 1) -> Expression:
    return constant(dim, 1.0, batch_size)


def host_rng() -> np.random.Generator:
    """This thread's host RNG (dropout and noise keys, random inputs): seeded with 0, and
    again with each `dy.set_random_seed(seed)`."""
    times, seed = seeding()
    if CURRENT.rng is None or CURRENT.rng_seeding != times:
        CURRENT.rng = np.random.default_rng(0 if seed is None else seed)
        CURRENT.rng_seeding = times
    return CURRENT.rng


def random_normal(dim: Any, mean: float = 0.0, stddev: float = 1.0, batch_size: int = 1) -> Expression:
    d = dims_arg("random_normal", dim)
    a = host_rng().normal(mean, stddev, dims_shape(d, batch_size)).astype(np.float32)
    return input_leaf(a, batch_size)


def random_uniform(dim: Any, left: float, right: float, batch_size: int = 1) -> Expression:
    d = dims_arg("random_uniform", dim)
    return input_leaf(host_rng().uniform(left, right, dims_shape(d, batch_size)).astype(np.float32), batch_size)


def random_bernoulli(dim: Any, p: float, scale: float = 1.0, batch_size: int = 1) -> Expression:
    d = dims_arg("random_bernoulli", dim)
    a = (host_rng().random(dims_shape(d, batch_size)) < p).astype(np.float32) * scale
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


def lookup(p: Any, index: Any = 0, update: bool = True) -> Expression:
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


def is_number(x: Any) -> bool:
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
    if is_number(x):
        e = expr(y, where)
        return node(left, [e], [_scalar_const(x, e)], where=where)
    if is_number(y):
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
    if is_number(y):
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
    "selu": jax.nn.selu, "silu": jax.nn.silu, "sign": jnp.sign,
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

def as_scalar(v):
    return jnp.reshape(v, (1,))


SUM_ELEMS = Op("sum_elems", lambda s, a: as_scalar(jnp.sum(a)))
MEAN_ELEMS = Op("mean_elems", lambda s, a: as_scalar(jnp.mean(a)))
SQUARED_NORM = Op("squared_norm", lambda s, a: as_scalar(jnp.sum(a * a)))
L2_NORM = Op("l2_norm", lambda s, a: as_scalar(jnp.sqrt(jnp.sum(a * a))))
DOT = Op("dot_product", lambda s, a, b: as_scalar(jnp.sum(a * b)))


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
    dims = dims_arg("reshape", d)
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
