"""The output-folder protocol (outputs/folder.py), presets and settings checks
(experiments/presets.py), and what the experiments do with damaged or edited files."""

import dataclasses
import importlib
import json
import os
import pathlib
import pickle
import shutil

import numpy as np
import pytest

from pascanu_jax.experiments import sweep as sweep_module
from pascanu_jax.experiments.engine import confirm_key, misclassified_fraction, run_keys
from pascanu_jax.experiments.generalization import PRESETS as GEN_PRESETS
from pascanu_jax.experiments.generalization import _open
from pascanu_jax.experiments.presets import SettingError, lookup, preset
from pascanu_jax.experiments.runner import train
from pascanu_jax.experiments.sweep import PRESETS, SweepConfig, run_params, run_sweep
from pascanu_jax.natural import problems as natural_problems
from pascanu_jax.outputs.checkpoint import CheckpointError, load_arrays, save_arrays
from pascanu_jax.outputs.folder import OutputFolderError, differences, open_folder
from pascanu_jax.tasks import get_task

ROOT = pathlib.Path(__file__).resolve().parents[1]
cli_sweep = importlib.import_module("pascanu_jax.cli.sweep")


@dataclasses.dataclass(frozen=True)
class Old:
    rate: float
    steps: int = 10


@dataclasses.dataclass(frozen=True)
class New:  # Old with a field added later
    rate: float
    steps: int = 10
    momentum: float = 0.0


# ---------------------------------------------------------------- the protocol itself


def test_settings_recorded_resumed_and_refused(tmp_path):
    out = tmp_path / "run"
    folder = open_folder(out, Old(0.1, 5))
    assert json.loads((out / "config.json").read_text()) == {"rate": 0.1, "steps": 5}
    assert folder.settings == {"rate": 0.1, "steps": 5}
    open_folder(out, Old(0.1, 5))  # same settings: resumes
    with pytest.raises(OutputFolderError) as err:
        open_folder(out, Old(0.2, 7))
    message = str(err.value)
    assert "\n" not in message and str(out) in message
    assert (
        "rate: 0.1 in the folder, 0.2 now" in message and "steps: 5 in the folder, 7 now" in message
    )


def test_a_field_added_later_with_its_default_keeps_old_folders(tmp_path):
    open_folder(tmp_path, Old(0.1))
    open_folder(tmp_path, New(0.1))  # momentum missing from config.json: its default
    assert json.loads((tmp_path / "config.json").read_text()) == {"rate": 0.1, "steps": 10}
    with pytest.raises(OutputFolderError, match=r"momentum: 0.0 in the folder, 0.9 now"):
        open_folder(tmp_path, New(0.1, momentum=0.9))
    # nested settings are compared setting by setting, defaults included
    saved = {"config": {"rate": 0.1}, "data": None}
    assert differences(saved, {"config": {"rate": 0.1, "steps": 10}, "data": None},
                       {"config": {"steps": 10}}) == []  # fmt: skip
    assert differences(saved, {"config": {"rate": 0.2}, "data": None}) == [
        ("config.rate", 0.1, 0.2)
    ]
    assert differences({"flag": True}, {"flag": 1}) == [("flag", True, 1)]


def test_paths_that_are_not_writable_folders_and_a_damaged_config(tmp_path):
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(OutputFolderError, match=f"output folder {regular} is a file"):
        open_folder(regular, Old(0.1))
    (tmp_path / "config.json").write_text('{"rate": 0.1, "ste')
    with pytest.raises(OutputFolderError, match=r"config.json is damaged \(not JSON") as err:
        open_folder(tmp_path, Old(0.1))
    assert str(tmp_path / "config.json") in str(err.value) and "--" not in str(err.value)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(OutputFolderError, match="not a JSON object of settings"):
        open_folder(tmp_path, Old(0.1))


def test_committed_folders_still_open():
    """docs/results: the sweep's config.json, and a generalisation folder of before
    config.json (its settings are read from generalization.json)."""
    cpu = dataclasses.replace(PRESETS["cpu"], lengths=(50, 100))
    open_folder(ROOT / "docs/results/fig7_cpu", cpu, exclude=sweep_module.FREE_SETTINGS)


