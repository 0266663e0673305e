"""Sequence regression: an LSTM learns to continue a cosine wave.

The classic example of Torch's rnn package: input → Linear → LSTM → Linear → HardTanh,
trained with MSE to predict the next value, by truncated backpropagation through time
over windows of 10 steps (the state carried from window to window, gradients stopped at
the boundary). Then the model runs free — each prediction fed back as the next input — and
its continuation is plotted against the true wave.

    python examples/cos_wave.py --plot cos_wave.png
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import dynrnn as dy


def wave(n: int, step: float = 0.1, phase: float = 0.0) -> np.ndarray:
    return np.cos(phase + step * np.arange(n)).astype(np.float32)


class WaveModel:
    """x (1) → Linear(1, hidden) → LSTM(hidden, hidden) → Linear(hidden, 1) → hardtanh."""

    def __init__(self, hidden: int = 32, seed: int = 0):
        self.pc = dy.ParameterCollection(seed=seed)
        self.W_in = self.pc.add_parameters((hidden, 1), name="W_in")
        self.b_in = self.pc.add_parameters(hidden, init=0.0, name="b_in")
        self.lstm = dy.LSTMBuilder(1, hidden, hidden, self.pc)
        self.W_out = self.pc.add_parameters((1, hidden), name="W_out")
        self.b_out = self.pc.add_parameters(1, init=0.0, name="b_out")

    def predict(self, state: dy.RNNState, xs: jax.Array) -> tuple[jax.Array, dy.RNNState]:
        """xs: (time, batch, 1) → predictions (time, batch, 1) and the final state."""
        inp = xs @ self.W_in.T + self.b_in.expr()
        hs, final = state.transduce(inp, return_state=True)
        return jnp.clip(hs @ self.W_out.T + self.b_out.expr(), -1.0, 1.0), final

    def window_loss(self, xs: jax.Array, ys: jax.Array, state: dy.RNNState):
        pred, final = self.predict(state, xs)
        return jnp.mean((pred - ys) ** 2), final.detach()

    def generate(self, prime: np.ndarray, n: int) -> np.ndarray:
        """Reads `prime`, then feeds each prediction back in for `n` steps (one add_input each)."""
        pred, s = self.predict(self.lstm.initial_state(), jnp.asarray(prime)[:, None, None])
        x, out = pred[-1], []  # (batch 1, 1)
        for _ in range(n):
            s = s.add_input(x @ self.W_in.T + self.b_in.expr())
            x = jnp.clip(s.output() @ self.W_out.T + self.b_out.expr(), -1.0, 1.0)
            out.append(float(x[0, 0]))
        return np.array(out)


def train(epochs: int = 60, *, hidden: int = 32, window: int = 10, batch: int = 16, seq_len: int = 200,
          learning_rate: float = 0.01, seed: int = 0, log=print) -> tuple[WaveModel, list[float]]:
    """Each epoch: `batch` waves of random phase, read in windows of `window` steps (TBPTT)."""
    model = WaveModel(hidden, seed)
    trainer = dy.AdamTrainer(model.pc, alpha=learning_rate)
    rng = np.random.default_rng(seed)
    losses = []
    for epoch in range(epochs):
        phases = rng.uniform(0, 2 * np.pi, size=batch)
        data = np.stack([wave(seq_len + 1, phase=p) for p in phases], axis=1)[..., None]  # (time+1, batch, 1)
        state = model.lstm.initial_state([jnp.zeros((batch, hidden))] * 2)  # forget(): a new sequence
        total = 0.0
        for t in range(0, seq_len, window):
            loss, state = trainer.step(model.window_loss, data[t:t + window], data[t + 1:t + window + 1], state,
                                       has_aux=True)
            total += loss
        losses.append(total / (seq_len // window))
        if log and (epoch % 10 == 0 or epoch == epochs - 1):
            log(f"  epoch {epoch:3d}  mse {losses[-1]:.5f}")
    return model, losses


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows each flag's default, and the description's line breaks."""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=_HelpFormatter)
    ap.add_argument("--epochs", type=int, default=60, help="training epochs")
    ap.add_argument("--hidden", type=int, default=32, help="LSTM hidden units")
    ap.add_argument("--plot", help="save prediction vs truth to this PNG")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model, losses = train(args.epochs, hidden=args.hidden)
    truth = wave(300, phase=1.0)
    continued = model.generate(truth[:100], 200)
    mse = float(np.mean((continued - truth[100:]) ** 2))
    print(f"trained in {time.perf_counter() - t0:.1f} s; free-running MSE over 200 steps: {mse:.5f}")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot(np.arange(300), truth, "k", lw=1, label="cos")
        ax.plot(np.arange(100, 300), continued, "r--", lw=1.5, label="LSTM, running free")
        ax.axvline(100, color="gray", lw=0.5)
        ax.legend(loc="lower left")
        ax.set_xlabel("step")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")
    return {"train_mse": losses[-1], "free_running_mse": mse}


if __name__ == "__main__":
    main()
