"""Sequence losses against plain NumPy."""

import math

import jax
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


def test_cross_entropy_gradient_and_hessian_match_numpy(rng):
    """d nll / d logits = softmax − onehot (zero past a sequence's end), and the second
    derivative diag(p) − ppᵀ (so forward mode and second order work through the loss)."""
    T, B, V = 4, 3, 6
    logits = rng.normal(size=(T, B, V)).astype(np.float32)
    targets = rng.integers(0, V, size=(T, B))
    lengths = np.array([4, 1, 2])
    p = np.exp(np_log_softmax(logits.astype(np.float64)))
    want = p - np.eye(V)[targets]
    want[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
    weights = rng.normal(size=(T, B)).astype(np.float32)  # a cotangent that is not all ones

    def loss(x):
        return jnp.sum(weights * dy.sequence_cross_entropy(x, jnp.asarray(targets), lengths, reduction="none"))

    got = jax.grad(loss)(jnp.asarray(logits))
    np.testing.assert_allclose(got, weights[..., None] * want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda x: dy.sequence_cross_entropy(x, jnp.asarray(targets), lengths))(
        jnp.asarray(logits)), want, rtol=1e-5, atol=1e-6)
    # forward-mode and second order work too (jax.hessian is forward-over-reverse)
    x0, t0 = logits[0, 0], targets[0, 0]
    hess = jax.hessian(lambda x: dy.sequence_cross_entropy(x[None], jnp.asarray([t0])))(jnp.asarray(x0))
    p0 = p[0, 0]
    np.testing.assert_allclose(hess, np.diag(p0) - np.outer(p0, p0), rtol=1e-4, atol=1e-6)
    # DyNet's pickneglogsoftmax computes the same loss
    g = jax.grad(lambda x: jnp.sum(dy.pickneglogsoftmax_batch(x, jnp.asarray(targets[0]))))(jnp.asarray(logits[0]))
    np.testing.assert_allclose(g, p[0] - np.eye(V)[targets[0]], rtol=1e-5, atol=1e-6)


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
