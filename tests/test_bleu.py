"""Corpus BLEU against values computed by hand: clipping, brevity penalty, closest
reference length, corpus-level (not averaged) statistics."""

import math
import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)

import bleu  # noqa: E402


def t(s):
    return s.split()


def test_identical_is_100_and_disjoint_is_0():
    assert bleu.corpus_bleu([t("a b c d e")], [[t("a b c d e")]])["bleu"] == pytest.approx(100.0)
    assert bleu.corpus_bleu([t("a b c d e")], [[t("v w x y z")]])["bleu"] == 0.0


def test_clipping_counts_an_ngram_at_most_as_often_as_in_a_reference():
    r = bleu.corpus_bleu([t("the the the the the the the")], [[t("the cat is on the mat")]])
    assert r["precisions"][0] == pytest.approx(100 * 2 / 7)   # Papineni et al.'s example
    assert r["bleu"] == 0.0                                    # no bigram matches
    # with two references, the clip is the largest count in any one of them
    r = bleu.corpus_bleu([t("the the the cat")], [[t("the cat"), t("the the mat")]])
    assert r["precisions"][0] == pytest.approx(100 * 3 / 4)


def test_brevity_penalty():
    r = bleu.corpus_bleu([t("the cat sat on the")], [[t("the cat sat on the mat")]])
    assert r["precisions"] == pytest.approx([100.0] * 4)
    assert r["brevity_penalty"] == pytest.approx(math.exp(1 - 6 / 5))
    assert r["bleu"] == pytest.approx(100 * math.exp(-0.2))
    # the closest reference length counts (the shorter one on a tie); longer output: no penalty
    assert bleu.corpus_bleu([t("a b c d e")], [[t("a b c d"), t("a b c d e f g")]])["ref_len"] == 4
    assert bleu.corpus_bleu([t("a b c d e")], [[t("a b c d f g"), t("a b c d")]])["ref_len"] == 4
    assert bleu.corpus_bleu([t("a b c d e")], [[t("a b c d")]])["brevity_penalty"] == 1.0


def test_statistics_are_summed_over_the_corpus():
    r = bleu.corpus_bleu([t("a b c d"), t("a b x d")], [[t("a b c d")], [t("a b c d")]])
    assert r["precisions"] == pytest.approx([100 * 7 / 8, 100 * 4 / 6, 100 * 2 / 4, 100 * 1 / 2])
    assert r["bleu"] == pytest.approx(100 * (7 / 8 * 4 / 6 * 2 / 4 * 1 / 2) ** 0.25)
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference"):
        bleu.corpus_bleu([t("a"), t("b")], [[t("a")]])


def test_cli(tmp_path):
    (tmp_path / "h").write_text("the cat sat on the\n")
    (tmp_path / "r").write_text("the cat sat on the mat\n")
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, "bleu.py"), str(tmp_path / "h"), str(tmp_path / "r")],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("BLEU = 81.87")
