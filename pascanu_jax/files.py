"""Small file helpers shared by the experiments: atomic JSON writes and the cache folder."""

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


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON to `path` through a temporary file and os.replace (never half-written)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
