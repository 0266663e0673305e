"""Data-parallel training across two real processes: `jax.distributed.initialize` with the
coordinator on 127.0.0.1 and CPU collectives (gloo), one CPU device per process. Each process
passes `dy.shard_batch` its own half of every batch; the losses and the trained parameters
must equal one process training on the whole batches."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

WORKER = textwrap.dedent("""
    import json, sys
    import jax
    pid, n, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if n > 1:  # before anything else touches JAX
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=n, process_id=pid,
                                   initialization_timeout=120)
    import numpy as np
    import dynrnn as dy

    pc = dy.ParameterCollection(seed=0)
    E = pc.add_lookup_parameters((20, 6), name="E")
    lstm = dy.LSTMBuilder(2, 6, 12, pc)
    W, b = pc.add_parameters((20, 12), name="W"), pc.add_parameters((20,), name="b")

    def loss(tokens, targets, lengths):
        hs = lstm.initial_state().transduce(E.batch(tokens), lengths=lengths)
        return dy.sequence_cross_entropy(W * hs + b, targets, lengths, reduction="mean")

    rng = np.random.default_rng(0)
    T, B = 9, 8
    trainer = dy.AdamTrainer(pc, 0.01)
    mesh = dy.data_parallel_mesh()          # every process's devices
    trainer.distribute(mesh)
    per = B // n
    mine = slice(pid * per, (pid + 1) * per)  # this process's share of each batch
    losses = []
    for _ in range(4):
        tokens = rng.integers(0, 20, (T, B)).astype(np.int32)
        targets = rng.integers(0, 20, (T, B)).astype(np.int32)
        lengths = rng.integers(1, T + 1, B).astype(np.int32)
        losses.append(trainer.step(loss, dy.shard_batch(tokens[:, mine], mesh, axis=1),
                                   dy.shard_batch(targets[:, mine], mesh, axis=1), dy.shard_batch(lengths[mine], mesh)))
    params = {k: np.asarray(v.addressable_data(0)).ravel()[:8].tolist() for k, v in pc.parameter_values().items()}
    print("RESULT " + json.dumps({"processes": jax.process_count(), "devices": jax.device_count(),
                                  "losses": losses, "params": params}))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _result(out: str) -> dict:
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_two_processes_train_like_one(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device per process
    run = [sys.executable, str(script)]
    single = subprocess.run(run + ["0", "1", "0"], capture_output=True, text=True, timeout=600, env=env)
    assert single.returncode == 0, single.stderr[-3000:]
    port = str(_free_port())
    procs = [subprocess.Popen(run + [str(i), "2", port], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for i in range(2)]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=600)  # a guard against a hang, not a budget
        finally:
            p.kill()
        assert p.returncode == 0, err[-3000:]
        outs.append(_result(out))
    one = _result(single.stdout)
    assert one["processes"] == 1 and one["devices"] == 1
    for r in outs:
        assert r["processes"] == 2 and r["devices"] == 2
        np.testing.assert_allclose(r["losses"], one["losses"], rtol=2e-5)
        for name, values in one["params"].items():
            np.testing.assert_allclose(r["params"][name], values, rtol=2e-5, atol=1e-6)
    assert outs[0]["params"] == outs[1]["params"]  # replicas stay identical, bit for bit
    assert one["losses"][-1] < one["losses"][0]
