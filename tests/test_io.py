"""Save/load: every builder (layer-norm gains included) and mixed collections round-trip;
files are pickle-free, written atomically, and bad files give clear errors."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

from .helpers import BUILDERS, assert_trees_allclose, randomize


def _make_all(pc, rng):
    objs = [BUILDERS[n][0](2, 3, 4, pc) for n in sorted(BUILDERS)]
    objs.append(dy.BiRNNBuilder(2, 3, 6, pc, dy.GRUBuilder))
    for b in objs[:-1]:
        randomize(b, rng)
    W = pc.add_parameters((4, 5), name="W")
    E = pc.add_lookup_parameters((7, 3), name="E")
    return objs + [W, E]


def _outputs(objs, xs):
    outs = []
    for o in objs:
        if isinstance(o, dy.BiRNNBuilder):
            outs.append(o.transduce(xs))
        elif isinstance(o, dy.RNNBuilder):
            outs.append(o.initial_state().transduce(xs))
        else:
            outs.append(o.as_array())
    return outs


def test_collection_save_populate_round_trip(tmp_path, rng):
    pc = dy.ParameterCollection(seed=0)
    objs = _make_all(pc, rng)
    xs = jnp.asarray(rng.normal(size=(5, 2, 3)), jnp.float32)
    want = _outputs(objs, xs)
    path = str(tmp_path / "model.npz")
    pc.save(path)
    pc2 = dy.ParameterCollection(seed=99)  # different init, same structure
    objs2 = _make_all(pc2, np.random.default_rng(42))
    pc2.populate(path)
    assert_trees_allclose(_outputs(objs2, xs), want, rtol=0, atol=0)


def test_ln_gains_are_saved(tmp_path, rng):
    pc = dy.ParameterCollection(seed=0)
    b = dy.LSTMBuilder(1, 3, 4, pc, ln_lstm=True)
    b.get_ln_parameters()[0][0].set_value(np.full(16, 2.5))
    dy.save(str(tmp_path / "m"), [b])
    (b2,) = dy.load(str(tmp_path / "m"), dy.ParameterCollection(seed=1))
    np.testing.assert_array_equal(b2.get_ln_parameters()[0][0].as_array(), 2.5)
    assert b2._ln


def test_dy_save_load_rebuilds_builders_and_parameters(tmp_path, rng):
    pc = dy.ParameterCollection(seed=0)
    objs = _make_all(pc, rng)
    objs[1].set_dropouts(0.25, 0.5)
    xs = jnp.asarray(rng.normal(size=(5, 2, 3)), jnp.float32)
    for o in objs:
        if hasattr(o, "disable_dropout") and o is not objs[1]:
            o.disable_dropout()
    base = str(tmp_path / "everything")
    dy.save(base, objs)
    loaded = dy.load(base, dy.ParameterCollection(seed=123))
    assert [type(o) for o in loaded] == [type(o) for o in objs]
    assert loaded[1].dropout == (0.25, 0.5)
    loaded[1].disable_dropout()
    objs[1].disable_dropout()
    assert_trees_allclose(_outputs(loaded, xs), _outputs(objs, xs), rtol=0, atol=0)
    assert loaded[-1].name() == "/E" and loaded[-2].shape() == (4, 5)


def test_file_is_a_plain_npz_with_a_json_header_and_no_pickle(tmp_path):
    pc = dy.ParameterCollection(seed=0)
    dy.GRUBuilder(1, 2, 3, pc)
    path = str(tmp_path / "m.npz")
    pc.save(path)
    with np.load(path, allow_pickle=False) as z:  # would raise if anything were pickled
        header = json.loads(z["__dynrnn_header__"].tobytes())
    assert header["format"] == "dynrnn" and header["version"] == 1
    assert [p["name"] for p in header["params"]][:3] == ["gru-builder/layer0/W_zx", "gru-builder/layer0/W_zh",
                                                       "gru-builder/layer0/b_z"]


def test_save_is_atomic(tmp_path, monkeypatch):
    pc = dy.ParameterCollection(seed=0)
    W = pc.add_parameters(3, init=1.0)
    path = str(tmp_path / "m.npz")
    pc.save(path)
    W.set_value(np.full(3, 2.0))

    def crash(*a, **k):
        raise KeyboardInterrupt("simulated crash mid-save")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        pc.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind
    pc.populate(path)  # the old file is intact
    np.testing.assert_array_equal(W.as_array(), 1.0)


def test_mismatched_and_corrupt_files(tmp_path):
    pc = dy.ParameterCollection(seed=0)
    dy.LSTMBuilder(1, 3, 4, pc)
    path = str(tmp_path / "m.npz")
    pc.save(path)
    other = dy.ParameterCollection(seed=0)
    dy.LSTMBuilder(1, 3, 5, other)
    with pytest.raises(ValueError, match=r"has shape \(20, 3\) here but \(16, 3\) in the file"):
        other.populate(path)
    unrelated = dy.ParameterCollection(seed=0)
    dy.GRUBuilder(1, 3, 4, unrelated)
    with pytest.raises(ValueError, match="missing from the file"):
        unrelated.populate(path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        pc.populate(path)
    np.savez(str(tmp_path / "plain.npz"), a=np.zeros(2))
    with pytest.raises(ValueError, match="not one written by dynrnn"):
        pc.populate(str(tmp_path / "plain.npz"))
    with pytest.raises(FileNotFoundError):
        pc.populate(str(tmp_path / "missing.npz"))


def test_kind_mismatch_and_unsaveable_objects(tmp_path):
    pc = dy.ParameterCollection(seed=0)
    b = dy.LSTMBuilder(1, 3, 4, pc)
    dy.save(str(tmp_path / "objs"), [b])
    with pytest.raises(ValueError, match="written by dynrnn.save"):
        pc.populate(str(tmp_path / "objs"))
    with pytest.raises(TypeError, match=r"objects\[0\] is a str"):
        dy.save(str(tmp_path / "x"), ["not a builder"])


def test_populate_with_key_reads_a_subtree(tmp_path, rng):
    pc = dy.ParameterCollection(seed=0)
    enc = pc.add_subcollection("encoder")
    b = dy.GRUBuilder(1, 3, 4, enc)
    randomize(b, rng)
    path = str(tmp_path / "m.npz")
    pc.save(path)
    fresh = dy.ParameterCollection(seed=5)
    b2 = dy.GRUBuilder(1, 3, 4, fresh)
    fresh.populate(path, key="encoder")
    assert_trees_allclose([p.as_array() for p in b2.saved_parameters()], [p.as_array() for p in b.saved_parameters()])


def test_metadata_is_saved_with_the_parameters_as_json(tmp_path):
    pc = dy.ParameterCollection(seed=0)
    pc.add_parameters((2, 3))
    path = str(tmp_path / "m.npz")
    pc.save(path)
    assert dy.load_metadata(path) is None
    meta = {"vocab": ["<unk>", "the"], "dims": {"hidden": 64}, "cell": "coupled"}
    pc.save(path, metadata=meta)
    assert dy.load_metadata(path) == meta
    pc2 = dy.ParameterCollection(seed=1)
    pc2.add_parameters((2, 3))
    pc2.populate(path)
    np.testing.assert_array_equal(pc2.all_parameters()[0].as_array(), pc.all_parameters()[0].as_array())
    with pytest.raises(TypeError, match="metadata must be JSON data"):
        pc.save(path, metadata={"f": object()})
    with pytest.raises(TypeError, match="metadata must be JSON data"):
        pc.save(path, metadata={"x": float("nan")})
    assert dy.load_metadata(path) == meta  # the failed saves left the file as it was


def test_a_parameter_saves_alone_under_a_key_and_appends(tmp_path, rng):
    """DyNet's `p.save(fname, key, append)` and `p.populate(fname, key)`."""
    path = str(tmp_path / "tmp.model")
    m, m2 = dy.ParameterCollection(seed=1), dy.ParameterCollection(seed=2)
    L = m.add_lookup_parameters((10, 2), name="la")
    a = m.add_parameters(10, name="a")
    L.save(path, "/X")
    a.save(path, append=True)  # key: its name, "/a"
    a2, L2 = m2.add_parameters(10), m2.add_lookup_parameters((10, 2))
    L2.populate(path, "/X")
    a2.populate(path, "/a")
    np.testing.assert_array_equal(L2.as_array(), L.as_array())
    np.testing.assert_array_equal(a2.as_array(), a.as_array())
    a.save(path)  # without append: the file holds only "/a" now
    with pytest.raises(ValueError, match="holds no parameter 'X'"):
        L2.populate(path, "/X")
    with pytest.raises(ValueError, match="shape"):
        m2.add_parameters(3).populate(path, "/a")


