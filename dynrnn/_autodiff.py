"""Gradients with respect to a whole ParameterCollection, DyNet style.

DyNet: `renew_cg(); loss = f(...); loss.value(); loss.backward()`. Here the user's `f`
is traced once per argument shape signature with every parameter bound to an argument
(`pc.bind`), differentiated by `jax.value_and_grad`, and compiled by `jax.jit`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ._params import CONFIG_VERSION, ParameterCollection, _Param


class _Static:
    """A non-array argument carried as a static (hashable) part of the compiled signature."""

    __slots__ = ("obj", "_hash")

    def __init__(self, obj: Any):
        self.obj = obj
        try:
            self._hash = hash((type(obj), obj))
        except TypeError:  # unhashable (a dict of Parameters, a builder with state): identity
            self._hash = id(obj)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, _Static):
            return False
        if self.obj is other.obj:
            return True
        try:
            return type(self.obj) is type(other.obj) and bool(self.obj == other.obj)
        except (TypeError, ValueError):  # `==` of arrays: ambiguous truth value; of odd objects: refused
            return False


def _is_dynamic(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, float, int, complex)) and not isinstance(x, bool)


def split_args(args: tuple) -> tuple[list, Any]:
    """Array leaves become traced arguments; everything else (strings, builders,
    Parameters, dicts of them) becomes part of the static signature."""
    leaves, treedef = jax.tree_util.tree_flatten(args, is_leaf=lambda x: isinstance(x, _Param))
    dynamic, static = [], []
    for leaf in leaves:
        if _is_dynamic(leaf):
            dynamic.append(leaf)
            static.append(None)
        else:
            static.append(_Static(leaf))
    # builder configuration read while tracing (dropout) is part of the signature too
    return dynamic, (treedef, tuple(static), CONFIG_VERSION[0])


def join_args(dynamic: list, signature: Any) -> tuple:
    treedef, static, _ = signature
    it = iter(dynamic)
    leaves = [next(it) if s is None else s.obj for s in static]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def bound_loss(loss_fn: Callable, pc: ParameterCollection, has_aux: bool) -> Callable:
    """`(values, key_index, dynamic_args, signature) -> loss` (or (loss, aux)), pure in values."""

    def pure(values, key_index, dynamic, signature):
        key = jax.random.fold_in(jax.random.key(pc.seed), key_index)
        with pc.bind(values), pc.key_scope(key):
            out = loss_fn(*join_args(dynamic, signature))
        loss = out[0] if has_aux else out
        if not (hasattr(loss, "shape") and loss.shape == ()):
            raise TypeError(f"value_and_grad: the loss function must return a scalar"
                f"{' (as (loss, aux))' if has_aux else ''}; "
                            f"it returned {type(loss).__name__} of shape {getattr(loss, 'shape', None)}.")
        return out

    return pure


def _collections(where: str, pc: Any) -> tuple[ParameterCollection, ...]:
    pcs = tuple(pc) if isinstance(pc, (list, tuple)) else (pc,)
    if not pcs or not all(isinstance(c, ParameterCollection) for c in pcs):
        raise TypeError(f"{where}: pc must be a ParameterCollection or a list of them; given {pc!r}.")
    return pcs


def jit(fun: Callable, pc: Any) -> Callable:
    """`jax.jit` for code that reads dynrnn parameters: every parameter of `pc` (a
    collection or a list of them) is an *argument* of the compiled function, so it sees the
    values of the latest update — `jax.jit` would compile the values of its first call in
    as constants, and dynrnn refuses that (`StaleParameterError`).

    Arguments are handled as by `value_and_grad`: arrays and numbers (at any depth of lists,
    tuples, dicts and `RNNState`s) are traced; anything else (strings, None, builders) is
    part of the static signature. Compiles once per signature; dropout masks are fresh on
    every call (the key is an argument too).

    Example:
      >>> pc = dy.ParameterCollection(seed=0)
      >>> lstm = dy.LSTMBuilder(1, 3, 4, pc)
      >>> step = dy.jit(lambda s, x: s.add_input(x), pc)
      >>> step(lstm.initial_state(), jnp.ones(3)).output().shape
      (4,)
    """
    pcs = _collections("dynrnn.jit", pc)
    if not callable(fun):
        raise TypeError(f"dynrnn.jit: fun must be callable; given {type(fun).__name__}.")

    def pure(values, key_index, dynamic, signature):
        args, kwargs = join_args(dynamic, signature)
        key = jax.random.fold_in(jax.random.key(pcs[0].seed), key_index)
        with contextlib.ExitStack() as stack:
            for c, v in zip(pcs, values):
                stack.enter_context(c.bind(v))
            stack.enter_context(pcs[0].key_scope(key))
            return fun(*args, **kwargs)

    compiled = jax.jit(pure, static_argnums=(3,))

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        dynamic, signature = split_args((args, kwargs))
        return compiled(tuple(current_values(c) for c in pcs), next_key_index(pcs[0]), dynamic, signature)

    return wrapped


def value_and_grad(loss_fn: Callable, pc: ParameterCollection, *, jit: bool = True,
                   has_aux: bool = False) -> Callable:
    """Returns `f(*args) -> (loss, grads)`: `loss_fn(*args)` and its gradient with respect to
    every parameter of `pc`, as `{parameter name: gradient}` (the shape of
    `pc.parameter_values()`).

    Args:
      loss_fn: computes a scalar loss the DyNet way — parameters used as arrays, builders
        and states as usual. Arrays and Python numbers in the arguments (at any depth of
        lists, tuples and dicts) are traced, as under `jax.jit`; anything else (strings,
        None, builders, Parameters) is part of the static signature.
      pc: the collection to differentiate with respect to.
      jit: compile (default). Compiles once per shape signature of the array arguments
        (and per value of the static ones), so a loop over sentences of recurring lengths
        compiles once per length. With `jit=False` nothing is compiled as a whole: the
        loss is traced and differentiated op by op on every call — for models whose
        structure differs with every example (trees, per-sentence graphs), where a
        compile per example would cost more than it saves. It is far slower per call
        (benchmarks/char_lm.py). In both modes values are abstract inside the loss:
        branch on them with `jnp.where` / `lax.cond`, not `if float(x)`.
      has_aux: `loss_fn` returns `(loss, aux)`; then `f` returns `((loss, aux), grads)`.

    Example:
      >>> pc = dy.ParameterCollection(seed=0)
      >>> W = pc.add_parameters((2, 3))
      >>> loss, grads = dy.value_and_grad(lambda x: jnp.sum((W @ x) ** 2), pc)(jnp.ones(3))
      >>> sorted(grads), grads["/_0"].shape
      (['/_0'], (2, 3))
    """
    pure = bound_loss(loss_fn, pc, has_aux)
    vg = jax.value_and_grad(pure, has_aux=has_aux)
    if jit:
        vg = jax.jit(vg, static_argnums=(3,))

    @functools.wraps(loss_fn)
    def wrapped(*args):
        return vg(*call_inputs(pc, args))

    return wrapped


def current_values(pc: ParameterCollection) -> dict[str, jax.Array]:
    """`{name: value}` of every parameter of `pc` (bound values inside `pc.bind`)."""
    return {p.name(): p.value for p in pc.all_parameters()}


def call_inputs(pc: ParameterCollection, args: tuple) -> tuple:
    """The arguments of a compiled loss or training step: every parameter's value, this
    call's dropout-key index, the traced arguments and the static signature."""
    dynamic, signature = split_args(args)
    return current_values(pc), next_key_index(pc), dynamic, signature


def next_key_index(pc: ParameterCollection) -> int:
    """A fresh integer for this call's dropout key (folded into the seed inside the step)."""
    return pc.keys.advance()
