"""Writing figures: the shared output conventions of the scripts that draw the paper's
analysis figures (`scripts/bifurcation.py`, `scripts/error_surface.py`,
`scripts/gradient_flow.py`).

Every figure is a PNG, optionally also an SVG, written atomically (to a temporary file in
the same folder, then renamed), so an interrupted run never leaves a half-written image.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
from typing import Any

PNG_DPI = 110


def add_output_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """--out DIR (created if missing) and --svg."""
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path(default_out), help="output folder"
    )
    parser.add_argument("--svg", action="store_true", help="also write an SVG of each figure")


def save_figure(fig: Any, out: pathlib.Path, stem: str, *, svg: bool = False) -> list[pathlib.Path]:
    """Write `fig` (a matplotlib Figure) as out/stem.png (and out/stem.svg); returns the
    paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in ("png", "svg") if svg else ("png",):
        path = out / f"{stem}.{fmt}"
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{stem}.", suffix=f".{fmt}")
        try:
            with os.fdopen(fd, "wb") as f:
                fig.savefig(f, format=fmt, dpi=PNG_DPI, bbox_inches="tight")
            os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a figure is for everyone
            os.replace(tmp, path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
        written.append(path)
    return written
