"""Generalisation to unseen lengths (Pascanu et al., 2013, §4.1.1 and §4.1.2).

One model per seed trains on lengths drawn uniformly from [lo, hi) at every update (the
paper: basic_tanh, MSGD-CR, [50, 200)); it is then tested on 10,000 fresh sequences at each
test length, including lengths far beyond training (the paper: 0 errors up to 5000 steps
on temporal order; addition and multiplication below 1% up to 500 steps).

Outputs in a folder (the protocol of `outputs/folder.py`: config.json records the
settings, a re-run with other settings is refused): generalization.json (provenance,
settings, training outcome per seed, tests; written after every test length, so an
interrupted evaluation resumes), train-state.npz (the training checkpoint; it keeps the
trained models, so a re-run only evaluates), model-seed<N>.npz (each trained model as
the arrays W_in, W_rec, b, W_out, b_out of `init_rnn`, to re-test at any length without
retraining), diagnostics.csv (the learning curves: per seed and evaluation, training
loss, gradient norm, clipped fraction, guard trips, Omega, spectral radius, screening
error), generalization.png and learning_curves.png.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from types import MappingProxyType

import jax
import numpy as np

from pascanu_jax.experiments.distributed import check_process_count
from pascanu_jax.experiments.engine import (
    DIAGNOSTICS,
    EngineConfig,
    RunSpec,
    misclassified_fraction,
)
from pascanu_jax.experiments.presets import (
    MAX_SEEDS,
    MAX_UPDATES,
    SettingError,
    check_int,
    check_lengths,
    check_names,
)
from pascanu_jax.experiments.runner import EngineResult, train
from pascanu_jax.experiments.sharding import run_mesh
from pascanu_jax.experiments.watch import TEST_KEY_OFFSET, Watch, plot_watch
from pascanu_jax.initializers import SCHEMES, get_scheme
from pascanu_jax.methods import METHODS, Method, get_method
from pascanu_jax.outputs.checkpoint import CheckpointError, load_npz, save_npz
from pascanu_jax.outputs.figures import save_figure
from pascanu_jax.outputs.files import write_atomic, write_json
from pascanu_jax.outputs.folder import (
    OutputFolderError,
    open_folder,
    read_json_file,
    settings_of,
    warn,
)
from pascanu_jax.outputs.provenance import provenance
from pascanu_jax.tasks import Task, get_task

PAPER_TEST_LENGTHS = (50, 100, 150, 200, 250, 500, 1000, 2000, 3000, 5000)
WATCH_LENGTHS = (50, 100, 200, 1000, 5000)
# Training on after success draws its data as seed TRAIN_ON_SEED_OFFSET + seed.
TRAIN_ON_SEED_OFFSET = 500_000


@dataclasses.dataclass(frozen=True)
class GeneralizationConfig:
    task: Task
    train_lengths: tuple[int, int]
    test_lengths: tuple[int, ...]
    init: str = "basic_tanh"
    method: str = "MSGD-CR"
    # None: the method's own alpha (MSGD-CR: the paper's 4); the authors' code defaults to 2.
    alpha: float | None = None
    seeds: int = 1
    max_updates: int = 5_000_000
    eval_every: int = 1_000
    periods_per_call: int = 20
    test_size: int = 10_000
    # Train until no sequence of 10,000 is misclassified, as the paper's models of §4.1.1
    # (and the authors' code, which stops only at 0 errors); the sweep's 1% is looser.
    success: float = 1e-4
    # The watch (`watch.py`): None trains each seed to its first success, as the paper; N
    # trains every seed to max_updates and tests it every N updates at watch_lengths on
    # watch_size fresh sequences, keeping the snapshots that generalise.
    watch_every: int | None = None
    watch_lengths: tuple[int, ...] = WATCH_LENGTHS
    watch_size: int = 1_000
    stop_when_general: bool = True

    def __post_init__(self):
        if not isinstance(self.task, Task):
            raise SettingError(f"{{task}} must be a Task, got {self.task!r}", "task")
        for name in ("train_lengths", "test_lengths", "watch_lengths"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        lo_hi = self.train_lengths
        if len(lo_hi) != 2 or lo_hi[1] <= lo_hi[0]:
            raise SettingError(
                f"{{train_lengths}} must be LO,HI with HI > LO, got {lo_hi}", "train_lengths"
            )
        check_lengths("train_lengths", self.task, lo_hi)
        if not self.test_lengths:
            raise SettingError("{test_lengths}: give at least one length", "test_lengths")
        check_lengths("test_lengths", self.task, self.test_lengths)
        check_names("init", (self.init,), SCHEMES)
        check_names("method", (self.method,), METHODS)
        if self.alpha is not None and not self.alpha >= 0:
            raise SettingError(f"{{alpha}} must be >= 0, got {self.alpha}", "alpha")
        check_int("seeds", self.seeds, 1, MAX_SEEDS, "every seed is a run of one program")
        check_int("max_updates", self.max_updates, 1, MAX_UPDATES, "updates count in int32")
        check_int("eval_every", self.eval_every)
        check_int("periods_per_call", self.periods_per_call)
        check_int("test_size", self.test_size, 1, 10_000_000)
        if not 0 < self.success <= 1:
            raise SettingError(
                f"{{success}} must be a fraction in (0, 1], got {self.success}", "success"
            )
        if self.max_updates % self.eval_every:
            raise SettingError(
                f"{{max_updates}} ({self.max_updates}) must be a multiple of {{eval_every}} "
                f"({self.eval_every})",
                "max_updates",
                "eval_every",
            )
        if self.watch_every is not None:
            self._check_watch()

    def _check_watch(self):
        check_int("watch_every", self.watch_every, 1, MAX_UPDATES)
        if self.watch_every % self.eval_every or self.max_updates % self.watch_every:
            raise SettingError(
                f"{{watch_every}} ({self.watch_every}) must be a multiple of {{eval_every}} "
                f"({self.eval_every}) and divide {{max_updates}} ({self.max_updates})",
                "watch_every",
                "eval_every",
                "max_updates",
            )
        if not self.watch_lengths:
            raise SettingError("{watch_lengths}: give at least one length", "watch_lengths")
        check_lengths("watch_lengths", self.task, self.watch_lengths)
        check_int("watch_size", self.watch_size, 1, 10_000_000)

    def settings(self) -> dict:
        return settings_of(self)

    def run_method(self) -> Method:
        """The method every seed trains with (`alpha` applied)."""
        method = get_method(self.method)
        if self.alpha is None:
            return method
        return dataclasses.replace(
            method, name=f"{method.name}@alpha={self.alpha:g}", alpha=self.alpha
        )


def _preset(train_lengths, test_lengths, max_updates, **watch) -> GeneralizationConfig:
    task = get_task("temporal_order")
    return GeneralizationConfig(task, train_lengths, test_lengths, max_updates=max_updates, **watch)


PRESETS = MappingProxyType(
    {
        "quick": _preset((20, 80), (10, 20, 30, 50, 100, 200, 500), 60_000),
        "paper": _preset((50, 200), PAPER_TEST_LENGTHS, 5_000_000),
        # The §4.1.1 campaign: the paper's protocol watched for 1M updates, 8 seeds.
        "watch": _preset(
            (50, 200), PAPER_TEST_LENGTHS, 1_000_000, seeds=8, watch_every=5_000, watch_size=500
        ),
    }
)
RECORD = "generalization.json"
_REMEDY = "restore it, or delete it to rebuild it (the trained models are tested again)"


def _legacy_settings(out) -> dict | None:
    """The settings of a folder written before config.json: those of its record."""
    record = read_json_file(out / RECORD, _REMEDY)
    return record.get("settings") if isinstance(record, dict) else None


def _open(cfg: GeneralizationConfig, out: str) -> tuple[str, dict | None]:
    """Open the folder (the settings protocol of `outputs/folder.py`) and read its record:
    (path, record or None). Damaged entries are dropped, with a warning, to be redone."""
    open_folder(out, cfg, legacy=_legacy_settings)
    path = os.path.join(out, RECORD)
    record = read_json_file(path, _REMEDY, empty_is_none=True)
    if record is None:
        return path, None
    if not isinstance(record, dict):
        raise OutputFolderError(f"{path} is damaged (not a JSON object); {_REMEDY}")
    check_process_count(record.get("provenance", {}).get("processes"), path)
    if str(record.get("status", "complete")).startswith("paused"):
        return path, None  # a paused run's record holds nothing the checkpoint does not
    if not isinstance(record.get("train_on", {}), dict):
        warn(f"{path}: its train_on stages are damaged; dropped, to be done again")
        del record["train_on"]
    for key, stage in [("", record), *record.get("train_on", {}).items()]:
        tests = stage.get("tests") if isinstance(stage, dict) else None
        kept = _valid_tests(tests, cfg)
        if not isinstance(tests, list) or len(kept) != len(tests):
            where = f"stage train_on {key}" if key else "tests"
            warn(f"{path}: {where}: damaged or repeated test entries dropped; testing again")
            if isinstance(stage, dict):
                stage["tests"] = kept
    return path, record


def _valid_tests(tests, cfg: GeneralizationConfig) -> list[dict]:
    """The entries {seed, length, error} of `tests` that belong to `cfg`, first of each."""
    kept, seen = [], set()
    for t in tests if isinstance(tests, list) else []:
        try:
            key = (int(t["seed"]), int(t["length"]))
            float(t["error"])
        except (TypeError, KeyError, ValueError):
            continue
        if key[0] in range(cfg.seeds) and key[1] in cfg.test_lengths and key not in seen:
            seen.add(key)
            kept.append(t)
    return kept


def _stage_done(stage: dict, out: str, seeds: int) -> bool:
    """Whether a stage's training rows and model files are all there and readable."""
    try:
        if len(stage["training"]) != seeds:
            return False
        for s in range(seeds):
            _load_model(os.path.join(out, stage["models"][str(s)]))
    except (TypeError, KeyError, OutputFolderError):
        return False
    return True