def test_load_generator_gives_the_saved_objects(tmp_path, rng):
    pc = dy.ParameterCollection(seed=0)
    b = dy.BiRNNBuilder(2, 4, 6, pc, dy.LSTMBuilder)
    W = pc.add_parameters((3, 4), name="W")
    dy.save(str(tmp_path / "m"), (x for x in [b, W]))  # a generator, as DyNet allows
    gen = dy.load_generator(str(tmp_path / "m"), dy.ParameterCollection())
    b2, W2 = list(gen)
    assert type(b2) is dy.BiRNNBuilder
    np.testing.assert_array_equal(W2.as_array(), W.as_array())


class OneLayerMLP:
    """DyNet's documented example of a savable user object: `spec`, `param_collection()`,
    `from_spec(spec, model)`; here with a builder and an activation function in it."""

    def __init__(self, model, num_input, num_hidden, num_out, act=dy.tanh, extra=None):
        pc = model.add_subcollection()
        self.W1 = pc.add_parameters((num_hidden, num_input))
        self.W2 = pc.add_parameters((num_out, num_hidden))
        self.E = pc.add_lookup_parameters((5, num_input))
        self.rnn = dy.GRUBuilder(1, num_input, num_hidden, pc)
        self.pc = pc
        self.act = act
        self.spec = (num_input, num_hidden, num_out, act, extra)

    def __call__(self, x):
        return self.W2 * self.act(self.W1 * x)

    def param_collection(self):
        return self.pc

    @staticmethod
    def from_spec(spec, model):
        num_input, num_hidden, num_out, act, extra = spec
        return OneLayerMLP(model, num_input, num_hidden, num_out, act, extra)


