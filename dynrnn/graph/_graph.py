"""The computation graph and its expressions (DyNet's `ComputationGraph` / `Expression`).

An `Expression` is a node: an operation, its argument expressions, host constants (ids,
indices) and static settings, DyNet's dimensions `(dims, batch)`, and — once the graph has
run forward up to it — its value. Nodes are created in topological order; `value()` runs
the graph forward up to the node (`_schedule.forward`), `backward()` runs it back from a
scalar node into the parameters' gradients (`_schedule.backward`).

Layout of a value: a node of DyNet dims `d` and batch size `B` holds an array of shape
`d` when `B == 1` and `(B,) + d` otherwise (the batch leads, as everywhere in dynrnn);
DyNet's scalars are dims `(1,)`. `npvalue()` returns DyNet's layout (batch last).
"""

from __future__ import annotations

import threading
from typing import Any

import jax
import numpy as np

from ._kernels import Sig
from ._tensor import Tensor


class GraphError(RuntimeError):
    """An expression was used outside the computation graph it belongs to."""


class Graph:
    """One computation graph: the nodes since the last `renew_cg()`."""

    __slots__ = ("version", "nodes", "evaluated", "launches", "params", "grads", "owners", "rows",
                 "ran", "plan", "replayed", "backward_replayed", "trained", "checkpoints", "__weakref__")

    def __init__(self, version: int):
        self.version = version
        self.nodes: list[Expression] = []
        self.evaluated = 0  # nodes[:evaluated] all have values
        self.launches: list = []  # the kernel calls that computed them, for backward
        self.params: dict = {}  # id(parameter) -> its leaf node in this graph
        self.grads: dict = {}  # node or launch -> gradient, from the last backward()
        self.owners: dict = {}  # id(stacked output) -> (launch, slot)
        self.rows: dict = {}  # (id(stacked output), first row) -> a chunk of its rows as separate arrays
        self.ran = False  # whether any kernel has run (a replay needs a graph that ran nothing)
        self.plan: Any = None  # the replay plan of the structure first evaluated (`_replay`)
        self.replayed: Any = None  # a replay's state, while the graph holds replayed values
        self.backward_replayed: Any = None  # the loss of a replayed backward()
        self.trained = False  # backward() has run into the parameters
        self.checkpoints: list[tuple[int, int]] = []  # (nodes, launches) per cg_checkpoint(), last on top


# Whether graph mode is open in a thread before its first renew_cg() (`open_by_default`).
_OPEN_BY_DEFAULT = [False]


class _Current(threading.local):
    def __init__(self) -> None:
        self.graph = Graph(0)
        self.opened = _OPEN_BY_DEFAULT[0]  # renew_cg() opens graph mode for eager code in this thread
        self.autobatch = True
        self.replay = "auto"  # compile recurring graph structures whole: "auto", "always", "never"
        self.rng: Any = None  # host RNG for noise/dropout keys and random inputs
        self.rng_seeding = 0  # the `set_random_seed` call it was seeded after (`_random.seeding`)
        self.keys: Any = None  # (rng, a block of keys drawn from it, the next one to give)
        self.lap: Any = None  # (replay plan, start time, graph version, how it ran) of the last graph (`_replay._lap`)
        # compile VJPs ahead (`_kernels`): from the first graph on, until two in a row end
        # without backward() (so a training loop's first update gains too, also when the
        # program samples or evaluates once before it trains, as DyNet's rnnlm.py does; an
        # evaluation loop wastes the background compilations of two graphs)
        self.untrained = 0  # graphs in a row that ended without backward()
        self.training = True
        self.compile_ahead = True  # dy.config(compile_ahead=...)


CURRENT = _Current()


def current_graph() -> Graph:
    return CURRENT.graph


def renew_cg(immediate_compute: bool = False, check_validity: bool = False) -> Graph:
    """Starts a new computation graph; expressions of the old one become unusable. From
    the first call on, eager code in this thread builds graph nodes (`E[i]`,
    `dy.inputTensor`, ... return expressions)."""
    if CURRENT.graph.nodes:  # (an empty graph says nothing about the program)
        CURRENT.untrained = 0 if CURRENT.graph.trained else CURRENT.untrained + 1
        CURRENT.training = CURRENT.untrained < 2
    _retire(CURRENT.graph)
    CURRENT.graph = Graph(CURRENT.graph.version + 1)
    CURRENT.opened = True
    return CURRENT.graph


