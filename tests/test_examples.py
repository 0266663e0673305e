"""The README demo trains for real: the tutorial LSTM learns its sentence."""

import os
import subprocess
import sys

import dynrnn as dy

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)

import demo  # noqa: E402


def test_tutorial_lstm_learns_the_sentence():
    logs = []
    loss, text, _, _ = demo.train(dy.LSTMBuilder, demo.SENTENCE, iterations=200, log=logs.append)
    assert loss < 1.0
    assert text == demo.SENTENCE
    assert len(logs) == 8


def test_demo_cli_runs():
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "demo.py"), "--iterations", "30"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "VanillaLSTMBuilder" in out.stdout and "s2a.prev() is s1: True" in out.stdout