def test_user_objects_save_and_load_through_dynets_spec_interface(tmp_path, rng):
    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((7, 3))
    extra = {"vocab": ["a", "b"], "sizes": (1, 2.5), "on": True, "none": None, "f": np.tanh}
    mlp = OneLayerMLP(pc, 3, 4, 2, dy.logistic, extra)
    for p in pc.all_parameters():
        p.set_value(rng.normal(size=p.shape()))
    path = str(tmp_path / "model")
    dy.save(path, [E, mlp])
    with open(path, "rb") as f:
        assert b"pickle" not in f.read()
    pc2 = dy.ParameterCollection(seed=1)
    E2, mlp2 = dy.load(path, pc2)
    assert type(mlp2) is OneLayerMLP and mlp2.act is dy.logistic and mlp2.spec[4] == extra
    assert isinstance(mlp2.spec, tuple) and isinstance(mlp2.spec[4]["sizes"], tuple)
    np.testing.assert_array_equal(E2.as_array(), E.as_array())
    for a, b in zip(mlp.pc.all_parameters(), mlp2.pc.all_parameters()):
        np.testing.assert_array_equal(a.as_array(), b.as_array())
    x = jnp.asarray(rng.normal(size=3), jnp.float32)
    np.testing.assert_allclose(mlp2(x), mlp(x), rtol=1e-6)
    np.testing.assert_allclose(mlp2.rnn.initial_state().add_input(x).output(),
                               mlp.rnn.initial_state().add_input(x).output(), rtol=1e-6)


