"""The Fig. 7 sweep: success rate against sequence length (Pascanu et al., 2013, §4.1.1).

For every length, all runs (initialisation x method x seed) train as one compiled program
(`runner.train`; one program per update rule when the methods name other optimizers or
clipping kinds). Results go into an output folder, each file written atomically:

    config.json       the sweep's settings (a re-run into the folder must match them)
    results.json      {"provenance", "settings", "runs"}: one run per row: task, init,
                      method, seed, length, solved, updates, error, nonfinite (updates
                      whose gradient norm was NaN, Inf or > 1e10), wall_s, device (plus
                      threshold, alpha and guard; params and index: where its trained
                      parameters are; for methods beyond the paper: optimizer,
                      hyperparams, clip, measure, and at a multiple of the mean norm
                      measured_norm and clip_threshold)
    params-L<length>.npz  the final parameters of every run at that length (the arrays of
                      `init_rnn`, each with a leading run axis; a row's `index` is its
                      position on it; `run_params(out, row)` reads one)
    results.csv       the same as a table
    diagnostics.csv   per run and evaluation: task, init, method, seed, length, updates,
                      loss, grad_norm, clipped_fraction, omega, spectral_radius, error
    fig7.png          success rate against length, a panel per initialisation, a bar per
                      method, like the paper's Fig. 7
    threshold.png     when a method clips at a multiple of the measured mean norm: success
                      against the multiple (§3.2's heuristic, `threshold.plot_threshold`)
    remedies.png      when an optimizer beyond the paper's comes with and without clipping
                      or Omega: success per optimizer and remedy (`remedies.plot_remedies`)
    summary.json      per length: compile, wall and evaluation seconds, evaluation share,
                      the provenance (commit, jax version, device) of the process that
                      finished it, and its segments (one per start of training: commit,
                      device, the updates it trained from and to, wall seconds)
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
import pathlib
import time
from collections.abc import Callable, Sequence
from types import MappingProxyType

import numpy as np

from pascanu_jax.experiments.distributed import check_process_count
from pascanu_jax.experiments.engine import DIAGNOSTICS, EngineConfig, RunSpec
from pascanu_jax.experiments.presets import (
    MAX_SEEDS,
    MAX_UPDATES,
    SettingError,
    check_int,
    check_lengths,
    check_methods,
    check_names,
)
from pascanu_jax.experiments.remedies import compares_remedies, plot_remedies
from pascanu_jax.experiments.runner import checkpoint_paths, train
from pascanu_jax.experiments.threshold import plot_threshold, threshold_cells
from pascanu_jax.initializers import SCHEMES
from pascanu_jax.methods import METHODS, Method, get_method
from pascanu_jax.outputs.checkpoint import CheckpointError, load_npz, save_npz
from pascanu_jax.outputs.figures import finish_figure
from pascanu_jax.outputs.files import remove, write_atomic, write_json
from pascanu_jax.outputs.folder import (
    OutputFolderError,
    open_folder,
    read_json_file,
    settings_of,
    warn,
)
from pascanu_jax.outputs.provenance import device_name, provenance
from pascanu_jax.tasks import Task, get_task

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
    "params",
    "index",
)
# Result fields of methods beyond the paper, in results.csv where any row has them.
OPTIONAL_FIELDS = ("optimizer", "hyperparams", "clip", "measure", "measured_norm", "clip_threshold")
DIAGNOSTIC_FIELDS = ("task", "init", "method", "seed", "length", "updates", *DIAGNOSTICS)


# Settings that may change between runs into one folder: lengths may be added, and how
# many periods one compiled call runs changes no number.
FREE_SETTINGS = ("lengths", "periods_per_call", "note")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep: every init x method x seed trained at every length (checked on creation;
    `SettingError` names the field). `PRESETS` holds the named ones."""

    task: Task
    lengths: tuple[int, ...]
    inits: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: int
    max_updates: int
    eval_every: int
    periods_per_call: int
    note: str = ""

    def __post_init__(self):
        if not isinstance(self.task, Task):
            raise SettingError(f"{{task}} must be a Task, got {self.task!r}", "task")
        for name in ("lengths", "inits", "methods"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.lengths or len(set(self.lengths)) != len(self.lengths):
            raise SettingError(f"{{lengths}}: give distinct lengths, got {self.lengths}", "lengths")
        check_lengths("lengths", self.task, self.lengths)
        check_names("inits", self.inits, SCHEMES)
        check_methods("methods", self.methods)
        check_int("seeds", self.seeds, 1, MAX_SEEDS, "every seed adds a run per init and method")
        check_int("max_updates", self.max_updates, 1, MAX_UPDATES, "updates count in int32")
        check_int("eval_every", self.eval_every)
        check_int("periods_per_call", self.periods_per_call)
        if self.max_updates % self.eval_every:
            raise SettingError(
                f"{{max_updates}} ({self.max_updates}) must be a multiple of the evaluation "
                f"interval {{eval_every}} ({self.eval_every})",
                "max_updates",
                "eval_every",
            )

    def settings(self) -> dict:
        """What a re-run into the same folder must share (lengths may be added)."""
        return settings_of(self, exclude=FREE_SETTINGS)

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


def _beyond_the_paper(m: Method) -> dict:
    """A result row's fields for a method other than SGD with norm clipping: its
    optimizer, hyperparameters and clipping rule (the paper's rows stay as they were)."""
    out = {}
    if m.optimizer != "sgd" or m.hyperparams:
        out |= {"optimizer": m.optimizer, "hyperparams": dict(m.hyperparams)}
    if m.clip != "norm":
        out |= {"clip": m.clip} | ({"measure": m.measure} if m.clip == "mean_norm" else {})
    return out


def _preset(
    lengths, max_updates, eval_every, periods_per_call, inits=tuple(SCHEMES), methods=tuple(METHODS)
) -> SweepConfig:
    return SweepConfig(
        get_task("temporal_order"),
        lengths,
        inits,
        methods,
        5,
        max_updates,
        eval_every,
        periods_per_call,
    )


PRESETS = MappingProxyType(
    {
        "quick": _preset((20, 30, 40, 50), 10_000, 200, 5),
        "paper": _preset((50, 100, 150, 200, 250), 5_000_000, 1_000, 50),
        # The paper's lengths at a budget a 2-core CPU finishes in hours (about 2.7 h for
        # all five lengths); the paper's 5M updates need an accelerator.
        "cpu": _preset((50, 100, 150, 200, 250), 30_000, 500, 10),
        # Ten times the cpu budget where it solves nothing (Fig. 7 at 200 and 250), for the
        # method and initialisations that succeed most there.
        "long": _preset((200, 250), 300_000, 1_000, 10, ("basic_tanh", "smart_tanh"), ("MSGD-CR",)),
    }
)


def run_sweep(
    cfg: SweepConfig,
    out: str,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    time_limit: float | None = None,
) -> list[dict]:
    """Run (or resume) the sweep into folder `out`; returns the results of the finished
    lengths (all of them unless `time_limit` paused the sweep).

    progress(updates done, updates in all) after every compiled call; log(line) once per
    finished length (and once if paused). time_limit (seconds): pause cleanly after the
    compiled call that passes it, the length in progress kept in its checkpoint; the same
    call resumes it. Raises OutputFolderError (the folder holds other settings, a file
    that cannot be recovered from is damaged, the folder cannot be written).

    Examples:
      >>> # not run: trains 45 runs a length for minutes; `python scripts/sweep_lengths.py` runs it
      >>> from pascanu_jax.experiments.sweep import run_sweep  # doctest: +SKIP
      >>> from pascanu_jax.experiments.presets import preset_config  # doctest: +SKIP
      >>> from pascanu_jax.experiments.sweep import PRESETS  # doctest: +SKIP
      >>> results = run_sweep(preset_config(PRESETS, "quick"),
      ...     "runs/temporal_order-quick")  # doctest: +SKIP
    """
    started = time.perf_counter()
    provenance()  # reads the checkout's state now, before anything changes it
    folder = open_folder(out, cfg, exclude=FREE_SETTINGS)
    runs = cfg.runs()
    results, diagnostics, summary = _resume(folder.path, cfg, runs)
    per_length = len(runs) * cfg.max_updates
    total = per_length * len(cfg.lengths)
    finished = {int(r["length"]) for r in results}
    trained = False
    for i, length in enumerate(cfg.lengths):
        ckpt = os.path.join(out, f"ckpt-L{length}.npz")
        if length in finished:
            for path in checkpoint_paths(ckpt, runs):
                if os.path.exists(path):  # killed after its results, before removing it
                    remove(path)
            continue
        done_before = i * per_length
        report = (
            None
            if progress is None
            else (lambda done, _budget, base=done_before: progress(base + done, total))
        )
        left = None if time_limit is None else max(time_limit - (time.perf_counter() - started), 0)
        if left == 0 and trained:
            break
        trained = True  # past the time limit, a call trains one compiled call, then pauses
        outcome = train(cfg.engine(length), runs, checkpoint=ckpt, progress=report, time_limit=left)
        if not outcome.complete:
            if log is not None:
                at = min(r["updates"] for r in outcome.runs if not r["solved"])
                log(f"length {length} paused at {at:,} updates; the same call resumes it")
            break
        tag = {"task": cfg.task.name, "length": length}
        params = _params_file(length)
        # Before results.json, which marks the length as finished.
        save_npz(
            os.path.join(out, params),
            {k: np.stack([p[k] for p in outcome.params]) for k in outcome.params[0]},
            compress=True,
        )
        for index, r in enumerate(outcome.runs):
            m = get_method(r["method"])
            results.append(
                {
                    **tag,
                    **r,
                    "device": device_name(),
                    "threshold": m.threshold,
                    "alpha": m.alpha,
                    "guard": m.guard,
                    **_beyond_the_paper(m),
                    "params": params,
                    "index": index,
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
            # A length paused and resumed across sessions names every commit and device
            # that trained it, not only the last.
            "segments": outcome.segments,
        }
        write_json(os.path.join(out, "summary.json"), summary)
        write_outputs(out, results, diagnostics, cfg)
        for path in checkpoint_paths(ckpt, runs):
            remove(path)
        if log is not None:
            solved = sum(r["solved"] for r in outcome.runs)
            log(
                f"length {length} done: {solved}/{len(runs)} runs solved, "
                f"{outcome.wall_s:.0f} s ({cfg.lengths.index(length) + 1} of "
                f"{len(cfg.lengths)} lengths)"
            )
    if results:  # redraws a finished sweep's figures with the current code; results.json
        # was written when its last length finished and keeps that process's provenance
        write_outputs(out, results, diagnostics, cfg, record=False)
    if progress is not None and len(finished | {int(r["length"]) for r in results}) == len(
        cfg.lengths
    ):
        progress(total, total)
    return results


def _params_file(length: int) -> str:
    return f"params-L{length}.npz"


def run_params(out: str | os.PathLike, row: dict) -> dict[str, np.ndarray]:
    """The trained parameters of one run of a sweep folder, from its row of results.json:
    {"W_in", "W_rec", "b", "W_out", "b_out"} as `init_rnn` makes them.

    Examples:
      >>> import json
      >>> from pascanu_jax.experiments.engine import misclassified_fraction
      >>> from pascanu_jax.experiments.sweep import run_params
      >>> out = "docs/results/fig7_quick"
      >>> runs = json.load(open(f"{out}/results.json"))["runs"]
      >>> row = next(r for r in runs if r["solved"] and r["length"] == 50)
      >>> row["init"], row["method"], row["seed"], row["updates"]
      ('basic_tanh', 'MSGD-CR', 0, 2800)
      >>> params = run_params(out, row)
      >>> # re-tested on 1,000 sequences it never saw
      >>> error = misclassified_fraction(pj.get_task(row["task"]), (50, 51), params,
      ...                                np.bool_(True), jax.random.key(1), 1_000)
      >>> float(error)
      0.0
    """
    try:
        arrays = load_npz(os.path.join(out, row["params"]))
        return {k: v[int(row["index"])] for k, v in arrays.items()}
    except KeyError as e:
        raise OutputFolderError(
            f"this row names no trained parameters (missing {e}); sweeps written before they "
            "kept them have none"
        ) from None
    except (OSError, CheckpointError, IndexError) as e:
        where = os.path.join(out, row["params"])
        raise OutputFolderError(
            f"the parameters of run {row['index']} in {where} cannot be read ({e})"
        ) from e


def _resume(out: pathlib.Path, cfg: SweepConfig, runs: list[RunSpec]):
    """(results, diagnostics, summary) of the lengths that finished in folder `out`.

    A length is finished when results.json has exactly one row for each of its runs and
    diagnostics.csv has, for each run, one row per evaluation (every eval_every updates up
    to its updates) or none for the whole length (a folder kept without diagnostics). A
    length that fails this is trained again (a warning line says so); diagnostics and
    timings of lengths that did not finish (a run killed between the files) are dropped.
    A file that cannot be read is an OutputFolderError naming it.
    """
    results_path = out / "results.json"
    record = read_json_file(
        results_path,
        "restore it, or delete it to train every length again",
        empty_is_none=True,
    )
    if record is not None and not (
        isinstance(record, dict) and isinstance(record.get("runs"), list)
    ):
        raise OutputFolderError(
            f"{results_path} is damaged (no list of runs); restore it, or delete it to train "
            "every length again"
        )
    if record is not None:
        check_process_count(record.get("provenance", {}).get("processes"), str(results_path))
    rows = [] if record is None else record["runs"]
    diagnostics = _read_diagnostics(out / "diagnostics.csv")
    summary_path = out / "summary.json"
    summary = read_json_file(
        summary_path,
        "restore it, or delete it (it holds only the timings of the finished lengths)",
        empty_is_none=True,
    )
    if summary is not None and not isinstance(summary, dict):
        raise OutputFolderError(
            f"{summary_path} is damaged (not a JSON object); restore it, or delete it (it "
            "holds only the timings of the finished lengths)"
        )
    expected = sorted((r.init, get_method(r.method).name, r.seed) for r in runs)
    by_length: dict[int, list[dict]] = {}
    for row in rows:
        try:
            by_length.setdefault(int(row["length"]), []).append(row)
        except (TypeError, KeyError, ValueError):
            continue  # a row without a length: its length misses a run and is redone
    diag_by_length: dict[int, list[dict]] = {}
    for d in diagnostics:
        diag_by_length.setdefault(int(d["length"]), []).append(d)
    finished = set()
    for length, mine in by_length.items():
        problem = _check_length(mine, diag_by_length.get(length, []), expected, cfg.eval_every)
        problem = problem or _check_params(out, length, mine, len(runs))
        if problem is None:
            finished.add(length)
        else:
            warn(f"{results_path}: length {length} {problem}; training it again")
    keep = {id(r) for L in finished for r in by_length[L]}
    results = [r for r in rows if id(r) in keep]
    diagnostics = [d for d in diagnostics if int(d["length"]) in finished]
    summary = {k: v for k, v in (summary or {}).items() if k in {str(L) for L in finished}}
    return results, diagnostics, summary


def _check_length(rows, diagnostics, expected, eval_every) -> str | None:
    """Why the results and diagnostics of one length are not those of a finished length
    (None: they are)."""
    try:
        keys = sorted((r["init"], r["method"], int(r["seed"])) for r in rows)
        updates = {(r["init"], r["method"], int(r["seed"])): int(r["updates"]) for r in rows}
        for r in rows:
            if not isinstance(r["solved"], bool):
                return "has a run whose 'solved' is not true or false"
    except (TypeError, KeyError, ValueError):
        return "has a damaged row"
    if keys != expected:
        return f"has {len(keys)} rows for its {len(expected)} runs"
    if not diagnostics:
        return None  # kept without diagnostics
    seen: dict[tuple, list[int]] = {}
    for d in diagnostics:
        seen.setdefault((d["init"], d["method"], int(d["seed"])), []).append(int(d["updates"]))
    for key, n in updates.items():
        if seen.pop(key, []) != list(range(eval_every, n + 1, eval_every)):
            return f"has diagnostics that do not match its results (run {key})"
    if seen:
        return f"has diagnostics of runs it does not have ({sorted(seen)[0]})"
    return None


def _check_params(out: pathlib.Path, length: int, rows: list[dict], n_runs: int) -> str | None:
    """Why the trained parameters of one length are not all there (None: they are)."""
    if any(r.get("params") != _params_file(length) for r in rows):
        return "has no trained parameters (written before sweeps kept them)"
    try:
        arrays = load_npz(out / _params_file(length))
    except (OSError, CheckpointError):
        return f"has a missing or damaged {_params_file(length)}"
    if not arrays or any(len(v) != n_runs for v in arrays.values()):
        return f"has a {_params_file(length)} without one entry per run"
    try:
        indices = sorted(int(r["index"]) for r in rows)
    except (TypeError, KeyError, ValueError):
        indices = None
    if indices != list(range(n_runs)):
        return "has rows whose parameter indices are not one per run"
    return None


def write_outputs(
    out: str, results: list[dict], diagnostics: list[dict], cfg: SweepConfig, record: bool = True
) -> None:
    """results.json (unless `record` is False), results.csv, diagnostics.csv, fig7.png (and
    threshold.png, remedies.png), each atomically.
    Diagnostics first: results.json is what marks a length as finished.

    Examples:
      >>> # not run: writes a whole sweep folder from a finished length's runs; `run_sweep` calls it
      >>> write_outputs("runs/sweep", results, diagnostics, cfg)  # doctest: +SKIP
    """
    write_atomic(os.path.join(out, "diagnostics.csv"), _csv(diagnostics, DIAGNOSTIC_FIELDS))
    optional = [k for k in OPTIONAL_FIELDS if any(k in r for r in results)]
    write_atomic(os.path.join(out, "results.csv"), _csv(results, (*RESULT_FIELDS, *optional)))
    plot_fig7(results, os.path.join(out, "fig7.png"), cfg.note)
    if threshold_cells(results):
        plot_threshold(results, os.path.join(out, "threshold.png"), cfg.note)
    if compares_remedies(results):
        plot_remedies(results, os.path.join(out, "remedies.png"), cfg.note)
    if record:
        doc = {"provenance": provenance(), "settings": cfg.settings(), "runs": results}
        write_json(os.path.join(out, "results.json"), doc)


def _csv(rows: Sequence[dict], fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _read_diagnostics(path: pathlib.Path) -> list[dict]:
    """The rows of a sweep's diagnostics.csv ([] when there is none, or it is empty); a
    file that is not such a table is an OutputFolderError naming it and the line."""
    remedy = (
        "restore it, or delete it (the finished lengths keep their results without "
        "diagnostics; delete results.json too to train them again)"
    )
    if not path.exists():
        return []
    try:
        with open(path, newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise OutputFolderError(f"cannot read {path} ({e}); {remedy}") from e
    if not text.strip():
        return []
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != DIAGNOSTIC_FIELDS:
        raise OutputFolderError(f"{path} is damaged (line 1 is not its header); {remedy}")
    rows = []
    try:
        for row in reader:
            if None in row or None in row.values():
                raise ValueError("wrong number of fields")
            for name in ("seed", "length", "updates"):
                int(row[name])
            for name in DIAGNOSTICS:
                float(row[name])
            rows.append(row)
    except (ValueError, csv.Error) as e:
        raise OutputFolderError(f"{path} is damaged (line {reader.line_num}: {e}); {remedy}") from e
    return rows


def wilson_interval(successes: int, runs: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% for z = 1.96), as fractions.

        centre = (k + z^2/2) / (n + z^2),  half = z sqrt(k (n - k) / n + z^2/4) / (n + z^2)

    It stays inside [0, 1] and is not empty at 0 or n successes, unlike the normal
    approximation (Wilson, 1927; Brown, Cai & DasGupta, 2001). With 5 runs a cell of 5/5
    is [0.57, 1] and 0/5 is [0, 0.43]: 5 seeds separate only large differences.

    Examples:
      >>> from pascanu_jax.experiments.sweep import wilson_interval
      >>> [round(float(x), 2) for x in wilson_interval(5, 5)]
      [0.57, 1.0]
      >>> [round(float(x), 2) for x in wilson_interval(0, 5)]
      [0.0, 0.43]
    """
    if runs < 1 or not 0 <= successes <= runs:
        raise ValueError(f"need 0 <= successes <= runs and runs >= 1, got {successes}/{runs}")
    z2 = z * z
    centre = (successes + z2 / 2) / (runs + z2)
    half = z * np.sqrt(successes * (runs - successes) / runs + z2 / 4) / (runs + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def success_table(results: Sequence[dict]) -> dict[tuple[str, str, int], tuple[int, int]]:
    """(init, method, length) -> (solved runs, runs).

    Examples:
      >>> from pascanu_jax.experiments.sweep import success_table
      >>> rows = [{"init": "smart_tanh", "method": "MSGD-CR", "length": 50,
      ...     "solved": s} for s in (True, True, False)]
      >>> success_table(rows)
      {('smart_tanh', 'MSGD-CR', 50): (2, 3)}
    """
    table: dict[tuple[str, str, int], list[int]] = {}
    for r in results:
        cell = table.setdefault((r["init"], r["method"], int(r["length"])), [0, 0])
        cell[0] += bool(r["solved"])
        cell[1] += 1
    return {k: (v[0], v[1]) for k, v in table.items()}


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """A distinct matplotlib colour per method: the paper's three keep theirs in every
    figure (MSGD C0, MSGD-C C1, MSGD-CR C2), so that a sweep of MSGD-CR alone reads like
    Fig. 7; other methods never take the paper's blue, orange or green. Up to seven others
    take C3-C9 in order, up to fourteen the light shades of those seven after them
    (tab20), and more than fourteen are spread evenly over the turbo colour map.

    Examples:
      >>> method_colors(["MSGD-CR", "adam:lr=1e-3", "MSGD"])
      {'MSGD-CR': 'C2', 'adam:lr=1e-3': 'C3', 'MSGD': 'C0'}
      >>> colors = method_colors([f"sgd:clipvalue={v}" for v in range(16)])
      >>> len(set(colors.values()))
      16
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    colors = {name: f"C{i}" for i, name in enumerate(METHODS)}
    others = [m for m in methods if m not in colors]
    # tab20's pairs 0-2 are the paper's hues; the dark shade of each other pair is C3-C9.
    light = [to_hex(c) for c in colormaps["tab20"].colors[2 * len(METHODS) + 1 :: 2]]
    palette = [f"C{i}" for i in range(len(METHODS), 10)] + light
    if len(others) > len(palette):
        palette = [to_hex(colormaps["turbo"](t)) for t in np.linspace(0.05, 0.95, len(others))]
    colors |= dict(zip(others, palette, strict=False))
    return {m: colors[m] for m in methods}


def plot_fig7(results: Sequence[dict], path: str, note: str = "") -> None:
    """Success rate against length: a panel per initialisation, a bar per method.

    Examples:
      >>> import json
      >>> from pascanu_jax.experiments.sweep import plot_fig7
      >>> record = json.load(open("docs/results/fig7_quick/results.json"))
      >>> plot_fig7(record["runs"], "fig7.png", note="quick preset")
    """
    from matplotlib.figure import Figure

    table = success_table(results)
    inits = list(dict.fromkeys(r["init"] for r in results))
    methods = list(dict.fromkeys(r["method"] for r in results))
    lengths = sorted({int(r["length"]) for r in results})
    ncol = min(len(methods), 3 if any(len(m) > 12 for m in methods) else 6)
    rows = -(-len(methods) // ncol)  # legend rows under the panels
    fig = Figure(figsize=(4.2 * len(inits), 3.6 + 0.25 * (rows - 1)))
    axes = fig.subplots(1, len(inits), sharey=True, squeeze=False)
    width = 0.8 / len(methods)
    colors = method_colors(methods)
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
                color=colors[method],
                label=method,
            )
        ax.set_xticks(x, [str(L) for L in lengths])
        ax.set_title(init)
        ax.set_xlabel("sequence length")
        ax.set_ylim(0, 105)
    axes[0][0].set_ylabel("success rate (%)")
    task = results[0]["task"] if results else ""
    title = (
        f"{task}: rate of success against length (Pascanu et al. 2013, Fig. 7); "
        "bars: 95% Wilson intervals"
    )
    finish_figure(fig, axes[0][0], path, title, ncol=ncol, rows=rows, note=note)
