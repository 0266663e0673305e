"""The compiled functions behind `RNNState`: one step of every layer, and a scan.

Each distinct stack of cells (plus its dropout rates) gets one `_Compiled` object, shared
by every builder with the same configuration, whose `jax.jit` functions compile once per
shape/dtype signature. Parameters, states, dropout keys and inputs are always *arguments*
— nothing but the static configuration is baked into the compiled code.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from .cells import InputProjection

Layers = tuple[tuple[jax.Array, ...], ...]


@dataclasses.dataclass(frozen=True)
class StackSpec:
    """The static description of a stack: its cells and its dropout rates."""

    cells: tuple[Any, ...]
    dropout_x: float = 0.0
    dropout_h: float = 0.0

    @property
    def uses_key(self) -> bool:
        return self.dropout_x > 0.0 or self.dropout_h > 0.0


def keep_mask(key, rate: float, shape, dtype):
    """Inverted dropout's mask: 1/(1 − rate) where kept, 0 where dropped."""
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return keep.astype(dtype) / (1.0 - rate)


def dropout_masks(spec: StackSpec, key, batch_shape, dtype):
    """Per-layer (x_mask, h_mask), drawn from the sequence's key.

    The same key always gives the same masks, so a sequence keeps its masks at every
    step (Gal & Ghahramani 2016) whether it is stepped by `add_input` or scanned.
    """
    masks = []
    for li, cell in enumerate(spec.cells):
        mx = mh = None
        if spec.dropout_x > 0.0:
            mx = keep_mask(jax.random.fold_in(key, 2 * li), spec.dropout_x, batch_shape + (cell.input_dim,), dtype)
        if spec.dropout_h > 0.0:
            mh = keep_mask(jax.random.fold_in(key, 2 * li + 1), spec.dropout_h,
                            batch_shape + (cell.state_sizes()[-1],), dtype)
        masks.append((mx, mh))
    return masks


def broadcast_layers(layers: Layers, batch_shape) -> Layers:
    """Gives an unbatched state (vectors) the batch shape of the input."""
    return tuple(tuple(jnp.broadcast_to(a, batch_shape + a.shape[-1:]) for a in layer) for layer in layers)


def step_layers(spec: StackSpec, params, layers: Layers, masks, x) -> Layers:
    """One time step through every layer: layer l's output h is layer l+1's input."""
    new = []
    inp = x
    for cell, p, state, (mx, mh) in zip(spec.cells, params, layers, masks):
        state = cell.step(p, state, inp if mx is None else inp * mx, mh)
        new.append(tuple(state))
        inp = state[-1]
    return tuple(new)


