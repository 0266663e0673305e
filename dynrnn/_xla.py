"""XLA:CPU options for the small kernels that run many times and compile often: graph
mode's kernels and replays, the trainers' update kernels. Compiled steps (`Trainer.step`,
the user's `jax.jit`) keep XLA's defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

# Kernels that only move or add arrays (the adders that sum cotangents, rows cut from a
# stack, stacks gathered and put together) compile on XLA:CPU without its fusion emitters:
# measured, an 8-term adder compiles in 18-25 ms instead of 39-42 (a fixed cost, whatever
# the shape) and runs as fast ((10000, 128): 0.94 vs 1.1 ms). Not for the kernels that
# compute: an LSTM chain's VJP ran 1.8x slower without them, a group's 1.5-1.8x.
_PLUMBING = {"xla_cpu_use_fusion_emitters": False}

# Every graph kernel (and every replayed graph, `graph._replay`) and the trainers' update
# kernels compile with LLVM at O1, where XLA's default is O3: XLA:CPU spends much of a
# small kernel's compilation in LLVM, and O1 code ran as fast here (an LSTM LM's
# value_and_grad, a 60-step scan: 5.3 ms at O1, 5.7 at O3).
# Measured, alternated runs of DyNet's programs, 600 updates, one sentence per graph, O3 ->
# O1: tagger.py 10.3-11.4 -> 9.0-9.3 s in all (compilation 8.7-10.2 -> 7.5-7.6 s),
# attention.py 16.3-17.7 -> 14.7-15.7 s (15.9-17.1 -> 13.3-13.9 s), rnnlm.py the same
# within noise; steady state the same within noise. O0 compiled in half O3's time but ran
# 1.4-1.8x slower than O1 (attention.py); compiling at O0 first and again at O1 on the
# background thread once a kernel had been called 16 times was no faster over 600 updates
# than O1 alone (the second builds took the core that the VJPs compiled ahead need).
_COMPUTE = {"xla_backend_optimization_level": 1}
_OPTIONS: list = []


def _cpu_options() -> bool:
    """Whether XLA takes the CPU options above (a CPU backend and an XLA that knows them)."""
    if not _OPTIONS:
        ok = jax.default_backend() == "cpu"
        try:  # a JAX or XLA without one of the options: none is used
            if ok:
                jax.jit(lambda x: x + 1, compiler_options={**_PLUMBING, **_COMPUTE}).lower(np.float32(0)).compile()
        except Exception:  # noqa: BLE001 - (TypeError, XlaRuntimeError, ... by version)
            ok = False
        _OPTIONS.append(ok)
    return _OPTIONS[0]


def kernel_jit(f: Callable, plumbing: bool = False, **jit_options: Any) -> jax.stages.Wrapped:
    """`jax.jit(f, **jit_options)` with the kernels' XLA:CPU options (none on another
    backend). `plumbing`: a kernel that only moves or adds arrays (see _PLUMBING)."""
    if not _cpu_options():
        return jax.jit(f, **jit_options)
    return jax.jit(f, compiler_options={**_COMPUTE, **_PLUMBING} if plumbing else _COMPUTE, **jit_options)


def plumbing_jit(f: Callable, **jit_options: Any) -> jax.stages.Wrapped:
    """`kernel_jit` for a kernel that moves or adds arrays (see _PLUMBING)."""
    return kernel_jit(f, plumbing=True, **jit_options)
