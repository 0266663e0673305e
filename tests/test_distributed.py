"""Data-parallel training (dynrnn.data_parallel_mesh / shard_batch / Trainer.distribute) on 8
simulated CPU devices: the same seed gives the same losses and parameters as one device.
The device count is fixed when JAX starts, so the check runs in a fresh interpreter."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    import dynrnn as dy

    def model(seed):
        pc = dy.ParameterCollection(seed=seed)
        E = pc.add_lookup_parameters((20, 6), name="E")
        lstm = dy.LSTMBuilder(2, 6, 12, pc)
        W, b = pc.add_parameters((20, 12), name="W"), pc.add_parameters((20,), name="b")

        def loss(tokens, targets, lengths):
            hs = lstm.initial_state().transduce(E.batch(tokens), lengths=lengths)
            return dy.sequence_cross_entropy(W * dy.dropout(hs, 0.25) + b, targets, lengths, reduction="mean")
        return pc, loss

    rng = np.random.default_rng(0)
    T, B = 9, 16
    batches = [(rng.integers(0, 20, (T, B)).astype(np.int32), rng.integers(0, 20, (T, B)).astype(np.int32),
                rng.integers(1, T + 1, B).astype(np.int32)) for _ in range(4)]
    out = {"devices": jax.device_count()}
    for n in (1, 8):
        pc, loss = model(0)
        trainer = dy.AdamTrainer(pc, 0.01)
        losses = []
        if n > 1:
            mesh = dy.data_parallel_mesh(jax.devices()[:n])
            trainer.distribute(mesh)
        for tokens, targets, lengths in batches:
            args = (tokens, targets, lengths)
            if n > 1:
                args = dy.shard_batch((tokens, targets), mesh, axis=1) + (dy.shard_batch(lengths, mesh),)
                assert len(args[0].sharding.device_set) == n and args[0].addressable_shards[0].data.shape == (T, B // n)
            losses.append(trainer.step(loss, *args))
        W = pc.parameter_values()["/W"]
        out[n] = {"losses": losses, "W": np.asarray(W).tolist(), "W_devices": len(W.sharding.device_set),
                  "W_replicated": bool(W.sharding.is_fully_replicated)}
    try:
        dy.shard_batch(np.zeros((3, 12)), dy.data_parallel_mesh(), axis=1)
    except ValueError as e:
        out["error"] = str(e)
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def result():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_eight_devices_train_like_one(result):
    import numpy as np

    assert result["devices"] == 8
    one, eight = result["1"], result["8"]
    assert len(one["losses"]) == 4 and one["losses"][0] != one["losses"][-1]
    np.testing.assert_allclose(eight["losses"], one["losses"], rtol=2e-5)
    np.testing.assert_allclose(eight["W"], one["W"], rtol=1e-4, atol=1e-6)


def test_parameters_stay_replicated(result):
    assert result["8"]["W_devices"] == 8 and result["8"]["W_replicated"]
    assert result["1"]["W_devices"] == 1


def test_uneven_batch_is_a_clear_error(result):
    assert "12 examples" in result["error"] and "8 devices" in result["error"] and "multiple of 8" in result["error"]


def test_bad_mesh_argument():
    import dynrnn as dy

    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        dy.shard_batch([1, 2], mesh="cpu")
