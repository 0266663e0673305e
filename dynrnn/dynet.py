"""dynrnn as DyNet programs import DyNet: `import dynrnn.dynet as dy`.

The whole `dynrnn` namespace, with one difference in behaviour: as in DyNet, a computation
graph exists from the start. `dy.vecInput(2)`, `E[i]`, `W * x` build graph nodes before any
`dy.renew_cg()`, so a DyNet program that builds one graph at the top and re-runs it
(DyNet's `examples/xor/xor.py`: `x.set(...)`, `loss.scalar_value()`, `loss.backward()`,
`trainer.update()`) runs with only its import line changed. `import dynrnn` keeps arrays
for eager code until the first `renew_cg()` — the better default for a program written in
compiled mode, which never needs a graph.

Importing this module switches the default for the whole process
(`dynrnn.graph.open_by_default`); compiled code (`jax.jit`, `trainer.step`) is unaffected
either way. It also reads DyNet's command-line flags, as importing DyNet does (and, like
DyNet, leaves them in `sys.argv`): `--dynet-seed N`, `--dynet-autobatch N` and
`--dynet-weight-decay X` apply; `--dynet-mem`, `--dynet-gpus`,
`--dynet-devices`, `--dynet-profiling`, `--dynet-gpu`, `--dynet-viz` mean nothing here.
"""

import sys
from typing import Any

import dynrnn as _dynrnn
from dynrnn import *  # noqa: F403 - this module is dynrnn's namespace
from dynrnn import __all__ as __all__
from dynrnn.graph._setup import dynet_flags as dynet_flags

_dynrnn.graph.open_by_default()
_dynrnn.config(**dynet_flags(sys.argv))


def __getattr__(name: str) -> Any:
    # names outside __all__ (dy.dynet_config's siblings, dy.graph's helpers)
    return getattr(_dynrnn, name)
