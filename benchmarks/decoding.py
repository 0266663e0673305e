"""Decoding speed: greedy and beam-5 search over a decoder LSTM (embedding 128, hidden 256,
vocabulary 2,000), eager (`dy.greedy_decode` / `dy.beam_search`: a Python loop, the value
fetched every step) against compiled (`dy.beam_search_batched`: one `lax.while_loop`), at
batch 1 and 64; DyNet 2.1.2's incremental `add_input` + `npvalue()` greedy loop when its
environment exists. Every sequence runs exactly 50 steps (EOS is made unreachable), so
output tokens per second compare like with like.

Run: .venv/bin/python benchmarks/decoding.py
Target (issue #5): a compiled loop beats DyNet per token at batch 1, and by orders of
magnitude at batch 64.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import report, run_dynet

import dynrnn as dy

V, EMB, H, STEPS, EOS, START = 2000, 128, 256, 50, 0, 1

DYNET_GREEDY = f"""
import json, time, numpy as np, dynet as dy
pc = dy.ParameterCollection()
E = pc.add_lookup_parameters(({V}, {EMB})); rnn = dy.LSTMBuilder(1, {EMB}, {H}, pc)
R = pc.add_parameters(({V}, {H})); b = pc.add_parameters({V})
def run():
    dy.renew_cg(); s = rnn.initial_state(); tok = {START}
    for _ in range({STEPS}):
        s = s.add_input(E[tok]); p = dy.log_softmax(R * s.output() + b).npvalue()
        p[{EOS}] = -np.inf; tok = int(np.argmax(p))
run(); t = time.perf_counter()
for _ in range(20): run()
print(json.dumps({{"tokens_per_second": 20 * {STEPS} / (time.perf_counter() - t)}}))
"""


def model():
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((V, EMB))
    rnn = dy.LSTMBuilder(1, EMB, H, pc)
    R = pc.add_parameters((V, H))
    b = pc.add_parameters(V, init=np.where(np.arange(V) == EOS, -1e9, 0.0))  # EOS never wins

    def step(state, token):
        state = state.add_input(E[token])
        return state, jax.nn.log_softmax(R * state.output() + b)

    return pc, rnn, step


def timed(fn, repeats=3):
    fn()  # compile / warm up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> dict:
    pc, rnn, step = model()
    rows = []
    s0 = rnn.initial_state()
    t = timed(lambda: dy.greedy_decode(step, s0, START, EOS, STEPS), repeats=2)
    rows.append({"search": "greedy", "way": "eager (Python loop)", "batch": 1, "tokens_s": STEPS / t})
    t = timed(lambda: dy.beam_search(step, s0, START, EOS, 5, STEPS), repeats=1)
    rows.append({"search": "beam 5", "way": "eager (Python loop)", "batch": 1, "tokens_s": STEPS / t})

    def compiled(values, h, K):
        with pc.bind(values):
            return dy.beam_search_batched(step, rnn.initial_state([h, h]), START, EOS, K, STEPS)["tokens"]

    search = jax.jit(compiled, static_argnums=2)
    values = pc.parameter_values()
    for K, name in ((1, "greedy"), (5, "beam 5")):
        for B in (1, 64):
            h = jnp.zeros((B, H), jnp.float32)
            t = timed(lambda: search(values, h, K).block_until_ready())
            rows.append({"search": name, "way": "compiled (lax.while_loop)", "batch": B, "tokens_s": B * STEPS / t})
    out = run_dynet(["-c", DYNET_GREEDY])
    if out is not None:
        d = json.loads(out.strip().splitlines()[-1])
        rows.append({"search": "greedy", "way": "DyNet add_input + npvalue", "batch": 1,
                     "tokens_s": d["tokens_per_second"]})
    base = next((r["tokens_s"] for r in rows if r["way"].startswith("DyNet")), None)
    for r in rows:
        r["us_per_token"] = 1e6 / r["tokens_s"]
        if base:
            r["vs_dynet"] = r["tokens_s"] / base
    return report("decoding", rows, [("search", "search"), ("way", "way"), ("batch", "batch"),
                                     ("tokens_s", "output tokens/s"), ("us_per_token", "µs/token"),
                                     ("vs_dynet", "× DyNet greedy")],
                  [f"decoder: embedding {EMB}, 1-layer LSTM {H}, vocabulary {V}; {STEPS} steps per sequence",
                   "beam rows count the best hypothesis's tokens (a beam of 5 does 5x the work per token)"])


if __name__ == "__main__":
    main()
