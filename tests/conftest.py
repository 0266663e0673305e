import os

import jax
import numpy as np
import pytest
from hypothesis import settings

# Deterministic property tests: CI must not flake on a new random example.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

jax.config.update("jax_numpy_dtype_promotion", "strict")

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    import jax.numpy as jnp

    import dynrnn as dy
    doctest_namespace.update(dy=dy, jnp=jnp, np=np, jax=jax)


@pytest.fixture(autouse=True)
def _leave_graph_mode():
    """Each test starts outside graph mode (a DyNet-style test opens it with renew_cg)."""
    import dynrnn as dy
    yield
    dy.graph.open_by_default(False)
    dy.graph.end_graph()


@pytest.fixture(autouse=True)
def _no_structure_remembered(monkeypatch):
    """Each test starts with no graph structure remembered by replay (seen, compiled, its
    compile cost learned, or the last graph's lap timed): under xdist the tests that share a
    worker vary from run to run, and a structure another test left compiled would replay where
    this test expects the kernel path."""
    from collections import OrderedDict

    from dynrnn.graph import _replay
    monkeypatch.setattr(_replay, "_PLANS", OrderedDict())
    monkeypatch.setattr(_replay, "_SIGHTED", OrderedDict())
    monkeypatch.setattr(_replay, "_COST", {"seconds": 0.0, "nodes2": 0.0})
    monkeypatch.setattr(_replay.CURRENT, "lap", None)  # (the last graph's lap: another test's)
