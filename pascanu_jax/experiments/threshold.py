"""§3.2's threshold heuristic read from a sweep: success against the multiple of the mean norm.

"One good heuristic for setting this threshold is to look at statistics on the average
norm over a sufficiently large number of updates. In our experience values from half to
ten times this average can still yield convergence, though convergence speed can be
affected" (Pascanu, Mikolov & Bengio, ICML 2013, §3.2). A sweep puts that to the test
when its methods clip at M times the measured mean norm (`MSGD-C:clip=Mxmean`,
`pj.clip_by_mean_norm`) beside the paper's fixed threshold (`MSGD-C`), for example

    python scripts/sweep_lengths.py --preset cpu --lengths 50,100 \
        --inits basic_tanh,smart_tanh --methods MSGD-C,MSGD-C:clip=0.5xmean,MSGD-C:clip=2xmean

`threshold_cells` groups its result rows by (init, base method, length) and multiple;
`python scripts/report.py threshold <results.json>` prints them, and the sweep draws them
(`plot_threshold`, `threshold.png`) whenever a method clips at a multiple of the mean norm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from pascanu_jax.methods import METHODS, parse_method
from pascanu_jax.outputs.figures import finish_figure

#: The key of a group's run at the paper's fixed threshold (the base method's own).
FIXED = None


@dataclasses.dataclass(frozen=True)
class Cell:
    """The runs of one (init, base method, length) at one threshold rule.

    Attributes:
      solved: runs that reached the success criterion.
      runs: runs.
      updates: updates to success of the solved runs, ascending.
      norms: each run's mean norm measured before clipping started, ascending (none at
        the fixed threshold, which measures nothing).
    """

    solved: int
    runs: int
    updates: tuple[int, ...]
    norms: tuple[float, ...]

    @property
    def measured_norm(self) -> float | None:
        """Median over the runs of the measured mean norm (None where nothing was measured)."""
        return float(np.median(self.norms)) if self.norms else None


def multiple_order(multiple: float | None) -> float:
    """Sort key of a threshold rule: the fixed threshold first, then the multiples."""
    return -1.0 if multiple is FIXED else multiple


def threshold_rule(spec: str) -> tuple[str, float | None] | None:
    """(base method, multiple) of a method spec: the multiple of the mean norm it clips at,
    `FIXED` (None) for one of the paper's methods as it is; None for any other method
    (another optimizer or clipping rule, which this reading leaves out).

    Examples:
      >>> from pascanu_jax.experiments.threshold import threshold_rule
      >>> threshold_rule("MSGD-CR:clip=0.5xmean"), threshold_rule("MSGD-C")
      (('MSGD-CR', 0.5), ('MSGD-C', None))
      >>> threshold_rule("adam:lr=1e-3") is None
      True
    """
    if spec in METHODS:
        return spec, FIXED
    method = parse_method(spec)
    base = spec.split(":", 1)[0]
    if method.clip != "mean_norm" or base not in METHODS:
        return None
    return base, float(method.threshold)


#: The init of a group pooled over every initialisation (`threshold_cells(pool=True)`).
ALL_INITS = "all inits"


def threshold_cells(
    results: Sequence[dict], *, pool: bool = False
) -> dict[tuple[str, str, int], dict[float | None, Cell]]:
    """(init, base method, length) -> {multiple (or FIXED): Cell}, for every group with at
    least one run at a multiple of the mean norm. Rows are a sweep's `results.json` runs;
    with `pool`, the runs of every initialisation form one group, its init `ALL_INITS`.

    Examples:
      >>> from pascanu_jax.experiments.threshold import threshold_cells
      >>> rows = [{"init": "basic_tanh", "method": m, "length": 50, "solved": s,
      ...          "updates": u, "measured_norm": n}
      ...         for m, s, u, n in [("MSGD-C", True, 900, None),
      ...                            ("MSGD-C:clip=2xmean", True, 700, 0.8),
      ...                            ("MSGD-C:clip=2xmean", False, 3000, 0.6)]]
      >>> cells = threshold_cells(rows)[("basic_tanh", "MSGD-C", 50)]
      >>> cells[None].solved, cells[2.0], cells[2.0].measured_norm
      (1, Cell(solved=1, runs=2, updates=(700,), norms=(0.6, 0.8)), 0.7)
      >>> list(threshold_cells(rows, pool=True))
      [('all inits', 'MSGD-C', 50)]
    """
    grouped: dict[tuple[str, str, int], dict[float | None, list[dict]]] = {}
    for row in results:
        rule = threshold_rule(row["method"])
        if rule is None:
            continue
        base, multiple = rule
        key = (ALL_INITS if pool else row["init"], base, int(row["length"]))
        grouped.setdefault(key, {}).setdefault(multiple, []).append(row)
    out = {}
    for key, by_multiple in grouped.items():
        if all(m is FIXED for m in by_multiple):
            continue
        cells = {}
        for multiple in sorted(by_multiple, key=multiple_order):
            rows = by_multiple[multiple]
            norms = [r["measured_norm"] for r in rows if r.get("measured_norm") is not None]
            cells[multiple] = Cell(
                solved=sum(bool(r["solved"]) for r in rows),
                runs=len(rows),
                updates=tuple(sorted(int(r["updates"]) for r in rows if r["solved"])),
                norms=tuple(sorted(float(n) for n in norms)),
            )
        out[key] = cells
    return out


def plot_threshold(results: Sequence[dict], path: str, note: str = "") -> None:
    """Success rate against the multiple of the measured mean norm (log axis): a panel per
    length, a line per (init, base method) with 95% Wilson intervals, the paper's fixed
    threshold as a dashed line of the same colour, §3.2's "half to ten times" shaded.

    Examples:
      >>> # not run: draws a finished sweep's rows; the sweep calls it
      >>> plot_threshold(record["runs"], "threshold.png")  # doctest: +SKIP
    """
    from matplotlib.figure import Figure

    from pascanu_jax.experiments.sweep import wilson_interval

    cells = threshold_cells(results)
    lengths = sorted({length for _, _, length in cells})
    lines = list(dict.fromkeys((init, base) for init, base, _ in cells))
    fig = Figure(figsize=(4.4 * len(lengths), 3.8))
    axes = fig.subplots(1, len(lengths), sharey=True, squeeze=False)[0]
    for ax, length in zip(axes, lengths, strict=True):
        ax.axvspan(0.5, 10, color="0.93", zorder=0)
        for j, (init, base) in enumerate(lines):
            group = cells.get((init, base, length))
            if group is None:
                continue
            colour = f"C{j}"
            multiples = [m for m in group if m is not FIXED]
            rate = np.array([100 * group[m].solved / group[m].runs for m in multiples])
            ci = 100 * np.array(
                [wilson_interval(group[m].solved, group[m].runs) for m in multiples]
            )
            ax.errorbar(
                multiples,
                rate,
                yerr=np.stack([rate - ci[:, 0], ci[:, 1] - rate]),
                marker="o",
                ms=4,
                capsize=2,
                elinewidth=0.8,
                color=colour,
                label=f"{init}, {base}",
            )
            if FIXED in group:
                fixed = group[FIXED]
                ax.axhline(100 * fixed.solved / fixed.runs, color=colour, ls="--", lw=0.9)
        ax.set_xscale("log")
        ax.set_title(f"length {length}")
        ax.set_xlabel("threshold / measured mean norm")
        ax.set_ylim(-3, 105)
    axes[0].set_ylabel("success rate (%)")
    task = results[0]["task"] if results else ""
    title = (
        f"{task}: §3.2's threshold heuristic (Pascanu et al. 2013); dashed: the fixed "
        "threshold 1; shaded: half to ten times"
    )
    finish_figure(
        fig,
        axes[0],
        path,
        title,
        ncol=min(len(lines), 4),
        rows=-(-len(lines) // 4),
        note=note,
        legend_height=0.08,
    )
