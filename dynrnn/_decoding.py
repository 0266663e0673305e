"""Incremental decoding: greedy and beam search over immutable states.

Every function takes a *step function* `step(state, token) -> (state, log_probs)` written
with any builder, e.g. ::

    def step(state, token):
        state = state.add_input(E[token])
        return state, jax.nn.log_softmax(R * state.output() + b)

* `greedy_decode` and `beam_search` run it eagerly, one hypothesis at a time. Because an
  `RNNState` is immutable, a beam is just a list of (score, state, tokens): branching
  copies nothing and never disturbs a sibling.
* `beam_search_batched` runs the same search for a batch of B inputs as one `lax.while_loop`
  (call it inside `jax.jit`): the states carry beam × batch rows, `state.reorder(parents)`
  moves every hypothesis onto its parent's state after each top-k. The step function gets
  `(B*K,)` tokens and returns `(B*K, vocab)` log-probabilities.

The search (identical in both): candidates are every live hypothesis extended by every
token, ranked by total log-probability; a hypothesis that emits `eos` is finished and
stays in the beam with its score, and the search stops when all K hypotheses in the beam
are finished or after `max_len` tokens. Finally the beam is sorted by the length-normalised
score `score / length ** length_penalty` (length counts the `eos`; `length_penalty=0`:
raw scores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import check_int, check_real
from ._params import fresh_trace

StepFn = Callable[[Any, Any], tuple[Any, Any]]


class Hypothesis(NamedTuple):
    """One decoded sequence: `tokens` (ending with eos if `finished`), the sum of their
    log-probabilities `score`, the length-normalised `normalized` score, and the decoder
    `state` after the last token (eager search only)."""

    tokens: list
    score: float
    normalized: float
    finished: bool
    state: Any = None


def _normalized(score: float, length: int, length_penalty: float) -> float:
    return score / max(length, 1) ** length_penalty


def _check(where: str, beam_size: int, max_len: int, length_penalty: float = 0.0) -> None:
    check_int(where, "beam_size", beam_size, minimum=1)
    check_int(where, "max_len", max_len, minimum=1)
    check_real(where, "length_penalty", length_penalty)


def greedy_decode(step: StepFn, state: Any, start: int, eos: int, max_len: int) -> Hypothesis:
    """The most probable token at every step, until `eos` or `max_len` tokens."""
    _check("greedy_decode", 1, max_len)
    tokens, score, token = [], 0.0, start
    for _ in range(max_len):
        state, logp = step(state, token)
        logp = np.asarray(logp)
        token = int(np.argmax(logp))
        score += float(logp[token])
        tokens.append(token)
        if token == eos:
            break
    return Hypothesis(tokens, score, _normalized(score, len(tokens), 1.0), tokens[-1] == eos, state)


def beam_search(step: StepFn, state: Any, start: int, eos: int, beam_size: int, max_len: int, *,
                length_penalty: float = 1.0, n_best: int | None = None) -> list[Hypothesis]:
    """Beam search, one hypothesis at a time (eager). Returns the `n_best` (default: all K)
    hypotheses, best first by normalised score."""
    _check("beam_search", beam_size, max_len, length_penalty)
    if n_best is not None:
        check_int("beam_search", "n_best", n_best, minimum=1)
        if n_best > beam_size:
            raise ValueError(f"beam_search: n_best must be at most beam_size ({beam_size}); given {n_best}.")
    K = beam_size
    # slot k: (score, state, tokens, finished); empty slots have score -inf
    beam = [(0.0, state, [], False)] + [(-np.inf, None, [], False)] * (K - 1)
    last = [start] * K
    for _ in range(max_len):
        if all(fin for s, _, _, fin in beam if s > -np.inf):
            break
        rows, new_states = [], {}
        for k, (s, st, _toks, fin) in enumerate(beam):
            if s == -np.inf or fin:
                rows.append(None)
                continue
            new_states[k], logp = step(st, last[k])
            rows.append(np.asarray(logp, np.float32))
        vocab = next(r.shape[-1] for r in rows if r is not None) if new_states else eos + 1
        cand = np.full((K, vocab), -np.inf, np.float32)
        for k, (s, _, _, fin) in enumerate(beam):
            if fin:
                cand[k, eos] = s                      # a finished hypothesis stays, unchanged
            elif rows[k] is not None:
                cand[k] = np.float32(s) + rows[k]
        # best K by score; ties go to the lower (parent, token), as lax.top_k does
        flat = cand.reshape(-1)
        order = np.argsort(-flat, kind="stable")[:K]
        new_beam, new_last = [], []
        for i in order:
            if flat[i] == -np.inf:
                break
            k, v = divmod(int(i), vocab)
            _, st, toks, fin = beam[k]
            new_beam.append((float(flat[i]), st if fin else new_states[k], toks if fin else toks + [v],
                             fin or v == eos))
            new_last.append(v)
        beam = new_beam + [(-np.inf, None, [], False)] * (K - len(new_beam))
        last = new_last + [eos] * (K - len(new_last))
    hyps = [Hypothesis(toks, s, _normalized(s, len(toks), length_penalty), fin, st)
            for s, st, toks, fin in beam if s > -np.inf]
    hyps.sort(key=lambda h: -h.normalized)
    return hyps[:K if n_best is None else n_best]


def beam_search_batched(step: StepFn, state: Any, start: Any, eos: int, beam_size: int, max_len: int, *,
                        length_penalty: float = 1.0) -> dict:
    """Beam search for a batch of B inputs as one `lax.while_loop` (use inside `jax.jit`).

    Args:
      step: `(state, tokens (B*K,)) -> (state, log_probs (B*K, vocab))`, traceable.
      state: the decoder's initial state with batch B (an `RNNState`, or any pytree whose
        leaves have a leading batch axis); it is tiled to B*K rows (row b*K + k is
        hypothesis k of input b).
      start: the first input token, an int or `(B,)` ints.

    Returns: a dict of arrays, hypotheses sorted best first by normalised score within
    each input: `tokens (B, K, max_len)` (-1 after a hypothesis ends), `lengths (B, K)`,
    `scores (B, K)`, `normalized (B, K)`, `finished (B, K)`.
    """
    _check("beam_search_batched", beam_size, max_len, length_penalty)
    K = beam_size
    B = _batch_size(state)
    tile = jnp.repeat(jnp.arange(B), K)
    state = _reorder(state, tile)
    last = jnp.broadcast_to(jnp.asarray(start, jnp.int32).reshape(-1, 1), (B, K))
    neg = jnp.float32(-jnp.inf)
    scores = jnp.where(jnp.arange(K)[None, :] == 0, 0.0, neg) * jnp.ones((B, 1), jnp.float32)
    finished = jnp.zeros((B, K), bool)
    lengths = jnp.zeros((B, K), jnp.int32)
    tokens = jnp.full((B, K, max_len), -1, jnp.int32)

    def live(c):
        t, _, _, scores, finished, _, _ = c
        return (t < max_len) & ~jnp.all(finished | (scores == neg))

    def body(c):
        t, state, last, scores, finished, lengths, tokens = c
        state, logp = step(state, last.reshape(-1))
        V = logp.shape[-1]
        logp = logp.reshape(B, K, V).astype(jnp.float32)
        carried = jnp.where(jnp.arange(V) == eos, scores[..., None], neg)  # a finished hypothesis stays
        cand = jnp.where(finished[..., None], carried, scores[..., None] + logp)
        top, idx = jax.lax.top_k(cand.reshape(B, K * V), K)
        parent, token = idx // V, (idx % V).astype(jnp.int32)
        was_done = jnp.take_along_axis(finished, parent, axis=1)
        lengths = jnp.take_along_axis(lengths, parent, axis=1) + (~was_done).astype(jnp.int32)
        tokens = jnp.take_along_axis(tokens, parent[..., None], axis=1)
        tokens = tokens.at[:, :, t].set(jnp.where(was_done, -1, token))
        state = _reorder(state, (jnp.arange(B)[:, None] * K + parent).reshape(-1))
        return t + 1, state, token, top, was_done | (token == eos), lengths, tokens

    c = (jnp.int32(0), state, last, scores, finished, lengths, tokens)
    with fresh_trace():  # `body` is a new function on every call: nothing stale is cached
        _, _, _, scores, finished, lengths, tokens = jax.lax.while_loop(live, body, c)
    normalized = scores / jnp.maximum(lengths, 1).astype(jnp.float32) ** length_penalty
    order = jnp.argsort(-normalized, axis=1, stable=True)
    pick = lambda a: jnp.take_along_axis(a, order, axis=1)  # noqa: E731
    return {"tokens": jnp.take_along_axis(tokens, order[..., None], axis=1), "lengths": pick(lengths),
            "scores": pick(scores), "normalized": pick(normalized), "finished": pick(finished)}


def _batch_size(state: Any) -> int:
    if hasattr(state, "batch_size") and not callable(state.batch_size):
        b = state.batch_size
        if b is None:
            raise ValueError("beam_search_batched: the state is unbatched; give a batch of B initial states "
                             "(batch, hidden_dim), B >= 1.")
        return int(b)
    leaves = jax.tree_util.tree_leaves(state)
    if not leaves:
        raise ValueError("beam_search_batched: the state has no arrays to take the batch size from.")
    return int(leaves[0].shape[0])


def _reorder(state: Any, idx: jax.Array) -> Any:
    """Rows `idx` of every batched part of the state (RNNState/RNNStack know how)."""
    if hasattr(state, "reorder"):
        return state.reorder(idx)
    return jax.tree_util.tree_map(lambda a: a.reorder(idx) if hasattr(a, "reorder") else a[idx], state,
                                  is_leaf=lambda x: hasattr(x, "reorder"))
