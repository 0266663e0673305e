"""DyNet's process set-up, in its spellings: the `dynet_config` module (`set`, `set_gpu`),
its command-line flags (`--dynet-seed N`, ...), `DynetParams` with `init()`, `init()` and
`init_from_params()`, and the computation graph object `cg()`. All of them come down to
`dy.config`: the settings that mean something here apply (random seed, autobatching),
weight decay other than 0 is refused, memory and device options are accepted and mean
nothing (JAX manages memory; everything runs on JAX's default device).
"""

from __future__ import annotations

import sys
from typing import Any

from . import _graph
from ._api import cg_checkpoint, cg_revert, config, renew_cg

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


class _DynetConfig:
    """DyNet's `dynet_config` module: `dy.dynet_config.set(autobatch=1)`."""

    @staticmethod
    def set(mem: Any = None, random_seed: Any = 0, autobatch: Any = None, profiling: Any = None,
            weight_decay: Any = 0, shared_parameters: Any = None, requested_gpus: Any = None,
            gpu_mask: Any = None) -> None:
        """DyNet's arguments, as `dy.config` takes them: autobatch, random_seed and
        weight_decay apply, the rest is ignored."""
        config(autobatch=autobatch, random_seed=random_seed, weight_decay=weight_decay)

    @staticmethod
    def set_gpu(flag: bool = True) -> None:
        """Devices follow JAX (a GPU jaxlib runs on the GPU): nothing to set."""


dynet_config = _DynetConfig()


class DynetParams:
    """DyNet's global settings as an object: `p = dy.DynetParams(); p.from_args();
    p.set_random_seed(666); p.init()` (or `dy.init_from_params(p)`). `init()` applies them
    as `dy.config` does, and may be called again."""

    def __init__(self) -> None:
        self._settings: dict = {}

    def from_args(self, shared_parameters: Any = None) -> None:
        """Takes DyNet's flags from the command line (`sys.argv`)."""
        self._settings.update(dynet_flags(sys.argv))

    def set_random_seed(self, random_seed: int) -> None:
        self._settings["random_seed"] = random_seed

    def set_autobatch(self, autobatch: Any) -> None:
        self._settings["autobatch"] = autobatch

    def set_weight_decay(self, weight_decay: float) -> None:
        """DyNet's default weight decay λ (see `dy.config`), applied by `init()`."""
        self._settings["weight_decay"] = weight_decay

    # memory, profiling and devices: accepted, nothing to set
    def set_mem(self, mem: Any) -> None: pass
    def set_profiling(self, profiling: Any) -> None: pass
    def set_shared_parameters(self, shared_parameters: Any) -> None: pass
    def set_requested_gpus(self, requested_gpus: Any) -> None: pass
    def set_gpu_mask(self, gpu_mask: Any) -> None: pass
    def set_cpu_mode(self) -> None: pass

    def init(self) -> None:
        config(**self._settings)


def init(shared_parameters: Any = None) -> None:
    """DyNet's `init()`: the settings of its command-line flags (as `import dynrnn.dynet`
    applies them)."""
    p = DynetParams()
    p.from_args(shared_parameters)
    p.init()


def init_from_params(params: DynetParams) -> None:
    """DyNet's `init_from_params(params)`: `params.init()`."""
    if not isinstance(params, DynetParams):
        raise TypeError(f"dy.init_from_params: expected a dy.DynetParams; given {type(params).__name__}.")
    params.init()


def print_text_graphviz() -> None:
    """Prints the current computation graph in Graphviz's dot language (as DyNet does)."""
    print(_graph.graphviz(_graph.CURRENT.graph))


class ComputationGraph:
    """DyNet's computation graph object (`dy.cg()`): the current graph's operations."""

    def renew(self, immediate_compute: bool = False, check_validity: bool = False, autobatching: Any = None) -> None:
        renew_cg(immediate_compute, check_validity, autobatching)

    def version(self) -> int:
        return _graph.cg_version()

    def print_graphviz(self) -> None:
        print_text_graphviz()

    def checkpoint(self) -> None:
        cg_checkpoint()

    def revert(self) -> None:
        cg_revert()


def cg() -> ComputationGraph:
    """DyNet's `cg()`: the computation graph (the current one, whichever it is)."""
    return ComputationGraph()
