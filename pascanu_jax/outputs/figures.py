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


def finish_figure(
    fig: Any,
    ax: Any,
    path: str | os.PathLike,
    title: str,
    *,
    ncol: int,
    rows: int,
    note: str = "",
    legend_height: float = 0.07,
    row_inches: float = 0.25,
) -> list:
    """Give `fig` one legend under its panels (the labels of `ax`, `ncol` columns in
    `rows` rows: the first takes `legend_height` of the figure, each further one
    `row_inches`), `title` (and `note` below it) on top, and write it to `path` (a .png
    name) with `save_figure`."""
    fig.legend(
        *ax.get_legend_handles_labels(), loc="lower center", ncol=ncol, fontsize=9, frameon=False
    )
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=10)
    # In inches past the first row: a fraction per row would leave a tall figure's many-row
    # legend a gap as high as the rows themselves.
    bottom = legend_height + (rows - 1) * row_inches / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, 1))
    path = pathlib.Path(path)
    return save_figure(fig, path.parent, path.stem)
