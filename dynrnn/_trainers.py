"""Trainers with DyNet's names, defaults and update rules (dynet/training.cc, v2.1).

Each trainer is a thin composition: global-norm clipping (DyNet's default threshold 5),
then a pure `(init, update)` rule below, then `params + update`. `update(grads)` applies
gradients from `dynrnn.value_and_grad`; `step(loss_fn, *args)` does loss, gradients and
update in one compiled call — DyNet's `loss.value(); loss.backward(); trainer.update()`.
An optax `GradientTransformation` works too, through `OptaxTrainer`.
"""

from __future__ import annotations

import functools
import math
import warnings
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._autodiff import bound_loss, call_inputs
from ._batching import reuse_size
from ._distributed import _check_mesh, replicate, replicated
from ._errors import NonFiniteError, check_real, fmt_shape
from ._params import LookupParameters, ParameterCollection
from ._xla import kernel_jit, plumbing_jit

Tree = Any

# Trainer.step keeps at most this many compiled steps (one per loss function and static
# signature), least recently used dropped first, and warns when one line of code has made
# WARN_AFTER_FUNCTIONS different loss functions.
MAX_COMPILED_STEPS = 32
WARN_AFTER_FUNCTIONS = 5
# A sparse update of a lookup table pads its used rows to at least this many.
ROWS_LEAST = 64

# Graph-mode updates (`update()` after `backward()`) return before the device has run them
# (`set_async_updates`): the next graph is built while the backward pass and the update
# run. Measured, DyNet's programs, 600 updates, alternated runs on 2 CPU cores: lstmlm-auto.py
# (16 sentences per graph, a 10k-word softmax) 33.2 / 31.1 -> 28.1 / 28.7 s in all, rnnlm.py
# 15.3 / 13.1 -> 11.3 / 11.7 s; tagger.py and attention.py, whose updates are small, the
# same within noise.
_ASYNC = [True]


def set_async_updates(on: bool) -> None:
    """Whether `Trainer.update()` after `backward()` returns without waiting for the device
    (True, the default; see `Trainer.update`) or waits and raises a refusal at once."""
    _ASYNC[0] = bool(on)


def async_updates() -> bool:
    return _ASYNC[0]


def _refusal(where: str, names: tuple, stats: np.ndarray, lr: float) -> str | None:
    """Why an update with these `stats` (norm, clipped, one finiteness flag per parameter)
    was refused, or None."""
    norm, finite = float(stats[0]), stats[2:]
    if not math.isfinite(norm):
        return (f"{where}: the gradient's L2 norm is {norm}; no parameter was changed. Check the loss for log(0), "
                f"overflow or a bad learning rate.")
    if not finite.all():
        bad = [n for n, ok in zip(names, finite) if not ok]
        return (f"{where}: the update would make {len(bad)} parameter(s) non-finite ({', '.join(bad[:3])}"
                f"{' ...' if len(bad) > 3 else ''}) although the gradient is finite (norm {norm:.3g}): the learning "
                f"rate ({lr:g}) or another hyperparameter is too large. No parameter was changed.")
    return None


def _report_unread(where: str, names: tuple, stats: Any, lr: float) -> None:
    """A refused asynchronous update whose trainer is gone (or the interpreter exits) before
    any call read its verdict: reported as a warning."""
    why = _refusal(where, names, np.asarray(stats), lr)
    if why is not None:
        warnings.warn(f"{why} (reported when the trainer was dropped or at exit: no trainer call came after this "
                      f"update)", RuntimeWarning, stacklevel=1)


class Rule(NamedTuple):
    """A pure update rule: `init(params) -> state`; `update(grads, state, params, lr) ->
    (additive updates, new state)`."""

    init: Callable[[Tree], Tree]
    update: Callable[[Tree, Tree, Tree, jax.Array], tuple[Tree, Tree]]


def _zeros(params: Tree) -> Tree:
    """Zeros shaped like `params`, made on the host (`jnp.zeros_like` would compile a kernel
    per shape) and each a buffer of its own (the update kernels take the state over)."""
    return jax.tree_util.tree_map(lambda p: jax.device_put(np.zeros(p.shape, p.dtype)), params)


_ZEROS: dict = {}


def _rebuild(fresh: Any, old: Any, entry: Callable, leaf: Callable = lambda f, o: f) -> Any:
    """An optimizer state walked alongside an older one (or None): every dict entry becomes
    `entry(name, fresh value, old dict)`, every other leaf `leaf(fresh, old)`; tuples —
    named ones keep their type — are walked element by element."""
    if isinstance(fresh, dict):
        return {k: entry(k, v, old) for k, v in fresh.items()}
    if isinstance(fresh, tuple):
        olds = old if old is not None else (None,) * len(fresh)
        parts = [_rebuild(f, o, entry, leaf) for f, o in zip(fresh, olds)]
        return type(fresh)(*parts) if hasattr(fresh, "_fields") else tuple(parts)
    return leaf(fresh, old)


def _map_named(state: Any, names: frozenset, f: Callable) -> Any:
    """`state` with `f(name, array)` applied to the entries of `names` in its dicts."""
    return _rebuild(state, None, lambda k, v, _: f(k, v) if k in names else v)


