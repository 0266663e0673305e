"""Replay: a graph structure that recurs runs as one compiled function (`dynrnn.graph._replay`).

The reference is the kernel path (`replay="never"`), itself checked against NumPy and
finite differences in test_graph.py: a replayed graph must give the same values, the same
dense and sparse gradients and so the same updates, take every new id, input and
parameter value as data, and fall back to the kernel path for anything it did not keep.
"""

import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dynrnn as dy
from dynrnn.graph import _replay

from .helpers import dy_config


def replay(mode):
    return dy_config(replay=mode)


def _model(dropout=0.0):
    pc = dy.ParameterCollection(seed=7)
    m = {
        "E": pc.add_lookup_parameters((12, 4)),
        "W": pc.add_parameters((6, 5)),
        "b": pc.add_parameters((6,)),
        "V": pc.add_parameters((5, 8)),
        "enc": dy.LSTMBuilder(1, 4, 4, pc),
        "dec": dy.LSTMBuilder(2, 12, 5, pc),
    }
    if dropout:
        m["dec"].set_dropout(dropout)
    return pc, m


def _lm(m, ids):
    """A language model: lookups (sparse rows), an LSTM, softmax losses."""
    s = m["dec"].initial_state()
    W, b = m["W"], dy.parameter(m["b"])
    errs = []
    for cur, nxt in zip(ids, ids[1:]):
        s = s.add_input(dy.concatenate([m["E"][cur], dy.inputTensor(np.full(8, 0.1 * cur, np.float32))]))
        errs.append(dy.pickneglogsoftmax(W * s.output() + b, nxt % 6))
    return dy.esum(errs)


def _train_step(pc, m, ids):
    """One graph of `_lm` on `ids`: its value, backward(), the gradients cleared. Returns
    the graph."""
    dy.renew_cg()
    loss = _lm(m, ids)
    loss.value()
    loss.backward()
    for p in pc.all_parameters():
        p.clear_grad()
    return loss.graph


def _attention(m, ids):
    """An encoder-decoder with attention: concatenate_cols, colwise_add, softmax, pick."""
    enc = [s.output() for s in m["enc"].initial_state().add_inputs([m["E"][i] for i in ids])]
    mat = dy.concatenate_cols(enc)
    s = m["dec"].initial_state()
    errs = []
    for i in ids:
        q = dy.pickrange(s.output(), 0, 4)
        att = dy.softmax(dy.transpose(dy.tanh(dy.colwise_add(mat, q))) * q)
        ctx = mat * att
        s = s.add_input(dy.concatenate([ctx, m["E"][i], dy.tanh(m["V"] * dy.concatenate([ctx, ctx]))[:4]]))
        errs.append(-dy.log(dy.pick(dy.softmax(m["W"] * s.output() + m["b"]), i % 6)))
    return dy.esum(errs)


def _minibatch(m, ids):
    """A minibatch in one graph: lookup_batch, batched LSTM, pickneglogsoftmax_batch, sum_batches."""
    batch = [ids, ids[::-1], [(i + 3) % 12 for i in ids]]
    s = m["dec"].initial_state()
    errs = []
    for t in range(len(ids) - 1):
        x = dy.lookup_batch(m["E"], [b[t] for b in batch])
        s = s.add_input(dy.concatenate([x, dy.inputTensor(np.ones((8, 3), np.float32), batched=True)]))
        errs.append(dy.pickneglogsoftmax_batch(m["W"] * s.output() + m["b"], [b[t + 1] % 6 for b in batch]))
    return dy.sum_batches(dy.esum(errs))


PROGRAMS = {"lm": _lm, "attention": _attention, "minibatch": _minibatch}
SENTENCES = [[1, 5, 2, 9, 3], [4, 4, 11, 0, 7], [2, 8, 6, 1, 10]]  # one length: one structure


def _train(program, mode, trainer_class, dropout=0.0, sentences=SENTENCES, model=_model):
    """An update per sentence; the losses, the final parameter values, and how each graph ran."""
    pc, m = model(dropout)
    trainer = trainer_class(pc)
    losses, replayed = [], []
    with replay(mode):
        for ids in sentences:
            dy.renew_cg()
            loss = program(m, ids)
            losses.append(loss.scalar_value())
            loss.backward()
            replayed.append(loss.graph.replayed is not None)
            trainer.update()
    return losses, {p.name(): np.array(p.as_array()) for p in pc.all_parameters()}, replayed


