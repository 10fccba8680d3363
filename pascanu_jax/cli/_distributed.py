"""Several processes, one mesh: the flags and start-up shared by `sweep` and `generalize`.

    --coordinator HOST:PORT --num-processes N --process-id I

With none of the three flags, the command joins a distributed run only where
`jax.distributed.initialize()` finds one by itself: $JAX_COORDINATOR_ADDRESS set (then
JAX needs the count and id from a cluster it detects), or a Slurm job step of several
tasks ($SLURM_NTASKS > 1; count and id from $SLURM_NTASKS and $SLURM_PROCID), or Open MPI
($OMPI_COMM_WORLD_SIZE > 1, $OMPI_COMM_WORLD_RANK). JAX 0.10.2 reads no environment
variable for the count or the id otherwise. Process 0 prints and writes; the others are
silent but for errors, each one line.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from pascanu_jax.experiments import distributed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "several processes (jax.distributed; run the same command in every process)"
    )
    group.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address")
    group.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
    group.add_argument("--process-id", type=int, metavar="I", help="this process, 0 to N-1")
    group.add_argument(
        "--init-timeout",
        type=int,
        default=300,
        metavar="S",
        help="seconds to wait for every process to join (default 300)",
    )
    group.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=60,
        metavar="S",
        help="seconds of silence after which a process counts as dead and every process "
        "ends (default 60)",
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One-line errors (`parser.error`) for bad distributed flags."""
    for flag in ("init_timeout", "heartbeat_timeout"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    n, i = args.num_processes, args.process_id
    if n is not None and n < 1:
        parser.error(f"--num-processes must be >= 1, got {n}")
    if i is not None and n is not None and not 0 <= i < n:
        parser.error(f"--process-id must be in [0, {n}), got {i}")
    if (n is None) != (i is None):
        parser.error("give --num-processes and --process-id together")
    coordinator = args.coordinator
    if coordinator is not None:
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            parser.error(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    elif n is not None and n > 1 and "JAX_COORDINATOR_ADDRESS" not in os.environ:
        parser.error("--num-processes > 1 needs --coordinator HOST:PORT")


def _wanted(args: argparse.Namespace) -> bool:
    if args.coordinator is not None or args.num_processes is not None:
        return True
    env = os.environ
    return (
        "JAX_COORDINATOR_ADDRESS" in env
        or _count(env.get("SLURM_NTASKS")) > 1
        or _count(env.get("OMPI_COMM_WORLD_SIZE")) > 1
    )


def _count(text: str | None) -> int:
    try:
        return int(text or 1)
    except ValueError:
        return 1


def start(args: argparse.Namespace) -> None:
    """Join the distributed run, if one is asked for (see the module docstring), and
    check that every process sees the same output folder `args.out`. Then process 0
    prints; the others' standard output goes nowhere, and an error ends any process with
    one line on standard error, at once (not waiting for JAX's shutdown barrier, which a
    dead peer would hold for minutes). Call before anything touches JAX's backend."""
    if not _wanted(args):
        return
    if args.num_processes == 1:  # one process: nothing to join
        return
    try:
        distributed.start(
            args.coordinator,
            args.num_processes,
            args.process_id,
            init_timeout=args.init_timeout,
            heartbeat_timeout=args.heartbeat_timeout,
        )
    except distributed.DistributedError as e:
        _die(str(e))
    import jax

    rank, count = jax.process_index(), jax.process_count()
    sys.excepthook = lambda kind, value, tb: _fail(rank, count, kind, value, tb)
    if rank != 0:  # silent, C++ libraries included (gloo prints on file descriptor 1)
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        distributed.check_same_folder(args.out)
    except distributed.DistributedError as e:
        _die(f"process {rank}: {e}")


def _fail(rank: int, count: int, kind, value, tb) -> None:
    """An exception ends this process with one line, now (os._exit skips JAX's exit-time
    shutdown barrier). Set PASCANU_JAX_TRACEBACK=1 for the traceback."""
    if os.environ.get("PASCANU_JAX_TRACEBACK"):
        traceback.print_exception(kind, value, tb)
    text = (str(value).strip().splitlines() or [""])[0]
    if kind is KeyboardInterrupt:
        text = "interrupted"
    elif _lost_peer(text):
        text = (
            f"lost contact with the other processes (one ended or hung: {text[:200]}); "
            f"the output folder is resumable: start all {count} processes again"
        )
    else:
        text = f"{kind.__name__}: {text}" if not issubclass(kind, ValueError) else text
    _die(f"process {rank} of {count}: {text}")


def _lost_peer(text: str) -> bool:
    words = ("gloo", "connection", "unavailable", "heartbeat", "coordination", "deadline")
    return any(w in text.lower() for w in words)


def _die(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    os._exit(1)
