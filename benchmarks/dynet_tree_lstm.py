"""DyNet 2.1.2's own Tree-LSTM example model (examples/treelstm/model.py in its source
distribution, imported unchanged) trained on UD English EWT dependency trees, binarized as
benchmarks/dependency_trees.py does. Run by benchmarks/tree_lstm.py in DyNet's own virtual
environment (benchmarks/README.md, 'Building DyNet 2.1.2'). Prints one JSON line.

    python dynet_tree_lstm.py TRAIN.conllu --trees 1000 --per-graph 1 [--autobatch]

The training loop is the example's (scheduler.py): the trees of a batch summed in one
graph, plus the L2 regularization loss, Adagrad for the parameters (0.05) and the
embeddings (0.005), dropout 0.3 on every node's h before its classifier.
"""

import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("train")
ap.add_argument("--trees", type=int, default=1000)
ap.add_argument("--per-graph", type=int, default=1)
ap.add_argument("--autobatch", action="store_true")
ap.add_argument("--wembed", type=int, default=300)
ap.add_argument("--hidden", type=int, default=150)
args = ap.parse_args()

import dynet_config  # noqa: E402

dynet_config.set(autobatch=int(args.autobatch), random_seed=1)
import dynet as dy  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, HERE)
import dependency_trees  # noqa: E402

# DyNet's source distribution, beside the virtual environment this runs in
EXAMPLE = os.path.join(os.path.dirname(sys.executable), "..", "..", "dyNET-2.1.2", "examples", "treelstm")
sys.path.insert(0, os.path.abspath(EXAMPLE))
from dataloader import Tree  # noqa: E402
from model import TreeLSTMClassifier  # noqa: E402

binarized, n_classes = dependency_trees.load(args.train, args.trees)
trees = [Tree.from_sexpr(sexpr) for sexpr, _ in binarized]
words = sorted({leaf.label for t in trees for leaf in t.leaves()})
w2i = {w: i for i, w in enumerate(["_UNK_"] + words)}
model = TreeLSTMClassifier(n_classes, w2i, None,
                           {"dropout_rate": 0.3, "wembed_size": args.wembed, "hidden_size": args.hidden})
trainer_param, trainer_embed = dy.AdagradTrainer(model.pc_param), dy.AdagradTrainer(model.pc_embed)
trainer_param.learning_rate, trainer_embed.learning_rate = 0.05, 0.005
for trainer in (trainer_param, trainer_embed):
    trainer.set_clip_threshold(-1)
    trainer.set_sparse_updates(True)
nodes = sum(len(t.nonterms()) for t in trees)
losses, graph_nodes = [], []
t0 = time.perf_counter()
for start in range(0, len(trees), args.per_graph):
    dy.renew_cg()
    loss = model.losses_for_tree_batch(trees[start:start + args.per_graph])
    loss += model.regularization_loss(coef=1e-4)
    losses.append(loss.value())
    graph_nodes.append(sum(len(t.nonterms()) for t in trees[start:start + args.per_graph]))
    loss.backward()
    trainer_param.update()
    trainer_embed.update()
seconds = time.perf_counter() - t0
q = len(losses) // 4
print(json.dumps({"trees_per_second": len(trees) / seconds, "nodes_per_second": nodes / seconds,
                  "trees": len(trees), "nodes": nodes, "per_graph": args.per_graph, "autobatch": args.autobatch,
                  "loss_per_node_last_quarter": sum(losses[-q:]) / sum(graph_nodes[-q:])}))
