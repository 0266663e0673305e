"""CoNLL-U reading, writing and dependency evaluation (UAS / LAS).

Only the *syntactic words* of a sentence are parsed and scored: multiword-token lines
(`3-4`) and empty nodes (`5.1`) are kept for output but carry no head.

Scores follow the CoNLL 2018 shared task definitions: UAS is the fraction of words
whose HEAD is right; LAS the fraction whose HEAD and DEPREL are right, where DEPREL is
compared on its universal part (`nmod:poss` counts as `nmod`); `evaluate(...,
full_labels=True)` compares subtypes too. Scores "without punctuation" leave out words
whose gold UPOS is `PUNCT`.

As a script: `python examples/conllu.py GOLD.conllu SYSTEM.conllu` prints the scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Iterable, Sequence


@dataclasses.dataclass
class Sentence:
    """One sentence: `words[i]`, `upos[i]`, `heads[i]` (0 = root), `rels[i]` and `xpos[i]`
    (the treebank's own tag, "_" where it has none) for the syntactic words i = 0..n-1 (word
    i has CoNLL-U ID i+1); `lines` are the original lines (comments included) so the
    sentence can be written back with new heads."""

    words: list[str]
    upos: list[str]
    heads: list[int]
    rels: list[str]
    lines: list[str] = dataclasses.field(default_factory=list, repr=False)
    xpos: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)


def parse_conllu(text: str, source: str = "<string>") -> list[Sentence]:
    """Sentences from CoNLL-U text. Raises ValueError naming the line on malformed input."""
    sentences, block = [], []
    for lineno, line in enumerate(text.splitlines() + [""], 1):
        if line.strip():
            block.append((lineno, line))
        elif block:
            sentences.append(_sentence(block, source))
            block = []
    return sentences


def _sentence(block, source: str) -> Sentence:
    words, upos, xpos, heads, rels, lines = [], [], [], [], [], []
    for lineno, line in block:
        lines.append(line)
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise ValueError(f"{source}:{lineno}: expected 10 tab-separated CoNLL-U columns, found {len(cols)}.")
        if "-" in cols[0] or "." in cols[0]:
            continue  # multiword token or empty node
        if not cols[0].isdigit() or int(cols[0]) != len(words) + 1:
            raise ValueError(f"{source}:{lineno}: word ID {cols[0]!r} out of sequence; expected {len(words) + 1}.")
        words.append(cols[1])
        upos.append(cols[3])
        xpos.append(cols[4])
        heads.append(int(cols[6]) if cols[6].isdigit() else -1)
        rels.append(cols[7])
    if not words:
        raise ValueError(f"{source}:{block[0][0]}: a sentence with no words.")
    return Sentence(words, upos, heads, rels, lines, xpos)


def read_conllu(path: str) -> list[Sentence]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"CoNLL-U file {path!r} does not exist.")
    with open(path, encoding="utf-8") as f:
        return parse_conllu(f.read(), source=path)


def format_conllu(sentences: Iterable[Sentence], heads: Sequence[Sequence[int]] | None = None,
                  rels: Sequence[Sequence[str]] | None = None) -> str:
    """The sentences as CoNLL-U, with HEAD/DEPREL replaced by `heads`/`rels` if given (and
    the enhanced DEPS column cleared, since it would no longer agree)."""
    out = []
    for k, s in enumerate(sentences):
        h = s.heads if heads is None else heads[k]
        r = s.rels if rels is None else rels[k]
        i = 0
        for line in s.lines:
            cols = line.split("\t")
            if line.startswith("#") or "-" in cols[0] or "." in cols[0]:
                out.append(line)
                continue
            cols[6], cols[7] = str(int(h[i])), r[i]
            if heads is not None:
                cols[8] = "_"
            out.append("\t".join(cols))
            i += 1
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


def write_conllu(path: str, sentences, heads=None, rels=None) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(format_conllu(sentences, heads, rels))
    os.replace(tmp, path)


def evaluate(gold: Sequence[Sentence], heads: Sequence[Sequence[int]], rels: Sequence[Sequence[str]],
             full_labels: bool = False) -> dict:
    """UAS/LAS in percent over all words and without punctuation (gold UPOS `PUNCT`)."""
    if len(gold) != len(heads) or len(gold) != len(rels):
        raise ValueError(f"evaluate: {len(gold)} gold sentences but {len(heads)} predicted head lists and "
                         f"{len(rels)} label lists.")
    label = (lambda r: r) if full_labels else (lambda r: r.split(":")[0])
    n = n_np = ua = la = ua_np = la_np = 0
    for k, (s, h, r) in enumerate(zip(gold, heads, rels)):
        if len(h) != len(s) or len(r) != len(s):
            raise ValueError(f"evaluate: sentence {k} has {len(s)} words but {len(h)} heads and {len(r)} labels.")
        for i in range(len(s)):
            u = int(h[i]) == s.heads[i]
            lab = u and label(r[i]) == label(s.rels[i])
            n, ua, la = n + 1, ua + u, la + lab
            if s.upos[i] != "PUNCT":
                n_np, ua_np, la_np = n_np + 1, ua_np + u, la_np + lab
    pct = lambda a, b: 100.0 * a / max(b, 1)  # noqa: E731
    return {"uas": pct(ua, n), "las": pct(la, n), "uas_no_punct": pct(ua_np, n_np),
            "las_no_punct": pct(la_np, n_np), "words": n, "words_no_punct": n_np}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows each flag's default, and the description's line breaks."""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="UAS/LAS of a system CoNLL-U file against a gold one.",
                                 formatter_class=_HelpFormatter)
    ap.add_argument("gold", help="gold CoNLL-U file")
    ap.add_argument("system", help="system CoNLL-U file (same sentences and words)")
    ap.add_argument("--full-labels", action="store_true", help="compare DEPREL subtypes too")
    args = ap.parse_args(argv)
    gold, system = read_conllu(args.gold), read_conllu(args.system)
    if [s.words for s in gold] != [s.words for s in system]:
        raise SystemExit("the two files do not hold the same sentences and words")
    scores = evaluate(gold, [s.heads for s in system], [s.rels for s in system], args.full_labels)
    print(json.dumps(scores, indent=1))
    return scores


if __name__ == "__main__":
    main()
