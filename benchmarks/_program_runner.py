"""Runs one of DyNet's own example programs, unchanged but for its import line, under a
budget of updates, and records when each update finished and the loss it applied.

Usage: python _program_runner.py BACKEND PROGRAM BUDGET OUT.json [PROGRAM ARGS...]
BACKEND is `dynet` or `dynrnn`; the program's `import dynet as dy` is its import line.
The budget is counted by wrapping the trainer classes' `update` (a subclass put in the
module's place), and the loss is the last `dy.esum(...)`, `dy.average(...)`,
`dy.mean_batches(...)` or `dy.sum_batches(...)` the program built before it (the example
programs return their loss from one of them). Nothing else is touched.
"""

import json
import os
import runpy
import sys
import time


class _Budget(BaseException):
    """Stops the program (a BaseException, so that the program's own `except` clauses
    do not catch it)."""


def main() -> None:
    backend, program, budget, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    started = time.perf_counter()
    mod = __import__(backend)
    if backend == "dynrnn" and os.environ.get("DYNRNN_REPLAY"):
        mod.config(replay=os.environ["DYNRNN_REPLAY"])
    if backend == "dynrnn" and os.environ.get("DYNRNN_COMPILE_AHEAD"):
        mod.config(compile_ahead=os.environ["DYNRNN_COMPILE_AHEAD"] == "1")
    record = {"backend": backend, "program": os.path.basename(program), "times": [], "losses": []}
    last = [None]

    def recording(f):
        def recorded(*args, **kwargs):
            e = f(*args, **kwargs)
            last[0] = e
            return e
        return recorded

    for name in ("esum", "average", "mean_batches", "sum_batches"):
        setattr(mod, name, recording(getattr(mod, name)))
    for name in ("SimpleSGDTrainer", "AdamTrainer", "MomentumSGDTrainer", "AdagradTrainer"):
        base = getattr(mod, name)

        def make(base):
            class Counting(base):
                def update(self, *args, **kwargs):
                    loss = last[0].value() if last[0] is not None else None
                    base.update(self, *args, **kwargs)
                    if len(record["times"]) + 1 >= budget and hasattr(self, "wait"):
                        self.wait()  # dynrnn's last update has run (its updates return before they have)
                    record["times"].append(time.perf_counter() - started)
                    record["losses"].append(loss if not isinstance(loss, list) else sum(loss))
                    if len(record["times"]) >= budget:
                        raise _Budget()
            Counting.__name__ = base.__name__
            return Counting

        setattr(mod, name, make(base))
    sys.argv = [program] + sys.argv[5:]
    sys.path.insert(0, os.path.dirname(program))
    try:
        runpy.run_path(program, run_name="__main__")
    except _Budget:
        pass
    with open(out, "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main()