@pytest.mark.parametrize("trainer_class", [dy.SimpleSGDTrainer, dy.AdamTrainer], ids=["sgd", "adam"])
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_replay_gives_the_kernel_paths_losses_gradients_and_updates(name, trainer_class):
    base_losses, base_params, base_replayed = _train(PROGRAMS[name], "never", trainer_class)
    losses, params, replayed = _train(PROGRAMS[name], "always", trainer_class)
    assert base_replayed == [False] * 3
    assert replayed == [True] * 3  # one structure, replayed with new ids and new parameter values
    np.testing.assert_allclose(losses, base_losses, rtol=2e-5)
    assert len(set(np.round(losses, 4))) == 3  # the data changed between graphs, and the losses with it
    for k in base_params:
        np.testing.assert_allclose(params[k], base_params[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_replay_keeps_lookup_gradients_sparse():
    """A table reached only through lookups gets rows (trainers then move only those rows)."""
    pc, m = _model()
    E = m["E"]
    trainer = dy.AdamTrainer(pc)
    before = E.as_array()
    with replay("always"):
        dy.renew_cg()
        loss = _lm(m, [1, 5, 2])
        loss.backward()
        assert loss.graph.replayed is not None
        ids, _ = E.sparse_grad()
        assert sorted(set(ids.tolist())) == [1, 5]  # the rows the inputs looked up (not the last word)
        trainer.update()
    after = E.as_array()
    untouched = [i for i in range(12) if i not in (1, 5)]
    np.testing.assert_array_equal(after[untouched], before[untouched])
    assert not np.allclose(after[[1, 5]], before[[1, 5]])


def test_a_structure_keeps_no_old_graphs_values_alive():
    """Once a replayed graph is gone, nothing of it stays: a structure remembers whether its
    last replay's gradients were taken, not the replay (whose leaves, an old version of
    every parameter, would otherwise stay in memory per structure)."""
    import weakref

    pc, m = _model()
    E = m["E"]
    trainer = dy.SimpleSGDTrainer(pc)
    with replay("always"):
        for sentence in ([1, 5, 2], [3, 4, 7, 1]):
            dy.renew_cg()
            loss = _lm(m, sentence)
            loss.backward()
            assert loss.graph.replayed is not None
            old = weakref.ref(E.stored_value())
            trainer.update()
            del loss
            dy.renew_cg()
            assert old() is None


def test_replay_takes_dropout_keys_as_data():
    """Dropout masks come from keys that are arguments, not constants of the compiled code:
    the same structure with new keys gives the kernel path's values, and they differ."""
    base, _, _ = _train(_lm, "never", dy.SimpleSGDTrainer, dropout=0.5)
    losses, _, replayed = _train(_lm, "always", dy.SimpleSGDTrainer, dropout=0.5)
    assert replayed == [True] * 3
    np.testing.assert_allclose(losses, base, rtol=2e-5)


def test_a_replayed_graph_falls_back_for_what_it_did_not_keep():
    pc, m = _model()
    with replay("never"):
        dy.renew_cg()
        s = m["dec"].initial_state().add_input(dy.concatenate([m["E"][3], dy.vecInput(8)]))
        h = s.output()
        logits = m["W"] * h + m["b"]
        loss = dy.pickneglogsoftmax(logits, 2)
        want_loss, want_h = loss.scalar_value(), h.npvalue()
        loss.backward()
        want_grad_h, want_W, want_grad_logits = h.gradient(), m["W"].grad_as_array(), logits.gradient()
        assert np.abs(want_grad_h).max() > 0 and np.abs(want_grad_logits).max() > 0
        for p in pc.all_parameters():
            p.clear_grad()
    with replay("always"):
        for ask in ("value", "extend", "gradient"):
            _replay.forget()  # each falls back, which marks the structure
            dy.renew_cg()
            s = m["dec"].initial_state().add_input(dy.concatenate([m["E"][3], dy.vecInput(8)]))
            h = s.output()
            logits = m["W"] * h + m["b"]
            loss = dy.pickneglogsoftmax(logits, 2)
            assert loss.scalar_value() == pytest.approx(want_loss, rel=1e-6)
            g = loss.graph
            assert g.replayed is not None and h.val is None  # only the asked-for value was kept
            if ask == "value":
                np.testing.assert_allclose(h.npvalue(), want_h, rtol=1e-6)  # runs the kernel path
                assert g.replayed is None
            elif ask == "extend":
                more = dy.sum_elems(h * 2.0)
                np.testing.assert_allclose(more.scalar_value(), 2 * want_h.sum(), rtol=1e-5)
            else:
                loss.backward()
                assert g.backward_replayed is loss
                np.testing.assert_allclose(m["W"].grad_as_array(), want_W, rtol=1e-5, atol=1e-7)
                np.testing.assert_allclose(logits.gradient(), want_grad_logits, rtol=1e-5, atol=1e-7)
                np.testing.assert_allclose(h.gradient(), want_grad_h, rtol=1e-5, atol=1e-7)
                # gradient() did not add to the parameters a second time
                np.testing.assert_allclose(m["W"].grad_as_array(), want_W, rtol=1e-5, atol=1e-7)
            for p in pc.all_parameters():
                p.clear_grad()


def test_a_structure_that_falls_back_often_is_not_replayed_again():
    """A program that now and then extends a graph after its loss (DyNet's attention example
    samples from the training graph every 20 updates) keeps its replay; one that does so as
    a rule goes back to the kernel path. Either way the values are right."""
    pc, m = _model()
    x = np.arange(8, dtype=np.float32)

    def graph(extend):
        dy.renew_cg()
        h = dy.tanh(m["V"] * dy.inputTensor(x))
        loss = dy.sum_elems(h)
        loss.value()
        plan = loss.graph.replayed.plan if loss.graph.replayed is not None else None
        if extend:  # not kept by the replay: falls back to the kernel path
            np.testing.assert_allclose(h.npvalue(), np.tanh(m["V"].as_array() @ x), rtol=1e-5, atol=1e-6)
        return plan

    with replay("always"):
        plans = [graph(extend=(i == 3)) for i in range(8)]  # one graph in eight falls back
        assert all(p is plans[0] for p in plans) and plans[0].status == "ready"
        plans = [graph(extend=True) for _ in range(3)]  # now as a rule
        assert plans[0] is not None and plans[-1] is None and plans[0].status == "off"


def test_auto_compiles_a_structure_once_it_has_cost_what_compiling_costs(monkeypatch):
    """The rent-or-buy rule: a structure is compiled once the time its graphs spent on the
    kernel path reaches the estimated cost of compiling it (here set by hand)."""
    pc, m = _model()
    estimate = {"s": float("inf")}
    monkeypatch.setattr(_replay, "_compile_estimate", lambda n: estimate["s"])
    with replay("auto"):
        graphs = [_train_step(pc, m, [1, 2, 3, 4, 5, 6]) for _ in range(4)]
        assert all(g.replayed is None for g in graphs)
        plan = graphs[-1].plan
        assert plan.spent > 0 and plan.status == "new"
        estimate["s"] = plan.spent  # what it has cost so far: compile now
        assert _train_step(pc, m, [3, 2, 1, 4, 5, 6]).replayed is not None
        assert plan.status == "ready"


def test_a_training_loop_compiles_the_forward_alone_only_when_a_graph_needs_it(monkeypatch):
    """In a training loop a replay computes value and gradient in one call, so only that
    function is compiled when the structure is due; a later graph without backward()
    (an evaluation) compiles the forward then, and gets the kernel path's value."""
    monkeypatch.setattr(_replay, "_compile_estimate", lambda n: 1e-12)  # due from the second graph on
    pc, m = _model()

    def run(ids, train):
        dy.renew_cg()
        loss = _lm(m, ids)
        v = loss.scalar_value()
        if train:
            loss.backward()
            for p in pc.all_parameters():
                p.clear_grad()
        return v, loss.graph

    with replay("auto"):
        graphs = [run([1, 2, 3, 4, 5], True)[1] for _ in range(3)]
        plan = graphs[-1].replayed.plan
        assert plan.status == "ready" and plan.grad is not None and plan.fwd is None
        with replay("never"):
            want = [run([5, 4, 3, 2, 1], False)[0] for _ in range(2)]
        got = [run([5, 4, 3, 2, 1], False) for _ in range(2)]
        assert all(g.replayed is not None for _, g in got) and plan.fwd is not None
        np.testing.assert_allclose([v for v, _ in got], want, rtol=1e-5)


def test_auto_never_compiles_a_structure_whose_graphs_go_on_past_it(monkeypatch):
    """DyNet's eager tagging asks for each word's value in turn: every graph's first forward
    has a structure that recurs, but the graph goes on running nodes after it, so a replay
    would fall back every time. Such a structure is never compiled (it was, measured: a
    whole-graph replay, forward and gradient, 2.5–3.2 s wasted in 300 sentences); the same
    graphs that stop at their first value are."""
    monkeypatch.setattr(_replay, "_compile_estimate", lambda n: 1e-12)  # due from the second graph on
    pc, m = _model()

    def run(go_on):
        dy.renew_cg()
        loss = _lm(m, [1, 2, 3, 4])
        loss.value()
        if go_on:
            (loss * 2.0).value()
        return loss.graph

    with replay("auto"):
        graphs = [run(True) for _ in range(6)]
        assert all(g.replayed is None for g in graphs)
        plan, = _replay._PLANS.values()
        assert plan.status == "off" and plan.fwd is None and _replay._COST["seconds"] == 0.0
        dy.renew_cg()
        other = _lm(m, [1, 2, 3, 4, 5])  # another structure: stopping at its value, it compiles
        other.value()
        graphs = []
        for _ in range(3):
            dy.renew_cg()
            loss = _lm(m, [1, 2, 3, 4, 5])
            loss.value()
            graphs.append(loss.graph)
        assert graphs[-1].replayed is not None and _replay._COST["seconds"] > 0


def test_a_structure_is_keyed_from_its_second_sighting(monkeypatch):
    """A structure seen once gets no key and no plan (graphs that never recur, e.g. random
    minibatches, then cost nothing here); the second graph of the structure makes its plan."""
    pc, m = _model()
    with replay("auto"):
        for words, plans in (([1, 2, 3], 0), ([1, 2, 3, 4], 0), ([3, 2, 1], 1), ([4, 3, 2, 1], 2)):
            dy.renew_cg()
            _lm(m, words).value()
            assert len(_replay._PLANS) == plans
        assert all(p.seen == 1 for p in _replay._PLANS.values())


def test_the_compile_estimate_grows_with_the_square_of_the_structure(monkeypatch):
    """Compiling an unrolled structure costs about k·n² (XLA:CPU, measured: twice the
    sentence, 3.6x the time): a long sentence's structure must wait four times as long as
    half of it before it is compiled, or one run can spend minutes compiling it."""
    first = _replay._compile_estimate(488)
    assert abs(_replay._compile_estimate(976) - 4 * first) < 1e-9 * first
    pc, m = _model()
    with replay("always"):  # one real compilation re-estimates k
        dy.renew_cg()
        loss = _lm(m, [1, 2, 3])
        loss.value()
        plan, = _replay._PLANS.values()
        assert plan.status == "ready"
    n = len(plan.key)
    seconds = _replay._COST["seconds"]
    assert seconds > 0 and _replay._COST["nodes2"] == float(n) ** 2
    least = _replay._LEAST  # (two compilations, however small the structure)
    assert abs(_replay._compile_estimate(n) - max(least, seconds)) < 1e-9 * seconds
    assert abs(_replay._compile_estimate(3 * n) - max(least, 9 * seconds)) < 1e-9 * seconds
    assert _replay._compile_estimate(1) == least


def test_different_wiring_is_a_different_structure():
    pc, m = _model()
    dy.renew_cg()
    x = dy.inputTensor(np.ones(8, np.float32))
    a = dy.sum_elems(m["V"] * x + m["V"] * x)
    k1 = _replay.structure(a.graph, a.index)
    dy.renew_cg()
    x = dy.inputTensor(np.ones(8, np.float32))
    y = dy.inputTensor(np.full(8, 2.0, np.float32))
    a = dy.sum_elems(m["V"] * x + m["V"] * x)
    k2 = _replay.structure(a.graph, a.index)
    dy.renew_cg()
    x = dy.inputTensor(np.ones(8, np.float32))
    y = dy.inputTensor(np.full(8, 2.0, np.float32))
    a = dy.sum_elems(m["V"] * x + m["V"] * y)
    k3 = _replay.structure(a.graph, a.index)
    assert k1 != k2 != k3 and k1 != k3
    dy.renew_cg()
    x = dy.inputTensor(np.full(8, 5.0, np.float32))  # other values, same structure
    a = dy.sum_elems(m["V"] * x + m["V"] * x)
    assert _replay.structure(a.graph, a.index) == k1


@settings(max_examples=3)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(1, 4)), min_size=1, max_size=3),
       st.integers(0, 2 ** 31 - 1))
