"""Character language models with dynrnn, in two parts.

Part 1 reproduces DyNet's RNN tutorial: a SimpleRNN and an LSTM (1 layer, 50/50) learn
"a quick brown fox jumped over the lazy dog" with SimpleSGDTrainer, DyNet's
`do_one_sentence` running verbatim on dynrnn's expression vocabulary (`dy.softmax`,
`dy.pick`, `dy.log`, `dy.esum`, DyNet's `R * h`).

Part 2 trains a 2-layer LSTM on Alice's Adventures in Wonderland (bundled, public
domain), one line of text per sequence, minibatched with `transduce(lengths=)`, and
reports held-out bits per character and samples.

    python examples/char_lm.py                    # both parts, about a minute on 2 CPU cores
    python examples/char_lm.py --part alice --seconds 600 --plot loss.png --save alice.npz
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import dynrnn as dy

HERE = os.path.dirname(os.path.abspath(__file__))
ALICE = os.path.join(HERE, "data", "alice29.txt")
EOS = "<EOS>"

# ---------------------------------------------------------------------------------------
# Part 1: DyNet's RNN tutorial
# ---------------------------------------------------------------------------------------


class Tutorial:
    """DyNet's tutorial model: lookup table, RNN, softmax layer, and its character table."""

    def __init__(self, builder_class: type, characters: str, layers: int = 1, input_dim: int = 50,
                 hidden_dim: int = 50, seed: int = 0):
        self.int2char = sorted(set(characters)) + [EOS]
        self.char2int = {c: i for i, c in enumerate(self.int2char)}
        self.pc = dy.ParameterCollection(seed=seed)
        self.rnn = builder_class(layers, input_dim, hidden_dim, self.pc)
        vocab = len(self.int2char)
        self.params = {"lookup": self.pc.add_lookup_parameters((vocab, input_dim)),
                       "R": self.pc.add_parameters((vocab, hidden_dim)),
                       "bias": self.pc.add_parameters((vocab,))}


def do_one_sentence(rnn: Any, params: dict, char2int: dict, sentence: str) -> jax.Array:
    """DyNet's `do_one_sentence`, verbatim (its globals `params` and `char2int` passed in)."""
    # setup the sentence
    dy.renew_cg()
    s0 = rnn.initial_state()

    R = dy.parameter(params["R"])
    bias = dy.parameter(params["bias"])
    lookup = params["lookup"]
    sentence = ["<EOS>"] + list(sentence) + ["<EOS>"]
    sentence = [char2int[c] for c in sentence]
    s = s0
    loss = []
    for char, next_char in zip(sentence, sentence[1:]):
        s = s.add_input(lookup[char])
        probs = dy.softmax(R * s.output() + bias)
        loss.append(-dy.log(dy.pick(probs, next_char)))
    loss = dy.esum(loss)
    return loss


def sentence_loss(rnn: Any, params: dict, ids: jax.Array) -> jax.Array:
    """The same loss with the recurrence as one compiled scan (`transduce`); ids include
    the EOS at both ends."""
    hs = rnn.initial_state().transduce(params["lookup"].batch(ids[:-1]))
    logits = hs @ params["R"].T + params["bias"].expr()
    return dy.sequence_cross_entropy(logits, ids[1:])


def generate(rnn: Any, params: dict, int2char: list, *, greedy: bool = False, max_len: int = 100,
             rng: random.Random | None = None) -> str:
    """DyNet's `generate`: one `add_input` per character, sampling from the softmax (or
    taking its argmax), until EOS. Changed from DyNet: `probs.vec_value()` becomes
    `np.asarray(probs)` (a JAX array has no `vec_value`), and a length cap."""
    rng = rng or random.Random(0)

    def sample(probs):
        rnd = rng.random()
        for i, p in enumerate(probs):  # noqa: B007 - i is the sample after the loop
            rnd -= p
            if rnd <= 0:
                break
        return i

    dy.renew_cg()
    R = dy.parameter(params["R"])
    bias = dy.parameter(params["bias"])
    lookup = params["lookup"]
    s0 = rnn.initial_state()
    s = s0.add_input(lookup[int2char.index(EOS)])
    out = []
    while len(out) < max_len:
        probs = dy.softmax(R * s.output() + bias)
        probs = np.asarray(probs, np.float64)
        next_char = int(np.argmax(probs)) if greedy else sample(probs)
        out.append(int2char[next_char])
        if out[-1] == EOS:
            break
        s = s.add_input(lookup[next_char])
    return "".join(c for c in out if c != EOS)


