"""DyNet 2.1.2 side of benchmarks/bilstm_tagger.py: neulab/dynet-benchmark's bilstm-tagger
(word embedding 128, forward and backward LSTMs of 50, an MLP of 32, Adam), one sentence
per graph. Runs in DyNet's own environment (benchmarks/README.md, 'Building DyNet 2.1.2').

    python dynet_bilstm_tagger.py DATA.json EPOCHS   # prints one JSON line: words/s, dev accuracy
"""

import json
import random
import sys
import time

import dynet as dy
import numpy as np

data = json.load(open(sys.argv[1]))
EPOCHS = int(sys.argv[2])
train, dev, nwords, ntags = data["train"], data["dev"], data["vocab_size"], data["tag_count"]

model = dy.ParameterCollection()
trainer = dy.AdamTrainer(model)
WORDS_LOOKUP = model.add_lookup_parameters((nwords, 128))
pH = model.add_parameters((32, 50 * 2))
pO = model.add_parameters((ntags, 32))
fwdRNN = dy.VanillaLSTMBuilder(1, 128, 50, model)
bwdRNN = dy.VanillaLSTMBuilder(1, 128, 50, model)


def build_tagging_graph(words):
    dy.renew_cg()
    H, Wo = dy.parameter(pH), dy.parameter(pO)
    wembs = [WORDS_LOOKUP[w] for w in words]
    fw_exps = fwdRNN.initial_state().transduce(wembs)
    bw_exps = bwdRNN.initial_state().transduce(reversed(wembs))
    return [Wo * dy.tanh(H * dy.concatenate([f, b])) for f, b in zip(fw_exps, reversed(bw_exps))]


def sent_loss(words, tags):
    return dy.esum([dy.pickneglogsoftmax(s, t) for s, t in zip(build_tagging_graph(words), tags)])


def tag_sent(words):
    return [int(np.argmax(s.npvalue())) for s in build_tagging_graph(words)]


random.seed(0)
elapsed, words = 0.0, 0
for _epoch in range(EPOCHS):
    random.shuffle(train)
    start = time.perf_counter()
    for ws, ts in train:
        loss = sent_loss(ws, ts)
        loss.value()
        loss.backward()
        trainer.update()
        words += len(ws)
    elapsed += time.perf_counter() - start
good = total = 0
start = time.perf_counter()
for ws, ts in dev:
    good += sum(p == t for p, t in zip(tag_sent(ws), ts))
    total += len(ts)
tag_seconds = time.perf_counter() - start
print(json.dumps({"words_per_second": words / elapsed, "dev_accuracy": good / total,
                  "tag_words_per_second": total / tag_seconds}))
