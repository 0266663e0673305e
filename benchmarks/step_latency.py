"""Per-step latency of incremental `add_input` (DyNet's usage: one step at a time, every
state kept), against a bare jitted JAX step written here and PyTorch's LSTMCell (eager).

Run: .venv/bin/python benchmarks/step_latency.py [--steps 2000]
Targets (benchmarks/README.md): dynrnn ≤ 1.3× the bare jitted step, and faster than PyTorch.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from _harness import optional, report, time_per_call, torch_device

import dynrnn as dy

CONFIGS = [(1, 64, 128), (2, 256, 256)]  # layers, input_dim, hidden_dim


def bare_lstm_step(params, cs, hs, x):
    """The same LSTM written directly: what a JAX user would jit by hand."""
    new_c, new_h = [], []
    for (W_x, W_h, b), c, h in zip(params, cs, hs):
        i, f, o, g = jnp.split(W_x @ x + W_h @ h + b, 4)
        c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        new_c.append(c)
        new_h.append(h)
        x = h
    return tuple(new_c), tuple(new_h)


def run(steps: int) -> dict:
    torch = optional("torch")
    rows = []
    for L, n_in, H in CONFIGS:
        pc = dy.ParameterCollection(seed=0)
        lstm = dy.LSTMBuilder(L, n_in, H, pc)
        xs = [jnp.asarray(v, jnp.float32) for v in np.random.default_rng(0).normal(size=(steps, n_in))]

        def ours():
            s = lstm.initial_state()
            for x in xs:
                s = s.add_input(x)  # every state stays reachable through prev(), as in DyNet
            return s.output()

        params = tuple(tuple(p.value for p in layer) for layer in lstm.get_parameters())
        step = jax.jit(bare_lstm_step)
        zeros = tuple(jnp.zeros(H) for _ in range(L))

        def bare():
            cs, hs = zeros, zeros
            for x in xs:
                cs, hs = step(params, cs, hs, x)
            return hs[-1]

        user_step = dy.jit(lambda s, x: s.add_input(x), pc)  # a user's own compiled step

        def ours_jit():
            s = lstm.initial_state()
            for x in xs:
                s = user_step(s, x)
            return s.output()

        def block(r):
            return r.block_until_ready()
        t_ours = time_per_call(ours, number=1, repeats=7, sync=block) / steps
        t_bare = time_per_call(bare, number=1, repeats=7, sync=block) / steps
        t_jit = time_per_call(ours_jit, number=1, repeats=7, sync=block) / steps
        row = {"config": f"{L}-layer LSTM {n_in}->{H}, batch 1", "dynrnn_us": 1e6 * t_ours, "bare_jax_us": 1e6 * t_bare,
               "ratio_vs_bare": t_ours / t_bare, "dy_jit_us": 1e6 * t_jit, "dy_jit_vs_bare": t_jit / t_bare}
        if torch is not None:
            torch.manual_seed(0)
            device, torch_sync = torch_device(torch)
            cells = [torch.nn.LSTMCell(n_in if li == 0 else H, H).to(device) for li in range(L)]
            txs = [torch.tensor(np.asarray(x), device=device)[None] for x in xs]

            def torch_loop():
                with torch.no_grad():
                    state = [(torch.zeros(1, H, device=device), torch.zeros(1, H, device=device)) for _ in range(L)]
                    for x in txs:
                        inp = x
                        new = []
                        for cell, (h, c) in zip(cells, state):
                            h, c = cell(inp, (h, c))
                            new.append((h, c))
                            inp = h
                        state = new
                    return inp

            t_torch = time_per_call(torch_loop, number=1, repeats=7, sync=torch_sync) / steps
            row.update(torch_us=1e6 * t_torch, ratio_vs_torch=t_ours / t_torch)
        rows.append(row)
    cols = [("config", "config"), ("dynrnn_us", "dynrnn µs/step"), ("bare_jax_us", "bare jit µs/step"),
            ("ratio_vs_bare", "÷ bare (target ≤1.3)"), ("dy_jit_us", "dy.jit(add_input) µs/step"),
            ("dy_jit_vs_bare", "÷ bare"), ("torch_us", "torch LSTMCell µs/step"),
            ("ratio_vs_torch", "÷ torch (target <1)")]
    notes = [f"{steps} steps per sequence, median of 7 runs; dynrnn keeps every state (prev() chain) alive as DyNet "
             "does; PyTorch under no_grad with its default threads.",
             "dy.jit(add_input): the same step compiled by the user through dy.jit, which passes every parameter "
             "of the collection as an argument on each call (what keeps its values current after training)."]
    return report("step_latency", rows, cols, notes)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    run(ap.parse_args().steps)
