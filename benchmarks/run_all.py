"""Runs every benchmark and writes benchmarks/RESULTS.md: one table per benchmark (from its
JSON in benchmarks/results/), the machine it ran on, and plots in benchmarks/results/plots/.

    .venv/bin/python benchmarks/run_all.py                    # everything (about an hour on 2 cores)
    .venv/bin/python benchmarks/run_all.py --skip parser_speed
    .venv/bin/python benchmarks/run_all.py --render           # rebuild RESULTS.md from the JSON only

PyTorch, Flax and DyNet columns appear when those are installed (`pip install -e '.[bench]'`;
DyNet as benchmarks/README.md, 'Building DyNet 2.1.2' says); each script notes what it skipped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys

from _harness import RESULTS, _fmt, results_folder

HERE = os.path.dirname(os.path.abspath(__file__))
PLOTS = os.path.join(RESULTS, "plots")

# (script, title, what it answers); the order of RESULTS.md
BENCHMARKS = [
    ("step_latency", "Step latency (incremental add_input)", "dynrnn ≤ 1.3× a bare jitted step, < 1× PyTorch."),
    ("transduce", "Transduce throughput (T=100, 256→256)", "faster than PyTorch and Flax."),
    ("rnnlm_batch", "DyNet's rnnlm-batch", "≥ 13,000 words/s at minibatch 64 (2× DyNet)."),
    ("bilstm_tagger", "DyNet's bilstm-tagger (UD English EWT UPOS)", "words/s and accuracy against DyNet."),
    ("memory", "Training memory", "slope in T; transduce against add_inputs."),
    ("compile_cost", "Compile cost with and without length bucketing", "compilations and time to train."),
    ("data_parallel", "Data-parallel training", "words/s on 1, 2, 4, 8 devices."),
    ("char_lm", "Character LM (DyNet tutorial)", "per-sentence and minibatched training against DyNet."),
    ("parser_speed", "Stack-LSTM parser", "training and parsing sentences/s against DyNet."),
    ("tree_lstm", "Tree-LSTM on dependency trees", "trees/s against DyNet's examples/treelstm, autobatched (≥5×)."),
    ("decoding", "Incremental decoding", "tokens/s greedy and beam 5, eager and compiled."),
    ("dynet_programs", "DyNet's example programs, import changed (graph mode)",
     "≥ 1× DyNet's updates/s one example per graph; loss curves agree."),
    ("dynet_tagging", "DyNet's tag_sent and sample, import changed (graph mode, eager)",
     "≥ 1× DyNet's sentences/s tagged and characters/s sampled."),
]

# benchmark → (x, y, series, y label, log-y): a line or bar plot of its rows
PLOT_SPECS = {
    "rnnlm_batch": ("minibatch", "words_per_second", "system", "training words/s", False),
    "memory": ("T", "temp_mb", "way", "temporary MiB of one gradient step", False),
    "data_parallel": ("devices", "words_per_second", None, "training words/s", False),
    "transduce": ("config", ["dynrnn_ms", "torch_ms", "flax_ms"], None, "ms per call", True),
    "step_latency": ("config", ["dynrnn_us", "bare_jax_us", "torch_us"], None, "µs per step", True),
    "compile_cost": ("batching", ["compile_s", "pass_s"], None, "seconds", False),
}


def run(names: list[str]) -> None:
    for name in names:
        print(f"== {name}", flush=True)
        proc = subprocess.run([sys.executable, os.path.join(HERE, f"{name}.py")], cwd=HERE)
        if proc.returncode != 0:
            print(f"note: {name} failed (exit {proc.returncode}); RESULTS.md keeps its previous JSON if any.")


def plot(name: str, result: dict) -> str | None:
    spec = PLOT_SPECS.get(name)
    if spec is None:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no plots.")
        return None
    x, y, series, ylabel, logy = spec
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    if isinstance(y, list):  # grouped bars: one group per row, one bar per present column
        keys = [k for k in y if any(k in r for r in rows)]
        width = 0.8 / max(len(keys), 1)
        for j, k in enumerate(keys):
            ax.bar([i + j * width for i in range(len(rows))], [r.get(k, 0) or 0 for r in rows], width, label=k)
        ax.set_xticks([i + width * (len(keys) - 1) / 2 for i in range(len(rows))])
        ax.set_xticklabels([str(r[x]) for r in rows], rotation=20, ha="right", fontsize=8)
    else:
        groups: dict[str, list] = {}
        for r in rows:
            if y in r and x in r:
                groups.setdefault(str(r[series]) if series else name, []).append((r[x], r[y]))
        for label, pts in groups.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        if all(isinstance(r.get(x), (int, float)) for r in rows):
            ax.set_xscale("log", base=2)
        ax.set_xlabel(x)
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(PLOTS, exist_ok=True)
    path = os.path.join(PLOTS, f"{name}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.path.relpath(path, HERE)


def table(result: dict) -> list[str]:
    rows = result["rows"]
    columns = result.get("columns") or [[k, k] for k in dict.fromkeys(k for r in rows for k in r)]
    columns = [(k, h) for k, h in columns if any(k in r for r in rows)]
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return lines


def _when(result: dict) -> str:
    """'; measured <date>; the script took <n> s.' from what the result recorded (older JSON has neither)."""
    parts = [f"measured {result['date']}"] if "date" in result else []
    if "seconds" in result:
        parts.append(f"the script took {result['seconds']:.0f} s")
    return "".join(f"; {p}" for p in parts) + "."


def section(name: str, title: str, target: str, result: dict, plot_it: bool = True) -> list[str]:
    m = result["machine"]
    kind = f"{m['device_kind']}, " if m.get("device_kind") and m.get("backend") != "cpu" else ""
    out = [f"## {title}", "", f"*Question:* {target}  ",
           f"*Machine:* {m.get('device')} ({kind}{m.get('backend')}, {m.get('cpus')} CPUs), JAX {m.get('jax')}, "
           f"Python {m.get('python')}{_when(result)}",
           "", *table(result), ""]
    out += [f"- {n}" for n in result.get("notes", [])]
    image = plot(name, result) if plot_it else None
    if image:
        out += ["", f"![{name}]({image})"]
    return out + [""]


def render() -> str:
    out = ["# dynrnn benchmark results", "",
           f"Written by `benchmarks/run_all.py` on {datetime.date.today().isoformat()}. Every ratio is against a "
           "baseline measured in the same run on the same machine; each section names its machine and date. "
           "Regenerate with `.venv/bin/python benchmarks/run_all.py`.", ""]
    for folder, where in ((results_folder(RESULTS, "cpu"), ""), (results_folder(RESULTS, "gpu"), " (GPU)")):
        for name, title, target in BENCHMARKS:
            path = os.path.join(folder, f"{name}.json")
            if os.path.exists(path):
                out += section(name, title + where, target, json.load(open(path)), plot_it=not where)
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip", nargs="*", default=[], help="benchmarks not to run")
    ap.add_argument("--only", nargs="*", help="run just these")
    ap.add_argument("--render", action="store_true", help="only rebuild RESULTS.md from results/*.json")
    args = ap.parse_args()
    names = [n for n, _, _ in BENCHMARKS if n not in args.skip and (not args.only or n in args.only)]
    if not args.render:
        run(names)
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write(render())
    print(f"wrote {os.path.join(HERE, 'RESULTS.md')}")


if __name__ == "__main__":
    main()
