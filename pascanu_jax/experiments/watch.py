"""The watch over a long training run: which snapshots generalise, and when (§4.1.1).

The paper's model (basic_tanh, MSGD-CR, lengths drawn from [50, 200)) makes 0 errors in
10,000 sequences at every length up to 5000. At learning rate 0.01 training finds the
in-range solution and loses it again and again, so whether a run ends with such a model
depends on when it stops. The watch trains every seed to the budget and, every
`watch_every` updates (a call boundary of `runner.train`: it is an `Observer`), tests
every model on `watch_size` fresh sequences at each watched length, from the shortest to
the longest (the preset: 50, 100, 200, 1000, 5000):

- a snapshot with 0 errors at every watched length is tested on `test_size` sequences at
  every test length and saved (`model-seed<S>-u<N>.npz`); with 0 errors at all of them it
  *generalises*: N is the seed's `general_at`, and the seed stops (`stop_when_general`);
- a snapshot with 0 errors at every watched length but the longest is tested and saved
  the same way ("short") when it makes fewer errors at the longest than the seed's
  earlier short ones: the models right up to 1000 but not 5000, say, and their tests;
- a snapshot with 0 errors at the watched lengths up to the training range's end is
  checked on `confirm_size` sequences drawn from the range (the paper's success test):
  the *in-range check*, marked on the figure where it passes;
- per seed, the best snapshot so far (fewest errors summed over the watched lengths; the
  earlier on a tie) is kept, and when training ends it is tested like a generalising one
  and saved (`model-seed<S>-best.npz`), so a reader also sees the models that are right at
  long lengths only.

Keys are functions of (seed, length, update count): the watch at length L after N updates
draws from fold_in(fold_in(key(seed), WATCH_KEY_OFFSET + L), N), a snapshot's test from
fold_in(fold_in(key(seed), TEST_KEY_OFFSET + L), N), the in-range check from
fold_in(fold_in(key(seed), RANGE_KEY_OFFSET), N). A resumed run draws the same sequences,
and the watch's whole state travels in the training checkpoint.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from pascanu_jax.experiments.engine import count_errors, misclassified_fraction
from pascanu_jax.experiments.sharding import RUN_AXIS, padded_runs, to_devices, to_host
from pascanu_jax.initializers import get_scheme
from pascanu_jax.outputs.checkpoint import save_npz
from pascanu_jax.outputs.figures import save_figure

if TYPE_CHECKING:
    from pascanu_jax.experiments.generalization import GeneralizationConfig

Array = jax.Array
# Offsets folded into a seed's key with the length (see the module docstring). Test keys
# are offset because `engine.run_keys(seed, length)` folds in the bare length, so a test at
# the training length would otherwise reuse its keys.
TEST_KEY_OFFSET = 1_000_003
WATCH_KEY_OFFSET = 2_000_003
RANGE_KEY_OFFSET = 3_000_017


@functools.partial(jax.jit, static_argnums=(0, 1, 5), static_argnames="mesh")
def errors_by_run(
    task, lengths: tuple[int, int], params, is_tanh: Array, keys: Array, n: int, mesh=None
) -> Array:
    """Misclassified of `n` fresh sequences for every run: shape (R,), run r drawing from
    keys[r] (`engine.count_errors`). The runs of a device are tested one after another
    (`lax.map`: one run's states at a time, so length 5000 fits in memory); with a `mesh`,
    each device tests its own runs (R a multiple of the device count)."""

    def local(params, is_tanh, keys):
        return jax.lax.map(
            lambda a: count_errors(task, lengths, a[0], a[1], a[2], n), (params, is_tanh, keys)
        )

    if mesh is not None:
        spec = PartitionSpec(RUN_AXIS)
        local = jax.shard_map(
            local, mesh=mesh, in_specs=(spec, spec, spec), out_specs=spec, check_vma=False
        )
    return local(params, is_tanh, keys)


@jax.jit
def _keys(seeds: Array, offsets: Array, updates: Array) -> Array:
    """fold_in(fold_in(PRNGKey(seed), offset), updates) for each run: (R, 2) uint32."""
    key = lambda s, o, u: jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(s), o), u)  # noqa: E731
    return jax.vmap(key)(seeds, offsets, updates)


def snapshot_key(seed: int, offset: int, updates: int) -> Array:
    """The key of one run's test (offset: a KEY_OFFSET plus the length, or RANGE_KEY_OFFSET).

    Examples:
      >>> from pascanu_jax.experiments.watch import RANGE_KEY_OFFSET, snapshot_key
      >>> def same(a, b): return bool(jnp.array_equal(jax.random.key_data(a),
      ...     jax.random.key_data(b)))
      >>> same(snapshot_key(0, RANGE_KEY_OFFSET, 1000), snapshot_key(0, RANGE_KEY_OFFSET, 1000))
      True
      >>> same(snapshot_key(0, RANGE_KEY_OFFSET, 1000), snapshot_key(0, RANGE_KEY_OFFSET, 2000))
      False
    """
    return _keys(np.asarray([seed]), np.asarray([offset]), np.asarray([updates]))[0]


class Watch:
    """The §4.1.1 watch as an `runner.Observer` (see the module docstring).

    cfg: the experiment's settings (task, train_lengths, test_lengths, test_size, success,
      watch_every, watch_lengths, watch_size, stop_when_general, init).
    seeds: the seed of each run, in the runner's order. out: where models are saved.
    mesh: the runner's mesh. log: called with a line per seed and watch point.
    """

    def __init__(
        self,
        cfg: GeneralizationConfig,
        seeds: Sequence[int],
        out: str,
        mesh: Mesh,
        log: Callable[[str], None] | None = None,
        confirm_size: int = 10_000,
    ):
        self.cfg, self.seeds, self.out, self.mesh, self.log = cfg, list(seeds), out, mesh, log
        self.confirm_size = confirm_size
        self.n_total = padded_runs(len(self.seeds), mesh)
        tanh = get_scheme(cfg.init).activation == "tanh"
        self.is_tanh = np.full(self.n_total, tanh)
        self._is_tanh = to_devices(self.is_tanh, mesh)
        padded = self.seeds + self.seeds[:1] * (self.n_total - len(self.seeds))
        self._seeds = np.asarray(padded, np.int32)
        self.last = [0] * len(self.seeds)  # update count of each run's last watch
        self.records: list[dict] = []  # {seed, updates, errors: {L: fraction}, in_range?}
        self.snapshots: list[dict] = []  # {seed, updates, kind, model, tests: {L: fraction}}
        self.best: list[dict | None] = [None] * len(self.seeds)  # {updates, errors_sum}
        self.best_params: list[dict | None] = [None] * len(self.seeds)
        self.general_at: list[int | None] = [None] * len(self.seeds)
        self.seconds = 0.0  # spent watching during training (all segments)
        self.final_seconds = 0.0  # spent testing the best snapshots when training ended

    # -- the Observer protocol --------------------------------------------------------
    def identity(self) -> dict:
        c = self.cfg
        return {
            "watch_every": c.watch_every,
            "watch_lengths": list(c.watch_lengths),
            "watch_size": c.watch_size,
            "test_lengths": list(c.test_lengths),
            "test_size": c.test_size,
            "stop_when_general": c.stop_when_general,
            "confirm_size": self.confirm_size,
            "success": c.success,
        }

    def observe(self, updates: np.ndarray, params: dict, finished: np.ndarray) -> np.ndarray:
        stop = np.zeros(len(updates), bool)
        every = self.cfg.watch_every
        due = [
            r
            for r in range(len(self.seeds))
            if not finished[r] and updates[r] > self.last[r] and updates[r] % every == 0
        ]
        if not due:
            return stop
        start = time.perf_counter()
        counts = {
            L: to_host(self._errors((L, L + 1), params, WATCH_KEY_OFFSET + L, updates))
            for L in self.cfg.watch_lengths
        }
        host = to_host(params)
        for r in due:
            one = {k: v[r] for k, v in host.items()}
            stop[r] = self._look(r, int(updates[r]), one, {L: int(c[r]) for L, c in counts.items()})
        self.seconds += time.perf_counter() - start
        return stop

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {
            f"best/{r}/{k}": v
            for r, p in enumerate(self.best_params)
            if p is not None
            for k, v in p.items()
        }
        meta = {
            "last": self.last,
            "records": self.records,
            "snapshots": self.snapshots,
            "best": self.best,
            "general_at": self.general_at,
            "seconds": self.seconds,
        }
        return arrays, meta

    def load(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        n = len(self.seeds)
        last, best, general = list(meta["last"]), list(meta["best"]), list(meta["general_at"])
        if not len(last) == len(best) == len(general) == n:
            raise ValueError(f"the watch's state is for {len(last)} runs, not {n}")
        params: list[dict | None] = [None] * n
        for name, value in arrays.items():
            _, r, k = name.split("/")
            params[int(r)] = {**(params[int(r)] or {}), k: np.asarray(value)}
        if any((b is None) != (p is None) for b, p in zip(best, params, strict=True)):
            raise ValueError("the watch's best snapshots and their parameters disagree")
        records, snapshots = list(meta["records"]), list(meta["snapshots"])
        self.last, self.best, self.best_params, self.general_at = last, best, params, general
        self.records, self.snapshots, self.seconds = records, snapshots, float(meta["seconds"])

    # -- what it does ------------------------------------------------------------------
    def _errors(self, lengths, params, offset: int, updates: np.ndarray) -> Array:
        """Every run's misclassified count of watch_size sequences at `lengths`."""
        offsets = np.full(self.n_total, offset, np.int32)
        keys = _keys(self._seeds, offsets, np.asarray(updates, np.int32))
        keys = to_devices(np.asarray(keys), self.mesh)
        return errors_by_run(
            self.cfg.task, lengths, params, self._is_tanh, keys, self.cfg.watch_size, mesh=self.mesh
        )

    def _look(self, r: int, updates: int, params: dict, counts: dict[int, int]) -> bool:
        """Record run r's watch at `updates`; True when the seed should stop here."""
        cfg, seed = self.cfg, self.seeds[r]
        entry = {
            "seed": seed,
            "updates": updates,
            "errors": {str(L): c / cfg.watch_size for L, c in counts.items()},
        }
        lo, hi = cfg.train_lengths
        inside = [L for L in cfg.watch_lengths if hi >= L]
        if inside and not any(counts[L] for L in inside):
            key = snapshot_key(seed, RANGE_KEY_OFFSET, updates)
            error = float(
                misclassified_fraction(
                    cfg.task, (lo, hi), params, self.is_tanh[r], key, self.confirm_size
                )
            )
            entry["in_range"] = error
        self.records.append(entry)
        self.last[r] = updates
        total = sum(counts.values())
        if self.best[r] is None or total < self.best[r]["errors_sum"]:
            self.best[r] = {"updates": updates, "errors_sum": total}
            self.best_params[r] = params
        stop = False
        longest = max(cfg.watch_lengths)
        short = total == counts[longest] and len(counts) > 1  # 0 errors but at the longest
        if total == 0 or (short and counts[longest] < self._short_record(seed)):
            tests = self._test(r, updates, params)
            kind = "zero" if total == 0 else "short"
            self._save(r, updates, kind, f"model-seed{seed}-u{updates}.npz", params, tests)
            if not any(tests.values()) and self.general_at[r] is None:
                self.general_at[r] = updates
                stop = cfg.stop_when_general
        if self.log is not None:
            shown = " ".join(f"{L}:{100 * c / cfg.watch_size:.1f}" for L, c in counts.items())
            check = "" if "in_range" not in entry else f"; in range {100 * entry['in_range']:.2f}%"
            tag = " GENERALISES" if self.general_at[r] == updates else ""
            self.log(
                f"watch seed {seed} at {updates:,} updates: % wrong by length {shown}{check}{tag}"
            )
        return stop

    def _short_record(self, seed: int) -> float:
        """The fewest errors at the longest watched length among the seed's tested
        "short" snapshots (inf before the first): a short one is tested only when it
        improves on that, so their tests stay few."""
        longest = str(max(self.cfg.watch_lengths))
        errors = [
            round(w["errors"][longest] * self.cfg.watch_size)
            for s in self.snapshots
            if (s["seed"], s["kind"]) == (seed, "short")
            for w in self.records
            if (w["seed"], w["updates"]) == (seed, s["updates"])
        ]
        return min(errors, default=np.inf)

    def _test(self, r: int, updates: int, params: dict) -> dict[str, float]:
        """One snapshot at every test length on test_size sequences: {str(L): fraction}."""
        cfg, seed = self.cfg, self.seeds[r]
        tests = {}
        for L in cfg.test_lengths:
            key = snapshot_key(seed, TEST_KEY_OFFSET + L, updates)
            error = misclassified_fraction(
                cfg.task, (L, L + 1), params, self.is_tanh[r], key, cfg.test_size
            )
            tests[str(L)] = float(error)
        return tests

    def _save(self, r, updates, kind, name, params, tests) -> None:
        save_npz(os.path.join(self.out, name), params)
        entry = {"seed": self.seeds[r], "updates": updates, "kind": kind, "model": name}
        self.snapshots.append({**entry, "tests": tests})

    def finish(self) -> None:
        """Test and save each seed's best snapshot (once; a zero snapshot's tests are
        reused), all seeds at once on the mesh. Call it when training has ended."""
        start = time.perf_counter()
        todo = [
            r
            for r, best in enumerate(self.best)
            if best is not None
            and not any((s["seed"], s["kind"]) == (self.seeds[r], "best") for s in self.snapshots)
        ]
        if not todo:
            return
        cfg = self.cfg
        chosen = [self.best_params[r] if r in todo else None for r in range(self.n_total)]
        fill = self.best_params[todo[0]]
        stacked = {k: np.stack([(p or fill)[k] for p in chosen]) for k in fill}
        params = to_devices(stacked, self.mesh)
        updates = np.asarray(
            [self.best[r]["updates"] if r in todo else 0 for r in range(self.n_total)], np.int32
        )
        tests: dict[int, dict[str, float]] = {r: {} for r in todo}
        for L in cfg.test_lengths:
            offsets = np.full(self.n_total, TEST_KEY_OFFSET + L, np.int32)
            keys = to_devices(np.asarray(_keys(self._seeds, offsets, updates)), self.mesh)
            counts = to_host(
                errors_by_run(
                    cfg.task, (L, L + 1), params, self._is_tanh, keys, cfg.test_size, mesh=self.mesh
                )
            )
            for r in todo:
                tests[r][str(L)] = float(counts[r]) / cfg.test_size
        for r in todo:
            seed, at = self.seeds[r], self.best[r]["updates"]
            same = [s for s in self.snapshots if (s["seed"], s["updates"]) == (seed, at)]
            found = same[0]["tests"] if same else tests[r]
            self._save(r, at, "best", f"model-seed{seed}-best.npz", self.best_params[r], found)
        self.final_seconds += time.perf_counter() - start

    def summary(self) -> dict:
        """The watch's part of the experiment's record: models, tests, watch records."""
        models = {s["model"].removesuffix(".npz"): s["model"] for s in self.snapshots}
        tests = [
            {
                "seed": s["seed"],
                "length": int(L),
                "error": e,
                "model": s["model"],
                "updates": s["updates"],
                "kind": s["kind"],
            }
            for s in self.snapshots
            for L, e in s["tests"].items()
        ]
        first = {str(seed): g for seed, g in zip(self.seeds, self.general_at, strict=True)}
        return {
            "models": models,
            "tests": tests,
            "snapshots": self.snapshots,
            "general_at": first,
            "best": {str(s): b for s, b in zip(self.seeds, self.best, strict=True)},
            "watch": self.records,
        }


