"""The cosine-wave regression example learns: one-step error and free-running error fall
below stated bounds (seeded, so the run is reproducible)."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))

import cos_wave  # noqa: E402


def test_lstm_learns_to_continue_a_cosine_wave(tmp_path):
    model, losses = cos_wave.train(60, log=None)
    assert losses[0] > 0.01 and losses[-1] < 0.002  # one-step-ahead MSE, from ~0.08
    truth = cos_wave.wave(300, phase=1.0)
    continued = model.generate(truth[:100], 50)
    assert np.mean((continued - truth[100:150]) ** 2) < 0.05  # running free for 50 steps
    baseline = np.mean((truth[99] - truth[100:150]) ** 2)  # "repeat the last value"
    assert np.mean((continued - truth[100:150]) ** 2) < baseline / 5


def test_cli_writes_the_plot(tmp_path):
    png = str(tmp_path / "wave.png")
    result = cos_wave.main(["--epochs", "5", "--plot", png])
    assert os.path.getsize(png) > 1000 and result["train_mse"] < 0.1
