"""ParameterCollection, Parameters and LookupParameters: DyNet's surface over JAX arrays.

Parameters are mutable holders (as in DyNet: a trainer updates them in place), but every
value they hold is an immutable `jax.Array`. For differentiation a collection's values can
be *bound* to other arrays (tracers, say) for the duration of a `with pc.bind(values):`
block; every read of a parameter inside the block sees the bound value.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from . import _hooks, _init
from ._devices import check_device
from ._errors import check_real, fmt_shape
from ._random import KeyStream, collection_seed
from .cells import linear


def _to_device(a: Any, dtype: Any) -> jax.Array:
    """Host values as a device array of `dtype`. `jax.device_put`, not `jnp.asarray`, which
    compiles a kernel per new shape (~20 ms each with its tracing: a DyNet program's
    parameters, made before its first graph, cost 7-8 of them)."""
    return jax.device_put(np.asarray(a, dtype=dtype))


class _Registry(threading.local):
    def __init__(self) -> None:
        self.bindings: list[dict[int, jax.Array]] = []


_REGISTRY = _Registry()
# Bumped whenever any parameter's stored value changes, so that builders can cache the
# tuple of arrays they pass to compiled steps and rebuild it only when needed.
_VERSION = [0]
# Bumped whenever a builder's configuration that is read while tracing changes (dropout
# rates): compiled training steps include it in their signature, so they retrace once.
CONFIG_VERSION = [0]


def version() -> int:
    return _VERSION[0]


def graph_mode() -> bool:
    """Is a parameter read here a node of DyNet's computation graph? Yes once `renew_cg()`
    has opened the graph, when the code runs eagerly: not inside `pc.bind` (a compiled
    training step) and not while JAX traces."""
    return (_hooks.GRAPH is not None and _hooks.GRAPH.active() and not _REGISTRY.bindings
            and not staging())


def bindings_active() -> bool:
    return bool(_REGISTRY.bindings)


try:  # the current JAX trace (stackless tracing, JAX >= 0.4.36)
    from jax._src.core import trace_ctx as _trace_ctx
    from jax._src.interpreters.partial_eval import DynamicJaxprTrace as _StagingTrace
except ImportError:  # pragma: no cover - an older or newer JAX: test by staging a constant
    _trace_ctx = None
    _StagingTrace = Tracer  # unused: staging() tests by staging a constant


def staging() -> bool:
    """True while JAX is tracing into a jaxpr that will be cached and reused — `jax.jit`,
    `lax.scan`/`while_loop`/`cond` bodies, `make_jaxpr` — at any depth (under `vmap` or
    `grad` too). A concrete array read there becomes a constant of the compiled code."""
    if _trace_ctx is None:  # pragma: no cover
        return isinstance(jnp.zeros(()), Tracer)
    t = _trace_ctx.trace
    while t is not None:
        if isinstance(t, _StagingTrace):
            return True
        t = getattr(t, "parent_trace", None)
    return False


class _Fresh(threading.local):
    def __init__(self) -> None:
        self.depth = 0


_FRESH = _Fresh()


@contextlib.contextmanager
def fresh_trace() -> Iterator[None]:
    """For library code that, called eagerly, traces a new function on every call (the body
    of a `lax.while_loop` defined inside it): nothing is cached, so parameters read there
    are current. Under an outer `jax.jit` the outer trace is cached, and the check stays."""
    if staging():
        yield
        return
    _FRESH.depth += 1
    try:
        yield
    finally:
        _FRESH.depth -= 1


class ValueCache:
    """The arrays of a builder's parameters (lists of `Parameters`, nested any depth), as
    its compiled steps get them: the bound values inside `pc.bind` (a compiled training
    step), else the stored values — refused while JAX traces code it will cache — held
    until any parameter changes (the tuple is rebuilt only then)."""

    __slots__ = ("_version", "_values")

    def __init__(self) -> None:
        self._version, self._values = -1, ()

    def get(self, params: Sequence) -> tuple:
        if bindings_active():
            return _nested(lambda p: p.value, params)
        first: Any = params
        while isinstance(first, (list, tuple)) and first:
            first = first[0]
        if not isinstance(first, (list, tuple)):
            check_not_staging(first.name())
        if self._version != version():
            self._values = _nested(lambda p: p.stored_value(), params)
            self._version = version()
        return self._values


def _nested(f: Callable, x: Any) -> Any:
    return tuple(_nested(f, y) for y in x) if isinstance(x, (list, tuple)) else f(x)


class StaleParameterError(RuntimeError):
    """A parameter's stored value was read while JAX was tracing code it will cache."""