@pytest.mark.parametrize(("method", "seed"), [("MSGD-CR", 2), ("MSGD-C", 1)])
def test_committed_parameters_reproduce_their_rows(method, seed):
    """A solved and an unsolved run of docs/results/fig7_quick: their kept parameters,
    checked on the run's own 10,000 confirmation sequences, give the row's error."""
    out = ROOT / "docs/results/fig7_quick"
    rows = json.loads((out / "results.json").read_text())["runs"]
    (row,) = [
        r
        for r in rows
        if (r["length"], r["init"], r["method"], r["seed"]) == (40, "smart_tanh", method, seed)
    ]
    key = confirm_key(run_keys(seed, 40)["confirm"], row["updates"])
    task = get_task(row["task"])
    params = run_params(out, row)
    error = misclassified_fraction(task, (40, 41), params, np.bool_(True), key, 10_000)
    assert round(float(error) * 10_000) == round(row["error"] * 10_000)
    assert row["solved"] == (method == "MSGD-CR")


def test_a_folder_of_before_config_json_is_read_through_its_record(tmp_path):
    src = ROOT / "docs/results/generalization_paper_alpha2"
    out = tmp_path / "gen"
    shutil.copytree(src, out)
    cfg = dataclasses.replace(
        GEN_PRESETS["paper"], max_updates=300_000, alpha=2.0, seeds=2, test_size=10_000
    )
    _, record = _open(cfg, str(out))
    assert len(record["tests"]) == 20
    assert json.loads((out / "config.json").read_text())["alpha"] == 2.0
    shutil.copytree(src, tmp_path / "gen2")
    with pytest.raises(OutputFolderError, match=r"seeds: 2 in the folder, 3 now"):
        _open(dataclasses.replace(cfg, seeds=3), str(tmp_path / "gen2"))
    assert not (tmp_path / "gen2" / "config.json").exists()


# ---------------------------------------------------------------- presets and settings


def test_presets_keep_their_values():
    q, c, p = PRESETS["quick"], PRESETS["cpu"], PRESETS["paper"]
    assert (q.lengths, q.max_updates, q.eval_every, q.periods_per_call) == (
        (20, 30, 40, 50), 10_000, 200, 5)  # fmt: skip
    assert (c.lengths, c.max_updates, c.eval_every, c.periods_per_call) == (
        (50, 100, 150, 200, 250), 30_000, 500, 10)  # fmt: skip
    assert (p.max_updates, p.eval_every, p.periods_per_call) == (5_000_000, 1_000, 50)
    long = PRESETS["long"]
    assert (long.lengths, long.max_updates, long.inits, long.methods, long.seeds) == (
        (200, 250), 300_000, ("basic_tanh", "smart_tanh"), ("MSGD-CR",), 5)  # fmt: skip
    assert q.seeds == 5 and q.inits == ("sigmoid", "basic_tanh", "smart_tanh")
    gq = GEN_PRESETS["quick"]
    assert (gq.train_lengths, gq.test_lengths, gq.max_updates, gq.eval_every) == (
        (20, 80), (10, 20, 30, 50, 100, 200, 500), 60_000, 1_000)  # fmt: skip
    assert GEN_PRESETS["paper"].test_lengths[-1] == 5000
    w = GEN_PRESETS["watch"]
    assert (w.train_lengths, w.seeds, w.max_updates, w.watch_every, w.watch_size) == (
        (50, 200), 8, 1_000_000, 5_000, 500)  # fmt: skip
    assert w.watch_lengths == (50, 100, 200, 1000, 5000) and w.test_lengths[-1] == 5000
    text = natural_problems.PRESETS["text-quick"]
    assert (text.learning_rate, text.max_rounds, text.updates_per_round) == (1.0, 10, 200)
    assert natural_problems.PRESETS["music-quick"].max_rounds == 150


