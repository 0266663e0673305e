"""Sequence losses against plain NumPy."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import dynrnn as dy


def np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_masked_cross_entropy_matches_numpy(rng):
    T, B, V = 5, 3, 7
    logits = rng.normal(size=(T, B, V)).astype(np.float32)
    targets = rng.integers(0, V, size=(T, B))
    lengths = np.array([5, 2, 3])
    lp = np_log_softmax(logits.astype(np.float64))
    want_steps = np.zeros((T, B))
    for b in range(B):
        for t in range(lengths[b]):
            want_steps[t, b] = -lp[t, b, targets[t, b]]
    got = dy.sequence_cross_entropy(jnp.asarray(logits), jnp.asarray(targets), lengths, reduction="none")
    np.testing.assert_allclose(got, want_steps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dy.sequence_cross_entropy(jnp.asarray(logits), jnp.asarray(targets), lengths),
                               want_steps.sum(), rtol=1e-5)
    np.testing.assert_allclose(
        dy.sequence_cross_entropy(jnp.asarray(logits), jnp.asarray(targets), lengths, reduction="mean"),
        want_steps.sum() / lengths.sum(), rtol=1e-5)
    unbatched = dy.sequence_cross_entropy(jnp.asarray(logits[:, 0]), jnp.asarray(targets[:, 0]))
    np.testing.assert_allclose(unbatched, want_steps[:, 0].sum(), rtol=1e-5)


def test_cross_entropy_errors():
    with pytest.raises(TypeError, match="integer class ids"):
        dy.sequence_cross_entropy(jnp.zeros((3, 2, 4)), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="must be"):
        dy.sequence_cross_entropy(jnp.zeros((3, 2, 4)), jnp.zeros((3, 4), jnp.int32))
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\); expected \(2,\)"):
        dy.sequence_cross_entropy(jnp.zeros((3, 2, 4)), jnp.zeros((3, 2), jnp.int32), np.array([1, 2, 3]))


def test_norm_stabilizer_matches_numpy(rng):
    hs = rng.normal(size=(6, 2, 4)).astype(np.float32)
    lengths = np.array([6, 3])
    norms = np.linalg.norm(hs.astype(np.float64), axis=-1)
    per = [np.mean((norms[1:n, b] - norms[: n - 1, b]) ** 2) for b, n in enumerate(lengths)]
    np.testing.assert_allclose(dy.norm_stabilizer(jnp.asarray(hs), lengths, beta=2.0), 2.0 * np.mean(per), rtol=1e-5)
    np.testing.assert_allclose(dy.norm_stabilizer(jnp.asarray(hs)), np.mean((norms[1:] - norms[:-1]) ** 2), rtol=1e-5)


def test_perplexity_and_bits_per_char():
    assert dy.perplexity(10 * math.log(4), 10) == pytest.approx(4.0)
    assert dy.bits_per_char(10 * math.log(2) * 1.5, 10) == pytest.approx(1.5)
