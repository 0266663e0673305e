"""DyNet 2.1.2 side of benchmarks/char_lm.py: the tutorial char LM, one sentence per graph.
Runs in DyNet's own virtual environment (benchmarks/README.md, 'Building DyNet 2.1.2');
prints '<model> <ms per sentence>'."""

import time

import dynet as dy

SENTENCE = "a quick brown fox jumped over the lazy dog"
chars = sorted(set(SENTENCE)) + ["<EOS>"]
c2i = {c: i for i, c in enumerate(chars)}
ids = [c2i["<EOS>"]] + [c2i[c] for c in SENTENCE] + [c2i["<EOS>"]]

for name, cls in (("lstm", dy.LSTMBuilder), ("simple", dy.SimpleRNNBuilder)):
    pc = dy.ParameterCollection()
    rnn = cls(1, 50, 50, pc)
    lookup = pc.add_lookup_parameters((len(chars), 50))
    R = pc.add_parameters((len(chars), 50))
    bias = pc.add_parameters(len(chars))
    trainer = dy.SimpleSGDTrainer(pc)

    def train_on(copies):  # `copies` sentences in one graph, summed (no autobatching flag)
        dy.renew_cg()
        losses = []
        for _ in range(copies):
            s = rnn.initial_state()
            for c, n in zip(ids, ids[1:]):
                s = s.add_input(lookup[c])
                losses.append(dy.pickneglogsoftmax(R * s.output() + bias, n))
        loss = dy.esum(losses)
        loss.value()
        loss.backward()
        trainer.update()

    def one():
        train_on(1)

    def batch_of_32():
        train_on(32)

    for _ in range(50):
        one()

    for label, fn, n, per in (("one", one, 300, 1), ("batch32", batch_of_32, 10, 32)):
        samples = []
        for _ in range(5):  # median of 5 runs, as benchmarks/_harness.py does
            t = time.perf_counter()
            for _ in range(n):
                fn()
            samples.append((time.perf_counter() - t) / n / per)
        print(name, label, 1e3 * sorted(samples)[2])