def test_one_lookup_for_every_preset_and_zero_is_not_a_default():
    for presets in (PRESETS, GEN_PRESETS, natural_problems.PRESETS):
        with pytest.raises(SettingError) as err:
            lookup(presets, "huge")
        assert f"valid: {', '.join(presets)}" in str(err.value)
    with pytest.raises(SettingError, match="seeds must be >= 1, got 0"):
        preset(PRESETS, "quick", seeds=0)
    with pytest.raises(SettingError, match="inits: unknown empty list"):
        preset(PRESETS, "quick", inits=())
    assert preset(PRESETS, "quick", seeds=None) is PRESETS["quick"]


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"max_updates": 3_000_000_000}, "max_updates", "at most 2,147,483,647"),
        ({"lengths": (100_000_000,)}, "lengths", "more than 100,000"),
        ({"seeds": 100_000_000}, "seeds", "at most 1,000"),
        ({"eval_every": -5}, "eval_every", "must be >= 1"),
        ({"max_updates": 250}, "max_updates", "multiple of the evaluation interval"),
    ],
)
def test_config_classes_check_their_fields(change, field, text):
    with pytest.raises(SettingError) as err:
        dataclasses.replace(PRESETS["quick"], **change)
    assert err.value.fields[0] == field and text in str(err.value)
    assert str(err.value).startswith(field) and "--" not in str(err.value)