def check_not_staging(name: str) -> None:
    """Refuses to read a parameter's stored value into code that JAX traces and caches:
    the value would become a constant of the compiled code and stay the same after every
    update (silently stale outputs). Inside `dynrnn.jit`, `value_and_grad` and
    `Trainer.step` parameters are bound to arguments and this never fires."""
    if not _FRESH.depth and staging():
        raise StaleParameterError(
            f"parameter {name!r} was read while jax.jit (or lax.scan, while_loop, make_jaxpr) was tracing, and "
            f"its collection is not bound to an argument: its current value would be compiled in as a constant "
            f"and stay stale after the trainer updates it. Compile with dynrnn.jit(f, pc) instead of "
            f"jax.jit(f) (every parameter of pc becomes an argument; for a lax.scan or while_loop run eagerly, "
            f"wrap the function that calls it), or pass values = pc.parameter_values() as an argument and read "
            f"the parameters inside `with pc.bind(values):`.")


# DyNet's default weight decay λ for collections made from now on (`--dynet-weight-decay`,
# `dynet_config.set(weight_decay=...)`, `dy.config(weight_decay=...)`).
_DEFAULT_WEIGHT_DECAY = [0.0]


def _check_weight_decay(where: str, lam: Any) -> float:
    return check_real(where, "the weight decay λ", lam, 0.0, 1.0, high_open=True)


def default_weight_decay() -> float:
    return _DEFAULT_WEIGHT_DECAY[0]


def set_default_weight_decay(lam: Any) -> None:
    """DyNet's default weight decay: the λ of every collection made after this call."""
    _DEFAULT_WEIGHT_DECAY[0] = _check_weight_decay("weight_decay", lam)


def _check_dim(where: str, dim: Any) -> tuple[int, ...]:
    dims: Any = (dim,) if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) else dim
    try:
        if isinstance(dims, (str, bytes)):
            raise TypeError
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"{where}: dim must be an int or a tuple of ints; given {dim!r}.") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
        raise ValueError(f"{where}: dim must be a non-empty tuple of positive ints; given {dim!r}.")
    return tuple(int(d) for d in dims)


matvec = linear  # W·x: the one helper, with the measured single-row rule (cells._base.linear)


