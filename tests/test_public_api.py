"""The public surface: names users import, and the parameter layout of every builder
pinned in a golden file (names, shapes, dtypes) so that saved files stay loadable."""

import json
import os

import pytest

import dynrnn as dy

from .helpers import BUILDERS

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "param_layouts.json")

DYNET_NAMES = ["ParameterCollection", "Model", "Parameters", "LookupParameters", "SimpleRNNBuilder",
               "VanillaLSTMBuilder", "LSTMBuilder", "CoupledLSTMBuilder", "GRUBuilder", "BiRNNBuilder",
               "RNNState", "RNNStack", "save", "load", "GlorotInitializer", "UniformInitializer", "NormalInitializer",
               "ConstInitializer", "IdentityInitializer", "NumpyInitializer", "SaxeInitializer"]


def test_dynet_names_are_exported():
    for name in DYNET_NAMES:
        assert name in dy.__all__ and hasattr(dy, name), name
    assert dy.LSTMBuilder is dy.VanillaLSTMBuilder
    assert set(dy.__all__) <= set(dir(dy))


def test_state_methods_exist():
    s = dy.LSTMBuilder(1, 2, 3, dy.ParameterCollection(seed=0)).initial_state()
    for m in ["add_input", "add_inputs", "transduce", "output", "h", "s", "prev", "b", "set_h", "set_s"]:
        assert callable(getattr(s, m)), m


def _layouts():
    out = {}
    for name in sorted(BUILDERS):
        pc = dy.ParameterCollection(seed=0)
        BUILDERS[name][0](2, 3, 4, pc)
        out[name] = [[p.name(), list(p.shape()), str(p.dtype)] for p in pc.all_parameters()]
    pc = dy.ParameterCollection(seed=0)
    dy.BiRNNBuilder(1, 3, 4, pc, dy.GRUBuilder)
    out["birnn_gru"] = [[p.name(), list(p.shape()), str(p.dtype)] for p in pc.all_parameters()]
    return out


def test_parameter_layouts_match_golden():
    if os.environ.get("DYNRNN_UPDATE_GOLDEN"):
        with open(GOLDEN, "w") as f:  # one parameter a line, for readable diffs
            f.write("{\n" + ",\n".join(f"{json.dumps(k)}: [\n  " + ",\n  ".join(json.dumps(p) for p in v) + "\n]"
                                       for k, v in _layouts().items()) + "\n}\n")
        pytest.fail("golden file rewritten; rerun without DYNRNN_UPDATE_GOLDEN")
    with open(GOLDEN) as f:
        assert _layouts() == json.load(f)
