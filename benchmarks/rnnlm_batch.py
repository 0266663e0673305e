"""DyNet's own `rnnlm-batch` benchmark (neulab/dynet-benchmark): a word LSTM language model,
embedding 128, hidden 256, 1-layer vanilla LSTM, Adam, minibatches of 1/4/16/64 sentences
sorted by length; training words per second.

Data: tiny Shakespeare (../shared/data/tinyshakespeare/input.txt) cut into sentences of
lower-cased words, the vocabulary capped at the 7,600 most frequent (the size of the text
the issue's DyNet figure was measured on), the rest <unk>; every sentence ends in </s>.

* dynrnn: `transduce` over the padded batch (`lengths=`), the output layer once over all
  steps, `AdamTrainer.step` (one compiled call per batch shape; compile time is reported
  apart). Batch lengths are padded to as many lengths as rounding to a multiple of 8 would
  give, chosen by `dy.bucket_lengths` to pad the least; at the largest minibatch a second
  row pads to multiples of 8 plainly.
* DyNet 2.1.2: dynet-benchmark's rnnlm-batch.py (benchmarks/dynet_rnnlm_batch.py), in its
  own environment when built (benchmarks/README.md, 'Building DyNet 2.1.2').
* PyTorch (optional): nn.Embedding + nn.LSTM + nn.Linear on the same padded batches, summed
  masked cross-entropy, torch.optim.Adam — the idiomatic way.

Run: .venv/bin/python benchmarks/rnnlm_batch.py [--sentences 4000] [--batches 1 4 16 64]
Target (issue #6): ≥ 13,000 words/s at minibatch 64 (2× DyNet's 6,500 on PTB-style text).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import tempfile
import time

import jax.numpy as jnp
import numpy as np
from _harness import optional, report, run_dynet, torch_device

import dynrnn as dy

HERE = os.path.dirname(os.path.abspath(__file__))
SHAKESPEARE = os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare", "input.txt")
VOCAB, EMBED, HIDDEN = 7600, 128, 256


def sentences(path: str, limit: int) -> tuple[list[list[int]], int, int]:
    """(sentences as word ids ending in </s>, vocabulary size, the id of </s>)."""
    text = open(path, encoding="utf-8").read().lower()
    sents = []
    for chunk in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
        words = re.findall(r"[a-z']+|[^\sa-z']", chunk)
        words = [w for w in words if not w.endswith(":")]
        if 2 <= len(words) <= 60:
            sents.append(words)
    counts = collections.Counter(w for s in sents for w in s)
    vocab = ["<unk>", "</s>"] + [w for w, _ in counts.most_common(VOCAB - 2)]
    index = {w: i for i, w in enumerate(vocab)}
    ids = [[index.get(w, 0) for w in s] + [1] for s in sents]
    return ids[:limit], len(vocab), 1


def order_batches(train: list[list[int]], mb: int) -> list[list[list[int]]]:
    """dynet-benchmark's order: longest first, consecutive minibatches, shuffled."""
    train = sorted(train, key=lambda s: -len(s))
    starts = list(range(0, len(train), mb))
    np.random.default_rng(0).shuffle(starts)
    return [train[i:i + mb] for i in starts]


def language_model(nwords: int):
    """dynet-benchmark's model in dynrnn: (collection, summed loss over a padded batch)."""
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((nwords, EMBED), name="E")
    rnn = dy.VanillaLSTMBuilder(1, EMBED, HIDDEN, pc)
    W, b = pc.add_parameters((nwords, HIDDEN), name="W"), pc.add_parameters((nwords,), name="b")

    def loss(inputs, targets, lengths):  # inputs start with </s>, as dynet-benchmark feeds <s>
        hs = rnn.initial_state().transduce(E.batch(inputs), lengths=lengths)
        return dy.sequence_cross_entropy(W * hs + b, targets, lengths, reduction="sum")

    return pc, loss


