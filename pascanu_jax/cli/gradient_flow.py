"""Gradient flow through time (Pascanu et al., 2013, §2, §3.3): how |dE/dh_k| falls (or not)
from the last step back to the first, before and after training with MSGD and MSGD-CR.

Default mode: train the same network on one task with each method (same initial weights,
same batches, all methods in one engine program, until solved or --updates), then draw,
on one fixed batch, log10 |dE/dh_k| against k and the per-step ratio
|d_k dh_k/dh_{k-1}| / |d_k| that Omega pushes towards 1 (`pascanu_jax.analysis.gradient_flow`),
at the start and the end of training, and the training loss.

--sweep DIR: instead, draw the training diagnostics of a sweep (gradient norm, clipped
fraction, Omega, spectral radius of W_rec against updates) from DIR/diagnostics.csv.

    python scripts/gradient_flow.py --out docs/figures
    python scripts/gradient_flow.py --sweep runs/sweep --out runs/sweep
"""

from __future__ import annotations

import argparse
import csv
import functools
import pathlib
import warnings

import jax
import numpy as np
from matplotlib.figure import Figure

import pascanu_jax as pj
from pascanu_jax.analysis.gradient_flow import measure_gradient_flow
from pascanu_jax.cli.common import add_output_arguments, log, progress_bar
from pascanu_jax.experiments.engine import EngineConfig, RunSpec
from pascanu_jax.experiments.runner import EngineResult, initial_params, train
from pascanu_jax.experiments.sweep import DIAGNOSTIC_FIELDS
from pascanu_jax.outputs.figures import save_figure

