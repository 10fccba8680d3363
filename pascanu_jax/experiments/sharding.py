"""Runs sharded over every device: a 1-D mesh over the run axis.

Independent runs are embarrassingly parallel, so the run axis (axis 0 of every per-run
array) is split across `jax.devices()` and XLA's partitioner keeps each run's training on
its device; the only cross-device traffic is the "is any run still training" reduction.

Multi-host: every process calls `distributed.start` (`jax.distributed.initialize` with
bounded failure) before anything else. `jax.devices()` then lists the devices of all
processes, the same mesh spans them, every process builds the same global arrays from the
same seeds and `to_devices` places only its own shards (`jax.make_array_from_callback`);
`to_host` gathers results onto every process with `multihost_utils.process_allgather`.
Every process runs the same command; only process 0 writes files (`files.is_writer`).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUN_AXIS = "runs"


def one_device_per_core(n: int | None = None) -> None:
    """On a CPU, ask XLA for `n` host devices (default: one per core), so that runs shard
    over the cores: XLA runs a small matmul on one thread, and one device per core gave
    1.6x the throughput of one device on a 2-core machine (T = 200, 16 runs). Call it
    before JAX's first computation (it only sets XLA_FLAGS; an accelerator is unaffected);
    a flag the user already set wins.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        count = n or os.cpu_count() or 1
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def run_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all devices of all hosts)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (RUN_AXIS,))


def padded_runs(n_runs: int, mesh: Mesh) -> int:
    """The run count rounded up to a multiple of the device count."""
    n = mesh.size
    return -(-n_runs // n) * n


def to_devices(tree, mesh: Mesh):
    """Place host arrays (leading run axis) as global arrays sharded over the mesh."""
    sharding = NamedSharding(mesh, PartitionSpec(RUN_AXIS))

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def to_host(tree):
    """Global arrays back to numpy on every host."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    return multihost_utils.process_allgather(tree, tiled=True)
