"""DyNet 2.1.2 side of benchmarks/rnnlm_batch.py: neulab/dynet-benchmark's rnnlm-batch
(embedding 128, hidden 256, 1-layer VanillaLSTM, Adam, masked minibatches of sentences
sorted by length). Runs in DyNet's own environment (benchmarks/README.md, 'Building DyNet 2.1.2').

    python dynet_rnnlm_batch.py DATA.json MB      # prints one JSON line: words/s, loss/word
"""

import json
import random
import sys
import time

import dynet as dy

data = json.load(open(sys.argv[1]))
MB = int(sys.argv[2])
train, nwords, S = data["sentences"], data["vocab_size"], data["eos"]

model = dy.ParameterCollection()
trainer = dy.AdamTrainer(model, alpha=0.001)
WORDS_LOOKUP = model.add_lookup_parameters((nwords, 128))
RNN = dy.VanillaLSTMBuilder(1, 128, 256, model)
W_sm = model.add_parameters((nwords, 256))
b_sm = model.add_parameters(nwords)


def calc_lm_loss(sents):
    dy.renew_cg()
    W_exp, b_exp = dy.parameter(W_sm), dy.parameter(b_sm)
    wids, masks, tot_words = [], [], 0
    for i in range(len(sents[0])):
        wids.append([(sent[i] if len(sent) > i else S) for sent in sents])
        mask = [(1 if len(sent) > i else 0) for sent in sents]
        masks.append(mask)
        tot_words += sum(mask)
    s = RNN.initial_state().add_input(dy.lookup_batch(WORDS_LOOKUP, [S] * len(sents)))
    losses = []
    for wid, mask in zip(wids, masks):
        loss = dy.pickneglogsoftmax_batch(W_exp * s.output() + b_exp, wid)
        if mask[-1] != 1:
            loss = loss * dy.reshape(dy.inputVector(mask), (1,), len(sents))
        losses.append(loss)
        s = s.add_input(dy.lookup_batch(WORDS_LOOKUP, wid))
    return dy.sum_batches(dy.esum(losses)), tot_words


train.sort(key=lambda x: -len(x))  # longest first, as dynet-benchmark does
order = [i * MB for i in range((len(train) - 1) // MB + 1)]
random.seed(0)
random.shuffle(order)
start, words, total = time.perf_counter(), 0, 0.0
for sid in order:
    loss, n = calc_lm_loss(train[sid:sid + MB])
    total += loss.value()
    loss.backward()
    trainer.update()
    words += n
elapsed = time.perf_counter() - start
print(json.dumps({"words_per_second": words / elapsed, "loss_per_word": total / words, "words": words}))
