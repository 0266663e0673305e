"""DyNet's softmax builders: `StandardSoftmaxBuilder` and `ClassFactoredSoftmaxBuilder`.

Written with the public vocabulary (`dynrnn.graph._api`), so they build graph nodes on
expressions and compute arrays inside compiled code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._params import ParameterCollection
from . import _api as dy


class SoftmaxBuilder:
    """DyNet's base class of the softmax builders: `neg_log_softmax(rep, class)`,
    `sample(rep)`, `full_log_distribution(rep)`, `full_logits(rep)`, `param_collection()`."""


class StandardSoftmaxBuilder(SoftmaxBuilder):
    """A full softmax over `num_classes`: p(c | rep) = softmax(W·rep + b)[c].

    Args:
      rep_dim: size of the representation vector.
      num_classes: number of classes.
      pc: the owning collection; bias: whether to add the bias b.
    """

    def __init__(self, rep_dim: int, num_classes: int, pc: ParameterCollection, bias: bool = True):
        self._pc = pc.add_subcollection("standard-softmax-builder")
        self.rep_dim, self.num_classes = int(rep_dim), int(num_classes)
        self.W = self._pc.add_parameters((self.num_classes, self.rep_dim))
        self.b = self._pc.add_parameters((self.num_classes,), init=0.0) if bias else None

    def param_collection(self) -> ParameterCollection:
        return self._pc

    def _params(self, update: bool) -> tuple:
        W = dy.parameter(self.W) if update else dy.const_parameter(self.W)
        b = None if self.b is None else (dy.parameter(self.b) if update else dy.const_parameter(self.b))
        return W, b

    def full_logits(self, rep: Any, update: bool = True) -> Any:
        W, b = self._params(update)
        return W * rep if b is None else dy.affine_transform([b, W, rep])

    def full_log_distribution(self, rep: Any, update: bool = True) -> Any:
        return dy.log_softmax(self.full_logits(rep, update))

    def neg_log_softmax(self, rep: Any, classidx: int, update: bool = True) -> Any:
        """−log p(classidx | rep): dims (1,)."""
        return dy.pickneglogsoftmax(self.full_logits(rep, update), classidx)

    def neg_log_softmax_batch(self, rep: Any, classidxs: Sequence[int], update: bool = True) -> Any:
        return dy.pickneglogsoftmax_batch(self.full_logits(rep, update), classidxs)

    def sample(self, rep: Any) -> int:
        """A class drawn from p(· | rep)."""
        p = np.asarray(dy.softmax(self.full_logits(rep, False)).npvalue(), np.float64).ravel()
        return int(np.random.choice(len(p), p=p / p.sum()))


class ClassFactoredSoftmaxBuilder(SoftmaxBuilder):
    """p(w | rep) = p(class(w) | rep) · p(w | class(w), rep), each a softmax (Goodman 2001).

    Args:
      rep_dim: size of the representation vector.
      cluster_file: DyNet's format, one "CLASS WORD" pair per line (whitespace-separated).
      word_dict: word → id for every word in the file (ids as the caller uses them).
      pc: the owning collection; bias: whether each softmax has a bias.
    """

    def __init__(self, rep_dim: int, cluster_file: str, word_dict: Mapping[str, int], pc: ParameterCollection,
                 bias: bool = True):
        where = "ClassFactoredSoftmaxBuilder"
        self._pc = pc.add_subcollection("class-factored-softmax-builder")
        classes: dict[str, list[int]] = {}
        with open(cluster_file) as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) < 2:
                    raise ValueError(f"{where}: line {n} of {cluster_file!r} is {line.strip()!r}; expected "
                                     f"'CLASS WORD'.")
                if parts[1] not in word_dict:
                    raise KeyError(f"{where}: word {parts[1]!r} (line {n}) is not in word_dict.")
                classes.setdefault(parts[0], []).append(int(word_dict[parts[1]]))
        self._class_of: dict[int, tuple[int, int]] = {}
        self._members: list[list[int]] = list(classes.values())
        for c, words in enumerate(self._members):
            for k, w in enumerate(words):
                self._class_of[w] = (c, k)
        self.r2c = self._pc.add_parameters((len(self._members), rep_dim))
        self.cbias = self._pc.add_parameters((len(self._members),), init=0.0) if bias else None
        # per cluster (not a singleton) its words' matrix, then their biases: DyNet's order,
        # so that parameters_list() and the names _2, _3, ... mean what they mean in DyNet
        self.rc2w: list = []
        self.rc2wbias: list = []
        for ws in self._members:
            many = len(ws) > 1
            self.rc2w.append(self._pc.add_parameters((len(ws), rep_dim)) if many else None)
            self.rc2wbias.append(self._pc.add_parameters((len(ws),), init=0.0) if bias and many else None)

    def param_collection(self) -> ParameterCollection:
        return self._pc

    @staticmethod
    def _logits(W: Any, b: Any, rep: Any, update: bool) -> Any:
        We = dy.parameter(W) if update else dy.const_parameter(W)
        if b is None:
            return We * rep
        be = dy.parameter(b) if update else dy.const_parameter(b)
        return dy.affine_transform([be, We, rep])

    def class_log_distribution(self, rep: Any, update: bool = True) -> Any:
        return dy.log_softmax(self._logits(self.r2c, self.cbias, rep, update))

    def neg_log_softmax(self, rep: Any, wordidx: int, update: bool = True) -> Any:
        """−log p(wordidx | rep): dims (1,)."""
        if wordidx not in self._class_of:
            raise KeyError(f"ClassFactoredSoftmaxBuilder.neg_log_softmax: word id {wordidx} is in no class of "
                           f"the cluster file.")
        c, k = self._class_of[wordidx]
        nll = dy.pickneglogsoftmax(self._logits(self.r2c, self.cbias, rep, update), c)
        if self.rc2w[c] is not None:
            nll = nll + dy.pickneglogsoftmax(self._logits(self.rc2w[c], self.rc2wbias[c], rep, update), k)
        return nll

    def full_log_distribution(self, rep: Any, update: bool = True) -> Any:
        """log p(w | rep) for every word id of the cluster file, ordered by id."""
        cls = self.class_log_distribution(rep, update).npvalue()
        out = {}
        for c, words in enumerate(self._members):
            if len(words) == 1:
                out[words[0]] = cls[c]
                continue
            within = dy.log_softmax(self._logits(self.rc2w[c], self.rc2wbias[c], rep, update)).npvalue()
            for k, w in enumerate(words):
                out[w] = cls[c] + within[k]
        return dy.inputVector([out[w] for w in sorted(out)])

    def sample(self, rep: Any) -> int:
        p = np.exp(np.asarray(self.full_log_distribution(rep, False).npvalue(), np.float64))
        ids = sorted(self._class_of)
        return int(ids[np.random.choice(len(p), p=p / p.sum())])
