"""The §4.1.1 watch (experiments/watch.py): resume equals an uninterrupted run, snapshots
that generalise are tested, saved and stop their seed, segments record devices; a
first-success run pauses and resumes the same way."""

import dataclasses
import json
import pathlib

import jax
import numpy as np
import pytest

import pascanu_jax as pj
from pascanu_jax.cli import generalize
from pascanu_jax.experiments.generalization import (
    GeneralizationConfig,
    run_generalization,
    run_watch,
)
from pascanu_jax.experiments.sharding import run_mesh, to_devices
from pascanu_jax.experiments.watch import Watch, errors_by_run, snapshot_key
from pascanu_jax.outputs.checkpoint import load_arrays, load_npz, save_arrays

TASK = pj.get_task("temporal_order")
TINY = GeneralizationConfig(
    TASK,
    (10, 20),
    (10, 20),
    seeds=2,
    max_updates=600,
    eval_every=100,
    test_size=100,
    watch_every=200,
    watch_lengths=(10, 20, 40),
    watch_size=50,
)
SOLVED = pathlib.Path(__file__).parents[1] / "docs/results/generalization_paper/model-seed2.npz"
OUTPUTS = ("training", "models", "tests", "snapshots", "general_at", "best", "watch")


def _timeless(value):
    """`value` without its wall times (which differ between any two runs)."""
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "wall_s"}
    return value


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("watch")
    return out, run_watch(TINY, str(out))


def test_a_paused_and_resumed_watch_equals_an_uninterrupted_one(uninterrupted, tmp_path, capsys):
    out, whole = uninterrupted
    paused = run_watch(TINY, str(tmp_path), time_limit=0)  # stops after the first call
    assert paused["status"] == "paused at 200 updates" and len(paused["watch"]) == 2
    resumed = run_watch(TINY, str(tmp_path))
    assert resumed["status"] == "complete"
    for key in OUTPUTS:
        assert _timeless(resumed[key]) == _timeless(whole[key]), key
    assert (tmp_path / "diagnostics.csv").read_text() == (out / "diagnostics.csv").read_text()
    for name in whole["models"].values():
        a, b = load_npz(out / name), load_npz(tmp_path / name)
        assert all(np.array_equal(a[k], b[k]) for k in a)
    segments = resumed["segments"]
    assert [(s["from_updates"], s["to_updates"]) for s in segments] == [(0, 200), (200, 600)]
    assert all(s["device"] == segments[0]["device"] for s in segments)
    # a finished folder only reads its checkpoint: no new segment, the same record
    again = run_watch(TINY, str(tmp_path))
    assert again["segments"] == segments and again["tests"] == whole["tests"]


def test_the_record_names_every_model_with_its_tests(uninterrupted):
    out, record = uninterrupted
    assert record["status"] == "complete" and len(record["watch"]) == 2 * 3
    for seed in (0, 1):
        mine = [w for w in record["watch"] if w["seed"] == seed]
        assert [w["updates"] for w in mine] == [200, 400, 600]
        assert all(set(w["errors"]) == {"10", "20", "40"} for w in mine)
        best = record["best"][str(seed)]
        sums = [sum(round(e * 50) for e in w["errors"].values()) for w in mine]
        assert best["errors_sum"] == min(sums)
        assert best["updates"] == mine[sums.index(min(sums))]["updates"]  # the earliest best
        tests = [t for t in record["tests"] if t["seed"] == seed and t["kind"] == "best"]
        assert sorted(t["length"] for t in tests) == [10, 20]
        assert {t["model"] for t in tests} == {f"model-seed{seed}-best.npz"}
        params = load_npz(out / f"model-seed{seed}-best.npz")
        assert set(params) == {"W_in", "W_rec", "b", "W_out", "b_out"}
        for t in tests:  # the test is its definition: test_size sequences keyed by updates
            key = snapshot_key(seed, 1_000_003 + t["length"], best["updates"])
            want = pj.experiments.engine.misclassified_fraction(
                TASK, (t["length"], t["length"] + 1), params, np.bool_(True), key, 100
            )
            assert t["error"] == pytest.approx(float(want), abs=1e-7)
    assert set(record["models"].values()) == {t["model"] for t in record["tests"]}
    assert (out / "watch.png").stat().st_size > 10_000
    assert record["cost"]["watch_s"] > 0 and record["cost"]["final_tests_s"] > 0


def test_a_snapshot_right_at_every_length_is_tested_saved_and_stops_its_seed(tmp_path):
    solved = {k: np.asarray(v) for k, v in load_npz(SOLVED).items()}  # 0 errors at 50..150
    cfg = dataclasses.replace(
        TINY, train_lengths=(50, 60), test_lengths=(50, 100), watch_lengths=(50, 100),
        watch_size=100, seeds=1,
    )  # fmt: skip
    lines = []
    watch = Watch(cfg, [0], str(tmp_path), run_mesh(jax.devices()[:1]), lines.append)
    params = to_devices({k: v[None] for k, v in solved.items()}, watch.mesh)
    stop = watch.observe(np.array([200]), params, np.array([False]))
    assert stop.tolist() == [True] and watch.general_at == [200]
    (snap,) = watch.snapshots
    assert snap["kind"] == "zero" and snap["model"] == "model-seed0-u200.npz"
    assert snap["tests"] == {"50": 0.0, "100": 0.0}
    assert watch.records[0]["in_range"] == 0.0  # the in-range check ran: 50 is in range
    assert "GENERALISES" in lines[0]
    saved = load_npz(tmp_path / "model-seed0-u200.npz")
    assert all(np.array_equal(saved[k], solved[k]) for k in solved)
    # not due again at the same update count; the state round-trips through a checkpoint
    assert not watch.observe(np.array([200]), params, np.array([False])).any()
    arrays, meta = watch.state()
    save_arrays(tmp_path / "w.npz", arrays, {"w": meta})
    arrays, meta = load_arrays(tmp_path / "w.npz")
    other = Watch(cfg, [0], str(tmp_path), watch.mesh)
    other.load(arrays, json.loads(json.dumps(meta["w"])))
    assert other.state()[1] == watch.state()[1]
    assert np.array_equal(other.best_params[0]["W_rec"], solved["W_rec"])
    watch.finish()  # the best is the zero snapshot: its tests are reused
    assert watch.snapshots[-1]["kind"] == "best" and watch.snapshots[-1]["tests"] == snap["tests"]