def test_replay_equals_the_kernel_path_on_random_graphs(examples, seed):
    """Several examples of different lengths in one graph, each a small LM: the replay
    (compiled at first sight) gives the kernel path's loss and gradients."""
    results = []
    for mode in ("never", "always"):
        pc, m = _model()
        rng = np.random.default_rng(seed)
        with replay(mode):
            dy.renew_cg()
            loss = dy.esum([_lm(m, [first] + [int(w) for w in rng.integers(0, 12, size=n)])
                            for first, n in examples])
            v = loss.scalar_value()
            loss.backward()
            assert (loss.graph.replayed is not None) == (mode == "always")
        results.append((v, {p.name(): np.asarray(p.grad()) for p in pc.all_parameters() if p.grad() is not None}))
    (v1, g1), (v2, g2) = results
    np.testing.assert_allclose(v2, v1, rtol=2e-5)
    assert g1.keys() == g2.keys()
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-4, atol=1e-6, err_msg=k)


def _laps_on_a_clock(monkeypatch, sentences, due_after, replayed_lap):
    """Trains on `sentences` (one graph each) with replay="auto" on a clock set by hand:
    a graph's lap takes 1 s on the kernel path and `replayed_lap` replayed; structures are
    due for compiling once `due_after` graphs have run. Returns the graphs."""
    now = [0.0]
    monkeypatch.setattr(_replay, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    graphs = []
    monkeypatch.setattr(_replay, "_compile_estimate", lambda n: 0.0 if len(graphs) > due_after else float("inf"))
    pc, m = _model()
    with replay("auto"):
        for ids in sentences:
            graphs.append(_train_step(pc, m, ids))
            now[0] += replayed_lap if graphs[-1].replayed is not None else 1.0
    return graphs


@pytest.mark.parametrize("replayed_lap, kept", [(2.0, False), (0.5, True)])
def test_auto_gives_up_a_structure_whose_replays_take_longer(monkeypatch, replayed_lap, kept):
    """replay="auto" times each iteration of the program's loop (from one graph of the
    structure to the next) replayed and on the kernel path: a structure whose replays take
    longer (median of 8, against 4 on the kernel path) goes back to the kernel path for
    good; one whose replays are faster stays replayed. (Laps on a clock set by hand: kernel
    path 1 s, replayed 2 s or 0.5 s.)"""
    graphs = _laps_on_a_clock(monkeypatch, [[1, 2, 3, 4]] * 24, 6, replayed_lap)
    (plan,) = _replay._PLANS.values()  # (the one structure)
    replayed = [g.replayed is not None for g in graphs]
    assert replayed[:7] == [False] * 7 and all(replayed[7:15])  # compiled at the 8th, then timed
    assert len(plan.kernel_s) >= 4 and len(plan.replay_s) >= 8
    assert plan.status == ("ready" if kept else "off")
    assert all(replayed[15:]) is kept and any(replayed[15:]) is kept


def test_auto_times_a_structure_between_graphs_of_other_structures(monkeypatch):
    """The lap of a graph runs to the next graph of any structure: two structures taking
    turns (sentences of two lengths) are both timed, and both given up when replayed laps
    are slower (clock set by hand: kernel path 1 s, replayed 3 s)."""
    graphs = _laps_on_a_clock(monkeypatch, [[1, 2, 3, 4] if k % 2 else [1, 2, 3, 4, 5] for k in range(44)], 12, 3.0)
    plans = list(_replay._PLANS.values())
    assert len(plans) == 2 and all(len(p.kernel_s) >= 4 and len(p.replay_s) >= 8 for p in plans)
    assert all(p.status == "off" for p in plans)
    assert any(g.replayed is not None for g in graphs) and all(g.replayed is None for g in graphs[-6:])
