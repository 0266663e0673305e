"""Tree-LSTM training on UD English EWT dependency trees: dynrnn's `NaryTreeLSTMBuilder`
(binary; forests computed bottom-up by levels in one compiled step) against DyNet 2.1.2
running its own examples/treelstm model on the same trees, one tree per graph and 25 per
graph autobatched (benchmarks/dynet_tree_lstm.py).

The trees (benchmarks/dependency_trees.py): each word a preterminal labelled with its UPOS
tag, each dependent attached by a binary node labelled with its relation — every node
classified, as the example classifies every node of its sentiment trees. The model is the
example's: word embeddings 300, hidden 150, W·x at the words and U·[h_l; h_r] at binary
nodes (dynrnn's N-ary cell with x = 0 at binary nodes), dropout 0.3 on each h before the
classifier, the sum of the nodes' losses plus 1e-4/2 · Σ‖θ‖² over the non-embedding
parameters, Adagrad (DyNet's example: 0.05 for the parameters and 0.005 for the
embeddings; dynrnn: one trainer, 0.05).

Run: .venv/bin/python benchmarks/tree_lstm.py [--trees 2000] [--per-batch 25]
Target (the issue): at least 5x DyNet's autobatched trees/s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import report, run_dynet

import dynrnn as dy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
import dependency_trees  # noqa: E402

EWT = os.path.join(HERE, "..", "..", "shared", "data", "ud-english-ewt")


def height(nodes) -> int:
    """A tree's height (nodes in post-order: children first, the root last)."""
    h = [0] * len(nodes)
    for i, (_, _, kids) in enumerate(nodes):
        h[i] = 1 + max(h[k] for k in kids) if kids else 0
    return h[-1]


def size_bucket(n: int, ratio: float, least: int = 64) -> int:
    """The node rows for a forest of n nodes: the smallest of least, then each next one
    `ratio` times larger (rounded up to a multiple of least), that is >= n. Few distinct
    sizes (each one compiles the step once; ~2 s here) for little padding."""
    size = least
    while size < n:
        size = least * math.ceil(size * ratio / least)
    return size


