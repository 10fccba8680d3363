"""Several processes (hosts) as one device mesh: `jax.distributed`, with bounded failure.

`start` joins this process to the others (`jax.distributed.initialize`); after it,
`jax.devices()` lists the devices of every process, `sharding.run_mesh` spans them, the
engine's compiled calls run the run axis sharded over all of them (on CPUs the cross-process
collectives are gloo's, JAX's default), `sharding.to_host` gathers every result onto every
process, and only process 0 writes files (`outputs.files.is_writer`). Every process runs
the same command and computes the same host-side decisions from the same gathered arrays.

Failure is bounded in time, never a hang:
- joining: a process that cannot reach the coordinator, or a coordinator that does not see
  every process, ends after `init_timeout` seconds with a one-line `DistributedError`
  (a watchdog thread: JAX's own timeout aborts the process with a C++ stack trace);
- running: a process that dies makes the others' next collective fail at once (gloo's
  connection closes); a process that hangs, or dies while the others compute without
  collectives, is declared dead by the coordination service after `heartbeat_timeout`
  seconds, which ends every process.
Results and checkpoints are written atomically by process 0 only, so the output folder
stays resumable with the same number of processes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

import jax

from pascanu_jax.outputs.folder import OutputFolderError


class DistributedError(RuntimeError):
    """Joining the processes failed, or they disagree."""


def start(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    init_timeout: int = 300,
    heartbeat_timeout: int = 60,
    shutdown_timeout: int = 120,
    on_timeout: Callable[[str], None] | None = None,
) -> None:
    """`jax.distributed.initialize` with a bounded join. Call before anything touches JAX's
    backend (a computation, `jax.devices()`).

    Arguments left None are filled by JAX itself: the coordinator from
    $JAX_COORDINATOR_ADDRESS, and all three from a cluster it detects (Slurm, Open MPI,
    Cloud TPU, Kubernetes). If the processes have not all joined after `init_timeout`
    seconds, `on_timeout(message)` is called from a watchdog thread (default: print the
    message to stderr and end the process with status 1), before JAX's own timeout would
    abort the process.
    """
    for name, value in (
        ("init_timeout", init_timeout),
        ("heartbeat_timeout", heartbeat_timeout),
        ("shutdown_timeout", shutdown_timeout),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"the number of processes must be >= 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"the process id must be in [0, {num_processes}), got {process_id}")
    if coordinator is not None and (":" not in coordinator or not coordinator.rsplit(":", 1)[1]):
        raise ValueError(f"the coordinator must be HOST:PORT, got {coordinator!r}")
    where = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS", "the coordinator")
    who = "this process" if process_id is None else f"process {process_id}"
    message = (
        f"{who}: the processes did not all join at {where} within {init_timeout} s "
        f"(is every process started, with the same coordinator and number of processes, "
        f"and is the coordinator reachable?)"
    )
    watchdog = threading.Timer(init_timeout, on_timeout or _exit_with, (message,))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator,
            num_processes,
            process_id,
            # JAX aborts the process at its own timeout: the watchdog speaks first.
            initialization_timeout=init_timeout + 30,
            heartbeat_timeout_seconds=heartbeat_timeout,
            shutdown_timeout_seconds=shutdown_timeout,
        )
    except (ValueError, TypeError) as e:  # JAX's checks of missing or bad arguments
        raise DistributedError(f"cannot start the distributed run: {e}") from None
    finally:
        watchdog.cancel()


def _exit_with(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    os._exit(1)


def is_distributed() -> bool:
    """Whether this process is one of several (`start` or `jax.distributed.initialize`
    was called)."""
    return jax.distributed.is_initialized()


def process_count() -> int:
    """The number of processes (1 without `jax.distributed`); does not start JAX's backend
    in a single process."""
    return jax.process_count() if is_distributed() else 1


def check_process_count(recorded: int | None, what: str) -> None:
    """A one-line OutputFolderError (a ValueError) unless `what` (a checkpoint, a results
    file) was written by as many processes as run now (`recorded` None: written before the
    count was recorded, by one process)."""
    recorded = 1 if recorded is None else int(recorded)
    now = process_count()
    if recorded != now:
        raise OutputFolderError(
            f"{what} was written by {recorded} process{'es' * (recorded != 1)} and this run has "
            f"{now}: resume with {recorded}, or use another output folder"
        )


def check_same_folder(out: str | os.PathLike, wait: float = 10.0) -> None:
    """A one-line DistributedError unless every process sees the output folder `out` as
    process 0 writes it (one machine, or a file system they share): the others read what
    process 0 wrote (a checkpoint to resume from, the finished lengths, trained models).
    Process 0 writes a probe file that every process must see within `wait` seconds, and
    every process must list the same files (names and sizes). A collective: every process
    calls it, before anything is written. Nothing to check in one process."""
    if process_count() == 1:
        return
    import hashlib
    import time

    import numpy as np
    from jax.experimental import multihost_utils

    from pascanu_jax.outputs.files import remove, write_atomic

    token = np.frombuffer(os.urandom(8), np.uint8)
    token = np.asarray(multihost_utils.broadcast_one_to_all(token)).astype(np.uint8)
    probe = os.path.join(out, f".probe-{token.tobytes().hex()}")
    write_atomic(probe, "every process of a distributed run must see this file\n")
    multihost_utils.sync_global_devices("pascanu_jax probe written")
    deadline = time.monotonic() + wait
    while not os.path.exists(probe) and time.monotonic() < deadline:
        time.sleep(0.2)
    seen = []
    if os.path.isdir(out):
        for name in sorted(os.listdir(out)):
            path = os.path.join(out, name)
            if os.path.isfile(path) and not name.startswith("."):  # not probes or temporaries
                seen.append(f"{name}:{os.path.getsize(path)}")
    digest = hashlib.sha256("\n".join(seen).encode()).digest()
    mine = np.frombuffer(bytes([os.path.exists(probe)]) + digest, np.uint8)
    every = np.asarray(multihost_utils.process_allgather(mine)).reshape(-1, mine.size)
    remove(probe)
    blind = [i for i, row in enumerate(every) if not row[0]]
    differ = [i for i, row in enumerate(every) if (row[1:] != every[0, 1:]).any()]
    if blind or differ:
        which = ", ".join(map(str, blind or differ))
        raise DistributedError(
            f"process(es) {which} do not see the output folder {out} as process 0 writes it: "
            f"every process needs it on a file system they share (or one machine)"
        )
