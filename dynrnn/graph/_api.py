"""The public DyNet vocabulary: one name, two modes.

Each function builds a node of the computation graph when it is given an expression
(or, for the constructors — `inputTensor`, `lookup`, `parameter`, ... — when it runs
eagerly), and otherwise runs the array function of `dynrnn._expressions` on `jax.Array`s:
inside `jax.jit`, `Trainer.step` and `value_and_grad` nothing changes, no graph is built.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax

from .. import _expr_losses as AL
from .. import _expressions as A
from .. import _trainers as T
from .._devices import check_device
from .._hooks import any_expression, is_expression
from .._params import bindings_active, default_weight_decay, graph_mode, set_default_weight_decay, staging
from .._random import set_random_seed
from . import _conv as C
from . import _graph, _schedule
from . import _loss_ops as LO
from . import _lstm_ops as L
from . import _more_ops as M
from . import _ops as G
from ._graph import CURRENT, cg_version
from ._graph import renew_cg as _renew


def _uses_graph(args: tuple, kwargs: dict) -> bool:
    for a in args:
        if is_expression(a) or any_expression(a):
            return True
    if kwargs and any(is_expression(v) or any_expression(v) for v in kwargs.values()):
        return True
    # parameters used eagerly in graph mode are nodes of the graph (DyNet: dy.sum_elems(W))
    return any(G.is_param(a) for a in args) and graph_mode()


def _dual(array_fn: Callable, graph_fn: Callable, *, constructor: bool = False) -> Callable:
    """A public name: `graph_fn` for expressions (and eagerly, for constructors), else
    `array_fn`."""
    if constructor:
        def f(*args, **kwargs):
            if graph_mode() or _uses_graph(args, kwargs):
                return graph_fn(*args, **kwargs)
            return array_fn(*args, **kwargs)
    else:
        def f(*args, **kwargs):
            if _uses_graph(args, kwargs):
                return graph_fn(*args, **kwargs)
            return array_fn(*args, **kwargs)
    functools.update_wrapper(f, array_fn)
    f.__doc__ = (array_fn.__doc__ or "").rstrip() + "\n\n    On expressions: " + (graph_fn.__doc__ or "a graph node.")
    return f


def _listing(f: Callable) -> Callable:
    """`f` for DyNet's list operations (`esum(xs)`, ...): a generator or other iterator
    given as the list is read into a list first, so that its expressions are seen."""
    def g(*args, **kwargs):
        if args and hasattr(type(args[0]), "__next__"):
            args = (list(args[0]),) + args[1:]
        return f(*args, **kwargs)
    functools.update_wrapper(g, f)
    return g


def _graph_only(graph_fn: Callable, *, constructor: bool = False) -> Callable:
    name = graph_fn.__name__

    def f(*args, **kwargs):
        if constructor or _uses_graph(args, kwargs) or any(G.is_param(a) for a in args):
            return graph_fn(*args, **kwargs)
        raise TypeError(f"dy.{name}: expected expressions of the computation graph (dy.inputTensor, dy.lookup, "
                        f"dy.parameter, ...); given {', '.join(type(a).__name__ for a in args)}.")
    functools.update_wrapper(f, graph_fn)
    return f


def renew_cg(immediate_compute: bool = False, check_validity: bool = False, autobatching: Any = None) -> None:
    """Starts a new computation graph: expressions of the previous one can no longer be
    used (as in DyNet), and eager code of this thread builds graph nodes from now on.
    Arrays, parameters and array-mode states are unaffected. Inside compiled code (a
    training step, `jax.jit`) it does nothing: there is no graph there."""
    if bindings_active() or staging():
        return
    _renew()


def _set_kernel_cache(where: Any) -> None:
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()  # JAX reads the directory once: make it read it again
    if where is None or where is False or where == "":
        jax.config.update("jax_compilation_cache_dir", None)
        return
    if where is True:
        where = os.path.join(os.path.expanduser("~"), ".cache", "dynrnn", "kernels")
    if not isinstance(where, (str, os.PathLike)):
        raise TypeError(f"dy.config: kernel_cache must be a directory (str), True (the default directory) or "
                        f"False (off); given {type(where).__name__}.")
    where = os.path.abspath(os.path.expanduser(os.fspath(where)))
    os.makedirs(where, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", where)
    # graph mode compiles many small kernels: keep every one, however quick its compile
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# DyNet's settings that mean nothing here (JAX manages memory and devices; no profiler)
_DYNET_IGNORED = frozenset({"mem", "profiling", "shared_parameters", "requested_gpus", "gpu_mask", "devices"})


def config(autobatch: Any = None, debug_nans: Any = None, replay: Any = None, kernel_cache: Any = None,
           compile_ahead: Any = None, async_updates: Any = None, random_seed: Any = None, weight_decay: Any = None,
           **dynet: Any) -> dict:
    """Settings (DyNet's `dynet_config.set`), returned as a dict.

    autobatch: 1 (the default) runs same-signature nodes of a graph as one kernel call, and
      recurrent chains as scans; 0 runs every node on its own, in creation order.
    debug_nans: True makes any operation that produces a NaN raise `FloatingPointError` where
      it happens, in graph mode and inside compiled steps alike (JAX's `jax_debug_nans`: every
      kernel's result is checked, a device sync per call, and compiled code that produced a
      NaN is re-run op by op to find it). Off by default: then a NaN reaches the loss, and
      `Trainer.step`/`update` refuse it with `NonFiniteError`, changing nothing.
    replay: "auto" (the default) compiles a graph structure that keeps coming back (same
      operations, shapes and wiring; other data) as one function, once its graphs have
      spent on the kernel path what compiling it is estimated to cost; later graphs of that
      structure run as one call. "always" compiles every structure at first sight (tests),
      "never" keeps every graph on the kernel path. Results are the same.
    kernel_cache: a directory (True: ~/.cache/dynrnn/kernels; False: off) where compiled
      kernels are kept across runs (JAX's persistent compilation cache, which then applies
      to every compilation of the process, the user's own `jax.jit` included). A DyNet
      program run a second time then loads its kernels instead of compiling them: measured
      on DyNet's tagger, 400 updates took 52 s on a first run and 8 s with the cache warm.
      Off by default; the environment variable DYNRNN_KERNEL_CACHE (a directory) turns it
      on for programs run unchanged.
    compile_ahead: True (the default) compiles, in a training loop (from the first graph on,
      until two in a row end without backward()), the VJP of each kernel that has just
      compiled on a background thread while the forward pass goes on, so that two kernels
      compile at once on two cores; False compiles everything on the calling thread, when
      backward() first needs it. Results are the same.
    async_updates: True (the default) lets `trainer.update()` after backward() return before
      the device has run the update, so that the next graph is built meanwhile; the update
      is still all or nothing, and a refused one is reported by the next call of that
      trainer (see `Trainer.update`). False waits, and raises a refusal from update()
      itself, as DyNet does. The environment variable DYNRNN_ASYNC_UPDATES=0 turns it off
      for programs run unchanged. Results are the same.

    random_seed: DyNet's seed: `dy.set_random_seed(random_seed)` (0, as in DyNet: unseeded).
    weight_decay: DyNet's L2 weight decay λ (`--dynet-weight-decay`) for the collections made
      after this call: after every update each of their parameters is multiplied by 1 − λ
      (`ParameterCollection.set_weight_decay` sets it per collection).

    DyNet's memory, profiling and device options (mem, profiling, shared_parameters,
    requested_gpus, gpu_mask, devices) have no meaning here and are accepted and ignored;
    any other name is an error."""
    unknown = sorted(set(dynet) - _DYNET_IGNORED)
    if unknown:
        raise TypeError(f"dy.config: unknown setting(s) {unknown}; expected autobatch, debug_nans, replay, "
                        f"kernel_cache, compile_ahead, async_updates, random_seed, weight_decay (or DyNet's "
                        f"{sorted(_DYNET_IGNORED)}, which are ignored).")
    if weight_decay is not None:
        set_default_weight_decay(weight_decay)
    if random_seed:
        set_random_seed(random_seed)
    if autobatch is not None:
        CURRENT.autobatch = bool(autobatch)
    if debug_nans is not None:
        jax.config.update("jax_debug_nans", bool(debug_nans))
    if replay is not None:
        modes = {"auto": "auto", "always": "always", "never": "never", True: "auto", False: "never"}
        if replay not in modes:
            raise ValueError(f"dy.config: replay must be 'auto', 'always' or 'never'; given {replay!r}.")
        CURRENT.replay = modes[replay]
    if kernel_cache is not None:
        _set_kernel_cache(kernel_cache)
    if compile_ahead is not None:
        CURRENT.compile_ahead = bool(compile_ahead)
    if async_updates is not None:
        T.set_async_updates(bool(async_updates))
    nans = jax.config.jax_debug_nans  # pyright: ignore[reportAttributeAccessIssue] (a flag set at run time)
    return {"autobatch": int(CURRENT.autobatch), "debug_nans": bool(nans),
            "replay": CURRENT.replay, "kernel_cache": jax.config.jax_compilation_cache_dir,  # pyright: ignore
            "compile_ahead": CURRENT.compile_ahead, "async_updates": T.async_updates(),
            "weight_decay": default_weight_decay()}


if os.environ.get("DYNRNN_KERNEL_CACHE"):
    _set_kernel_cache(os.environ["DYNRNN_KERNEL_CACHE"])
if os.environ.get("DYNRNN_ASYNC_UPDATES", "").strip().lower() in ("0", "false", "off"):
    T.set_async_updates(False)


def forward(exprs: list, recalculate: bool = False) -> None:
    """Runs the graph forward up to the last of `exprs` (`recalculate=True`: every node
    again, with the parameters' current values)."""
    if exprs:
        max(exprs, key=lambda e: e.index).forward(recalculate)


def values(exprs: list, recalculate: bool = False) -> list:
    forward(exprs, recalculate)
    return [e.value() for e in exprs]


def npvalues(exprs: list, recalculate: bool = False) -> list:
    forward(exprs, recalculate)
    return [e.npvalue() for e in exprs]


def to_device(e: Any, device_str: str) -> Any:
    """DyNet's `to_device`: `e` on the device `device_str` — JAX's default device, where `e`
    already is (another device is an error: `dynrnn._devices`)."""
    check_device("dy.to_device", device_str)
    if isinstance(e, _graph.Expression) and not e.live():
        raise _graph.GraphError(f"dy.to_device: this expression "
                                f"{_graph.why_stale(e.gv, _graph.CURRENT.graph.version)}.")
    return e


def cg_checkpoint() -> None:
    """DyNet's: marks the current graph's size, for `cg_revert()` (checkpoints nest)."""
    _graph.cg_checkpoint()


def cg_revert() -> None:
    """DyNet's: removes every node made since the last `cg_checkpoint()` (using one of them
    afterwards is an error, not, as in DyNet, whatever reuses its place): a beam search can
    try an extension and take it back without a new graph."""
    _schedule.revert(_graph.CURRENT.graph)


# -- constructors ------------------------------------------------------------------------------
inputTensor = _dual(A.inputTensor, G.inputTensor, constructor=True)
inputVector = _dual(A.inputVector, G.inputVector, constructor=True)
vecInput = _dual(A.vecInput, G.vecInput, constructor=True)
scalarInput = _dual(A.scalarInput, G.scalarInput, constructor=True)
zeros = _dual(A.zeros, G.zeros, constructor=True)
ones = _dual(A.ones, G.ones, constructor=True)
random_normal = _dual(A.random_normal, G.random_normal, constructor=True)
lookup = _dual(A.lookup, G.lookup, constructor=True)
lookup_batch = _dual(A.lookup_batch, G.lookup_batch, constructor=True)
parameter = _dual(A.parameter, G.parameter, constructor=True)
const_parameter = _dual(A.const_parameter, G.const_parameter, constructor=True)
matInput = _graph_only(G.matInput, constructor=True)
sparse_inputTensor = _graph_only(G.sparse_inputTensor, constructor=True)
constant = _graph_only(G.constant, constructor=True)
random_uniform = _graph_only(G.random_uniform, constructor=True)
random_bernoulli = _graph_only(G.random_bernoulli, constructor=True)


# -- operations present in both modes ----------------------------------------------------------
affine_transform = _listing(_dual(A.affine_transform, G.affine_transform))
concatenate = _listing(_dual(A.concatenate, G.concatenate))
concatenate_cols = _listing(_dual(A.concatenate_cols, G.concatenate_cols))
reshape = _dual(A.reshape, G.reshape)
transpose = _dual(A.transpose, G.transpose)
cmult = _dual(A.cmult, G.cmult)
cdiv = _dual(A.cdiv, G.cdiv)
dot_product = _dual(A.dot_product, G.dot_product)
sum_elems = _dual(A.sum_elems, G.sum_elems)
mean_elems = _dual(A.mean_elems, G.mean_elems)
esum = _listing(_dual(A.esum, G.esum))
average = _listing(_dual(A.average, G.average))
sum_batches = _dual(A.sum_batches, G.sum_batches)
pick = _dual(A.pick, G.pick)
pick_batch = _dual(A.pick_batch, G.pick_batch)
select_rows = _dual(A.select_rows, G.select_rows)
max_dim = _dual(A.max_dim, G.max_dim)
emax = _listing(_dual(A.emax, G.emax))
elu = _dual(A.elu, G.elu)
softmax = _dual(A.softmax, G.softmax)
log_softmax = _dual(A.log_softmax, G.log_softmax)
pickneglogsoftmax = _dual(AL.pickneglogsoftmax, LO.pickneglogsoftmax)
pickneglogsoftmax_batch = _dual(AL.pickneglogsoftmax_batch, LO.pickneglogsoftmax_batch)
binary_log_loss = _dual(AL.binary_log_loss, LO.binary_log_loss)
squared_distance = _dual(AL.squared_distance, LO.squared_distance)
l1_distance = _dual(AL.l1_distance, LO.l1_distance)
hinge = _dual(AL.hinge, LO.hinge)
dropout = _dual(AL.dropout, LO.dropout)
block_dropout = _dual(AL.block_dropout, LO.block_dropout)
noise = _dual(AL.noise, LO.noise)


def _unary(name: str, array_fn: Callable | None) -> Callable:
    def graph_fn(x):
        return G.unary(name, x)
    graph_fn.__name__ = name
    graph_fn.__doc__ = f"{name}(x) elementwise, as a node of the graph."
    return _dual(array_fn, graph_fn) if array_fn is not None else _graph_only(graph_fn)


tanh = _unary("tanh", A.tanh)
logistic = _unary("logistic", A.logistic)
rectify = _unary("rectify", A.rectify)
selu = _unary("selu", A.selu)
exp = _unary("exp", A.exp)
log = _unary("log", A.log)
square = _unary("square", A.square)
sqrt = _unary("sqrt", A.sqrt)
abs = _unary("abs", A.abs)  # noqa: A001 - DyNet's name
cube = _unary("cube", None)
erf = _unary("erf", None)
softsign = _unary("softsign", None)
sin = _unary("sin", None)
cos = _unary("cos", None)
tan = _unary("tan", None)
asin = _unary("asin", None)
acos = _unary("acos", None)
atan = _unary("atan", None)
sinh = _unary("sinh", None)
cosh = _unary("cosh", None)
asinh = _unary("asinh", None)
acosh = _unary("acosh", None)
atanh = _unary("atanh", None)
lgamma = _unary("lgamma", None)
log_sigmoid = _unary("log_sigmoid", None)
silu = _unary("silu", None)
round = _graph_only(M.round_)  # noqa: A001
ceil = _graph_only(M.ceil)
floor = _graph_only(M.floor)

# -- graph-only operations -----------------------------------------------------------------------
squared_norm = _graph_only(G.squared_norm)
l2_norm = _graph_only(G.l2_norm)
colwise_add = _graph_only(G.colwise_add)
layer_norm = _graph_only(LO.layer_norm)
pick_batch_elem = _graph_only(G.pick_batch_elem)
pick_batch_elems = _graph_only(G.pick_batch_elems)
pickrange = _graph_only(G.pickrange)
select_cols = _graph_only(G.select_cols)
concatenate_to_batch = _listing(_graph_only(G.concatenate_to_batch))
sum_dim = _graph_only(G.sum_dim)
mean_dim = _graph_only(G.mean_dim)
min_dim = _graph_only(G.min_dim)
mean_batches = _graph_only(G.mean_batches)
logsumexp = _listing(_graph_only(G.logsumexp))
huber_distance = _graph_only(LO.huber_distance)
nobackprop = _graph_only(LO.nobackprop)
flip_gradient = _graph_only(LO.flip_gradient)
sparsemax = _graph_only(G.sparsemax)
pow = _graph_only(G.pow)  # noqa: A001
# DyNet's less common operations
moment_elems = _graph_only(M.moment_elems)
moment_dim = _graph_only(M.moment_dim)
moment_batches = _graph_only(M.moment_batches)
std_elems = _graph_only(M.std_elems)
std_dim = _graph_only(M.std_dim)
std_batches = _graph_only(M.std_batches)
logsumexp_dim = _graph_only(M.logsumexp_dim)
cumsum = _graph_only(M.cumsum)
bmax = _graph_only(M.bmax)
bmin = _graph_only(M.bmin)
scale_gradient = _graph_only(M.scale_gradient)
argmax = _graph_only(M.argmax)
pairwise_rank_loss = _graph_only(M.pairwise_rank_loss)
poisson_loss = _graph_only(M.poisson_loss)
hinge_dim = _graph_only(M.hinge_dim)
trace_of_product = _graph_only(M.trace_of_product)
inverse = _graph_only(M.inverse)
logdet = _graph_only(M.logdet)
weight_norm = _graph_only(M.weight_norm)
circ_conv = _graph_only(M.circ_conv)
circ_corr = _graph_only(M.circ_corr)
constrained_softmax = _graph_only(M.constrained_softmax)
fold_rows = _graph_only(M.fold_rows)
kmax_pooling = _graph_only(M.kmax_pooling)
dropout_dim = _graph_only(M.dropout_dim)
dropout_batch = _graph_only(M.dropout_batch)
pick_range = _graph_only(M.pick_range)
strided_select = _graph_only(M.strided_select)
random_gumbel = _graph_only(M.random_gumbel, constructor=True)
zeroes = _graph_only(M.zeroes, constructor=True)
inputMatrix = _graph_only(M.inputMatrix, constructor=True)
# convolution and pooling (DyNet's MNIST examples)
conv2d = _graph_only(C.conv2d)
conv2d_bias = _graph_only(C.conv2d_bias)
maxpooling2d = _graph_only(C.maxpooling2d)
filter1d_narrow = _graph_only(C.filter1d_narrow)
kmh_ngram = _graph_only(C.kmh_ngram)
contract3d_1d = _graph_only(M.contract3d_1d)
contract3d_1d_bias = _graph_only(M.contract3d_1d_bias)
contract3d_1d_1d = _graph_only(M.contract3d_1d_1d)
contract3d_1d_1d_bias = _graph_only(M.contract3d_1d_1d_bias)
hinge_batch = _graph_only(M.hinge_batch)
one_hot = _graph_only(M.one_hot, constructor=True)
# DyNet's LSTM node operations
vanilla_lstm_gates = _graph_only(L.vanilla_lstm_gates)
vanilla_lstm_gates_concat = _graph_only(L.vanilla_lstm_gates_concat)
vanilla_lstm_gates_dropout = _graph_only(L.vanilla_lstm_gates_dropout)
vanilla_lstm_gates_dropout_concat = _graph_only(L.vanilla_lstm_gates_dropout_concat)
vanilla_lstm_c = _graph_only(L.vanilla_lstm_c)
vanilla_lstm_h = _graph_only(L.vanilla_lstm_h)
cg_version = cg_version
