"""Compile cost of a training loop over sentences of mixed lengths: compilations, time to
the first step and wall time for one pass, with and without length bucketing.

The model is benchmarks/rnnlm_batch.py's (embedding 128, LSTM 256, 7,600 words, Adam), the
data tiny Shakespeare's sentences, minibatch 32. Three ways to form batches:

* random batches, each padded to its own longest sentence (no bucketing);
* batches of similar length (`dy.length_buckets`), each padded to its own longest;
* batches of similar length padded up to a multiple of 8 (`dy.length_buckets` + `dy.pad_batch`);
* batches of similar length padded to as many lengths as that, chosen by `dy.bucket_lengths`.

Compilations are counted with JAX's own monitoring events (every XLA backend compile).
Run: .venv/bin/python benchmarks/compile_cost.py [--sentences 3000]
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import report
from rnnlm_batch import SHAKESPEARE, chosen_lengths, language_model, lm_batch, sentences

import dynrnn as dy

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles: list[float] = []


def _listen(event: str, seconds: float, **_: object) -> None:
    if event == COMPILE_EVENT:
        _compiles.append(seconds)


def one_pass(train: list[list[int]], nwords: int, eos: int, how: str, batch_size: int) -> dict:
    rng = np.random.default_rng(0)
    if how == "random":
        order = rng.permutation(len(train))
        groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    else:
        groups = dy.length_buckets([len(s) for s in train], batch_size, rng=rng)
    multiple = 8 if how == "bucketed, rounded to 8" else 1
    buckets = chosen_lengths([[train[i] for i in g] for g in groups], 8) if how == "bucketed, chosen lengths" else None
    batches = [tuple(map(jnp.asarray, lm_batch([train[i] for i in g], eos, multiple, buckets))) for g in groups]
    pc, loss = language_model(nwords)
    trainer = dy.AdamTrainer(pc, 0.001)
    words = sum(len(s) for s in train)
    del _compiles[:]
    t0 = time.perf_counter()
    trainer.step(loss, *batches[0])
    first = time.perf_counter() - t0
    for args in batches[1:]:
        trainer.step(loss, *args)
    wall = time.perf_counter() - t0
    padded = sum(int(np.prod(b[0].shape)) for b in batches)
    return {"batching": how, "shapes": len({b[0].shape for b in batches}), "compilations": len(_compiles),
            "compile_s": sum(_compiles), "first_step_s": first, "pass_s": wall, "words_per_second": words / wall,
            "padding_pct": 100 * (1 - words / padded)}


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=SHAKESPEARE)
    ap.add_argument("--sentences", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    if not os.path.exists(args.data):
        raise SystemExit(f"no text at {args.data}; give --data")
    train, nwords, eos = sentences(args.data, args.sentences)
    jax.monitoring.register_event_duration_secs_listener(_listen)
    rows = [one_pass(train, nwords, eos, how, args.batch_size)
            for how in ("random", "bucketed, exact length", "bucketed, rounded to 8", "bucketed, chosen lengths")]
    cols = [("batching", "batches"), ("shapes", "shapes"), ("compilations", "XLA compiles"),
            ("compile_s", "compile s"), ("first_step_s", "first step s"), ("pass_s", "one pass s"),
            ("words_per_second", "words/s (incl. compiles)"), ("padding_pct", "padding %")]
    notes = [f"{len(train)} sentences, minibatch {args.batch_size}, one pass each from fresh parameters; "
             "compilations include every XLA compile in the pass (the training step once per shape)."]
    return report("compile_cost", rows, cols, notes)


if __name__ == "__main__":
    main()
