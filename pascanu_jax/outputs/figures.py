"""Writing figures: the shared output conventions of the scripts that draw figures
(Fig. 3, Fig. 6, gradient flow, Fig. 7, generalisation, learning curves).

Every figure is a PNG, optionally also an SVG, written atomically (to a temporary file in
the same folder, then renamed), so an interrupted run never leaves a half-written image.
"""

from __future__ import annotations

import io
import os
import pathlib
from typing import Any

from pascanu_jax.outputs.files import is_writer, write_atomic

PNG_DPI = 110


def save_figure(fig: Any, out: str | os.PathLike, stem: str, *, svg: bool = False) -> list:
    """Write `fig` (a matplotlib Figure) as out/stem.png (and out/stem.svg), atomically;
    returns the paths written (none in a process that does not write, `files.is_writer`)."""
    if not is_writer():
        return []
    written = []
    for fmt in ("png", "svg") if svg else ("png",):
        path = pathlib.Path(out) / f"{stem}.{fmt}"
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=PNG_DPI, bbox_inches="tight")
        write_atomic(path, buffer.getvalue())
        written.append(path)
    return written
