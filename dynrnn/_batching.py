"""Minibatches of variable-length sequences with few distinct shapes.

A compiled step is compiled once per shape signature, so a loop that pads each batch to its
own longest sequence compiles again for almost every batch. Grouping sequences of similar
length and rounding the padded length up to a multiple keeps the number of shapes small:

    for idx in dy.length_buckets([len(s) for s in data], batch_size=32, rng=rng):
        tokens, lengths = dy.pad_batch([data[i] for i in idx], batch_size=32)   # (T, 32), (32,)
        trainer.step(loss, tokens, lengths)

`bucket_lengths` picks, for a given number of shapes, the padded lengths that waste the
least (`pad_batch(..., buckets=)` pads to them). `benchmarks/compile_cost.py` measures what
each saves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def pow2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, n - 1).bit_length()


def reuse_size(sizes: set, n: int, factor: int = 4) -> int:
    """The size to pad `n` items to, given `sizes`, the sizes a kernel has already been
    compiled for (updated here): the smallest of them from b = the power of two ≥ n up to
    `factor`·b, else b. A small call then runs on a larger call's kernel instead of
    compiling its own — where a call costs its dispatch rather than its rows (graph-mode
    groups, sparse row updates), about half the sizes are never compiled."""
    b = pow2(n)
    fit = [s for s in sizes if b <= s <= factor * b]
    if fit:
        return min(fit)
    sizes.add(b)
    return b


def padded_length(n: int, multiple: int = 8) -> int:
    """`n` rounded up to a multiple of `multiple` (at least one multiple)."""
    _check_positive("padded_length", "multiple", multiple)
    return multiple * max(1, math.ceil(n / multiple))


def pad_batch(sequences: Sequence[Any], *, batch_size: int | None = None, multiple: int | None = None,
              buckets: Sequence[int] | None = None, pad: Any = 0, dtype: Any = None,
              time_major: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Stacks sequences (each `(n,)` or `(n, *feature)`) into one padded array.

    Returns `(batch, lengths)`: `batch` is `(T, B, *feature)` (`(B, T, *feature)` with
    `time_major=False`), where T is the longest length rounded up to `multiple` (default 8),
    or to the smallest of `buckets` (e.g. from `bucket_lengths`) that holds it; B is
    `batch_size` (default: the number of sequences; extra rows have length 0), and
    `lengths` is `(B,)` int32 — what `transduce(..., lengths=)` and the losses take.

    Raises:
      ValueError: no sequences, more sequences than `batch_size`, mismatched features, or a
        sequence longer than the largest bucket.
    """
    if len(sequences) == 0:
        raise ValueError("pad_batch: no sequences given.")
    if multiple is not None and buckets is not None:
        raise ValueError("pad_batch: give either multiple or buckets, not both.")
    if buckets is not None:
        buckets = sorted(_check_lengths("pad_batch", "buckets", buckets).tolist())
    arrays = [np.asarray(s) if dtype is None else np.asarray(s, dtype=dtype) for s in sequences]
    rows = len(arrays) if batch_size is None else batch_size
    if rows < len(arrays):
        raise ValueError(f"pad_batch: {len(arrays)} sequences do not fit in batch_size={batch_size}.")
    feature = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[1:] != feature:
            raise ValueError(f"pad_batch: sequence {i} has shape {a.shape}; expected (length, *{feature}) like "
                             f"sequence 0.")
    lengths = np.zeros(rows, np.int32)
    lengths[:len(arrays)] = [len(a) for a in arrays]
    longest = int(lengths.max())
    if buckets is None:
        T = padded_length(longest, 8 if multiple is None else multiple)
    elif longest > buckets[-1]:
        raise ValueError(f"pad_batch: the longest sequence (length {longest}) is longer than the largest bucket "
                         f"({buckets[-1]}); buckets given: {buckets}.")
    else:
        T = buckets[int(np.searchsorted(buckets, longest))]
    out = np.full((rows, T) + feature, pad, dtype=np.result_type(*arrays))
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return (np.swapaxes(out, 0, 1) if time_major else out), lengths


