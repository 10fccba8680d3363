"""The sweep under jax.distributed: two processes on 127.0.0.1 form one 2-device CPU mesh
(gloo collectives), and must give the results of one process; a process killed mid-run
ends the other with one line, in bounded time, and the folder resumes to the same results.

Every process is a subprocess with a timeout; each has one CPU device
(--xla_force_host_platform_device_count=1), the single-process reference has two, so the
mesh is the same. A persistent compilation cache shared by the runs keeps the test short.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "scripts" / "sweep_lengths.py")
# sigmoid never solves at this budget, so the run trains its whole budget: time to kill.
SWEEP = [
    "--lengths", "10", "--seeds", "1", "--inits", "sigmoid,smart_tanh",
    "--methods", "MSGD-C,MSGD-CR", "--max-updates", "1000", "--eval-every", "50",
]  # fmt: skip
TIMEOUT = 400  # seconds per command: generous on 2 busy cores; they take far less
KEYS = ("task", "init", "method", "seed", "length", "solved", "updates", "error", "nonfinite")


def _gloo() -> bool:
    from jax._src.lib import _jax

    return hasattr(_jax, "make_gloo_tcp_collectives")


needs_gloo = pytest.mark.skipif(
    not _gloo(), reason="this jaxlib has no gloo CPU collectives: no multi-process CPU mesh"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(cache: pathlib.Path, devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "SLURM_", "OMPI_"))}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def _start_two(out: pathlib.Path, cache: pathlib.Path) -> list[subprocess.Popen]:
    port = _free_port()
    flags = [
        "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
        "--init-timeout", "120", "--heartbeat-timeout", "15",
    ]  # fmt: skip
    return [
        subprocess.Popen(
            [sys.executable, SCRIPT, *SWEEP, "--out", str(out), *flags, "--process-id", str(i)],
            env=_env(cache, 1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    done = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=TIMEOUT)
            done.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return done


def _runs(out: pathlib.Path) -> list[dict]:
    record = json.loads((out / "results.json").read_text())
    return [{k: r[k] for k in KEYS} for r in record["runs"]]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, cache) -> pathlib.Path:
    out = tmp_path_factory.mktemp("two") / "sweep"
    (rc0, out0, err0), (rc1, out1, err1) = _finish(_start_two(out, cache))
    assert rc0 == 0 and rc1 == 0, f"process 0:\n{err0[-3000:]}\nprocess 1:\n{err1[-3000:]}"
    assert "success" in out0 and out1 == ""  # only process 0 prints
    return out


@needs_gloo
def test_two_processes_equal_one(tmp_path, cache, two_processes):
    single = tmp_path / "single"
    result = subprocess.run(
        [sys.executable, SCRIPT, *SWEEP, "--out", str(single)],
        env=_env(cache, 2),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _runs(two_processes) == _runs(single)
    assert any(r["solved"] for r in _runs(single)) and not all(r["solved"] for r in _runs(single))
    record = json.loads((two_processes / "results.json").read_text())
    assert record["provenance"]["processes"] == 2 and record["provenance"]["device"] == "cpu x2"
    assert json.loads((single / "results.json").read_text())["provenance"]["processes"] == 1
    # Process 0 alone wrote, and left no probe, temporary file or checkpoint behind.
    assert sorted(p.name for p in two_processes.iterdir()) == sorted(
        p.name for p in single.iterdir()
    )


@needs_gloo
def test_killed_process_ends_the_other_and_the_folder_resumes(tmp_path, cache, two_processes):
    out = tmp_path / "sweep"
    procs = _start_two(out, cache)
    try:
        ckpt = out / "ckpt-L10.npz"
        deadline = time.monotonic() + TIMEOUT
        while not ckpt.exists():  # mid-run: the first compiled call is done
            assert procs[0].poll() is None and procs[1].poll() is None, "a process ended early"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        procs[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = procs[0].communicate(timeout=TIMEOUT)
        waited = time.monotonic() - killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    assert procs[0].returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: process 0 of 2: lost contact with the other processes"), stderr
    assert "resumable" in last
    assert waited < 45, f"the surviving process took {waited:.0f} s to end"
    assert ckpt.exists() and not (out / "results.json").exists()

    (rc0, _, err0), (rc1, _, err1) = _finish(_start_two(out, cache))  # resume
    assert rc0 == 0 and rc1 == 0, f"process 0:\n{err0[-3000:]}\nprocess 1:\n{err1[-3000:]}"
    assert _runs(out) == _runs(two_processes)
    assert not ckpt.exists()


@needs_gloo
def test_other_process_count_is_refused(two_processes, tmp_path, cache):
    """A folder written by two processes does not resume in one (one line)."""
    result = subprocess.run(
        [sys.executable, SCRIPT, *SWEEP, "--out", str(two_processes)],
        env=_env(cache, 2),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith(
        "was written by 2 processes and this run has 1: resume with 2, or use another output folder"
    ), result.stderr[-2000:]


@needs_gloo
def test_unreachable_coordinator_is_one_line_in_bounded_time(tmp_path):
    port = _free_port()  # nothing listens there
    flags = [
        "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
        "--process-id", "1", "--init-timeout", "5",
    ]  # fmt: skip
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, SCRIPT, *SWEEP, "--out", str(tmp_path / "sweep"), *flags],
        env=_env(tmp_path / "cache", 1),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert time.monotonic() - start < 5 + 60  # the timeout, plus starting Python and JAX
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: process 1: the processes did not all join at 127.0.0.1:{port} within 5 s "
        f"(is every process started, with the same coordinator and number of processes, "
        f"and is the coordinator reachable?)"
    ], result.stderr[-2000:]


@pytest.mark.parametrize("script", ["sweep_lengths", "generalize"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-processes", "2", "--process-id", "2"], "--process-id must be in [0, 2), got 2"),
        (["--num-processes", "0", "--process-id", "0"], "--num-processes must be >= 1, got 0"),
        (["--num-processes", "2"], "give --num-processes and --process-id together"),
        (["--coordinator", "10.0.0.1"], "--coordinator must be HOST:PORT, got '10.0.0.1'"),
        (["--coordinator", "10.0.0.1:http"], "--coordinator must be HOST:PORT"),
        (["--num-processes", "2", "--process-id", "0"], "--num-processes > 1 needs --coordinator"),
        (["--init-timeout", "0"], "--init-timeout must be >= 1, got 0"),
        (["--heartbeat-timeout", "-1"], "--heartbeat-timeout must be >= 1, got -1"),
    ],
)
def test_bad_distributed_flags_are_one_line_errors(script, args, message, capsys, monkeypatch):
    import importlib

    monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
    module = importlib.import_module(
        {"sweep_lengths": "pascanu_jax.cli.sweep", "generalize": "pascanu_jax.cli.generalize"}[
            script
        ]
    )
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args([*args, "--out", "never-written"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_only_the_writing_process_writes(tmp_path, monkeypatch):
    """Under jax.distributed, a process other than 0 writes no file, JSON or checkpoint."""
    import jax
    import numpy as np

    from pascanu_jax.outputs import checkpoint, files

    assert files.is_writer()  # one process
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    assert not files.is_writer()
    files.write_atomic(tmp_path / "a.txt", "x")
    files.write_json(tmp_path / "b.json", {"x": 1})
    checkpoint.save_arrays(tmp_path / "c.npz", {"x": np.zeros(2)}, {"m": 1})
    (tmp_path / "d.txt").write_text("kept")
    files.remove(tmp_path / "d.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.txt"]
    monkeypatch.setattr(jax, "process_index", lambda: 0)
    files.write_json(tmp_path / "b.json", {"x": 1})
    files.remove(tmp_path / "d.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"]


def test_process_count_check():
    from pascanu_jax.experiments.distributed import check_process_count

    check_process_count(None, "a file written before counts were recorded")  # one process
    check_process_count(1, "results.json")
    with pytest.raises(
        ValueError, match=r"^ckpt.npz was written by 2 processes and this run has 1"
    ):
        check_process_count(2, "ckpt.npz")
