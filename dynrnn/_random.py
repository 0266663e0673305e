"""Where PRNG keys come from.

A `KeyStream` is a seed and a counter: each `next()` folds the next count into the seed's
key, so a stream gives the same keys in the same order on every run. Inside `scope(key)` —
a compiled training step, whose key is an argument — keys derive from that key instead,
so that every call of the step draws fresh dropout masks without recompiling.

Each root `ParameterCollection` owns a stream (dropout keys of its builders). Functions not
tied to a collection (`dy.dropout`, `dy.noise`) draw from `managed_key()`: the innermost
scope of any collection, else a global stream seeded by `set_random_seed`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

# the scopes of every stream, innermost last (for managed_key)
_OPEN_SCOPES: list[list] = []


class KeyStream:
    """A seeded, counted source of PRNG keys (see the module docstring)."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.counter = 0
        self._scopes: list[list] = []

    def next(self) -> jax.Array:
        """A fresh key: from the innermost scope, else the seed folded with the next count."""
        if self._scopes:
            return _from_scope(self._scopes[-1])
        return jax.random.fold_in(jax.random.key(self.seed), self.advance())

    def advance(self) -> int:
        """The next count (a compiled step folds it into the seed's key itself)."""
        self.counter += 1
        return self.counter

    @contextlib.contextmanager
    def scope(self, key: jax.Array) -> Iterator[None]:
        """Inside the block, `next()` (and `managed_key()`) derive keys from `key`, which
        may be a tracer."""
        scope = [key, 0]
        self._scopes.append(scope)
        _OPEN_SCOPES.append(scope)
        try:
            yield
        finally:
            self._scopes.remove(scope)
            _OPEN_SCOPES.remove(scope)


def _from_scope(scope: list) -> jax.Array:
    scope[1] += 1
    return jax.random.fold_in(scope[0], scope[1])


_GLOBAL = KeyStream(0)


def managed_key() -> jax.Array:
    """A fresh PRNG key: from the innermost scope of any collection (inside a compiled
    training step), else from the global seed (`dynrnn.set_random_seed`)."""
    if _OPEN_SCOPES:
        return _from_scope(_OPEN_SCOPES[-1])
    return _GLOBAL.next()


def set_random_seed(seed: int) -> None:
    """Seeds the keys that `dy.dropout`, `dy.noise` and friends draw outside training steps."""
    _GLOBAL.seed, _GLOBAL.counter = int(seed), 0