def test_user_object_errors_name_what_is_wrong(tmp_path, monkeypatch):
    pc = dy.ParameterCollection(seed=0)
    path = str(tmp_path / "m")
    with pytest.raises(TypeError, match=r"objects\[0\].spec\[3\] is <function .*lambda.*top of a module"):
        dy.save(path, [OneLayerMLP(pc, 2, 2, 2, act=lambda v: v)])
    with pytest.raises(TypeError, match=r"objects\[0\].spec\[4\] is a set"):
        dy.save(path, [OneLayerMLP(pc, 2, 2, 2, extra={1, 2})])
    with pytest.raises(TypeError, match=r"spec\[4\]\['x'\] is nan"):
        dy.save(path, [OneLayerMLP(pc, 2, 2, 2, extra={"x": float("nan")})])
    dy.save(path, [OneLayerMLP(pc, 2, 2, 2, extra=os.getcwd)])
    with pytest.raises(ValueError, match="names '.*getcwd'.*own module"):
        dy.load(path, dy.ParameterCollection())
    dy.save(path, [OneLayerMLP(pc, 2, 2, 2)])
    monkeypatch.delattr(f"{__name__}.OneLayerMLP")  # a program that does not define the class
    with pytest.raises(ValueError, match="class 'OneLayerMLP'.*never imports"):
        dy.load(path, dy.ParameterCollection())
    monkeypatch.undo()
    monkeypatch.setattr(OneLayerMLP, "from_spec", staticmethod(lambda spec, m: OneLayerMLP(m, 2, 3, 2)))
    with pytest.raises(ValueError, match=r"shape \(3, 2\) here but \(2, 2\) in the file"):
        dy.load(path, dy.ParameterCollection())
    monkeypatch.setattr(OneLayerMLP, "from_spec", staticmethod(lambda spec, m: OneLayerMLP(m, *spec[:2])))
    with pytest.raises(ValueError, match=r"OneLayerMLP.from_spec\(\(2, 2, 2, .*\) failed: .*num_out"):
        dy.load(path, dy.ParameterCollection())


def test_a_builder_with_its_own_cell_is_still_refused_by_dy_save(tmp_path):
    """It has DyNet's spec interface now, but its cell cannot be rebuilt from a spec: the
    error says at save time what to do instead (not a failure at load)."""
    rnn = dy.RNNBuilder(1, 3, 4, dy.ParameterCollection(seed=0), cell=dy.cells.GRUCell)
    with pytest.raises(TypeError, match="with your own cell, save its collection with pc.save"):
        dy.save(str(tmp_path / "m"), [rnn])


def test_collections_saved_under_keys_share_a_file_as_in_dynet(tmp_path, rng):
    """DyNet's `pc.save(fname, key, append)`: an encoder and a decoder in one file, each
    read back by its key; a collection saved again under its key replaces its old values,
    and the metadata stays."""
    path = str(tmp_path / "m")
    enc_pc, dec_pc = dy.ParameterCollection(seed=0), dy.ParameterCollection(seed=1)
    enc, dec = dy.GRUBuilder(1, 3, 4, enc_pc), dy.VanillaLSTMBuilder(1, 4, 2, dec_pc)
    randomize(enc, rng)
    randomize(dec, rng)
    enc_pc.save(path, "/encoder", metadata={"v": 1})
    dec_pc.save(path, "/decoder", append=True)
    new_enc_pc, new_dec_pc = dy.ParameterCollection(seed=2), dy.ParameterCollection(seed=3)
    enc2, dec2 = dy.GRUBuilder(1, 3, 4, new_enc_pc), dy.VanillaLSTMBuilder(1, 4, 2, new_dec_pc)
    new_dec_pc.populate(path, "/decoder")
    new_enc_pc.populate(path, "/encoder")
    def values(b):
        return [p.as_array() for p in b.saved_parameters()]

    for a, b in ((enc, enc2), (dec, dec2)):
        assert_trees_allclose(values(b), values(a))
    randomize(enc, rng)
    enc_pc.save(path, "/encoder", append=True)
    new_enc_pc.populate(path, "/encoder")
    assert_trees_allclose(values(enc2), values(enc))
    assert dy.load_metadata(path) == {"v": 1}
    with pytest.raises(ValueError, match="does not match this collection"):
        new_dec_pc.populate(path, "/encoder")
    with pytest.raises(TypeError, match="key must be a string"):
        enc_pc.save(path, 3)
