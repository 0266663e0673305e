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
`--dynet-weight-decay X` (refused unless 0) apply; `--dynet-mem`, `--dynet-gpus`,
`--dynet-devices`, `--dynet-profiling`, `--dynet-gpu`, `--dynet-viz` mean nothing here.
"""

import sys
from typing import Any

import dynrnn as _dynrnn
from dynrnn import *  # noqa: F403 - this module is dynrnn's namespace
from dynrnn import __all__ as __all__

# DyNet's flags that take a value; of those, the ones that are settings here (`dy.config`'s names)
_VALUED = {"mem", "seed", "autobatch", "weight-decay", "profiling", "gpus", "devices", "gpu-ids"}
_SETTINGS = {"seed": "random_seed", "autobatch": "autobatch", "weight-decay": "weight_decay"}


def dynet_flags(argv: list) -> dict:
    """DyNet's command-line flags in `argv` (`--dynet-seed 5`, `--dynet_seed=5`, ...) as
    `dy.config` settings: {"random_seed": 5, "autobatch": 1, "weight_decay": 0.0}, for those
    given."""
    out: dict = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith(("--dynet-", "--dynet_")):
            continue
        name, eq, value = arg[len("--dynet-"):].partition("=")
        name = name.replace("_", "-")
        if name not in _VALUED:
            continue  # --dynet-gpu, --dynet-viz take no value; unknown ones are the program's own
        if not eq:
            if i >= len(argv):
                raise ValueError(f"dynrnn.dynet: the command-line flag {arg} needs a value.")
            value = argv[i]
            i += 1
        target = _SETTINGS.get(name)
        if target is None:
            continue
        try:
            out[target] = float(value) if target == "weight_decay" else int(value)
        except ValueError:
            raise ValueError(f"dynrnn.dynet: the command-line flag --dynet-{name} takes a number; given "
                             f"{value!r}.") from None
    return out


_dynrnn.graph.open_by_default()
_dynrnn.config(**dynet_flags(sys.argv))


def __getattr__(name: str) -> Any:
    # names outside __all__ (dy.dynet_config's siblings, dy.graph's helpers)
    return getattr(_dynrnn, name)
