"""DyNet 2.1.2's remaining public names, as its programs use them: the text-file methods
of a collection (`write_to_textfile`, `populate_from_textfile`, `load_param`,
`load_lookup_param`; DyNet's own xor.py calls `populate_from_textfile`), a parameter's
expression readers (`scalar_value`, `vec_value`, `tensor_value`, `gradient`), the `Tensor`
that `tensor_value()` returns (`as_numpy`, `argmax`, `topk`,
`categorical_sample_log_prob`), `StackedRNNState`, `SoftmaxBuilder`, `PyInitializer`,
`FromFileInitializer`, `dump_cg`, `print_graphviz`, `HAVE_CUDA` and `trainer.whoami()`.

The expected values are NumPy computations of DyNet's documented behaviour; the layouts
(column-major `vec_value`, `as_numpy` of a minibatch with the batch last, `argmax` keeping
the reduced axis with length 1) were checked against DyNet 2.1.2 built here."""

import numpy as np
import pytest

import dynrnn.dynet as dy


def _collection():
    pc = dy.ParameterCollection(seed=3)
    W = pc.add_parameters((2, 3), name="W")
    E = pc.add_lookup_parameters((5, 4), name="E")
    return pc, W, E


# -- a collection's text-file methods --------------------------------------------------------

def test_write_to_textfile_and_populate_from_textfile_round_trip(tmp_path):
    pc, W, E = _collection()
    path = str(tmp_path / "model")
    pc.write_to_textfile(path)
    pc2, W2, E2 = _collection()
    W2.set_value(np.zeros((2, 3)))
    pc2.populate_from_textfile(path)
    np.testing.assert_array_equal(W2.as_array(), W.as_array())
    np.testing.assert_array_equal(E2.as_array(), E.as_array())


def test_write_to_textfile_with_key_and_append(tmp_path):
    a, Wa, _ = _collection()
    b = dy.ParameterCollection(seed=9)
    Vb = b.add_parameters((3,), name="V")
    path = str(tmp_path / "both")
    a.write_to_textfile(path, key="/first")
    b.write_to_textfile(path, key="/second", append=True)
    b2 = dy.ParameterCollection(seed=1)
    V2 = b2.add_parameters((3,), name="V")
    b2.populate_from_textfile(path, key="/second")
    np.testing.assert_array_equal(V2.as_array(), Vb.as_array())
    a2, W2, _ = _collection()
    W2.set_value(np.ones((2, 3)))
    a2.populate_from_textfile(path, "/first")
    np.testing.assert_array_equal(W2.as_array(), Wa.as_array())


def test_load_param_and_load_lookup_param_add_the_saved_parameters(tmp_path):
    pc, W, E = _collection()
    path = str(tmp_path / "model")
    pc.save(path)
    fresh = dy.ParameterCollection(seed=0)
    W2 = fresh.load_param(path, "/W")
    E2 = fresh.load_lookup_param(path, "/E")
    assert isinstance(W2, dy.Parameters) and isinstance(E2, dy.LookupParameters)
    np.testing.assert_array_equal(W2.as_array(), W.as_array())
    np.testing.assert_array_equal(E2.as_array(), E.as_array())
    assert [p.name() for p in fresh.all_parameters()] == [W2.name(), E2.name()]
    # trained like any parameter of the collection
    dy.renew_cg()
    loss = dy.sum_elems(dy.cmult(W2, W2)) + dy.sum_elems(E2[1])
    loss.backward()
    before = W2.as_array()
    dy.SimpleSGDTrainer(fresh, 0.1).update()
    assert not np.array_equal(W2.as_array(), before)


