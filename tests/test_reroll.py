"""Rerolling (`dynrnn.graph._reroll`): a replayed structure's repeated steps run as one scan.

The reference is the kernel path (`replay="never"`), itself checked against NumPy and
finite differences in test_graph.py: a rerolled replay must give its values and its
dense and sparse gradients, whatever the loops' wiring (carried states, parameters and
encodings used by every step, a different earlier node per step, lookups in the body).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dynrnn as dy
from dynrnn.graph import _replay, _reroll
from dynrnn.graph._graph import CURRENT

from .helpers import dy_config
from .test_replay import _attention, _lm, _minibatch, _model, _train


def _tagger(m, ids):
    """DyNet's BiLSTM tagger: each output reads the forward state of its word and the
    backward state of the same word, a different earlier node per step ("var" wiring)."""
    xs = [dy.noise(m["E"][i], 0.1) for i in ids]
    fw = [s.output() for s in m["enc"].initial_state().add_inputs(xs)]
    bw = [s.output() for s in m["enc"].initial_state().add_inputs(xs[::-1])]
    errs = [dy.pickneglogsoftmax(m["W"] * dy.tanh(m["V"] * dy.concatenate([f, b])) + m["b"], i % 6)
            for f, b, i in zip(fw, bw[::-1], ids)]
    return dy.esum(errs)


def _tagger_model(dropout=0.0):
    pc, m = _model(dropout)
    m["V"] = pc.add_parameters((5, 8))
    return pc, m


PROGRAMS = {"lm": _lm, "attention": _attention, "minibatch": _minibatch, "tagger": _tagger}


def _key(program, ids):
    pc, m = _tagger_model()
    dy.renew_cg()
    loss = program(m, ids)
    return _replay.structure(loss.graph, loss.index)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_a_programs_steps_are_found_as_loops_whatever_the_length(name):
    """Each step a program repeats is one loop; a longer sentence adds repetitions, not
    nodes to compile."""
    sizes = []
    for n in (6, 12):
        ids = [(3 * k + 1) % 12 for k in range(n)]
        key = _key(PROGRAMS[name], ids)
        loops = _reroll.find_loops(key)
        assert loops and all(lp.reps >= _reroll.MIN_REPS for lp in loops)
        assert all(a.end <= b.start for a, b in zip(loops, loops[1:]))  # in order, disjoint
        sizes.append(_reroll.size(key, loops))
    assert sizes[0] == sizes[1] < len(key) / 2


def test_the_wiring_of_the_tagger_loop():
    key = _key(_tagger, [1, 5, 2, 9, 3, 4, 7])
    kinds = {how for lp in _reroll.find_loops(key) for slots in lp.wiring for how, _ in slots}
    assert kinds == {"in", "carry", "inv", "var"}


def test_a_loop_needs_three_repetitions_and_consistent_wiring():
    assert _reroll.find_loops(_key(_lm, [1, 5, 2])) == ()  # two steps: left unrolled
    dy.renew_cg()
    x = dy.inputTensor(np.ones(5, np.float32))
    y = x
    for _ in range(5):
        y = dy.tanh(y)
    key = _replay.structure(y.graph, y.index)
    lp, = _reroll.find_loops(key)
    assert (lp.start, lp.period, lp.reps, lp.wiring, lp.carried) == (1, 1, 5, [[("carry", 0)]], (0,))
    assert lp.needed == (0,)  # the last one is the structure's target
    dy.renew_cg()
    x = dy.inputTensor(np.ones(5, np.float32))
    d = dy.tanh(dy.tanh(x)) + dy.tanh(dy.tanh(x))  # four tanh, but two chains: not one loop
    key = _replay.structure(d.graph, d.index)
    assert _reroll.find_loops(key) == ()


def _run(program, mode, sentences, trainer_class: type = dy.SimpleSGDTrainer):
    CURRENT.rng = None  # the same noise in both runs (the tagger's)
    return _train(program, mode, trainer_class, sentences=sentences, model=_tagger_model)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_a_rerolled_replay_gives_the_kernel_paths_losses_and_updates(name):
    sentences = [[1, 5, 2, 9, 3, 4, 7, 0], [4, 4, 11, 0, 7, 2, 2, 6], [2, 8, 6, 1, 10, 3, 5, 9]]
    base, base_params, _ = _run(PROGRAMS[name], "never", sentences, dy.AdamTrainer)
    losses, params, replayed = _run(PROGRAMS[name], "always", sentences, dy.AdamTrainer)
    assert replayed == [True] * 3
    plan = next(p for p in _replay._PLANS.values() if p.status == "ready" and p.key == _key(PROGRAMS[name],
                                                                                           sentences[0]))
    assert plan.size < len(plan.key) / 2  # it was rerolled
    np.testing.assert_allclose(losses, base, rtol=2e-5)
    for k in base_params:
        np.testing.assert_allclose(params[k], base_params[k], rtol=1e-4, atol=1e-6, err_msg=k)


@settings(max_examples=4, deadline=None)
@given(st.lists(st.integers(0, 11), min_size=3, max_size=14), st.sampled_from(sorted(PROGRAMS)))
def test_rerolled_gradients_equal_the_kernel_paths(ids, name):
    results = []
    for mode in ("never", "always"):
        CURRENT.rng = None
        pc, m = _tagger_model()
        with dy_config(replay=mode):
            dy.renew_cg()
            loss = PROGRAMS[name](m, ids)
            v = loss.scalar_value()
            loss.backward()
        sparse = m["E"].sparse_grad()
        rows = {}
        if sparse is not None:
            for i, r in zip(sparse[0].tolist(), np.concatenate([np.asarray(b) for b in sparse[1]])):
                rows[i] = rows.get(i, 0) + r
        dense = {p.name(): np.asarray(p.grad()) for p in pc.all_parameters() if p.grad() is not None}
        results.append((v, dense, rows))
    (v1, g1, r1), (v2, g2, r2) = results
    np.testing.assert_allclose(v2, v1, rtol=2e-5)
    assert g1.keys() == g2.keys() and r1.keys() == r2.keys()
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-4, atol=1e-6, err_msg=k)
    for k in r1:
        np.testing.assert_allclose(r2[k], r1[k], rtol=1e-4, atol=1e-6, err_msg=f"row {k}")


def test_a_structure_whose_rerolled_build_fails_is_compiled_unrolled(monkeypatch):
    """A failure of the scans (none is known) costs the compile time, never the replay."""
    real = _reroll.evaluate

    def broken(key, loops, *args):
        if loops:
            raise RuntimeError("rerolling failed")
        return real(key, loops, *args)

    base, _, _ = _run(_lm, "never", [[1, 5, 2, 9, 3, 4]])
    monkeypatch.setattr(_reroll, "evaluate", broken)
    _replay.forget()
    losses, _, replayed = _run(_lm, "always", [[1, 5, 2, 9, 3, 4]])
    assert replayed == [True]
    plan, = [p for p in _replay._PLANS.values() if p.status == "ready"]
    assert plan.error is None and plan.size == len(plan.key)  # compiled unrolled, sized so
    np.testing.assert_allclose(losses, base, rtol=2e-5)
