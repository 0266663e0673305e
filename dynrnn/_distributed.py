"""Data-parallel training with JAX's own sharding: one `Mesh` axis over the devices, the
batch axis of every input split across it, parameters and optimizer state replicated.
XLA inserts the gradient all-reduce; nothing here starts processes or moves gradients.

    mesh = dy.data_parallel_mesh()                # every device, one axis named "batch"
    trainer = dy.AdamTrainer(pc, 1e-3)
    trainer.distribute(mesh)                      # replicate parameters and optimizer state
    for xs, ys, lengths in batches:               # xs (T, B, d), ys (T, B), lengths (B,)
        loss = trainer.step(loss_fn, dy.shard_batch(xs, mesh, axis=1),
                            dy.shard_batch(ys, mesh, axis=1), dy.shard_batch(lengths, mesh))

Many hosts: call `jax.distributed.initialize()` first in every process; `jax.devices()`
then lists every host's devices, and each process passes `shard_batch` its own slice of
the global batch (see the README).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH = "batch"


def data_parallel_mesh(devices: Sequence[Any] | None = None, axis_name: str = BATCH) -> Mesh:
    """A one-axis mesh over `devices` (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("data_parallel_mesh: no devices given.")
    return Mesh(np.array(devices), (axis_name,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that keeps a full copy on every device of `mesh`."""
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh) -> Any:
    """`tree`'s arrays, copied to every device of `mesh`."""
    _check_mesh("replicate", mesh)
    return jax.device_put(tree, replicated(mesh))


def shard_batch(tree: Any, mesh: Mesh, axis: int = 0) -> Any:
    """Splits every array in `tree` along `axis` (its batch axis) over all of `mesh`'s
    devices. In one process the arrays are the whole batch; with several processes
    (`jax.distributed`) each passes its own equal part and gets the global array back.

    Raises:
      ValueError: an array has no such axis, or its batch does not divide evenly.
    """
    _check_mesh("shard_batch", mesh)
    n_dev, n_proc = mesh.devices.size, jax.process_count()

    def put(x: Any) -> jax.Array:
        x = x if isinstance(x, jax.Array) else np.asarray(x)
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"shard_batch: axis {axis} is out of range for an array of shape {tuple(x.shape)}.")
        ax = axis % x.ndim
        size = x.shape[ax] * n_proc
        if size % n_dev:
            raise ValueError(f"shard_batch: the batch axis ({ax}) of an array of shape {tuple(x.shape)} holds {size} "
                             f"examples{' in all' if n_proc > 1 else ''}, which does not divide over {n_dev} devices; "
                             f"pad the batch to a multiple of {n_dev}.")
        sharding = NamedSharding(mesh, PartitionSpec(*([None] * ax), mesh.axis_names))
        if n_proc > 1:
            return jax.make_array_from_process_local_data(sharding, np.asarray(x))
        return jax.device_put(x, sharding)

    return jax.tree_util.tree_map(put, tree)


def _check_mesh(where: str, mesh: Any) -> None:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{where}: expected a jax.sharding.Mesh (see dynrnn.data_parallel_mesh); "
                        f"given {type(mesh).__name__}.")
