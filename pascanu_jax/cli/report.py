"""Markdown tables of committed results, for README.md and docs/REPRODUCTION.md.

    python scripts/report.py fig7 docs/results/fig7_cpu/results.json
    python scripts/report.py generalization docs/results/generalization_paper/generalization.json
    python scripts/report.py tasks docs/results/tasks
    python scripts/report.py threshold docs/results/threshold_heuristic/results.json
    python scripts/report.py remedies docs/results/optimizers/results.json

Every table in those documents is printed by this script from a committed JSON (which
carries the provenance of the run that produced it), so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import numpy as np

import pascanu_jax as pj
from pascanu_jax.experiments.remedies import NONE, remedy_cells
from pascanu_jax.experiments.sweep import success_table, wilson_interval
from pascanu_jax.experiments.threshold import FIXED, multiple_order, threshold_cells
from pascanu_jax.outputs.files import read_json


def _provenance(p: dict) -> str:
    return f"commit {p['commit'][:10]} (dirty: {p['dirty']}), jax {p['jax']}, {p['device']}"


def _cell(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{k}/{n} [{100 * lo:.0f}, {100 * hi:.0f}]"


def fig7(path: pathlib.Path) -> str:
    record = read_json(path)
    runs = record["runs"]
    table = success_table(runs)
    lengths = sorted({r["length"] for r in runs})
    inits = list(dict.fromkeys(r["init"] for r in runs))
    methods = list(dict.fromkeys(r["method"] for r in runs))
    lines = [
        "| init | method | " + " | ".join(f"L = {L}" for L in lengths) + " |",
        "| --- | --- | " + " | ".join("---" for _ in lengths) + " |",
    ]
    for init in inits:
        for method in methods:
            cells = [_cell(*table[(init, method, L)]) for L in lengths]
            lines.append(f"| {init} | {method} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("median updates of the solved runs (all inits):")
    for method in methods:
        med = []
        for L in lengths:
            u = [
                r["updates"]
                for r in runs
                if r["method"] == method and r["length"] == L and r["solved"]
            ]
            med.append(f"{np.median(u):,.0f}" if u else "-")
        cells = ", ".join(f"L = {L}: {m}" for L, m in zip(lengths, med, strict=True))
        lines.append(f"- {method}: {cells}")
    trips = {m: sum(r.get("nonfinite", 0) for r in runs if r["method"] == m) for m in methods}
    lines.append(f"- non-finite updates (guard trips for MSGD-C/CR), summed over runs: {trips}")
    p = record["provenance"]
    lines.append(f"- provenance: {_provenance(p)}")
    return "\n".join(lines)


def _tests(tests: list[dict]) -> tuple[list[int], list[int], dict]:
    seeds = sorted({t["seed"] for t in tests})
    lengths = sorted({t["length"] for t in tests})
    return seeds, lengths, {(t["seed"], t["length"]): t["error"] for t in tests}


def generalization(path: pathlib.Path) -> str:
    record = read_json(path)
    if "watch" in record:
        return watched(record)
    stages = [("at first success", record["training"], record["tests"], None)]
    for n, stage in sorted(record.get("train_on", {}).items(), key=lambda kv: int(kv[0])):
        title = f"after {int(n):,} updates more"
        stages.append((title, stage["training"], stage["tests"], stage.get("provenance")))
    out = []
    for title, training, tests, stage_provenance in stages:
        seeds, lengths, err = _tests(tests)
        out.append(f"misclassified of {record['settings']['test_size']:,} (%), {title}:")
        out.append("")
        out.append("| seed | updates | " + " | ".join(str(L) for L in lengths) + " |")
        out.append("| --- | --- | " + " | ".join("---" for _ in lengths) + " |")
        for s in seeds:
            run = next(r for r in training if r["seed"] == s)
            state = f"{run['updates']:,}" + (
                "" if run["solved"] or "after" in title else " (not solved)"
            )
            out.append(
                f"| {s} | {state} | "
                + " | ".join(f"{100 * err[(s, L)]:.2f}" for L in lengths)
                + " |"
            )
        if stage_provenance is not None:
            out.append("")
            out.append(f"provenance of this stage: {_provenance(stage_provenance)}")
        out.append("")
    p = record["provenance"]
    out.append(f"provenance: {_provenance(p)}")
    return "\n".join(out)


def _zero_up_to(tests: dict[str, float], limit: int) -> bool:
    return all(e == 0 for L, e in tests.items() if int(L) <= limit)


def watched(record: dict) -> str:
    """A watched run (`run_watch`): per seed, updates, the first model at 0 errors at every
    test length, the snapshots tested on test_size sequences, and the totals."""
    s = record["settings"]
    lengths = list(s["test_lengths"])
    longest, n = max(lengths), s["seeds"]
    out = [
        f"{record['status']}; {s['seeds']} seeds, at most {s['max_updates']:,} updates, "
        f"watched every {s['watch_every']:,} at {', '.join(map(str, s['watch_lengths']))} "
        f"on {s['watch_size']:,} sequences",
        "",
        "| seed | updates | 0 errors to "
        f"{longest} | tested snapshot | " + " | ".join(str(L) for L in lengths) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in lengths) + " |",
    ]
    general, to_1000, cost = 0, 0, record["cost"]
    for run in record["training"]:
        seed = run["seed"]
        first = record["general_at"].get(str(seed))
        general += first is not None
        mine = [z for z in record["snapshots"] if z["seed"] == seed]
        to_1000 += any(_zero_up_to(z["tests"], 1000) for z in mine)
        also_best = {z["updates"] for z in mine if z["kind"] != "best"}
        for z in [z for z in mine if z["kind"] != "best" or z["updates"] not in also_best] or [
            None
        ]:
            cells = (
                ["-"] * len(lengths)
                if z is None
                else [f"{100 * z['tests'][str(L)]:.2f}" for L in lengths]
            )
            best = (
                z is not None
                and z["kind"] != "best"
                and any(b["kind"] == "best" and b["updates"] == z["updates"] for b in mine)
            )
            name = (
                "-" if z is None else f"{z['kind']}{' (best)' if best else ''} at {z['updates']:,}"
            )
            out.append(
                f"| {seed} | {run['updates']:,} | {'-' if first is None else f'{first:,}'} | "
                f"{name} | " + " | ".join(cells) + " |"
            )
    out += [
        "",
        f"- seeds with a model at 0 errors at every test length to {longest}: {_cell(general, n)}",
        f"- seeds with a tested snapshot at 0 errors at every test length to 1000: "
        f"{_cell(to_1000, n)}",
        f"- wall time {cost['wall_s']:,.0f} s (watching {cost['watch_s']:,.0f} s, "
        f"{100 * cost['watch_fraction']:.1f}% of training)",
    ]
    out += [f"- segment: {_segment(seg)}" for seg in record["segments"]]
    return "\n".join(out)


def _segment(seg: dict) -> str:
    """One stretch of a campaign's training: its updates, wall time and provenance."""
    resumed = seg.get("resumed_from_device")
    return (
        f"updates {seg['from_updates']:,} to {seg['to_updates']:,}, {seg['wall_s']:,.0f} s, "
        f"commit {str(seg['commit'])[:10]} (dirty: {seg['dirty']}), jax {seg['jax']}, "
        f"{seg['device']}" + (f" (resumed from {resumed})" if resumed else "")
    )


