"""Eager tagging, as DyNet's own bilstmtagger.py does it: its `tag_sent` (one graph per
sentence, `npvalue()` after each word's softmax), under DyNet and under dynrnn, with only the
import line changed: sentences/s after a warm-up, and the warm-up's time (dynrnn compiles then).

The weights are untrained (the rate does not depend on them); sentences are EWT dev.

    python benchmarks/dynet_tagging.py [--warm 50] [--sentences 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def worker(backend: str, program: str, out: str, warm: int, count: int) -> None:
    """Runs in DyNet's or dynrnn's interpreter: the program's definitions (its training loop
    cut off), then `tag_sent` over the test sentences."""
    os.chdir(os.path.dirname(program))
    sys.path.insert(0, os.path.dirname(program))
    src = open(program).read()
    src = src.replace("import dynet as dy", f"import {backend} as dy\nimport numpy as np")  # (it uses np)
    src = src[:src.index("tagged = loss = 0")]
    defs: dict = {"__name__": "tagger"}
    exec(compile(src, program, "exec"), defs)
    test, tag_sent, builders = defs["test"], defs["tag_sent"], defs["builders"]
    t = time.perf_counter()
    for s in test[:warm]:
        tag_sent(s, builders)
    warm_s = time.perf_counter() - t
    sents = test[warm:warm + count]
    t = time.perf_counter()
    for s in sents:
        tag_sent(s, builders)
    dt = time.perf_counter() - t
    with open(out, "w") as f:
        json.dump({"warm_s": warm_s, "sentences_per_s": len(sents) / dt,
                   "words_per_s": sum(len(s) for s in sents) / dt}, f)


def main() -> None:
    import _harness as H
    import dynet_programs as P

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warm", type=int, default=50, help="warm-up sentences (not timed in the rate)")
    ap.add_argument("--sentences", type=int, default=300, help="sentences timed")
    a = ap.parse_args()
    if not os.path.isdir(P.EXAMPLES):
        print(f"note: DyNet's source distribution is not at {P.EXAMPLES}; nothing to run.")
        return
    got = {}
    with tempfile.TemporaryDirectory() as work:
        program, _ = P.program_source("tagger", work)
        for backend in ("dynet", "dynrnn"):
            out = os.path.join(work, f"{backend}.json")
            args = [os.path.abspath(__file__), "--worker", backend, program, out, str(a.warm), str(a.sentences)]
            if backend == "dynet":
                ok = H.run_dynet(args, timeout=3600) is not None
            else:
                r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=3600)
                ok = r.returncode == 0
                if not ok:
                    print(f"note: the dynrnn run failed: {r.stderr[-2000:]}")
            if ok:
                got[backend] = json.load(open(out))
    row = {"program": "bilstmtagger tag_sent", "sentences": a.sentences}
    for b, v in got.items():
        for k, x in v.items():
            row[f"{b}_{k}"] = x
    if len(got) == 2:
        row["ratio"] = got["dynrnn"]["sentences_per_s"] / got["dynet"]["sentences_per_s"]
    H.report("dynet_tagging", [row], [
        ("program", "program"), ("sentences", "sentences"),
        ("dynet_sentences_per_s", "DyNet sent/s"), ("dynrnn_sentences_per_s", "dynrnn sent/s"),
        ("ratio", "ratio"), ("dynet_warm_s", "DyNet warm-up (s)"), ("dynrnn_warm_s", "dynrnn warm-up (s)")],
        notes=["the program's own tag_sent, import line changed; npvalue() after each word, one graph per sentence",
               "warm-up: the first --warm sentences (dynrnn compiles its kernels then), not in the rate"])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