def _retire(g: Graph) -> None:
    """Drops what a replaced graph and its nodes hold — arguments, values, kernel outputs.
    An expression the program keeps past `renew_cg()` is unusable (its version is stale),
    but through its arguments it kept every node it was computed from, and their values,
    alive: DyNet's treelstm example keeps each tree node's h on the tree, which kept every
    graph of an epoch (20,000 nodes per graph of 25 trees; Python's cycle collector, walking
    them all, took a third of the time)."""
    release(g.nodes)
    g.nodes, g.launches, g.params, g.grads, g.owners, g.rows = [], [], {}, {}, {}, {}


def release(nodes: list) -> None:
    """Drops what nodes that left their graph (replaced, or reverted) hold: their arguments
    and values (they can no longer be used; a program may still hold them)."""
    for n in nodes:
        n.args = n.consts = ()
        n.val = n.extra = n.child = None


def end_graph() -> None:
    """Leaves graph mode in this thread: until the next `renew_cg()`, eager code works on
    arrays again (`E[i]` is an array)."""
    _retire(CURRENT.graph)
    CURRENT.graph = Graph(CURRENT.graph.version + 1)
    CURRENT.opened = False


def open_by_default(flag: bool = True) -> None:
    """DyNet's implicit first graph: with `flag`, eager code builds graph nodes from the
    start, in this thread and every thread that starts using dynrnn later, as in a DyNet
    program that never calls `renew_cg()` (`import dynrnn.dynet` sets it). `False` restores
    dynrnn's default: arrays until the first `renew_cg()`."""
    _OPEN_BY_DEFAULT[0] = bool(flag)
    if flag:
        CURRENT.opened = True
    elif not CURRENT.graph.nodes:
        CURRENT.opened = False


def graph_open() -> bool:
    return CURRENT.opened


def cg_version() -> int:
    return CURRENT.graph.version


# The graph version of an expression that `cg_revert()` removed from its graph.
REVERTED = -1


def why_stale(gv: int, version: int) -> str:
    """Why an expression of graph version `gv` cannot be used in graph `version`."""
    if gv == REVERTED:
        return "was removed from its graph by dy.cg_revert() (it was made after the dy.cg_checkpoint())"
    return (f"belongs to computation graph {gv}, but dy.renew_cg() has since started graph {version} "
            f"(stale expression)")


def cg_checkpoint() -> None:
    """Marks the current graph's size: `cg_revert()` removes every node made after it."""
    g = CURRENT.graph
    g.checkpoints.append((len(g.nodes), len(g.launches)))


def graphviz(g: Graph) -> str:
    """The graph in Graphviz's dot language, as DyNet's `print_text_graphviz()` prints it:
    one node per expression (`v3 = matmul(v1, v2) {4}`; `x8` for a minibatch of 8), an edge
    from each argument."""
    lines = ["digraph G {", "  rankdir=LR;", "  nodesep=.05;"]
    for n in g.nodes:
        dims = ",".join(str(d) for d in n.dims) if all(isinstance(d, int) for d in n.dims) else "state"
        args = ", ".join(f"v{a.index}" for a in n.args)
        batch = f"x{n.batch}" if n.batch > 1 else ""
        name = n.static if n.op.name == "unary" and isinstance(n.static, str) else n.op.name  # tanh, not unary
        lines.append(f'  N{n.index} [label="v{n.index} = {name}({args}) {{{dims}}}{batch}"];')
    lines += [f"  N{a.index} -> N{n.index};" for n in g.nodes for a in n.args]
    lines.append("}")
    return "\n".join(lines)


_DTYPES: dict = {}  # a dtype (or what a value reports as one) -> (np.dtype, its code '<f4')