class _Compiled:
    def __init__(self, spec: StackSpec):
        self.spec = spec
        self.step = jax.jit(self._step)
        self.scan = jax.jit(self._scan, static_argnames=("collect", "unstack"))

    def _masks(self, key, batch_shape, dtype):
        if not self.spec.uses_key:
            return [(None, None)] * len(self.spec.cells)
        return dropout_masks(self.spec, key, batch_shape, dtype)

    def _step(self, params, layers: Layers, key, x) -> Layers:
        batch_shape = x.shape[:-1]
        layers = broadcast_layers(layers, batch_shape)
        return step_layers(self.spec, params, layers, self._masks(key, batch_shape, x.dtype), x)

    def _scan(self, params, layers: Layers, key, xs, lengths: jax.Array | None, *,
              collect: bool, unstack: bool):
        """The scan unrolled by SCAN_UNROLL when only its value is needed, and not unrolled
        when it is differentiated (the JVP rule below; reverse mode goes through it too)."""
        run = functools.partial(self._scan_layers, collect=collect, unstack=unstack)

        @jax.custom_jvp
        def scan(params, layers, key, xs, lengths):
            return run(params, layers, key, xs, lengths, unroll=SCAN_UNROLL)

        @scan.defjvp
        def scan_jvp(primals, tangents):
            return jax.jvp(functools.partial(run, unroll=1), primals, tangents)

        return scan(params, layers, key, xs, lengths)

    def _scan_layers(self, params, layers: Layers, key, xs, lengths: jax.Array | None, *,
                     collect: bool, unstack: bool, unroll: int):
        """Layer by layer: each layer is one `lax.scan` over the whole sequence, so that a
        cell with `project_input` can compute W·x for every step in one matrix product
        before its scan (when the batch is small enough for that to pay, see HOIST_MAX_BATCH)."""
        T, batch_shape = xs.shape[0], xs.shape[1:-1]
        layers = broadcast_layers(layers, batch_shape)
        masks = self._masks(key, batch_shape, xs.dtype)
        alive = None
        if lengths is not None:  # (time, batch, 1): is step t inside sequence b?
            alive = (jnp.arange(T, dtype=jnp.int32)[:, None] < lengths.astype(jnp.int32)[None, :])[..., None]
        hoist = math.prod(batch_shape) <= HOIST_MAX_BATCH
        inp: Any = xs  # the next layer's input: every step's h (or, collecting, every state)
        finals, per_layer = [], []
        for cell, p, state, (mx, mh) in zip(self.spec.cells, params, layers, masks):
            if mx is not None:
                inp = inp * mx  # a sequence's mask is the same at every step
            if hoist and isinstance(cell, InputProjection):
                seq = cell.project_input(p, inp.reshape(-1, inp.shape[-1])).reshape(inp.shape[:-1] + (-1,))
                f = functools.partial(cell.step_projected, p, h_mask=mh)
            else:
                seq, f = inp, functools.partial(cell.step, p, h_mask=mh)

            def body(carry, u, f=f):
                u_t, a_t = u
                new = tuple(f(carry, u_t))
                if a_t is not None:
                    new = tuple(jnp.where(a_t, n, o) for n, o in zip(new, carry))
                return new, (new if collect else new[-1])

            final, ys = jax.lax.scan(body, state, (seq, alive), unroll=1 if hoist else min(unroll, max(T, 1)))
            finals.append(final)
            per_layer.append(ys)
            inp = ys[-1] if collect else ys
            if alive is not None:
                inp = jnp.where(alive, inp, jnp.zeros_like(inp))
        if collect == "stacked":  # every step's state, stacked over time (the graph's chains)
            return inp, tuple(finals), tuple(tuple(ys) for ys in per_layer)
        outs, states = inp, None
        if unstack:
            outs = tuple(outs[t] for t in range(T))
        if collect:
            states = tuple(tuple(tuple(a[t] for a in layer) for layer in per_layer) for t in range(T))
        return outs, tuple(finals), states


# Computing every step's input projection W·x as one matrix product before the scan
# (as cuDNN and PyTorch do) halves the per-step weight traffic at small batches, but on
# XLA:CPU it was slower from batch 32 on (benchmarks/transduce.py): measured
# T=100, 256→256 LSTM: batch 1 1.7 vs 3.3 ms, batch 8 even, batch 64 59 vs 37 ms.
HOIST_MAX_BATCH = 8

# Four time steps per loop iteration, for large batches and only when the scan is not
# differentiated (`_Compiled._scan`). XLA:CPU pays a fixed cost per loop iteration, which
# unrolling spreads — LSTM 256→256, T=100, batch 32 forward: 36 → 27 ms; rnnlm shape (128→256,
# T=24, batch 64) forward: 8.1 → 6.5 ms. But the unrolled scan's gradient was slower (batch 32,
# 50→50: 3.9 → 5.3 ms; rnnlm shape: 23.7 → 26.5 ms) and compiled 2–3× longer, and small
# hoisted batches gained nothing (benchmarks/README.md, "Where the time goes").
SCAN_UNROLL = 4


@functools.cache
def compiled(spec: StackSpec) -> _Compiled:
    return _Compiled(spec)
