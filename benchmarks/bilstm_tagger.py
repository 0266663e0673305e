"""DyNet's own `bilstm-tagger` benchmark (neulab/dynet-benchmark) on UD English EWT UPOS tags:
word embedding 128, a bidirectional LSTM of 50 per direction, an MLP of 32 (tanh), Adam;
training words per second and dev tagging accuracy after the same number of epochs.

* dynrnn: sentences bucketed by length (`dy.length_buckets`, `dy.pad_batch`), `BiRNNBuilder`
  `transduce` with `lengths=`, the MLP once over all positions, `AdamTrainer.step`.
* DyNet 2.1.2: dynet-benchmark's bilstm-tagger.py (benchmarks/dynet_bilstm_tagger.py), one
  sentence per graph, in its own environment when built (benchmarks/README.md, 'Building DyNet 2.1.2').
* PyTorch (optional): nn.LSTM(bidirectional) over packed sequences, the same batches.

Words seen once in training share <unk>. Run:
    .venv/bin/python benchmarks/bilstm_tagger.py [--epochs 1] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import optional, report, run_dynet, torch_device

import dynrnn as dy

HERE = os.path.dirname(os.path.abspath(__file__))
EWT = os.path.join(HERE, "..", "..", "shared", "data", "ud-english-ewt")
EMBED, HIDDEN, MLP = 128, 50, 32


def read_conllu(path: str) -> list[tuple[list[str], list[str]]]:
    out, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            if words:
                out.append((words, tags))
            words, tags = [], []
        elif not line.startswith("#"):
            cols = line.split("\t")
            if cols[0].isdigit():  # skip multiword ranges (1-2) and empty nodes (1.1)
                words.append(cols[1])
                tags.append(cols[3])
    if words:
        out.append((words, tags))
    return out


def encode(train_raw, dev_raw):
    counts = collections.Counter(w for ws, _ in train_raw for w in ws)
    vocab = {w: i + 1 for i, w in enumerate(sorted(w for w, c in counts.items() if c > 1))}  # 0: <unk>
    tagset = {t: i for i, t in enumerate(sorted({t for _, ts in train_raw for t in ts}))}
    enc = lambda data: [([vocab.get(w, 0) for w in ws], [tagset[t] for t in ts]) for ws, ts in data]  # noqa: E731
    return enc(train_raw), enc(dev_raw), len(vocab) + 1, len(tagset)


def batches_of(data, batch_size, rng):
    out = []
    for idx in dy.length_buckets([len(ws) for ws, _ in data], batch_size, rng=rng):
        words, lengths = dy.pad_batch([data[i][0] for i in idx], batch_size=batch_size)
        tags, _ = dy.pad_batch([data[i][1] for i in idx], batch_size=batch_size)
        out.append((words, tags, lengths))
    return out


def dynrnn_tagger(train, dev, nwords, ntags, epochs, batch_size) -> dict:
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((nwords, EMBED), name="E")
    bi = dy.BiRNNBuilder(1, EMBED, 2 * HIDDEN, pc, dy.VanillaLSTMBuilder)
    H, Wo = pc.add_parameters((MLP, 2 * HIDDEN), name="H"), pc.add_parameters((ntags, MLP), name="Wo")
    trainer = dy.AdamTrainer(pc)

    def scores(words, lengths):
        return Wo * dy.tanh(H * bi.transduce(E.batch(words), lengths=lengths))

    def loss(words, tags, lengths):
        return dy.sequence_cross_entropy(scores(words, lengths), tags, lengths, reduction="sum")

    tag = jax.jit(functools.partial(_bound, pc, scores))
    rng = np.random.default_rng(0)
    shapes, compile_s, elapsed, words = set(), 0.0, 0.0, 0
    for _ in range(epochs):
        for w, t, n in batches_of(train, batch_size, rng):
            if w.shape not in shapes:  # first step of a new shape: compile time, not counted
                shapes.add(w.shape)
                t0 = time.perf_counter()
                trainer.step(loss, w, t, n)
                compile_s += time.perf_counter() - t0
                continue
            t0 = time.perf_counter()
            trainer.step(loss, w, t, n)
            elapsed += time.perf_counter() - t0
            words += int(n.sum())
    good = total = 0
    dev_batches = batches_of(dev, batch_size, None)
    values = pc.parameter_values()
    for w, _t, n in dev_batches:  # compile the tagging shapes first
        tag(values, w, n).block_until_ready()
    t0 = time.perf_counter()
    for w, t, n in dev_batches:
        pred = np.asarray(tag(values, w, n))
        mask = np.arange(w.shape[0])[:, None] < n[None, :]
        good += int(((pred == t) & mask).sum())
        total += int(mask.sum())
    return {"words_per_second": words / elapsed, "dev_accuracy": good / total,
            "tag_words_per_second": total / (time.perf_counter() - t0), "shapes": len(shapes), "compile_s": compile_s}


def _bound(pc, scores, values, words, lengths):
    with pc.bind(values):
        return jnp.argmax(scores(words, lengths), axis=-1)


def torch_tagger(torch, train, dev, nwords, ntags, epochs, batch_size) -> dict:
    nn = torch.nn
    torch.manual_seed(0)
    device, sync = torch_device(torch)
    emb, lstm = nn.Embedding(nwords, EMBED).to(device), nn.LSTM(EMBED, HIDDEN, bidirectional=True).to(device)
    mlp = nn.Sequential(nn.Linear(2 * HIDDEN, MLP), nn.Tanh(), nn.Linear(MLP, ntags)).to(device)
    params = [*emb.parameters(), *lstm.parameters(), *mlp.parameters()]
    opt = torch.optim.Adam(params)
    pack = nn.utils.rnn.pack_padded_sequence

    def scores(w, n):
        keep = n > 0
        w, n = torch.from_numpy(w[:, keep]).long().to(device), torch.from_numpy(n[keep]).long()  # lengths stay on CPU
        hs, _ = nn.utils.rnn.pad_packed_sequence(lstm(pack(emb(w), n, enforce_sorted=False))[0],
                                                 total_length=w.shape[0])
        return mlp(hs), keep

    rng = np.random.default_rng(0)
    elapsed, words = 0.0, 0
    for _ in range(epochs):
        for w, t, n in batches_of(train, batch_size, rng):
            t0 = time.perf_counter()
            opt.zero_grad()
            out, keep = scores(w, n)
            gold = torch.from_numpy(np.where(np.arange(w.shape[0])[:, None] < n[None, :], t, -100)[:, keep]).long()
            gold = gold.to(device)
            loss = nn.functional.cross_entropy(out.flatten(0, 1), gold.flatten(), ignore_index=-100, reduction="sum")
            loss.backward()
            opt.step()
            sync(None)
            elapsed += time.perf_counter() - t0
            words += int(n.sum())
    good = total = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for w, t, n in batches_of(dev, batch_size, None):
            out, keep = scores(w, n)
            pred, t, n = out.argmax(-1).cpu().numpy(), t[:, keep], n[keep]
            mask = np.arange(w.shape[0])[:, None] < n[None, :]
            good += int(((pred == t) & mask).sum())
            total += int(mask.sum())
    return {"words_per_second": words / elapsed, "dev_accuracy": good / total,
            "tag_words_per_second": total / (time.perf_counter() - t0)}


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=EWT, help="folder with en_ewt-ud-{train,dev}.conllu")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sentences", type=int, help="train on the first N sentences only")
    ap.add_argument("--no-dynet", action="store_true")
    args = ap.parse_args()
    path = lambda split: os.path.join(args.data, f"en_ewt-ud-{split}.conllu")  # noqa: E731
    if not os.path.exists(path("train")):
        raise SystemExit(f"no UD English EWT at {args.data}; give --data")
    train, dev, nwords, ntags = encode(read_conllu(path("train"))[:args.sentences], read_conllu(path("dev")))
    rows = [{"system": f"dynrnn, batch {args.batch_size}",
             **dynrnn_tagger(train, dev, nwords, ntags, args.epochs, args.batch_size)}]
    torch = optional("torch")
    if torch is not None:
        rows.append({"system": f"PyTorch {torch.__version__}, batch {args.batch_size}",
                     **torch_tagger(torch, train, dev, nwords, ntags, args.epochs, args.batch_size)})
    if not args.no_dynet:
        with tempfile.TemporaryDirectory() as tmp:
            data_file = os.path.join(tmp, "tagger.json")
            with open(data_file, "w") as f:
                json.dump({"train": train, "dev": dev, "vocab_size": nwords, "tag_count": ntags}, f)
            out = run_dynet([os.path.join(HERE, "dynet_bilstm_tagger.py"), data_file, str(args.epochs)])
        if out is not None:
            rows.append({"system": "DyNet 2.1.2, one sentence per graph", **json.loads(out.strip().splitlines()[-1])})
    dynet = next((r["words_per_second"] for r in rows if r["system"].startswith("DyNet")), None)
    for r in rows:
        if dynet:
            r["vs_dynet"] = r["words_per_second"] / dynet
    cols = [("system", "system"), ("words_per_second", "train words/s"), ("vs_dynet", "× DyNet"),
            ("dev_accuracy", "dev accuracy"), ("tag_words_per_second", "tagging words/s"), ("shapes", "shapes"),
            ("compile_s", "compile s")]
    notes = [f"UD English EWT UPOS: {len(train)} training sentences, {nwords} word types (count > 1) + <unk>, "
             f"{ntags} tags; {args.epochs} epoch(s) each. dynrnn's first step of each new batch shape (compilation) "
             "is excluded from its words/s and shown apart."]
    return report("bilstm_tagger", rows, cols, notes)


if __name__ == "__main__":
    main()