def forest(trees, w2i, ratio=1.25):
    """One batch: (word ids (size,), leaf (size,), labels (size,), real (size,), children
    lists, size)."""
    words, children, labels = [], [], []
    for nodes in trees:
        base = len(words)
        for label, word, kids in nodes:
            words.append(w2i.get(word, 0) if word is not None else -1)
            children.append([base + k for k in kids])
            labels.append(label)
    n = len(words)
    size = size_bucket(n, ratio)
    ids = np.zeros(size, np.int32)
    ids[:n] = np.maximum(words, 0)
    leaf = np.zeros(size, np.float32)
    leaf[:n] = np.asarray(words) >= 0
    lab = np.zeros(size, np.int32)
    lab[:n] = labels
    real = np.zeros(size, np.float32)
    real[:n] = 1.0
    return ids, leaf, lab, real, children, size


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=os.path.join(EWT, "en_ewt-ud-train.conllu"))
    ap.add_argument("--trees", type=int, default=2000, help="training trees timed per system")
    ap.add_argument("--per-batch", type=int, default=25, help="trees per update (DyNet's example: 25)")
    ap.add_argument("--dynet-trees", type=int, default=1000, help="trees timed per DyNet run (0: no DyNet runs)")
    ap.add_argument("--graph-trees", type=int, default=200,
                    help="trees timed for DyNet's model run as written by dynrnn's graph mode (0: none)")
    ap.add_argument("--order", choices=["height", "corpus"], default="height",
                    help="batches of trees of similar height (dy.length_buckets over heights, batch order "
                         "shuffled), or the corpus order")
    ap.add_argument("--inputs", choices=["leaves", "nodes"], default="leaves",
                    help="word vectors at the leaves only (W·x at binary nodes not computed), or a row per node "
                         "(zeros at binary nodes)")
    ap.add_argument("--size-ratio", type=float, default=1.25,
                    help="node rows of a batch: the next size of a geometric ladder of this ratio (multiples of 64)")
    ap.add_argument("--width", type=int, default=None,
                    help="scan step width: the forest's node rows / WIDTH (default 64 on a CPU, 8 on an "
                         "accelerator, where a step costs its launch: 4,895 trees/s on one H200)")
    args = ap.parse_args()
    if args.width is None:
        args.width = 64 if jax.default_backend() == "cpu" else 8
    if not os.path.exists(args.train):
        print(f"no treebank at {args.train} (../shared/data/ud-english-ewt); nothing to measure")
        return {}
    binarized, n_classes = dependency_trees.load(args.train, args.trees)
    trees = [nodes for _, nodes in binarized]
    w2i = {w: i for i, w in enumerate(["_UNK_"] + sorted({w for t in trees for _, w, _ in t if w is not None}))}

    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((len(w2i), 300), name="E")
    tree = dy.NaryTreeLSTMBuilder(300, 150, pc, arity=2)
    W = pc.add_parameters((n_classes, 150), name="W")
    regularized = tree.get_parameters() + [W]
    trainer = dy.AdagradTrainer(pc, 0.05)
    trainer.set_clip_threshold(-1)  # as the example

    def loss_fn(ids, leaf, labels, real, schedule):
        if schedule.inputs == "leaves":
            xs = E.batch(ids)                                   # one row per leaf (word)
        else:
            xs = E.batch(ids) * leaf[:, None]                   # zeros at the binary nodes
        h = dy.dropout(tree.transduce(xs, schedule), 0.3)
        logp = jax.nn.log_softmax(h @ W.expr().T)
        nll = -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]
        return jnp.sum(nll * real) + 0.5e-4 * sum(jnp.sum(p.expr() ** 2) for p in regularized)

    batches = []
    t0 = time.perf_counter()
    if args.order == "height":  # as sentences are bucketed by length: fewer padded scan steps
        groups = dy.length_buckets([height(t) for t in trees], args.per_batch, rng=np.random.default_rng(0))
    else:
        groups = [range(k, min(k + args.per_batch, len(trees))) for k in range(0, len(trees), args.per_batch)]
    for group in groups:
        ids, leaf, lab, real, children, size = forest([trees[i] for i in group], w2i, args.size_ratio)
        # 1/64 of the rows per step (~17 for 25 trees): a step costs ~130 us + ~24 us per row
        # (forward and backward, 2 CPU cores), and a level of a few nodes pads to the width;
        # measured in one process on the same batches: 1,430-1,550 trees/s against 1/32's
        # 850-1,000 and 1/16's 910-1,160 (height-ordered batches). The steps: the schedule's
        # default, a power of two (the steps after the last level are skipped when run)
        shape = dict(size=size, width=max(size // args.width, 1))
        if args.inputs == "leaves":  # n words and n - 1 binary nodes per tree: at most (size + trees) / 2 leaves
            leaf_rows = 8 * math.ceil((size + args.per_batch) / 16)
            sched = tree.schedule(children, inputs="leaves", leaf_rows=leaf_rows, **shape)
            ids = np.pad(ids[leaf > 0], (0, leaf_rows - int(leaf.sum())))  # the leaves, in node order
        else:
            sched = tree.schedule(children, **shape)
        batches.append((ids, leaf, lab, real, sched))
    plan_s = time.perf_counter() - t0
    nodes = sum(len(t) for t in trees)
    shapes, losses = {}, []
    t0 = time.perf_counter()
    for b in batches:  # the first pass: every new shape compiles
        key = (b[0].shape, b[4].nodes.shape)
        t = time.perf_counter()
        losses.append(trainer.step(loss_fn, *b))
        if key not in shapes:
            shapes[key] = time.perf_counter() - t
    first_pass = time.perf_counter() - t0
    t0 = time.perf_counter()
    for b in batches:
        losses.append(trainer.step(loss_fn, *b))
    second_pass = time.perf_counter() - t0
    tail = batches[-(len(batches) // 4):]
    ours = {"system": f"dynrnn, {args.per_batch} trees per compiled step ({args.order} order, {args.inputs} inputs, "
                      f"width rows/{args.width})", "per_graph": args.per_batch,
            "trees_per_s": len(trees) / second_pass, "trees_per_s_with_compile": len(trees) / first_pass,
            "nodes_per_s": nodes / second_pass, "shapes": len(shapes), "compile_s": sum(shapes.values()),
            "loss_per_node": float(np.sum(losses[-len(tail):]) / sum(float(b[3].sum()) for b in tail))}
    rows = [ours]
    print(ours, flush=True)
    for per_graph, autobatch in ((1, False), (args.per_batch, True)) if args.dynet_trees > 0 else ():
        out = run_dynet([os.path.join(HERE, "dynet_tree_lstm.py"), args.train, "--trees", str(args.dynet_trees),
                         "--per-graph", str(per_graph)] + (["--autobatch"] if autobatch else []))
        if out:
            d = json.loads(out.strip().splitlines()[-1])
            rows.append({"system": f"DyNet 2.1.2, {per_graph} per graph" + (", autobatch" if autobatch else ""),
                         "per_graph": per_graph, "trees_per_s": d["trees_per_second"],
                         "nodes_per_s": d["nodes_per_second"], "loss_per_node": d["loss_per_node_last_quarter"]})
    if args.graph_trees > 0 and any("DyNet" in r["system"] for r in rows):  # DyNet's model, as written
        out = subprocess.run([sys.executable, os.path.join(HERE, "dynet_tree_lstm.py"), args.train, "--trees",
                              str(args.graph_trees), "--per-graph", str(args.per_batch), "--autobatch", "--backend",
                              "dynrnn"], capture_output=True, text=True, timeout=3600)
        if out.returncode == 0:
            d = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"system": f"dynrnn graph mode: DyNet's model as written, {args.per_batch} per graph, "
                                   f"autobatch (first {args.graph_trees} trees, compilation included)",
                         "per_graph": args.per_batch, "trees_per_s": d["trees_per_second"],
                         "nodes_per_s": d["nodes_per_second"], "loss_per_node": d["loss_per_node_last_quarter"]})
        else:
            print(f"note: the graph-mode run failed: {out.stderr[-1000:]}")
    auto = next((r["trees_per_s"] for r in rows if "autobatch" in r["system"] and "DyNet 2.1.2" in r["system"]),
                None)
    for r in rows:
        if auto:
            r["vs_dynet_autobatch"] = r["trees_per_s"] / auto
    return report("tree_lstm", rows, [
        ("system", "system"), ("trees_per_s", "trees/s"), ("trees_per_s_with_compile", "trees/s incl. compile"),
        ("nodes_per_s", "nodes/s"), ("vs_dynet_autobatch", "÷ DyNet autobatch (target ≥5)"), ("shapes", "shapes"),
        ("compile_s", "compile s"), ("loss_per_node", "loss/node (last quarter)")],
        [f"UD English EWT train, the first {len(trees)} trees (dynrnn; DyNet: the first {args.dynet_trees}), "
         f"{nodes / len(trees):.1f} nodes per tree, {n_classes} labels (17 UPOS + relations)",
         "dynrnn's trees/s: the second pass over the same batches (the first compiles each new shape; "
         "'incl. compile' is the first pass); DyNet has nothing to compile",
         f"dynrnn planning (host, schedules for every batch): {plan_s:.2f} s",
         "loss/node: the summed node losses of the last quarter of the updates per node (DyNet: with the L2 term; "
         "dynrnn: its second pass, so after twice the updates)"])


if __name__ == "__main__":
    main()
