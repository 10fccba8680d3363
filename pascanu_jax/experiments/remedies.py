"""The paper's remedies under other optimizers, read from a sweep: success per optimizer
setting and remedy.

The paper trains with plain SGD and asks what norm clipping (§3.2) and the regulariser
Omega (§3.3) add to it. A sweep asks the same of any optimizer when its methods name one
setting with and without each remedy, for example

    python scripts/sweep_lengths.py --preset cpu --lengths 50,100,200 \
        --inits basic_tanh,smart_tanh \
        --methods adam:lr=1e-3,adam:lr=1e-3+clip=1,adam:lr=1e-3+alpha=4,adam:lr=1e-3+clip=1+alpha=4

`remedy_of` splits a method spec into its optimizer setting (`adam:lr=1e-3`) and its
remedy (`clip=1+alpha=4`, or `none`); the paper's methods are the setting `MSGD` with the
remedies `none` (MSGD), `clip=1` (MSGD-C) and `clip=1+alpha=4` (MSGD-CR). `remedy_cells`
groups a sweep's result rows by (setting, length) and remedy, pooled over the
initialisations; `python scripts/report.py remedies <results.json>` prints them, and the
sweep draws them (`plot_remedies`, `remedies.png`) whenever an optimizer setting beyond
the paper's appears with two remedies or more (`compares_remedies`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from pascanu_jax.methods import METHODS, parse_method
from pascanu_jax.outputs.figures import finish_figure

#: The keys of a method spec that are a remedy (clipping, the regulariser and the guard)
#: rather than the optimizer's, in the order a remedy names them.
REMEDY_KEYS = ("clip", "clipvalue", "agc", "measure", "alpha", "guard")
#: The remedy of a method with neither clipping nor the regulariser.
NONE = "none"
#: The optimizer setting of the paper's three methods (SGD at the engine's learning rate).
PAPER_SETTING = "MSGD"


def remedy_of(spec: str) -> tuple[str, str]:
    """(optimizer setting, remedy) of a method spec (`parse_method`; ValueError if it is
    not one): the setting is the optimizer with its hyperparameters as the spec writes
    them, the remedy its clipping, regulariser and guard parts in `REMEDY_KEYS` order
    (`NONE` without any).

    Examples:
      >>> from pascanu_jax.experiments.remedies import remedy_of
      >>> remedy_of("adam:lr=1e-3+alpha=4+clip=1")
      ('adam:lr=1e-3', 'clip=1+alpha=4')
      >>> remedy_of("rmsprop:lr=1e-2"), remedy_of("MSGD-CR"), remedy_of("MSGD-C:clip=none")
      (('rmsprop:lr=1e-2', 'none'), ('MSGD', 'clip=1+alpha=4'), ('MSGD', 'none'))
    """
    parse_method(spec)  # a spec that is not a method is refused here, in one line
    base, _, rest = spec.strip().partition(":")
    remedy: dict[str, str] = {}
    if base in METHODS:
        paper = METHODS[base]
        if math.isfinite(paper.threshold):
            remedy["clip"] = f"{paper.threshold:g}"
        if paper.alpha:
            remedy["alpha"] = f"{paper.alpha:g}"
        base = PAPER_SETTING
    setting = []
    for part in rest.split("+") if rest else []:
        key, _, text = (s.strip() for s in part.partition("="))
        if key in REMEDY_KEYS:
            remedy[key] = text
        else:
            setting.append(f"{key}={text}")
    if remedy.get("clip") == "none":
        del remedy["clip"]
    name = "+".join(f"{k}={remedy[k]}" for k in REMEDY_KEYS if k in remedy)
    return base + (":" + "+".join(setting) if setting else ""), name or NONE


@dataclasses.dataclass(frozen=True)
class Cell:
    """The runs of one (optimizer setting, length) with one remedy, over every init.

    Attributes:
      solved: runs that reached the success criterion.
      runs: runs.
      updates: updates to success of the solved runs, ascending.
      inits: (init, solved, runs) per initialisation, in the order the rows name them.
    """

    solved: int
    runs: int
    updates: tuple[int, ...]
    inits: tuple[tuple[str, int, int], ...]


def remedy_cells(results: Sequence[dict]) -> dict[tuple[str, int], dict[str, Cell]]:
    """(optimizer setting, length) -> {remedy: Cell}, the remedies in the order `NONE`
    first, then as the rows name them. Rows are a sweep's `results.json` runs.

    Examples:
      >>> from pascanu_jax.experiments.remedies import remedy_cells
      >>> rows = [{"init": i, "method": m, "length": 50, "solved": s, "updates": u}
      ...         for i, m, s, u in [("basic_tanh", "adam:lr=1e-3+clip=1", True, 900),
      ...                            ("smart_tanh", "adam:lr=1e-3+clip=1", False, 3000),
      ...                            ("basic_tanh", "adam:lr=1e-3", False, 3000)]]
      >>> cells = remedy_cells(rows)[("adam:lr=1e-3", 50)]
      >>> list(cells)
      ['none', 'clip=1']
      >>> cells["clip=1"]
      Cell(solved=1, runs=2, updates=(900,), inits=(('basic_tanh', 1, 1), ('smart_tanh', 0, 1)))
    """
    grouped: dict[tuple[str, int], dict[str, list[dict]]] = {}
    for row in results:
        setting, remedy = remedy_of(row["method"])
        grouped.setdefault((setting, int(row["length"])), {}).setdefault(remedy, []).append(row)
    out = {}
    for key in sorted(grouped, key=lambda k: k[1]):
        by_remedy = grouped[key]
        cells = {}
        for remedy in sorted(by_remedy, key=lambda r: r != NONE):
            rows = by_remedy[remedy]
            inits = list(dict.fromkeys(r["init"] for r in rows))
            cells[remedy] = Cell(
                solved=sum(bool(r["solved"]) for r in rows),
                runs=len(rows),
                updates=tuple(sorted(int(r["updates"]) for r in rows if r["solved"])),
                inits=tuple(
                    (
                        init,
                        sum(bool(r["solved"]) for r in rows if r["init"] == init),
                        sum(r["init"] == init for r in rows),
                    )
                    for init in inits
                ),
            )
        out[key] = cells
    return out


def compares_remedies(results: Sequence[dict]) -> bool:
    """Whether some optimizer setting beyond the paper's appears with two remedies or more
    (what makes the sweep draw `remedies.png`).

    Examples:
      >>> from pascanu_jax.experiments.remedies import compares_remedies
      >>> rows = lambda *methods: [{"init": "basic_tanh", "method": m, "length": 50,
      ...                           "solved": False, "updates": 100} for m in methods]
      >>> compares_remedies(rows("adam:lr=1e-3", "adam:lr=1e-3+clip=1"))
      True
      >>> compares_remedies(rows("MSGD", "MSGD-CR", "adam:lr=1e-3"))  # the paper's sweep
      False
    """
    return any(
        setting != PAPER_SETTING and len(cells) > 1
        for (setting, _), cells in remedy_cells(results).items()
    )


def _colours(remedies: Sequence[str]) -> dict[str, str]:
    # The first remedy of each kind takes the colour of its paper method in Fig. 7 (none:
    # grey, clipping: MSGD-C's orange, both: MSGD-CR's green); Omega alone, purple.
    kinds = {(False, False): "0.6", (True, False): "C1", (False, True): "C4", (True, True): "C2"}
    others = iter(f"C{i}" for i in (3, 5, 6, 7, 8, 9) * 4)
    out = {}
    for remedy in remedies:
        parts = remedy.split("+")
        kind = (any(p.split("=")[0] in REMEDY_KEYS[:3] for p in parts), "alpha" in remedy)
        out[remedy] = kinds.pop(kind, None) or next(others)
    return out


def plot_remedies(results: Sequence[dict], path: str, note: str = "") -> None:
    """Success rate per optimizer setting and remedy: a panel per length, a group of bars
    per setting (pooled over the initialisations, 95% Wilson intervals), a bar per remedy,
    each initialisation's own rate a marker on its bar.

    Examples:
      >>> # not run: draws a finished sweep's rows; the sweep calls it
      >>> plot_remedies(record["runs"], "remedies.png")  # doctest: +SKIP
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from pascanu_jax.experiments.sweep import wilson_interval

    cells = remedy_cells(results)
    lengths = sorted({length for _, length in cells})
    settings = list(dict.fromkeys(setting for setting, _ in cells))
    remedies = list(
        dict.fromkeys(r for s in settings for L in lengths for r in cells.get((s, L), {}))
    )
    remedies.sort(key=lambda r: r != NONE)
    inits = list(dict.fromkeys(r["init"] for r in results))
    markers = dict(zip(inits, "osD^v<>p*h", strict=False))
    colours = _colours(remedies)
    width = 0.8 / len(remedies)
    fig = Figure(figsize=(max(4.4, 1.2 * len(settings)) * len(lengths), 4.3))
    axes = fig.subplots(1, len(lengths), sharey=True, squeeze=False)[0]
    x = np.arange(len(settings))
    for ax, length in zip(axes, lengths, strict=True):
        for j, remedy in enumerate(remedies):
            at = x + (j - (len(remedies) - 1) / 2) * width
            group = [cells.get((s, length), {}).get(remedy) for s in settings]
            rate = np.array([100 * c.solved / c.runs if c else np.nan for c in group])
            ci = 100 * np.array([wilson_interval(c.solved, c.runs) if c else (0, 0) for c in group])
            ax.bar(
                at,
                np.nan_to_num(rate),
                width,
                yerr=np.nan_to_num(np.stack([rate - ci[:, 0], ci[:, 1] - rate])),
                error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.3"},
                color=colours[remedy],
                label=remedy,
            )
            for xi, cell in zip(at, group, strict=True):
                for init, solved, runs in cell.inits if cell else ():
                    ax.plot(
                        xi,
                        100 * solved / runs,
                        markers[init],
                        ms=3.5,
                        mfc="white",
                        mec="k",
                        mew=0.7,
                    )
        ax.set_xticks(x, settings, rotation=25, ha="right", fontsize=8)
        ax.set_title(f"length {length}")
        ax.set_ylim(0, 105)
    axes[0].set_ylabel("success rate (%)")
    for init in inits:  # legend entries for the markers, which carry no label of their own
        axes[0].add_line(
            Line2D([], [], ls="", marker=markers[init], mfc="white", mec="k", label=init)
        )
    task = results[0]["task"] if results else ""
    title = (
        f"{task}: the paper's remedies under each optimizer; bars: all inits pooled, "
        "95% Wilson intervals; markers: each init"
    )
    labels = len(remedies) + len(inits)
    finish_figure(
        fig,
        axes[0],
        path,
        title,
        ncol=min(labels, 6),
        rows=-(-labels // 6),
        note=note,
        legend_height=0.1,
    )