def _zip_named(old: Any, new: Any, names: frozenset, f: Callable) -> Any:
    """`new` with the entries of `names` in its dicts replaced by `f(name, old, new)`."""
    return _rebuild(new, old, lambda k, v, o: f(k, o[k], v) if k in names else v)


def _keep_old(old: Any, fresh: Any) -> Any:
    """`fresh` optimizer state with every entry that `old` has taken from `old` (for
    parameters added since it was made); counters and other bare leaves stay `old`'s."""
    return _rebuild(fresh, old, lambda k, v, o: o[k] if k in o else v, leaf=lambda f, o: o)


def _zeros_like(v: jax.Array) -> jax.Array:
    """A cached zero gradient (parameters a graph did not use)."""
    key = (v.shape, v.dtype, getattr(v, "sharding", None))
    z = _ZEROS.get(key)
    if z is None:
        # from the host: `jnp.zeros_like` compiled two kernels per new shape
        z = _ZEROS[key] = jax.device_put(np.zeros(v.shape, v.dtype), getattr(v, "sharding", None))
    return z


def _pad_rows_impl(block: jax.Array, k: int, dtype: Any) -> jax.Array:
    """`block`'s rows and zero rows after them, k in all, as `dtype` (one call: `jnp.pad`
    eagerly cost ~0.14 ms of Python per update)."""
    return jnp.pad(block, ((0, k - block.shape[0]),) + ((0, 0),) * (block.ndim - 1)).astype(dtype)


@functools.cache
def _pad_rows() -> Callable:
    """The compiled `_pad_rows_impl`, made on first use: `plumbing_jit` asks XLA which options
    it takes, which would start JAX's backend when dynrnn is imported."""
    return plumbing_jit(_pad_rows_impl, static_argnums=(1, 2))


def _kept_share(params: dict[str, Any]) -> dict[str, float]:
    """{name: 1 − λ} for the trained parameters under DyNet's weight decay (λ > 0): after the
    update's step they are multiplied by it. Traced arguments of the update kernels, so a new
    λ compiles nothing; a kernel compiles per set of names that decay."""
    return {n: 1.0 - lam for n, p in params.items() if (lam := p.weight_decay()) > 0}


def _accepted(stats: jax.Array) -> jax.Array:
    """Whether an update whose `stats` are (norm, clipped, one finiteness flag per parameter)
    may be committed: a finite norm and every new value finite."""
    return jnp.isfinite(stats[0]) & jnp.all(stats[2:] > 0)


def _map(f: Callable, *trees: Tree) -> Tree:
    return jax.tree_util.tree_map(f, *trees)


def _own(state: Tree) -> Tree:
    """A fresh copy of every array of an optimizer state, so that the update kernels, which
    take the state over (donate it), never free a buffer something else holds (an optax
    state may hold the parameters themselves, or one array twice)."""
    return _map(lambda a: jax.device_put(np.array(a)), state)  # through the host: no kernel to compile


def sgd() -> Rule:
    """p ← p − lr·g."""
    return Rule(lambda p: (), lambda g, s, p, lr: (_map(lambda g: -lr * g, g), s))


def momentum(mom: float) -> Rule:
    """v ← mom·v − lr·g;  p ← p + v."""
    def update(g, v, p, lr):
        v = _map(lambda v, g: mom * v - lr * g, v, g)
        return v, v
    return Rule(_zeros, update)


def adagrad(eps: float) -> Rule:
    """G ← G + g²;  p ← p − lr·g / √(G + eps)."""
    def update(g, G, p, lr):
        G = _map(lambda G, g: G + g * g, G, g)
        return _map(lambda g, G: -lr * g / jnp.sqrt(G + eps), g, G), G
    return Rule(_zeros, update)


class AdadeltaState(NamedTuple):
    """Running averages of squared gradients and of squared updates."""

    sq_grads: Tree
    sq_updates: Tree


class AdamState(NamedTuple):
    """The step count, first and second moments, and (AMSGrad) the largest second moments."""

    t: jax.Array
    m: Tree
    v: Tree
    v_max: Tree


def adadelta(eps: float, rho: float) -> Rule:
    """E[g²] ← ρE[g²] + (1−ρ)g²;  d = −g·√(E[d²] + eps)/√(E[g²] + eps);  E[d²] ← ρE[d²] + (1−ρ)d²;
    p ← p + lr·d (DyNet has no learning rate here: lr defaults to 1)."""
    def update(g, s, p, lr):
        hg, hd = s
        hg = _map(lambda h, g: rho * h + (1 - rho) * g * g, hg, g)
        d = _map(lambda g, hd, hg: -g * jnp.sqrt(hd + eps) / jnp.sqrt(hg + eps), g, hd, hg)
        hd = _map(lambda h, d: rho * h + (1 - rho) * d * d, hd, d)
        return _map(lambda d: lr * d, d), AdadeltaState(hg, hd)
    return Rule(lambda p: AdadeltaState(_zeros(p), _zeros(p)), update)


def rmsprop(eps: float, rho: float) -> Rule:
    """E[g²] ← ρE[g²] + (1−ρ)g²;  p ← p − lr·g / √(E[g²] + eps)."""
    def update(g, h, p, lr):
        h = _map(lambda h, g: rho * h + (1 - rho) * g * g, h, g)
        return _map(lambda g, h: -lr * g / jnp.sqrt(h + eps), g, h), h
    return Rule(_zeros, update)


