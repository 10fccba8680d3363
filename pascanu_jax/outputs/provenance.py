"""Where a number came from: the code, the software and the machine that produced it.

Every results file of the experiments carries `provenance()`, so a table can always be
traced to the commit and the command that regenerate it (README, docs/REPRODUCTION.md).
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
from typing import Any

import jax
import jaxlib

# Relative to the repository root: what `git_state` calls the code.
CODE_PATHS = (":/pascanu_jax", ":/scripts", ":/benchmarks", ":/pyproject.toml")


def device_name() -> str:
    """The devices the runs shard over, e.g. 'cpu x2' or 'NVIDIA H100 80GB HBM3 x8'."""
    devices = jax.devices()
    return f"{devices[0].device_kind} x{len(devices)}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def git_state(path: str | None = None) -> dict[str, Any]:
    """{"commit": hash or None, "dirty": the code differs from it} of the checkout that
    holds `path` (default: this package). None outside a git checkout. "The code" is what
    can change a number: the package, the scripts, the benchmarks and pyproject.toml (an
    edited README does not make a result dirty).

    Outside a git checkout (a copy of the working tree sent to a lent machine), the commit
    is read from the environment variable PASCANU_JAX_COMMIT when set, with dirty None.

    Read once per process (cached): the code that runs is the code that was loaded, even if
    the checkout changes while a long run goes on. Experiments call `provenance()` first.
    """
    where = path or os.path.dirname(os.path.abspath(__file__))

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", where, *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": os.environ.get("PASCANU_JAX_COMMIT") or None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def provenance(**extra: Any) -> dict[str, Any]:
    """The code, software and machine of this process, plus `extra` (settings, wall_s).

    Keys: commit, dirty, jax, jaxlib, python, device (as `device_name`), processes (more
    than 1 under `jax.distributed`), platform, cpu, matmul_precision (JAX's default for
    float32 dots: None is the platform's, TF32 on recent NVIDIA GPUs), tf32_override (the
    NVIDIA_TF32_OVERRIDE environment variable, "0" turning TF32 off in every CUDA library),
    written (UTC, ISO 8601), then `extra`.
    """
    return {
        **dict(git_state()),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "python": platform.python_version(),
        "device": device_name(),
        "processes": jax.process_count(),
        "platform": jax.devices()[0].platform,
        "cpu": _cpu_model(),
        "matmul_precision": jax.config.jax_default_matmul_precision,
        "tf32_override": os.environ.get("NVIDIA_TF32_OVERRIDE"),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
