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
