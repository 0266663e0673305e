"""The direction of imports inside dynrnn, read from the source (CONTRIBUTING.md, "Layout").

Every module has a place in ORDER (lowest first); a module may import only modules placed
below it. The cell math imports nothing else from dynrnn, and no module outside
`dynrnn.graph` imports the graph layer (the array layer reaches it through `_hooks`).
Imports inside functions follow the same rule, but for the few listed in LAZY_UP with
their reason.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "dynrnn")

ORDER = [
    # cell math, checks and hooks: no other dynrnn module
    "dynrnn.cells._base", "dynrnn.cells._lstm", "dynrnn.cells._coupled_lstm", "dynrnn.cells._fast_lstm",
    "dynrnn.cells._gru", "dynrnn.cells._simple", "dynrnn.cells._sparse_lstm", "dynrnn.cells._tree_lstm", "dynrnn.cells",
    "dynrnn._errors", "dynrnn._devices", "dynrnn._hooks", "dynrnn._init", "dynrnn._random", "dynrnn._xla",
    # parameters, then what works on parameter values
    "dynrnn._params", "dynrnn._io", "dynrnn._compiled", "dynrnn._autodiff", "dynrnn._distributed",
    "dynrnn._losses", "dynrnn._expressions", "dynrnn._expr_losses", "dynrnn._batching", "dynrnn._decoding",
    "dynrnn._tree",
    # states, builders, trainers
    "dynrnn._state", "dynrnn._stack", "dynrnn._builders", "dynrnn._tree_lstm", "dynrnn._bidirectional",
    "dynrnn._stacked_state",
    "dynrnn._trainers",
    # the graph layer, on top of all of it
    "dynrnn.graph._kernels", "dynrnn.graph._tensor", "dynrnn.graph._graph", "dynrnn.graph._ops",
    "dynrnn.graph._loss_ops", "dynrnn.graph._more_ops", "dynrnn.graph._conv", "dynrnn.graph._lstm_ops",
    "dynrnn.graph._rnn",
    "dynrnn.graph._reroll", "dynrnn.graph._replay", "dynrnn.graph._schedule", "dynrnn.graph._bridge",
    "dynrnn.graph._api", "dynrnn.graph._setup", "dynrnn.graph._softmax", "dynrnn.graph",
    "dynrnn",
    "dynrnn.dynet",  # dynrnn's namespace with DyNet's implicit first graph
]

# (importer, imported): upward imports inside a function, and why
LAZY_UP = {
    # DyNet puts file methods on the collection (pc.save, pc.populate); the file format lives in _io
    ("dynrnn._params", "dynrnn._io"),
    # an expression's operators and reading methods are the graph's operations and schedule
    ("dynrnn.graph._graph", "dynrnn.graph._ops"),
    ("dynrnn.graph._graph", "dynrnn.graph._schedule"),
    # a Tensor's categorical sample draws from the graph's host generator (seeded by set_random_seed)
    ("dynrnn.graph._tensor", "dynrnn.graph._ops"),
}


def _modules():
    for dirpath, _, files in os.walk(ROOT):
        for fn in files:
            if fn.endswith(".py"):
                path = os.path.join(dirpath, fn)
                rel = os.path.relpath(path, os.path.join(ROOT, ".."))[:-3].replace(os.sep, ".")
                yield (rel[: -len(".__init__")] if rel.endswith(".__init__") else rel), path, fn == "__init__.py"


def _imports():
    """(importer, imported, at module level?) for every import of a dynrnn module."""
    out = []
    for mod, path, is_pkg in _modules():
        tree = ast.parse(open(path).read())
        top = {id(n) for n in tree.body}
        package = mod if is_pkg else mod.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                if node.module:
                    targets = [".".join(base + [node.module])]
                else:
                    targets = [".".join(base + [a.name]) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dynrnn"):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("dynrnn")]
            for t in targets:
                while t not in ORDER and "." in t:  # `from . import _hooks` names a module; a.b.c -> a.b
                    t = t.rsplit(".", 1)[0]
                out.append((mod, t, id(node) in top))
    return out


def test_every_module_has_a_place_in_the_order():
    assert sorted(m for m, _, _ in _modules()) == sorted(ORDER)


@pytest.mark.parametrize("level", ["module", "function"])
def test_imports_only_go_down_the_order(level):
    wrong = []
    for src, dst, at_top in _imports():
        if at_top != (level == "module") or src == dst:
            continue
        if ORDER.index(dst) > ORDER.index(src) and (at_top or (src, dst) not in LAZY_UP):
            wrong.append(f"{src} imports {dst}")
    assert wrong == []


def test_the_array_layer_never_imports_the_graph_and_cells_import_only_cells():
    for src, dst, _ in _imports():
        # (dynrnn and dynrnn.dynet, DyNet's spelling of it, are the namespaces over both layers)
        if not src.startswith("dynrnn.graph") and src not in ("dynrnn", "dynrnn.dynet"):
            assert not dst.startswith("dynrnn.graph"), f"{src} imports {dst}"
        if src.startswith("dynrnn.cells"):
            assert dst.startswith("dynrnn.cells"), f"{src} imports {dst}"


def test_the_lazy_exceptions_are_still_needed():
    lazy = {(s, d) for s, d, top in _imports() if not top}
    assert LAZY_UP <= lazy, LAZY_UP - lazy


def test_importing_dynrnn_does_not_start_jax():
    """`import dynrnn` (and `dynrnn.dynet`) compiles nothing and leaves JAX's backend
    unstarted, so a program may still choose its platform afterwards (`jax_platforms`)."""
    import subprocess
    import sys
    code = ("import dynrnn, dynrnn.dynet\n"
            "from jax._src import xla_bridge\n"
            "assert not xla_bridge.backends_are_initialized(), 'the backend was started at import'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