def tasks(folder: pathlib.Path) -> str:
    """One row per task folder; "best constant" is what a model that ignores its input
    misclassifies (`pj.constant_baseline`, regression tasks only)."""
    lines = [
        "| task | solved of 5 | updates of the solved runs "
        "| misclassified (%) per test length, per seed | best constant |",
        "| --- | --- | --- | --- | --- |",
    ]
    trained = []
    for path in sorted(folder.glob("*/generalization.json")):
        record = read_json(path)
        settings = record["settings"]
        lo, hi = settings["train_lengths"]
        trained.append(
            f"- {settings['task']}: {record.get('status', 'complete')}, trained on "
            f"[{lo}, {hi}), at most {settings['max_updates']:,} updates; "
            + "; ".join(_segment(seg) for seg in record.get("segments", []))
        )
        solved = [r for r in record["training"] if r["solved"]]
        seeds, lengths, err = _tests(record["tests"])
        per_length = "; ".join(
            f"{L}: " + " / ".join(f"{100 * err[(s, L)]:.1f}" for s in seeds) for L in lengths
        )
        updates = ", ".join(f"{r['updates']:,}" for r in solved) or "-"
        task = pj.get_task(record["settings"]["task"])
        baseline = "-"
        if task.pads:  # addition, multiplication
            c, error = pj.constant_baseline(task, jax.random.key(0))
            baseline = f"{100 * error:.1f} (answer {c:.2f})"
        lines.append(
            f"| {task.name} | {_cell(len(solved), len(record['training']))} | "
            f"{updates} | {per_length} | {baseline} |"
        )
    return "\n".join([*lines, "", *trained])