def train_tutorial(builder_class: type, sentence: str, iterations: int = 200, *, report_every: int = 5,
                   seed: int = 0, use_transduce: bool = False, log: Callable[[str], None] = print) -> tuple:
    """Trains the tutorial model with SimpleSGDTrainer; returns (model, final loss)."""
    model = Tutorial(builder_class, sentence, seed=seed)
    trainer = dy.SimpleSGDTrainer(model.pc)
    ids = jnp.array([model.char2int[c] for c in [EOS] + list(sentence) + [EOS]])
    rng = random.Random(seed)
    loss = math.nan
    for i in range(iterations):
        if use_transduce:
            loss = trainer.step(sentence_loss, model.rnn, model.params, ids)
        else:
            loss = trainer.step(do_one_sentence, model.rnn, model.params, model.char2int, sentence)
        if report_every and i % report_every == 0:
            log(f"  {i:4d}  loss {loss:9.4f}  {generate(model.rnn, model.params, model.int2char, rng=rng)!r}")
    return model, loss


# ---------------------------------------------------------------------------------------
# Part 2: a 2-layer LSTM on a real text, minibatched
# ---------------------------------------------------------------------------------------


def load_lines(path: str = ALICE, max_len: int = 100) -> list[str]:
    """The text's non-empty lines (CRLF normalised, trailing spaces stripped)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read().replace("\r\n", "\n").replace("\r", "\n")
    return [line.rstrip()[:max_len] for line in text.split("\n") if line.strip()]


def split(lines: list[str], held_out: float = 0.1) -> tuple[list[str], list[str]]:
    """The last `held_out` fraction of lines (the end of the book) is held out."""
    cut = int(len(lines) * (1 - held_out))
    return lines[:cut], lines[cut:]


class CharLM:
    """Embedding → multi-layer LSTM → softmax over characters; index 0 is the boundary
    symbol that starts and ends every line."""

    def __init__(self, alphabet: Iterable[str], *, layers: int = 2, embed: int = 32, hidden: int = 128,
                 seed: int = 0, builder_class: type = dy.LSTMBuilder):
        self.int2char = ["\n"] + sorted(set(alphabet) - {"\n"})
        self.char2int = {c: i for i, c in enumerate(self.int2char)}
        self.pc = dy.ParameterCollection(seed=seed)
        self.E = self.pc.add_lookup_parameters((len(self.int2char), embed), name="E")
        self.rnn = builder_class(layers, embed, hidden, self.pc)
        self.R = self.pc.add_parameters((len(self.int2char), hidden), name="R")
        self.b = self.pc.add_parameters(len(self.int2char), init=0.0, name="b")

    def encode(self, line: str) -> list[int]:
        return [0] + [self.char2int.get(c, 0) for c in line] + [0]

    def batches(self, lines: list[str], batch_size: int, *, shuffle: bool, rng: np.random.Generator,
                bucket: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
        """(ids (time+1, batch), lengths (batch,)) minibatches of similar lengths; time is
        rounded up to a multiple of `bucket`, so only a few shapes are ever compiled."""
        encoded = sorted((self.encode(line) for line in lines), key=len)
        groups = [encoded[i:i + batch_size] for i in range(0, len(encoded), batch_size)]
        out = []
        for g in groups:
            if len(g) < batch_size:  # pad the last group with copies, masked out by length 0
                g = g + [[0, 0]] * (batch_size - len(g))
            T = bucket * math.ceil(max(len(s) - 1 for s in g) / bucket)
            ids = np.zeros((T + 1, batch_size), np.int32)
            lengths = np.zeros(batch_size, np.int32)
            for j, s in enumerate(g):
                ids[: len(s), j] = s
                lengths[j] = len(s) - 1 if s != [0, 0] else 0
            out.append((ids, lengths))
        if shuffle:
            rng.shuffle(out)
        return out

    def loss(self, ids: jax.Array, lengths: jax.Array, reduction: str = "mean") -> jax.Array:
        """Cross-entropy of predicting ids[t+1] from ids[..t] for every line in the batch."""
        hs = self.rnn.initial_state().transduce(self.E.batch(ids[:-1]), lengths=lengths)
        logits = hs @ self.R.T + self.b.expr()
        return dy.sequence_cross_entropy(logits, ids[1:], lengths, reduction=reduction)

    def bits_per_char(self, lines: list[str], batch_size: int = 64) -> float:
        """Held-out bits per character (every character and the line end are predicted)."""
        evaluate = jax.jit(lambda values, ids, lengths: self._bound_sum(values, ids, lengths))
        values = self.pc.parameter_values()
        total, count = 0.0, 0
        for ids, lengths in self.batches(lines, batch_size, shuffle=False, rng=np.random.default_rng(0)):
            total += float(evaluate(values, ids, lengths))
            count += int(lengths.sum())
        return dy.bits_per_char(total, count)

    def _bound_sum(self, values, ids, lengths):
        with self.pc.bind(values):
            return self.loss(ids, lengths, reduction="sum")

    def sample(self, n: int = 200, *, temperature: float = 0.7, seed: int = 0, prefix: str = "") -> str:
        """Characters drawn one `add_input` at a time, starting a new line."""
        key = jax.random.key(seed)
        s = self.rnn.initial_state().add_input(self.E[0])
        for c in prefix:
            s = s.add_input(self.E[self.char2int.get(c, 0)])
        out = list(prefix)
        for _ in range(n):
            key, sub = jax.random.split(key)
            logits = (self.R @ s.output() + self.b) / temperature
            i = int(jax.random.categorical(sub, logits))
            out.append(self.int2char[i])
            s = s.add_input(self.E[i])
        return "".join(out)


def _progress(total: float, unit: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
        return tqdm(total=total, unit=unit, leave=False, file=sys.stderr,
                    bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} " + unit + " {postfix}")
    except ImportError:  # tqdm is an optional extra
        return None


def train_lm(lines: list[str], held_out: list[str], *, seconds: float | None = None, max_epochs: int = 1000,
             batch_size: int = 32, layers: int = 2, embed: int = 32, hidden: int = 128, learning_rate: float = 1e-2,
             dropout: float = 0.0, seed: int = 0, sample_every: int = 0, progress: bool = True,
             max_steps: int | None = None, log: Callable[[str], None] = print) -> tuple[CharLM, dict]:
    """Trains a CharLM with Adam for `max_steps` updates or `max_epochs` epochs, or for a time
    budget of `seconds` (whichever ends first; None: no time limit). A sample is logged every
    `sample_every` updates (0: never). Budgets in updates give the same model on any machine.
    Returns (model, history)."""
    model = CharLM("".join(lines + held_out), layers=layers, embed=embed, hidden=hidden, seed=seed)
    if dropout:
        model.rnn.set_dropout(dropout)
    trainer = dy.AdamTrainer(model.pc, alpha=learning_rate)
    rng = np.random.default_rng(seed)
    history: dict[str, list] = {"step": [], "loss": [], "seconds": [], "compile_seconds": 0.0}
    start = time.perf_counter()
    by_steps = max_steps is not None
    bar = _progress(max_steps if by_steps else (seconds or 0), "updates" if by_steps else "s", progress)
    say = log if bar is None or log is not print else bar.write  # lines above the bar, not through it
    step = chars = 0
    last_bar = start
    for epoch in range(max_epochs):
        for ids, lengths in model.batches(lines, batch_size, shuffle=True, rng=rng):
            t0 = time.perf_counter()
            loss = trainer.step(model.loss, ids, lengths)
            step += 1
            now = time.perf_counter()
            if step <= 4:  # the first call per bucket shape compiles
                history["compile_seconds"] += now - t0
            history["step"].append(step)
            history["loss"].append(loss)
            history["seconds"].append(now - start)
            chars += int(lengths.sum())
            if bar is not None and now - last_bar > 0.5:
                last_bar = now
                bar.n = step if by_steps else min(now - start, seconds or 0)
                bar.set_postfix_str(f"epoch {epoch + 1} step {step} loss {loss:.3f}", refresh=False)
                bar.refresh()
            if sample_every and step % sample_every == 0:
                say(f"  [{now - start:5.1f} s, step {step}] sample: {model.sample(80, seed=step)!r}")
            if (seconds is not None and now - start > seconds) or (by_steps and step >= max_steps):
                break
        else:
            continue
        break
    if bar is not None:
        bar.close()
    model.rnn.disable_dropout()
    history["epochs"] = epoch + 1
    history["steps"] = step
    history["train_seconds"] = time.perf_counter() - start
    history["chars_per_second"] = chars / history["train_seconds"]
    history["held_out_bpc"] = model.bits_per_char(held_out)
    return model, history


def plot_history(history: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    losses = np.array(history["loss"]) / math.log(2)
    ax.plot(history["step"], losses, lw=0.6, alpha=0.5, label="training batch")
    if len(losses) >= 20:
        w = max(5, len(losses) // 50)
        ax.plot(history["step"][w - 1:], np.convolve(losses, np.ones(w) / w, mode="valid"), label=f"mean of {w}")
    ax.axhline(history["held_out_bpc"], color="k", ls="--", lw=1, label=f"held-out {history['held_out_bpc']:.2f}")
    ax.set_xlabel("update")
    ax.set_ylabel("bits per character")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows each flag's default, and the description's line breaks."""


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=_HelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--part", choices=["tutorial", "alice", "both"], default="both",
                    help="tutorial: DyNet's char-LM tutorial models; alice: a 2-layer LSTM on a text; both")
    ap.add_argument("--iterations", type=int, default=200, help="tutorial: SGD iterations per model")
    ap.add_argument("--text", default=ALICE, help="part 2: a UTF-8 text file (default: bundled Alice)")
    ap.add_argument("--seconds", type=float, default=30.0,
                    help="part 2: training time budget in seconds (ignored with --steps)")
    ap.add_argument("--steps", type=int, default=None,
                    help="part 2: train for exactly this many updates instead (same result on any machine)")
    ap.add_argument("--sample-every", type=int, default=100, help="part 2: print a sample every N updates (0: never)")
    ap.add_argument("--batch-size", type=int, default=32, help="part 2: sentences per update")
    ap.add_argument("--layers", type=int, default=2, help="part 2: LSTM layers")
    ap.add_argument("--hidden", type=int, default=128, help="part 2: hidden units per layer")
    ap.add_argument("--embed", type=int, default=32, help="part 2: character embedding size")
    ap.add_argument("--learning-rate", type=float, default=1e-2, help="part 2: Adam learning rate")
    ap.add_argument("--dropout", type=float, default=0.0, help="part 2: dropout on inputs and states")
    ap.add_argument("--seed", type=int, default=0, help="parameter and sampling seed")
    ap.add_argument("--plot", help="part 2: save the loss curve to this PNG")
    ap.add_argument("--save", help="part 2: save the trained model (dy.save) to this file")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    args = ap.parse_args(argv)
    result: dict = {}

    print(f"dynrnn {dy.__version__} on {jax.default_backend()}")
    if args.part in ("tutorial", "both"):
        print("\nPart 1 — DyNet's RNN tutorial (1 layer, 50 → 50, SimpleSGDTrainer)")
        for cls in (dy.SimpleRNNBuilder, dy.LSTMBuilder):
            for sentence in ("a quick brown fox jumped over the lazy dog", "these pretzels are making me thirsty"):
                print(f"{cls.__name__}: {sentence!r}")
                t0 = time.perf_counter()
                model, loss = train_tutorial(cls, sentence, args.iterations, report_every=max(1, args.iterations // 4),
                                             seed=args.seed)
                greedy = generate(model.rnn, model.params, model.int2char, greedy=True)
                print(f"  final loss {loss:.4f}, greedy {greedy!r}, {time.perf_counter() - t0:.1f} s")
                result[f"{cls.__name__}:{sentence}"] = {"loss": loss, "greedy": greedy}

    if args.part in ("alice", "both"):
        lines = load_lines(args.text)
        train, held = split(lines)
        print(f"\nPart 2 — {args.layers}-layer LSTM ({args.embed}/{args.hidden}) on {os.path.basename(args.text)}: "
              f"{len(train)} training lines, {len(held)} held out; "
              + (f"{args.steps} updates" if args.steps else f"{args.seconds:.0f} s budget"))
        model, hist = train_lm(train, held, seconds=None if args.steps else args.seconds, max_steps=args.steps,
                               sample_every=args.sample_every, batch_size=args.batch_size, layers=args.layers,
                               embed=args.embed, hidden=args.hidden, learning_rate=args.learning_rate,
                               dropout=args.dropout, seed=args.seed, progress=not args.no_progress)
        print(f"  {hist['steps']} updates in {hist['train_seconds']:.1f} s ({hist['epochs']} epochs, "
              f"{hist['chars_per_second']:,.0f} chars/s, {hist['compile_seconds']:.1f} s of it compiling)")
        print(f"  held-out bits per character: {hist['held_out_bpc']:.3f}")
        print(f"  sample: {model.sample(240, seed=1, prefix='Alice ')!r}")
        if args.plot:
            plot_history(hist, args.plot)
            print(f"  loss curve: {args.plot}")
        if args.save:
            dy.save(args.save, [model.rnn, model.E, model.R, model.b])
            print(f"  saved: {args.save}")
        result["alice"] = hist
    return result


if __name__ == "__main__":
    main()
