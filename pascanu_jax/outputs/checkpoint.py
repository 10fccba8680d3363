"""Checkpoints of arrays and pytrees in one .npz, written atomically (`files.py`), so
long runs lose nothing when interrupted."""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from typing import Any

import jax
import numpy as np

from pascanu_jax.outputs.files import is_writer, write_atomic


def save_npz(path: str | os.PathLike, arrays: dict[str, Any], *, compress: bool = False) -> None:
    """Named arrays as an .npz (readable by `np.load` alone; deflated when `compress`),
    written atomically (only by the writing process, `files.is_writer`)."""
    if not is_writer():
        return
    buffer = io.BytesIO()
    save = np.savez_compressed if compress else np.savez
    save(buffer, **{name: np.asarray(x) for name, x in arrays.items()})
    write_atomic(path, buffer.getvalue())


def save_arrays(path: str | os.PathLike, arrays: dict[str, Any], meta: dict | None = None) -> None:
    """Save named numpy arrays and a JSON-able `meta` dict to one compressed .npz file,
    atomically (checkpoints of long campaigns are committed: keep them small)."""
    meta_bytes = np.frombuffer(json.dumps(meta or {}).encode(), dtype=np.uint8)
    save_npz(path, {**arrays, "__meta__": meta_bytes}, compress=True)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (truncated, empty, garbled, not written by
    `save_arrays`); the message is one line naming the file."""


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The named arrays of an .npz file. A file that is not one (truncated, empty,
    garbled) is a `CheckpointError` naming it; pickled data is refused without being run
    (`allow_pickle=False`). A missing file is FileNotFoundError."""
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("a bare array, not an .npz archive")
        with f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "pickle" in reason:  # never loaded: unpickling can run any code
            reason = "it holds pickled Python objects, which are never loaded"
        raise CheckpointError(f"checkpoint {path} is damaged ({reason})") from e


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Inverse of `save_arrays`: (arrays, meta); a damaged file is a `CheckpointError`."""
    arrays = load_npz(path)
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        if not isinstance(meta, dict):
            raise ValueError("its metadata is not a JSON object")
    except (KeyError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} is damaged ({e})") from e
    return arrays, meta


def tree_to_arrays(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    """The leaves of a pytree as named arrays `prefix/00000`, ... (for `save_arrays`)."""
    return {f"{prefix}/{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}


def arrays_to_tree(arrays: dict[str, np.ndarray], prefix: str, like: Any) -> Any:
    """Rebuild a pytree with the structure, shapes and dtypes of `like` from named arrays."""
    names = sorted(k for k in arrays if k.startswith(prefix + "/"))
    leaves, treedef = jax.tree.flatten(like)
    if len(names) != len(leaves):
        raise ValueError(
            f"checkpoint holds {len(names)} arrays under {prefix!r}, expected {len(leaves)}: "
            "it was written by a different configuration"
        )
    out = []
    for name, want in zip(names, leaves, strict=True):
        got = arrays[name]
        if got.shape != np.shape(want):
            raise ValueError(
                f"checkpoint array {name} has shape {got.shape}, expected {np.shape(want)}: "
                "it was written by a different configuration"
            )
        out.append(got.astype(np.asarray(want).dtype))
    return jax.tree.unflatten(treedef, out)
