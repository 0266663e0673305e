"""DyNet's SparseLSTMBuilder: a vanilla LSTM with 0/1 weight masks set by magnitude pruning."""

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy

from . import references as ref


def _builder(rng, ln=False):
    pc = dy.ParameterCollection(seed=1)
    rnn = dy.SparseLSTMBuilder(2, 5, 4, pc, ln_lstm=ln)
    for layer in rnn.layer_parameters():
        for p in layer[:3] + layer[5:]:
            p.set_value(rng.normal(0.0, 0.6, size=p.shape()))
    return pc, rnn


def test_set_sparsity_prunes_the_smallest_weights_of_all_layers(rng):
    pc, rnn = _builder(rng)
    weights = [p for layer in rnn.layer_parameters() for p in layer[:2]]
    total = sum(p.as_array().size for p in weights)
    rnn.set_sparsity(0.3)
    masks = [m for layer in rnn.get_masks() for m in layer]
    values = np.concatenate([m.as_array().ravel() for m in masks])
    assert set(np.unique(values)) <= {0.0, 1.0} and int((values == 0).sum()) == int(0.3 * total)
    mags = np.concatenate([np.abs(p.as_array()).ravel() for p in weights])
    assert mags[values == 0].max() <= mags[values == 1].min()  # the pruned are the smallest, over all layers
    first = values == 0
    rnn.set_sparsity(0.6)
    values = np.concatenate([m.as_array().ravel() for layer in rnn.get_masks() for m in layer])
    assert int((values == 0).sum()) == int(0.6 * total) and (values[first] == 0).all()  # pruned stay pruned
    with pytest.raises(ValueError, match="fraction"):
        rnn.set_sparsity(1.5)


@pytest.mark.parametrize("ln", [False, True])
def test_outputs_match_the_numpy_reference_with_masked_weights(rng, ln):
    pc, rnn = _builder(rng, ln)
    rnn.set_sparsity(0.5)
    xs = rng.normal(size=(6, 5)).astype(np.float32)
    got = np.asarray(rnn.initial_state().transduce(jnp.asarray(xs)))
    params = [[p.as_array().astype(np.float64) for p in layer] for layer in rnn.layer_parameters()]
    want, _ = ref.run_stack(ref.sparse_lstm, params, xs, ln_lstm=ln)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    # the masks matter: the unmasked LSTM gives something else
    dense, _ = ref.run_stack(ref.vanilla_lstm, [ps[:3] + ps[5:] for ps in params], xs, ln_lstm=ln)
    assert not np.allclose(dense, want, atol=1e-3)


def test_training_keeps_masks_and_pruned_weights_get_no_gradient(rng):
    pc, rnn = _builder(rng)
    rnn.set_sparsity(0.5)
    masks_before = [m.as_array() for layer in rnn.get_masks() for m in layer]
    xs = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)

    def loss(rnn, xs):
        return jnp.sum(rnn.initial_state().transduce(xs) ** 2)

    _, grads = dy.value_and_grad(loss, pc)(rnn, xs)
    W_x, M_x = rnn.layer_parameters()[0][0], rnn.get_masks()[0][0]
    g = np.asarray(grads[W_x.name()])
    assert np.all(g[M_x.as_array() == 0] == 0) and np.any(g[M_x.as_array() == 1] != 0)
    assert np.all(np.asarray(grads[M_x.name()]) == 0)
    trainer = dy.AdamTrainer(pc, 0.05)
    for _ in range(3):
        trainer.step(loss, rnn, xs)
    for m, before in zip([m for layer in rnn.get_masks() for m in layer], masks_before):
        np.testing.assert_array_equal(m.as_array(), before)


def test_save_and_load_keep_the_masks(tmp_path, rng):
    pc, rnn = _builder(rng)
    rnn.set_sparsity(0.4)
    dy.save(str(tmp_path / "m.npz"), [rnn])
    [back] = dy.load(str(tmp_path / "m.npz"), dy.ParameterCollection())
    assert type(back) is dy.SparseLSTMBuilder
    for a, b in zip(rnn.get_masks()[1], back.get_masks()[1]):
        np.testing.assert_array_equal(a.as_array(), b.as_array())
    xs = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
    np.testing.assert_allclose(np.asarray(back.initial_state().transduce(xs)),
                               np.asarray(rnn.initial_state().transduce(xs)), rtol=1e-6)
