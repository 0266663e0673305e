"""Training speed of the DyNet tutorial's character LM (1-layer LSTM / SimpleRNN, 50→50),
one sentence at a time and minibatched, against the same computation written directly as
`jax.jit(jax.value_and_grad(...))` in this file (and DyNet when its environment exists).

Run: .venv/bin/python benchmarks/char_lm.py [--iterations 300]
Targets (benchmarks/README.md): one sentence at a time under DyNet's 0.37 ms (LSTM); minibatched ≥ 5×
ahead of DyNet per sentence; the tutorial model compiles in under 5 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import report, run_dynet, time_per_call

import dynrnn as dy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import char_lm  # noqa: E402

SENTENCE = "a quick brown fox jumped over the lazy dog"


def raw_jax_step(cell: str, vocab: int, H: int = 50, lr: float = 0.1):
    """The tutorial model written directly in JAX: scan + value_and_grad + SGD, jitted."""
    def loss(params, ids):
        E, W_x, W_h, b, R, bias = params

        def step(carry, x):
            c, h = carry
            if cell == "lstm":
                i, f, o, g = jnp.split(W_x @ x + W_h @ h + b, 4)
                c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
                h = jax.nn.sigmoid(o) * jnp.tanh(c)
            else:
                h = jnp.tanh(W_x @ x + W_h @ h + b)
            return (c, h), h

        _, hs = jax.lax.scan(step, (jnp.zeros(H), jnp.zeros(H)), E[ids[:-1]])
        logp = jax.nn.log_softmax(hs @ R.T + bias)
        return -jnp.sum(jnp.take_along_axis(logp, ids[1:, None], axis=1))

    @jax.jit
    def update(params, ids):
        li, g = jax.value_and_grad(loss)(params, ids)
        return li, jax.tree_util.tree_map(lambda p, g: p - lr * g, params, g)

    G = 4 if cell == "lstm" else 1
    rng = np.random.default_rng(0)
    params = tuple(jnp.asarray(rng.normal(0, 0.1, s), jnp.float32)
                   for s in [(vocab, 50), (G * H, 50), (G * H, H), (G * H,), (vocab, H), (vocab,)])
    return update, params


def timed_first_call(fn):
    t = time.perf_counter()
    r = fn()
    jax.block_until_ready(r)
    return time.perf_counter() - t


def one_at_a_time(iterations: int) -> list[dict]:
    rows = []
    for cell, cls in (("lstm", dy.LSTMBuilder), ("simple", dy.SimpleRNNBuilder)):
        for variant in ("transduce", "add_input loop"):
            for compiled in (True, False):
                if not compiled and variant == "add_input loop" and cell == "simple":
                    continue  # same story as the LSTM row; keeps the run short
                model = char_lm.Tutorial(cls, SENTENCE, seed=0)
                trainer = dy.SimpleSGDTrainer(model.pc)
                ids = jnp.array([model.char2int[c] for c in [char_lm.EOS] + list(SENTENCE) + [char_lm.EOS]])
                if variant == "transduce":
                    args = (char_lm.sentence_loss, model.rnn, model.params, ids)
                else:
                    args = (char_lm.do_one_sentence, model.rnn, model.params, model.char2int, SENTENCE)
                if compiled:
                    def step():
                        return trainer.step(*args)
                else:
                    vg = dy.value_and_grad(args[0], model.pc, jit=False)

                    def step():
                        loss, grads = vg(*args[1:])
                        trainer.update(grads)
                        return float(loss)
                first = timed_first_call(step)
                n = iterations if compiled else max(3, iterations // 30)
                per = time_per_call(step, number=n, repeats=5 if compiled else 3, warmup=1)
                rows.append({"model": cell, "way": f"dynrnn {'jit' if compiled else 'op by op'}, {variant}",
                             "ms_per_sentence": 1e3 * per, "first_call_s": first})
        update, params = raw_jax_step(cell, len(set(SENTENCE)) + 1)
        ids = jnp.asarray(np.random.default_rng(0).integers(0, len(set(SENTENCE)) + 1, len(SENTENCE) + 2))
        state = {"p": params}

        def raw():
            loss, state["p"] = update(state["p"], ids)
            return float(loss)

        first = timed_first_call(raw)
        per = time_per_call(raw, number=iterations, repeats=5)
        rows.append({"model": cell, "way": "raw jax.jit(value_and_grad) + scan", "ms_per_sentence": 1e3 * per,
                     "first_call_s": first})
    return rows


def minibatched(iterations: int, batch: int = 32) -> list[dict]:
    lines = [line for line in char_lm.load_lines() if 30 <= len(line) <= 62][: batch * 8]
    model = char_lm.CharLM("".join(lines), layers=1, embed=50, hidden=50)
    trainer = dy.SimpleSGDTrainer(model.pc)
    batches = model.batches(lines, batch, shuffle=False, rng=np.random.default_rng(0), bucket=64)
    chars = float(np.mean([lengths.sum() for _, lengths in batches]))
    state = {"i": 0}

    def step():
        ids, lengths = batches[state["i"] % len(batches)]
        state["i"] += 1
        return trainer.step(model.loss, ids, lengths)

    first = timed_first_call(step)
    per = time_per_call(step, number=max(10, iterations // 10), repeats=5)
    return [{"model": "lstm", "way": f"dynrnn jit, transduce, {batch} sentences per call (lengths=)",
             "ms_per_sentence": 1e3 * per / batch, "first_call_s": first, "chars_per_s": chars / per}]


def dynet_rows() -> tuple[list[dict], list[str]]:
    out = run_dynet([os.path.join(os.path.dirname(os.path.abspath(__file__)), "dynet_char_lm.py")], timeout=900)
    if out is None:
        return [], ["DyNet not measured in this run. "
            "benchmarks/README.md's figures from this machine: 0.37 ms (LSTM) and "
                    "0.17 ms (SimpleRNN) per sentence one at a time; 0.54–0.62 ms per sentence with 32 in one graph."]
    rows = []
    for line in out.splitlines():
        model, label, ms = line.split()
        way = ("DyNet 2.1.2: renew_cg, forward, backward, update" if label == "one"
               else "DyNet 2.1.2: 32 sentences in one graph")
        row = {"model": model, "way": way, "ms_per_sentence": float(ms)}
        if label == "batch32":
            row["chars_per_s"] = 43 / (float(ms) / 1e3)
        rows.append(row)
    return rows, ["DyNet measured in this run (its own venv, benchmarks/README.md, 'Building DyNet 2.1.2')."]


def run(iterations: int) -> dict:
    rows = one_at_a_time(iterations) + minibatched(iterations)
    extra, notes = dynet_rows()
    rows += extra
    base = {r["model"]: r["ms_per_sentence"] for r in rows if r["way"].startswith("raw")}
    dynet = {r["model"]: r["ms_per_sentence"] for r in rows if r["way"].startswith("DyNet 2.1.2: renew")}
    dynet_label = "÷ DyNet (this run)" if dynet else "÷ DyNet (figure measured here earlier)"
    dynet = dynet or {"lstm": 0.37, "simple": 0.17}
    for r in rows:
        r["ratio_vs_raw_jax"] = r["ms_per_sentence"] / base[r["model"]]
        r["ratio_vs_dynet"] = r["ms_per_sentence"] / dynet[r["model"]]
    cols = [("model", "model"), ("way", "way"), ("ms_per_sentence", "ms/sentence"), ("first_call_s", "1st call s"),
            ("ratio_vs_raw_jax", "÷ raw JAX"), ("ratio_vs_dynet", dynet_label), ("chars_per_s", "chars/s")]
    notes = notes + [f"'{SENTENCE}' (43 predictions), SGD, clipping on; 'first call' includes tracing and "
                     "compilation; op by op = dy.value_and_grad(jit=False) + trainer.update."]
    return report("char_lm", rows, cols, notes)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=300)
    run(ap.parse_args().iterations)
