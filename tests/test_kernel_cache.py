"""The persistent kernel cache (`dy.config(kernel_cache=...)`, DYNRNN_KERNEL_CACHE): a
second run of the same graph-mode program loads its kernels instead of compiling them,
and computes the same numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import dynrnn as dy

# A DyNet-style program: one graph per sentence, loss.backward(), trainer.update(); it
# prints its losses and how many kernels it found in the persistent cache.
PROGRAM = r"""
import json, sys
import jax.monitoring as mon
import numpy as np
import dynrnn as dy

hits = [0]
def count(name, **kw):
    hits[0] += name == "/jax/compilation_cache/cache_hits"
mon.register_event_listener(count)
pc = dy.ParameterCollection(seed=3)
E = pc.add_lookup_parameters((20, 8))
lstm = dy.LSTMBuilder(1, 8, 16, pc)
W = pc.add_parameters((20, 16))
trainer = dy.SimpleSGDTrainer(pc)
rng = np.random.default_rng(0)
losses = []
for n in [3, 5, 4, 7, 3]:
    dy.renew_cg()
    words = rng.integers(0, 20, n).tolist()
    s = lstm.initial_state()
    errs = []
    for w, nxt in zip(words, words[1:]):
        s = s.add_input(E[w])
        errs.append(dy.pickneglogsoftmax(W * s.output(), nxt))
    loss = dy.esum(errs)
    losses.append(loss.scalar_value())
    loss.backward()
    trainer.update()
print(json.dumps({"losses": losses, "hits": hits[0], "cache": dy.config()["kernel_cache"]}))
"""


def _run(env: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=600,
                       env={**os.environ, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_second_run_loads_kernels_and_computes_the_same(tmp_path):
    where = str(tmp_path / "kernels")
    first = _run({"DYNRNN_KERNEL_CACHE": where})
    assert first["cache"] == where
    assert first["hits"] == 0
    stored = os.listdir(where)
    assert len(stored) >= 10  # one entry per kernel: many small ones in graph mode
    second = _run({"DYNRNN_KERNEL_CACHE": where})
    assert second["hits"] >= len(stored) // 2
    assert second["losses"] == first["losses"]


def test_kernel_cache_setting_is_checked(tmp_path):
    with pytest.raises(TypeError, match="kernel_cache must be a directory"):
        dy.config(kernel_cache=3)
    try:
        assert dy.config(kernel_cache=str(tmp_path))["kernel_cache"] == str(tmp_path)
    finally:
        assert dy.config(kernel_cache=False)["kernel_cache"] is None
