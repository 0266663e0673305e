"""Minibatches of variable-length sequences with few distinct shapes.

A compiled step is compiled once per shape signature, so a loop that pads each batch to its
own longest sequence compiles again for almost every batch. Grouping sequences of similar
length and rounding the padded length up to a multiple keeps the number of shapes small:

    for idx in dy.length_buckets([len(s) for s in data], batch_size=32, rng=rng):
        tokens, lengths = dy.pad_batch([data[i] for i in idx], batch_size=32)   # (T, 32), (32,)
        trainer.step(loss, tokens, lengths)

`benchmarks/compile_cost.py` measures what this saves.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def padded_length(n: int, multiple: int = 8) -> int:
    """`n` rounded up to a multiple of `multiple` (at least one multiple)."""
    _check_positive("padded_length", "multiple", multiple)
    return multiple * max(1, math.ceil(n / multiple))


def pad_batch(sequences: Sequence[Any], *, batch_size: int | None = None, multiple: int = 8, pad: Any = 0,
              dtype: Any = None, time_major: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Stacks sequences (each `(n,)` or `(n, *feature)`) into one padded array.

    Returns `(batch, lengths)`: `batch` is `(T, B, *feature)` (`(B, T, *feature)` with
    `time_major=False`), where T is the longest length rounded up to `multiple` and B is
    `batch_size` (default: the number of sequences; extra rows have length 0), and
    `lengths` is `(B,)` int32 — what `transduce(..., lengths=)` and the losses take.

    Raises:
      ValueError: no sequences, more sequences than `batch_size`, or mismatched features.
    """
    if len(sequences) == 0:
        raise ValueError("pad_batch: no sequences given.")
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
    T = padded_length(int(lengths.max()), multiple)
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
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"length_buckets: lengths must be one number per example; given shape {lengths.shape}.")
    ties = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    order = ties[np.argsort(lengths[ties], kind="stable")]
    out = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and out and len(out[-1]) < batch_size:
        out.pop()
    if rng is not None:
        rng.shuffle(out)
    return out


def _check_positive(where: str, name: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer; given {value!r}.")