def test_load_param_errors_name_the_key_and_the_kind(tmp_path):
    pc, _, _ = _collection()
    path = str(tmp_path / "model")
    pc.save(path)
    fresh = dy.ParameterCollection(seed=0)
    with pytest.raises(ValueError, match="no parameter 'nope'.*'W'"):
        fresh.load_param(path, "/nope")
    with pytest.raises(ValueError, match="'E' is a LookupParameters.*load_lookup_param"):
        fresh.load_param(path, "/E")
    with pytest.raises(ValueError, match="'W' is a Parameters.*load_param"):
        fresh.load_lookup_param(path, "W")
    assert fresh.all_parameters() == []  # nothing added by a failed load


# -- a parameter's expression readers --------------------------------------------------------

def test_parameter_scalar_vec_and_tensor_values():
    pc = dy.ParameterCollection(seed=4)
    W = pc.add_parameters((2, 3))
    a = pc.add_parameters(1)
    E = pc.add_lookup_parameters((3, 2))
    dy.renew_cg()
    assert a.scalar_value() == pytest.approx(float(a.as_array()[0]))
    # DyNet's vec_value lists a matrix column by column
    np.testing.assert_allclose(W.vec_value(), W.as_array().flatten(order="F"), rtol=1e-6)
    t = W.tensor_value()
    assert isinstance(t, dy.Tensor)
    np.testing.assert_allclose(t.as_numpy(), W.as_array(), rtol=1e-6)
    np.testing.assert_allclose(E.tensor_value().as_numpy(), E.npvalue(), rtol=1e-6)
    with pytest.raises(ValueError, match="scalar_value"):
        W.scalar_value()


def test_parameter_gradient_after_backward():
    pc = dy.ParameterCollection(seed=4)
    W = pc.add_parameters((2, 3))
    E = pc.add_lookup_parameters((3, 2))
    dy.renew_cg()
    loss = dy.sum_elems(dy.cmult(W, W)) + 3.0 * dy.sum_elems(E[2])
    loss.backward()
    np.testing.assert_allclose(W.gradient(), 2.0 * W.as_array(), rtol=1e-5)
    g = np.zeros((3, 2))
    g[2] = 3.0
    np.testing.assert_allclose(E.gradient(), g, rtol=1e-6)


# -- Tensor ---------------------------------------------------------------------------------

def test_tensor_value_as_numpy_is_npvalue_with_dynet_layout():
    dy.renew_cg()
    M = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    x = dy.inputTensor(M)
    t = x.tensor_value()
    assert isinstance(t, dy.Tensor) and "Tensor" in str(t)
    np.testing.assert_array_equal(t.as_numpy(), M)
    b = dy.inputTensor(np.array([[1.0, 5.0], [4.0, 2.0], [0.0, 9.0]]), batched=True)  # dims (3,), batch 2
    np.testing.assert_array_equal(b.tensor_value().as_numpy(), b.npvalue())
    assert b.tensor_value().as_numpy().shape == (3, 2)
    # NumPy and JAX read it in dynrnn's layout (batch first), as they read an expression
    np.testing.assert_array_equal(np.asarray(b.tensor_value()), np.asarray(b))


def test_tensor_argmax_keeps_the_reduced_axis_with_length_one():
    dy.renew_cg()
    M = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    t = dy.inputTensor(M).tensor_value()
    a0, a1 = t.argmax(0).as_numpy(), t.argmax(1).as_numpy()
    np.testing.assert_array_equal(a0, np.argmax(M, axis=0)[None, :])  # DyNet: [[1 0 1]]
    np.testing.assert_array_equal(a1, np.argmax(M, axis=1)[:, None])  # DyNet: [[1] [2]]
    assert a0.dtype.kind in "iu"
    v = dy.inputTensor([0.1, 0.7, 0.2, 0.5]).tensor_value()
    np.testing.assert_array_equal(v.argmax().as_numpy(), [1])
    B = np.array([[1.0, 5.0], [4.0, 2.0], [0.0, 9.0]])  # DyNet layout: dims (3,), batch last
    np.testing.assert_array_equal(dy.inputTensor(B, batched=True).tensor_value().argmax(0).as_numpy(),
                                  np.argmax(B, axis=0)[None, :])  # DyNet: [[1 2]]
    with pytest.raises(ValueError, match="num > 1"):
        v.argmax(0, 2)
    with pytest.raises(ValueError, match="dim 2.*1 dimension"):
        v.argmax(2)


