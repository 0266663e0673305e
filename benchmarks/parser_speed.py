"""Training and parsing speed of the stack-LSTM parser (examples/stack_lstm_parser.py) on
UD English EWT train, at the original code's dimensions (coupled LSTMs, token 60, hidden 64,
2 layers, action 16, relation 10, word 32, POS 12), in sentences per second:

* eager: one sentence at a time in Python, DyNet style (`add_input` / `prev()`), the loss
  differentiated op by op (`dy.value_and_grad(..., jit=False)`) — what a DyNet user's
  code does when ported line by line;
* batched: B sentences in one compiled step, B = 1, 8, 32, 64, 256, sentence lengths
  bucketed, two ways: the stack stepped over all transitions in lockstep (`dy.RNNStack` in
  a `lax.scan`), and the stack planned from the oracle as a tree of states computed by
  depth (`transduce_tree`, compositions by level); compile time and compiled shapes too;
  `--profile` times each part of one batch;
* DyNet 2.1.2, the same parser (benchmarks/dynet_parser.py), one sentence per graph and 32
  per graph autobatched, when its environment exists (benchmarks/README.md, 'Building DyNet 2.1.2').

Run: .venv/bin/python benchmarks/parser_speed.py [--sentences 2048] [--batch-sizes 1,8,32,64,256]
[--words-per-row 32]
Target (benchmarks/README.md): at least 3,300 training sentences/s (10x DyNet's 327 here).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from _harness import report, run_dynet

import dynrnn as dy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
import conllu  # noqa: E402
import stack_lstm_parser as P  # noqa: E402


def _step(trainer, parser, way, batch, capacity):
    if way == "levels":  # the stack as a tree of states by depth, planned from the oracle
        return trainer.step(parser.batch_loss, *batch)
    return trainer.step(parser.loss(capacity), *batch[:5])


def _shape(way, batch, capacity):
    if way == "levels":
        plan = batch[5]
        return batch[0].shape, plan.comp_rows.shape, plan.stack.nodes.shape
    return batch[0].shape, capacity


def batched(parser, vocab, examples, sentences, B, rng, way="lockstep", words_per_row=0):
    batches = P.training_batches(vocab, examples, B, rng, parser.config.unk_prob, plans=way == "levels",
                                 max_words=B * words_per_row or None)
    trainer = dy.AdamTrainer(parser.pc, 1e-3)
    shapes = {}
    t0 = time.perf_counter()
    for batch, capacity in batches:  # one step per shape: compiles (and runs once)
        key = _shape(way, batch, capacity)
        if key not in shapes:
            t = time.perf_counter()
            _step(trainer, parser, way, batch, capacity)
            shapes[key] = time.perf_counter() - t
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for batch, capacity in batches:
        _step(trainer, parser, way, batch, capacity)
    train_sps = len(examples) / (time.perf_counter() - t0)
    parser.parse(sentences, batch_size=B)  # compile the decoder's shapes
    t0 = time.perf_counter()
    parser.parse(sentences, batch_size=B)
    parse_sps = len(sentences) / (time.perf_counter() - t0)
    return {"train": train_sps, "parse": parse_sps, "compile_s": compile_s, "shapes": len(shapes),
            "compile_per_shape_s": compile_s / len(shapes)}


def eager(parser, examples, sentences):
    trainer = dy.AdamTrainer(parser.pc, 1e-3)
    vg = dy.value_and_grad(lambda e: parser.sentence_loss_eager(e.words, e.tags, e.actions), parser.pc, jit=False)
    t0 = time.perf_counter()
    for e in examples:
        _, grads = vg(e)
        trainer.update(grads)
    train_sps = len(examples) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for s in sentences:
        parser.parse_eager(s)
    return {"train": train_sps, "parse": len(sentences) / (time.perf_counter() - t0)}


def _ms(f, *args, repeat=10):
    import jax
    jax.block_until_ready(f(*args))
    t0 = time.perf_counter()
    for _ in range(repeat):
        jax.block_until_ready(f(*args))
    return (time.perf_counter() - t0) / repeat * 1e3


def profile(vocab, examples) -> list[str]:
    """Loss-and-gradient time of each part of one B=32 batch of 17-20-word sentences, and
    of the two whole losses: where a step's time goes."""
    import jax.numpy as jnp

    group = [e for e in examples if 17 <= e.n <= 20][:32]
    (batch, capacity), = P.training_batches(vocab, group, 32, np.random.default_rng(0), 0.5)
    parser = P.Parser(vocab, P.Config())
    plan, B, D = batch[5], 32, parser.config.token_dim

    def stack(words, tags, n, actions, nxt, plan):
        xs = jnp.ones((plan.push_vec.shape[0], D)) * parser.root.expr()
        return jnp.sum(parser.stack_rnn.initial_state().transduce_tree(xs, plan.stack))

    def compositions(words, tags, n, actions, nxt, plan):
        tok = parser.tokens(words, tags)
        table = jnp.concatenate([tok.reshape(-1, D), jnp.zeros((B * (words.shape[1] - 1) + 1, D))])
        reads = jnp.stack([plan.comp_head, plan.comp_dep], axis=-1)
        return jnp.sum(dy.level_scan(P._compose_rows, (parser.C.expr(), parser.c.expr()), table, reads,
                                     plan.comp_rows, parser.E_rel.batch(plan.comp_rel)))

    def buffer(words, tags, n, actions, nxt, plan):
        return jnp.sum(parser._encode_batch(words, tags, n, training=True)[1])

    def history(words, tags, n, actions, nxt, plan):
        hist_in = jnp.concatenate([jnp.broadcast_to(parser.action_start.expr(), (1, B, parser.config.action_dim)),
                                   parser.E_act.batch(actions.T[:-1])])
        return jnp.sum(parser.action_rnn.initial_state().transduce(hist_in))

    parts = [("whole loss, stack by depth", parser.batch_loss, batch),
             ("whole loss, stack in lockstep", parser.loss(capacity), batch[:5]),
             (f"stack as a tree of states ({plan.stack.steps} steps x {plan.stack.width})", stack, batch),
             (f"tokens + compositions ({plan.comp_rows.shape[0]} steps x {plan.comp_rows.shape[1]})",
              compositions, batch),
             ("tokens + buffer LSTM (transduce)", buffer, batch),
             (f"action-history LSTM (transduce, {batch[3].shape[1]} steps)", history, batch)]
    return [f"profile, loss and gradient of one B=32 batch (N={batch[0].shape[1] - 1}): {name} "
            f"{_ms(dy.value_and_grad(f, parser.pc), *args):.1f} ms" for name, f, args in parts]


