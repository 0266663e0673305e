"""Data-parallel training words/s on 1, 2, 4 and 8 devices: benchmarks/rnnlm_batch.py's model
at minibatch 64, the batch split over the devices with `dy.shard_batch` and the parameters
replicated by `Trainer.distribute` (XLA all-reduces the gradient).

Without accelerators the devices are simulated on the CPU
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`, one fresh process per N): they share
this machine's cores, so the figures show the cost of splitting, not a speed-up. On a
machine with N real devices the same script measures the real thing (`--real`).

Run: .venv/bin/python benchmarks/data_parallel.py [--devices 1 2 4 8] [--sentences 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _harness import report

HERE = os.path.dirname(os.path.abspath(__file__))

WORKER = """
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, {here!r})
import dynrnn as dy
from rnnlm_batch import SHAKESPEARE, language_model, lm_batch, order_batches, sentences

n, count = {n}, {sentences}
train, nwords, eos = sentences(SHAKESPEARE, count)
batches = [lm_batch(b, eos) for b in order_batches(train, 64) if len(b) == 64]
pc, loss = language_model(nwords)
trainer = dy.AdamTrainer(pc, 0.001)
mesh = dy.data_parallel_mesh(jax.devices()[:n])
trainer.distribute(mesh)
shard = lambda b: dy.shard_batch(b[:2], mesh, axis=1) + (dy.shard_batch(b[2], mesh),)
prepared = [shard(b) for b in batches]
seen = set()
for args in prepared:                      # compile every shape first
    if args[0].shape not in seen:
        seen.add(args[0].shape)
        trainer.step(loss, *args)
words = sum(int(b[2].sum()) for b in batches)
t0 = time.perf_counter()
losses = [trainer.step(loss, *args) for args in prepared]
elapsed = time.perf_counter() - t0
print(json.dumps({{"devices": n, "words_per_second": words / elapsed, "loss_per_word": sum(losses) / words,
                  "batches": len(prepared)}}))
"""


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--sentences", type=int, default=2048)
    ap.add_argument("--real", action="store_true", help="use the machine's own devices (no simulated CPU devices)")
    args = ap.parse_args()
    rows = []
    for n in args.devices:
        env = dict(os.environ)
        if not args.real:
            env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu")
        out = subprocess.run([sys.executable, "-c", WORKER.format(here=HERE, n=n, sentences=args.sentences)],
                             env=env, capture_output=True, text=True, cwd=HERE)
        if out.returncode != 0:
            raise SystemExit(f"the {n}-device run failed:\n{out.stderr[-2000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for r in rows:
        r["vs_one_device"] = r["words_per_second"] / rows[0]["words_per_second"]
    cols = [("devices", "devices"), ("words_per_second", "words/s"), ("vs_one_device", "× first row"),
            ("loss_per_word", "loss/word"), ("batches", "batches")]
    notes = ["rnnlm-batch model, minibatch 64 split over the devices, Adam; same seed and batches for every row, so "
             "loss/word agrees across rows up to float rounding.",
             "real devices" if args.real else "simulated CPU devices sharing this machine's cores (no speed-up "
             "expected; the rows show what splitting costs)."]
    return report("data_parallel", rows, cols, notes)


if __name__ == "__main__":
    main()
