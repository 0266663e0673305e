"""Sequence losses and regularisers over transduced minibatches (Torch rnn's
SequencerCriterion, d2l's masked softmax cross-entropy, Krueger & Memisevic's norm
stabiliser), and the usual conversions of a summed negative log-likelihood."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from ._errors import fmt_shape, refuse_expression


def _mask(where: str, T: int, batch_shape: tuple, lengths: Any) -> jax.Array | None:
    """(time, batch): is step t inside sequence b? Concrete lengths must be integers in
    [0, T]; traced ones (under jit) cannot be checked and act as if clamped to [0, T]."""
    if lengths is None:
        return None
    if not isinstance(lengths, Tracer):
        a = np.asarray(lengths)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{where}: lengths must be integers; given dtype {a.dtype}.")
        if a.size and (a.min() < 0 or a.max() > T):
            raise ValueError(f"{where}: lengths must lie in [0, {T}] (the time axis has {T} steps); given min "
                             f"{a.min()}, max {a.max()}.")
    elif not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise TypeError(f"{where}: lengths must be integers; given dtype {lengths.dtype}.")
    lengths = jnp.asarray(lengths)
    if batch_shape == () or lengths.shape != batch_shape:
        raise ValueError(f"{where}: lengths has shape {fmt_shape(lengths.shape)}; expected {fmt_shape(batch_shape)}, "
                         f"one length per sequence of a (time, batch, ...) input.")
    return jnp.arange(T)[:, None] < lengths[None, :]  # (time, batch)


def _as_array(where: str, arg: str, x: Any) -> jax.Array:
    if isinstance(x, jax.Array):
        return x
    refuse_expression(where, arg, x)
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where}: {arg} must be an array; given {type(x).__name__} that cannot be converted "
                        f"({e}).") from None


def softmax_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """−log softmax(logits)[target] over the last axis: `(..., classes)`, `(...)` → `(...)`.

    Written plainly and left to XLA's fusion. A hand-written derivative rule ((softmax −
    onehot)·g, without the log_softmax buffer or the scatter) was 8% faster alone but 3–8%
    slower inside the rnnlm training step (fusion changed around it), so it was dropped.
    """
    return -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), targets[..., None], axis=-1)[..., 0]


def sequence_cross_entropy(logits: jax.Array, targets: jax.Array, lengths: Any = None, *,
                           reduction: str = "sum") -> jax.Array:
    """Softmax cross-entropy at every step of a (padded) sequence minibatch.

    Args:
      logits: `(time, batch, classes)` or `(time, classes)`.
      targets: integer class ids, `(time, batch)` or `(time,)`.
      lengths: optional `(batch,)`; steps at or past a sequence's length count for nothing.
      reduction: 'sum' (total over counted steps — DyNet's `esum` of per-step losses),
        'mean' (per counted step), or 'none' (`(time, batch)`, zeros past the ends).
    """
    where = "sequence_cross_entropy"
    logits, targets = _as_array(where, "logits", logits), _as_array(where, "targets", targets)
    if logits.ndim not in (2, 3) or targets.shape != logits.shape[:-1]:
        raise ValueError(f"{where}: logits {fmt_shape(logits.shape)} and targets {fmt_shape(targets.shape)} must be "
                         f"(time, [batch,] classes) and (time, [batch])")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"{where}: logits must be floating; given dtype {logits.dtype}.")
    if not jnp.issubdtype(targets.dtype, jnp.integer):
        raise TypeError(f"{where}: targets must be integer class ids; given dtype {targets.dtype}.")
    if reduction not in ("sum", "mean", "none"):
        raise ValueError(f"{where}: reduction must be 'sum', 'mean' or 'none'; given {reduction!r}.")
    mask = _mask(where, logits.shape[0], logits.shape[1:-1], lengths)
    n_classes = logits.shape[-1]
    valid = (targets >= 0) & (targets < n_classes)
    if not isinstance(targets, Tracer) and not (mask is not None and isinstance(mask, Tracer)):
        counted = np.asarray(valid) | (False if mask is None else ~np.asarray(mask))
        if not counted.all():
            bad = np.asarray(targets)[~counted]
            raise ValueError(f"{where}: targets must be class ids in [0, {n_classes - 1}] (logits have {n_classes} "
                             f"classes) at every counted step; given {bad[:5].tolist()}.")
    # Under jit an out-of-range target cannot raise: its step's loss is NaN instead (never a
    # wrong class), so Trainer.step refuses the update with NonFiniteError.
    nll = softmax_cross_entropy(logits, jnp.clip(targets, 0, n_classes - 1))
    nll = jnp.where(valid, nll, jnp.nan)
    if mask is not None:
        nll = jnp.where(mask, nll, 0.0)
    if reduction == "none":
        return nll
    total = jnp.sum(nll)
    if reduction == "sum":
        return total
    count = nll.size if mask is None else jnp.sum(mask).astype(total.dtype)
    return total / count


def norm_stabilizer(hs: jax.Array, lengths: Any = None, *, beta: float = 1.0) -> jax.Array:
    """Krueger & Memisevic (2016): β · mean over t of (‖h_t‖₂ − ‖h_{t−1}‖₂)², over the
    successive hidden states `hs` (`(time, [batch,] hidden)`), averaged over the batch;
    with `lengths`, only pairs inside each sequence count."""
    norms = jnp.linalg.norm(hs, axis=-1)  # (time, [batch])
    sq = jnp.square(norms[1:] - norms[:-1])
    mask = _mask("norm_stabilizer", hs.shape[0], hs.shape[1:-1], lengths)
    if mask is None:
        return beta * jnp.mean(sq)
    pairs = mask[1:] & mask[:-1]
    per_seq = jnp.sum(jnp.where(pairs, sq, 0.0), axis=0) / jnp.maximum(jnp.sum(pairs, axis=0), 1).astype(sq.dtype)
    return beta * jnp.mean(per_seq)


def perplexity(total_nll: float, count: int) -> float:
    """exp(total negative log-likelihood (nats) / number of predicted tokens)."""
    return math.exp(float(total_nll) / count)


def bits_per_char(total_nll: float, count: int) -> float:
    """Total negative log-likelihood in nats → bits per predicted character."""
    return float(total_nll) / count / math.log(2)
