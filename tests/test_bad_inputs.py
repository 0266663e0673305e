"""Bad input at every public entry point: a registry of cases, each a call that must raise a
given exception type whose message names what was expected (and, where it helps, what was
given). The registry is the specification: add a case when an entry point gains an argument.

Cases whose effect could otherwise be silent (a NaN committed to a parameter, a wrong row
read) also assert that nothing changed."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy


class World:
    """Fresh objects for one case."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.pc = dy.ParameterCollection(seed=0)
        self.lstm = dy.LSTMBuilder(2, 4, 6, self.pc)
        self.E = self.pc.add_lookup_parameters((10, 4), name="E")
        self.W = self.pc.add_parameters((3, 6), name="W")
        self.s0 = self.lstm.initial_state()

    def loss(self, x):
        return jnp.sum(self.W * self.lstm.initial_state().add_input(x).output())

    def grads(self):
        return dy.value_and_grad(self.loss, self.pc)(jnp.ones(4))[1]

    def header_file(self, header, **arrays):
        path = os.path.join(self.tmp, "bad.npz")
        np.savez(path, __dynrnn_header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
        return path


def _objects_header(objects):
    return {"format": "dynrnn", "version": 1, "kind": "objects", "objects": objects}


CASES = {
    # -- parameters and collections --------------------------------------------------------
    "collection seed string": (lambda w: dy.ParameterCollection(seed="x"), TypeError, "seed must be an int"),
    "collection int dtype": (lambda w: dy.ParameterCollection(dtype=jnp.int32), TypeError, "dtype must be floating"),
    "add_parameters dim 0": (lambda w: w.pc.add_parameters((0, 3)), ValueError, "positive ints"),
    "add_parameters dim string": (lambda w: w.pc.add_parameters("3"), TypeError, "dim must be an int"),
    "add_parameters NaN constant": (lambda w: w.pc.add_parameters(3, init=float("nan")), ValueError,
                                    "init must be a finite number"),
    "add_parameters inf constant": (lambda w: w.pc.add_parameters(3, init=float("inf")), ValueError, "finite"),
    "add_parameters NaN scale": (lambda w: w.pc.add_parameters(3, init="uniform", scale=float("nan")),
                                 ValueError, "scale must be a finite number"),
    "add_parameters string scale": (lambda w: w.pc.add_parameters(3, init="uniform", scale="big"), TypeError,
                                    "scale must be a real number"),
    "add_parameters negative std": (lambda w: w.pc.add_parameters(3, init="normal", std=-1), ValueError,
                                    "std must be a number >= 0"),
    "add_parameters unknown init": (lambda w: w.pc.add_parameters(3, init="xavier"), ValueError, "unknown init"),
    "add_parameters NaN array": (lambda w: w.pc.add_parameters(2, init=np.array([1.0, np.nan])), ValueError,
                                 "NaN or infinite"),
    "add_parameters slash name": (lambda w: w.pc.add_parameters(3, name="a/b"), ValueError, "cannot contain '/'"),
    "lookup 1-d": (lambda w: w.pc.add_lookup_parameters(5), ValueError, r"\(rows, dim"),
    "set_value shape": (lambda w: w.W.set_value(np.ones((6, 3))), ValueError, r"shape \(3, 6\).*\(6, 3\)"),
    "set_value strings": (lambda w: w.W.set_value(np.full((3, 6), "a")), TypeError, "numeric array"),
    "lookup id too big": (lambda w: w.E[10], IndexError, r"id 10 is out of range.*0\.\.9"),
    "lookup id negative": (lambda w: w.E[-1], IndexError, "id -1 is out of range"),
    "lookup float id": (lambda w: w.E[1.0], TypeError, "ids must be integers"),
    "lookup batch scalar": (lambda w: w.E.batch(3), ValueError, "at least one axis"),
    "lookup batch out of range": (lambda w: w.E.batch([1, 12]), IndexError, "id 12 is out of range"),
    "init_row wrong shape": (lambda w: w.E.init_row(0, np.ones(5)), ValueError, r"rows of .* have shape \(4,\)"),
    "W * wrong size": (lambda w: w.W * jnp.ones((2, 4)), ValueError, r"'/W' \* x: the matrix has shape \(3, 6\), so x "
                       r"needs 6 entries.*\(2, 4\)"),
    "W * string": (lambda w: w.W * "x", TypeError, "x must be a number or a numeric array; given str"),
    "bind unknown name": (lambda w: w.pc.bind({"/nope": jnp.ones(3)}).__enter__(), KeyError, "no parameter named"),
    "bind wrong shape": (lambda w: w.pc.bind({"/W": jnp.ones(3)}).__enter__(), ValueError, r"has shape \(3, 6\)"),
    "set_parameter_values unknown": (lambda w: w.pc.set_parameter_values({"/nope": 1}), KeyError, "no parameter"),
    # -- builders --------------------------------------------------------------------------
    "builder layers 0": (lambda w: dy.LSTMBuilder(0, 4, 6, w.pc), ValueError, "layers must be >= 1"),
    "builder layers float": (lambda w: dy.LSTMBuilder(1.5, 4, 6, w.pc), TypeError, "layers must be an int"),
    "builder pc None": (lambda w: dy.GRUBuilder(1, 4, 6, None), TypeError, "pc must be a ParameterCollection"),
    "birnn pc None": (lambda w: dy.BiRNNBuilder(1, 4, 6, None), TypeError, "pc must be a ParameterCollection"),
    "birnn odd hidden": (lambda w: dy.BiRNNBuilder(1, 4, 5, w.pc), ValueError, "hidden_dim must be even"),
    "birnn builder_class None": (lambda w: dy.BiRNNBuilder(1, 4, 6, w.pc, None), TypeError,
                                 "builder_class must be a builder class"),
    "birnn transduce named": (lambda w: dy.BiRNNBuilder(1, 4, 6, w.pc).transduce(jnp.ones((3, 5))), ValueError,
                              r"^BiRNNBuilder\.transduce: "),
    "birnn add_inputs named": (lambda w: dy.BiRNNBuilder(1, 4, 6, w.pc).add_inputs([]), ValueError,
                               r"^BiRNNBuilder\.add_inputs: xs is empty"),
    "forget_bias string": (lambda w: dy.LSTMBuilder(1, 4, 6, w.pc, forget_bias="x"), TypeError,
                           "forget_bias must be a real number"),
    "forget_bias NaN": (lambda w: dy.LSTMBuilder(1, 4, 6, w.pc, forget_bias=float("nan")), ValueError,
                        "forget_bias must be a finite number"),
    "dropout 1": (lambda w: w.lstm.set_dropout(1.0), ValueError, r"in \[0, 1\)"),
    "dropout string": (lambda w: w.lstm.set_dropouts("a", 0.1), TypeError, "float in"),
    "dropout key int": (lambda w: (w.lstm.set_dropout(0.1), w.lstm.initial_state(key=3)), TypeError,
                        "key must be a JAX PRNG key"),
    "initial_state vec count": (lambda w: w.lstm.initial_state([jnp.zeros(6)]), ValueError,
                                r"needs 4 \(c_1..c_2, h_1..h_2\)"),
    "set_h count names h only": (lambda w: w.s0.set_h([jnp.zeros(6)]), ValueError, r"needs 2 \(h_1, h_2\)\.$"),
    "set_s count": (lambda w: w.s0.set_s([jnp.zeros(6)] * 3), ValueError, "needs 4"),
    "set_h array": (lambda w: w.s0.set_h(jnp.zeros((2, 6))), TypeError, "list of 2 vectors"),
    # -- stepping --------------------------------------------------------------------------
    "add_input dim": (lambda w: w.s0.add_input(jnp.ones(5)), ValueError, r"input_dim=4; expected \(4,\)"),
    "add_input ints": (lambda w: w.s0.add_input(jnp.ones(4, jnp.int32)), TypeError, "floating dtype"),
    "add_input batch 0": (lambda w: w.s0.add_input(jnp.ones((0, 4))), ValueError, "a batch of 0"),
    "add_input ragged": (lambda w: w.s0.add_input([[1.0, 2.0], [1.0]]), TypeError, "NumPy cannot convert"),
    "add_input batch mismatch": (lambda w: w.s0.add_input(jnp.ones((3, 4))).add_input(jnp.ones((2, 4))),
                                 ValueError, "batch size 3"),
    "transduce empty": (lambda w: w.s0.transduce([]), ValueError, "xs is empty"),
    "transduce 4-d": (lambda w: w.s0.transduce(jnp.ones((2, 2, 2, 4))), ValueError, r"expected a list of vectors"),
    "transduce lengths unbatched": (lambda w: w.s0.transduce(jnp.ones((3, 4)), lengths=[3]), ValueError,
                                    "needs a batched sequence"),
    "transduce lengths float": (lambda w: w.s0.transduce(jnp.ones((3, 2, 4)), lengths=[1.0, 2.0]), TypeError,
                                "lengths must be integers"),
    "transduce lengths too long": (lambda w: w.s0.transduce(jnp.ones((3, 2, 4)), lengths=[1, 4]), ValueError,
                                   r"lengths must lie in \[0, 3\]"),
    "transduce lengths negative": (lambda w: w.s0.transduce(jnp.ones((3, 2, 4)), lengths=[-1, 2]), ValueError,
                                   r"lie in \[0, 3\]"),
    "transduce lengths count": (lambda w: w.s0.transduce(jnp.ones((3, 2, 4)), lengths=[1, 2, 3]), ValueError,
                                r"expected \(2,\)"),
    "reorder unbatched": (lambda w: w.s0.reorder([0]), ValueError, "the state is unbatched"),
    "reorder out of range": (lambda w: w.s0.add_input(jnp.ones((2, 4))).reorder([0, 2]), IndexError,
                             r"lie in \[0, 1\]"),
    "reorder 2-d": (lambda w: w.s0.add_input(jnp.ones((2, 4))).reorder([[0]]), ValueError, "1-D integer"),
    "stack capacity 0": (lambda w: dy.RNNStack(w.s0, capacity=0, batch_size=2), ValueError, "capacity"),
    "stack pop empty": (lambda w: dy.RNNStack(w.s0, capacity=3, batch_size=2).pop(), ValueError, "empty"),
    # -- jit and stale parameters ----------------------------------------------------------
    "jax.jit over add_input": (lambda w: jax.jit(lambda s, x: s.add_input(x))(w.s0, jnp.ones(4)),
                               dy.StaleParameterError, r"dynrnn\.jit\(f, pc\)"),
    "jax.jit reading W": (lambda w: jax.jit(lambda x: w.W * x)(jnp.ones(6)), dy.StaleParameterError,
                          r"parameter '/W' was read while jax\.jit"),
    "lax.scan reading E": (lambda w: jax.lax.scan(lambda c, i: (c + w.E[i], None), jnp.zeros(4), jnp.arange(3)),
                           dy.StaleParameterError, "'/E'"),
    "dy.jit without pc": (lambda w: dy.jit(lambda x: x), TypeError, "missing 1 required positional argument: 'pc'"),
    "dy.jit pc not collection": (lambda w: dy.jit(lambda x: x, "pc"), TypeError, "pc must be a ParameterCollection"),
    "dy.jit not callable": (lambda w: dy.jit(3, w.pc), TypeError, "fun must be callable"),
    # -- list operations -------------------------------------------------------------------
    "esum empty": (lambda w: dy.esum([]), ValueError, r"dy.esum: the list of expressions is empty"),
    "average empty": (lambda w: dy.average([]), ValueError, r"dy.average: the list of expressions is empty"),
    "concatenate empty": (lambda w: dy.concatenate([]), ValueError, "dy.concatenate: the list of expressions is empty"),
    "concatenate_cols empty": (lambda w: dy.concatenate_cols([]), ValueError, "dy.concatenate_cols: the list"),
    "emax empty": (lambda w: dy.emax([]), ValueError, "dy.emax: the list of expressions is empty"),
    "esum of one array": (lambda w: dy.esum(jnp.ones(3)), TypeError, "dy.esum: expected a list of expressions"),
    # -- losses ----------------------------------------------------------------------------
    "xent ragged list": (lambda w: dy.sequence_cross_entropy([[1.0, 2.0], [1.0]], jnp.array([0, 0])), TypeError,
                         "logits must be an array"),
    "xent string logits": (lambda w: dy.sequence_cross_entropy("abc", jnp.array([0])), TypeError,
                           "logits must be an array"),
    "xent target too big": (lambda w: dy.sequence_cross_entropy(jnp.zeros((3, 5)), jnp.array([0, 5, 1])),
                            ValueError, r"class ids in \[0, 4\].*\[5\]"),
    "xent target -1": (lambda w: dy.sequence_cross_entropy(jnp.zeros((3, 5)), jnp.array([0, -1, 1])), ValueError,
                       r"given \[-1\]"),
    "xent float targets": (lambda w: dy.sequence_cross_entropy(jnp.zeros((3, 5)), jnp.zeros(3)), TypeError,
                           "integer class ids"),
    "xent lengths too long": (lambda w: dy.sequence_cross_entropy(jnp.zeros((3, 2, 5)), jnp.zeros((3, 2), int),
                                                                 jnp.array([2, 4])), ValueError,
                              r"lie in \[0, 3\].*max 4"),
    "xent lengths negative": (lambda w: dy.sequence_cross_entropy(jnp.zeros((3, 2, 5)), jnp.zeros((3, 2), int),
                                                                 jnp.array([-1, 2])), ValueError, "min -1"),
    "xent lengths float": (lambda w: dy.sequence_cross_entropy(jnp.zeros((3, 2, 5)), jnp.zeros((3, 2), int),
                                                              jnp.array([1.0, 2.0])), TypeError,
                           "lengths must be integers"),
    "xent reduction": (lambda w: dy.sequence_cross_entropy(jnp.zeros((3, 5)), jnp.zeros(3, int), reduction="avg"),
                       ValueError, "reduction must be"),
    "pickneglogsoftmax_batch float ids": (lambda w: dy.pickneglogsoftmax_batch(jnp.zeros((2, 3)), [0.5, 1.0]),
                                          TypeError, "integer"),
    # -- batching --------------------------------------------------------------------------
    "length_buckets negative": (lambda w: dy.length_buckets([3, -1, 2], 2), ValueError, "non-negative integers"),
    "length_buckets float": (lambda w: dy.length_buckets([3.5, 1.0], 2), ValueError, "non-negative integers"),
    "length_buckets batch 0": (lambda w: dy.length_buckets([3, 1], 0), ValueError, "batch_size must be a positive"),
    "pad_batch empty": (lambda w: dy.pad_batch([]), ValueError, "no sequences"),
    "pad_batch too many": (lambda w: dy.pad_batch([[1], [2], [3]], batch_size=2), ValueError, "do not fit"),
    "pad_batch bucket too small": (lambda w: dy.pad_batch([[1, 2, 3]], buckets=[2]), ValueError,
                                   "longer than the largest bucket"),
    "bucket_lengths zero": (lambda w: dy.bucket_lengths([0, 3], 2), ValueError, "positive integers"),
    # -- decoding --------------------------------------------------------------------------
    "beam n_best 0": (lambda w: dy.beam_search(lambda s, t: (s, jnp.zeros(3)), w.s0, 1, 0, 2, 3, n_best=0),
                      ValueError, "n_best must be >= 1"),
    "beam n_best -1": (lambda w: dy.beam_search(lambda s, t: (s, jnp.zeros(3)), w.s0, 1, 0, 2, 3, n_best=-1),
                       ValueError, "n_best must be >= 1"),
    "beam n_best > beam": (lambda w: dy.beam_search(lambda s, t: (s, jnp.zeros(3)), w.s0, 1, 0, 2, 3, n_best=3),
                           ValueError, "at most beam_size"),
    "beam size 0": (lambda w: dy.beam_search(lambda s, t: (s, jnp.zeros(3)), w.s0, 1, 0, 0, 3), ValueError,
                    "beam_size must be >= 1"),
    "beam penalty string": (lambda w: dy.beam_search(lambda s, t: (s, jnp.zeros(3)), w.s0, 1, 0, 2, 3,
                                                     length_penalty="x"), TypeError, "length_penalty"),
    "greedy max_len 0": (lambda w: dy.greedy_decode(lambda s, t: (s, jnp.zeros(3)), w.s0, 1, 0, 0), ValueError,
                         "max_len must be >= 1"),
    # -- trainers: hyperparameters ---------------------------------------------------------
    "sgd lr string": (lambda w: dy.SimpleSGDTrainer(w.pc, learning_rate="fast"), TypeError,
                      "learning_rate must be a real number"),
    "sgd lr None": (lambda w: dy.SimpleSGDTrainer(w.pc, learning_rate=None), TypeError, "given NoneType"),
    "sgd lr NaN": (lambda w: dy.SimpleSGDTrainer(w.pc, float("nan")), ValueError, "finite"),
    "sgd lr inf": (lambda w: dy.SimpleSGDTrainer(w.pc, float("inf")), ValueError, "finite"),
    "sgd lr negative": (lambda w: dy.SimpleSGDTrainer(w.pc, -0.1), ValueError, "learning_rate must be a number >= 0"),
    "sgd lr assigned NaN": (lambda w: setattr(dy.SimpleSGDTrainer(w.pc), "learning_rate", float("nan")), ValueError,
                            "finite"),
    "sgd pc wrong": (lambda w: dy.SimpleSGDTrainer(w.lstm), TypeError, "pc must be a ParameterCollection"),
    "clip string": (lambda w: dy.SimpleSGDTrainer(w.pc).set_clip_threshold("x"), TypeError,
                    r"set_clip_threshold: threshold must be a real number"),
    "clip NaN": (lambda w: dy.SimpleSGDTrainer(w.pc).set_clip_threshold(float("nan")), ValueError, "finite"),
    "momentum 1": (lambda w: dy.MomentumSGDTrainer(w.pc, mom=1.0), ValueError, r"mom must be a number in \[0, 1\)"),
    "adam beta_1 1": (lambda w: dy.AdamTrainer(w.pc, beta_1=1), ValueError, r"beta_1 must be a number in \[0, 1\)"),
    "adam beta_2 negative": (lambda w: dy.AdamTrainer(w.pc, beta_2=-0.1), ValueError, "beta_2"),
    "adam eps negative": (lambda w: dy.AdamTrainer(w.pc, eps=-1e-8), ValueError, "eps must be a number > 0"),
    "adam eps zero": (lambda w: dy.AdamTrainer(w.pc, eps=0.0), ValueError, "eps must be a number > 0"),
    "amsgrad alpha string": (lambda w: dy.AmsgradTrainer(w.pc, alpha="x"), TypeError, "learning_rate"),
    "rmsprop rho 2": (lambda w: dy.RMSPropTrainer(w.pc, rho=2), ValueError, r"rho must be a number in \[0, 1\)"),
    "adadelta eps 0": (lambda w: dy.AdadeltaTrainer(w.pc, eps=0), ValueError, "eps must be a number > 0"),
    "adagrad eps NaN": (lambda w: dy.AdagradTrainer(w.pc, eps=float("nan")), ValueError, "eps must be a finite"),
    "cyclical step_size 0": (lambda w: dy.CyclicalSGDTrainer(w.pc, step_size=0), ValueError,
                             "step_size must be a number > 0"),
    "cyclical max < min": (lambda w: dy.CyclicalSGDTrainer(w.pc, 0.1, 0.01), ValueError,
                           "learning_rate_max must be a number >= 0.1"),
    "cyclical gamma 0": (lambda w: dy.CyclicalSGDTrainer(w.pc, gamma=0), ValueError, r"gamma must be a number in"),
    "optax not a transformation": (lambda w: dy.OptaxTrainer(w.pc, "adam"), TypeError, "GradientTransformation"),
    # -- trainers: gradients ---------------------------------------------------------------
    "update not a dict": (lambda w: dy.SimpleSGDTrainer(w.pc).update([1, 2]), TypeError, "grads must be a dict"),
    "update missing name": (lambda w: dy.SimpleSGDTrainer(w.pc).update({"/W": jnp.zeros((3, 6))}), KeyError,
                            "no entry for"),
    "update unknown name": (lambda w: dy.SimpleSGDTrainer(w.pc).update({**w.grads(), "/nope": jnp.zeros(2)}),
                            KeyError, "not parameters of this trainer's collection"),
    "update wrong shape": (lambda w: dy.SimpleSGDTrainer(w.pc).update({**w.grads(), "/W": jnp.zeros((6, 3))}),
                           ValueError, r"gradient for '/W' has shape \(6, 3\); the parameter has shape \(3, 6\)"),
    "update wrong dtype": (lambda w: dy.SimpleSGDTrainer(w.pc).update(
        {**w.grads(), "/W": np.zeros((3, 6), np.float64)}),
        TypeError, "dtype float64; the parameter has dtype float32"),
    "step loss not scalar": (lambda w: dy.SimpleSGDTrainer(w.pc).step(lambda x: w.W * x, jnp.ones(6)), TypeError,
                             "must return a scalar"),
    # -- files -----------------------------------------------------------------------------
    "save objects not list": (lambda w: dy.save(os.path.join(w.tmp, "m.npz"), w.lstm), TypeError,
                              "objects must be a list"),
    "save unknown object": (lambda w: dy.save(os.path.join(w.tmp, "m.npz"), [object()]), TypeError,
                            r"objects\[0\] is a object"),
    "save into missing folder": (lambda w: w.pc.save(os.path.join(w.tmp, "no", "m.npz")), FileNotFoundError,
                                 "does not exist"),
    "save onto a folder": (lambda w: w.pc.save(str(w.tmp)), IsADirectoryError, "is a folder"),
    "save metadata not JSON": (lambda w: w.pc.save(os.path.join(w.tmp, "m.npz"), metadata={"f": object()}),
                               TypeError, "metadata must be JSON"),
    "load missing file": (lambda w: dy.load(os.path.join(w.tmp, "none.npz"), w.pc), FileNotFoundError, "no file"),
    "load not a zip": (lambda w: (open(os.path.join(w.tmp, "x.npz"), "w").write("hello"),
                                  dy.load(os.path.join(w.tmp, "x.npz"), w.pc)), ValueError, "not a readable"),
    "load header without objects": (lambda w: dy.load(w.header_file(
        {"format": "dynrnn", "version": 1, "kind": "objects"}), w.pc), ValueError, "no list 'objects'"),
    "load header objects not list": (lambda w: dy.load(w.header_file(
        {"format": "dynrnn", "version": 1, "kind": "objects", "objects": {}}), w.pc), ValueError, "no list"),
    "load future version": (lambda w: dy.load(w.header_file(
        {"format": "dynrnn", "version": 99, "kind": "objects", "objects": []}), w.pc), ValueError,
        "format version 99"),
    "load other format": (lambda w: dy.load(w.header_file({"format": "x"}), w.pc), ValueError, "not a dynrnn file"),
    "load unknown type": (lambda w: dy.load(w.header_file(_objects_header(
        [{"type": "Pickle", "arrays": ["a0"], "shape": [2]}]), a0=np.zeros(2)), w.pc), ValueError,
        "unknown type 'Pickle'"),
    "load huge shape": (lambda w: dy.load(w.header_file(_objects_header(
        [{"type": "Parameters", "name": "W", "arrays": ["a0"], "shape": [10**6, 10**6]}]), a0=np.zeros(2)), w.pc),
        ValueError, r"gives shape \[1000000, 1000000\].*\(2,\)"),
    "load missing array": (lambda w: dy.load(w.header_file(_objects_header(
        [{"type": "Parameters", "name": "W", "arrays": ["a7"], "shape": [2]}])), w.pc), ValueError,
        "names an array 'a7'"),
    "load record not object": (lambda w: dy.load(w.header_file(_objects_header([3])), w.pc), ValueError,
                               "not a JSON object"),
    "load builder bad args": (lambda w: dy.load(w.header_file(_objects_header(
        [{"type": "builder", "class": "GRUBuilder", "args": [1, -4, 6], "kwargs": {}, "arrays": [], "shapes": []}])),
        w.pc), ValueError, r"cannot be rebuilt.*input_dim must be >= 1"),
    "load builder unknown kwarg": (lambda w: dy.load(w.header_file(_objects_header(
        [{"type": "builder", "class": "GRUBuilder", "args": [1, 4, 6], "kwargs": {"colour": 1}, "arrays": [],
          "shapes": []}])), w.pc), ValueError, "cannot be rebuilt"),
    "load pc wrong": (lambda w: (dy.save(os.path.join(w.tmp, "m.npz"), [w.W]),
                                 dy.load(os.path.join(w.tmp, "m.npz"), "pc")), TypeError,
                      "pc must be a ParameterCollection"),
    "populate header without params": (lambda w: w.pc.populate(w.header_file(
        {"format": "dynrnn", "version": 1, "kind": "collection"})), ValueError, "no list 'params'"),
    "populate wrong kind": (lambda w: (dy.save(os.path.join(w.tmp, "m.npz"), [w.W]),
                                       w.pc.populate(os.path.join(w.tmp, "m.npz"))), ValueError,
                            r"written by dynrnn\.save"),
    # -- many devices ----------------------------------------------------------------------
    "distribute not a mesh": (lambda w: dy.SimpleSGDTrainer(w.pc).distribute("cpu"), TypeError,
                              "expected a jax.sharding.Mesh"),
    "shard_batch bad axis": (lambda w: dy.shard_batch(np.ones((2, 3)), dy.data_parallel_mesh(), axis=5),
                             ValueError, "axis 5 is out of range"),
    "mesh no devices": (lambda w: dy.data_parallel_mesh([]), ValueError, "no devices"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_a_clear_error(case, tmp_path):
    call, error, fragment = CASES[case]
    w = World(tmp_path)
    before = {k: np.asarray(v) for k, v in w.pc.parameter_values().items()}
    with pytest.raises(error, match=fragment) as info:
        call(w)
    message = str(info.value)
    assert message and "Traceback" not in message
    if error not in (KeyError,) and fragment:  # every message says where it came from
        assert ":" in message or "'" in message
    for k, v in w.pc.parameter_values().items():  # nothing is half-done
        if k in before:
            np.testing.assert_array_equal(np.asarray(v), before[k], err_msg=case)


def test_the_registry_covers_the_entry_points():
    """At least one case per public entry point named in the issue."""
    names = " ".join(CASES)
    for entry in ("collection", "add_parameters", "lookup", "builder", "birnn", "add_input", "transduce", "reorder",
                  "stack", "jit", "xent", "length_buckets", "pad_batch", "beam", "greedy", "sgd", "adam", "rmsprop",
                  "cyclical", "update", "step", "save", "load", "populate", "shard_batch"):
        assert entry in names, entry
    assert len(CASES) >= 120
