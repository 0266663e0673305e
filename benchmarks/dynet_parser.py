"""The same stack-LSTM parser in DyNet 2.1.2 (run by benchmarks/parser_speed.py in DyNet's own
virtual environment; see benchmarks/README.md, 'Building DyNet 2.1.2'). Prints one JSON line.

    python dynet_parser.py TRAIN.conllu --sentences 600 --per-graph 1 [--autobatch]

Same architecture and dimensions as examples/stack_lstm_parser.py with Config() (coupled
LSTMs, token 60, hidden 64, 2 layers, action 16, relation 10, word 32, POS 12, state 64),
the same arc-standard oracle, Adam; `--per-graph k` sums k sentences' losses in one graph
(with `--autobatch`, DyNet batches their operations).
"""

import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("train")
ap.add_argument("--sentences", type=int, default=600)
ap.add_argument("--per-graph", type=int, default=1)
ap.add_argument("--autobatch", action="store_true")
ap.add_argument("--parse", type=int, default=300, help="sentences to parse greedily (timed)")
args = ap.parse_args()

import dynet_config  # noqa: E402

dynet_config.set(autobatch=int(args.autobatch), random_seed=1)
import dynet as dy  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import arc_standard as ts  # noqa: E402
import conllu  # noqa: E402

sents = conllu.read_conllu(args.train)
words = {w: i for i, w in enumerate(["<pad>", "<unk>"] + sorted({w for s in sents for w in s.words}))}
tags = {t: i for i, t in enumerate(["<pad>", "<unk>"] + sorted({t for s in sents for t in s.upos}))}
rels = {r: i for i, r in enumerate(sorted({r for s in sents for r in s.rels}))}
R, A = len(rels), ts.num_actions(len(rels))
data = []
for s in sents:
    actions = ts.oracle(s.heads, [rels[r] for r in s.rels])
    if actions is not None:
        data.append(([words[w] for w in s.words], [tags[t] for t in s.upos], actions))
    if len(data) == max(args.sentences, args.parse):
        break

WD, PD, TD, HD, L, AD, RD, SD = 32, 12, 60, 64, 2, 16, 10, 64
pc = dy.ParameterCollection()
E_word, E_pos = pc.add_lookup_parameters((len(words), WD)), pc.add_lookup_parameters((len(tags), PD))
E_rel, E_act = pc.add_lookup_parameters((R, RD)), pc.add_lookup_parameters((A, AD))
V, v = pc.add_parameters((TD, WD + PD)), pc.add_parameters(TD)
root, guard, start = pc.add_parameters(TD), pc.add_parameters(TD), pc.add_parameters(AD)
stack_rnn = dy.CoupledLSTMBuilder(L, TD, HD, pc)
buffer_rnn = dy.CoupledLSTMBuilder(L, TD, HD, pc)
action_rnn = dy.CoupledLSTMBuilder(L, AD, HD, pc)
C, c = pc.add_parameters((TD, 2 * TD + RD)), pc.add_parameters(TD)
W, d = pc.add_parameters((SD, 3 * HD)), pc.add_parameters(SD)
Rm, r = pc.add_parameters((A, SD)), pc.add_parameters(A)
trainer = dy.AdamTrainer(pc)


def run(ws, ps, actions):
    """Loss of the oracle actions (or, with actions=None, the greedy parse's heads)."""
    n = len(ws)
    toks = [dy.rectify(V * dy.concatenate([E_word[w], E_pos[p]]) + v) for w, p in zip(ws, ps)]
    buffer = buffer_rnn.initial_state().add_input(guard)
    bufs = [buffer]
    for t in reversed(toks):
        buffer = buffer.add_input(t)
        bufs.append(buffer)
    base = stack_rnn.initial_state()
    stack = [(base.add_input(root), root, 0)]
    history = action_rnn.initial_state().add_input(start)
    losses, heads, nxt = [], [0] * n, 1
    for step in range(2 * n):
        p = dy.rectify(W * dy.concatenate([stack[-1][0].output(), bufs[n + 1 - nxt].output(), history.output()]) + d)
        legal = ts.legal(len(stack), n + 1 - nxt, R)
        ids = [i for i in range(A) if legal[i]]
        scores = Rm * p + r
        if actions is None:
            vals = scores.npvalue()
            a = max(ids, key=lambda i: vals[i])
        else:
            a = actions[step]
            losses.append(dy.pickneglogsoftmax(dy.select_rows(scores, ids), ids.index(a)))
        if a == ts.SHIFT:
            stack.append((stack[-1][0].add_input(toks[nxt - 1]), toks[nxt - 1], nxt))
            nxt += 1
        else:
            (_, v1, i1), (_, v0, i0) = stack[-2], stack[-1]
            (hv, hi), (dv, di) = ((v0, i0), (v1, i1)) if ts.kind(a) == "left" else ((v1, i1), (v0, i0))
            heads[di - 1] = hi
            comp = dy.tanh(C * dy.concatenate([hv, dv, E_rel[ts.rel_of(a)]]) + c)
            below = stack[-3][0] if len(stack) >= 3 else base
            stack[-2:] = [(below.add_input(comp), comp, hi)]
        history = history.add_input(E_act[a])
    return dy.esum(losses) if actions is not None else heads


train = data[:args.sentences]
t0 = time.perf_counter()
for start_i in range(0, len(train), args.per_graph):
    dy.renew_cg()
    loss = dy.esum([run(*ex) for ex in train[start_i:start_i + args.per_graph]])
    loss.value()
    loss.backward()
    trainer.update()
train_s = time.perf_counter() - t0
t0 = time.perf_counter()
for ws, ps, _ in data[:args.parse]:
    dy.renew_cg()
    run(ws, ps, None)
parse_s = time.perf_counter() - t0
print(json.dumps({"train_sentences_per_second": len(train) / train_s, 
                  "parse_sentences_per_second": args.parse / parse_s,
                  "per_graph": args.per_graph, "autobatch": args.autobatch, "sentences": len(train)}))
