"""Corpus BLEU (Papineni et al. 2002) on tokenised text, as `multi-bleu.perl` computes it.

For n = 1..4, the clipped n-gram precision p_n = Σ_sentences Σ_ngrams min(count in the
hypothesis, max count in any reference) / Σ n-grams in the hypotheses; the brevity penalty
BP = exp(1 − r/c) if c < r else 1, with c the total hypothesis length and r the total of
the reference lengths closest to each hypothesis length (the shorter one on ties);
BLEU = 100 · BP · exp(Σ_n ¼ log p_n), and 0 if any p_n is 0.

As a script: `python examples/bleu.py HYPOTHESES REFERENCE [REFERENCE ...]` (one tokenised
sentence per line) prints BLEU and its parts.
"""

from __future__ import annotations

import argparse
import collections
import math
from collections.abc import Sequence


def ngrams(tokens: Sequence[str], n: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                max_n: int = 4) -> dict:
    """BLEU of token lists against, for each hypothesis, a list of reference token lists.
    Returns {"bleu", "precisions" (percent), "brevity_penalty", "ratio", "hyp_len", "ref_len"}."""
    if len(hypotheses) != len(references):
        raise ValueError(f"corpus_bleu: {len(hypotheses)} hypotheses but {len(references)} reference sets.")
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for k, (hyp, refs) in enumerate(zip(hypotheses, references)):
        if not refs:
            raise ValueError(f"corpus_bleu: hypothesis {k} has no reference.")
        c += len(hyp)
        r += min((abs(len(ref) - len(hyp)), len(ref)) for ref in refs)[1]
        for n in range(1, max_n + 1):
            h = ngrams(hyp, n)
            best: collections.Counter = collections.Counter()
            for ref in refs:
                best |= ngrams(ref, n)
            matches[n - 1] += sum(min(cnt, best[g]) for g, cnt in h.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    precisions = [m / t if t else 0.0 for m, t in zip(matches, totals)]
    bp = 1.0 if c >= r else (math.exp(1 - r / c) if c else 0.0)
    score = 0.0 if min(precisions) == 0 else bp * math.exp(sum(math.log(p) for p in precisions) / max_n)
    return {"bleu": 100 * score, "precisions": [100 * p for p in precisions], "brevity_penalty": bp,
            "ratio": c / r if r else 0.0, "hyp_len": c, "ref_len": r}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows each flag's default, and the description's line breaks."""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="Corpus BLEU of tokenised hypotheses against reference files.",
                                 formatter_class=_HelpFormatter)
    ap.add_argument("hypotheses", help="system output, one tokenised sentence per line")
    ap.add_argument("references", nargs="+",
                    help="reference files, one sentence per line each, aligned with the hypotheses")
    args = ap.parse_args(argv)
    read = lambda p: [line.split() for line in open(p, encoding="utf-8").read().splitlines()]  # noqa: E731
    hyps, refs = read(args.hypotheses), [read(p) for p in args.references]
    if any(len(r) != len(hyps) for r in refs):
        raise SystemExit("every reference file needs one line per hypothesis")
    result = corpus_bleu(hyps, list(zip(*refs)))
    print(f"BLEU = {result['bleu']:.2f}, {'/'.join(f'{p:.1f}' for p in result['precisions'])} "
          f"(BP={result['brevity_penalty']:.3f}, ratio={result['ratio']:.3f}, hyp_len={result['hyp_len']}, "
          f"ref_len={result['ref_len']})")
    return result


if __name__ == "__main__":
    main()
