"""Throughput of `transduce` (T=100, 256→256) against PyTorch `nn.LSTM`/`nn.GRU` and Flax
`nn.RNN`, each in its fastest ordinary form (PyTorch eager under no_grad, Flax jitted),
plus the fraction of this machine's float32 matmul rate that the recurrence reaches.

Run: .venv/bin/python benchmarks/transduce.py [--quick]
Target (benchmarks/README.md): faster than both peers at T=100, batch 32, 256→256.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from _harness import optional, report, time_per_call, torch_device

import dynrnn as dy

T, n_in, H = 100, 256, 256


def matmul_rate() -> float:
    """Float32 FLOP/s of one large jitted matmul on this machine (the ceiling)."""
    n = 1024
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    secs = time_per_call(lambda: f(a), number=5, sync=lambda r: r.block_until_ready())
    return 2 * n**3 / secs


def flops(cell: str, layers: int, batch: int) -> float:
    gates = 4 if cell == "lstm" else 3
    return T * batch * layers * 2 * gates * H * (n_in + H)


def run(quick: bool) -> dict:
    torch = optional("torch")
    flax = optional("flax")
    peak = matmul_rate()
    configs = [(c, L, B) for c in ("lstm", "gru") for L in (1, 2) for B in (1, 32)]
    if quick:
        configs = [("lstm", 1, 32)]
    rows = []
    for cell, L, B in configs:
        rng = np.random.default_rng(0)
        xs_np = rng.normal(size=(T, B, n_in)).astype(np.float32)
        xs = jnp.asarray(xs_np)
        pc = dy.ParameterCollection(seed=0)
        builder = (dy.LSTMBuilder if cell == "lstm" else dy.GRUBuilder)(L, n_in, H, pc)
        s0 = builder.initial_state()
        def sync(r):
            return r.block_until_ready()
        t_ours = time_per_call(lambda: s0.transduce(xs), number=10, sync=sync)
        row = {"config": f"{cell} {L}L T={T} B={B}", "dynrnn_ms": 1e3 * t_ours,
               "pct_of_matmul_peak": 100 * flops(cell, L, B) / t_ours / peak}
        if torch is not None:
            torch.manual_seed(0)
            device, torch_sync = torch_device(torch)
            net = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(n_in, H, num_layers=L).to(device)
            txs = torch.tensor(xs_np, device=device)

            def torch_fwd():
                with torch.no_grad():
                    return net(txs)[0]

            t_torch = time_per_call(torch_fwd, number=10, sync=torch_sync)
            row.update(torch_ms=1e3 * t_torch, ratio_vs_torch=t_ours / t_torch)
        if flax is not None:
            from flax import linen as nn

            class Stack(nn.Module):
                @nn.compact
                def __call__(self, x):  # x: (batch, time, n_in), Flax's batch-major convention
                    for _ in range(L):
                        c = nn.OptimizedLSTMCell(H) if cell == "lstm" else nn.GRUCell(H)
                        x = nn.RNN(c)(x)
                    return x

            model = Stack()
            bx = jnp.swapaxes(xs, 0, 1)
            variables = model.init(jax.random.key(0), bx)
            apply = jax.jit(model.apply)
            t_flax = time_per_call(lambda: apply(variables, bx), number=10, sync=sync)
            row.update(flax_ms=1e3 * t_flax, ratio_vs_flax=t_ours / t_flax)
        rows.append(row)
    cols = [("config", "config"), ("dynrnn_ms", "dynrnn ms"), ("torch_ms", "torch ms"),
            ("ratio_vs_torch", "÷ torch"), ("flax_ms", "flax ms"), ("ratio_vs_flax", "÷ flax"),
            ("pct_of_matmul_peak", "% of matmul peak")]
    notes = [f"matmul peak measured in this run: {peak / 1e9:.0f} GFLOP/s (1024² float32, jitted)",
             "dynrnn: eager call of state.transduce (argument checks + one compiled lax.scan); "
             "torch: nn.LSTM/nn.GRU forward under no_grad (cuDNN when JAX runs on a GPU); "
                 "flax: jitted linen nn.RNN apply. Ratios < 1: dynrnn faster."]
    return report("transduce", rows, cols, notes)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the target configuration")
    run(ap.parse_args().quick)