def test_the_generalisation_config_checks_its_fields():
    quick = GEN_PRESETS["quick"]
    for change, text in [
        ({"test_lengths": (10, 100_000_000)}, "test_lengths: 100,000,000 steps is more than"),
        ({"train_lengths": (80, 20)}, "train_lengths must be LO,HI with HI > LO"),
        ({"seeds": 100_000_000}, "seeds must be at most 1,000"),
        ({"max_updates": 3_000_000_000}, "max_updates must be at most 2,147,483,647"),
        ({"eval_every": -5}, "eval_every must be >= 1"),
        ({"max_updates": 2500}, "max_updates (2500) must be a multiple of eval_every (1000)"),
        ({"success": 0.0}, "success must be a fraction in (0, 1]"),
    ]:
        with pytest.raises(SettingError) as err:
            dataclasses.replace(quick, **change)
        assert str(err.value).startswith(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-updates", "3000000000"], "--max-updates must be at most 2,147,483,647"),
        (["--lengths", "100000000"], "--lengths: 100,000,000 steps is more than 100,000"),
        (["--seeds", "100000000"], "--seeds must be at most 1,000"),
        (["--eval-every", "-5"], "--eval-every must be >= 1"),
        (["--max-updates", "250"], "--max-updates (250) must be a multiple of the evaluation "
                                   "interval --eval-every (200)"),
        (["--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["--inits", ""], "--inits: unknown empty list"),
    ],
)  # fmt: skip
def test_the_command_line_names_flags(args, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli_sweep.parse_args([*args, "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- checkpoints


def test_damaged_checkpoints_are_one_error_naming_them(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_arrays(path, {"a": np.arange(100_000)}, {"k": 1})
    data = path.read_bytes()
    for damage in (data[: len(data) // 2], b"", b"garbage" * 40, data[:-30]):
        path.write_bytes(damage)
        with pytest.raises(CheckpointError) as err:
            load_arrays(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_pickle_posing_as_a_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "ckpt.npz"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="pickled Python objects, which are never loaded"):
        load_arrays(path)
    assert not marker.exists()


# ---------------------------------------------------------------- the sweep, damaged


def _tiny() -> SweepConfig:
    return SweepConfig(
        get_task("temporal_order"), (10,), ("smart_tanh",), ("MSGD", "MSGD-CR"), 1, 200, 100, 5
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A finished one-length sweep, and the finished checkpoint its run removed."""
    out = tmp_path_factory.mktemp("reference")
    keep = tmp_path_factory.mktemp("ckpt") / "ckpt-L10.npz"
    remove = sweep_module.remove

    def remove_but_keep(path):
        if str(path).endswith("ckpt-L10.npz"):
            shutil.copy(path, keep)
        remove(path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep_module, "remove", remove_but_keep)
        results = run_sweep(_tiny(), str(out))
    return out, keep, results


def _copy(reference, tmp_path, with_ckpt=True):
    out, ckpt, _ = reference
    shutil.copytree(out, tmp_path / "run")
    if with_ckpt:
        shutil.copy(ckpt, tmp_path / "run" / ckpt.name)
    return tmp_path / "run"


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


ARGS = ["--lengths", "10", "--inits", "smart_tanh", "--methods", "MSGD,MSGD-CR",
        "--max-updates", "200", "--eval-every", "100"]  # fmt: skip


def test_every_run_keeps_its_trained_parameters(reference):
    out, _, results = reference
    cfg = _tiny()
    trained = train(cfg.engine(10), cfg.runs()).params
    assert {r["params"] for r in results} == {"params-L10.npz"}
    for r in results:
        kept = run_params(out, r)
        assert kept.keys() == trained[r["index"]].keys()
        for k, v in kept.items():
            np.testing.assert_array_equal(v, trained[r["index"]][k])
    with pytest.raises(OutputFolderError, match="names no trained parameters"):
        run_params(out, {"index": 0})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "has a missing or damaged params-L10.npz"),
        ("legacy", "has no trained parameters (written before sweeps kept them)"),
    ],
)
def test_a_length_without_its_parameters_is_trained_again(
    reference, tmp_path, capsys, damage, message
):
    out = _copy(reference, tmp_path, with_ckpt=False)
    if damage == "missing":
        (out / "params-L10.npz").unlink()
    else:
        record = json.loads((out / "results.json").read_text())
        for r in record["runs"]:
            del r["params"], r["index"]
        (out / "results.json").write_text(json.dumps(record))
    results = run_sweep(_tiny(), str(out))
    assert f"length 10 {message}; training it again" in capsys.readouterr().err
    assert _strip(results) == _strip(reference[2])
    for r in results:
        for k, v in run_params(out, r).items():
            np.testing.assert_array_equal(v, run_params(reference[0], r)[k])


def test_a_paused_sweep_resumes_to_the_same_results(reference, tmp_path):
    one_call = dataclasses.replace(_tiny(), periods_per_call=1)  # two calls for 200 updates
    lines = []
    assert run_sweep(one_call, str(tmp_path), log=lines.append, time_limit=0) == []
    assert lines == ["length 10 paused at 100 updates; the same call resumes it"]
    assert (tmp_path / "ckpt-L10.npz").exists() and not (tmp_path / "results.json").exists()
    assert _strip(run_sweep(one_call, str(tmp_path))) == _strip(reference[2])
    (segments,) = [
        t["segments"] for t in json.loads((tmp_path / "summary.json").read_text()).values()
    ]
    assert [(s["from_updates"], s["to_updates"]) for s in segments] == [(0, 100), (100, 200)]
    assert all("commit" in s and s["device"] and s["wall_s"] > 0 for s in segments)
    assert (tmp_path / "diagnostics.csv").read_text() == (
        reference[0] / "diagnostics.csv"
    ).read_text()


def test_killed_between_diagnostics_and_results_writes_each_row_once(reference, tmp_path, capsys):
    out = _copy(reference, tmp_path)
    (out / "results.json").unlink()  # killed before it was written: all else is there
    assert cli_sweep.main([*ARGS, "--seeds", "1", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["runs"]
    assert _strip(results) == _strip(reference[2])
    assert (out / "diagnostics.csv").read_text() == (reference[0] / "diagnostics.csv").read_text()
    assert len((out / "diagnostics.csv").read_text().splitlines()) == 1 + 2 * 2
    # not a terminal: no progress bar, a line per finished length
    assert "length 10 done: " in capsys.readouterr().out


def test_an_emptied_results_file_starts_over_without_duplicates(reference, tmp_path):
    out = _copy(reference, tmp_path)
    (out / "results.json").write_text("")
    run_sweep(_tiny(), str(out))
    assert (out / "diagnostics.csv").read_text() == (reference[0] / "diagnostics.csv").read_text()
    assert json.loads((out / "summary.json").read_text()).keys() == {"10"}


def test_rows_removed_and_a_damaged_checkpoint_redo_the_length(reference, tmp_path, capsys):
    """A results.json short of a run does not count its length as finished: the length is
    trained again, here from a garbled checkpoint, i.e. from the start."""
    out = _copy(reference, tmp_path, with_ckpt=False)
    record = json.loads((out / "results.json").read_text())
    record["runs"] = record["runs"][:1]
    (out / "results.json").write_text(json.dumps(record))
    (out / "ckpt-L10.npz").write_bytes(b"PK\x03\x04 not a zip")
    results = run_sweep(_tiny(), str(out))
    assert _strip(results) == _strip(reference[2])
    assert (out / "diagnostics.csv").read_text() == (reference[0] / "diagnostics.csv").read_text()
    err = capsys.readouterr().err
    assert "length 10 has 1 rows for its 2 runs; training it again" in err
    assert f"checkpoint {out / 'ckpt-L10.npz'} is damaged" in err
    assert "training these runs from the start" in err


def test_diagnostics_that_do_not_match_their_results_redo_the_length(reference, tmp_path, capsys):
    out = _copy(reference, tmp_path)
    lines = (out / "diagnostics.csv").read_text().splitlines()
    (out / "diagnostics.csv").write_text("\n".join([*lines, lines[-1]]) + "\n")  # a row twice
    run_sweep(_tiny(), str(out))
    assert "do not match its results" in capsys.readouterr().err
    assert (out / "diagnostics.csv").read_text() == (reference[0] / "diagnostics.csv").read_text()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "diagnostics.csv",
            "task,init\n\x00\x01garbage,,,\n",
            "diagnostics.csv is damaged (line 1",
        ),
        ("diagnostics.csv", None, "diagnostics.csv is damaged (line 3: wrong number of fields"),
        ("results.json", '{"runs": [', "results.json is damaged (not JSON"),
        ("results.json", '{"rows": []}', "results.json is damaged (no list of runs)"),
        ("summary.json", "{{", "summary.json is damaged (not JSON"),
        ("config.json", "{", "config.json is damaged (not JSON"),
    ],
)
def test_damaged_files_are_one_line_from_the_command(reference, tmp_path, capsys, name, content,
                                                     expected):  # fmt: skip
    out = _copy(reference, tmp_path)
    if content is None:  # a row cut short
        lines = (out / name).read_text().splitlines()
        content = "\n".join([lines[0], lines[1], lines[2][:20], *lines[3:]]) + "\n"
    (out / name).write_text(content)
    assert cli_sweep.main([*ARGS, "--seeds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert expected in err and str(out) in err


def test_other_settings_a_file_as_folder_and_a_failing_write(reference, tmp_path, capsys,
                                                             monkeypatch):  # fmt: skip
    out = _copy(reference, tmp_path)
    args = ARGS
    assert cli_sweep.main([*args, "--seeds", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {out} holds a run with other settings (seeds: 1 in the folder, 2 now)" in err
    (tmp_path / "file").write_text("")
    assert cli_sweep.main([*args, "--seeds", "1", "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err

    def read_only(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("pascanu_jax.outputs.folder.write_json", lambda p, o: read_only(p, o))
    assert cli_sweep.main([*args, "--seeds", "1", "--out", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: [Errno 13] Permission denied") and err.count("\n") == 1


def test_a_finished_sweep_logs_nothing_new_and_a_new_length_logs_a_line(reference, tmp_path):
    out = _copy(reference, tmp_path)  # killed after results.json, before removing ckpt
    lines = []
    run_sweep(_tiny(), str(out), log=lines.append)
    assert lines == [] and not (out / "ckpt-L10.npz").exists()
    shutil.copy(reference[1], out / "ckpt-L11.npz")  # not its checkpoint: refused
    with pytest.raises(
        OutputFolderError, match=r"ckpt-L11.npz was written for another configuration \(lengths"
    ):
        run_sweep(dataclasses.replace(_tiny(), lengths=(10, 11)), str(out), log=lines.append)
