"""The host side of the engine: resumable training of runs to success or the budget.

`train` builds every run's initial parameters from its seed, places the runs on the
device mesh, compiles the programs of `engine.py` once (training call, 10,000-sequence
check, screen), then loops: one compiled call, candidates checked, solved and exhausted
runs finished, a checkpoint written. Python runs once per compiled call, never per update.

An `Observer` (the §4.1.1 watch) may look at every run after each call, finish runs, and
keep state that the checkpoint carries. Each start of `train` on a checkpoint is a
*segment*, recorded with the code, software and devices that trained it: a campaign longer
than one working stretch resumes from its committed checkpoint, and its record says which
commit and device trained which updates.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import jax
import numpy as np

from pascanu_jax.clipping import MeanNormClipState
from pascanu_jax.experiments.distributed import check_process_count, process_count
from pascanu_jax.experiments.engine import (
    DIAGNOSTICS,
    Diagnostics,
    EngineConfig,
    RunConstants,
    RunSpec,
    TrainState,
    confirm_key,
    misclassified_fraction,
    run_keys,
    screen_all,
    train_call,
)
from pascanu_jax.experiments.sharding import padded_runs, run_mesh, to_devices, to_host
from pascanu_jax.initializers import get_scheme, init_rnn
from pascanu_jax.methods import (
    Method,
    UpdateRule,
    clip_state,
    get_method,
    method_transform,
)
from pascanu_jax.outputs.checkpoint import (
    CheckpointError,
    arrays_to_tree,
    load_arrays,
    save_arrays,
    tree_to_arrays,
)
from pascanu_jax.outputs.folder import (
    OutputFolderError,
    defaults_of,
    describe_differences,
    differences,
    settings_of,
    to_json,
    warn,
)
from pascanu_jax.outputs.provenance import provenance


class Observer(Protocol):
    """Looks at the runs after every compiled call of `train` (host side).

    identity() is JSON that a checkpoint must have been written for (with the engine's).
    observe(updates, params, finished) sees every run's update count (numpy, padded to
    the device count), parameters (global arrays sharded over the run axis) and whether
    the run is already finished; it returns a bool mask of runs to finish now.
    state() -> (arrays, meta) is what the checkpoint carries for it; load(arrays, meta)
    restores it (a KeyError, ValueError or TypeError: the checkpoint is damaged).
    """

    def identity(self) -> dict: ...

    def observe(self, updates: np.ndarray, params: dict, finished: np.ndarray) -> np.ndarray: ...

    def state(self) -> tuple[dict[str, np.ndarray], dict]: ...

    def load(self, arrays: dict[str, np.ndarray], meta: dict) -> None: ...


@dataclasses.dataclass
class EngineResult:
    """What `train` returns.

    runs: one dict per RunSpec (init, method, seed, solved, updates, error, wall_s).
    params: each run's final parameters (numpy).
    diagnostics: one dict per run and period (init, method, seed, updates, DIAGNOSTICS).
    compile_s, wall_s, eval_s: seconds; eval_s counts the 10,000-sequence checks as
    measured and the screens as estimated from a timed screen of all runs. wall_s and
    eval_s are those of the whole training, the segments of earlier processes included
    (read from the checkpoint); compile_s is this process's.
    periods: evaluation periods run.
    segments: one dict per start of training on this checkpoint (`provenance()` of that
      process, the updates it started and ended at, its wall time, and the device the
      checkpoint was written on when that differs).
    complete: False when `time_limit` paused training before every run finished.
    """

    runs: list[dict]
    params: list[dict]
    diagnostics: list[dict]
    compile_s: float
    wall_s: float
    eval_s: float
    periods: int
    segments: list[dict] = dataclasses.field(default_factory=list)
    complete: bool = True


def initial_params(cfg: EngineConfig, spec: RunSpec) -> dict:
    """The parameters a run starts from (the same for every method of one seed).

    Examples:
      >>> from pascanu_jax.experiments.runner import initial_params
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 11))
      >>> a = initial_params(cfg, pj.RunSpec("basic_tanh", "MSGD", seed=3))
      >>> b = initial_params(cfg, pj.RunSpec("basic_tanh", "MSGD-CR", seed=3))
      >>> all(np.array_equal(a[k], b[k]) for k in a)  # paired: one draw per seed
      True
    """
    key = run_keys(spec.seed, cfg.lengths[0])["init"]
    return init_rnn(key, get_scheme(spec.init), cfg.task.n_in, cfg.n_hidden, cfg.task.n_out)


def initial_state(
    cfg: EngineConfig,
    runs: Sequence[RunSpec],
    n_total: int,
    start_params: Sequence[dict] | None = None,
):
    """Host (numpy) constants, state and confirm keys, padded to n_total runs. Parameters
    come from `start_params` (one dict per run) when given, else from `initial_params`.

    Examples:
      >>> from pascanu_jax.experiments.runner import initial_state
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 11))
      >>> runs = [pj.RunSpec("basic_tanh", m, seed=0) for m in pj.METHODS]
      >>> const, state, confirm_keys = initial_state(cfg, runs, 4)  # padded to 4 runs
      >>> const.threshold, state.params["W_rec"].shape
      (array([inf,  1.,  1., inf], dtype=float32), (4, 50, 50))
      >>> const.hyper  # the learning rate of every run: the optimizer's hyperparameters
      {'learning_rate': array([0.01, 0.01, 0.01, 0.01], dtype=float32)}
    """
    consts, states, confirm = [], [], []
    if start_params is not None and len(start_params) != len(runs):
        raise ValueError(f"start_params: {len(start_params)} parameter sets for {len(runs)} runs")
    rule = program_rule(runs)
    for i, spec in enumerate(runs):
        scheme, method = get_scheme(spec.init), get_method(spec.method)
        keys = run_keys(spec.seed, cfg.lengths[0])
        params = (
            initial_params(cfg, spec)
            if start_params is None
            else {k: np.asarray(v, np.float32) for k, v in start_params[i].items()}
        )
        hyper = {k: np.float32(v) for k, v in method.numbers(cfg.learning_rate).items()}
        measure = np.int32(method.measure)
        tx = method_transform(
            rule, hyper, threshold=method.threshold, guard=method.guard, measure=max(measure, 1)
        )
        consts.append(
            RunConstants(
                np.bool_(scheme.activation == "tanh"),
                np.float32(method.threshold),
                np.float32(method.alpha),
                np.bool_(method.guard),
                keys["data"],
                keys["screen"],
                hyper,
                measure,
            )
        )
        states.append(
            TrainState(params, tx.init(params), np.int32(0), np.bool_(True), np.bool_(False))
        )
        confirm.append(keys["confirm"])
    pad = n_total - len(runs)  # padding runs copy run 0 and never train
    consts += consts[:1] * pad
    states += [states[0]._replace(active=np.bool_(False))] * pad
    confirm += confirm[:1] * pad
    stack = lambda xs: jax.tree.map(lambda *a: np.stack([np.asarray(x) for x in a]), *xs)  # noqa: E731
    return stack(consts), stack(states), np.stack([np.asarray(k) for k in confirm])


def train(
    cfg: EngineConfig,
    runs: Sequence[RunSpec],
    *,
    checkpoint: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    mesh=None,
    measure_eval: bool = True,
    start_params: Sequence[dict] | None = None,
    observer: Observer | None = None,
    time_limit: float | None = None,
) -> EngineResult:
    """Train `runs` to success or the budget, all in parallel; see the module docstring.

    Runs whose methods share an `UpdateRule` (the paper's three do) train in one compiled
    program; each further rule (Adam, element-wise clipping, ...) is a program of its own,
    trained after the one before, with its own checkpoint (`checkpoint_paths`). Results,
    parameters and diagnostics come back in the order of `runs` whatever the grouping, and
    equal what each run would give in a program of its own rule alone.

    checkpoint: path of an .npz written after every compiled call; if it exists, training
      resumes from it and ends exactly as an uninterrupted run would.
    progress: called with (updates done, updates in the budget) after every call.
    mesh: a 1-D device mesh for the run axis (default: all devices).
    start_params: each run's starting parameters (default: drawn from its seed).
    observer: looks at the runs after every call (see `Observer`); its state is checkpointed.
    time_limit: seconds; after the first call that ends past it, write the checkpoint and
      return with `complete` False (a later call with the same checkpoint resumes).

    Examples:
      >>> # not run: compiles and trains for seconds; the library guide's engine example runs it
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 11),
      ...     max_updates=600)  # doctest: +SKIP
      >>> result = pj.train(cfg, [pj.RunSpec("smart_tanh", "MSGD-CR", seed=0)])  # doctest: +SKIP
      >>> result.runs[0]["solved"]  # doctest: +SKIP
    """
    if not runs:
        raise ValueError("no runs to train")
    groups: dict[UpdateRule, list[int]] = {}
    for i, r in enumerate(runs):
        groups.setdefault(get_method(r.method).rule, []).append(i)
    if len(groups) == 1:
        return _train_program(
            cfg,
            runs,
            next(iter(groups)),
            checkpoint=checkpoint,
            progress=progress,
            mesh=mesh,
            measure_eval=measure_eval,
            start_params=start_params,
            observer=observer,
            time_limit=time_limit,
        )
    if observer is not None:
        raise ValueError(
            "an observer watches one program: its runs' methods must share an optimizer and "
            f"clipping rule, got {len(groups)} ({', '.join(map(_rule_name, groups))})"
        )
    called = time.perf_counter()
    paths = checkpoint_paths(checkpoint, runs)
    budget, done_before, parts = cfg.max_updates * len(runs), 0, []
    for (rule, index), path in zip(groups.items(), paths, strict=True):
        report = (
            None
            if progress is None
            else (lambda done, _b, base=done_before: progress(base + done, budget))
        )
        left = None if time_limit is None else max(time_limit - (time.perf_counter() - called), 0)
        part = _train_program(
            cfg,
            [runs[i] for i in index],
            rule,
            checkpoint=path,
            progress=report,
            mesh=mesh,
            measure_eval=measure_eval,
            start_params=None if start_params is None else [start_params[i] for i in index],
            observer=None,
            time_limit=left,
        )
        parts.append((index, part))
        done_before += cfg.max_updates * len(index)
        if not part.complete:
            break
    order = {}
    for index, part in parts:
        for j, i in enumerate(index):
            order[i] = (part.runs[j], part.params[j])
    trained = sorted(order)
    return EngineResult(
        [order[i][0] for i in trained],
        [order[i][1] for i in trained],
        [d for _, part in parts for d in part.diagnostics],
        sum(part.compile_s for _, part in parts),
        # Each program's own clock carries its earlier segments: a length resumed across
        # sessions, or a program restored finished, counts what it took, not only this call.
        sum(part.wall_s for _, part in parts),
        sum(part.eval_s for _, part in parts),
        sum(part.periods for _, part in parts),
        [{**seg, "program": k} for k, (_, part) in enumerate(parts) for seg in part.segments],
        len(parts) == len(groups) and all(part.complete for _, part in parts),
    )


def program_rule(runs: Sequence[RunSpec]) -> UpdateRule:
    """The `UpdateRule` that every run's method shares (ValueError when they differ: such
    runs are programs of their own, which `train` makes).

    Examples:
      >>> from pascanu_jax.experiments.runner import program_rule
      >>> program_rule([pj.RunSpec("basic_tanh", m, 0) for m in pj.METHODS])
      UpdateRule(optimizer='sgd', clip='norm', flags=(), optional=())
    """
    rules = list(dict.fromkeys(get_method(r.method).rule for r in runs))
    if len(rules) != 1:
        raise ValueError(
            f"one program trains runs of one update rule, got {len(rules)}: "
            + ", ".join(map(_rule_name, rules))
        )
    return rules[0]


def checkpoint_paths(checkpoint: str | None, runs: Sequence[RunSpec]) -> list[str | None]:
    """The checkpoint of each program of `train(..., checkpoint=checkpoint)`: the path
    itself for the first rule (so a sweep of the paper's methods keeps its one file), then
    `<stem>.<k><ext>` for the k-th further rule, in the order the runs name them.

    Examples:
      >>> from pascanu_jax.experiments.runner import checkpoint_paths
      >>> runs = [pj.RunSpec("basic_tanh", m, 0) for m in ("MSGD", "adam:lr=1e-3", "MSGD-CR")]
      >>> checkpoint_paths("out/ckpt-L50.npz", runs)
      ['out/ckpt-L50.npz', 'out/ckpt-L50.1.npz']
    """
    rules = list(dict.fromkeys(get_method(r.method).rule for r in runs))
    if checkpoint is None:
        return [None] * len(rules)
    stem, ext = os.path.splitext(checkpoint)
    return [checkpoint, *(f"{stem}.{k}{ext}" for k in range(1, len(rules)))]


def shared_numbers(cfg: EngineConfig, runs: Sequence[RunSpec]) -> tuple[tuple[str, float], ...]:
    """The hyperparameters that every run's method gives the same value (`Method.numbers`
    at the engine's learning rate), as (name, value) pairs: the program compiles them in
    as numbers, as it always did the paper's learning rate, and keeps the others as data.

    Examples:
      >>> from pascanu_jax.experiments.runner import shared_numbers
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 11))
      >>> shared_numbers(cfg, [pj.RunSpec("basic_tanh", m, 0) for m in pj.METHODS])
      (('learning_rate', 0.01),)
      >>> runs = [pj.RunSpec("basic_tanh", f"adam:lr={lr}", 0) for lr in (1e-3, 1e-2)]
      >>> [name for name, _ in shared_numbers(cfg, runs)]  # the learning rate is data
      ['b1', 'b2', 'eps', 'eps_root']
    """
    numbers = [get_method(r.method).numbers(cfg.learning_rate) for r in runs]
    return tuple(
        (name, value)
        for name, value in numbers[0].items()
        if all(n[name] == value for n in numbers[1:])
    )


def _rule_name(rule: UpdateRule) -> str:
    flags = "".join(f"+{n}={'on' if v else 'off'}" for n, v in rule.flags)
    return f"{rule.optimizer}/{rule.clip}{flags}" + "".join(f"+{n}" for n in rule.optional)


def _train_program(
    cfg: EngineConfig,
    runs: Sequence[RunSpec],
    rule: UpdateRule,
    *,
    checkpoint: str | None,
    progress: Callable[[int, int], None] | None,
    mesh,
    measure_eval: bool,
    start_params: Sequence[dict] | None,
    observer: Observer | None,
    time_limit: float | None,
) -> EngineResult:
    """`train` for runs that share `rule`: one compiled program."""
    called = time.perf_counter()
    if not runs:
        raise ValueError("no runs to train")
    mesh = mesh or run_mesh()
    n_real, n_total = len(runs), padded_runs(len(runs), mesh)
    const_np, state_np, confirm_keys = initial_state(cfg, runs, n_total, start_params)
    host = {
        "finished": np.arange(n_total) >= n_real,
        "solved": np.zeros(n_total, bool),
        "error": np.full(n_total, np.nan),
        "wall": np.full(n_total, np.nan),
    }
    rows = np.zeros((0, 2 + len(DIAGNOSTICS)))
    identity = checkpoint_identity(cfg, runs, observer)
    elapsed = eval_s = 0.0
    periods = 0
    segments: list[dict] = []
    if checkpoint is not None and os.path.exists(checkpoint):
        restored = _restore(checkpoint, identity, cfg, runs, state_np, host, observer)
        if restored is not None:
            state_np, host, rows, (elapsed, eval_s, periods), segments = restored
    segment = _segment(segments, checkpoint, int(state_np.updates.max()))
    if not host["finished"].all():  # a finished checkpoint trains nothing more
        segments = [*segments, segment]

    const = to_devices(const_np, mesh)
    state = to_devices(state_np, mesh)
    start = time.perf_counter()
    compiled = confirm = screen = None
    if not host["finished"].all():  # a finished checkpoint needs no compile
        constants = shared_numbers(cfg, runs)
        compiled = train_call.lower(
            cfg, const, state, mesh=mesh, rule=rule, constants=constants
        ).compile()
        one_run = jax.tree.map(lambda x: x[0], state_np.params)
        confirm = misclassified_fraction.lower(
            cfg.task, cfg.lengths, one_run, const_np.is_tanh[0], confirm_keys[0], cfg.confirm_size
        ).compile()
        screen = screen_all.lower(cfg, const, state).compile() if measure_eval else None
    compile_s = time.perf_counter() - start
    screen_s = 0.0 if screen is None else _time_screen(screen, const, state)
    start = time.perf_counter() - elapsed
    is_tanh = const_np.is_tanh
    budget = cfg.max_updates * n_real

    while True:
        updates = to_host(state.updates)
        done = int(np.where(host["finished"], cfg.max_updates, updates)[:n_real].sum())
        if progress is not None:
            progress(done, budget)
        if host["finished"].all():
            break
        state, diag, p = compiled(const, state)
        p = int(p)
        periods += p
        diag = to_host(diag)
        rows = np.concatenate([rows, _rows(diag, p)])
        if observer is not None:
            stop = observer.observe(to_host(state.updates), state.params, host["finished"])
            if stop.any():  # inactive and no candidate: `_settle` checks and finishes them
                state = state._replace(
                    active=to_devices(to_host(state.active) & ~stop, mesh),
                    candidate=to_devices(to_host(state.candidate) & ~stop, mesh),
                )
        t0 = time.perf_counter()
        state, host = _settle(
            cfg, confirm, state, host, confirm_keys, is_tanh, mesh, time.perf_counter() - start
        )
        eval_s += time.perf_counter() - t0 + p * screen_s
        segment["to_updates"] = int(to_host(state.updates).max())
        segment["wall_s"] = time.perf_counter() - called
        if checkpoint is not None:
            watched = ({}, None) if observer is None else observer.state()
            save_arrays(
                checkpoint,
                {
                    **tree_to_arrays(to_host(state), "state"),
                    **{f"host/{k}": v for k, v in host.items()},
                    "rows": rows,
                    **{f"observer/{k}": v for k, v in watched[0].items()},
                },
                {
                    "identity": identity,
                    "elapsed": time.perf_counter() - start,
                    "eval_s": eval_s,
                    "periods": periods,
                    "processes": process_count(),
                    "segments": segments,
                    **({} if observer is None else {"observer": watched[1]}),
                },
            )
        if time_limit is not None and time.perf_counter() - called > time_limit:
            break

    updates = to_host(state.updates)
    nonfinite = to_host(clip_state(state.opt_state).nonfinite)
    measured = _measured(to_host(state.opt_state))
    results = [
        {
            "init": r.init,
            "method": get_method(r.method).name,
            "seed": r.seed,
            "solved": bool(host["solved"][i]),
            "updates": int(updates[i]),
            "error": float(host["error"][i]),
            "nonfinite": int(nonfinite[i]),
            "wall_s": float(host["wall"][i]),
            **({} if measured is None else {k: float(v[i]) for k, v in measured.items()}),
        }
        for i, r in enumerate(runs)
    ]
    diagnostics = [
        {
            "init": runs[int(row[0])].init,
            "method": get_method(runs[int(row[0])].method).name,
            "seed": runs[int(row[0])].seed,
            "updates": int(row[1]),
            **{name: float(v) for name, v in zip(DIAGNOSTICS, row[2:], strict=True)},
        }
        for row in rows
        if int(row[0]) < n_real
    ]
    final = to_host(state.params)
    params = [jax.tree.map(lambda x, i=i: x[i], final) for i in range(n_real)]
    return EngineResult(
        results,
        params,
        diagnostics,
        compile_s,
        time.perf_counter() - start,
        eval_s,
        periods,
        segments,
        bool(host["finished"].all()),
    )


def _measured(opt_state) -> dict[str, np.ndarray] | None:
    """§3.2's measurement of each run (`clip_by_mean_norm`): the mean norm of its first
    updates ("measured_norm") and the threshold set from it ("clip_threshold"), or None."""
    found = [
        x
        for x in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, MeanNormClipState))
        if isinstance(x, MeanNormClipState)
    ]
    if not found:
        return None
    return {"measured_norm": found[0].measured, "clip_threshold": found[0].threshold}


def checkpoint_identity(
    cfg: EngineConfig, runs: Sequence[RunSpec], observer: Observer | None = None
) -> dict:
    """What a checkpoint must have been written for: the engine's settings (field by
    field, `settings_of`), the runs and the observer's identity (when there is one).

    Examples:
      >>> from pascanu_jax.experiments.runner import checkpoint_identity
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 11))
      >>> sorted(checkpoint_identity(cfg, [pj.RunSpec("basic_tanh", "MSGD", seed=0)]))
      ['config', 'runs']
    """
    identity = {"config": settings_of(cfg), "runs": [to_json(r) for r in runs]}
    return identity if observer is None else {**identity, "observer": observer.identity()}


def _same_runs(saved: object, runs: list) -> bool:
    """Whether a checkpoint's runs are `runs` (both as JSON). A `Method` field the
    checkpoint lacks counts as its default, so a checkpoint written before that field
    existed still resumes (the paper's methods gained `optimizer`, `clip`, ... with the
    values that reproduce them)."""
    if not isinstance(saved, list) or len(saved) != len(runs):
        return False
    method_defaults = {"method": defaults_of(Method)}
    return all(
        isinstance(old, dict)
        and isinstance(new, dict)
        and isinstance(old.get("method"), dict) == isinstance(new.get("method"), dict)
        and not differences(old, new, method_defaults)
        for old, new in zip(saved, runs, strict=True)
    )


def _segment(earlier: list[dict], checkpoint: str | None, updates: int) -> dict:
    """The record of this start of training: provenance, the updates it starts at, and the
    device of the checkpoint's last segment when it differs from this process's (one
    warning line: numerics differ by rounding between device counts and kinds)."""
    here = provenance()
    segment = {
        **{k: here[k] for k in ("commit", "dirty", "jax", "jaxlib", "device", "processes")},
        "platform": here["platform"],
        "started": here["written"],
        "from_updates": updates,
        "to_updates": updates,
        "wall_s": 0.0,
    }
    before = earlier[-1].get("device") if earlier and isinstance(earlier[-1], dict) else None
    if before is not None and before != here["device"]:
        warn(
            f"checkpoint {checkpoint} was written on {before} and resumes on {here['device']}: "
            "the rounding of the training numerics differs between device counts and kinds, "
            "so from here the runs will not equal an uninterrupted run on either "
            "(the segment records it)"
        )
        segment["resumed_from_device"] = before
    return segment


def _restore(path, identity, cfg, runs, state_np, host, observer=None):
    """(state, host, rows, (elapsed, eval_s, periods), segments) from checkpoint `path`, or
    None (with a warning line) when it is damaged: training starts over. A checkpoint of
    other settings is refused (OutputFolderError naming it and the differing settings)."""
    try:
        arrays, meta = load_arrays(path)
        saved = meta.get("identity")
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), (dict, str)):
            raise CheckpointError(f"checkpoint {path} is damaged (no identity)")
    except CheckpointError as e:
        warn(f"{e}; training these runs from the start")
        return None
    check_process_count(meta.get("processes"), f"checkpoint {path}")
    if isinstance(saved["config"], str):  # written before identities were settings
        old = {"config": repr(cfg), "runs": [repr(r) for r in runs]}
        diffs = [] if saved == old else [("identity", "an older version's", "this one's")]
    else:
        diffs = differences(saved["config"], identity["config"], defaults_of(EngineConfig))
        if not _same_runs(saved.get("runs"), identity["runs"]):
            diffs.append(("runs", saved.get("runs"), identity["runs"]))
        if "observer" in saved or "observer" in identity:
            diffs += differences(
                {"observer": saved.get("observer")}, {"observer": identity.get("observer")}
            )
    if diffs:
        raise OutputFolderError(
            f"checkpoint {path} was written for another configuration "
            f"({describe_differences(diffs)}); "
            "delete it to train these runs from the start"
        )
    try:
        state = arrays_to_tree(arrays, "state", state_np)
        restored_host = {k: np.asarray(arrays[f"host/{k}"]) for k in host}
        for k, v in host.items():
            if restored_host[k].shape != v.shape:
                raise ValueError(f"host/{k} has shape {restored_host[k].shape}")
        rows = np.asarray(arrays["rows"], np.float64)
        if rows.ndim != 2 or rows.shape[1] != 2 + len(DIAGNOSTICS):
            raise ValueError(f"rows have shape {rows.shape}")
        times = (float(meta["elapsed"]), float(meta["eval_s"]), int(meta["periods"]))
        segments = meta.get("segments", [])
        if not isinstance(segments, list):
            raise ValueError("its segments are not a list")
        if observer is not None:
            prefix = "observer/"
            observer.load(
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)},
                meta["observer"],
            )
    except (KeyError, ValueError, TypeError) as e:
        warn(f"checkpoint {path} is damaged ({e}); training these runs from the start")
        return None
    return state, restored_host, rows, times, segments


def _time_screen(screen: Callable, const: RunConstants, state: TrainState) -> float:
    """Seconds one screen of all runs takes (best of two calls of the compiled screen)."""
    best = np.inf
    for _ in range(2):
        start = time.perf_counter()
        jax.block_until_ready(screen(const, state))
        best = min(best, time.perf_counter() - start)
    return best


def _rows(diag: Diagnostics, periods: int) -> np.ndarray:
    """Diagnostic rows [run, updates, *DIAGNOSTICS] of the runs that trained."""
    d = jax.tree.map(lambda x: x[:periods], diag)
    p_idx, r_idx = np.nonzero(d.trained)
    if len(p_idx) == 0:
        return np.zeros((0, 2 + len(DIAGNOSTICS)))
    pick = lambda x: np.asarray(x[p_idx, r_idx], np.float64)  # noqa: E731
    W = np.asarray(d.W_rec[p_idx, r_idx], np.float64)
    # A run that diverged (rmsprop at a high rate, say) has no eigenvalues; eig refuses it.
    finite = np.isfinite(W).all(axis=(-2, -1))
    rho = np.full(len(W), np.nan)
    if finite.any():
        rho[finite] = np.max(np.abs(np.linalg.eigvals(W[finite])), -1)
    counted = pick(d.counted)
    cols = [
        r_idx,
        pick(d.updates),
        pick(d.loss),
        np.where(counted > 0, pick(d.norm_sum) / np.maximum(counted, 1), np.nan),
        pick(d.clipped) / np.maximum(pick(d.steps), 1),
        pick(d.nonfinite),
        pick(d.omega),
        rho,
        pick(d.error),
    ]
    return np.stack([np.asarray(c, np.float64) for c in cols], axis=1)


def _settle(cfg, confirm, state, host, confirm_keys, is_tanh, mesh, wall):
    """Confirm candidates on 10,000 sequences; finish solved, exhausted and ruined runs
    (a run that stopped without passing a screen has no budget left or no finite
    parameters: either way it has failed)."""
    active, candidate, updates = (
        to_host(x) for x in (state.active, state.candidate, state.updates)
    )
    todo = np.flatnonzero(~host["finished"] & ~active)
    if len(todo) == 0:
        return state, host
    params = to_host(state.params)
    host = {k: v.copy() for k, v in host.items()}
    active, candidate = active.copy(), candidate.copy()
    for r in todo:
        one = jax.tree.map(lambda x, r=r: x[r], params)
        key = confirm_key(confirm_keys[r], int(updates[r]))
        error = float(confirm(one, is_tanh[r], key))
        finite = all(np.isfinite(x).all() for x in jax.tree.leaves(one))
        passed = finite and error < cfg.success
        if passed or not candidate[r] or updates[r] >= cfg.max_updates:
            host["finished"][r], host["solved"][r] = True, passed
            host["error"][r], host["wall"][r] = error, wall
        else:  # the screen was lucky: train on
            active[r] = True
        candidate[r] = False
    state = state._replace(active=to_devices(active, mesh), candidate=to_devices(candidate, mesh))
    return state, host
