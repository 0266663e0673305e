"""Eager inference, as DyNet's own programs do it, under DyNet and under dynrnn with only the
import line changed: bilstmtagger.py's `tag_sent` (one graph per sentence, `npvalue()` after
each word's softmax; EWT dev sentences) and rnnlm.py's `sample` (one graph per sample,
`vec_value()` of each character's softmax, then the next character drawn from it; a 2-layer
256/256 LSTM over tiny Shakespeare's characters). Items/s after a warm-up, and the warm-up's
time (dynrnn compiles then).

The weights are untrained (the rate does not depend on them).

    python benchmarks/dynet_tagging.py [--warm 50] [--sentences 300] [--samples 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def _definitions(backend: str, program: str, cut: str) -> dict:
    """The program's definitions (its source up to `cut`, import line changed)."""
    os.chdir(os.path.dirname(program))
    sys.path.insert(0, os.path.dirname(program))
    src = open(program).read()
    src = src.replace("import dynet as dy", f"import {backend} as dy\nimport numpy as np")  # (it uses np)
    src = src[:src.index(cut)]
    defs: dict = {"__name__": "eager"}
    exec(compile(src, program, "exec"), defs)
    return defs


def _timed(run, items: list, warm: int, count: int) -> tuple[float, float]:
    """(warm-up seconds, seconds for the next `count`)."""
    t = time.perf_counter()
    for x in items[:warm]:
        run(x)
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    for x in items[warm:warm + count]:
        run(x)
    return warm_s, time.perf_counter() - t


def worker(backend: str, what: str, program: str, out: str, warm: int, count: int, data: str = "") -> None:
    """Runs in DyNet's or dynrnn's interpreter."""
    if what == "tag":
        defs = _definitions(backend, program, "tagged = loss = 0")  # (its training loop cut off)
        test, tag_sent, builders = defs["test"], defs["tag_sent"], defs["builders"]
        warm_s, dt = _timed(lambda s: tag_sent(s, builders), test, warm, count)
        result = {"warm_s": warm_s, "per_s": count / dt,
                  "words_per_s": sum(len(s) for s in test[warm:warm + count]) / dt}
    else:  # rnnlm.py's own model construction, then its sample()
        defs = _definitions(backend, program, "if __name__ == '__main__':")
        dy, util = defs["dy"], defs["util"]
        vocab = util.Vocab.from_corpus(util.CharsCorpusReader(data, begin="<s>"))
        model = dy.Model()
        lm = defs["RNNLanguageModel"](model, defs["LAYERS"], defs["INPUT_DIM"], defs["HIDDEN_DIM"], vocab.size(),
                                      builder=dy.LSTMBuilder)
        chars = 100  # characters per sample (untrained: it would seldom draw the stop symbol)
        start = vocab.w2i["<s>"]
        warm_s, dt = _timed(lambda _: lm.sample(first=start, nchars=chars), list(range(warm + count)), warm, count)
        result = {"warm_s": warm_s, "per_s": count * chars / dt}
    with open(out, "w") as f:
        json.dump(result, f)


def main() -> None:
    import _harness as H
    import dynet_programs as P

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warm", type=int, default=50, help="warm-up sentences (not timed in the rate)")
    ap.add_argument("--sentences", type=int, default=300, help="sentences tagged and timed")
    ap.add_argument("--samples", type=int, default=30, help="samples of 100 characters timed (after 5 warm-up ones)")
    a = ap.parse_args()
    if not os.path.isdir(P.EXAMPLES):
        print(f"note: DyNet's source distribution is not at {P.EXAMPLES}; nothing to run.")
        return
    rows = []
    with tempfile.TemporaryDirectory() as work:
        cases = [("bilstmtagger tag_sent", "sentences", "tag", P.program_source("tagger", work)[0], a.warm,
                  a.sentences, ""),
                 ("rnnlm sample", "characters", "sample", P.program_source("rnnlm", work)[0], 5, a.samples,
                  os.path.join(P.DATA, "tinyshakespeare", "input.txt"))]
        for name, unit, what, program, warm, count, data in cases:
            got = {}
            for backend in ("dynet", "dynrnn"):
                out = os.path.join(work, f"{what}-{backend}.json")
                args = [os.path.abspath(__file__), "--worker", backend, what, program, out, str(warm), str(count), data]
                if backend == "dynet":
                    ok = H.run_dynet(args, timeout=3600) is not None
                else:
                    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=3600)
                    ok = r.returncode == 0
                    if not ok:
                        print(f"note: the dynrnn run of {name} failed: {r.stderr[-2000:]}")
                if ok:
                    got[backend] = json.load(open(out))
            row = {"program": name, "unit": unit}
            for b, v in got.items():
                for k, x in v.items():
                    row[f"{b}_{k}"] = x
            if len(got) == 2:
                row["ratio"] = got["dynrnn"]["per_s"] / got["dynet"]["per_s"]
            rows.append(row)
    H.report("dynet_tagging", rows, [
        ("program", "program"), ("unit", "unit"),
        ("dynet_per_s", "DyNet units/s"), ("dynrnn_per_s", "dynrnn units/s"),
        ("ratio", "ratio"), ("dynet_warm_s", "DyNet warm-up (s)"), ("dynrnn_warm_s", "dynrnn warm-up (s)")],
        notes=["the programs' own tag_sent and sample, import line changed; one graph per sentence or sample, "
               "a value read after each word or character",
               f"warm-up: the first {a.warm} sentences / 5 samples (dynrnn compiles its kernels then), "
               "not in the rate"])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]), sys.argv[8])
    else:
        main()
