"""The stack-LSTM dependency parser of Dyer et al. (2015), compiled and batched.

Architecture (Dyer et al. 2015, "Transition-Based Dependency Parsing with Stack Long
Short-Term Memory"): arc-standard transitions (examples/arc_standard.py) and three
LSTMs — the *stack* (pushes with `add_input`, pops back to an earlier state), the
*buffer* (fed right to left, so its top summarises the words still to read) and the
*action history*. Words enter as token vectors `ReLU(V·[word; POS] + b)` (POS: the UPOS tag,
or with `--tags upos+xpos` the (UPOS, XPOS) pair); a reduced
subtree is composed as `tanh(C·[head; dep; rel] + c)` and pushed in place of its two
parts. The parser state `p = ReLU(W·[s; b; a] + d)` scores the legal actions with a
softmax. Singleton training words are replaced by UNK with probability 1/2. Beyond the
paper, `Config.dropout` drops token vectors and the parser state in training (the larger
`ACCURACY` configuration uses 0.3), and Adam's step is halved after `patience` epochs in a
row that do not improve dev LAS, never below 1/16 of its start (`DevSchedule`).

Two ways to run the same model (same parameters, same loss — tests/test_parser.py):

* `sentence_loss_eager` / `parse_eager`: one sentence at a time in Python, exactly as a
  DyNet user writes it (`add_input` to push, `prev()` to pop). Clear, and slow.
* `batch_loss`: B sentences in one compiled function, planned from the oracle. In
  training every transition is known in advance, so every stack push is known: the pushes
  form a tree of stack states, computed by depth (`transduce_tree`: as many sequential
  steps as the deepest stack, not one per transition), after the compositions, computed
  level by level of their DAG. The buffer and action-history LSTMs read inputs known in
  advance, so they run as `transduce` scans; the parser-state MLP and softmax run once
  over all transitions. `lockstep_loss` is the same loss the direct way (a `dy.RNNStack`
  stepped over all transitions with per-sentence masks), kept as the reference.
* `parse`: no oracle, so B sentences in lockstep (`RNNStack` in a `lax.scan`, greedy).
  Sentence lengths are bucketed so only a few shapes are ever compiled.

    python examples/stack_lstm_parser.py --minutes 40 --save parser.npz     # train, evaluate, save
    python examples/stack_lstm_parser.py --load parser.npz --parse in.conllu --output out.conllu

The data paths default to ../shared/data/ud-english-ewt/ (UD English EWT, CC BY-SA 4.0);
the treebank is read from there and never copied.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import dynrnn as dy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arc_standard as ts  # noqa: E402
import conllu  # noqa: E402

EWT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "ud-english-ewt")
PAD, UNK = "<pad>", "<unk>"
NEG = -1e9  # the logit of an illegal action


# ---------------------------------------------------------------------------------------
# vocabulary and configuration
# ---------------------------------------------------------------------------------------


TAG_COLUMNS = ("upos", "upos+xpos")


def sentence_tags(s: conllu.Sentence, columns: str = "upos") -> list[str]:
    """The POS tag each word is embedded with: its UPOS, or with columns="upos+xpos" the pair
    "UPOS|XPOS" (EWT's XPOS are Penn Treebank tags: VBD/VBN/VBZ, POS, WDT, ... that UPOS
    merges)."""
    if columns == "upos":
        return list(s.upos)
    if columns == "upos+xpos":
        if len(s.xpos) != len(s.upos):
            raise ValueError(f"tags 'upos+xpos': the sentence has no XPOS column ({len(s.xpos)} XPOS for "
                             f"{len(s.upos)} words)")
        return [f"{u}|{x}" for u, x in zip(s.upos, s.xpos)]
    raise ValueError(f"tag_columns must be one of {TAG_COLUMNS}; given {columns!r}.")


@dataclasses.dataclass
class Vocab:
    """Words (index 0 = padding, 1 = UNK), POS tags (`sentence_tags` of `tag_columns`) and
    relation labels from a treebank."""

    words: list[str]
    tags: list[str]
    rels: list[str]
    singletons: list[int]
    tag_columns: str = "upos"

    @classmethod
    def build(cls, sentences: Sequence[conllu.Sentence], tag_columns: str = "upos") -> Vocab:
        counts = collections.Counter(w for s in sentences for w in s.words)
        words = [PAD, UNK] + sorted(counts)
        index = {w: i for i, w in enumerate(words)}
        tags = [PAD, UNK] + sorted({t for s in sentences for t in sentence_tags(s, tag_columns)})
        rels = sorted({r for s in sentences for r in s.rels})
        return cls(words, tags, rels, sorted(index[w] for w, c in counts.items() if c == 1), tag_columns)

    def __post_init__(self):
        if self.tag_columns not in TAG_COLUMNS:
            raise ValueError(f"Vocab: tag_columns must be one of {TAG_COLUMNS}; given {self.tag_columns!r}.")
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.rel_index = {r: i for i, r in enumerate(self.rels)}

    def encode(self, s: conllu.Sentence) -> tuple[np.ndarray, np.ndarray]:
        """(word ids, tag ids) for words 1..n, at positions 1..n (position 0 is ROOT)."""
        w = np.array([0] + [self.word_index.get(x, 1) for x in s.words], np.int32)
        t = np.array([0] + [self.tag_index.get(x, 1) for x in sentence_tags(s, self.tag_columns)], np.int32)
        return w, t

    def to_json(self) -> dict:
        return {"words": self.words, "tags": self.tags, "rels": self.rels, "singletons": self.singletons,
                "tag_columns": self.tag_columns}


@dataclasses.dataclass(frozen=True)
class Config:
    """Dimensions; the defaults are the original lstm-parser's (and the speed benchmark's)."""

    word_dim: int = 32
    pos_dim: int = 12
    token_dim: int = 60
    hidden: int = 64
    layers: int = 2
    action_dim: int = 16
    rel_dim: int = 10
    state_dim: int = 64
    cell: str = "coupled"  # "coupled" (the paper's) or "lstm"
    unk_prob: float = 0.5
    dropout: float = 0.0   # on token vectors and the parser state, in training only (not in the paper)


ACCURACY = Config(word_dim=100, pos_dim=32, token_dim=128, hidden=200, action_dim=32, rel_dim=32, state_dim=200,
                  cell="lstm", dropout=0.3)

BUILDERS = {"coupled": dy.CoupledLSTMBuilder, "lstm": dy.LSTMBuilder}


# ---------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------


def _compose_rows(params, rows, rel):
    """A reduced subtree's vector tanh(C·[head; dep; rel] + c) for rows (..., 2, D) of heads
    and dependents and their label vectors `rel`: `Parser.compose`, and one level of
    compositions as `dy.level_scan` runs it (params = (C, c), passed explicitly)."""
    C, c = params
    return jnp.tanh(jnp.concatenate([rows[..., 0, :], rows[..., 1, :], rel], axis=-1) @ C.T + c)


class Parser:
    def __init__(self, vocab: Vocab, config: Config = Config(), seed: int = 0):
        if config.cell not in BUILDERS:
            raise ValueError(f"Parser: cell must be one of {sorted(BUILDERS)}; given {config.cell!r}.")
        self.vocab, self.config = vocab, config
        c, R = config, len(vocab.rels)
        self.num_rels, self.num_actions = R, ts.num_actions(R)
        self.pc = pc = dy.ParameterCollection(seed=seed)
        self.E_word = pc.add_lookup_parameters((len(vocab.words), c.word_dim), name="E_word")
        self.E_pos = pc.add_lookup_parameters((len(vocab.tags), c.pos_dim), name="E_pos")
        self.E_rel = pc.add_lookup_parameters((R, c.rel_dim), name="E_rel")
        self.E_act = pc.add_lookup_parameters((self.num_actions, c.action_dim), name="E_act")
        self.V = pc.add_parameters((c.token_dim, c.word_dim + c.pos_dim), name="V")
        self.v = pc.add_parameters((c.token_dim,), init=0.0, name="v")
        self.root = pc.add_parameters((c.token_dim,), name="root")        # ROOT's token vector
        self.buffer_guard = pc.add_parameters((c.token_dim,), name="buffer_guard")
        self.action_start = pc.add_parameters((c.action_dim,), name="action_start")
        Builder = BUILDERS[c.cell]
        self.stack_rnn = Builder(c.layers, c.token_dim, c.hidden, pc)
        self.buffer_rnn = Builder(c.layers, c.token_dim, c.hidden, pc)
        self.action_rnn = Builder(c.layers, c.action_dim, c.hidden, pc)
        self.C = pc.add_parameters((c.token_dim, 2 * c.token_dim + c.rel_dim), name="C")
        self.c = pc.add_parameters((c.token_dim,), init=0.0, name="c")
        self.W = pc.add_parameters((c.state_dim, 3 * c.hidden), name="W")
        self.d = pc.add_parameters((c.state_dim,), init=0.0, name="d")
        self.R = pc.add_parameters((self.num_actions, c.state_dim), name="R")
        self.r = pc.add_parameters((self.num_actions,), init=0.0, name="r")
        self._decode = jax.jit(self._bound_parse)
        self._losses: dict[int, Any] = {}

    def loss(self, capacity: int):
        """`lockstep_loss` for stacks of this capacity, as one function object per capacity
        (so that `trainer.step` compiles once per capacity and shape)."""
        if capacity not in self._losses:
            self._losses[capacity] = functools.partial(self.lockstep_loss, capacity=capacity)
        return self._losses[capacity]

    # -- pieces shared by every way of running the parser (batched: leading axes) ------
    def tokens(self, words, tags):
        """Token vectors ReLU(V·[word; POS] + v)."""
        return dy.rectify(self.V * dy.concatenate([self.E_word.batch(words), self.E_pos.batch(tags)]) + self.v)

    def compose(self, head, dep, rel):
        """A reduced subtree's vector: tanh(C·[head; dep; rel] + c)."""
        return _compose_rows((self.C.expr(), self.c.expr()), jnp.stack([head, dep], axis=-2), self.E_rel[rel])

    def logits(self, s, b, a, training: bool = False):
        """Action scores from the stack, buffer and action-history summaries."""
        p = dy.rectify(self.W * dy.concatenate([s, b, a]) + self.d)
        if training:
            p = dy.dropout(p, self.config.dropout)
        return self.R * p + self.r

    def legal(self, depth, buffer_left):
        """Legal actions; `depth` counts ROOT (the stack's first push)."""
        depth, buffer_left = depth[..., None], buffer_left[..., None]
        is_left = jnp.arange(self.num_actions) % 2 == 1
        shift = jnp.arange(self.num_actions) == ts.SHIFT
        arc = jnp.where(is_left, depth >= 3, (depth >= 3) | ((depth == 2) & (buffer_left == 0)))
        return jnp.where(shift, buffer_left > 0, arc)

    # -- DyNet style: one sentence, Python control flow, RNNState chains -----------------
    def sentence_loss_eager(self, words, tags, actions):
        """The sum of -log p(oracle action) over one sentence's transitions."""
        return self._run_eager(words, tags, actions)[0]

    def parse_eager(self, s: conllu.Sentence) -> tuple[list[int], list[str]]:
        words, tags = self.vocab.encode(s)
        heads, rels = self._run_eager(words, tags, None)[1:]
        return heads, [self.vocab.rels[r] for r in rels]

    def _run_eager(self, words, tags, actions):
        n = len(words) - 1
        training = actions is not None
        tok = self.tokens(jnp.asarray(words), jnp.asarray(tags))
        if training:
            tok = dy.dropout(tok, self.config.dropout)
        buffer = self.buffer_rnn.initial_state().add_input(self.buffer_guard)
        for i in range(n, 0, -1):  # right to left: the top is the next word
            buffer = buffer.add_input(tok[i])
        stack = self.stack_rnn.initial_state().add_input(self.root)
        items = [(0, self.root)]  # (word index, vector) of each stack element
        history = self.action_rnn.initial_state().add_input(self.action_start)
        heads, rels, loss, nxt = [0] * n, [0] * n, 0.0, 1
        for t in range(2 * n):
            scores = self.logits(stack.output(), buffer.output(), history.output(), training)
            scores = jnp.where(self.legal(jnp.asarray(len(items)), jnp.asarray(n + 1 - nxt)), scores, NEG)
            if actions is None:
                a = int(jnp.argmax(scores))  # greedy: a host round-trip per transition
            else:
                a = int(actions[t])
                loss = loss - dy.log_softmax(scores)[a]
            if a == ts.SHIFT:
                stack = stack.add_input(tok[nxt])
                items.append((nxt, tok[nxt]))
                buffer = buffer.prev()
                nxt += 1
            else:
                (i1, v1), (i0, v0) = items[-2], items[-1]
                (h, hv), (d, dv) = ((i0, v0), (i1, v1)) if ts.kind(a) == "left" else ((i1, v1), (i0, v0))
                heads[d - 1], rels[d - 1] = h, ts.rel_of(a)
                composed = self.compose(hv, dv, jnp.asarray(ts.rel_of(a)))
                stack = stack.prev().prev().add_input(composed)
                items[-2:] = [(h, composed)]
            history = history.add_input(self.E_act[a])
        return loss, heads, rels

    # -- compiled and batched --------------------------------------------------------
    def _encode_batch(self, words, tags, n, training=False):
        """Token vectors, and the buffer LSTM's output for every buffer position."""
        B, N1 = words.shape
        tok = self.tokens(words, tags)                                     # (B, N+1, D)
        if training:
            tok = dy.dropout(tok, self.config.dropout)
        tok = tok.at[:, 0].set(jnp.broadcast_to(self.root.expr(), (B, tok.shape[-1])))
        # the buffer reads [guard, w_n, ..., w_1]; after j inputs its top is word n+1-j
        j = jnp.arange(N1)[None, :]
        src = jnp.clip(n[:, None] + 1 - j, 0, N1 - 1)
        rev = jnp.take_along_axis(tok, src[..., None], axis=1)
        rev = jnp.where((j == 0)[..., None], self.buffer_guard.expr(), rev)
        buf = self.buffer_rnn.initial_state().transduce(jnp.swapaxes(rev, 0, 1), lengths=n + 1)  # (N+1, B, H)
        return tok, jnp.swapaxes(buf, 0, 1)

    @staticmethod
    def _buffer_top(buf, n, nxt):
        """The buffer summary when `nxt` is the next word (n+1: empty buffer)."""
        return jnp.take_along_axis(buf, (n + 1 - nxt)[:, None, None], axis=1)[:, 0]

    def _transition(self, stack, a, active, shifted):
        """Every sentence's action at once: SHIFT pushes the next token; an arc pops the
        two top elements and pushes their composition. Inactive sentences are unchanged."""
        arc = active & (a != ts.SHIFT)
        is_left = (a % 2 == 1)[:, None]
        s0, s1 = stack.input(0), stack.input(1)
        composed = self.compose(jnp.where(is_left, s0, s1), jnp.where(is_left, s1, s0),
                                jnp.maximum(a - 1, 0) // 2)
        x = jnp.where(arc[:, None], composed, shifted)
        return stack.pop(where=arc).pop(where=arc).push(x, where=active)

    def _initial_stack(self, B, capacity):
        stack = dy.RNNStack(self.stack_rnn.initial_state(), capacity, batch_size=B)
        return stack.push(jnp.broadcast_to(self.root.expr(), (B, self.config.token_dim)))

    def batch_loss(self, words, tags, n, actions, nxt, plan: Plan):
        """Sum over the batch of each sentence's transition losses, divided by the batch size,
        computed from the oracle's structure (`plan`, see `plan_batch`) in few sequential steps:
        token vectors in one product; compositions level by level of their DAG; every stack
        state as one tree of states (`transduce_tree`: one batched step per stack depth);
        the buffer and action-history LSTMs as scans; the parser-state MLP and the softmax
        once over all transitions. The same loss as `lockstep_loss` and the eager version.

        words, tags: (B, N+1) ids (position 0 = ROOT); n: (B,) lengths (0 = padding);
        actions: (B, 2N) oracle actions; nxt: (B, 2N) the next buffer word before each action.
        """
        B, T = actions.shape
        active = jnp.arange(T)[None, :] < 2 * n[:, None]
        tok, buf = self._encode_batch(words, tags, n, training=True)
        D = tok.shape[-1]
        table = jnp.concatenate([tok.reshape(-1, D), jnp.zeros((B * (T // 2) + 1, D), tok.dtype)])

        reads = jnp.stack([plan.comp_head, plan.comp_dep], axis=-1)  # (steps, width, 2)
        table = dy.level_scan(_compose_rows, (self.C.expr(), self.c.expr()), table, reads, plan.comp_rows,
                              self.E_rel.batch(plan.comp_rel), steps=plan.comp_steps)
        pushes = self.stack_rnn.initial_state().transduce_tree(table[plan.push_vec], plan.stack)  # (P, H)
        S = jnp.swapaxes(pushes[plan.top], 0, 1)                                                # (T, B, H)
        hist_in = jnp.concatenate([jnp.broadcast_to(self.action_start.expr(), (1, B, self.config.action_dim)),
                                   self.E_act.batch(actions.T[:-1])])
        A = self.action_rnn.initial_state().transduce(hist_in)                       # (T, B, H)
        Bf = jnp.take_along_axis(buf, jnp.clip(n[:, None] + 1 - nxt, 0, buf.shape[1] - 1)[..., None], axis=1)
        scores = self.logits(S, jnp.swapaxes(Bf, 0, 1), A, training=True)            # (T, B, actions)
        scores = jnp.where(self.legal(plan.depth.T, (n[None, :] + 1 - nxt.T)), scores, NEG)
        logp = jnp.take_along_axis(jax.nn.log_softmax(scores), actions.T[..., None], axis=-1)[..., 0]
        return -jnp.sum(jnp.where(active.T, logp, 0.0)) / B

    def lockstep_loss(self, words, tags, n, actions, nxt, plan: Plan | None = None, capacity: int | None = None):
        """`batch_loss` computed the direct way (the reference, and the speed baseline): the
        stack is a `dy.RNNStack` stepped over all 2N transitions in lockstep (`plan` unused).

        words, tags: (B, N+1) ids (position 0 = ROOT); n: (B,) lengths (0 = padding);
        actions: (B, 2N) oracle actions; nxt: (B, 2N) the next buffer word before each action;
        capacity: the stacks' capacity (default N+1, always enough). The oracle knows each
        sentence's deepest stack, and a tight capacity makes every step cheaper.
        """
        B, T = actions.shape
        active = jnp.arange(T)[None, :] < 2 * n[:, None]
        tok, buf = self._encode_batch(words, tags, n, training=True)
        shifted = jnp.take_along_axis(tok, jnp.clip(nxt, 0, tok.shape[1] - 1)[..., None], axis=1)  # (B, T, D)

        def body(stack, u):
            a, act, x = u
            return self._transition(stack, a, act, x), (stack.output(), stack.depth)

        stack0 = self._initial_stack(B, capacity or tok.shape[1])
        _, (S, depth) = jax.lax.scan(body, stack0, (actions.T, active.T, jnp.swapaxes(shifted, 0, 1)))
        hist_in = jnp.concatenate([jnp.broadcast_to(self.action_start.expr(), (1, B, self.config.action_dim)),
                                   self.E_act.batch(actions.T[:-1])])
        A = self.action_rnn.initial_state().transduce(hist_in)                       # (T, B, H)
        Bf = jnp.take_along_axis(buf, jnp.clip(n[:, None] + 1 - nxt, 0, buf.shape[1] - 1)[..., None], axis=1)
        scores = self.logits(S, jnp.swapaxes(Bf, 0, 1), A, training=True)            # (T, B, actions)
        scores = jnp.where(self.legal(depth, (n[None, :] + 1 - nxt.T)), scores, NEG)
        logp = jnp.take_along_axis(jax.nn.log_softmax(scores), actions.T[..., None], axis=-1)[..., 0]
        return -jnp.sum(jnp.where(active.T, logp, 0.0)) / B

    def _bound_parse(self, values, words, tags, n):
        with self.pc.bind(values):
            return self._parse(words, tags, n)

    def _parse(self, words, tags, n):
        B, N1 = words.shape
        rows = jnp.arange(B)
        tok, buf = self._encode_batch(words, tags, n)
        history = self.action_rnn.initial_state().add_input(
            jnp.broadcast_to(self.action_start.expr(), (B, self.config.action_dim)))
        ids = jnp.zeros((B, N1 + 1), jnp.int32)  # the word index of each stack slot (slot 1 = ROOT)
        carry = (self._initial_stack(B, N1), ids, history, jnp.ones(B, jnp.int32),
                 jnp.zeros((B, N1), jnp.int32), jnp.zeros((B, N1), jnp.int32))

        def body(carry, _):
            stack, ids, history, nxt, heads, rels = carry
            depth = stack.depth
            active = ~((depth == 1) & (nxt > n))
            scores = self.logits(stack.output(), self._buffer_top(buf, n, nxt), history.output())
            a = jnp.argmax(jnp.where(self.legal(depth, n + 1 - nxt), scores, NEG), axis=-1).astype(jnp.int32)
            shift, arc = active & (a == ts.SHIFT), active & (a != ts.SHIFT)
            top, below = ids[rows, depth], ids[rows, depth - 1]
            left = a % 2 == 1
            head, dep = jnp.where(left, top, below), jnp.where(left, below, top)
            dep = jnp.where(arc, dep, 0)  # inactive: write into the unused slot 0
            heads = heads.at[rows, dep].set(jnp.where(arc, head, heads[rows, dep]))
            rels = rels.at[rows, dep].set(jnp.where(arc, (a - 1) // 2, rels[rows, dep]))
            slot = jnp.where(arc, depth - 1, jnp.where(shift, depth + 1, 0))
            ids = ids.at[rows, slot].set(jnp.where(arc, head, jnp.where(shift, nxt, ids[rows, slot])))
            stack = self._transition(stack, a, active, tok[rows, jnp.minimum(nxt, N1 - 1)])
            stepped = history.add_input(self.E_act.batch(a))
            history = jax.tree_util.tree_map(lambda new, old: jnp.where(active[:, None], new, old), stepped, history)
            return (stack, ids, history, nxt + shift.astype(jnp.int32), heads, rels), None

        (_, _, _, _, heads, rels), _ = jax.lax.scan(body, carry, None, length=2 * (N1 - 1))
        return heads[:, 1:], rels[:, 1:]

    def parse(self, sentences: Sequence[conllu.Sentence], batch_size: int = 256) -> tuple[list, list]:
        """Greedy parses (heads, relation labels) of CoNLL-U sentences, compiled and batched."""
        values = self.pc.parameter_values()
        heads: list = [None] * len(sentences)
        rels: list = [None] * len(sentences)
        for idx, words, tags, n in batches_for_parsing(self.vocab, sentences, batch_size):
            h, r = map(np.asarray, self._decode(values, words, tags, n))
            for row, k in enumerate(idx):
                m = len(sentences[k])
                heads[k] = h[row, :m].tolist()
                rels[k] = [self.vocab.rels[x] for x in r[row, :m]]
        return heads, rels

    # -- saving ----------------------------------------------------------------------
    def save(self, path: str) -> None:
        self.pc.save(path, metadata={"model": "stack_lstm_parser", "vocab": self.vocab.to_json(),
                                     "config": dataclasses.asdict(self.config)})

    @classmethod
    def load(cls, path: str) -> Parser:
        meta = dy.load_metadata(path)
        if not isinstance(meta, dict) or meta.get("model") != "stack_lstm_parser":
            raise ValueError(f"{path!r} is not a saved stack_lstm_parser model.")
        parser = cls(Vocab(**meta["vocab"]), Config(**meta["config"]))
        parser.pc.populate(path)
        return parser


# ---------------------------------------------------------------------------------------
# data: oracle sequences and bucketed batches
# ---------------------------------------------------------------------------------------

BUCKETS = (8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 128, 160, 192, 256)


def bucket(n: int) -> int:
    """The padded length for an n-word sentence: few distinct shapes, little padding."""
    for b in BUCKETS:
        if n <= b:
            return b
    return 64 * math.ceil(n / 64)


@dataclasses.dataclass
class Structure:
    """What the oracle's transitions make of one sentence, fixed before any forward pass.

    Vectors are numbered locally: 0..n the token vectors (0 = ROOT), n+1+m composition m.
    Composition m is tanh(C·[v(head[m]); v(dep[m]); E_rel[rel[m]]] + c) and sits at `level[m]`
    (1 + the higher of its parts' levels; tokens are level 0). Push p feeds vector `push_vec[p]`
    to the stack LSTM on top of push `push_parent[p]` (-1: the empty stack) — the pushes form
    a tree of states. Before transition t the stack's top is push `top[t]` and it holds
    `depth[t]` elements (ROOT counted)."""

    head: np.ndarray
    dep: np.ndarray
    rel: np.ndarray
    level: np.ndarray
    push_vec: np.ndarray
    push_parent: np.ndarray
    top: np.ndarray
    depth: np.ndarray


def structure(actions: Sequence[int], n: int) -> Structure:
    head, dep, rel, level = [], [], [], []
    push_vec, push_parent = [0], [-1]           # ROOT's push, on the empty stack
    items = [(0, 0)]                            # (push, vector) of each stack element
    vec_level = [0] * (n + 1)
    top, depth, nxt = [], [], 1
    for a in actions:
        top.append(items[-1][0])
        depth.append(len(items))
        if a == ts.SHIFT:
            push_vec.append(nxt)
            push_parent.append(items[-1][0])
            items.append((len(push_vec) - 1, nxt))
            nxt += 1
            continue
        (_, v1), (_, v0) = items[-2], items[-1]
        h, d = (v0, v1) if ts.kind(a) == "left" else (v1, v0)
        head.append(h)
        dep.append(d)
        rel.append(ts.rel_of(a))
        level.append(1 + max(vec_level[v0], vec_level[v1]))
        vec_level.append(level[-1])
        v = n + len(head)
        push_vec.append(v)
        push_parent.append(items[-3][0] if len(items) >= 3 else -1)
        items[-2:] = [(len(push_vec) - 1, v)]
    arrays = [np.asarray(x, np.int32) for x in (head, dep, rel, level, push_vec, push_parent, top, depth)]
    return Structure(*arrays)


@dataclasses.dataclass
class Example:
    words: np.ndarray
    tags: np.ndarray
    actions: np.ndarray
    nxt: np.ndarray
    structure: Structure

    @property
    def n(self) -> int:
        return len(self.words) - 1

    @property
    def max_depth(self) -> int:
        """The deepest the stack gets (ROOT counted) along the oracle's transitions."""
        depth = 1 + np.cumsum(np.where(self.actions == ts.SHIFT, 1, -1))
        return int(max(1, depth.max()))


def oracle_example(vocab: Vocab, s: conllu.Sentence) -> Example | None:
    """The sentence with its oracle transitions, or None if it is non-projective."""
    rels = [vocab.rel_index.get(r, -1) for r in s.rels]
    if min(rels) < 0 or min(s.heads) < 0:
        return None
    actions = ts.oracle(s.heads, rels)
    if actions is None:
        return None
    nxt, k = [], 1
    for a in actions:
        nxt.append(k)
        k += a == ts.SHIFT
    words, tags = vocab.encode(s)
    return Example(words, tags, np.array(actions, np.int32), np.array(nxt, np.int32), structure(actions, len(s)))


class Plan(NamedTuple):
    """A batch's structure for `Parser.batch_loss`, planned on the host from the oracle.

    The vector table has a row per token (row b·(N+1)+i: sentence b's word i), then a row
    per composition (up to B·N), then a scratch row that padding writes to. Compositions run
    in `comp_*` steps of equal width — a step holds compositions of one level, a wide level
    takes several steps; the first `comp_steps` of them hold compositions (the rest are
    padding, which the scan skips); the pushes of every sentence are one tree of stack states
    (`stack`), reading table rows `push_vec`; `top`, `depth`: per transition (B, 2N), the
    push at the stack's top and the stack's size before it."""

    comp_rows: np.ndarray
    comp_head: np.ndarray
    comp_dep: np.ndarray
    comp_rel: np.ndarray
    comp_steps: np.ndarray
    push_vec: np.ndarray
    stack: dy.TreeSchedule
    top: np.ndarray
    depth: np.ndarray


def _steps_bucket(k: int) -> int:
    """Composition steps planned for k needed: a power of two, at least 4 (the scan skips
    the padding steps, so coarse buckets cost compilations saved, not time)."""
    return max(4, 1 << (k - 1).bit_length())


def plan_batch(group: Sequence[Example], B: int, N: int) -> Plan:
    """The `Plan` of sentences `group` (at most B, each at most N words) padded to (B, N).
    Its shapes depend on (B, N) and on two step counts rounded up to powers of two."""
    tokens, comps = B * (N + 1), B * N
    scratch = tokens + comps
    heads, deps, rels, levels, push_vec, push_parent = [], [], [], [], [], []
    top = np.zeros((B, 2 * N), np.int32)
    depth = np.ones((B, 2 * N), np.int32)
    n_comp = n_push = 0
    for row, e in enumerate(group):
        st, n = e.structure, e.n

        def table_row(v, row=row, n=n, base=n_comp):
            return np.where(v <= n, row * (N + 1) + v, tokens + base + v - (n + 1))

        heads.append(table_row(st.head))
        deps.append(table_row(st.dep))
        rels.append(st.rel)
        levels.append(st.level)
        push_vec.append(table_row(st.push_vec))
        push_parent.append(np.where(st.push_parent < 0, -1, st.push_parent + n_push))
        top[row, :2 * n], depth[row, :2 * n] = st.top + n_push, st.depth
        n_comp += len(st.head)
        n_push += len(st.push_vec)
    chunks, steps, width = dy.pack_levels(np.concatenate(levels), width=_width(comps), steps=_steps_bucket)
    comp_rows = np.full((steps, width), scratch, np.int32)
    comp_head, comp_dep, comp_rel = (np.zeros((steps, width), np.int32) for _ in range(3))
    head, dep, rel = np.concatenate(heads), np.concatenate(deps), np.concatenate(rels)
    for k, c in enumerate(chunks):
        comp_rows[k, :len(c)] = tokens + c
        comp_head[k, :len(c)], comp_dep[k, :len(c)], comp_rel[k, :len(c)] = head[c], dep[c], rel[c]
    size = B * (2 * N + 1)
    parents = np.concatenate(push_parent)
    vec = np.zeros(size, np.int32)
    vec[:n_push] = np.concatenate(push_vec)
    w_stack = _width(size)
    stack = dy.tree_schedule(parents, size=size, width=w_stack, steps=_steps_bucket)
    return Plan(comp_rows, comp_head, comp_dep, comp_rel, np.int32(len(chunks)), vec, stack, top, depth)


def _width(rows: int) -> int:
    """Nodes per step for a table of `rows` nodes: 1/24 of them, a multiple of 8. Measured
    on EWT batches (B = 32 and 256), forward and gradient: widths of 1/4 (one step per
    level, mostly padding) to 1/32 of the rows gave 916–1,657 sentences/s; narrow steps,
    more of them, waste less work on padding, which on a CPU costs more than the steps."""
    return 8 * math.ceil(rows / 192)


def training_batches(vocab: Vocab, examples: Sequence[Example], batch_size: int, rng: np.random.Generator,
                     unk_prob: float = 0.0, shuffle: bool = True, plans: bool = True,
                     max_words: int | None = None):
    """Batches of similar-length sentences: ((words, tags, n, actions, nxt, plan), capacity):
    arrays padded to the bucket length and to `batch_size` rows (padding rows have n = 0),
    the batch's `Plan` (None with `plans=False`: the lockstep loss does not read it), and
    the stack capacity the lockstep loss needs.

    max_words: a budget of padded word slots per batch (rows × bucket length). A batch of
    long sentences that would exceed it takes half as many rows (again, down to 8): large
    batches then pad the longest sentences less (EWT, 2,048 sentences, batch 256: 48% of
    the slots are words with fixed rows, 74% with a budget of 256 × 32)."""
    order = sorted(range(len(examples)), key=lambda i: (examples[i].n, rng.random() if shuffle else 0))
    singletons = np.zeros(len(vocab.words), bool)
    singletons[vocab.singletons] = True
    out = []
    start = 0
    while start < len(order):
        rows = batch_size
        while max_words and rows > 8 and rows * bucket(_longest(examples, order, start, rows)) > max_words:
            rows //= 2
        group = [examples[i] for i in order[start:start + rows]]
        start += rows
        N = bucket(max(e.n for e in group))
        words = np.zeros((rows, N + 1), np.int32)
        tags = np.zeros((rows, N + 1), np.int32)
        n = np.zeros(rows, np.int32)
        actions = np.zeros((rows, 2 * N), np.int32)
        nxt = np.ones((rows, 2 * N), np.int32)
        for row, e in enumerate(group):
            w = e.words.copy()
            if unk_prob > 0:
                w[singletons[w] & (rng.random(len(w)) < unk_prob)] = 1
            words[row, :len(w)], tags[row, :len(w)], n[row] = w, e.tags, e.n
            actions[row, :len(e.actions)], nxt[row, :len(e.nxt)] = e.actions, e.nxt
        capacity = 8 * math.ceil(max(e.max_depth for e in group) / 8)
        plan = plan_batch(group, rows, N) if plans else None
        out.append(((words, tags, n, actions, nxt, plan), capacity))
    if shuffle:
        rng.shuffle(out)
    return out


def _longest(examples: Sequence[Example], order: list, start: int, rows: int) -> int:
    """The length of the longest of the sorted examples order[start:start + rows]."""
    return examples[order[min(start + rows, len(order)) - 1]].n


def batches_for_parsing(vocab: Vocab, sentences: Sequence[conllu.Sentence], batch_size: int):
    """(sentence indices, words, tags, n) batches of similar lengths for `Parser.parse`."""
    order = sorted(range(len(sentences)), key=lambda k: len(sentences[k]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        N = bucket(max(len(sentences[k]) for k in idx))
        rows = batch_size if len(idx) == batch_size else min(batch_size, 8 * math.ceil(len(idx) / 8))
        words = np.zeros((rows, N + 1), np.int32)
        tags = np.zeros((rows, N + 1), np.int32)
        n = np.zeros(rows, np.int32)
        for row, k in enumerate(idx):
            w, t = vocab.encode(sentences[k])
            words[row, :len(w)], tags[row, :len(t)], n[row] = w, t, len(sentences[k])
        yield idx, words, tags, n


# ---------------------------------------------------------------------------------------
# training and evaluation
# ---------------------------------------------------------------------------------------


def evaluate(parser: Parser, sentences: Sequence[conllu.Sentence]) -> dict:
    heads, rels = parser.parse(sentences)
    return conllu.evaluate(sentences, heads, rels)


class DevSchedule:
    """The step size, driven by dev scores: multiplied by `decay` after `patience` epochs in a
    row without a better score, and never below `initial * floor`. Halving after every epoch
    that is not a new best (patience 1) froze the accuracy run: dev LAS wobbles by ±0.3 from
    epoch to epoch, so the step size was 1/32 of its start by epoch 15 and nothing moved after."""

    def __init__(self, initial: float, decay: float = 0.5, patience: int = 3, floor: float = 1 / 16):
        if not (0 < decay <= 1) or patience < 1 or not (0 < floor <= 1):
            raise ValueError(f"DevSchedule: needs 0 < decay <= 1, patience >= 1 and 0 < floor <= 1; "
                             f"given decay={decay}, patience={patience}, floor={floor}.")
        self.learning_rate, self.minimum = initial, initial * floor
        self.decay, self.patience = decay, patience
        self.best, self.waited = -float("inf"), 0

    def improved(self, score: float) -> bool:
        """Record one epoch's dev score; True when it is the best so far (keep these parameters)."""
        if score > self.best:
            self.best, self.waited = score, 0
            return True
        self.waited += 1
        if self.waited >= self.patience:
            self.learning_rate, self.waited = max(self.learning_rate * self.decay, self.minimum), 0
        return False


class ParameterAverage:
    """An exponential moving average of the parameters (Polyak averaging), used for dev and
    test instead of the last values: after update t, `a = a + (1 - d_t)·(p - a)` with
    `d_t = min(decay, (1 + t) / (10 + t))` (early updates weigh more, so the average does not
    start as the initial parameters). The averaged parameters wobble less from update to
    update than Adam's last ones."""

    def __init__(self, values: dict, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"ParameterAverage: decay must be in (0, 1); given {decay}.")
        self.decay, self.updates = decay, 0
        self.values = {k: jnp.array(v, copy=True) for k, v in values.items()}
        self._step = jax.jit(lambda a, p, d: jax.tree_util.tree_map(lambda x, y: x + (1 - d) * (y - x), a, p),
                             donate_argnums=(0,))

    def update(self, values: dict) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.values = self._step(self.values, values, np.float32(d))

    @contextlib.contextmanager
    def applied(self, pc: dy.ParameterCollection):
        """Inside the block the parameters are the average; afterwards the trained ones."""
        trained = pc.parameter_values()
        pc.set_parameter_values({k: jnp.array(v, copy=True) for k, v in self.values.items()})  # (ours are donated)
        try:
            yield
        finally:
            pc.set_parameter_values(trained)


def train(parser: Parser, train_sents: Sequence[conllu.Sentence], dev_sents: Sequence[conllu.Sentence] = (), *,
          minutes: float | None = 40.0, max_epochs: int = 100, max_updates: int | None = None,
          batch_size: int = 32, learning_rate: float = 1e-3,
          lr_decay: float = 0.5, patience: int = 3, seed: int = 0, loss: str = "auto",
          average: float = 0.0, log=print) -> dict:
    """Adam on projective training sentences, evaluating on dev after each epoch (the step
    size follows `DevSchedule(learning_rate, lr_decay, patience)`); keeps the parameters of
    the best dev LAS. With `average` (a decay, e.g. 0.999), dev scores and the parameters
    kept are those of a `ParameterAverage`. Returns the training history.

    loss: "lockstep" (`lockstep_loss`) or "levels" (`batch_loss`) — the same loss and
    gradients — or "auto": lockstep on a CPU, levels on an accelerator. On a 2-core CPU
    lockstep measured faster (benchmarks/parser_speed.py: B=32, 773 vs 696 sentences/s, 13 vs
    31 compiled shapes); on one H200 GPU levels did (B=256: 9,576 vs 7,207)."""
    if loss not in ("auto", "lockstep", "levels"):
        raise ValueError(f"train: loss must be 'auto', 'lockstep' or 'levels'; given {loss!r}.")
    if loss == "auto":
        loss = "lockstep" if jax.default_backend() == "cpu" else "levels"
    examples = [e for e in (oracle_example(parser.vocab, s) for s in train_sents) if e is not None]
    log(f"training on {len(examples)} projective sentences of {len(train_sents)} "
        f"({len(train_sents) - len(examples)} non-projective left out)")
    trainer = dy.AdamTrainer(parser.pc, learning_rate)
    rng = np.random.default_rng(seed)
    history = {"epochs": [], "sentences_per_second": [], "dev": []}
    schedule = DevSchedule(learning_rate, lr_decay, patience)
    best_values = None
    averaged = ParameterAverage(parser.pc.parameter_values(), average) if average else None
    t_start = time.perf_counter()
    updates = 0

    def out_of_budget() -> bool:  # minutes=None: no time limit (tests budget in updates/epochs)
        return ((minutes is not None and time.perf_counter() - t_start > 60 * minutes)
                or (max_updates is not None and updates >= max_updates))

    for epoch in range(1, max_epochs + 1):
        t0, total, count = time.perf_counter(), 0.0, 0
        for batch, capacity in training_batches(parser.vocab, examples, batch_size, rng, parser.config.unk_prob,
                                                plans=loss == "levels"):
            if loss == "levels":
                total += trainer.step(parser.batch_loss, *batch) * batch_size
            else:
                total += trainer.step(parser.loss(capacity), *batch[:5]) * batch_size
            count += int((batch[2] > 0).sum())
            updates += 1
            if averaged is not None:
                averaged.update(parser.pc.parameter_values())
            if out_of_budget():
                break
        seconds = time.perf_counter() - t0
        entry = {"epoch": epoch, "loss": total / max(count, 1), "seconds": seconds, "sentences": count}
        if dev_sents:
            with averaged.applied(parser.pc) if averaged is not None else contextlib.nullcontext():
                entry["dev"] = evaluate(parser, dev_sents)
                if schedule.improved(entry["dev"]["las"]):
                    best_values = parser.pc.parameter_values()
            trainer.learning_rate = entry["learning_rate"] = schedule.learning_rate
        history["epochs"].append(entry)
        log(f"epoch {epoch}: loss/sentence {entry['loss']:.3f}, {count / seconds:.0f} sentences/s"
            + (f", dev UAS {entry['dev']['uas']:.2f} LAS {entry['dev']['las']:.2f}" if dev_sents else ""))
        if out_of_budget():
            break
    if best_values is not None:
        parser.pc.set_parameter_values(best_values)
    history["train_seconds"] = time.perf_counter() - t_start
    history["updates"] = updates
    return history


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help shows each flag's default, and the description's line breaks."""


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=_HelpFormatter,
                                 epilog=__doc__.split("\n\n", 3)[3])
    ap.add_argument("--train", default=os.path.join(EWT, "en_ewt-ud-train.conllu"), help="training CoNLL-U file")
    ap.add_argument("--dev", default=os.path.join(EWT, "en_ewt-ud-dev.conllu"),
                    help="development CoNLL-U file (model selection)")
    ap.add_argument("--test", default=os.path.join(EWT, "en_ewt-ud-test.conllu"),
                    help="test CoNLL-U file (scored once, at the end)")
    ap.add_argument("--minutes", type=float, default=40.0, help="training time budget")
    ap.add_argument("--epochs", type=int, default=100, help="at most this many epochs")
    ap.add_argument("--batch-size", type=int, default=32, help="sentences per update")
    ap.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    ap.add_argument("--patience", type=int, default=3,
                    help="halve the step size after this many epochs in a row without a better dev LAS")
    ap.add_argument("--dims", choices=["paper", "accuracy"], default="accuracy",
                    help="paper: the original code's sizes (token 60, hidden 64, coupled LSTM); "
                         "accuracy: larger (token 128, hidden 200, LSTM)")
    ap.add_argument("--cell", choices=sorted(BUILDERS), help="override the dims' cell")
    ap.add_argument("--dropout", type=float, help="override the dims' dropout (paper 0, accuracy 0.3)")
    ap.add_argument("--tags", choices=TAG_COLUMNS, default="upos",
                    help="the POS embedding's tag: UPOS, or the (UPOS, XPOS) pair")
    ap.add_argument("--seed", type=int, default=0, help="parameter and shuffling seed")
    ap.add_argument("--average", type=float, default=0.0,
                    help="evaluate and keep an exponential moving average of the parameters with this decay "
                         "(e.g. 0.999; 0: the trained parameters themselves)")
    ap.add_argument("--loss", choices=["auto", "lockstep", "levels"], default="auto",
                    help="how the batched training loss runs the stack: over transitions in lockstep, or planned "
                         "from the oracle as a tree of states by depth (same loss; lockstep measured faster on CPU, "
                         "levels on a GPU; auto picks by the backend)")
    ap.add_argument("--save", help="save the trained model here")
    ap.add_argument("--load", help="load a saved model instead of training")
    ap.add_argument("--parse", help="parse this CoNLL-U file (with --output)")
    ap.add_argument("--output", help="where to write the parsed CoNLL-U")
    ap.add_argument("--report", help="write the scores and history as JSON here")
    args = ap.parse_args(argv)

    result: dict = {}
    if args.load:
        parser = Parser.load(args.load)
    else:
        for path in (args.train, args.dev):
            if not os.path.exists(path):
                raise SystemExit(f"no treebank at {path}: give --train/--dev/--test (UD English EWT CoNLL-U)")
        train_sents, dev_sents = conllu.read_conllu(args.train), conllu.read_conllu(args.dev)
        config = Config() if args.dims == "paper" else ACCURACY
        if args.cell:
            config = dataclasses.replace(config, cell=args.cell)
        if args.dropout is not None:
            config = dataclasses.replace(config, dropout=args.dropout)
        parser = Parser(Vocab.build(train_sents, args.tags), config, seed=args.seed)
        print(f"{config}\n{parser.pc.parameter_count():,} parameters")
        result["history"] = train(parser, train_sents, dev_sents, minutes=args.minutes, max_epochs=args.epochs,
                                  batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
                                  patience=args.patience, loss=args.loss, average=args.average)
        if args.save:
            parser.save(args.save)
            print(f"saved: {args.save}")
    for name, path in (("dev", args.dev), ("test", args.test)):
        if path and os.path.exists(path) and not args.parse:
            t0 = time.perf_counter()
            sents = conllu.read_conllu(path)
            scores = evaluate(parser, sents)
            scores["sentences_per_second"] = len(sents) / (time.perf_counter() - t0)
            result[name] = scores
            print(f"{name}: UAS {scores['uas']:.2f} LAS {scores['las']:.2f} (without punctuation: UAS "
                  f"{scores['uas_no_punct']:.2f} LAS {scores['las_no_punct']:.2f}), {len(sents)} sentences")
    if args.parse:
        sents = conllu.read_conllu(args.parse)
        heads, rels = parser.parse(sents)
        conllu.write_conllu(args.output or "/dev/stdout", sents, heads, rels)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
