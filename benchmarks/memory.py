"""Training memory of `transduce`: XLA's own buffer plan for one compiled gradient step
(`jax.jit(...).lower(...).compile().memory_analysis()`: the arguments, outputs and temporary
buffers the step allocates; deterministic, unlike sampling a process's resident size).

* transduce at T = 100, 500, 2000 (1-layer LSTM 256→256, batch 32): the slope is the memory
  kept per time step for the backward pass;
* at T = 50: `transduce` (one `lax.scan`, outputs only), `add_inputs` (a scan that keeps
  every state) and DyNet's `add_input` loop unrolled into the trace (where unrolling still
  compiles in reasonable time).

Run: .venv/bin/python benchmarks/memory.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from _harness import report

import dynrnn as dy

n_in = H = 256
B = 32


def plan(way: str, T: int) -> dict:
    pc = dy.ParameterCollection(seed=0)
    lstm = dy.LSTMBuilder(1, n_in, H, pc)
    xs = jnp.ones((T, B, n_in), jnp.float32)

    def loss(xs):
        s = lstm.initial_state()
        if way == "transduce":
            hs = s.transduce(xs)
        elif way == "add_inputs":  # every state kept (c and h), as DyNet's add_inputs returns
            hs = jnp.stack([st.output() for st in s.add_inputs(xs)])
        else:  # DyNet's Python loop, unrolled into the trace
            outs = []
            for x in xs:
                s = s.add_input(x)
                outs.append(s.output())
            hs = jnp.stack(outs)
        return jnp.sum(hs**2)

    def pure(values, xs):
        with pc.bind(values):
            return loss(xs)

    t0 = time.perf_counter()
    compiled = jax.jit(jax.value_and_grad(pure)).lower(pc.parameter_values(), xs).compile()
    seconds = time.perf_counter() - t0
    m = compiled.memory_analysis()
    temp, args, out = m.temp_size_in_bytes, m.argument_size_in_bytes, m.output_size_in_bytes
    return {"way": way, "T": T, "temp_mb": temp / 2**20, "total_mb": (temp + args + out) / 2**20,
            "temp_kb_per_step": temp / T / 2**10, "compile_s": seconds}


def main() -> dict:
    rows = [plan("transduce", T) for T in (100, 500, 2000)]
    (a, b) = rows[0], rows[-1]
    slope = (b["temp_mb"] - a["temp_mb"]) * 2**10 / (b["T"] - a["T"])
    rows += [plan(way, 50) for way in ("transduce", "add_inputs", "add_input loop")]
    per_step_state = B * H * 4 / 2**10
    cols = [("way", "way"), ("T", "T"), ("temp_mb", "temporary MiB"), ("total_mb", "total MiB"),
            ("temp_kb_per_step", "KiB per step"), ("compile_s", "compile s")]
    notes = [f"1-layer LSTM {n_in}→{H}, batch {B}, float32; loss = Σ h², value and gradient of every parameter.",
             f"transduce slope between T=100 and T=2000: {slope:.0f} KiB per time step; one (batch, hidden) array "
             f"is {per_step_state:.0f} KiB.", "XLA CPU's buffer plan; GPU plans differ in layout but not in slope."]
    return report("memory", rows, cols, notes)


if __name__ == "__main__":
    main()
