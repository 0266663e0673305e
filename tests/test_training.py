"""value_and_grad and the DyNet trainers: gradients against raw JAX and finite differences,
each trainer's first updates against NumPy, clipping, sparse lookup updates, compile
counts, non-finite handling, dropout under compilation, reproducibility."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

from .helpers import assert_trees_allclose, count_compiles


def tiny_lm(seed=0, dtype=jnp.float32, builder=dy.LSTMBuilder):
    pc = dy.ParameterCollection(seed=seed, dtype=dtype)
    m = {"rnn": builder(1, 4, 6, pc), "E": pc.add_lookup_parameters((7, 4)), "R": pc.add_parameters((7, 6)),
         "b": pc.add_parameters(7, init=0.0)}

    def loss(ids):
        hs = m["rnn"].initial_state().transduce(m["E"].batch(ids[:-1]))
        logp = jax.nn.log_softmax(hs @ m["R"].T + m["b"].expr())
        return -jnp.sum(jnp.take_along_axis(logp, ids[1:, None], axis=1))

    return pc, m, loss


IDS = jnp.array([0, 3, 1, 4, 1, 5, 0])


def test_grads_equal_jax_grad_of_the_same_function_on_raw_arrays():
    pc, m, loss = tiny_lm()
    _, grads = dy.value_and_grad(loss, pc)(IDS)
    values = pc.parameter_values()
    W_x, W_h, b_l = (values[p.name()] for p in m["rnn"].get_parameters()[0])
    E, R, b = values[m["E"].name()], values[m["R"].name()], values[m["b"].name()]

    def raw(W_x, W_h, b_l, E, R, b):  # the same model, written without dynrnn
        def step(carry, x):
            c, h = carry
            i, f, o, g = jnp.split(W_x @ x + W_h @ h + b_l, 4)
            c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (c, h), h
        _, hs = jax.lax.scan(step, (jnp.zeros(6), jnp.zeros(6)), E[IDS[:-1]])
        logp = jax.nn.log_softmax(hs @ R.T + b)
        return -jnp.sum(jnp.take_along_axis(logp, IDS[1:, None], axis=1))

    want = jax.grad(raw, argnums=tuple(range(6)))(W_x, W_h, b_l, E, R, b)
    names = [p.name() for p in m["rnn"].get_parameters()[0]] + [m["E"].name(), m["R"].name(), m["b"].name()]
    for name, g in zip(names, want):
        np.testing.assert_allclose(grads[name], g, rtol=1e-5, atol=1e-6)


def test_grads_match_finite_differences(x64):
    pc, m, loss = tiny_lm(dtype=jnp.float64)
    value, grads = dy.value_and_grad(loss, pc)(IDS)
    rng = np.random.default_rng(0)
    for p in pc.all_parameters():
        base = p.as_array()
        for _ in range(3):
            idx = tuple(rng.integers(0, n) for n in base.shape)
            eps = 1e-6
            plus, minus = base.copy(), base.copy()
            plus[idx] += eps
            minus[idx] -= eps
            p.set_value(plus)
            lp = float(loss(IDS))
            p.set_value(minus)
            lm = float(loss(IDS))
            p.set_value(base)
            np.testing.assert_allclose(grads[p.name()][idx], (lp - lm) / (2 * eps), rtol=1e-5, atol=1e-7)


def test_uncompiled_mode_gives_the_same_result():
    pc, m, loss = tiny_lm()
    a = dy.value_and_grad(loss, pc)(IDS)
    b = dy.value_and_grad(loss, pc, jit=False)(IDS)
    assert_trees_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_non_array_arguments_are_static_and_structure_can_change_per_call():
    pc, m, loss = tiny_lm()
    vocab = {c: i for i, c in enumerate("abcdefg")}

    def by_string(sentence, model):  # DyNet tutorial style: a string and a dict of parameters
        return loss(jnp.array([vocab[c] for c in sentence]))

    l1, _ = dy.value_and_grad(by_string, pc)("abcab", m)
    l2, _ = dy.value_and_grad(loss, pc)(jnp.array([vocab[c] for c in "abcab"]))
    np.testing.assert_allclose(l1, l2, rtol=1e-6)

    def tree_loss(tree):  # a different nested structure per example, as in a TreeRNN
        if isinstance(tree, str):
            return m["E"][vocab[tree]]
        left, right = tree_loss(tree[0]), tree_loss(tree[1])
        return jnp.tanh(left + right)

    def objective(tree):
        return jnp.sum(tree_loss(tree) ** 2)

    trees = [(("b", "c"), "d"), ("b", ("c", ("d", "e"))), (("a", "b"), ("c", "d"))]
    with count_compiles() as names:
        eager = [dy.value_and_grad(objective, pc, jit=False)(t) for t in trees]
    assert not [n for n in names if "pure" in n]  # no whole-function compile per structure
    compiled = [dy.value_and_grad(objective, pc)(t) for t in trees]
    assert_trees_allclose(eager, compiled, rtol=1e-5, atol=1e-6)


# --- trainers against NumPy -----------------------------------------------------------

def np_rules(name, lr, **kw):
    """Returns (state0, update(p, g, state, t)) in NumPy, from DyNet's training.cc."""
    if name == "sgd":
        return None, lambda p, g, s, t: (p - lr * g, s)
    if name == "momentum":
        return 0.0, lambda p, g, v, t: (p + (0.9 * v - lr * g), 0.9 * v - lr * g)
    if name == "adagrad":
        def up(p, g, G, t):
            G = G + g * g
            return p - lr * g / np.sqrt(G + 1e-20), G
        return 0.0, up
    if name == "adadelta":
        def up(p, g, s, t):
            hg, hd = s
            hg = 0.95 * hg + 0.05 * g * g
            d = -g * np.sqrt(hd + 1e-6) / np.sqrt(hg + 1e-6)
            return p + d, (hg, 0.95 * hd + 0.05 * d * d)
        return (0.0, 0.0), up
    if name == "rmsprop":  # DyNet's Python defaults: rho 0.9, eps 1e-8 (its C++ ones are 0.95, 1e-20)
        def up(p, g, h, t):
            h = 0.9 * h + 0.1 * g * g
            return p - lr * g / np.sqrt(h + 1e-8), h
        return 0.0, up
    if name in ("adam", "amsgrad"):
        def up(p, g, s, t):
            m, v, vmax = s
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            vmax = np.maximum(vmax, v) if name == "amsgrad" else v
            lr_t = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            return p - lr_t * m / (np.sqrt(vmax) + 1e-8), (m, v, vmax)
        return (0.0, 0.0, 0.0), up
    raise KeyError(name)


