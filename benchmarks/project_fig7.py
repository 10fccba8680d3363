"""Project the wall time of the paper-scale Fig. 7 grid from a measured sweep slice.

    python benchmarks/project_fig7.py SWEEP_DIR [--json OUT.json]

SWEEP_DIR is the output folder of `scripts/sweep_lengths.py` (its summary.json and
results.json), e.g. of `--preset paper --lengths 50 --max-updates 20000`. For each
measured length L, the slice's seconds per update of the whole program (all runs of the
length train as one compiled program, and it steps until its last run stops) are

    s(L) = wall_s(L) / (the most updates any run of L made)

with wall_s the training time after the compile, the screening evaluations included. The
time of a step scales with the sequence length (every update runs L steps forward and L
back), so the projection uses the measured seconds per update and step,
c = mean over measured L of s(L) / L, and

    projected seconds = sum over the grid's lengths L' of (c L' max_updates + compile_s)

with compile_s the mean measured compile time. That is an upper bound for a sweep in which
runs solve early only when every run of a length does; it assumes the per-step cost does not
fall with L (on an accelerator, where a step is latency-bound, it is about constant per
step). Default grid: the paper preset (lengths 50, 100, 150, 200, 250; 5,000,000 updates).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

PAPER_LENGTHS = (50, 100, 150, 200, 250)
PAPER_UPDATES = 5_000_000


def project(
    summary: dict,
    runs: list[dict],
    lengths: tuple[int, ...] = PAPER_LENGTHS,
    max_updates: int = PAPER_UPDATES,
) -> dict:
    """The projection (module docstring) from a sweep's summary.json (per length:
    compile_s, wall_s) and results.json's "runs" (per run: length, updates)."""
    if not summary:
        raise ValueError("the sweep's summary has no finished length")
    measured = {}
    for key, t in summary.items():
        L = int(key)
        updates = max((r["updates"] for r in runs if r["length"] == L), default=0)
        if updates < 1:
            raise ValueError(f"no run of length {L} made an update")
        measured[L] = {
            "updates": updates,
            "wall_s": t["wall_s"],
            "compile_s": t["compile_s"],
            "seconds_per_update": t["wall_s"] / updates,
            "seconds_per_update_step": t["wall_s"] / updates / L,
        }
    per_step = sum(m["seconds_per_update_step"] for m in measured.values()) / len(measured)
    compile_s = sum(m["compile_s"] for m in measured.values()) / len(measured)
    per_length = {L: per_step * L * max_updates + compile_s for L in lengths}
    total = sum(per_length.values())
    return {
        "measured": {str(L): m for L, m in sorted(measured.items())},
        "seconds_per_update_step": per_step,
        "grid": {"lengths": list(lengths), "max_updates": max_updates},
        "projected_seconds_per_length": {str(L): s for L, s in per_length.items()},
        "projected_seconds": total,
        "projected_hours": total / 3600,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dir", help="output folder of scripts/sweep_lengths.py")
    p.add_argument(
        "--lengths",
        default=",".join(map(str, PAPER_LENGTHS)),
        help="the grid's lengths (default: the paper's)",
    )
    p.add_argument("--max-updates", type=int, default=PAPER_UPDATES, help="per run (5,000,000)")
    p.add_argument("--json", help="write the projection here")
    args = p.parse_args(argv)
    try:
        lengths = tuple(int(x) for x in args.lengths.split(",") if x.strip())
    except ValueError:
        p.error(f"--lengths: comma-separated integers, got {args.lengths!r}")
    if not lengths or min(lengths) < 1:
        p.error(f"--lengths: positive integers, got {args.lengths!r}")
    if args.max_updates < 1:
        p.error(f"--max-updates must be >= 1, got {args.max_updates}")
    paths = [os.path.join(args.sweep_dir, f) for f in ("summary.json", "results.json")]
    missing = [f for f in paths if not os.path.exists(f)]
    if missing:
        p.error(f"{missing[0]} not found: is {args.sweep_dir} a finished sweep's folder?")
    with open(paths[0]) as f:
        summary = json.load(f)
    with open(paths[1]) as f:
        runs = json.load(f)["runs"]
    try:
        out = project(summary, runs, lengths, args.max_updates)
    except ValueError as e:
        p.error(str(e))
    provenance = {L: t.get("provenance", {}) for L, t in summary.items()}
    out["sweep_provenance"] = provenance
    out["sweep_dir"] = args.sweep_dir
    for L, m in out["measured"].items():
        print(
            f"measured L = {L}: {m['updates']} updates in {m['wall_s']:.1f} s "
            f"({1e3 * m['seconds_per_update']:.3f} ms per update of all runs, "
            f"compile {m['compile_s']:.1f} s)"
        )
    for L, s in out["projected_seconds_per_length"].items():
        print(f"projected L = {L}: {s / 3600:.1f} h")
    print(
        f"projected grid ({len(lengths)} lengths x {args.max_updates:,} updates): "
        f"{out['projected_hours']:.1f} h"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
