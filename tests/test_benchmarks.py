"""The benchmark harness: what a script records and how RESULTS.md is rebuilt from it.
(The benchmarks themselves are timed runs and live outside the test suite.)"""

import datetime
import json
import os
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)
import _harness  # noqa: E402
import run_all  # noqa: E402


def test_every_listed_benchmark_has_its_script():
    missing = [name for name, _, _ in run_all.BENCHMARKS if not os.path.exists(os.path.join(BENCH, f"{name}.py"))]
    assert missing == []


def test_report_records_rows_date_and_run_time(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_harness, "RESULTS", str(tmp_path))
    rows = [{"config": "a", "ms": 1.5}, {"config": "b", "ms": 1234.5}]
    _harness.report("demo", rows, [("config", "config"), ("ms", "dynrnn ms")], notes=["a note"])
    saved = json.load(open(tmp_path / "demo.json"))
    assert saved["rows"] == rows and saved["notes"] == ["a note"]
    assert saved["date"] == datetime.date.today().isoformat()
    assert saved["seconds"] >= 0
    printed = capsys.readouterr().out
    assert "dynrnn ms" in printed and "1,234" in printed and "note: a note" in printed
    # a run on an accelerator goes to results/gpu, beside the CPU's
    monkeypatch.setattr(_harness, "machine", lambda: {"backend": "gpu", "device": "cuda:0"})
    _harness.report("demo", rows, [("config", "config")])
    assert json.load(open(tmp_path / "gpu" / "demo.json"))["machine"]["backend"] == "gpu"
    assert json.load(open(tmp_path / "demo.json"))["machine"]["backend"] == "cpu"


def test_render_rebuilds_every_stored_result(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "RESULTS", str(tmp_path))
    monkeypatch.setattr(run_all, "plot", lambda name, result: None)  # no files written by the test
    name, title, _ = run_all.BENCHMARKS[0]
    result = {"benchmark": name, "machine": {"device": "cpu:0", "backend": "cpu", "cpus": 2, "jax": "x",
                                            "python": "3.11"},
              "date": "2026-01-02", "seconds": 12.3, "rows": [{"k": 7}], "columns": [["k", "the k"]], "notes": []}
    json.dump(result, open(tmp_path / f"{name}.json", "w"))
    old = dict(result, benchmark=run_all.BENCHMARKS[1][0])
    del old["date"], old["seconds"]  # written before the harness recorded them
    json.dump(old, open(tmp_path / f"{run_all.BENCHMARKS[1][0]}.json", "w"))
    text = run_all.render()
    assert f"## {title}" in text and "measured 2026-01-02; the script took 12 s." in text
    assert f"## {run_all.BENCHMARKS[1][1]}" in text and "Python 3.11." in text
    assert "| the k |" in text and "| 7 |" in text
    assert f"## {run_all.BENCHMARKS[2][1]}" not in text  # no JSON, no section
    # a run on an accelerator, stored under gpu/: its own section, naming the device kind
    os.makedirs(tmp_path / "gpu")
    gpu = dict(result, machine=dict(result["machine"], backend="gpu", device="cuda:0", device_kind="NVIDIA H200"))
    json.dump(gpu, open(tmp_path / "gpu" / f"{name}.json", "w"))
    text = run_all.render()
    assert f"## {title} (GPU)" in text and "cuda:0 (NVIDIA H200, gpu, 2 CPUs)" in text
    assert f"## {run_all.BENCHMARKS[1][1]} (GPU)" not in text


def test_synthetic_mnist_is_what_dynets_mnist_readers_read(tmp_path):
    """dynet_programs.synthetic_mnist: IDX files under both names DyNet's MNIST examples open,
    headers as theirs read them (big-endian counts, 28x28), labels 0-9, the same in both."""
    import struct

    import dynet_programs

    dynet_programs.synthetic_mnist(str(tmp_path), n_train=30, n_test=10)
    for part, n in (("train", 30), ("t10k", 10)):
        got = []
        for sep in ("-", "."):
            with open(tmp_path / f"{part}-labels{sep}idx1-ubyte", "rb") as f:
                assert struct.unpack(">II", f.read(8)) == (2049, n)
                labels = f.read()
            with open(tmp_path / f"{part}-images{sep}idx3-ubyte", "rb") as f:
                assert struct.unpack(">IIII", f.read(16)) == (2051, n, 28, 28)
                images = f.read()
            assert len(labels) == n and max(labels) <= 9 and len(images) == n * 28 * 28
            got.append((labels, images))
        assert got[0] == got[1]


def test_gym_standin_runs_the_classic_control_equations():
    """_gym_standin (gym.py for DyNet's reinforcement-learning examples): what the examples
    read (spaces, `_max_episode_steps`, reset/step), and the dynamics against the equations
    written out here: one cart-pole Euler step from a known state, the pole falling under a
    constant push, and one pendulum step."""
    import math

    import _gym_standin as gym
    import numpy as np

    env = gym.make("CartPole-v1")
    assert env.observation_space.shape == (4,) and env.action_space.n == 2 and env._max_episode_steps == 500
    obs = env.reset()
    assert obs.shape == (4,) and np.all(np.abs(obs) <= 0.05)
    env._state = np.array([0.0, 0.0, 0.1, 0.0])
    got, reward, done, _ = env.step(1)
    # F = +10 N; θ̈ = (g sinθ − cosθ·F/(M+m)) / (l·(4/3 − m cos²θ/(M+m))), ẍ = F/(M+m) − m l θ̈ cosθ/(M+m)
    s, c = math.sin(0.1), math.cos(0.1)
    th_acc = (9.8 * s - c * 10.0 / 1.1) / (0.5 * (4 / 3 - 0.1 * c * c / 1.1))
    x_acc = 10.0 / 1.1 - 0.05 * th_acc * c / 1.1
    np.testing.assert_allclose(got, [0.0, 0.02 * x_acc, 0.1, 0.02 * th_acc], rtol=1e-12)
    assert reward == 1.0 and not done
    env.reset()
    steps = next(t for t in range(1, 501) if env.step(0)[2])  # always pushing left: the pole falls
    assert 5 < steps < 100
    pend = gym.make("Pendulum-v0")
    assert pend.observation_space.shape == (3,) and pend.action_space.shape == (1,) and pend._max_episode_steps == 200
    pend.reset()
    pend._theta, pend._theta_dot = 0.5, 1.0
    got, reward, done, _ = pend.step(np.array([3.0]))  # the torque is clipped to 2
    th_dot = 1.0 + (-15.0 * math.sin(0.5 + math.pi) + 3.0 * 2.0) * 0.05
    np.testing.assert_allclose(got, [math.cos(0.5 + 0.05 * th_dot), math.sin(0.5 + 0.05 * th_dot), th_dot], rtol=1e-12)
    assert reward == -(0.25 + 0.1 + 0.001 * 4.0) and not done
    try:
        gym.make("Walker2d-v2")
    except ValueError as e:
        assert "Walker2d-v2" in str(e)
    else:
        raise AssertionError("an environment the stand-in lacks must be refused")
