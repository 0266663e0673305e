"""No silent wrong results: compiled code never keeps stale parameters, an update is all or
nothing (nothing non-finite ever reaches a parameter), values that cannot be checked under
`jit` give NaN rather than a wrong answer, and save/load keeps every setting."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy


def _model(seed=0):
    pc = dy.ParameterCollection(seed=seed)
    E = pc.add_lookup_parameters((12, 5), name="E")
    rnn = dy.LSTMBuilder(1, 5, 8, pc)
    R, b = pc.add_parameters((12, 8), name="R"), pc.add_parameters(12, name="b")

    def loss(ids):
        hs = rnn.initial_state().transduce(E.batch(ids[:-1]))
        return dy.sequence_cross_entropy(R * hs + b, ids[1:])

    def step(state, token):
        state = state.add_input(E[token])
        return state, jax.nn.log_softmax(R * state.output() + b)

    return pc, E, rnn, loss, step


def _train(pc, loss, n=5):
    trainer = dy.AdamTrainer(pc, 0.05)
    for _ in range(n):
        trainer.step(loss, jnp.array([0, 3, 5, 2, 7, 0]))
    return trainer


# -- parameters reach compiled code only as arguments ------------------------------------------

def test_jitted_add_input_transduce_and_beam_search_see_every_update():
    """The README's and tutorial's patterns, compiled once and reused after training."""
    pc, E, rnn, loss, step = _model()
    x, xs = jnp.ones(5), jnp.ones((4, 5))
    add = dy.jit(lambda s, x: s.add_input(x).output(), pc)
    transduce = dy.jit(lambda s, xs: s.transduce(xs), pc)
    beams = dy.jit(lambda h: dy.beam_search_batched(step, rnn.initial_state([h, h]), 1, 0, 3, 6)["scores"], pc)
    s0, h = rnn.initial_state(), jnp.zeros((2, 8))
    before = [add(s0, x), transduce(s0, xs), beams(h)]
    _train(pc, loss)
    after = [add(s0, x), transduce(s0, xs), beams(h)]
    eager = [s0.add_input(x).output(), s0.transduce(xs),
             dy.beam_search_batched(step, rnn.initial_state([h, h]), 1, 0, 3, 6)["scores"]]
    for b, a, e in zip(before, after, eager):
        assert not np.allclose(b, a)  # training changed the parameters ...
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)  # ... and the compiled code saw it


def test_jax_jit_that_would_bake_parameters_in_raises_and_says_how_to_fix():
    pc, E, rnn, loss, step = _model()
    s0 = rnn.initial_state()
    for bad in (lambda: jax.jit(lambda s, x: s.add_input(x))(s0, jnp.ones(5)),
                lambda: jax.jit(lambda xs: rnn.initial_state().transduce(xs))(jnp.ones((3, 5))),
                lambda: jax.jit(lambda h: dy.beam_search_batched(step, rnn.initial_state([h, h]), 1, 0, 3, 6))(
                    jnp.zeros((2, 8))),
                lambda: jax.make_jaxpr(lambda i: E[i])(3)):
        with pytest.raises(dy.StaleParameterError, match=r"dynrnn\.jit\(f, pc\).*pc\.bind"):
            bad()


def test_vmap_and_grad_outside_jit_still_read_parameters():
    """Only tracing that caches (jit, scan, make_jaxpr) is refused; vmap and grad run eagerly."""
    pc, E, rnn, loss, step = _model()
    s1 = rnn.initial_state().add_input(jnp.ones((3, 5)))
    xs = jax.random.normal(jax.random.key(0), (3, 5))
    per_example = jax.vmap(lambda s, x: s.add_input(x).output())(s1, xs)
    np.testing.assert_allclose(per_example, s1.add_input(xs).output(), rtol=1e-5, atol=1e-6)
    g = jax.grad(lambda x: jnp.sum(rnn.initial_state().add_input(x).output()))(jnp.ones(5))
    assert g.shape == (5,) and np.isfinite(g).all()


def test_dy_jit_compiles_once_per_shape_and_draws_fresh_dropout_masks():
    pc, E, rnn, loss, step = _model()
    rnn.set_dropout(0.5)
    traces = []

    def run(xs):
        traces.append(xs.shape)
        return rnn.initial_state().transduce(xs)

    f = dy.jit(run, pc)
    a, b = f(jnp.ones((4, 5))), f(jnp.ones((4, 5)))
    f(jnp.ones((6, 5)))
    f(jnp.ones((4, 5)))
    assert traces == [(4, 5), (6, 5)]
    assert not np.allclose(a, b)  # a new key per call


def test_dy_jit_takes_several_collections_and_keyword_arguments():
    pc1, pc2 = dy.ParameterCollection(seed=0), dy.ParameterCollection(seed=1)
    W1, W2 = pc1.add_parameters((2, 3)), pc2.add_parameters((2, 2))
    f = dy.jit(lambda x, *, scale: scale * (W2 * (W1 * x)), [pc1, pc2])
    x = jnp.arange(3.0)
    np.testing.assert_allclose(f(x, scale=2.0), 2.0 * (np.asarray(W2) @ (np.asarray(W1) @ np.asarray(x))),
                               rtol=1e-6)
    W1.set_value(np.zeros((2, 3)))
    np.testing.assert_allclose(f(x, scale=2.0), np.zeros(2))


# -- an update is all or nothing -----------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda pc: dy.SimpleSGDTrainer(pc, 1e38),      # finite as a rate; lr * g overflows float32
    lambda pc: dy.MomentumSGDTrainer(pc, 1e38),
    lambda pc: dy.RMSPropTrainer(pc, 1e38),
    lambda pc: dy.AdamTrainer(pc, 1e39),           # a float64 rate beyond float32's range
    lambda pc: dy.AdagradTrainer(pc, 1e39),
], ids=["sgd", "momentum", "rmsprop", "adam", "adagrad"])
@pytest.mark.parametrize("way", ["step", "update"])
def test_an_update_that_would_overflow_changes_nothing(make, way):
    ids = jnp.array([0, 3, 5, 2, 7, 0])

    def trained(refuse):
        pc, E, rnn, base_loss, step = _model()

        def loss(ids):  # gradients of 10 or more, so that lr · g overflows
            return 1000.0 * base_loss(ids)
        trainer = make(pc)
        big = trainer.learning_rate
        trainer.set_clip_threshold(0)
        trainer.learning_rate = 0.01  # one committed update first: the optimizer state is not its start
        trainer.step(base_loss, ids)
        before = {k: np.asarray(v) for k, v in pc.parameter_values().items()}
        trainer.learning_rate = big
        for _ in range(refuse):  # the first failure must not leave optimizer state behind either
            with pytest.raises(dy.NonFiniteError, match=r"would make \d+ parameter\(s\) non-finite.*No parameter"):
                if way == "step":
                    trainer.step(loss, ids)
                else:
                    trainer.update(dy.value_and_grad(loss, pc)(ids)[1])
        assert trainer.updates == 1
        for k, v in pc.parameter_values().items():
            np.testing.assert_array_equal(np.asarray(v), before[k])
        trainer.learning_rate = 0.01  # and training goes on from the same state
        trainer.step(base_loss, ids)
        assert trainer.updates == 2
        return pc.parameter_values()

    # the update kernels take the optimizer state over (donate it): refused, it comes back
    # unchanged, so two refusals between two updates make no difference at all
    refused, plain = trained(2), trained(0)
    for k in plain:
        assert np.isfinite(np.asarray(refused[k])).all()
        np.testing.assert_array_equal(np.asarray(refused[k]), np.asarray(plain[k]))


def test_cyclical_trainer_advances_its_rate_only_after_a_committed_update():
    pc, E, rnn, loss, step = _model()
    trainer = dy.CyclicalSGDTrainer(pc, 0.01, 0.1, step_size=2)
    ids = jnp.array([0, 3, 5, 0])
    trainer.step(loss, ids)
    for _ in range(2):  # refused updates (a NaN loss) leave the schedule where it was
        with pytest.raises(dy.NonFiniteError, match="the loss is nan"):
            trainer.step(lambda i: loss(i) * jnp.nan, ids)
    assert trainer.updates == 1 and trainer.learning_rate == pytest.approx(0.01)
    trainer.step(loss, ids)
    assert trainer.updates == 2 and trainer.learning_rate == pytest.approx(0.01 + 0.09 * 0.5)


def test_non_finite_gradient_names_the_method():
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters(3)
    trainer = dy.SimpleSGDTrainer(pc)
    with pytest.raises(dy.NonFiniteError, match=r"^SimpleSGDTrainer\.step: the gradient's L2 norm"):
        trainer.step(lambda x: jnp.sum(jnp.sqrt(W * 0.0) * x), jnp.ones(3))
    with pytest.raises(dy.NonFiniteError, match=r"^SimpleSGDTrainer\.update: the gradient's L2 norm"):
        trainer.update({W.name(): jnp.full(3, jnp.nan)})


# -- values that cannot be checked under jit give NaN, never a wrong answer -------------------------

def test_out_of_range_ids_under_jit_give_nan_and_the_step_is_refused():
    pc, E, rnn, loss, step = _model()
    trainer = dy.SimpleSGDTrainer(pc)
    before = np.asarray(E)
    for bad in (12, -1):
        with pytest.raises(dy.NonFiniteError, match="the loss is nan"):
            trainer.step(loss, jnp.array([0, 3, bad, 0]))
    np.testing.assert_array_equal(np.asarray(E), before)
    rows = dy.jit(lambda ids: E.batch(ids), pc)(jnp.array([0, 11, 12, -1]))
    np.testing.assert_array_equal(rows[:2], np.asarray(E)[[0, 11]])
    assert np.isnan(rows[2:]).all()


def test_out_of_range_targets_under_jit_give_nan_but_padding_may_hold_anything():
    f = dy.jit(lambda lg, t, n: dy.sequence_cross_entropy(lg, t, n), dy.ParameterCollection())
    logits = jax.random.normal(jax.random.key(0), (3, 2, 4))
    good = f(logits, jnp.array([[1, 2], [3, 0], [0, 1]]), jnp.array([3, 3]))
    assert np.isfinite(good)
    assert np.isnan(f(logits, jnp.array([[1, 2], [4, 0], [0, 1]]), jnp.array([3, 3])))
    assert np.isnan(f(logits, jnp.array([[1, 2], [-1, 0], [0, 1]]), jnp.array([3, 3])))
    padded = f(logits, jnp.array([[1, 2], [3, 0], [-1, 99]]), jnp.array([2, 2]))  # step 3 is padding
    want = f(logits[:2], jnp.array([[1, 2], [3, 0]]), jnp.array([2, 2]))
    np.testing.assert_allclose(padded, want, rtol=1e-6)
    grads = jax.grad(lambda lg: dy.sequence_cross_entropy(lg, jnp.array([[1, 2], [3, 0], [-1, 99]]),
                                                          jnp.array([2, 2])))(logits)
    assert np.isfinite(grads).all() and not np.asarray(grads[2]).any()


def test_traced_lengths_act_as_clamped_to_the_time_axis():
    pc, E, rnn, loss, step = _model()
    f = dy.jit(lambda xs, n: rnn.initial_state().transduce(xs, lengths=n), pc)
    xs = jax.random.normal(jax.random.key(1), (4, 2, 5))
    np.testing.assert_array_equal(f(xs, jnp.array([-3, 9])), f(xs, jnp.array([0, 4])))


# -- the compiled-step cache is bounded and says when a loop makes new functions -------------------

def test_a_new_lambda_each_step_warns_once_and_the_cache_stays_bounded(monkeypatch):
    from dynrnn import _trainers
    monkeypatch.setattr(_trainers, "MAX_COMPILED_STEPS", 4)
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters(3)
    trainer = dy.SimpleSGDTrainer(pc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(7):
            trainer.step(lambda x: jnp.sum((W - x) ** 2), jnp.ones(3))
    mine = [w for w in caught if "different loss functions made by the same code" in str(w.message)]
    assert len(mine) == 1 and "test_reliability.py" in str(mine[0].message)
    assert len(trainer._steps) == 4

    def once(x):
        return jnp.sum((W - x) ** 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(7):
            trainer.step(once, jnp.ones(3))
    assert not [w for w in caught if "different loss functions" in str(w.message)]


# -- save and load ---------------------------------------------------------------------------------

def test_every_builder_setting_round_trips(tmp_path):
    pc = dy.ParameterCollection(seed=0)
    bi = dy.BiRNNBuilder(2, 3, 4, pc, dy.GRUBuilder)
    bi.set_dropouts(0.25, 0.125)
    bi.builder_layers[1][1].set_dropouts(0.5, 0.0)  # one direction set on its own
    lstm = dy.LSTMBuilder(1, 3, 4, pc, ln_lstm=True, forget_bias=0.5)
    lstm.set_dropouts(0.1, 0.2)
    path = str(tmp_path / "m.npz")
    dy.save(path, [bi, lstm])
    bi2, lstm2 = dy.load(path, dy.ParameterCollection(seed=1))
    assert bi2.dropout_settings() == bi.dropout_settings() == [[0.25, 0.125]] * 3 + [[0.5, 0.0]]
    assert bi2.builder_class is dy.GRUBuilder
    assert lstm2.dropout == (0.1, 0.2) and lstm2._ln and lstm2._forget_bias == 0.5


KILLED_SAVE = textwrap.dedent("""
    import sys, time
    import numpy as np
    import dynrnn as dy
    pc = dy.ParameterCollection(seed=0)
    pc.add_parameters((300, 300))
    real = np.savez
    def slow(f, **arrays):          # write part of the file, then hang until killed
        f.write(b"x" * 100000); f.flush()
        print("writing", flush=True)
        time.sleep(600)
    np.savez = slow
    pc.save(sys.argv[1])
""")


def test_the_next_save_removes_a_killed_saves_temporary_file(tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED_SAVE)
    target = tmp_path / "model.npz"
    p = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "writing"
        left = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        assert len(left) == 1 and not target.exists()
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert os.path.exists(tmp_path / left[0])  # the killed save left it behind
    live = tmp_path / f".dynrnn-{__import__('dynrnn._io', fromlist=['_host'])._host()}-{os.getpid()}-live.tmp"
    live.write_text("a save running now in this process")
    old_other_host = tmp_path / ".dynrnn-elsewhere-1-old.tmp"
    old_other_host.write_text("x")
    os.utime(old_other_host, (time.time() - 2 * 86400,) * 2)
    recent_other_host = tmp_path / ".dynrnn-elsewhere-1-new.tmp"
    recent_other_host.write_text("x")
    pc = dy.ParameterCollection(seed=0)
    pc.add_parameters(3)
    pc.save(str(target))
    names = sorted(os.listdir(tmp_path))
    assert left[0] not in names and old_other_host.name not in names
    assert live.name in names and recent_other_host.name in names  # maybe still being written
    assert "model.npz" in names
