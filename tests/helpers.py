"""Shared test helpers: the registry of builders, reference comparison, compile counting."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import dynrnn as dy

from . import references as ref

# name → (constructor(layers, input_dim, hidden_dim, pc), NumPy reference cell, kwargs for it)
BUILDERS: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict]] = {
    "simple": (dy.SimpleRNNBuilder, ref.simple_rnn, {}),
    "lstm": (dy.VanillaLSTMBuilder, ref.vanilla_lstm, {}),
    "lstm_ln": (lambda *a: dy.VanillaLSTMBuilder(*a, ln_lstm=True), ref.vanilla_lstm, {"ln_lstm": True}),
    "lstm_fb0": (lambda *a: dy.VanillaLSTMBuilder(*a, forget_bias=0.0), ref.vanilla_lstm, {"forget_bias": 0.0}),
    "coupled": (dy.CoupledLSTMBuilder, ref.coupled_lstm, {}),
    "gru": (dy.GRUBuilder, ref.gru, {}),
}
N_COMPONENTS = {"simple": 1, "gru": 1, "lstm": 2, "lstm_ln": 2, "lstm_fb0": 2, "coupled": 2}


def randomize(builder: Any, rng: np.random.Generator, scale: float = 0.5) -> None:
    """Gives every parameter (biases and layer-norm gains too) random values, so that a
    reference comparison exercises every term."""
    for layer in builder._layer_params:
        for p in layer:
            p.set_value(rng.normal(0.0, scale, size=p.shape()))


def layer_params(builder: Any) -> list[list[np.ndarray]]:
    return [[p.as_array().astype(np.float64) for p in layer] for layer in builder._layer_params]


def reference_outputs(name: str, builder: Any, xs: np.ndarray, state0=None):
    """Reference outputs (T, H) and states for one unbatched sequence xs (T, I)."""
    _, cell, kw = BUILDERS[name]
    return ref.run_stack(cell, layer_params(builder), xs, state0, **kw)


def assert_trees_allclose(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb, f"tree structures differ: {ta} vs {tb}"
    for x, y in zip(la, lb):
        assert np.shape(x) == np.shape(y), f"shapes differ: {np.shape(x)} vs {np.shape(y)}"
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


class _CompileLog(logging.Handler):
    def __init__(self, threads: bool) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []
        self.threads = threads

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Finished XLA compilation of"):
            self.names.append(f"{record.threadName}: {msg}" if self.threads else msg)


@contextlib.contextmanager
def count_compiles(all_threads: bool = False):
    """Counts real XLA compilations (from JAX's own compile log) inside the block: of this
    thread, or with `all_threads` of every thread (JAX's flag set process-wide), each
    prefixed with its thread's name."""
    handler = _CompileLog(all_threads)
    logger = logging.getLogger("jax")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    old_flag = jax.config.jax_log_compiles  # pyright: ignore[reportAttributeAccessIssue]
    try:
        if all_threads:
            jax.config.update("jax_log_compiles", True)
        with jax.log_compiles(True):
            yield handler.names
    finally:
        jax.config.update("jax_log_compiles", old_flag)
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@contextlib.contextmanager
def dy_config(**settings: Any):
    """`dy.config(**settings)` inside the block; the previous settings after it."""
    old = dy.config()
    dy.config(**settings)
    try:
        yield
    finally:
        dy.config(**{k: old[k] for k in settings})


def check_graph_gradient(name: str, f: Any, x0: np.ndarray, batched: bool = False, probes: int = 6) -> None:
    """backward()'s d(c · f(x))/dx for a graph function `f` of one input expression, against
    central differences of the graph's own value at `probes` random entries, in float64 (c
    random, so that every output element counts; the `x64` fixture)."""
    x0 = np.asarray(x0, np.float64)
    rng = np.random.default_rng(1)

    def loss(x):
        dy.renew_cg()
        xe = dy.inputTensor(x, batched=batched)
        out = f(xe)
        shape = out.dims + ((out.batch,) if out.batch > 1 else ())
        c = dy.inputTensor(np.random.default_rng(2).normal(size=shape), batched=out.batch > 1)
        return xe, dy.sum_batches(dy.sum_elems(dy.cmult(out, c)))

    xe, value = loss(x0)
    value.backward(full=True)
    grad = xe.gradient()
    assert np.abs(grad).max() > 0, f"{name}: no gradient reached the input"
    for _ in range(probes):
        idx = tuple(rng.integers(0, n) for n in x0.shape)
        plus, minus = x0.copy(), x0.copy()
        plus[idx] += 1e-6
        minus[idx] -= 1e-6
        fd = (loss(plus)[1].scalar_value() - loss(minus)[1].scalar_value()) / 2e-6
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-5, atol=1e-7, err_msg=f"{name} at {idx}")


def check_graph_case(build: Any, reference: Any, dim: tuple, autobatch: bool, atol: float = 2e-6) -> None:
    """A graph operation's value and DyNet dims (`build()` in a new graph, autobatched or
    node by node) against its NumPy reference (DyNet's layout)."""
    with dy_config(autobatch=autobatch):
        dy.renew_cg()
        e = build()
        assert e.dim() == dim
        np.testing.assert_allclose(e.npvalue(), np.asarray(reference(), np.float64), rtol=2e-5, atol=atol)