class Expression:
    """A node of the current computation graph, with DyNet's semantics.

    `dim()` is DyNet's `((dims...), batch_size)`; `*` is DyNet's product (matrix × matrix or
    vector, or scaling by a number); `+`, `-` broadcast a batch of one against a batch of B;
    `value()`, `npvalue()`, `scalar_value()`, `vec_value()` run the graph forward as far as
    needed; `backward()` accumulates the gradient of a scalar into the parameters, for
    `trainer.update()`. NumPy and JAX see the value (`np.asarray(e)`, `jnp.asarray(e)`) in
    dynrnn's layout: the batch axis first.
    """

    __slots__ = ("gv", "index", "op", "args", "consts", "static", "dims", "batch", "val", "depth",
                 "sig", "const", "child", "extra", "dt", "part", "__weakref__")
    __array_priority__ = 1000  # numpy defers `array + expr` to Expression.__radd__
    __dynrnn_expression__ = True

    def __init__(self, graph: Graph, op: Any, args: tuple, consts: tuple, static: Any, dims: tuple,
                 batch: int, sig: Sig | None, value: Any = None, const: bool = True, dtype: Any = None):
        # The graph's version, not the graph: no reference cycle, so a finished graph is
        # freed as soon as it is replaced (measured: Python's cycle collector walking old
        # graphs cost a third of a small decoder's update).
        self.gv = graph.version
        self.index = len(graph.nodes)
        self.op, self.args, self.consts, self.static = op, args, consts, static
        self.dims, self.batch, self.sig = dims, batch, sig
        self.val = value
        depth = -1
        for a in args:
            if a.depth > depth:
                depth = a.depth
        self.depth = depth + 1
        self.const = const
        self.child: Any = None  # recurrent steps: the index of the one step that continues this one
        self.extra: Any = None
        dt = dtype if dtype is not None else value[0].dtype if isinstance(value, tuple) else value.dtype
        known = _DTYPES.get(dt)
        if known is None:
            known = _DTYPES[dt] = (np.dtype(dt), np.dtype(dt).str)
        self.dt = known[0]
        self.part = (dims, batch, known[1])  # this node as an argument of a signature
        graph.nodes.append(self)
        if value is not None and graph.evaluated == self.index:
            graph.evaluated += 1

    # -- lifetime ------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The graph this expression belongs to (the current one, while it is live)."""
        g = CURRENT.graph
        if g.version != self.gv:
            raise GraphError(f"Expression: this expression {why_stale(self.gv, g.version)}. Build it again.")
        return g

    def live(self) -> bool:
        return CURRENT.graph.version == self.gv

    def _check_live(self, what: str) -> None:
        if CURRENT.graph.version != self.gv:
            raise GraphError(f"Expression.{what}: this expression {why_stale(self.gv, CURRENT.graph.version)}. "
                             f"Build it again.")

    # -- DyNet's reading methods ---------------------------------------------------------
    def dim(self) -> tuple[tuple[int, ...], int]:
        """DyNet's dimensions: `((d1, d2, ...), batch_size)`."""
        self._check_live("dim")
        return self.dims, self.batch

    def _array(self, what: str, recalculate: bool = False) -> jax.Array:
        self._check_live(what)
        from . import _schedule
        if recalculate:
            _schedule.invalidate(self.graph)
        if self.val is None:
            _schedule.forward(self)
        return _schedule.materialize(self.graph, self.val)

    def forward(self, recalculate: bool = False) -> None:
        """Runs the graph forward up to this expression (DyNet's incremental forward).
        `recalculate=True` computes every node again, with the parameters' current values
        (after `trainer.update()`; DyNet keeps the values computed before otherwise)."""
        self._array("forward", recalculate)

    def npvalue(self, recalculate: bool = False) -> np.ndarray:
        """The value as a NumPy array in DyNet's layout: `dims`, then the batch axis last
        when the batch size is above one."""
        a = np.asarray(self._array("npvalue", recalculate))
        # a fresh, writable array, as DyNet's (the graph's own value is read-only)
        return np.array(np.moveaxis(a, 0, -1) if self.batch > 1 else a)

    def scalar_value(self, recalculate: bool = False) -> float:
        """The value of a scalar expression (dims (1,), batch 1) as a float."""
        a = np.asarray(self._array("scalar_value", recalculate))
        if a.size != 1:
            raise ValueError(f"Expression.scalar_value: the expression has dims {self.dims} and batch size "
                             f"{self.batch}; a scalar (dims (1,), batch 1) was expected. Use npvalue().")
        return float(a.reshape(()))

    def vec_value(self, recalculate: bool = False) -> list[float]:
        """All values as a flat list, column-major as DyNet lists them (batch last)."""
        a = np.asarray(self._array("vec_value", recalculate))
        return np.ravel(np.moveaxis(a, 0, -1) if self.batch > 1 else a, order="F").tolist()

    def value(self, recalculate: bool = False) -> Any:
        """A float for a one-element expression, a list for a vector, else `npvalue()`."""
        self._array("value", recalculate)
        if len(self.dims) >= 2:
            return self.npvalue()
        vec = self.vec_value()
        return vec[0] if len(vec) == 1 else vec

    def tensor_value(self, recalculate: bool = False) -> Tensor:
        """The value as DyNet's `Tensor` (`as_numpy()`, `argmax`, `topk`,
        `categorical_sample_log_prob`; NumPy and JAX read it in dynrnn's layout)."""
        return Tensor(self._array("tensor_value", recalculate), self.dims, self.batch)

    def set(self, data: Any) -> None:
        """DyNet's `set()` of an input expression (`dy.vecInput`, `dy.inputVector`,
        `dy.scalarInput`, `dy.matInput`, `dy.inputTensor`): gives it a new value — a number
        for a scalar, else the values as a flat list in DyNet's column-major order (batch
        last), or an array of the expression's DyNet shape — and drops every value the
        graph computed, so the next `value()` computes again (DyNet's way of using one graph
        as a static one: build it once, `set()` the inputs, read the loss, `backward()`,
        `trainer.update()`; parameters are read at their current values)."""
        self._check_live("set")
        if self.sig is not None or self.op.name != "input":
            raise TypeError(f"Expression.set: only an input expression (dy.vecInput, dy.inputVector, dy.scalarInput, "
                            f"dy.matInput, dy.inputTensor) can be set; this one is computed by "
                            f"{self.static if self.op.name == 'unary' else self.op.name}.")
        want = self.dims if self.batch == 1 else self.dims + (self.batch,)  # DyNet's shape: batch last
        try:
            a = np.asarray(data, self.dt)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Expression.set: expected numbers; given {type(data).__name__} ({e}).") from None
        size = int(np.prod(want))
        if a.shape == want or (a.ndim == 0 and size == 1):
            a = a.reshape(want)
        elif a.ndim == 1 and a.size == size:
            a = a.reshape(want, order="F")  # DyNet's flat list is column-major
        else:
            raise ValueError(f"Expression.set: this input has dims {self.dims} and batch size {self.batch}: expected "
                             f"{size} numbers (a flat list, column-major) or an array of shape {want}; given an "
                             f"array of shape {a.shape}.")
        from . import _schedule
        _schedule.invalidate(self.graph)
        self.val = np.ascontiguousarray(np.moveaxis(a, -1, 0) if self.batch > 1 else a)

    def gradient(self) -> np.ndarray:
        """The gradient of the last `backward()` with respect to this expression (DyNet
        layout); zeros where nothing flowed back."""
        self._check_live("gradient")
        if not self.graph.grads and self.graph.backward_replayed is None:
            raise RuntimeError("Expression.gradient: no backward() has run in this graph yet; call "
                               "loss.backward() (full=True for gradients of inputs) first.")
        from . import _schedule
        g = _schedule.gradient_of(self)
        a = np.asarray(g)
        return np.moveaxis(a, 0, -1) if self.batch > 1 else a

    def backward(self, full: bool = False) -> None:
        """Accumulates d(this)/d(parameter) into every parameter used; `trainer.update()`
        applies and clears them. This expression must be a scalar (dims (1,)); a batch of
        scalars backpropagates their sum, as in DyNet."""
        self._check_live("backward")
        if self.dims != (1,):
            raise ValueError(f"Expression.backward: backward() can only be called on scalar nodes (dims (1,)); "
                             f"this one has dims {self.dims}. Reduce it first, e.g. dy.sum_elems(e).")
        self._array("backward")
        from . import _schedule
        _schedule.backward(self, full)

    # -- NumPy / JAX interoperation ------------------------------------------------------
    def __jax_array__(self) -> jax.Array:
        return self._array("__jax_array__")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = np.asarray(self._array("__array__"))
        return np.array(a, dtype=dtype) if copy else np.asarray(a, dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the value in dynrnn's layout (`dims`, with the batch first if > 1)."""
        return self.dims if self.batch == 1 else (self.batch,) + self.dims

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> Any:
        return self.dt

    def __float__(self) -> float:
        return self.scalar_value()

    def __len__(self) -> int:
        return self.shape[0]

    def __bool__(self) -> bool:  # `e or default` must not evaluate anything
        return True

    def __repr__(self) -> str:
        live = "" if self.live() else ", stale"
        return f"Expression({self.op.name}, dims={self.dims}, batch={self.batch}{live})"

    __str__ = __repr__

    # -- DyNet's operators (the operations live in _ops) ---------------------------------
    def __add__(self, o): return _ops().add(self, o)
    def __radd__(self, o): return _ops().add(o, self)
    def __sub__(self, o): return _ops().sub(self, o)
    def __rsub__(self, o): return _ops().sub(o, self)
    def __mul__(self, o): return _ops().mul(self, o)
    def __rmul__(self, o): return _ops().rmul(self, o)
    def __truediv__(self, o): return _ops().div(self, o)
    def __rtruediv__(self, o): return _ops().div(o, self)
    def __neg__(self): return _ops().neg(self)
    def __pow__(self, o): return _ops().pow(self, o)
    def __matmul__(self, o): return _ops().mul(self, o)
    def __getitem__(self, index): return _ops().getitem(self, index)
    __hash__ = object.__hash__


def _ops():
    if not _OPS:
        from . import _ops as ops
        _OPS.append(ops)
    return _OPS[0]


_OPS: list = []  # the operations module, once imported (it imports this one)


def is_expression(x: Any) -> bool:
    return type(x) is Expression
