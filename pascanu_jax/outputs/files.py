"""Files that are never half-written, and the cache folder.

Every file is written to a temporary name in the same folder and renamed over the target
(`os.replace` is atomic on POSIX), so a reader sees the old file or the new one, never a
half-written one, and an interrupted run loses nothing that was finished.

Under `jax.distributed` (several processes, one mesh) only process 0 writes: every write
below, and so every result, figure and checkpoint, is skipped in the others (`is_writer`).
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Any


def default_cache_dir() -> pathlib.Path:
    """$PASCANU_JAX_CACHE, else $XDG_CACHE_HOME/pascanu_jax, else ~/.cache/pascanu_jax."""
    if "PASCANU_JAX_CACHE" in os.environ:
        return pathlib.Path(os.environ["PASCANU_JAX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "pascanu_jax"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_writer() -> bool:
    """Whether this process writes outputs: always, but under `jax.distributed`, where
    process 0 alone does (the others compute the same results and write nothing)."""
    import jax

    return not jax.distributed.is_initialized() or jax.process_index() == 0


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write `data` to `path` atomically, creating its folder (only if `is_writer()`)."""
    if not is_writer():
        return
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; results are shared
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON, atomically (NaN and Infinity allowed, as Python's json module reads them);
    only if `is_writer()` (write_atomic checks)."""
    write_atomic(path, json.dumps(obj, indent=1) + "\n")


def remove(path: str | os.PathLike) -> None:
    """Delete a file this process wrote (only if `is_writer()`; a missing file is fine)."""
    if is_writer():
        pathlib.Path(path).unlink(missing_ok=True)


def read_json(path: str | os.PathLike) -> Any:
    """JSON from `path`; a file that is not JSON is a ValueError naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it to start over") from e
