"""Timing and reporting shared by the benchmark scripts: medians over repeats, one JSON
file per script in benchmarks/results/, and a table for people."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import jax

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
_STARTED = time.perf_counter()  # the scripts import this module first: their run time starts here


def time_per_call(fn: Callable[[], Any], *, number: int, repeats: int = 7, warmup: int = 2,
                  sync: Callable[[Any], Any] = lambda r: r) -> float:
    """Median over `repeats` of the mean seconds per call of `fn` run `number` times;
    `sync(result)` waits for asynchronous work (e.g. block_until_ready) at the end of a run."""
    for _ in range(warmup):
        sync(fn())
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(number):
            r = fn()
        sync(r)
        samples.append((time.perf_counter() - t) / number)
    return statistics.median(samples)


def machine() -> dict:
    device = jax.devices()[0]
    return {"python": platform.python_version(), "jax": jax.__version__, "backend": jax.default_backend(),
            "device": str(device), "device_kind": device.device_kind, "cpus": os.cpu_count(),
            "platform": platform.platform()}


def results_folder(root: str, backend: str) -> str:
    """Where a run's JSON goes: `root` for a CPU, `root`/gpu for an accelerator."""
    return root if backend == "cpu" else os.path.join(root, "gpu")


def report(name: str, rows: list[dict], columns: list[tuple[str, str]], notes: list[str] = ()) -> dict:
    """Prints a table (columns: (key, header)) and JSON, and writes results/<name>.json
    (results/gpu/<name>.json when JAX runs on an accelerator) with the date and the script's
    run time so far."""
    result = {"benchmark": name, "machine": machine(), "date": datetime.date.today().isoformat(),
              "seconds": round(time.perf_counter() - _STARTED, 1), "rows": rows,
              "columns": [list(c) for c in columns], "notes": list(notes)}
    widths = [max(len(h), *(len(_fmt(r.get(k))) for r in rows)) for k, h in columns]
    print(f"\n{name}")
    print("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r.get(k)).ljust(w) for (k, _), w in zip(columns, widths)))
    for n in notes:
        print(f"note: {n}")
    folder = results_folder(RESULTS, result["machine"]["backend"])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
    return result


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def optional(module: str):
    """Imports an optional peer (torch, flax), or returns None with a message."""
    try:
        return __import__(module)
    except ImportError:
        print(f"note: {module} is not installed; its column is skipped (pip install '.[bench]').")
        return None


def torch_device(torch) -> tuple[str, Callable[[Any], Any]]:
    """Where PyTorch baselines run, and the `sync` that waits for them: CUDA (cuDNN) when JAX
    itself runs on a GPU and PyTorch can see one, so both sides use the same device; else CPU."""
    if jax.default_backend() == "gpu" and torch.cuda.is_available():
        def sync(result):
            torch.cuda.synchronize()
            return result
        return "cuda", sync
    return "cpu", lambda result: result


DYNET_DIR = os.path.expanduser("~/.cache/dynet-2.1.2")
DYNET_PYTHON = os.path.join(DYNET_DIR, "venv", "bin", "python")


def run_dynet(args: list[str], timeout: float = 1800) -> str | None:
    """Runs DyNet 2.1.2's Python (`args`: a script and its arguments, or ["-c", code]) in its
    own environment (built as benchmarks/README.md, 'Building DyNet 2.1.2', says) and returns its stdout, or None with
    a printed note when DyNet is not built here or the run fails."""
    if not os.path.exists(DYNET_PYTHON):
        print(f"note: DyNet is not built at {DYNET_DIR} "
            f"(see benchmarks/README.md, 'Building DyNet 2.1.2'); its rows are skipped.")
        return None
    build = os.path.join(DYNET_DIR, "dyNET-2.1.2", "build")
    env = dict(os.environ, PYTHONPATH=os.path.join(build, "python"), LD_LIBRARY_PATH=os.path.join(build, "dynet"))
    out = subprocess.run([DYNET_PYTHON, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        print(f"note: the DyNet run failed: {out.stderr[-500:]}")
        return None
    return out.stdout