def test_tensor_topk_values_and_indices():
    dy.renew_cg()
    x = np.array([0.1, 0.7, 0.2, 0.5])
    vals, ids = dy.inputTensor(x).tensor_value().topk(0, 2)
    order = np.argsort(-x)[:2]
    np.testing.assert_array_equal(ids.as_numpy(), order)  # DyNet: [1 3]
    np.testing.assert_allclose(vals.as_numpy(), x[order], rtol=1e-6)
    M = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    vals, ids = dy.inputTensor(M).tensor_value().topk(1, 2)
    np.testing.assert_array_equal(ids.as_numpy(), np.argsort(-M, axis=1)[:, :2])
    np.testing.assert_allclose(vals.as_numpy(), -np.sort(-M, axis=1)[:, :2], rtol=1e-6)


def test_tensor_categorical_sample_log_prob_draws_by_the_probabilities():
    dy.set_random_seed(7)
    dy.renew_cg()
    certain = dy.log_softmax(dy.inputTensor([-50.0, -50.0, 50.0])).tensor_value()
    assert [int(certain.categorical_sample_log_prob().as_numpy()[0]) for _ in range(20)] == [2] * 20
    p = np.array([0.2, 0.5, 0.3])
    lp = dy.inputTensor(np.log(p)).tensor_value()
    draws = np.array([int(lp.categorical_sample_log_prob(0, 1).as_numpy()[0]) for _ in range(3000)])
    freq = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(freq, p, atol=0.04)  # ~5 standard errors
    M = np.log(np.array([[0.999999, 1e-6], [1e-6, 0.999999]]))  # column 0 -> row 0, column 1 -> row 1
    np.testing.assert_array_equal(dy.inputTensor(M).tensor_value().categorical_sample_log_prob(0).as_numpy(),
                                  [[0, 1]])
    with pytest.raises(ValueError, match="num > 1"):
        lp.categorical_sample_log_prob(0, 3)


# -- StackedRNNState, SoftmaxBuilder, initializers --------------------------------------------

def test_stacked_rnn_state_chains_its_states():
    pc = dy.ParameterCollection(seed=2)
    lower, upper = dy.LSTMBuilder(1, 3, 4, pc), dy.GRUBuilder(1, 4, 5, pc)
    dy.renew_cg()
    xs = [dy.inputTensor(np.random.default_rng(k).normal(size=3)) for k in range(3)]
    s0 = dy.StackedRNNState([lower.initial_state(), upper.initial_state()])
    s1 = s0.add_input(xs[0])
    a = lower.initial_state().add_input(xs[0])
    b = upper.initial_state().add_input(a.output())
    np.testing.assert_allclose(s1.output().npvalue(), b.output().npvalue(), rtol=1e-6)
    assert s1.prev() is s0
    assert len(s1.h()) == 2 and len(s1.s()) == 2
    np.testing.assert_allclose(s1.h()[0][0].npvalue(), a.h()[0].npvalue(), rtol=1e-6)
    states = s0.add_inputs(xs)
    assert len(states) == 3 and states[0].prev() is s0 and states[2].prev() is states[1]
    manual = s0
    for x in xs:
        manual = manual.add_input(x)
    np.testing.assert_allclose(states[-1].output().npvalue(), manual.output().npvalue(), rtol=1e-6)


def test_softmax_builders_share_dynet_base_class():
    assert issubclass(dy.StandardSoftmaxBuilder, dy.SoftmaxBuilder)
    assert issubclass(dy.ClassFactoredSoftmaxBuilder, dy.SoftmaxBuilder)
    assert dy.PyInitializer is dy.Initializer
    assert isinstance(dy.GlorotInitializer(), dy.PyInitializer)