def adam(beta_1: float, beta_2: float, eps: float, amsgrad: bool = False) -> Rule:
    """m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²  (AMSGrad: v̂ ← max(v̂, v));
    p ← p − lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + eps)  — DyNet's form (eps outside the bias correction)."""
    def init(p):
        return AdamState(jax.device_put(np.zeros((), np.int32)), _zeros(p), _zeros(p), _zeros(p) if amsgrad else ())

    def update(g, s, p, lr):
        t, m, v, vmax = s
        t = t + 1
        m = _map(lambda m, g: beta_1 * m + (1 - beta_1) * g, m, g)
        v = _map(lambda v, g: beta_2 * v + (1 - beta_2) * g * g, v, g)
        denom = v
        if amsgrad:
            vmax = _map(jnp.maximum, vmax, v)
            denom = vmax
        tf = t.astype(jnp.float32)
        lr_t = lr * jnp.sqrt(1 - beta_2**tf) / (1 - beta_1**tf)
        return _map(lambda m, d: -lr_t * m / (jnp.sqrt(d) + eps), m, denom), AdamState(t, m, v, vmax)
    return Rule(init, update)


def _global_norm(tree: Tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves)) if leaves else jnp.float32(0)


class Trainer:
    """The DyNet trainer surface over a pure update rule.

    Args:
      pc: the collection whose parameters are trained (those with `is_updated()`).
      learning_rate: the step size (Adam's `alpha`).
    """

    def __init__(self, pc: ParameterCollection, learning_rate: float, rule: Rule):
        if not isinstance(pc, ParameterCollection):
            raise TypeError(f"{type(self).__name__}: pc must be a ParameterCollection; given {type(pc).__name__}.")
        self._pc = pc
        self._lr = self._check_lr(learning_rate)
        self._rule = rule
        self._clip = 5.0
        self._sparse = True
        self._row_sizes: dict[str, set] = {}  # per lookup table: the sparse-update sizes compiled
        self._state: Any = None
        self._names: tuple[str, ...] | None = None
        self._updates = 0
        self._clips = 0
        self._since_status = [0, 0]
        # an asynchronous update whose verdict is unread: (method, parameter names, stats), and
        # what reports its refusal if the trainer is dropped or the interpreter exits first
        self._pending: tuple | None = None
        self._unread: weakref.finalize | None = None
        self._unraised: NonFiniteError | None = None  # read (by `updates`) but not yet raised
        # the optimizer state is the trainer's own (never handed out), so every update kernel
        # takes it over (donates it) and writes the new state in place: a lookup table's
        # moments are not copied per update. A refused update gets the old state back from
        # the kernel itself (`_apply_impl` selects it), so refusing stays all or nothing.
        # They compile at O1 (`_xla`): `_apply_rows_impl` for DyNet's attention.py in 0.51-0.54 s
        # instead of 0.62, on the first update's path; a 1.3M-parameter Adam update runs as fast.
        self._apply = self._apply_kernel()
        self._apply_rows = kernel_jit(self._apply_rows_impl, static_argnames=("on_device",),
                                      donate_argnames=("state", "tables"))
        self._steps: dict[Any, Callable] = {}
        self._new_functions: dict[Any, int] = {}
        self._mesh: Any = None

    def _apply_kernel(self) -> Callable:
        return kernel_jit(self._apply_impl, static_argnames=("sparse_rows", "on_device"), donate_argnames=("state",))

    @property
    def updates(self) -> int:
        """The updates applied so far (refused ones are not counted)."""
        self._settle(raising=False)
        return self._updates

    @property
    def clips(self) -> int:
        """The applied updates whose gradient was clipped."""
        self._settle(raising=False)
        return self._clips

    def wait(self) -> None:
        """Waits for the last update to run and reads its verdict.

        Raises:
          NonFiniteError: that update (or an earlier one not yet reported) was refused.
        """
        self._settle()

    # -- DyNet's knobs -----------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        self._settle(raising=False)  # a schedule (CyclicalSGDTrainer) moves with each applied update
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._lr = self._check_lr(value)

    def set_learning_rate(self, value: float) -> None:
        """DyNet's spelling of `trainer.learning_rate = value`."""
        self.learning_rate = value

    def update_epoch(self, r: float = 1.0) -> None:
        """Deprecated in DyNet 2 and does nothing there: it warns and leaves the rate as it
        is (set `learning_rate` to decay it)."""
        warnings.warn("Trainer.update_epoch is deprecated and does nothing (as in DyNet 2); "
                      "set trainer.learning_rate to change the rate", DeprecationWarning, stacklevel=2)

    def update_subset(self, updated_params: Any, updated_lookups: Any) -> None:
        """DyNet's `update_subset`: documented there as updating only the parameters and
        lookup parameters at the given indices, but DyNet 2.1.2's Python binding does nothing
        (its call is commented out). It does nothing here too, with a warning, so a DyNet
        program computes what it computed under DyNet. To train only some parameters, freeze
        the others: `p.set_updated(False)`, or `dy.parameter(p, update=False)` in a graph."""
        del updated_params, updated_lookups
        warnings.warn("Trainer.update_subset does nothing (as in DyNet 2.1.2, whose binding leaves it out); "
                      "freeze parameters with p.set_updated(False) and call update()", UserWarning, stacklevel=2)

    def _check_lr(self, value: Any) -> float:
        return check_real(type(self).__name__, "learning_rate", value, 0.0)

    def set_clip_threshold(self, threshold: float) -> None:
        """Global L2-norm gradient clipping threshold (default 5); ≤ 0 (or inf) disables clipping."""
        self._clip = check_real(f"{type(self).__name__}.set_clip_threshold", "threshold", threshold, allow_inf=True)

    def get_clip_threshold(self) -> float:
        return self._clip

    def set_sparse_updates(self, flag: bool) -> None:
        """With True (DyNet's default), lookup-table rows whose gradient is zero are left as
        they are, so that rows not used in a batch do not move (e.g. under momentum).

        Gradients from the computation graph (`backward()` after lookups) arrive as rows:
        only those rows' values and optimizer state change, as in DyNet. A dense gradient
        given to `update(grads)` or made by `trainer.step` leaves the other rows' values as
        they are, but their optimizer state still advances (a zero gradient decays Adam's
        moments there), where DyNet skips their state entirely."""
        self._sparse = bool(flag)

    def restart(self, learning_rate: float | None = None) -> None:
        """Forgets the optimizer state (moments, accumulators); optionally sets the rate."""
        self._settle(raising=False)  # (a refusal not yet reported is raised by the next update)
        self._state = None
        self._names = None
        if learning_rate is not None:
            self.learning_rate = learning_rate

    def distribute(self, mesh: Any) -> None:
        """Data-parallel training over `mesh` (a `jax.sharding.Mesh`, e.g. from
        `dynrnn.data_parallel_mesh()`): every parameter of the collection and the optimizer
        state are replicated on its devices and stay so after each update. Split the batch
        with `dynrnn.shard_batch`; XLA then computes each device's part of the gradient and
        all-reduces it — the result equals single-device training up to float rounding."""
        _check_mesh("Trainer.distribute", mesh)
        self._settle(raising=False)
        self._mesh = mesh
        for p in self._pc.all_parameters():
            p.store(replicate(p.stored_value(), mesh))
        if self._state is not None:
            self._state = replicate(self._state, mesh)
        self._apply = self._apply_kernel()  # (a new one: compiled for the mesh's sharding)
        self._steps = {}

    def status(self) -> str:
        """DyNet's status line (printed and returned): rate, clips and updates since last time."""
        self._settle()
        s = f"[lr={self._lr:.3g} clips={self._since_status[0]} updates={self._since_status[1]}]"
        self._since_status = [0, 0]
        print(s)
        return s

    # -- the update ---------------------------------------------------------------------
    def _current_lr(self) -> float:
        return self._lr

    def _trainable(self) -> dict[str, Any]:
        return {p.name(): p for p in self._pc.all_parameters() if p.is_updated()}

    def _prepare(self, params: dict[str, Any], grow: bool = False) -> None:
        names = tuple(params)
        if grow and self._state is not None and names != self._names and set(self._names or ()) < set(names):
            # DyNet's way (graph mode): parameters added since the last update join with fresh state
            fresh = self._rule.init({n: params[n].stored_value() for n in names})
            self._state = _own(_keep_old(self._state, fresh))
            if self._mesh is not None:
                self._state = replicate(self._state, self._mesh)
            self._names = names
        if self._state is None:
            self._state = _own(self._rule.init({n: params[n].stored_value() for n in names}))
            if self._mesh is not None:
                self._state = replicate(self._state, self._mesh)
            self._names = names
        elif names != self._names:
            raise ValueError(f"{type(self).__name__}: the set of trained parameters changed since the first update "
                             f"({len(self._names or ())} → {len(names)}); call trainer.restart() after adding or "
                             f"freezing parameters.")

    def _apply_impl(self, values, grads, state, lr, clip, sparse_rows, loss_ok: Any = True, *, keep,
                    on_device: bool = False):
        # keep: {name: 1 − λ} for the parameters under weight decay (`_kept_share`).
        # on_device: a refused update returns the old values too (an asynchronous update is
        # stored before its verdict is read); otherwise the host refuses to store them
        old_state = state
        norm = _global_norm(grads)
        clipped = (clip > 0) & (norm > clip)
        scale = jnp.where(clipped, clip / norm, 1.0)
        grads = _map(lambda g: (g * scale).astype(g.dtype), grads)
        updates, state = self._rule.update(grads, state, values, lr)
        new = {}
        for name, v in values.items():
            u = updates[name]
            if name in sparse_rows:  # untouched lookup rows stay where they are
                touched = jnp.any(grads[name] != 0, axis=tuple(range(1, grads[name].ndim)), keepdims=True)
                u = jnp.where(touched, u, 0.0)
            stepped = v + u
            if name in keep:  # DyNet's weight decay, after the step
                stepped = stepped * keep[name]
            new[name] = stepped.astype(v.dtype)
        if self._mesh is not None:  # keep the copies identical on every device
            new, state = jax.lax.with_sharding_constraint((new, state), replicated(self._mesh))
        # is every updated value finite? (one flag per parameter, checked before committing)
        finite = [jnp.all(jnp.isfinite(new[n])).astype(jnp.float32) for n in values]
        stats = jnp.stack([norm, clipped.astype(jnp.float32), *finite])
        ok = _accepted(stats) & loss_ok
        state = _map(lambda n, o: jnp.where(ok, n, o), state, old_state)  # refused: the old state, unchanged
        if on_device:
            new = {n: jnp.where(ok, v, values[n]) for n, v in new.items()}
        # the state comes first: JAX gives each donated buffer to the first output of its shape,
        # and a new parameter value placed there would leave the new state to be copied
        return state, new, stats

    def _sparse_rows(self, params: dict[str, Any]) -> frozenset:
        if not self._sparse:
            return frozenset()
        return frozenset(n for n, p in params.items() if isinstance(p, LookupParameters))

    def _commit(self, method: str, params: dict[str, Any], new_values: dict, state: Any, stats: Any,
                replaced: frozenset = frozenset(), deferred: bool = False) -> None:
        """Stores the update, or raises and changes nothing. `stats` is (norm, clipped, one
        finiteness flag per parameter). `replaced`: parameters whose old arrays the kernel
        wrote over (refused, it gave them back unchanged): stored either way. `deferred`: the
        kernel chose the new or the old values itself (`on_device`): they are stored now and
        the verdict is read by the next trainer call (`_settle`)."""
        self._state = state  # the kernel took the old state over; refused, this is the old state
        for name in replaced:
            params[name].store(new_values[name], replaced=True)
        names = tuple(params)
        clipped = False if deferred else self._verdict(method, names, np.asarray(stats))  # refused: raises here
        for name, p in params.items():
            if name not in replaced:
                p.store(new_values[name])
        if deferred:
            self._pending = (method, names, stats)
            self._unread = weakref.finalize(self, _report_unread, f"{type(self).__name__}.{method}", names, stats,
                                            self._current_lr())
        else:
            self._count(clipped)

    def _verdict(self, method: str, names: tuple, stats: np.ndarray, late: bool = False) -> bool:
        """Raises NonFiniteError for a refused update; returns whether its gradient was clipped."""
        where = f"{type(self).__name__}.{method}"
        if late:  # an asynchronous update, refused: reported by the next trainer call
            where += (f" (the update after update {self._updates}, reported late: graph-mode updates run "
                      f"asynchronously, dy.config(async_updates=False) reports a refusal from update() itself)")
        why = _refusal(where, names, stats, self._current_lr())
        if why is not None:
            raise NonFiniteError(why)
        return bool(stats[1])

    def _count(self, clipped: bool) -> None:
        """An applied update: DyNet's weight decay of the frozen parameters, the counters,
        the rate's schedule."""
        for p in self._pc.all_parameters():  # DyNet's weight decay reaches frozen parameters too
            if not p.is_updated() and (lam := p.weight_decay()) > 0:
                p.store((p.stored_value() * (1.0 - lam)).astype(p.dtype))
        self._updates += 1
        self._since_status[1] += 1
        if clipped:
            self._clips += 1
            self._since_status[0] += 1
        self._after_update()

    def _settle(self, raising: bool = True) -> None:
        """Reads the verdict of an asynchronous update (waiting for it if it has not run):
        counts it, or keeps its refusal, which is raised now (`raising`) or by the next call
        that raises."""
        if self._pending is not None:
            (method, names, stats), self._pending = self._pending, None
            if self._unread is not None:
                self._unread.detach()
            try:
                self._count(self._verdict(method, names, np.asarray(stats), late=True))
            except NonFiniteError as e:
                self._unraised = e
        if raising and self._unraised is not None:
            refusal, self._unraised = self._unraised, None
            raise refusal

    def _deferrable(self) -> bool:
        """Whether this graph-mode update may return before its verdict (async updates on, and
        no frozen parameter under weight decay, whose decay waits for the verdict)."""
        return _ASYNC[0] and not any(not p.is_updated() and p.weight_decay() > 0 for p in self._pc.all_parameters())

    def _after_update(self) -> None:
        pass

    def update(self, grads: dict[str, Any] | None = None) -> None:
        """Applies `grads` (`{parameter name: gradient}`, as from `dynrnn.value_and_grad`),
        or, as in DyNet, with no argument: the gradients that `loss.backward()` accumulated
        in the parameters since the last update (then cleared; a parameter that no loss
        used gets a zero gradient).

        With no argument (graph mode) the update runs asynchronously: it returns once the
        device has it, so that the next graph is built while it runs, and it is still all or
        nothing — a refused update leaves every parameter and the optimizer state as they
        were, on the device. Its verdict is read by the next call of this trainer (`update`,
        `step`, `status`, `wait`), which raises the refusal before doing anything else: the
        gradients it was given are kept, so calling it again applies them. `restart` and
        reading `updates`, `clips` or `learning_rate` count it without raising.
        `dy.config(async_updates=False)` makes `update()` wait and raise at once, as DyNet
        does.

        Raises:
          NonFiniteError: a gradient holds NaN or ±inf, or the update would make a parameter
            non-finite; parameters are left untouched. Also an earlier asynchronous update's
            refusal, not yet reported.
        """
        self._settle()  # an earlier asynchronous update's refusal: raised before anything changes
        params = self._trainable()
        from_graph = grads is None
        deferred = from_graph and self._deferrable()
        try:
            if from_graph:
                rows = self._row_grads(params)
                grads = {n: (p.grad() if p.grad() is not None else _zeros_like(p.stored_value()))
                         for n, p in params.items() if n not in rows}
                if rows:
                    self._update_rows(params, grads, rows, deferred)
                    return
            g = self._check_grads(params, grads)
            self._prepare(params, grow=from_graph)
            values = {n: p.stored_value() for n, p in params.items()}
            state, new, stats = self._apply(values, g, self._state, self._current_lr(), self._clip,
                                            sparse_rows=self._sparse_rows(params), keep=_kept_share(params),
                                            on_device=deferred)
            self._commit("update", params, new, state, stats, deferred=deferred)
        finally:
            if from_graph:  # DyNet clears the gradients after an update, applied or refused
                for p in self._pc.all_parameters():
                    p.clear_grad()

    # -- sparse updates of lookup tables (graph mode) ---------------------------------------
    _ROWS_OK = True  # the rule's state is dicts keyed by parameter name (OptaxTrainer: no)

    def _row_grads(self, params: dict[str, Any]) -> dict[str, tuple]:
        """Lookup tables whose whole gradient is rows (from a graph's lookups), when sparse
        updates are on: {name: (row ids, row blocks)}."""
        if not (self._sparse and self._ROWS_OK and self._mesh is None):
            return {}
        out = {}
        for n, p in params.items():
            if isinstance(p, LookupParameters):
                sg = p.sparse_grad()
                if sg is not None:
                    out[n] = sg
        return out

    def _update_rows(self, params: dict[str, Any], dense: dict[str, Any], rows: dict[str, tuple],
                     deferred: bool = False) -> None:
        """DyNet's sparse update: the tables in `rows` change only in the rows their lookups
        used (values and optimizer state alike); everything else as `update` does. Same
        clipping (the global norm counts each used row once) and the same all-or-nothing check."""
        self._prepare(params, grow=True)
        # a table nothing else holds is written in place (given to the kernel): a copy per
        # update cost 1.5 ms for a 19k x 128 table, 28 ms for 100k x 256 (0.33 ms in place)
        over = frozenset(n for n in rows if params[n].sole_holder())
        values = {n: p.stored_value() for n, p in params.items() if n not in over}
        tables = {n: params[n].stored_value() for n in over}
        g = self._check_grads({n: p for n, p in params.items() if n not in rows}, dense)
        ids, inv, parts = {}, {}, {}
        for n, (row_ids, blocks) in rows.items():
            uniq, inverse = np.unique(row_ids, return_inverse=True)
            block = jnp.concatenate(blocks) if len(blocks) > 1 else blocks[0]
            # one bucket for both the used rows and the row blocks (there are never more
            # used rows than blocks): the kernel depends on one number, not two; a size
            # already compiled for this table is reused within 4x, and none is below
            # ROWS_LEAST (a padded row costs nothing measurable; a compilation ~0.5 s)
            k = u = reuse_size(self._row_sizes.setdefault(n, set()), max(block.shape[0], ROWS_LEAST))
            shape, dtype = params[n].shape(), params[n].dtype
            ids[n] = np.concatenate([uniq, np.full(u - len(uniq), shape[0])]).astype(np.int32)
            inv[n] = np.concatenate([inverse, np.zeros(k - len(inverse), np.int64)]).astype(np.int32)
            parts[n] = _pad_rows()(block, k, dtype)
        state, new, stats = self._apply_rows(values, g, self._state, tables, self._current_lr(), self._clip,
                                             ids, inv, parts, _kept_share(params), on_device=deferred)
        del tables  # given to the kernel: gone
        self._commit("update", params, new, state, stats, replaced=over, deferred=deferred)

    def _apply_rows_impl(self, values, grads, state, tables, lr, clip, ids, inv, parts, keep, on_device=False):
        # `tables` (written over in place) come after `state`: JAX gives each donated buffer
        # to the first output of its shape. Merged in the order jit gives a dict.
        values = {n: tables[n] if n in tables else values[n] for n in sorted({*values, *tables})}
        names = frozenset(ids)
        take = {n: (lambda a, n=n: a.at[ids[n]].get(mode="fill", fill_value=0)) for n in names}
        sub_values = {n: take[n](v) if n in names else v for n, v in values.items()}
        sub_grads = dict(grads)
        for n in names:  # each used row once, its contributions summed
            sub_grads[n] = jnp.zeros_like(sub_values[n]).at[inv[n]].add(parts[n])
        sub_grads = {n: sub_grads[n] for n in values}
        sub_state = _map_named(state, names, lambda n, a: take[n](a))
        new_state_sub, new_sub, stats = self._apply_impl(sub_values, sub_grads, sub_state, lr, clip, frozenset(),
                                                         keep=keep, on_device=on_device)
        # refused, a table written in place gets its own rows back (the old array is gone);
        # under weight decay every row decays, used or not (DyNet's decay is of the whole table)
        ok = _accepted(stats)

        def table(n):
            base = values[n] if n not in keep else jnp.where(ok, values[n] * keep[n], values[n]).astype(values[n].dtype)
            return base.at[ids[n]].set(jnp.where(ok, new_sub[n], sub_values[n]), mode="drop")

        new = {n: table(n) if n in names else new_sub[n] for n in values}
        new_state = _zip_named(state, new_state_sub, names, lambda n, old, rows: old.at[ids[n]].set(rows, mode="drop"))
        return new_state, new, stats

    def _check_grads(self, params: dict[str, Any], grads: Any) -> dict[str, Any]:
        """The gradients of the trained parameters, each checked against its parameter."""
        where = f"{type(self).__name__}.update"
        if not hasattr(grads, "items"):
            raise TypeError(f"{where}: grads must be a dict {{parameter name: gradient}} (as from "
                            f"dynrnn.value_and_grad); given {type(grads).__name__}.")
        known = {p.name() for p in self._pc.all_parameters()}
        unknown = [n for n in grads if n not in known]
        if unknown:
            raise KeyError(f"{where}: grads names {unknown[:3]}{' ...' if len(unknown) > 3 else ''}, which are not "
                           f"parameters of this trainer's collection {self._pc.name()!r}.")
        missing = [n for n in params if n not in grads]
        if missing:
            raise KeyError(f"{where}: grads has no entry for {missing[:3]}"
                           f"{' ...' if len(missing) > 3 else ''}; pass the grads from dynrnn.value_and_grad.")
        out = {}
        for n, p in params.items():
            gr = grads[n]
            shape, dtype = tuple(np.shape(gr)), getattr(gr, "dtype", None)
            if dtype is None:
                gr = np.asarray(gr)
                dtype = gr.dtype
            if shape != p.shape():
                raise ValueError(f"{where}: the gradient for {n!r} has shape {fmt_shape(shape)}; the parameter has "
                                 f"shape {fmt_shape(p.shape())}.")
            if np.dtype(dtype) != np.dtype(p.dtype):
                raise TypeError(f"{where}: the gradient for {n!r} has dtype {np.dtype(dtype).name}; the parameter "
                                f"has dtype {np.dtype(p.dtype).name} (cast the gradient first).")
            out[n] = gr
        return out

    def step(self, loss_fn: Callable, *args: Any, has_aux: bool = False) -> Any:
        """Loss, gradients and update in one compiled call; returns the loss as a float
        (with `has_aux`, `(loss, aux)`). Compiled once per shape signature of `args`.

        Raises:
          NonFiniteError: the loss or the gradient is not finite; parameters are untouched.
        """
        self._settle()
        params = self._trainable()
        self._prepare(params)
        sparse_rows = self._sparse_rows(params)
        key = (loss_fn, has_aux, sparse_rows)
        fused = self._steps.pop(key, None)  # least recently used first: re-insert at the end
        if fused is None:
            self._count_new_function(loss_fn)
            fused = self._make_step(loss_fn, has_aux, sparse_rows)
            while len(self._steps) >= MAX_COMPILED_STEPS:
                del self._steps[next(iter(self._steps))]
        self._steps[key] = fused
        state, out, new, stats = fused(*call_inputs(self._pc, args), self._state, self._current_lr(), self._clip,
                                       _kept_share(params))
        stats = np.asarray(stats)  # one transfer: (loss, gradient norm, clipped, finite flags)
        loss = float(stats[0])
        if not math.isfinite(loss):
            self._state = state  # the old state, which the step took over
            raise NonFiniteError(f"{type(self).__name__}.step: the loss is {loss}; no parameter was changed.")
        self._commit("step", params, new, state, stats[1:])
        return (loss, out[1]) if has_aux else loss

    def _count_new_function(self, loss_fn: Callable) -> None:
        """Warns once per code location that keeps making new loss functions (a lambda
        written inside the training loop): each is a new function, so each compiles."""
        code = getattr(loss_fn, "__code__", None)
        if code is None:
            return
        n = self._new_functions[code] = self._new_functions.get(code, 0) + 1
        if n == WARN_AFTER_FUNCTIONS:
            warnings.warn(f"{type(self).__name__}.step has compiled {n} different loss functions made by the same "
                          f"code ({code.co_filename}:{code.co_firstlineno}): a lambda or closure created inside the "
                          f"training loop is a new function each time, and each one is traced and compiled again. "
                          f"Define the loss function once, outside the loop, and pass what changes as arguments. "
                          f"(Only the {MAX_COMPILED_STEPS} most recent compiled steps are kept.)",
                          RuntimeWarning, stacklevel=3)

    def _make_step(self, loss_fn: Callable, has_aux: bool, sparse_rows: frozenset) -> Callable:
        pure = bound_loss(loss_fn, self._pc, has_aux)
        names = self._names
        assert names is not None, "the trainer's state is made before its step"

        def fused(all_values, key_index, dynamic, signature, state, lr, clip, keep):
            out, grads = jax.value_and_grad(pure, has_aux=has_aux)(all_values, key_index, dynamic, signature)
            values = {n: all_values[n] for n in names}
            loss = out[0] if has_aux else out
            state, new, stats = self._apply_impl(values, {n: grads[n] for n in names}, state, lr, clip, sparse_rows,
                                                 loss_ok=jnp.isfinite(loss), keep=keep)
            return state, out, new, jnp.concatenate([jnp.reshape(loss, (1,)).astype(jnp.float32), stats])

        return jax.jit(fused, static_argnums=(3,), donate_argnums=(4,))  # the state: see __init__

    def whoami(self) -> str:
        """DyNet's `whoami()`: the trainer's class name."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self._lr}, clip_threshold={self._clip})"


def _eps(trainer: Trainer, eps: Any) -> float:
    """eps > 0: with 0, an entry whose gradient (and so accumulator) is 0 divides 0 by 0."""
    return check_real(type(trainer).__name__, "eps", eps, 0.0, low_open=True)


def _rho(trainer: Trainer, rho: Any) -> float:
    return check_real(type(trainer).__name__, "rho", rho, 0.0, 1.0, high_open=True)


def _betas(trainer: Trainer, beta_1: Any, beta_2: Any) -> tuple[float, float]:
    where = type(trainer).__name__
    return (check_real(where, "beta_1", beta_1, 0.0, 1.0, high_open=True),
            check_real(where, "beta_2", beta_2, 0.0, 1.0, high_open=True))


class SimpleSGDTrainer(Trainer):
    """Stochastic gradient descent: p ← p − lr·g."""

    def __init__(self, pc: ParameterCollection, learning_rate: float = 0.1):
        super().__init__(pc, learning_rate, sgd())


class CyclicalSGDTrainer(Trainer):
    """SGD whose rate cycles between `learning_rate_min` and `learning_rate_max` (Smith 2017,
    triangular, times gamma^t), advancing one step per update. As DyNet's: the rate after
    update t is the triangle's at t - 1, so the first two updates both use the minimum
    (DyNet 2.1.2, step_size 4: 0.01, 0.01, 0.0325, 0.055, 0.0775, 0.1, 0.0775, ...)."""

    def __init__(self, pc: ParameterCollection, learning_rate_min: float = 0.01, learning_rate_max: float = 0.1,
                 step_size: float = 2000, gamma: float = 1.0):
        where = type(self).__name__
        e_min = check_real(where, "learning_rate_min", learning_rate_min, 0.0)
        e_max = check_real(where, "learning_rate_max", learning_rate_max, e_min)
        self.step_size = check_real(where, "step_size", step_size, 0.0, low_open=True)
        self.gamma = check_real(where, "gamma", gamma, 0.0, 1.0, low_open=True)
        super().__init__(pc, e_min, sgd())
        self.e_min, self.e_max = e_min, e_max
        self._it = 0

    def _after_update(self) -> None:
        it = self._it  # (DyNet computes the next rate from the count before this update)
        cycle = math.floor(1 + it / (2 * self.step_size))
        x = abs(it / self.step_size - 2 * cycle + 1)
        self._lr = self.e_min + (self.e_max - self.e_min) * max(0.0, 1 - x) * self.gamma**it
        self._it = it + 1


class MomentumSGDTrainer(Trainer):
    """SGD with momentum: v ← mom·v − lr·g; p ← p + v."""

    def __init__(self, pc: ParameterCollection, learning_rate: float = 0.01, mom: float = 0.9):
        super().__init__(pc, learning_rate, momentum(check_real(type(self).__name__, "mom", mom, 0.0, 1.0,
                                                                 high_open=True)))


class AdagradTrainer(Trainer):
    """Adagrad (Duchi et al. 2011)."""

    def __init__(self, pc: ParameterCollection, learning_rate: float = 0.1, eps: float = 1e-20):
        super().__init__(pc, learning_rate, adagrad(_eps(self, eps)))


class AdadeltaTrainer(Trainer):
    """Adadelta (Zeiler 2012); DyNet's has no learning rate (here: a multiplier, 1)."""

    def __init__(self, pc: ParameterCollection, eps: float = 1e-6, rho: float = 0.95):
        super().__init__(pc, 1.0, adadelta(_eps(self, eps), _rho(self, rho)))


