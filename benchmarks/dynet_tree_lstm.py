"""DyNet 2.1.2's own Tree-LSTM example model (examples/treelstm/model.py in its source
distribution, imported unchanged) trained on UD English EWT dependency trees, binarized as
benchmarks/dependency_trees.py does. Run by benchmarks/tree_lstm.py in DyNet's own virtual
environment (benchmarks/README.md, 'Building DyNet 2.1.2'), and with `--backend dynrnn` in
dynrnn's: the example's files with only their import line changed (to `import dynrnn.dynet
as dy`), run in graph mode. Prints one JSON line.

    python dynet_tree_lstm.py TRAIN.conllu --trees 1000 --per-graph 1 [--autobatch] [--backend dynrnn]

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
ap.add_argument("--backend", choices=["dynet", "dynrnn"], default="dynet")
args = ap.parse_args()

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, HERE)
import dependency_trees  # noqa: E402

if args.backend == "dynet":
    import dynet_config

    dynet_config.set(autobatch=int(args.autobatch), random_seed=1)
    import dynet as dy

    # DyNet's source distribution, beside the virtual environment this runs in
    EXAMPLE = os.path.join(os.path.dirname(sys.executable), "..", "..", "dyNET-2.1.2", "examples", "treelstm")
else:  # the example's files, their import line changed, in a folder of their own
    import tempfile

    import dynrnn.dynet as dy

    dy.config(autobatch=int(args.autobatch))
    dy.set_random_seed(1)
    from _harness import DYNET_DIR

    source = os.path.join(DYNET_DIR, "dyNET-2.1.2", "examples", "treelstm")
    EXAMPLE = tempfile.mkdtemp()
    for name in ("model.py", "dataloader.py", "utils.py"):
        text = open(os.path.join(source, name)).read()
        with open(os.path.join(EXAMPLE, name), "w") as f:
            f.write(text.replace("import dynet as dy", "import dynrnn.dynet as dy"))
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