def threshold(path: pathlib.Path) -> str:
    """§3.2's heuristic from a sweep's results.json: per (init, method, length), solved of
    runs at the fixed threshold and at each multiple of the measured mean norm (and, with
    several inits, the same pooled over them), then the median updates to success and the
    median measured norm."""
    record = read_json(path)
    cells = threshold_cells(record["runs"])
    if not cells:
        raise ValueError("no method clips at a multiple of the mean norm (METHOD:clip=Mxmean)")
    if len({init for init, _, _ in cells}) > 1:
        cells |= threshold_cells(record["runs"], pool=True)
    keys = sorted({m for group in cells.values() for m in group}, key=multiple_order)
    name = lambda m: "fixed 1" if m is FIXED else f"{m:g}x mean"  # noqa: E731
    lines = [
        "| init | method | length | mean norm | " + " | ".join(map(name, keys)) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in keys) + " |",
    ]
    updates = []
    for (init, base, length), group in cells.items():
        norms = [n for cell in group.values() for n in cell.norms]
        norm = f"{np.median(norms):.3g}" if norms else "-"
        row = [_cell(group[m].solved, group[m].runs) if m in group else "-" for m in keys]
        lines.append(f"| {init} | {base} | {length} | {norm} | " + " | ".join(row) + " |")
        med = [
            f"{np.median(group[m].updates):,.0f}" if m in group and group[m].updates else "-"
            for m in keys
        ]
        updates.append(f"| {init} | {base} | {length} | " + " | ".join(med) + " |")
    lines += [
        "",
        "median updates to success of the solved runs:",
        "",
        "| init | method | length | " + " | ".join(map(name, keys)) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in keys) + " |",
        *updates,
        "",
        f"- mean norm: the median over runs of the mean gradient norm measured before "
        f"clipping starts; provenance: {_provenance(record['provenance'])}",
    ]
    return "\n".join(lines)


def remedies(path: pathlib.Path) -> str:
    """The paper's remedies under each optimizer from a sweep's results.json: per
    (length, optimizer setting), solved of runs with each remedy pooled over the inits
    (each init's solved in parentheses), then the median updates to success."""
    record = read_json(path)
    cells = remedy_cells(record["runs"])
    names = list(dict.fromkeys(r for group in cells.values() for r in group))
    names.sort(key=lambda r: r != NONE)
    if len(names) < 2:
        raise ValueError("every method has the same remedy; nothing to compare")
    inits = list(dict.fromkeys(r["init"] for r in record["runs"]))
    head = "| length | optimizer | " + " | ".join(names) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in names) + " |"
    lines, updates = [head, rule], []
    for (setting, length), group in cells.items():
        row = []
        for name in names:
            cell = group.get(name)
            per_init = f" ({', '.join(str(k) for _, k, _ in cell.inits)})" if cell else ""
            row.append(_cell(cell.solved, cell.runs) + per_init if cell else "-")
        lines.append(f"| {length} | {setting} | " + " | ".join(row) + " |")
        med = [
            f"{np.median(group[n].updates):,.0f}" if n in group and group[n].updates else "-"
            for n in names
        ]
        updates.append(f"| {length} | {setting} | " + " | ".join(med) + " |")
    lines += [
        "",
        "median updates to success of the solved runs:",
        "",
        head,
        rule,
        *updates,
        "",
        f"- in parentheses: solved per init ({', '.join(inits)}); "
        f"provenance: {_provenance(record['provenance'])}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    kinds = {
        "fig7": fig7,
        "generalization": generalization,
        "tasks": tasks,
        "threshold": threshold,
        "remedies": remedies,
    }
    p.add_argument("kind", choices=list(kinds))
    p.add_argument("path", type=pathlib.Path)
    args = p.parse_args(argv)
    if not args.path.exists():
        p.error(f"{args.path} does not exist")
    try:
        print(kinds[args.kind](args.path))
    except (ValueError, KeyError) as e:
        sys.exit(f"error: {args.path} is not a {args.kind} result ({e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