class _Param:
    """What Parameters and LookupParameters share: a named, shaped, mutable value."""

    __slots__ = ("_name", "_value", "_collection", "_updated", "_grad", "_sparse", "__weakref__")

    def __init__(self, name: str, value: jax.Array, collection: ParameterCollection):
        self._name = name
        self._value = value
        self._collection = collection
        self._updated = True
        self._grad: jax.Array | None = None
        self._sparse: list = []  # (row ids, rows) pieces of the gradient (graph-mode lookups)

    def weight_decay(self) -> float:
        """The weight decay λ of the collection this parameter was made in."""
        return self._collection._weight_decay

    # -- reading ---------------------------------------------------------------------
    @property
    def value(self) -> jax.Array:
        """The current value: the bound one inside `pc.bind(...)`, else the stored one."""
        for binding in reversed(_REGISTRY.bindings):
            v = binding.get(id(self))
            if v is not None:
                return v
        check_not_staging(self._name)
        return self._value

    def expr(self, update: bool = True) -> Any:
        """The value as an expression; with `update=False` no gradient flows into it. In
        DyNet's computation graph (graph mode) it is the parameter's node (`dy.parameter`,
        or `dy.const_parameter` with `update=False`)."""
        if graph_mode():
            return _hooks.GRAPH.parameter(self, update)
        return self.value if update else jax.lax.stop_gradient(self.value)

    def __jax_array__(self) -> jax.Array:
        return self.value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._value, dtype=dtype)

    def as_array(self) -> np.ndarray:
        """A NumPy copy of the stored value."""
        return np.array(self._value)

    npvalue = as_array

    def shape(self) -> tuple[int, ...]:
        return tuple(self._value.shape)

    @property
    def dtype(self) -> Any:
        return self._value.dtype

    def name(self) -> str:
        return self._name

    def is_updated(self) -> bool:
        return self._updated

    def set_updated(self, flag: bool) -> None:
        """With False, trainers leave this parameter unchanged (DyNet's fixed parameters)."""
        self._updated = bool(flag)

    def stored_value(self) -> jax.Array:
        """The stored value (never a bound one), for code that updates parameters."""
        return self._value

    # -- gradients accumulated by the graph's backward() ------------------------------
    def accumulate_grad(self, g: jax.Array) -> None:
        """Adds `g` to this parameter's gradient (what `Expression.backward()` does)."""
        self._grad = g if self._grad is None else self._grad + g

    def accumulate_sparse(self, ids: np.ndarray, rows: jax.Array) -> None:
        """Adds `rows[k]` to row `ids[k]` of this parameter's gradient, kept as rows (what a
        graph's lookups contribute: trainers then update only those rows, as DyNet does)."""
        self._sparse.append((np.asarray(ids, np.int32).reshape(-1), rows.reshape((-1,) + self.shape()[1:])))

    def sparse_grad(self) -> tuple[np.ndarray, list] | None:
        """(row ids, list of row blocks) when the whole gradient is rows, else None."""
        if not self._sparse or self._grad is not None:
            return None
        return np.concatenate([i for i, _ in self._sparse]), [r for _, r in self._sparse]

    def grad(self) -> jax.Array | None:
        """The gradient accumulated since the last `trainer.update()`, or None."""
        if self._sparse:  # fold the rows into a dense gradient
            ids = jnp.asarray(np.concatenate([i for i, _ in self._sparse]))
            rows = jnp.concatenate([r for _, r in self._sparse])
            base = jnp.zeros_like(self._value) if self._grad is None else self._grad
            self._grad, self._sparse = base.at[ids].add(rows.astype(base.dtype)), []
        return self._grad

    def grad_as_array(self) -> np.ndarray:
        """DyNet's `grad_as_array()`: the accumulated gradient (zeros if none)."""
        g = self.grad()
        return np.zeros(self.shape(), self.dtype) if g is None else np.array(g)

    def clear_grad(self) -> None:
        self._grad = None
        self._sparse = []

    # -- DyNet's expression methods on parameters (graph mode) ------------------------
    def _graph_expr(self, method: str) -> Any:
        if _hooks.GRAPH is None:
            raise RuntimeError(f"{type(self).__name__}.{method}: the graph layer is not loaded (import dynrnn).")
        return _hooks.GRAPH.parameter(self)

    def forward(self) -> None:
        """DyNet's `p.forward()`: the parameter as a node of the current graph, evaluated."""
        self._graph_expr("forward").forward()

    def backward(self, full: bool = False) -> None:
        """DyNet's `p.backward()` on a one-element parameter: d p / d p = 1 into its gradient."""
        self._graph_expr("backward").backward(full)

    def scalar_value(self, recalculate: bool = False) -> float:
        """DyNet's `p.scalar_value()`: the value of a one-element parameter as a float."""
        return self._graph_expr("scalar_value").scalar_value(recalculate)

    def vec_value(self, recalculate: bool = False) -> list[float]:
        """DyNet's `p.vec_value()`: every value in a flat list, column by column as DyNet lists them."""
        return self._graph_expr("vec_value").vec_value(recalculate)

    def tensor_value(self, recalculate: bool = False) -> Any:
        """DyNet's `p.tensor_value()`: the value as a `dy.Tensor`."""
        return self._graph_expr("tensor_value").tensor_value(recalculate)

    def gradient(self) -> np.ndarray:
        """DyNet's `p.gradient()`: the gradient the current graph's last `backward()` gave
        this parameter (zeros where it was not used)."""
        return self._graph_expr("gradient").gradient()

    # -- files -----------------------------------------------------------------------
    def save(self, path: str, key: str = "", append: bool = False) -> None:
        """DyNet's `p.save(fname, key, append)`: this parameter alone, under `key` (default
        its name); `append=True` adds it to an existing file. `populate` reads it back."""
        from ._io import save_parameter
        save_parameter(self, path, key, append)

    def populate(self, path: str, key: str = "") -> None:
        """Reads the parameter saved under `key` (default this parameter's name) into this one."""
        from ._io import populate_parameter
        populate_parameter(self, path, key)

    # DyNet's other names for them (its text format there; dynrnn's file format here)
    write_to_textfile = save
    populate_from_textfile = populate

    # -- DyNet's in-place arithmetic on values and gradients --------------------------
    def zero(self) -> None:
        """Sets every value to 0."""
        self.store(jnp.zeros_like(self._value))

    def dim(self) -> tuple[tuple[int, ...], int]:
        """DyNet's dims `((dims...), 1)`."""
        return self.shape(), 1

    def scale(self, s: float) -> None:
        """Multiplies the value by `s` (DyNet's `scale`)."""
        s = check_real(f"{type(self).__name__}.scale", "s", s)
        self.store(self._value * jnp.asarray(s, self._value.dtype))

    def scale_gradient(self, s: float) -> None:
        """Multiplies the gradient accumulated so far by `s` (DyNet's `scale_gradient`): a
        gradient kept as lookup rows stays rows."""
        s = check_real(f"{type(self).__name__}.scale_gradient", "s", s)
        if self._grad is not None:
            self._grad = self._grad * jnp.asarray(s, self._grad.dtype)
        self._sparse = [(ids, rows * jnp.asarray(s, rows.dtype)) for ids, rows in self._sparse]

    # -- writing ---------------------------------------------------------------------
    def sole_holder(self) -> bool:
        """Whether nothing holds the stored array but this parameter and the current graph
        (its leaves and kernel calls, which `store(..., replaced=True)` re-points): an update
        may then write the new value over it (donate it). Anything else holding it — a
        user's reference, another thread's graph, a replayed graph — keeps it: the update
        copies."""
        v = self._value
        others = sys.getrefcount(v) - 3  # v, getrefcount's argument, self._value
        return others == (_hooks.GRAPH.held(v) if _hooks.GRAPH is not None else 0)

    def store(self, value: jax.Array, replaced: bool = False) -> None:
        """The one write path for values: stores a `jax.Array` of this parameter's shape and
        dtype (with any sharding) as it is, and marks every cached copy of the parameters
        stale. Trainers, `Trainer.distribute`, `set_value` and loading all come here.
        The current graph's leaf of this parameter takes the new value (DyNet's graph reads
        a parameter where it is stored: nodes computed from now on see it). `replaced`: the
        old array was given to the kernel that computed `value` (it is gone; see
        `sole_holder`): every other reference the graph holds to it is pointed at `value`."""
        if not isinstance(value, jax.Array) or value.shape != self._value.shape or value.dtype != self._value.dtype:
            raise ValueError(f"{type(self).__name__}.store: parameter {self._name!r} holds {self._value.dtype} "
                             f"{fmt_shape(self._value.shape)}; given {type(value).__name__} "
                             f"{getattr(value, 'dtype', '')} {fmt_shape(tuple(np.shape(value)))}.")
        old, self._value = self._value, value
        _VERSION[0] += 1
        if _hooks.GRAPH is not None:
            _hooks.GRAPH.repoint(old, value, replaced)

    def set_value(self, arr: Any) -> None:
        """Replaces the value; `arr` must have exactly this parameter's shape."""
        where = f"{type(self).__name__}.set_value"
        a = np.asarray(arr)
        if a.shape != self.shape():
            raise ValueError(f"{where}: parameter {self._name!r} has shape {fmt_shape(self.shape())}; "
                             f"given an array of shape {fmt_shape(a.shape)}.")
        if a.dtype.kind not in "fiu":
            raise TypeError(f"{where}: expected a numeric array; given dtype {a.dtype}.")
        self.store(_to_device(a, self._value.dtype))

    # -- arithmetic, so that `W @ h + b` works on parameters directly ----------------
    # With an expression of the computation graph on the other side, the graph does it.
    def __add__(self, o): return _hooks.GRAPH.add(self, o) if _hooks.is_expression(o) else self.value + o
    def __radd__(self, o): return _hooks.GRAPH.add(o, self) if _hooks.is_expression(o) else o + self.value
    def __sub__(self, o): return _hooks.GRAPH.sub(self, o) if _hooks.is_expression(o) else self.value - o
    def __rsub__(self, o): return _hooks.GRAPH.sub(o, self) if _hooks.is_expression(o) else o - self.value
    def __mul__(self, o):
        """DyNet's `*`: a matrix parameter times a vector (or a batch `(..., d)` of them) is the
        matrix product `W·x`; times a scalar, a scaling. Elementwise: `dy.cmult`.

        Only the parameter on the left has DyNet's meaning: `x * W` with a JAX array `x`
        follows JAX's (elementwise, broadcasting) rule, as `x * y` does for two arrays.
        With an expression of the computation graph, the product is a node of the graph."""
        if _hooks.is_expression(o):
            return _hooks.GRAPH.mul(self, o)
        v = self.value
        o = o.value if isinstance(o, _Param) else o
        if not isinstance(o, jax.Array):
            try:
                o = jnp.asarray(o)
            except (TypeError, ValueError):
                raise TypeError(f"{self._name!r} * x: x must be a number or a numeric array; given "
                                f"{type(o).__name__} {o!r:.60}.") from None
        if o.ndim == 0:
            return v * o
        if v.ndim == 2 and o.ndim >= 1:
            if o.shape[-1] != v.shape[1]:
                raise ValueError(f"{self._name!r} * x: the matrix has shape {fmt_shape(v.shape)}, so x needs "
                                 f"{v.shape[1]} entries on its last axis; given x of shape {fmt_shape(o.shape)}.")
            return matvec(v, o)
        raise TypeError(f"{self._name!r} * x: DyNet's `*` is a matrix product, which needs a matrix parameter and a "
                        f"vector (d,) or batch (..., d); given shapes {fmt_shape(v.shape)} and "
                        f"{fmt_shape(o.shape)}. Use dy.cmult(a, b) for an elementwise product.")

    def __rmul__(self, o):
        if _hooks.is_expression(o):
            return _hooks.GRAPH.mul(o, self)
        if isinstance(o, (int, float, np.integer, np.floating)) or (hasattr(o, "ndim") and o.ndim == 0):
            return o * self.value
        raise TypeError(f"x * {self._name!r}: write the parameter on the left (W * x is DyNet's W·x), or use "
                        f"dy.cmult for an elementwise product.")
    def __truediv__(self, o): return _hooks.GRAPH.div(self, o) if _hooks.is_expression(o) else self.value / o
    def __matmul__(self, o): return self.value @ o
    def __rmatmul__(self, o): return o @ self.value
    def __neg__(self): return -self.value

    @property
    def T(self) -> jax.Array:
        return self.value.T

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, shape={fmt_shape(self.shape())}, dtype={self.dtype})"