def length_buckets(lengths: Sequence[int], batch_size: int, *, rng: np.random.Generator | None = None,
                   drop_last: bool = False) -> list[np.ndarray]:
    """Indices of the examples, grouped into batches of similar length.

    Sorts by length (ties broken at random when `rng` is given, so batches differ between
    epochs), cuts into batches of `batch_size` and, with `rng`, shuffles the batch order.
    The last batch may be smaller unless `drop_last`.
    """
    _check_positive("length_buckets", "batch_size", batch_size)
    lens = np.asarray(lengths)
    if lens.ndim != 1:
        raise ValueError(f"length_buckets: lengths must be one number per example; given shape {lens.shape}.")
    if lens.size and (lens.dtype.kind not in "iu" or (lens < 0).any()):
        raise ValueError(f"length_buckets: lengths must be non-negative integers; given {lens.tolist()[:10]}.")
    ties = rng.permutation(len(lens)) if rng is not None else np.arange(len(lens))
    order = ties[np.argsort(lens[ties], kind="stable")]
    out = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and out and len(out[-1]) < batch_size:
        out.pop()
    if rng is not None:
        rng.shuffle(out)
    return out


def bucket_lengths(lengths: Sequence[int], n_buckets: int, *, weights: Sequence[float] | None = None) -> list[int]:
    """The padded lengths to compile for: at most `n_buckets` of them, chosen so that padding
    each length up to the smallest bucket that holds it wastes the least.

    `lengths` are what will be padded — for minibatches, each batch's longest sequence, with
    `weights` its number of rows (default 1 each), so the total padded size
    Σ weight · bucket(length) is minimised exactly (dynamic programming over the distinct
    lengths). The largest bucket is the longest length. Pass the result to
    `pad_batch(..., buckets=)`: as many compiled shapes as rounding to a multiple gives, with
    less padding.
    """
    _check_positive("bucket_lengths", "n_buckets", n_buckets)
    lens = _check_lengths("bucket_lengths", "lengths", lengths)
    w = np.ones(len(lens)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != lens.shape or (w < 0).any():
        raise ValueError(f"bucket_lengths: weights must be one non-negative number per length; given shape "
                         f"{w.shape} for {len(lens)} lengths.")
    values, index = np.unique(lens, return_inverse=True)
    m = len(values)
    below = np.cumsum(np.bincount(index, weights=w, minlength=m))  # weight of the lengths <= values[j]
    cost = below * values  # least padded size of the lengths <= values[j], with one bucket, at values[j]
    earlier = np.tril(np.ones((m, m), bool), -1)  # [j, i]: i < j
    parents = []  # per extra bucket: the bucket before the one at values[j], or -1 (no gain from it)
    for _ in range(1, min(n_buckets, m)):
        total = np.where(earlier, cost[None, :] + (below[:, None] - below[None, :]) * values[:, None], np.inf)
        i = np.argmin(total, axis=1)
        best = total[np.arange(m), i]
        better = best < cost
        parents.append(np.where(better, i, -1))
        cost = np.where(better, best, cost)
    out, j = [int(values[-1])], m - 1
    for parent in reversed(parents):
        if parent[j] >= 0:
            j = int(parent[j])
            out.append(int(values[j]))
    return sorted(out)


def _check_lengths(where: str, name: str, values: Any) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{where}: no {name} given." if a.size == 0 else
                         f"{where}: {name} must be a list of integers; given shape {a.shape}.")
    if a.dtype.kind not in "iu" or (a < 1).any():
        raise ValueError(f"{where}: {name} must be positive integers; given {a.tolist()[:10]}.")
    return a.astype(np.int64)


def _check_positive(where: str, name: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer; given {value!r}.")