def dynet(train_path, per_graph, autobatch, sentences):
    out = run_dynet([os.path.join(HERE, "dynet_parser.py"), train_path, "--sentences", str(sentences),
                     "--per-graph", str(per_graph)] + (["--autobatch"] if autobatch else []))
    return None if out is None else json.loads(out.strip().splitlines()[-1])


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=os.path.join(P.EWT, "en_ewt-ud-train.conllu"))
    ap.add_argument("--sentences", type=int, default=2048, help="training sentences per batched measurement")
    ap.add_argument("--eager-sentences", type=int, default=10, help="0: no eager rows")
    ap.add_argument("--dynet-sentences", type=int, default=600)
    ap.add_argument("--batch-sizes", default="1,8,32,64,256")
    ap.add_argument("--ways", default="lockstep,levels", help="training losses to time (lockstep, levels)")
    ap.add_argument("--words-per-row", type=int, default=32,
                    help="a budget of B x this many padded word slots per batch: batches of long sentences take "
                         "fewer rows (training_batches' max_words); 0: B rows always")
    ap.add_argument("--profile", action="store_true",
                    help="also time each part of one B=32 batch's loss and gradient (notes)")
    args = ap.parse_args()
    if not os.path.exists(args.train):
        print(f"no treebank at {args.train} (../shared/data/ud-english-ewt); nothing to measure")
        return {}
    train = conllu.read_conllu(args.train)
    vocab = P.Vocab.build(train)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train))
    sample = [train[i] for i in order]
    examples = [e for e in (P.oracle_example(vocab, s) for s in sample) if e is not None]
    lengths = np.array([e.n for e in examples[:args.sentences]])
    rows, notes = [], [f"EWT train sample: {args.sentences} random projective sentences, {lengths.mean():.1f} "
                       f"words on average (the whole train set: 16.3)", "paper dimensions, coupled LSTMs, Adam",
                       f"batch B: up to B sentences, {args.words_per_row} padded word slots per row on average "
                       f"(batches of long sentences take fewer rows)" if args.words_per_row else
                       "batch B: B sentences, however long"]

    if args.eager_sentences > 0:
        ev = eager(P.Parser(vocab, P.Config()), examples[:args.eager_sentences], sample[:args.eager_sentences])
        rows.append({"version": "dynrnn eager (per sentence, op by op)", "batch": 1, "train_sps": ev["train"],
                     "parse_sps": ev["parse"]})
    for B in [int(b) for b in args.batch_sizes.split(",")]:
        sents = sample[:args.sentences] if B > 1 else sample[:256]
        exs = examples[:args.sentences] if B > 1 else examples[:256]
        for way in args.ways.split(","):
            r = batched(P.Parser(vocab, P.Config()), vocab, exs, sents, B, rng, way, args.words_per_row)
            name = ("dynrnn batched, stack in lockstep" if way == "lockstep" else
                    "dynrnn batched, stack by depth (levels)")
            rows.append({"version": name, "batch": B, "train_sps": r["train"], "parse_sps": r["parse"],
                         "shapes": r["shapes"], "compile_s": r["compile_s"],
                         "compile_per_shape_s": r["compile_per_shape_s"]})
            print(rows[-1], flush=True)
    if args.profile:
        notes += profile(vocab, examples)
    for per_graph, autobatch in ((1, False), (32, True)):
        d = dynet(args.train, per_graph, autobatch, args.dynet_sentences)
        if d:
            rows.append({"version": f"DyNet 2.1.2{' autobatch' if autobatch else ''}", "batch": per_graph,
                         "train_sps": d["train_sentences_per_second"], "parse_sps": d["parse_sentences_per_second"]})
    dynet_best = max((r["train_sps"] for r in rows if r["version"].startswith("DyNet")), default=None)
    for r in rows:
        if dynet_best:
            r["train_vs_dynet_best"] = r["train_sps"] / dynet_best
    return report("parser_speed", rows, [("version", "version"), ("batch", "batch"), ("train_sps", "train sent/s"),
                                         ("parse_sps", "parse sent/s"), ("shapes", "shapes"),
                                         ("compile_s", "compile s"), ("compile_per_shape_s", "s per shape"),
                                         ("train_vs_dynet_best", "train ÷ best DyNet")],
                  notes)


if __name__ == "__main__":
    main()