class Parameters(_Param):
    """A trainable array (DyNet's `Parameters`). Use it where an array is expected."""

    __slots__ = ()

    def __getitem__(self, index: Any) -> jax.Array:
        return self.value[index]

    def clip_inplace(self, left: float, right: float) -> None:
        """Clips every value to [left, right] (DyNet's `clip_inplace`, e.g. a WGAN critic's
        weight clipping)."""
        where = "Parameters.clip_inplace"
        lo, hi = check_real(where, "left", left), check_real(where, "right", right)
        if lo > hi:
            raise ValueError(f"{where}: left must be <= right; given left={lo:g}, right={hi:g}.")
        self.store(jnp.clip(self._value, lo, hi).astype(self._value.dtype))


class LookupParameters(_Param):
    """A table of rows (DyNet's `LookupParameters`): `E[i]` is row i, `E.batch(ids)` rows
    `ids` stacked along a leading batch axis, shape (len(ids), dim)."""

    __slots__ = ()

    def __len__(self) -> int:
        return int(self._value.shape[0])

    def dim(self) -> tuple[tuple[int, ...], int]:
        """DyNet's dims of a table: `((dim, rows), 1)`, as DyNet stores it."""
        rows, *dims = self.shape()
        return (*dims, rows), 1

    def row_count(self) -> int:
        return len(self)

    def gradient(self) -> np.ndarray:
        """The table's gradient since the last update (`grad_as_array()`: its lookups'
        rows summed in), where DyNet's `E.gradient()` raises (the table's own node is not
        in the backward pass its lookups ran)."""
        return self.grad_as_array()

    def row_as_array(self, row: int) -> np.ndarray:
        """Row `row` of the table (DyNet's name)."""
        return np.array(self._value[self._check_ids("LookupParameters.row_as_array", row)])

    def rows_as_array(self, rows: Any) -> np.ndarray:
        return np.array(self._value[self._check_ids("LookupParameters.rows_as_array", np.asarray(rows))])

    def row_grad_as_array(self, row: int) -> np.ndarray:
        return self.grad_as_array()[self._check_ids("LookupParameters.row_grad_as_array", row)]

    def rows_grad_as_array(self, rows: Any) -> np.ndarray:
        return self.grad_as_array()[self._check_ids("LookupParameters.rows_grad_as_array", np.asarray(rows))]

    def _check_ids(self, where: str, ids: Any) -> Any:
        if isinstance(ids, Tracer):
            if not jnp.issubdtype(ids.dtype, jnp.integer):
                raise TypeError(f"{where}: ids must be integers; given dtype {ids.dtype}.")
            return ids
        a = np.asarray(ids)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{where}: ids must be integers; given dtype {a.dtype} ({ids!r}).")
        if a.size and (a.min() < 0 or a.max() >= len(self)):
            bad = a.min() if a.min() < 0 else a.max()
            raise IndexError(f"{where}: id {int(bad)} is out of range for {self._name!r} "
                             f"with {len(self)} rows (valid: 0..{len(self) - 1}).")
        return ids if isinstance(ids, jax.Array) else a

    def _rows(self, ids: Any) -> jax.Array:
        """Rows `ids`. Traced ids (under jit) cannot be checked: an id outside [0, rows) gives
        a row of NaN (not a clamped or wrapped-around row), so a loss that uses it is NaN
        and `Trainer.step` refuses the update with `NonFiniteError`."""
        table = self.value
        if not isinstance(ids, Tracer):
            return table[ids]
        n = table.shape[0]
        valid = (ids >= 0) & (ids < n)
        rows = table[jnp.clip(ids, 0, n - 1)]
        return jnp.where(jnp.reshape(valid, valid.shape + (1,) * (rows.ndim - valid.ndim)), rows, jnp.nan)

    def __getitem__(self, i: Any) -> jax.Array:
        """Row `i`, shape (dim,). Run eagerly (not in a compiled step or under jit), it is
        DyNet's `lookup(E, i)`: an expression of the computation graph."""
        if graph_mode():
            return _hooks.GRAPH.lookup(self, i)
        return self._rows(self._check_ids("LookupParameters[i]", i))

    def batch(self, ids: Any) -> jax.Array:
        """Rows `ids` stacked: ids `(batch,)` give `(batch, dim)` (DyNet's `lookup_batch`);
        any integer array gives `ids.shape + (dim,)`, e.g. `(time, batch)` token ids."""
        if graph_mode():
            return _hooks.GRAPH.lookup_batch(self, ids)
        ids = self._check_ids("LookupParameters.batch", ids)
        if np.ndim(ids) == 0:
            raise ValueError("LookupParameters.batch: ids must have at least one axis (batch,); given a scalar "
                             "(use E[i] for one row).")
        return self._rows(ids)

    def init_row(self, i: int, row: Any) -> None:
        """Sets row `i` to `row` (shape (dim,))."""
        self._check_ids("LookupParameters.init_row", i)
        r = np.asarray(row)
        if r.shape != self.shape()[1:]:
            raise ValueError(f"LookupParameters.init_row: rows of {self._name!r} have shape "
                             f"{fmt_shape(self.shape()[1:])}; given {fmt_shape(r.shape)}.")
        self.store(self._value.at[i].set(jnp.asarray(r, dtype=self._value.dtype)))

    def init_from_array(self, arr: Any) -> None:
        """Sets the whole table (shape (rows, dim))."""
        self.set_value(arr)


