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
import numbers
from collections.abc import Iterator

import jax
import numpy as np

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


# The program's seed, once `set_random_seed` has been called: (times called, seed, collections
# seeded from it since).
_SEEDING: list = [0, None, 0]


def set_random_seed(seed: int) -> None:
    """Seeds the program's randomness, as DyNet's random seed does: the keys that
    `dy.dropout`, `dy.noise` and friends draw outside training steps (arrays and graph
    mode alike: the same seed gives the same masks), and the initial values of the
    `ParameterCollection`s made afterwards without a seed of their own (the k-th gets a
    seed derived from (seed, k))."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"set_random_seed: seed must be an int; given {seed!r}.")
    _GLOBAL.seed, _GLOBAL.counter = int(seed), 0
    _SEEDING[:] = [_SEEDING[0] + 1, int(seed), 0]


def seeding() -> tuple[int, int | None]:
    """(how many times `set_random_seed` has been called, the last seed or None)."""
    return _SEEDING[0], _SEEDING[1]


def collection_seed() -> int | None:
    """The seed for a `ParameterCollection` made without one: derived from the program's
    seed and a count when `set_random_seed` was called, else None (a fresh one)."""
    if _SEEDING[1] is None:
        return None
    _SEEDING[2] += 1
    return int(np.random.SeedSequence([_SEEDING[1] % 2**32, _SEEDING[2]]).generate_state(1)[0] % 2**31)


def reset_random_seed(seed: int) -> None:
    """DyNet's name for `set_random_seed` (it reseeds the random number generator)."""
    set_random_seed(seed)