def test_errors_by_run_counts_each_run_as_the_single_run_test():
    params = load_npz(SOLVED)
    noisy = {k: v + (0.3 if k == "W_rec" else 0.0) for k, v in params.items()}
    stacked = {k: np.stack([params[k], noisy[k]]) for k in params}
    keys = np.stack([np.asarray(snapshot_key(s, 7, 0)) for s in (0, 1)])
    counts = errors_by_run(TASK, (60, 61), stacked, np.array([True, True]), keys, 300)
    for r, p in enumerate((params, noisy)):
        want = pj.experiments.engine.count_errors(TASK, (60, 61), p, np.bool_(True), keys[r], 300)
        assert int(counts[r]) == int(want)
    assert int(counts[0]) < int(counts[1])


def test_a_resume_on_another_device_warns_and_the_segment_says_so(tmp_path, capsys):
    run_watch(TINY, str(tmp_path), time_limit=0)
    ckpt = tmp_path / "train-state.npz"
    arrays, meta = load_arrays(ckpt)
    meta["segments"][-1]["device"] = "TPU v9 x64"
    save_arrays(ckpt, arrays, meta)
    capsys.readouterr()
    record = run_watch(TINY, str(tmp_path))
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "written on TPU v9 x64 and resumes on" in err
    assert record["segments"][-1]["resumed_from_device"] == "TPU v9 x64"


def test_other_watch_settings_are_refused_naming_them(tmp_path):
    run_watch(TINY, str(tmp_path), time_limit=0)
    with pytest.raises(pj.experiments.generalization.OutputFolderError, match="watch_size"):
        run_watch(dataclasses.replace(TINY, watch_size=60), str(tmp_path))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--watch-every", "150"], "--watch-every (150) must be a multiple of --eval-every"),
        (["--watch-every", "200", "--watch-lengths", "5"], "--watch-lengths"),
        (["--watch-every", "200", "--watch-size", "0"], "--watch-size must be"),
        (["--time-limit", "10", "--train-on", "200"], "--time-limit pauses the first"),
        (["--watch-every", "200", "--time-limit", "-1"], "--time-limit must be"),
        (["--watch-every", "200", "--train-on", "200"], "--train-on continues"),
    ],
)
def test_bad_watch_flags_are_one_line(args, message, capsys, tmp_path):
    base = ["--max-updates", "600", "--eval-every", "100", "--out", str(tmp_path / "x")]
    with pytest.raises(SystemExit) as e:
        generalize.main([*base, *args])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err, err


def test_a_snapshot_right_but_at_the_longest_length_is_tested_as_short(tmp_path):
    solved = {k: np.asarray(v) for k, v in load_npz(SOLVED).items()}  # wrong at 1000
    cfg = dataclasses.replace(
        TINY, train_lengths=(50, 60), test_lengths=(50, 1000), watch_lengths=(50, 1000),
        watch_size=100, seeds=1,
    )  # fmt: skip
    watch = Watch(cfg, [0], str(tmp_path), run_mesh(jax.devices()[:1]))
    params = to_devices({k: v[None] for k, v in solved.items()}, watch.mesh)
    assert not watch.observe(np.array([200]), params, np.array([False])).any()
    (snap,) = watch.snapshots
    assert snap["kind"] == "short" and snap["tests"]["50"] == 0.0 and snap["tests"]["1000"] > 0
    assert watch.general_at == [None] and (tmp_path / "model-seed0-u200.npz").exists()
    at_1000 = round(watch.records[0]["errors"]["1000"] * 100)
    assert watch._short_record(0) == at_1000


def test_a_paused_first_success_run_resumes_to_the_uninterrupted_record(tmp_path):
    cfg = dataclasses.replace(TINY, watch_every=None, periods_per_call=1)
    whole = run_generalization(cfg, str(tmp_path / "whole"))
    paused = run_generalization(cfg, str(tmp_path / "cut"), time_limit=0)
    assert paused["status"] == "paused at 100 updates" and paused["tests"] == []
    assert "models" not in paused and len(paused["segments"]) == 1
    resumed = run_generalization(cfg, str(tmp_path / "cut"))
    assert resumed["status"] == "complete" and len(resumed["segments"]) == 2
    for key in ("training", "models", "tests"):
        assert _timeless(resumed[key]) == _timeless(whole[key]), key
    cut, full = (tmp_path / d / "diagnostics.csv" for d in ("cut", "whole"))
    assert cut.read_text() == full.read_text()