class ParameterCollection:
    """DyNet's `ParameterCollection` (`Model`): owns parameters, subcollections, the
    random generator that initialises them, and the PRNG keys handed to dropout.

    Args:
      seed: seeds initialisation and dropout keys; the same seed gives the same values.
        None draws a fresh seed — or, after `dy.set_random_seed(s)` (DyNet's random seed),
        one derived from s and the number of collections made since.
      dtype: the floating dtype of every parameter (float32 unless x64 is enabled).

    Example:
      >>> import dynrnn as dy
      >>> pc = dy.ParameterCollection(seed=0)
      >>> W = pc.add_parameters((3, 4), name="W")
      >>> W.name(), W.shape(), pc.parameter_count()
      ('/W', (3, 4), 12)
    """

    def __init__(self, seed: int | None = None, *, dtype: Any = jnp.float32,
                 _parent: ParameterCollection | None = None, _name: str = "/"):
        if _parent is None:
            if seed is None:
                seed = collection_seed()  # (from dy.set_random_seed, as DyNet's random seed)
            if seed is None:
                seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31))
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise TypeError(f"ParameterCollection: seed must be an int or None; given {seed!r}.")
            dt = jnp.dtype(dtype)
            if dt.kind != "f":
                raise TypeError(f"ParameterCollection: dtype must be floating; given {dt}.")
            self._root = self
            self._seed = int(seed)
            self._rng = np.random.default_rng(self._seed)
            self._dtype = dt
            self._keys = KeyStream(self._seed)
        else:
            self._root = _parent._root
        # DyNet's L2 weight decay: after every update, each parameter made here is multiplied
        # by 1 - λ (a subcollection starts with its parent's λ)
        self._weight_decay = _DEFAULT_WEIGHT_DECAY[0] if _parent is None else _parent._weight_decay
        self._name = _name
        self._params: list[_Param] = []
        self._subs: list[ParameterCollection] = []
        self._used_names: dict[str, int] = {}

    # -- names -------------------------------------------------------------------------
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> Any:
        return self._root._dtype

    def _unique(self, base: str) -> str:
        if base in self._used_names:
            self._used_names[base] += 1
            return f"{base}_{self._used_names[base]}"
        self._used_names[base] = 0
        return base

    def _next_param_name(self, name: str) -> str:
        if name:
            if "/" in name:
                raise ValueError(f"ParameterCollection: parameter names cannot contain '/'; given {name!r}.")
            return self._name + self._unique(name)
        return self._name + self._unique(f"_{len(self._params)}")

    # -- creation ----------------------------------------------------------------------
    def _add(self, cls: type, where: str, dim: Any, init: Any, name: str, scale: float,
             mean: float, std: float, is_lookup: bool) -> Any:
        shape = _check_dim(where, dim)
        if is_lookup and len(shape) < 2:
            raise ValueError(f"{where}: dim must be (rows, dim...); given {dim!r}.")
        initializer = _init.resolve(init, where=where, scale=scale, mean=mean, std=std, is_lookup=is_lookup)
        value = initializer(shape, self._root._rng, self.dtype)
        p = cls(self._next_param_name(name), _to_device(value, self.dtype), self)
        self._params.append(p)
        return p

    def add_parameters(self, dim: Any, init: Any = None, name: str = "", device: str = "", scale: float = 1.0,
                       mean: float = 0.0, std: float = 1.0) -> Parameters:
        """Adds a parameter of shape `dim` (an int or a tuple).

        Args:
          init: None (Glorot), a number (constant), 'uniform' (±scale), 'normal'
            (mean, std), 'identity', 'glorot' (gain=scale), 'he' (variance 2/fan_in),
            'saxe', an ndarray, or an `Initializer`.
          device: DyNet's device name: empty or JAX's default device (`dy.available_devices()`).
        """
        check_device("ParameterCollection.add_parameters", device)
        return self._add(Parameters, "ParameterCollection.add_parameters", dim, init, name,
                         scale, mean, std, is_lookup=False)

    def add_lookup_parameters(self, dim: Any, init: Any = None, name: str = "", device: str = "", scale: float = 1.0,
                              mean: float = 0.0, std: float = 1.0) -> LookupParameters:
        """Adds a lookup table of shape `(rows, dim)`; the default init is U(±√(3/dim))."""
        check_device("ParameterCollection.add_lookup_parameters", device)
        return self._add(LookupParameters, "ParameterCollection.add_lookup_parameters", dim, init,
                         name, scale, mean, std, is_lookup=True)

    def add_subcollection(self, name: str | None = None) -> ParameterCollection:
        """A child collection whose parameters are named `<this>/<name>/...`."""
        base = name if name else "subcollection"
        if "/" in base:
            raise ValueError(f"ParameterCollection.add_subcollection: name cannot contain '/'; given {name!r}.")
        sub = ParameterCollection(_parent=self, _name=self._name + self._unique(base) + "/")
        self._subs.append(sub)
        return sub

    # -- weight decay ------------------------------------------------------------------
    def set_weight_decay(self, lam: float) -> None:
        """DyNet's L2 weight decay λ for the parameters made in this collection: after every
        trainer update each of them (every row of a lookup table, used or not) is multiplied
        by 1 − λ, as DyNet does: p ← (p + step)·(1 − λ); parameters frozen with
        `set_updated(False)` decay too, as DyNet's decay is a factor of the whole collection.
        0 (the default) turns it off."""
        self._weight_decay = _check_weight_decay("ParameterCollection.set_weight_decay", lam)

    def set_weight_decay_lambda(self, lam: float) -> None:
        """DyNet's alias of `set_weight_decay`."""
        self.set_weight_decay(lam)

    def get_weight_decay(self) -> float:
        return self._weight_decay

    # -- listing -----------------------------------------------------------------------
    def _all(self) -> Iterator[_Param]:
        yield from self._params
        for s in self._subs:
            yield from s._all()

    def parameters_from_numpy(self, array: Any, name: str = "", device: str = "") -> Parameters:
        """DyNet's `parameters_from_numpy`: new parameters holding `array` (its shape)."""
        a = np.asarray(array, dtype=np.dtype(self.dtype))
        return self.add_parameters(a.shape, init=_init.NumpyInitializer(a), name=name, device=device)

    def lookup_parameters_from_numpy(self, array: Any, name: str = "", device: str = "") -> LookupParameters:
        a = np.asarray(array, dtype=np.dtype(self.dtype))
        return self.add_lookup_parameters(a.shape, init=_init.NumpyInitializer(a), name=name, device=device)

    def parameters_list(self) -> list[Parameters]:
        """Every `Parameters` here and in subcollections, in creation order per collection."""
        return [p for p in self._all() if isinstance(p, Parameters)]

    def lookup_parameters_list(self) -> list[LookupParameters]:
        return [p for p in self._all() if isinstance(p, LookupParameters)]

    def all_parameters(self) -> list[_Param]:
        """Parameters and lookup parameters together, in a fixed order."""
        return list(self._all())

    def parameter_count(self) -> int:
        """The number of scalars in all parameters (lookup tables included)."""
        return sum(math.prod(p.shape()) for p in self._all())

    # -- functional view ---------------------------------------------------------------
    def parameter_values(self) -> dict[str, jax.Array]:
        """`{full name: value}` for every parameter: a pytree to differentiate or update."""
        return {p.name(): p.value for p in self._all()}

    @contextlib.contextmanager
    def bind(self, values: Mapping[str, Any]) -> Iterator[None]:
        """Inside the block, each parameter named in `values` reads as that value.

        This is how gradients with respect to the collection are taken:
        `jax.grad(lambda v: (pc.bind(v) and loss()))`-style code is wrapped by
        `dynrnn.value_and_grad`; use it directly for custom transformations.
        """
        by_name = {p.name(): p for p in self._all()}
        binding: dict[int, jax.Array] = {}
        for name, v in values.items():
            if name not in by_name:
                raise KeyError(f"ParameterCollection.bind: no parameter named {name!r} in {self._name!r}.")
            p = by_name[name]
            if tuple(jnp.shape(v)) != p.shape():
                raise ValueError(f"ParameterCollection.bind: {name!r} has shape {fmt_shape(p.shape())}; "
                                 f"given {fmt_shape(tuple(jnp.shape(v)))}.")
            binding[id(p)] = v
        _REGISTRY.bindings.append(binding)
        try:
            yield
        finally:
            _REGISTRY.bindings.remove(binding)

    def set_parameter_values(self, values: Mapping[str, Any]) -> None:
        """Stores `values` (as from `parameter_values()`) into the parameters."""
        by_name = {p.name(): p for p in self._all()}
        for name, v in values.items():
            if name not in by_name:
                raise KeyError(f"ParameterCollection.set_parameter_values: no parameter named {name!r}.")
            by_name[name].set_value(v)

    # -- randomness --------------------------------------------------------------------
    def next_key(self) -> jax.Array:
        """A fresh PRNG key derived from the seed (for dropout masks and sampling).

        Inside `dynrnn.value_and_grad` and `Trainer.step` the keys derive from a key that
        is an *argument* of the compiled step, so every step draws fresh masks.
        """
        return self._root._keys.next()

    def key_scope(self, key: jax.Array) -> contextlib.AbstractContextManager:
        """Inside the block, `next_key()` derives its keys from `key` (possibly a tracer)."""
        return self._root._keys.scope(key)

    @property
    def keys(self) -> KeyStream:
        """The collection's key stream (shared by its sub-collections)."""
        return self._root._keys

    @property
    def seed(self) -> int:
        return self._root._seed

    # -- files -------------------------------------------------------------------------
    def save(self, path: str, key: str = "", append: bool = False, *, metadata: Any = None) -> None:
        """Writes every parameter to `path` (a pickle-free .npz with a JSON header), atomically.

        `key` and `append` are DyNet's: with `key` ("/encoder") the parameters are stored
        under that prefix, for `populate(path, key)`; with `append=True` they are added to
        the parameters already in the file (several collections in one file).
        `metadata`: optional JSON data (a vocabulary, hyperparameters) stored in the same
        file; read it back with `dy.load_metadata(path)`."""
        from ._io import save_collection
        save_collection(self, path, metadata, key, append)

    def populate(self, path: str, key: str = "") -> None:
        """Reads values saved by `save` into this collection's parameters, by name.

        With `key`, only saved parameters under that name prefix are read, and the prefix
        is replaced by this collection's name (DyNet's `populate(fname, key)`).
        """
        from ._io import populate_collection
        populate_collection(self, path, key)

    # DyNet's other names for them (its text format there; dynrnn's file format here)
    write_to_textfile = save
    populate_from_textfile = populate

    def load_param(self, path: str, key: str) -> Parameters:
        """DyNet's `load_param(fname, key)`: the parameter saved under `key` (by `save`,
        under its name, e.g. "/W") added to this collection with its saved value."""
        from ._io import saved_parameter
        name, a = saved_parameter(path, key, "Parameters", "ParameterCollection.load_param")
        return self.add_parameters(a.shape, init=a, name=name)

    def load_lookup_param(self, path: str, key: str) -> LookupParameters:
        """DyNet's `load_lookup_param(fname, key)`: `load_param` for a lookup table."""
        from ._io import saved_parameter
        name, a = saved_parameter(path, key, "LookupParameters", "ParameterCollection.load_lookup_param")
        return self.add_lookup_parameters(a.shape, init=a, name=name)

    def __repr__(self) -> str:
        return (f"ParameterCollection(name={self._name!r}, parameters={len(list(self._all()))}, "
                f"scalars={self.parameter_count()})")


Model = ParameterCollection