class RMSPropTrainer(Trainer):
    """RMSProp (Hinton): per-entry running mean of g². The defaults are DyNet's Python
    ones (its C++ constructor's are learning_rate 0.1, eps 1e-20, rho 0.95)."""

    def __init__(self, pc: ParameterCollection, learning_rate: float = 0.001, eps: float = 1e-8, rho: float = 0.9):
        super().__init__(pc, learning_rate, rmsprop(_eps(self, eps), _rho(self, rho)))


class AdamTrainer(Trainer):
    """Adam (Kingma & Ba 2014) with DyNet's defaults and form."""

    def __init__(self, pc: ParameterCollection, alpha: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(pc, alpha, adam(*_betas(self, beta_1, beta_2), _eps(self, eps)))


class AmsgradTrainer(Trainer):
    """AMSGrad (Reddi et al. 2018): Adam with a running maximum of the second moment."""

    def __init__(self, pc: ParameterCollection, alpha: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(pc, alpha, adam(*_betas(self, beta_1, beta_2), _eps(self, eps), amsgrad=True))


class OptaxTrainer(Trainer):
    """Any optax `GradientTransformation` (or object with optax's `init`/`update`), with
    DyNet's clipping, non-finite checks, `update` and `step`. Its learning rate lives in the
    transformation; `learning_rate` here is unused."""

    _ROWS_OK = False  # optax's state is its own structure: lookup tables update densely

    def __init__(self, pc: ParameterCollection, transformation: Any):
        if not (hasattr(transformation, "init") and hasattr(transformation, "update")):
            raise TypeError("OptaxTrainer: expected an optax GradientTransformation (with init and update); "
                            f"given {type(transformation).__name__}.")

        def update(g, s, p, lr):
            return transformation.update(g, s, p)

        super().__init__(pc, 0.0, Rule(transformation.init, update))