def test_from_file_initializer_reads_dynet_memory_order(tmp_path):
    values = np.arange(1.0, 7.0)
    f = tmp_path / "w.txt"
    f.write_text(" ".join(str(v) for v in values[:4]) + "\n" + " ".join(str(v) for v in values[4:]) + "\n")
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters((2, 3), init=dy.FromFileInitializer(str(f)))
    np.testing.assert_array_equal(W.as_array(), values.reshape((2, 3), order="F"))  # a matrix: column by column
    E = pc.add_lookup_parameters((3, 2), init=dy.FromFileInitializer(str(f)))
    np.testing.assert_array_equal(E.as_array(), values.reshape(3, 2))  # a table: entry by entry
    with pytest.raises(ValueError, match="6 numbers.*parameter of shape \\(4, 2\\) needs 8"):
        pc.add_parameters((4, 2), init=dy.FromFileInitializer(str(f)))
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 x 4")
    with pytest.raises(ValueError, match="not a number"):
        pc.add_parameters((4,), init=dy.FromFileInitializer(str(bad)))
    with pytest.raises(FileNotFoundError, match="FromFileInitializer"):
        pc.add_parameters((4,), init=dy.FromFileInitializer(str(tmp_path / "missing.txt")))


# -- the graph printed, devices, trainers ---------------------------------------------------

def test_dump_cg_writes_every_node_with_value_and_gradient(tmp_path, capsys):
    import re

    pc = dy.ParameterCollection(seed=1)
    W = pc.add_parameters((2, 2))
    lstm = dy.LSTMBuilder(1, 2, 3, pc)
    dy.renew_cg()
    x = dy.inputTensor([1.0, 2.0])
    h = lstm.initial_state().add_input(W * x).output()  # a recurrent state among the nodes
    loss = dy.sum_elems(h)
    path = tmp_path / "cg.txt"
    dy.dump_cg(str(path))  # before backward(): values, gradients not computed
    text = path.read_text()
    nodes = [int(i) for i in re.findall(r"^Node (\d+)$", text, re.M)]
    assert nodes == list(range(len(nodes))) and len(nodes) >= 5
    states = text.count("Gradient: (a recurrent state)")  # the LSTM's states: their slots' readers hold gradients
    assert states >= 1 and text.count("Value:") == len(nodes)
    assert text.count("Gradient: (not computed)") == len(nodes) - states
    last = text.split(f"Node {nodes[-1]}\n")[1]
    shown = float(re.search(r"Value: \n\[?\s*([-0-9.e+]+)", last).group(1))
    assert shown == pytest.approx(loss.scalar_value(), rel=1e-5)
    loss.backward()
    dy.dump_cg(nan_check_only=True, show_gradients=True)
    out = capsys.readouterr().out
    assert out.count("Value: valid") == len(nodes) and out.count("Gradient: valid") == len(nodes) - states
    assert "invalid" not in out and "(not computed)" not in out
    dy.dump_cg(show_gradients=False)
    assert "Gradient" not in capsys.readouterr().out
    dy.renew_cg()
    dy.dump_cg()
    assert capsys.readouterr().out == "(Computation graph is empty)\n"


def test_print_graphviz_prints_the_graph(capsys):
    dy.renew_cg()
    x = dy.inputTensor([1.0, 2.0])
    dy.tanh(x)
    dy.print_graphviz(compact=True, show_dims=False)
    out = capsys.readouterr().out
    assert out.startswith("digraph") and "tanh" in out


def test_have_cuda_and_trainer_whoami():
    assert isinstance(dy.HAVE_CUDA, bool)
    pc = dy.ParameterCollection(seed=0)
    pc.add_parameters(2)
    assert dy.SimpleSGDTrainer(pc).whoami() == "SimpleSGDTrainer"
    assert dy.AdamTrainer(pc).whoami() == "AdamTrainer"
