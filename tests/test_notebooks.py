"""The notebooks execute top to bottom (with the package as installed)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")
EWT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "ud-english-ewt")
MULTI30K = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "multi30k")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb")))
def test_notebook_executes(name, monkeypatch):
    if name == "stack_lstm_parser.ipynb" and not os.path.isdir(EWT):
        pytest.skip("../shared/data/ud-english-ewt is absent")
    if name == "incremental_decoding.ipynb" and not os.path.isdir(MULTI30K):
        pytest.skip("../shared/data/multi30k is absent")
    monkeypatch.setenv("DYNRNN_NOTEBOOK_QUICK", "1")  # shorter training budgets inside notebooks
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": NOTEBOOKS}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_the_generator_reproduces_every_committed_cell():
    """tools/make_notebooks.py is the source of the notebooks: their cells must be its cells
    (outputs aside), so that an edit made in one place only is caught."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
    import make_notebooks
    assert sorted(make_notebooks.NOTEBOOKS) == sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb"))
    for name, cells in make_notebooks.NOTEBOOKS.items():
        nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
        assert [(c.cell_type, c.source) for c in nb.cells] == [
            ("markdown" if kind == "md" else "code", src) for kind, src in cells], name


def test_no_machine_paths_in_stored_outputs():
    for name in sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb")):
        text = open(os.path.join(NOTEBOOKS, name), encoding="utf-8").read()
        for marker in ("/tmp/", "/root/", "/home/", "/work/", "site-packages"):
            assert marker not in text, (name, marker)