def plot_watch(record: dict, path: str) -> None:
    """One panel per seed: the watch's error (log scale) against updates, a line per
    watched length; ticks where the in-range check passed, stars at snapshots with 0 errors
    at every watched length, a vertical line where a generalising model was found.

    Examples:
      >>> import json
      >>> from pascanu_jax.experiments.watch import plot_watch
      >>> record = json.load(open("docs/results/generalization_watch/generalization.json"))
      >>> plot_watch(record, "watch.png")
    """
    from matplotlib.figure import Figure

    s = record["settings"]
    seeds = sorted({w["seed"] for w in record["watch"]}) or list(range(s["seeds"]))
    cols = min(4, len(seeds))
    rows = -(-len(seeds) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows + 0.9))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    floor = 0.5 / s["watch_size"] * 100  # where 0 errors are drawn on the log axis
    for ax, seed in zip(axes, seeds, strict=False):
        mine = [w for w in record["watch"] if w["seed"] == seed]
        x = np.asarray([w["updates"] for w in mine])
        for i, L in enumerate(s["watch_lengths"]):
            y = np.asarray([100 * w["errors"][str(L)] for w in mine])
            ax.plot(x, np.maximum(y, floor), lw=0.7, color=f"C{i}", label=f"L = {L}")
        passed = [w["updates"] for w in mine if w.get("in_range", 1.0) < s["success"]]
        ax.plot(
            passed, [floor * 0.6] * len(passed), "|", color="k", ms=6, label="in-range check passed"
        )
        zeros = [
            z["updates"] for z in record["snapshots"] if (z["seed"], z["kind"]) == (seed, "zero")
        ]
        ax.plot(zeros, [floor] * len(zeros), "*", color="C3", ms=8, label="0 errors at every L")
        general = record["general_at"].get(str(seed))
        if general is not None:
            ax.axvline(general, color="C3", lw=1.2, label="0 errors at 50..5000 on 10,000")
        ax.axhline(floor, color="0.6", lw=0.5, ls=":")
        ax.set_yscale("log")
        ax.set_title(f"seed {seed}", fontsize=9)
    for ax in axes[len(seeds) :]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * cols :]:
        ax.set_xlabel("updates")
    for ax in axes[::cols]:
        ax.set_ylabel(f"misclassified of {s['watch_size']:,} (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    lo, hi = s["train_lengths"]
    alpha = "" if s.get("alpha") is None else f", alpha {s['alpha']:g}"
    fig.suptitle(
        f"{s['task']}: {s['init']} + {s['method']}{alpha}, lengths drawn from [{lo}, {hi}), "
        f"watched every {s['watch_every']:,} updates up to {s['max_updates']:,} "
        f"(paper: 5M); 0 errors drawn at {floor:g}%",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save_figure(fig, os.path.dirname(path) or ".", os.path.splitext(os.path.basename(path))[0])