def lm_batch(sents: list[list[int]], eos: int, multiple: int = 8,
             buckets: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets, lengths) for a list of sentences: targets padded to a multiple, or to
    the smallest of `buckets` that holds the longest."""
    targets, lengths = dy.pad_batch(sents, pad=eos, multiple=None if buckets else multiple, buckets=buckets)
    inputs = np.concatenate([np.full((1, targets.shape[1]), eos, targets.dtype), targets[:-1]])
    return inputs, targets, lengths


def chosen_lengths(batches: list, multiple: int) -> list[int]:
    """As many padded lengths as rounding to `multiple` would compile, chosen by
    `dy.bucket_lengths` to pad the least."""
    longest = [max(map(len, sents)) for sents in batches]
    n = len({dy.padded_length(n, multiple) for n in longest})
    return dy.bucket_lengths(longest, n, weights=[len(sents) for sents in batches])


def dynrnn_rnnlm(batches: list, nwords: int, eos: int, multiple: int = 8, choose: bool = True) -> dict:
    pc, loss = language_model(nwords)
    trainer = dy.AdamTrainer(pc, 0.001)
    buckets = chosen_lengths(batches, multiple) if choose else None
    prepared = [tuple(map(jnp.asarray, lm_batch(sents, eos, multiple, buckets))) for sents in batches]
    t0 = time.perf_counter()  # compile every shape once (a warm-up step per new shape)
    seen = set()
    for args in prepared:
        if args[0].shape not in seen:
            seen.add(args[0].shape)
            trainer.step(loss, *args)
    compile_s = time.perf_counter() - t0
    words = sum(map(len, (s for sents in batches for s in sents)))
    t0, total = time.perf_counter(), 0.0
    for args in prepared:
        total += trainer.step(loss, *args)
    elapsed = time.perf_counter() - t0
    padded = sum(int(np.prod(args[1].shape)) for args in prepared)
    return {"words_per_second": words / elapsed, "loss_per_word": total / words, "shapes": len(seen),
            "compile_s": compile_s, "padding_pct": 100 * (1 - words / padded)}


def torch_rnnlm(torch, batches: list, nwords: int, eos: int) -> dict:
    torch.manual_seed(0)
    device, _ = torch_device(torch)  # loss.item() below waits for each step
    emb, lstm, out = (m.to(device) for m in (torch.nn.Embedding(nwords, EMBED), torch.nn.LSTM(EMBED, HIDDEN),
                                             torch.nn.Linear(HIDDEN, nwords)))
    params = [*emb.parameters(), *lstm.parameters(), *out.parameters()]
    opt = torch.optim.Adam(params, lr=0.001)
    prepared = []
    for sents in batches:
        inputs, targets, lengths = lm_batch(sents, eos, multiple=1)
        mask = np.arange(targets.shape[0])[:, None] < lengths[None, :]
        prepared.append((torch.from_numpy(inputs).long().to(device),
                         torch.from_numpy(np.where(mask, targets, -100)).long().to(device)))
    t0, words, total = time.perf_counter(), 0, 0.0
    for inputs, targets in prepared:
        opt.zero_grad()
        hs, _ = lstm(emb(inputs))
        loss = torch.nn.functional.cross_entropy(out(hs).flatten(0, 1), targets.flatten(), ignore_index=-100,
                                                 reduction="sum")
        loss.backward()
        opt.step()
        total += loss.item()
        words += int((targets >= 0).sum())
    elapsed = time.perf_counter() - t0
    return {"words_per_second": words / elapsed, "loss_per_word": total / words}


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=SHAKESPEARE)
    ap.add_argument("--sentences", type=int, default=4000)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--multiple", type=int, default=8, help="dynrnn pads each batch's length up to a multiple of this")
    args = ap.parse_args()
    if not os.path.exists(args.data):
        raise SystemExit(f"no text at {args.data}; give --data (tiny Shakespeare, ../shared/data/README)")
    train, nwords, eos = sentences(args.data, args.sentences)
    n_words = sum(map(len, train))
    torch = optional("torch")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_file = os.path.join(tmp, "rnnlm.json")
        with open(data_file, "w") as f:
            json.dump({"sentences": train, "vocab_size": nwords, "eos": eos}, f)
        for mb in args.batches:
            batches = order_batches(train, mb)
            rows.append({"minibatch": mb, "system": "dynrnn", **dynrnn_rnnlm(batches, nwords, eos, args.multiple)})
            if mb == max(args.batches):
                rows.append({"minibatch": mb, "system": f"dynrnn, lengths rounded to {args.multiple}",
                             **dynrnn_rnnlm(batches, nwords, eos, args.multiple, choose=False)})
            out = run_dynet([os.path.join(HERE, "dynet_rnnlm_batch.py"), data_file, str(mb)])
            if out is not None:
                rows.append({"minibatch": mb, "system": "DyNet 2.1.2", **json.loads(out.strip().splitlines()[-1])})
            if torch is not None:
                rows.append({"minibatch": mb, "system": f"PyTorch {torch.__version__}",
                             **torch_rnnlm(torch, batches, nwords, eos)})
    for r in rows:
        dynet = next((d["words_per_second"] for d in rows
                      if d["minibatch"] == r["minibatch"] and d["system"].startswith("DyNet")), None)
        if dynet:
            r["vs_dynet"] = r["words_per_second"] / dynet
    cols = [("minibatch", "minibatch"), ("system", "system"), ("words_per_second", "words/s"),
            ("vs_dynet", "× DyNet"), ("loss_per_word", "loss/word (1 epoch)"), ("shapes", "shapes"),
            ("compile_s", "compile s"), ("padding_pct", "padding %")]
    notes = [f"{len(train)} sentences, {n_words:,} words (with </s>), vocabulary {nwords}; one epoch per system and "
             "minibatch size, from the same initial order. dynrnn pads each batch to one of as many lengths as "
             f"rounding to a multiple of {args.multiple} would give, chosen by dy.bucket_lengths to pad the least "
             "(the 'rounded' row pads to the multiples); PyTorch pads each batch to its own longest sentence. "
             "dynrnn's compile time (one step per new shape) is excluded from its words/s and shown apart."]
    return report("rnnlm_batch", rows, cols, notes)


if __name__ == "__main__":
    main()