def run_generalization(
    cfg: GeneralizationConfig,
    out: str,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    time_limit: float | None = None,
) -> dict:
    """Train (or resume), then test every seed's model at every test length.

    Returns {"settings", "provenance", "status", "segments" (which commit and device
    trained which updates), "training": per-seed engine results, "models", "tests":
    [{seed, length, error}]}; progress(stage, done, total) with stage "train" or "test";
    log(line) after training and after each test. time_limit (seconds) pauses training
    cleanly after the compiled call that passes it: the record then has status "paused at
    N updates", no models and no tests, and the same call resumes it.

    Examples:
      >>> # not run: trains for minutes; `python scripts/generalize.py` runs it
      >>> from pascanu_jax.experiments import generalization as g  # doctest: +SKIP
      >>> record = g.run_generalization(g.PRESETS["quick"], "runs/quick")  # doctest: +SKIP
    """
    if cfg.watch_every is not None:
        return run_watch(cfg, out, progress, log, time_limit)
    provenance()  # reads the checkout's state now, before anything changes it
    path, record = _open(cfg, out)
    runs = [RunSpec(cfg.init, cfg.run_method(), s) for s in range(cfg.seeds)]
    ckpt = os.path.join(out, "train-state.npz")
    result = _train_stage(cfg, cfg.max_updates, runs, ckpt, progress, time_limit=time_limit)
    if not result.complete:
        return _paused(cfg, out, path, result)
    if log is not None:
        log(_training_line(result.runs, "training"))
    if record is not None and not _stage_done(record, out, cfg.seeds):
        warn(f"{path}: the training record or a model file is missing or damaged; rewriting it")
        record = {**record, "settings": cfg.settings(), "training": result.runs}
        record.pop("models", None)
    if record is None or "models" not in record:
        record = {"settings": cfg.settings(), "training": result.runs, "tests": []} | (record or {})
        record["models"] = _save_models(out, result.params, "")
        write_atomic(os.path.join(out, "diagnostics.csv"), diagnostics_csv(result.diagnostics))
        plot_learning_curves(result.diagnostics, cfg, os.path.join(out, "learning_curves.png"))
    record["provenance"] = provenance(train_wall_s=result.wall_s)
    record["status"], record["segments"] = "complete", result.segments
    _test_all(cfg, result.params, record["tests"], lambda: write_json(path, record), progress, log)
    write_json(path, record)
    plot_generalization(record, os.path.join(out, "generalization.png"))
    return record


