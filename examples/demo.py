"""dynrnn demo: DyNet's RNN tutorial (a character language model on one sentence),
written with dynrnn's builders and immutable states and trained with jax.jit.

Run:  bash run.sh demo        (about 15 s on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import dynrnn as dy

SENTENCE = "a quick brown fox jumped over the lazy dog"
EOS = "<EOS>"


def build(builder_class, vocab_size: int, seed: int = 0, layers: int = 1, input_dim: int = 50,
          hidden_dim: int = 50):
    """The tutorial's model: a lookup table, an RNN, and a softmax layer (R, bias)."""
    pc = dy.ParameterCollection(seed=seed)
    model = {
        "rnn": builder_class(layers, input_dim, hidden_dim, pc),
        "lookup": pc.add_lookup_parameters((vocab_size, input_dim)),
        "R": pc.add_parameters((vocab_size, hidden_dim)),
        "bias": pc.add_parameters((vocab_size,), init=0.0),
    }
    return pc, model


def sentence_loss(model, ids: jax.Array) -> jax.Array:
    """−Σ log p(next char | prefix), the whole recurrence as one compiled scan (transduce)."""
    xs = model["lookup"].batch(ids[:-1])  # (time, input_dim)
    hs = model["rnn"].initial_state().transduce(xs)  # (time, hidden_dim)
    logp = jax.nn.log_softmax(hs @ model["R"].T + model["bias"].expr())
    return -jnp.sum(jnp.take_along_axis(logp, ids[1:, None], axis=1))


def make_sgd_step(pc, model, learning_rate: float, clip: float = 5.0):
    """loss, gradients with respect to every parameter, and an SGD update (gradients clipped
    to global L2 norm `clip`, DyNet's default), in one jitted call."""

    def loss_of(values, ids):
        with pc.bind(values):
            return sentence_loss(model, ids)

    @jax.jit
    def step(values, ids):
        loss, grads = jax.value_and_grad(loss_of)(values, ids)
        norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(grads)))
        scale = jnp.minimum(1.0, clip / norm)
        grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
        return loss, jax.tree_util.tree_map(lambda v, g: v - learning_rate * g, values, grads)

    return step


def generate(model, int2char, eos: int, max_len: int = 60) -> str:
    """Greedy decoding, one `add_input` per character: the incremental, DyNet-style way."""
    s = model["rnn"].initial_state().add_input(model["lookup"][eos])
    out = []
    for _ in range(max_len):
        logits = model["R"] @ s.output() + model["bias"]
        c = int(jnp.argmax(logits))
        if c == eos:
            break
        out.append(int2char[c])
        s = s.add_input(model["lookup"][c])
    return "".join(out)


def train(builder_class, sentence: str, iterations: int, learning_rate: float = 0.1, seed: int = 0,
          report_every: int = 25, log=print):
    chars = sorted(set(sentence)) + [EOS]
    char2int = {c: i for i, c in enumerate(chars)}
    eos = char2int[EOS]
    ids = jnp.array([eos] + [char2int[c] for c in sentence] + [eos])
    pc, model = build(builder_class, len(chars), seed=seed)
    step = make_sgd_step(pc, model, learning_rate)
    values = pc.parameter_values()
    t0 = time.perf_counter()
    loss = None
    for it in range(1, iterations + 1):
        loss, values = step(values, ids)
        if it % report_every == 0 or it == iterations:
            pc.set_parameter_values(values)
            log(f"  iter {it:4d}  loss {float(loss):8.4f}  greedy: {generate(model, chars, eos)!r}")
    pc.set_parameter_values(values)
    return float(loss), generate(model, chars, eos), time.perf_counter() - t0, model


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--sentence", default=SENTENCE)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    print(f"dynrnn {dy.__version__} on {jax.default_backend()}: DyNet's RNN tutorial, "
          f"{args.iterations} SGD steps on {args.sentence!r}\n")
    for cls in (dy.SimpleRNNBuilder, dy.LSTMBuilder):
        print(f"{cls.__name__} (1 layer, 50 → 50):")
        loss, text, secs, model = train(cls, args.sentence, args.iterations, seed=args.seed)
        print(f"  final loss {loss:.4f}; {1000 * secs / args.iterations:.2f} ms per step including compilation\n")

    rnn = model["rnn"]
    s0 = rnn.initial_state()
    s1 = s0.add_input(model["lookup"][0])
    s2a, s2b = s1.add_input(model["lookup"][1]), s1.add_input(model["lookup"][2])
    print("States are immutable values: s1 has two children, and popping either gives s1 back:")
    print(f"  s2a.prev() is s1: {s2a.prev() is s1}; s2b.prev() is s1: {s2b.prev() is s1}; "
          f"s1 unchanged: {bool(np.allclose(s1.output(), s0.add_input(model['lookup'][0]).output()))}")
    print(f"  s1.s() holds {len(s1.s())} vectors (c then h); s1.h()[0][:4] = {np.round(s1.h()[0][:4], 3)}")


if __name__ == "__main__":
    main()
