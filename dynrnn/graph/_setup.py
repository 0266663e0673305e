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

import numpy as np

from . import _graph, _schedule
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


def print_graphviz(**options: Any) -> None:
    """DyNet's `print_graphviz(compact=False, show_dims=True, expression_names=None,
    lookup_names=None, collapse_birnns=False)`: prints the current graph as
    `print_text_graphviz()` does (dims shown; DyNet's layout options are accepted and do
    not change it)."""
    known = {"compact", "show_dims", "expression_names", "lookup_names", "collapse_birnns"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"dy.print_graphviz: unknown options {unknown}; DyNet's are {sorted(known)}.")
    print_text_graphviz()


def dump_cg(filename: str = "", show_values: bool = True, show_gradients: bool = True,
            nan_check_only: bool = False) -> None:
    """DyNet's `dump_cg`: runs the current graph forward and writes, for every node, its
    value and its gradient from the last `backward()` ("(not computed)" before one), to
    `filename` or, with no filename, to standard output; `nan_check_only` writes "valid" or
    "invalid" (a NaN or infinity) instead of the numbers."""
    g = _graph.CURRENT.graph
    lines: list[str] = []
    if not g.nodes:
        lines.append("(Computation graph is empty)")
    else:
        g.nodes[-1].forward()

    def shown(a: Any) -> str:
        if nan_check_only:
            return "valid" if np.all(np.isfinite(a)) else "invalid"
        return "\n" + np.array2string(np.asarray(a), threshold=1000000)

    for n in g.nodes:
        lines.append(f"Node {n.index}")
        state = bool(n.dims) and isinstance(n.dims[0], tuple)  # a recurrent state: one array per slot
        if show_values:
            value = [np.asarray(_schedule.materialize(g, v)) for v in n.val] if state else n.npvalue()
            lines.append("Value: " + (" ".join(shown(v) for v in value) if state else shown(value)))
        if show_gradients:
            if state:  # its slots' gradients are those of the nodes that read them (h(), s())
                lines.append("Gradient: (a recurrent state)")
                continue
            try:
                lines.append("Gradient: " + shown(n.gradient()))
            except RuntimeError:  # no backward() yet
                lines.append("Gradient: (not computed)")
    text = "\n".join(lines) + "\n"
    if filename:
        with open(filename, "w") as f:
            f.write(text)
    else:
        print(text, end="")


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