TRAINERS = {
    "sgd": (lambda pc: dy.SimpleSGDTrainer(pc), 0.1),
    "momentum": (lambda pc: dy.MomentumSGDTrainer(pc), 0.01),
    "adagrad": (lambda pc: dy.AdagradTrainer(pc), 0.1),
    "adadelta": (lambda pc: dy.AdadeltaTrainer(pc), 1.0),
    "rmsprop": (lambda pc: dy.RMSPropTrainer(pc), 0.001),
    "adam": (lambda pc: dy.AdamTrainer(pc), 0.001),
    "amsgrad": (lambda pc: dy.AmsgradTrainer(pc), 0.001),
}


@pytest.mark.parametrize("name", sorted(TRAINERS))
@pytest.mark.parametrize("grad_scale", [0.1, 10.0])  # 10.0: the global norm exceeds 5 → clipped
def test_first_updates_match_numpy(name, grad_scale):
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((3, 4))
    E = pc.add_lookup_parameters((5, 2))
    trainer, lr = TRAINERS[name][0](pc), TRAINERS[name][1]
    assert trainer.learning_rate == lr
    rng = np.random.default_rng(1)
    p_np = {"W": W.as_array().astype(np.float64), "E": E.as_array().astype(np.float64)}
    s0, up = np_rules(name, lr)
    state = {k: s0 for k in p_np}
    clipped = 0
    for t in range(1, 4):
        g = {"W": rng.normal(size=(3, 4)) * grad_scale, "E": rng.normal(size=(5, 2)) * grad_scale}
        g["E"][[1, 3]] = 0.0  # rows not used this step
        norm = np.sqrt(sum(np.sum(v * v) for v in g.values()))
        scale = 5.0 / norm if norm > 5.0 else 1.0
        clipped += norm > 5.0
        trainer.update({W.name(): jnp.asarray(g["W"], jnp.float32), E.name(): jnp.asarray(g["E"], jnp.float32)})
        for k in p_np:
            new, state[k] = up(p_np[k], g[k] * scale, state[k], t)
            if k == "E":  # sparse updates: untouched rows keep their values
                new[[1, 3]] = p_np[k][[1, 3]]
            p_np[k] = new
        np.testing.assert_allclose(W.as_array(), p_np["W"], rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(E.as_array(), p_np["E"], rtol=2e-5, atol=2e-6)
    assert trainer.clips == clipped and trainer.updates == 3


def test_clipping_can_be_disabled_and_frozen_parameters_stay():
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters(2, init=0.0)
    F = pc.add_parameters(2, init=1.0)
    F.set_updated(False)
    t = dy.SimpleSGDTrainer(pc, learning_rate=1.0)
    t.set_clip_threshold(0)
    t.update({W.name(): jnp.array([30.0, 40.0])})
    np.testing.assert_allclose(W.as_array(), [-30.0, -40.0])
    np.testing.assert_array_equal(F.as_array(), [1.0, 1.0])
    t.set_clip_threshold(5)
    t.update({W.name(): jnp.array([30.0, 40.0])})
    np.testing.assert_allclose(W.as_array(), [-33.0, -44.0], rtol=1e-6)


def test_cyclical_learning_rate_follows_the_triangle_as_dynet_steps_it():
    """The rates DyNet 2.1.2's CyclicalSGDTrainer(pc, 0.01, 0.1, 4) reports before the first
    update and after each of the next nine (the triangle at t - 1 after update t)."""
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters(1, init=0.0)
    t = dy.CyclicalSGDTrainer(pc, learning_rate_min=0.01, learning_rate_max=0.1, step_size=4)
    rates = [t.learning_rate]
    for _ in range(9):
        t.update({W.name(): jnp.zeros(1)})
        rates.append(t.learning_rate)
    np.testing.assert_allclose(rates, [0.01, 0.01, 0.0325, 0.055, 0.0775, 0.1, 0.0775, 0.055, 0.0325, 0.01], atol=1e-9)


def test_optax_transformation_matches_the_dynet_trainer():
    optax = pytest.importorskip("optax")
    runs = []
    for make in (lambda pc: dy.SimpleSGDTrainer(pc, 0.1), lambda pc: dy.OptaxTrainer(pc, optax.sgd(0.1))):
        pc, m, loss = tiny_lm()
        trainer = make(pc)
        losses = [trainer.step(loss, IDS) for _ in range(5)]
        runs.append((losses, [p.as_array() for p in pc.all_parameters()]))
    assert_trees_allclose(runs[0], runs[1], rtol=1e-5, atol=1e-6)


def test_step_compiles_once_per_length():
    pc, m, loss = tiny_lm()
    trainer = dy.SimpleSGDTrainer(pc)
    sentences = [jnp.array(s) for s in ([0, 1, 2, 0], [0, 3, 3, 4, 5, 0], [0, 2, 1, 0], [0, 5, 4, 3, 2, 0])]
    with count_compiles() as names:
        for _ in range(3):
            for s in sentences:
                trainer.step(loss, s)
    assert len([n for n in names if "fused" in n]) == 2


def test_non_finite_loss_or_gradient_raises_and_changes_nothing():
    pc, m, loss = tiny_lm()
    trainer = dy.AdamTrainer(pc)
    before = [p.as_array() for p in pc.all_parameters()]
    with pytest.raises(dy.NonFiniteError, match="loss is nan.*no parameter was changed"):
        trainer.step(lambda ids: loss(ids) * jnp.nan, IDS)
    with pytest.raises(dy.NonFiniteError, match="norm is inf"):
        trainer.update({name: jnp.full(v.shape, jnp.inf) for name, v in pc.parameter_values().items()})
    assert_trees_allclose([p.as_array() for p in pc.all_parameters()], before, rtol=0, atol=0)
    assert trainer.updates == 0
    trainer.step(loss, IDS)  # and training goes on afterwards
    assert trainer.updates == 1


def test_dropout_draws_fresh_masks_each_compiled_step_and_seeds_reproduce():
    pc, m, loss = tiny_lm()
    m["rnn"].set_dropout(0.5)
    vg = dy.value_and_grad(loss, pc)
    l1, _ = vg(IDS)
    l2, _ = vg(IDS)
    assert float(l1) != float(l2)  # same parameters, same input, different masks
    m["rnn"].disable_dropout()
    l3, _ = vg(IDS)
    l4, _ = vg(IDS)
    assert float(l3) == float(l4)

    def run():
        pc, m, loss = tiny_lm(seed=3)
        m["rnn"].set_dropout(0.3)
        t = dy.SimpleSGDTrainer(pc)
        return [t.step(loss, IDS) for _ in range(4)], [p.as_array() for p in pc.all_parameters()]

    assert_trees_allclose(run(), run(), rtol=0, atol=0)


def test_learning_rate_restart_and_status(capsys):
    pc, m, loss = tiny_lm()
    t = dy.MomentumSGDTrainer(pc, learning_rate=0.05)
    t.step(loss, IDS)
    t.learning_rate = 0.01
    assert t.learning_rate == 0.01
    assert t.status() == "[lr=0.01 clips=0 updates=1]"
    assert "updates=1" in capsys.readouterr().out
    t.restart(0.2)
    assert t.learning_rate == 0.2 and t._state is None


def test_has_aux_returns_the_final_state_for_truncated_bptt():
    pc, m, loss = tiny_lm()
    trainer = dy.SimpleSGDTrainer(pc)

    def chunk_loss(ids, s):
        hs, final = s.transduce(m["E"].batch(ids[:-1]), return_state=True)
        logp = jax.nn.log_softmax(hs @ m["R"].T + m["b"].expr())
        return -jnp.sum(jnp.take_along_axis(logp, ids[1:, None], axis=1)), final.detach()

    s = m["rnn"].initial_state()
    for chunk in (IDS[:4], IDS[3:]):
        loss, s = trainer.step(chunk_loss, chunk, s, has_aux=True)
    assert isinstance(s, dy.RNNState) and s.prev() is None


@pytest.mark.parametrize("how", ["update", "step", "graph"])
def test_weight_decay_multiplies_every_parameter_by_one_minus_lambda_after_the_step(how):
    """DyNet's L2 weight decay (`pc.set_weight_decay(λ)`): after each update's step every
    parameter of the collection — each row of a lookup table too, used or not — is multiplied
    by 1 − λ: p ← (p − lr·g)·(1 − λ). NumPy recursion on a linear loss (constant gradient)."""
    lam, lr = 0.1, 0.5
    pc = dy.ParameterCollection(seed=0)
    pc.set_weight_decay(lam)
    W = pc.add_parameters(3, init=np.array([1.0, -2.0, 3.0], np.float32))
    E = pc.add_lookup_parameters((4, 2), init=np.arange(8, dtype=np.float32).reshape(4, 2))
    F = pc.add_parameters(2, init=1.0)
    F.set_updated(False)  # frozen, but DyNet decays it with the rest (2.1.2: 0.9^3 after three updates)
    t = dy.SimpleSGDTrainer(pc, lr)
    t.set_clip_threshold(0)
    c = np.array([0.5, -1.0, 2.0], np.float32)
    w, e = W.as_array().astype(np.float64), E.as_array().astype(np.float64)
    for _ in range(3):
        if how == "update":
            t.update({W.name(): jnp.asarray(c), E.name(): jnp.zeros((4, 2)).at[1].set(1.0)})
        elif how == "step":
            t.step(lambda: jnp.dot(W.value, c) + jnp.sum(E.value[1]))
        else:
            dy.renew_cg()
            (dy.dot_product(dy.parameter(W), dy.inputTensor(c)) + dy.sum_elems(E[1])).backward()
            t.update()
        w = (w - lr * c) * (1 - lam)
        e = e * (1 - lam)
        e[1] -= lr * (1 - lam)
    np.testing.assert_allclose(W.as_array(), w, rtol=1e-6)
    np.testing.assert_allclose(E.as_array(), e, rtol=1e-6)
    np.testing.assert_allclose(F.as_array(), np.full(2, (1 - lam) ** 3), rtol=1e-6)


def test_weight_decay_comes_after_adams_step_and_follows_each_collection():
    """Adam's step is the same with and without decay on a linear loss, and the decayed run
    follows p ← (p + step)·(1 − λ); a parameter of a collection without decay is untouched by
    it, and a subcollection starts with its parent's λ."""
    c = np.array([0.5, -1.0, 2.0], np.float32)

    def run(lam):
        pc = dy.ParameterCollection(seed=0)
        pc.set_weight_decay(lam)
        W = pc.add_parameters(3, init=np.array([1.0, -2.0, 3.0], np.float32))
        sub = pc.add_subcollection("sub")
        V = sub.add_parameters(3, init=1.0)
        other = dy.ParameterCollection(seed=1)
        t = dy.AdamTrainer(pc, 0.1)
        out = [W.as_array().astype(np.float64)]
        for _ in range(4):
            t.update({W.name(): jnp.asarray(c), V.name(): jnp.zeros(3)})
            out.append(W.as_array().astype(np.float64))
        return out, V.as_array(), sub.get_weight_decay(), other.get_weight_decay()

    plain, v_plain, _, _ = run(0.0)
    decayed, v_decayed, sub_lam, other_lam = run(0.05)
    p = plain[0]
    for k in range(4):
        p = (p + (plain[k + 1] - plain[k])) * 0.95
        np.testing.assert_allclose(decayed[k + 1], p, rtol=1e-5)
    np.testing.assert_allclose(v_plain, np.ones(3))
    np.testing.assert_allclose(v_decayed, np.full(3, 0.95 ** 4), rtol=1e-6)
    assert sub_lam == 0.05 and other_lam == 0.0
    with pytest.raises(ValueError, match=r"set_weight_decay: the weight decay λ must be a number in \[0, 1\); "
                                         r"given 1.5"):
        dy.ParameterCollection().set_weight_decay(1.5)


def test_update_subset_does_nothing_as_in_dynet_2_1_2():
    """DyNet 2.1.2's Python `update_subset` leaves its call out: no parameter changes and the
    accumulated gradients stay for the next update(). Here too, with a warning that says so
    and names the way that works (freezing)."""
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters(2, init=1.0)
    t = dy.SimpleSGDTrainer(pc, learning_rate=0.5)
    dy.renew_cg()
    dy.sum_elems(dy.cmult(dy.parameter(W), dy.inputVector([2.0, 2.0]))).backward()
    with pytest.warns(UserWarning, match=r"update_subset does nothing .*set_updated\(False\)"):
        t.update_subset([0], [])
    np.testing.assert_allclose(W.as_array(), [1.0, 1.0])
    t.update()  # the gradient is still there
    np.testing.assert_allclose(W.as_array(), [0.0, 0.0])


def test_dynets_learning_rate_spellings():
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters(2, init=0.0)
    t = dy.SimpleSGDTrainer(pc, learning_rate=1.0)
    t.set_learning_rate(0.5)
    assert t.learning_rate == 0.5
    with pytest.warns(DeprecationWarning, match="does nothing"):
        t.update_epoch(2.0)  # deprecated in DyNet 2, where it leaves the rate as it is
    assert t.learning_rate == 0.5
    t.update({W.name(): jnp.array([1.0, 2.0])})
    np.testing.assert_allclose(W.as_array(), [-0.5, -1.0])
    with pytest.raises(ValueError, match="learning_rate"):
        t.set_learning_rate(-1.0)