DIAGNOSTICS_COLUMNS = DIAGNOSTIC_FIELDS  # the header sweep_lengths.py writes
GROUP_COLUMNS = ("task", "init", "method", "length")
SELECTABLE = ("task", "init", "method", "seed", "length")
PANELS = (
    ("grad_norm", "gradient norm (pre-clip, mean)", "log"),
    ("clipped_fraction", "fraction of updates clipped", "linear"),
    ("omega", r"$\Omega$ (mean)", "log"),
    ("spectral_radius", r"spectral radius of $W_{rec}$", "linear"),
)
METHOD_STYLES = {"MSGD": "-", "MSGD-C": "--", "MSGD-CR": ":"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="temporal_order", choices=pj.TASK_NAMES)
    parser.add_argument("--init", default="basic_tanh", choices=tuple(pj.SCHEMES))
    parser.add_argument("--methods", nargs="+", default=["MSGD", "MSGD-CR"], choices=pj.METHODS)
    parser.add_argument("--length", type=int, default=50, help="sequence length L")
    parser.add_argument("--updates", type=int, default=3000, help="training updates (>= 1)")
    parser.add_argument("--hidden", type=int, default=50, help="hidden units (>= 1)")
    parser.add_argument("--batch", type=int, default=20, help="sequences per update (>= 1)")
    parser.add_argument("--eval-batch", type=int, default=200, help="sequences for the flow")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sweep",
        type=pathlib.Path,
        metavar="DIR",
        help="draw DIR/diagnostics.csv of a sweep instead of training",
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"with --sweep: keep rows with KEY in {SELECTABLE} equal to VALUE",
    )
    add_output_arguments(parser, "docs/figures")
    args = parser.parse_args(argv)
    for name in ("updates", "hidden", "batch", "eval_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    task = pj.get_task(args.task)
    if args.length < task.min_length:
        parser.error(f"--length must be >= {task.min_length} for {args.task} (got {args.length})")
    if args.select and args.sweep is None:
        parser.error("--select filters the rows of --sweep DIR; give --sweep too")
    args.selection = {}
    for item in args.select:
        key, sep, value = item.partition("=")
        if not sep or key not in SELECTABLE:
            parser.error(f"--select takes KEY=VALUE with KEY one of {SELECTABLE}; got {item!r}")
        args.selection[key] = value
    if args.sweep is not None:
        try:
            args.rows = read_diagnostics(args.sweep / "diagnostics.csv", args.selection)
        except ValueError as e:
            parser.error(str(e))
    return args


def train_methods(args, task, progress) -> tuple[dict, EngineResult]:
    """Every method from the same initial weights on the same batches, in one engine program,
    until solved or --updates; returns (initial params, engine result). progress(done,
    total) after every compiled call."""
    n = args.updates
    every = max(d for d in range(1, max(1, n // 50) + 1) if n % d == 0)  # ~50 loss points
    cfg = EngineConfig(
        task,
        (args.length, args.length + 1),
        n_hidden=args.hidden,
        batch=args.batch,
        max_updates=n,
        eval_every=every,
        periods_per_call=max(1, 250 // every),
    )
    runs = [RunSpec(args.init, m, args.seed) for m in args.methods]
    result = train(cfg, runs, progress=progress, measure_eval=False)
    for run in result.runs:
        state = "solved" if run["solved"] else "not solved"
        log(f"trained {run['method']}: {state} after {run['updates']} updates")
    return initial_params(cfg, runs[0]), result


def log10_contributions(flow: pj.GradientFlow) -> np.ndarray:
    """(T, B) log10 |dE/dh_k|, NaN where it is 0 (padding after a sequence's end, or float32
    underflow of a vanishing gradient)."""
    norms = np.asarray(flow.contributions, np.float64)
    with np.errstate(divide="ignore"):
        return np.where(norms > 0, np.log10(norms), np.nan)


def flow_figure(args):
    task, activation = pj.get_task(args.task), pj.SCHEMES[args.init].activation
    eval_key = jax.random.fold_in(jax.random.PRNGKey(args.seed), 7)  # unseen in training
    inputs, targets = task.sample(eval_key, args.eval_batch, args.length)
    flow = functools.partial(
        measure_gradient_flow, inputs=inputs, targets=targets, task=task, activation=activation
    )
    with progress_bar() as new_bar:
        params0, result = train_methods(args, task, new_bar("training " + ", ".join(args.methods)))
    curves = [("start (all methods)", "0.4", "-", flow(params0), None)]
    for i, (run, params) in enumerate(zip(result.runs, result.params, strict=True)):
        losses = np.array(
            [(d["updates"], d["loss"]) for d in result.diagnostics if d["method"] == run["method"]]
        )
        done = "solved" if run["solved"] else "not solved"
        label = f"{run['method']}, after {run['updates']} updates ({done})"
        style = METHOD_STYLES.get(run["method"], "-.")
        curves.append((label, f"C{i}", style, flow(params), losses))

    fig = Figure(figsize=(16, 4.8), layout="constrained")
    ax_flow, ax_ratio, ax_loss = fig.subplots(1, 3)
    k = np.arange(1, inputs.shape[0] + 1)
    with warnings.catch_warnings():  # steps where every |d_k| is 0 (padding, underflow)
        warnings.simplefilter("ignore", RuntimeWarning)
        for label, color, style, f, losses in curves:
            logs = log10_contributions(f)
            ax_flow.plot(k, np.nanmean(logs, 1), style, color=color, label=label)
            lo, hi = np.nanpercentile(logs, [10, 90], axis=1)
            ax_flow.fill_between(k, lo, hi, color=color, alpha=0.15, lw=0)
            ax_ratio.plot(k, np.nanmedian(np.asarray(f.ratios), 1), style, color=color, label=label)
            if losses is not None:  # mean loss of each evaluation period
                ax_loss.plot(*losses.T, style, color=color, label=label.split(",")[0])
    ax_flow.set(
        xlabel="step k",
        ylabel=r"$\log_{10} |\partial E / \partial h_k|$",
        title="temporal contributions reaching step k\n(mean over sequences, 10-90% band)",
    )
    ax_ratio.axhline(1.0, color="k", lw=0.8)
    ax_ratio.set(
        xlabel="step k",
        ylabel="ratio",
        title=r"$|d_k\, \partial h_k/\partial h_{k-1}| \,/\, |d_k|$ (median)"
        "\n"
        r"$\Omega$ pushes it to 1",
    )
    ax_loss.set(
        xlabel="update",
        ylabel="training loss",
        title="training loss (mean over each evaluation period)",
    )
    for ax in (ax_flow, ax_ratio, ax_loss):
        ax.legend(fontsize=8)
    fig.suptitle(
        f"Gradient flow through time: {args.task}, L = {args.length}, "
        f"{args.init} initialisation, {args.hidden} units, batch {args.batch}, "
        f"seed {args.seed}"
    )
    return fig, curves


# ---- sweep diagnostics ----


def read_diagnostics(path: pathlib.Path, selection: dict[str, str]) -> list[dict]:
    """The rows of a sweep's diagnostics.csv (header DIAGNOSTICS_COLUMNS), numbers parsed,
    restricted to `selection`; ValueError says what is wrong with the file."""
    if not path.is_file():
        raise ValueError(
            f"{path} not found: --sweep takes the --out folder of a sweep, "
            "which holds diagnostics.csv"
        )
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = tuple(next(reader, ()))
        if header != DIAGNOSTICS_COLUMNS:
            raise ValueError(
                f"{path} has header {','.join(header) or '(empty)'}; expected "
                f"{','.join(DIAGNOSTICS_COLUMNS)}"
            )
        rows = []
        for line, values in enumerate(reader, start=2):
            if len(values) != len(DIAGNOSTICS_COLUMNS):
                raise ValueError(
                    f"{path}:{line}: {len(values)} fields, expected {len(DIAGNOSTICS_COLUMNS)}"
                )
            row = dict(zip(DIAGNOSTICS_COLUMNS, values, strict=True))
            if any(row[k] != v for k, v in selection.items()):
                continue
            try:
                for k in DIAGNOSTICS_COLUMNS[3:]:
                    row[k] = int(row[k]) if k in ("seed", "length", "updates") else float(row[k])
            except ValueError as e:
                raise ValueError(f"{path}:{line}: {e}") from None
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows" + (f" match {selection}" if selection else ""))
    return rows


def sweep_figure(args):
    """One panel per diagnostic against updates; a line per (task, init, method, length):
    the median over seeds, with their range shaded."""
    groups: dict[tuple, dict[int, list[dict]]] = {}
    for row in args.rows:
        key = tuple(row[k] for k in GROUP_COLUMNS)
        groups.setdefault(key, {}).setdefault(row["seed"], []).append(row)
    varying = [i for i, k in enumerate(GROUP_COLUMNS) if len({g[i] for g in groups}) > 1]
    constant = {k: args.rows[0][k] for i, k in enumerate(GROUP_COLUMNS) if i not in varying}
    fig = Figure(figsize=(13, 8.5), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    with warnings.catch_warnings():  # updates where some seeds have no row
        warnings.simplefilter("ignore", RuntimeWarning)
        ordered = sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0])))
        for index, (key, seeds) in enumerate(ordered):
            updates = np.unique([r["updates"] for rows in seeds.values() for r in rows])
            col = {u: j for j, u in enumerate(updates)}
            color = f"C{index % 10}"
            style = METHOD_STYLES.get(key[2], "-.")
            label = " ".join(f"{GROUP_COLUMNS[i]}={key[i]}" for i in varying) or "all runs"
            label += f" ({len(seeds)} seed{'s' * (len(seeds) > 1)})"
            for ax, (name, _, _) in zip(axes, PANELS, strict=True):
                values = np.full((len(seeds), len(updates)), np.nan)
                for s, rows in enumerate(seeds.values()):
                    for r in rows:
                        values[s, col[r["updates"]]] = r[name]
                ax.plot(updates, np.nanmedian(values, 0), style, color=color, label=label)
                if len(seeds) > 1:
                    lo, hi = np.nanmin(values, 0), np.nanmax(values, 0)
                    ax.fill_between(updates, lo, hi, color=color, alpha=0.15, lw=0)
    for ax, (name, title, scale) in zip(axes, PANELS, strict=True):
        ax.set(xlabel="updates", ylabel=name, title=title)
        if scale == "log":
            ax.set_yscale("log", nonpositive="mask")  # Omega is 0 when no step is kept
        if name == "spectral_radius":
            ax.axhline(1.0, color="k", lw=0.8)
        if name == "clipped_fraction":
            ax.set_ylim(-0.03, 1.03)
    axes[0].legend(fontsize=8)
    header = ", ".join(f"{k} {v}" for k, v in constant.items())
    fig.suptitle(
        f"Training diagnostics of the sweep in {args.sweep}"
        + (f": {header}" if header else "")
        + " (median over seeds, range shaded)"
    )
    return fig


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.sweep is not None:
        paths = save_figure(sweep_figure(args), args.out, "sweep_diagnostics", svg=args.svg)
    else:
        fig, curves = flow_figure(args)
        paths = save_figure(fig, args.out, "gradient_flow", svg=args.svg)
        for label, _, _, f, _ in curves:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                logs = np.nanmean(log10_contributions(f), 1)
            first, last = logs[0], logs[np.isfinite(logs)][-1]
            ratio = np.nanmedian(np.asarray(f.ratios))
            print(
                f"{label}: loss {float(f.loss):.4f}, mean log10 |dE/dh_k| {first:.2f} at k = 1, "
                f"{last:.2f} at the last step; median ratio {ratio:.3f}"
            )
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
