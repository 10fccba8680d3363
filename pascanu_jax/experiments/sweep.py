"""The Fig. 7 sweep: success rate against sequence length (Pascanu et al., 2013, §4.1.1).

For every length, all runs (initialisation x method x seed) train as one compiled program
(`engine.train`). Results go into an output folder, each file written atomically:

    config.json       the sweep's settings (a re-run into the folder must match them)
    results.json      {"provenance", "settings", "runs"}: one run per row: task, init,
                      method, seed, length, solved, updates, error, nonfinite (updates
                      whose gradient norm was NaN, Inf or > 1e10), wall_s, device (plus
                      threshold, alpha and guard)
    results.csv       the same as a table
    diagnostics.csv   per run and evaluation: task, init, method, seed, length, updates,
                      loss, grad_norm, clipped_fraction, omega, spectral_radius, error
    fig7.png          success rate against length, a panel per initialisation, a bar per
                      method, like the paper's Fig. 7
    summary.json      per length: compile, wall and evaluation seconds, evaluation share,
                      and the provenance (commit, jax version, device) of the run
    ckpt-L<length>.npz  the length in progress (removed once its results are written)

Interrupting and re-running into the same folder resumes: finished lengths are kept, the
length in progress continues from its last checkpoint, and the results are the same as
those of an uninterrupted sweep (every key is deterministic).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Callable, Sequence
from types import MappingProxyType

import numpy as np

from pascanu_jax.experiments.distributed import check_process_count
from pascanu_jax.experiments.engine import DIAGNOSTICS, EngineConfig, RunSpec
from pascanu_jax.experiments.runner import train
from pascanu_jax.methods import get_method
from pascanu_jax.outputs.figures import save_figure
from pascanu_jax.outputs.files import read_json, remove, write_atomic, write_json
from pascanu_jax.outputs.provenance import device_name, provenance
from pascanu_jax.tasks import Task

RESULT_FIELDS = (
    "task",
    "init",
    "method",
    "seed",
    "length",
    "solved",
    "updates",
    "error",
    "nonfinite",
    "wall_s",
    "device",
    "threshold",
    "alpha",
    "guard",
)
DIAGNOSTIC_FIELDS = ("task", "init", "method", "seed", "length", "updates", *DIAGNOSTICS)


@dataclasses.dataclass(frozen=True)
class Preset:
    """Default lengths, budget and evaluation interval of a sweep."""

    lengths: tuple[int, ...]
    max_updates: int
    eval_every: int
    periods_per_call: int


PRESETS = MappingProxyType(
    {
        "quick": Preset(
            (20, 30, 40, 50),
            10_000,
            200,
            5,
        ),
        "paper": Preset(
            (50, 100, 150, 200, 250),
            5_000_000,
            1_000,
            50,
        ),
        # The paper's lengths at a budget a 2-core CPU finishes in hours (about 2 h for all
        # five lengths); the paper's 5M updates need an accelerator.
        "cpu": Preset(
            (50, 100, 150, 200, 250),
            30_000,
            500,
            10,
        ),
    }
)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    task: Task
    lengths: tuple[int, ...]
    inits: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: int
    max_updates: int
    eval_every: int
    periods_per_call: int
    note: str = ""

    def settings(self) -> dict:
        """What a re-run into the same folder must share (lengths may be added)."""
        return {
            "task": self.task.name,
            "inits": list(self.inits),
            "methods": list(self.methods),
            "seeds": self.seeds,
            "max_updates": self.max_updates,
            "eval_every": self.eval_every,
        }

    def engine(self, length: int) -> EngineConfig:
        return EngineConfig(
            self.task,
            (length, length + 1),
            max_updates=self.max_updates,
            eval_every=self.eval_every,
            periods_per_call=self.periods_per_call,
        )

    def runs(self) -> list[RunSpec]:
        return [
            RunSpec(i, m, s) for i in self.inits for m in self.methods for s in range(self.seeds)
        ]


def run_sweep(
    cfg: SweepConfig, out: str, progress: Callable[[int, int], None] | None = None
) -> list[dict]:
    """Run (or resume) the sweep into folder `out`; returns all results."""
    provenance()  # reads the checkout's state now, before anything changes it
    os.makedirs(out, exist_ok=True)
    config_path = os.path.join(out, "config.json")
    if os.path.exists(config_path):
        saved = read_json(config_path)
        if saved != cfg.settings():
            raise ValueError(
                f"{out} holds a sweep with other settings {saved}; these are "
                f"{cfg.settings()}. Use another --out folder."
            )
    else:
        write_json(config_path, cfg.settings())
    results = []
    if os.path.exists(os.path.join(out, "results.json")):
        record = read_json(os.path.join(out, "results.json"))
        check_process_count(record["provenance"].get("processes"), f"{out}/results.json")
        results = record["runs"]
    diagnostics = _read_csv(os.path.join(out, "diagnostics.csv"))
    summary_path = os.path.join(out, "summary.json")
    summary = read_json(summary_path) if os.path.exists(summary_path) else {}
    runs = cfg.runs()
    per_length = len(runs) * cfg.max_updates
    total = per_length * len(cfg.lengths)
    for i, length in enumerate(cfg.lengths):
        if any(r["length"] == length for r in results):
            continue
        ckpt = os.path.join(out, f"ckpt-L{length}.npz")
        done_before = i * per_length
        report = (
            None
            if progress is None
            else (lambda done, _budget, base=done_before: progress(base + done, total))
        )
        outcome = train(cfg.engine(length), runs, checkpoint=ckpt, progress=report)
        tag = {"task": cfg.task.name, "length": length}
        for r in outcome.runs:
            m = get_method(r["method"])
            results.append(
                {
                    **tag,
                    **r,
                    "device": device_name(),
                    "threshold": m.threshold,
                    "alpha": m.alpha,
                    "guard": m.guard,
                }
            )
        diagnostics += [{**tag, **d} for d in outcome.diagnostics]
        summary[str(length)] = {
            "compile_s": outcome.compile_s,
            "wall_s": outcome.wall_s,
            "eval_s": outcome.eval_s,
            "eval_fraction": outcome.eval_s / outcome.wall_s,
            "device": device_name(),
            "provenance": provenance(),
        }
        write_json(os.path.join(out, "summary.json"), summary)
        write_outputs(out, results, diagnostics, cfg)
        remove(ckpt)
    if results:  # also redraws a finished sweep's figure with the current code
        write_outputs(out, results, diagnostics, cfg)
    if progress is not None:
        progress(total, total)
    return results


def write_outputs(out: str, results: list[dict], diagnostics: list[dict], cfg: SweepConfig) -> None:
    """results.json, results.csv, diagnostics.csv and fig7.png, each atomically.
    Diagnostics first: results.json is what marks a length as finished."""
    write_atomic(os.path.join(out, "diagnostics.csv"), _csv(diagnostics, DIAGNOSTIC_FIELDS))
    write_atomic(os.path.join(out, "results.csv"), _csv(results, RESULT_FIELDS))
    plot_fig7(results, os.path.join(out, "fig7.png"), cfg.note)
    record = {"provenance": provenance(), "settings": cfg.settings(), "runs": results}
    write_json(os.path.join(out, "results.json"), record)


def _csv(rows: Sequence[dict], fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _read_csv(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def wilson_interval(successes: int, runs: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% for z = 1.96), as fractions.

        centre = (k + z^2/2) / (n + z^2),  half = z sqrt(k (n - k) / n + z^2/4) / (n + z^2)

    It stays inside [0, 1] and is not empty at 0 or n successes, unlike the normal
    approximation (Wilson, 1927; Brown, Cai & DasGupta, 2001). With 5 runs a cell of 5/5
    is [0.57, 1] and 0/5 is [0, 0.43]: 5 seeds separate only large differences.
    """
    if runs < 1 or not 0 <= successes <= runs:
        raise ValueError(f"need 0 <= successes <= runs and runs >= 1, got {successes}/{runs}")
    z2 = z * z
    centre = (successes + z2 / 2) / (runs + z2)
    half = z * np.sqrt(successes * (runs - successes) / runs + z2 / 4) / (runs + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def success_table(results: Sequence[dict]) -> dict[tuple[str, str, int], tuple[int, int]]:
    """(init, method, length) -> (solved runs, runs)."""
    table: dict[tuple[str, str, int], list[int]] = {}
    for r in results:
        cell = table.setdefault((r["init"], r["method"], int(r["length"])), [0, 0])
        cell[0] += bool(r["solved"])
        cell[1] += 1
    return {k: (v[0], v[1]) for k, v in table.items()}


def plot_fig7(results: Sequence[dict], path: str, note: str = "") -> None:
    """Success rate against length: a panel per initialisation, a bar per method."""
    from matplotlib.figure import Figure

    table = success_table(results)
    inits = list(dict.fromkeys(r["init"] for r in results))
    methods = list(dict.fromkeys(r["method"] for r in results))
    lengths = sorted({int(r["length"]) for r in results})
    fig = Figure(figsize=(4.2 * len(inits), 3.6))
    axes = fig.subplots(1, len(inits), sharey=True, squeeze=False)
    width = 0.8 / len(methods)
    x = np.arange(len(lengths))
    for ax, init in zip(axes[0], inits, strict=True):
        for j, method in enumerate(methods):
            cells = [table.get((init, method, L)) for L in lengths]
            rate = np.array([100 * c[0] / c[1] if c else 0.0 for c in cells])
            ci = np.array([wilson_interval(*c) if c else (0.0, 0.0) for c in cells]) * 100
            ax.bar(
                x + (j - (len(methods) - 1) / 2) * width,
                rate,
                width,
                yerr=np.stack([rate - ci[:, 0], ci[:, 1] - rate]),
                error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.3"},
                label=method,
            )
        ax.set_xticks(x, [str(L) for L in lengths])
        ax.set_title(init)
        ax.set_xlabel("sequence length")
        ax.set_ylim(0, 105)
    axes[0][0].set_ylabel("success rate (%)")
    fig.legend(
        *axes[0][0].get_legend_handles_labels(),
        loc="lower center",
        ncol=len(methods),
        fontsize=9,
        frameon=False,
    )
    task = results[0]["task"] if results else ""
    fig.suptitle(
        f"{task}: rate of success against length (Pascanu et al. 2013, Fig. 7); "
        "bars: 95% Wilson intervals" + (f"\n{note}" if note else ""),
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(fig, os.path.dirname(path) or ".", os.path.splitext(os.path.basename(path))[0])
