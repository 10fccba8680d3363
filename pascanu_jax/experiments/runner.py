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

from pascanu_jax.experiments.distributed import check_process_count, process_count
from pascanu_jax.experiments.engine import (
    DIAGNOSTICS,
    Diagnostics,
    EngineConfig,
    RunConstants,
    RunSpec,
    TrainState,
    misclassified_fraction,
    run_keys,
    screen_all,
    train_call,
)
from pascanu_jax.experiments.sharding import padded_runs, run_mesh, to_devices, to_host
from pascanu_jax.initializers import get_scheme, init_rnn
from pascanu_jax.methods import clip_state, get_method, sgd_with_clipping
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
    measured and the screens as estimated from a timed screen of all runs.
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
    """
    consts, states, confirm = [], [], []
    if start_params is not None and len(start_params) != len(runs):
        raise ValueError(f"start_params: {len(start_params)} parameter sets for {len(runs)} runs")
    for i, spec in enumerate(runs):
        scheme, method = get_scheme(spec.init), get_method(spec.method)
        keys = run_keys(spec.seed, cfg.lengths[0])
        params = (
            initial_params(cfg, spec)
            if start_params is None
            else {k: np.asarray(v, np.float32) for k, v in start_params[i].items()}
        )
        opt_state = sgd_with_clipping(1.0).init(params)
        consts.append(
            RunConstants(
                np.bool_(scheme.activation == "tanh"),
                np.float32(method.threshold),
                np.float32(method.alpha),
                np.bool_(method.guard),
                keys["data"],
                keys["screen"],
            )
        )
        states.append(TrainState(params, opt_state, np.int32(0), np.bool_(True), np.bool_(False)))
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
        compiled = train_call.lower(cfg, const, state, mesh=mesh).compile()
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
        if saved.get("runs") != identity["runs"]:
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
    rho = np.max(np.abs(np.linalg.eigvals(np.asarray(d.W_rec[p_idx, r_idx], np.float64))), -1)
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
        key = jax.random.fold_in(confirm_keys[r], int(updates[r]))
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