def _paused(cfg: GeneralizationConfig, out: str, path: str, result: EngineResult) -> dict:
    """The record of a paused first-success run: where each seed stands, no models yet."""
    done = min(r["updates"] for r in result.runs if not r["solved"])
    record = {
        "settings": cfg.settings(),
        "provenance": provenance(train_wall_s=result.wall_s),
        "status": f"paused at {done:,} updates",
        "segments": result.segments,
        "training": result.runs,
        "tests": [],
    }
    write_json(path, record)
    write_atomic(os.path.join(out, "diagnostics.csv"), diagnostics_csv(result.diagnostics))
    plot_learning_curves(result.diagnostics, cfg, os.path.join(out, "learning_curves.png"))
    return record


def train_on(
    cfg: GeneralizationConfig,
    out: str,
    updates: int,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train every model of a finished `run_generalization` folder `updates` updates more
    (no stop at success; fresh data), then test it again at every test length.

    Adds `record["train_on"][str(updates)] = {"training", "tests", "models"}` to
    generalization.json; resumable like the first stage (checkpoint train-on-<N>.npz).

    Examples:
      >>> # not run: trains for minutes; `python scripts/generalize.py --train-on N` runs it
      >>> from pascanu_jax.experiments.generalization import PRESETS, train_on  # doctest: +SKIP
      >>> record = train_on(PRESETS["quick"], "runs/generalize-quick", 10_000)  # doctest: +SKIP
    """
    if not isinstance(updates, int) or updates < 1 or updates % cfg.eval_every:
        raise SettingError(
            f"{{train_on}} must be a positive multiple of {{eval_every}} ({cfg.eval_every}), "
            f"got {updates!r}",
            "train_on",
            "eval_every",
        )
    check_int("train_on", updates, 1, MAX_UPDATES, "updates count in int32")
    if cfg.watch_every is not None:
        raise SettingError(
            "{train_on} continues a first-success run; a watched run already trains to "
            "{max_updates}",
            "train_on",
            "watch_every",
        )
    # The first stage, finished if it is not (a finished one only reads its checkpoint).
    record = run_generalization(cfg, out, progress, log)
    path = os.path.join(out, RECORD)
    start = [_load_model(os.path.join(out, record["models"][str(s)])) for s in range(cfg.seeds)]
    # Seeds offset by TRAIN_ON_SEED_OFFSET: data the first stage never drew.
    runs = [RunSpec(cfg.init, cfg.run_method(), TRAIN_ON_SEED_OFFSET + s) for s in range(cfg.seeds)]
    ckpt = os.path.join(out, f"train-on-{updates}.npz")
    result = _train_stage(cfg, updates, runs, ckpt, progress, start=start)
    if log is not None:
        log(_training_line(result.runs, f"training {updates:,} updates more"))
    stage = record.setdefault("train_on", {}).setdefault(str(updates), {})
    if not isinstance(stage, dict) or (stage and not _stage_done(stage, out, cfg.seeds)):
        warn(f"{path}: stage train_on {updates}: damaged or missing entries; rewriting it")
        stage = record["train_on"][str(updates)] = {"tests": _valid_tests(stage.get("tests"), cfg)}
    if "models" not in stage:
        stage["training"] = [{**r, "seed": s} for s, r in enumerate(result.runs)]
        stage["models"] = _save_models(out, result.params, f"-on{updates}")
        stage.setdefault("tests", [])
    stage.setdefault("provenance", provenance(train_wall_s=result.wall_s))
    _test_all(cfg, result.params, stage["tests"], lambda: write_json(path, record), progress, log)
    write_json(path, record)
    plot_generalization(record, os.path.join(out, "generalization.png"))
    return record


def run_watch(
    cfg: GeneralizationConfig,
    out: str,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
    time_limit: float | None = None,
) -> dict:
    """Train every seed to max_updates (or until it generalises), watched every
    cfg.watch_every updates (`watch.py`); resumable from train-state.npz, which carries the
    watch too. time_limit (seconds) pauses training cleanly after the call that passes it.

    Writes and returns generalization.json: settings, provenance, segments (which commit
    and device trained which updates), status ("complete" or "paused"), training (per
    seed), models {name: file}, tests [{seed, length, error, model, updates, kind}],
    snapshots, general_at {seed: first update of a model with 0 errors at every test
    length, or None}, best, watch (per seed and watch point: the error at each watched
    length and the in-range check), cost (training and watching seconds). Also
    watch.png, diagnostics.csv and learning_curves.png.

    Examples:
      >>> # not run: trains for hours; `python scripts/generalize.py --preset watch` runs it
      >>> from pascanu_jax.experiments.generalization import PRESETS, run_watch  # doctest: +SKIP
      >>> record = run_watch(PRESETS["watch"], "runs/generalize-watch",
      ...     time_limit=3600)  # doctest: +SKIP
    """
    if cfg.watch_every is None:
        raise SettingError("{watch_every} must be set to watch a run", "watch_every")
    provenance()  # reads the checkout's state now, before anything changes it
    open_folder(out, cfg, legacy=_legacy_settings)
    mesh = run_mesh()
    runs = [RunSpec(cfg.init, cfg.run_method(), s) for s in range(cfg.seeds)]
    watch = Watch(cfg, range(cfg.seeds), out, mesh, log)
    result = _train_stage(
        cfg, cfg.max_updates, runs, os.path.join(out, "train-state.npz"), progress,
        watch=watch, time_limit=time_limit, mesh=mesh,
    )  # fmt: skip
    if result.complete:
        watch.finish()
    done = [r["updates"] for r in result.runs]
    record = {
        "settings": cfg.settings(),
        "provenance": provenance(train_wall_s=result.wall_s),
        "status": "complete" if result.complete else f"paused at {min(done):,} updates",
        "segments": result.segments,
        "training": result.runs,
        **watch.summary(),
        "cost": {
            "wall_s": result.wall_s,
            "watch_s": watch.seconds,
            # of the training time proper (the runner's wall time holds the watch's)
            "watch_fraction": watch.seconds / max(result.wall_s - watch.seconds, 1e-9),
            "final_tests_s": watch.final_seconds,
        },
    }
    write_json(os.path.join(out, RECORD), record)
    write_atomic(os.path.join(out, "diagnostics.csv"), diagnostics_csv(result.diagnostics))
    plot_learning_curves(result.diagnostics, cfg, os.path.join(out, "learning_curves.png"))
    plot_watch(record, os.path.join(out, "watch.png"))
    return record


def _train_stage(
    cfg, updates: int, runs, ckpt: str, progress, start=None, watch=None, time_limit=None, mesh=None
) -> EngineResult:
    """Train `runs` on cfg's lengths for at most `updates` updates (checkpoint `ckpt`);
    from `start` (one params dict per run) and without stopping at success when given, or
    watched by `watch` (no stop at success; one compiled call per watch interval)."""
    engine = EngineConfig(
        cfg.task,
        cfg.train_lengths,
        max_updates=updates,
        eval_every=cfg.eval_every,
        periods_per_call=(
            cfg.periods_per_call if watch is None else cfg.watch_every // cfg.eval_every
        ),
        success=cfg.success,
        stop_on_success=start is None and watch is None,
    )
    report = None if progress is None else (lambda d, t: progress("train", d, t))
    return train(
        engine,
        runs,
        checkpoint=ckpt,
        progress=report,
        measure_eval=False,
        start_params=start,
        observer=watch,
        time_limit=time_limit,
        mesh=mesh,
    )


def _save_models(out: str, params: list, suffix: str) -> dict[str, str]:
    """Each run's params as out/model-seed<N><suffix>.npz; {seed: file name}."""
    names = {}
    for seed, p in enumerate(params):
        names[str(seed)] = f"model-seed{seed}{suffix}.npz"
        save_npz(os.path.join(out, names[str(seed)]), p)
    return names


def _load_model(path: str) -> dict:
    """A model file's arrays; a missing or damaged file is an OutputFolderError."""
    try:
        arrays = load_npz(path)
    except (OSError, CheckpointError) as e:
        raise OutputFolderError(f"model {path} cannot be read ({e})") from e
    return arrays


def _training_line(runs: list[dict], what: str) -> str:
    solved = sum(r["solved"] for r in runs)
    updates = ", ".join(f"{r['updates']:,}" for r in runs)
    return f"{what} done: {solved}/{len(runs)} seeds solved (updates: {updates})"


def _test_all(cfg, params: list, tests: list, save: Callable[[], None], progress, log=None):
    """Append {seed, length, error} to `tests` for every pair not yet in it, saving each."""
    is_tanh = np.bool_(get_scheme(cfg.init).activation == "tanh")
    todo = [
        (s, L)
        for s in range(cfg.seeds)
        for L in cfg.test_lengths
        if not any(t["seed"] == s and t["length"] == L for t in tests)
    ]
    for i, (seed, length) in enumerate(todo):
        if progress is not None:
            progress("test", i, len(todo))
        key = jax.random.fold_in(jax.random.PRNGKey(seed), TEST_KEY_OFFSET + length)
        error = float(
            misclassified_fraction(
                cfg.task, (length, length + 1), params[seed], is_tanh, key, cfg.test_size
            )
        )
        tests.append({"seed": seed, "length": length, "error": error})
        save()
        if log is not None:
            log(f"tested seed {seed} at length {length}: {100 * error:.2f}% misclassified "
                f"({i + 1} of {len(todo)})")  # fmt: skip
    if progress is not None:
        progress("test", len(todo), len(todo))


def diagnostics_csv(rows: list[dict]) -> str:
    """The engine's per-evaluation diagnostics as CSV text.

    Examples:
      >>> from pascanu_jax.experiments.generalization import DIAGNOSTICS, diagnostics_csv
      >>> row = {"seed": 0, "updates": 1000, **{name: 0.5 for name in DIAGNOSTICS}}
      >>> print(diagnostics_csv([row]), end="")
      seed,updates,loss,grad_norm,clipped_fraction,nonfinite,omega,spectral_radius,error
      0,1000,0.5,0.5,0.5,0.5,0.5,0.5,0.5
    """
    fields = ["seed", "updates", *DIAGNOSTICS]
    lines = [",".join(fields)]
    lines += [",".join(str(r[f]) for f in fields) for r in rows]
    return "\n".join(lines) + "\n"


def plot_learning_curves(rows: list[dict], cfg: GeneralizationConfig, path: str) -> None:
    """Training loss and screening error against updates, one line per seed.

    Examples:
      >>> from pascanu_jax.experiments.generalization import DIAGNOSTICS, PRESETS
      >>> from pascanu_jax.experiments.generalization import plot_learning_curves
      >>> rows = [{"seed": 0, "updates": u,
      ...     **{name: 1.0 / u for name in DIAGNOSTICS}} for u in (100, 200, 300)]
      >>> plot_learning_curves(rows, PRESETS["quick"], "learning_curves.png")
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    for seed in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == seed]
        x = [r["updates"] for r in mine]
        axes[0].plot(x, [r["loss"] for r in mine], lw=0.8, label=f"seed {seed}")
        axes[1].plot(x, [100 * r["error"] for r in mine], lw=0.8, label=f"seed {seed}")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training loss (mean over the interval)")
    axes[1].set_ylabel(f"misclassified of {cfg.task.name} screen (%)")
    for ax in axes:
        ax.set_xlabel("updates")
    axes[1].legend(fontsize=8)
    lo, hi = cfg.train_lengths
    fig.suptitle(
        f"{cfg.task.name}: {cfg.init} + {cfg.run_method().name}, lengths drawn from [{lo}, {hi})",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, os.path.dirname(path) or ".", os.path.splitext(os.path.basename(path))[0])


def plot_generalization(record: dict, path: str) -> None:
    """Misclassified fraction against test length, one line per seed (solid: at the first
    success; dashed: after each `train_on` stage).

    Examples:
      >>> import json
      >>> from pascanu_jax.experiments.generalization import plot_generalization
      >>> record = json.load(open("docs/results/generalization_quick/generalization.json"))
      >>> plot_generalization(record, "generalization.png")
    """
    from matplotlib.figure import Figure

    s = record["settings"]
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    solved = {r["seed"]: r["solved"] for r in record["training"]}
    stages = sorted(record.get("train_on", {}).items(), key=lambda kv: int(kv[0]))
    for i, seed in enumerate(sorted({t["seed"] for t in record["tests"]})):
        color = f"C{i % 10}"
        label = f"seed {seed}" + ("" if solved.get(seed, True) else " (not solved)")
        for n, (name, tests) in enumerate(
            [("", record["tests"])] + [(f"+{int(k):,}", stage["tests"]) for k, stage in stages]
        ):
            points = sorted((t["length"], t["error"]) for t in tests if t["seed"] == seed)
            if not points:
                continue
            lengths, errors = zip(*points, strict=True)
            style = "o-" if n == 0 else "s--"
            tag = label if n == 0 else f"seed {seed}, {name} updates more"
            ax.plot(lengths, 100 * np.asarray(errors), style, color=color, label=tag, ms=4)
    lo, hi = s["train_lengths"]
    ax.axvspan(lo, hi - 1, color="0.9", label="training lengths")
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label="success threshold (1%)")
    ax.set_xscale("log")
    ax.set_xlabel("test sequence length")
    ax.set_ylabel(f"misclassified of {s['test_size']:,} (%)")
    ax.set_title(
        f"{s['task']}: {s['init']} + {s['method']}"
        + ("" if s.get("alpha") is None else f" (alpha {s['alpha']:g})")
        + f" trained on [{lo}, {hi})\n"
        "generalisation to unseen lengths (Pascanu et al. 2013, §4.1.1)",
        fontsize=10,
    )
    ax.legend(fontsize=7, ncol=2 if stages else 1)
    fig.tight_layout()
    save_figure(fig, os.path.dirname(path) or ".", os.path.splitext(os.path.basename(path))[0])


def table(record: dict) -> str:
    """A text table: test length against each seed's misclassified percentage (of a
    record, or of one of its record["train_on"] stages).

    Examples:
      >>> import json
      >>> from pascanu_jax.experiments.generalization import table
      >>> record = json.load(open("docs/results/generalization_quick/generalization.json"))
      >>> print(table(record))
      length     seed 0    seed 1
          10     49.46%     0.51%
          20      0.00%     0.00%
          30      0.00%     0.00%
          50      0.00%     0.00%
         100      9.57%     9.07%
         200     44.50%    34.52%
         500     74.21%    65.38%
    """
    seeds = sorted({t["seed"] for t in record["tests"]})
    lengths = sorted({t["length"] for t in record["tests"]})
    err = {(t["seed"], t["length"]): t["error"] for t in record["tests"]}
    lines = ["length " + "".join(f"{'seed ' + str(s):>10}" for s in seeds)]
    for L in lengths:
        lines.append(f"{L:>6} " + "".join(f"{100 * err[(s, L)]:>9.2f}%" for s in seeds))
    return "\n".join(lines)
