"""scripts/natural.py end to end at a tiny size, into a temporary folder."""

import importlib
import json
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
script = importlib.import_module("pascanu_jax.cli.natural")

TINY = ["--hidden", "16", "--rounds", "2", "--batch", "4", "--length", "20"]


def test_jsb_end_to_end_then_resume(tmp_path, capsys):
    out = tmp_path / "jsb"
    args = ["--dataset", "jsb", "--max-pieces", "4", "--cache-dir", str(tmp_path / "cache")]
    record = script.main([*args, *TINY, "--methods", "MSGD-C", "--out", str(out)])
    assert list(record["methods"]) == ["MSGD-C"]
    record = script.main([*args, *TINY, "--out", str(out)])  # the other two; MSGD-C kept
    printed = capsys.readouterr().out
    assert "training MSGD, MSGD-CR together (done: ['MSGD-C'])" in printed
    assert "not in the paper's Table 1" in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["methods"]["MSGD-C"] == record["methods"]["MSGD-C"]
    assert saved["info"]["pieces"] == {"train": 4, "valid": 4, "test": 4}
    assert saved["info"]["split"]["train"][0].startswith("bach/bwv")
    for name, r in saved["methods"].items():
        assert r["finished"] and r["rounds"] == 2 and len(r["curve"]["valid"]) == 2
        # 88 almost-uniform sigmoid outputs after so few updates: NLL per step near 88 ln 2
        assert 15 < r["test"] < 65 and np.isfinite(r["train"]), name
    assert (out / "learning_curves.png").stat().st_size > 10_000
    assert list(tmp_path.joinpath("cache").glob("jsb_chorales_*.json"))

    assert script.main([*args, *TINY, "--out", str(out), "--lr", "0.01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out} holds a run with other settings (")
    assert "config.learning_rate: 0.3 in the folder, 0.01 now" in err and err.count("\n") == 1

    # A method entry edited away is trained again; the others are kept.
    saved["methods"]["MSGD"] = {"method": "MSGD"}
    (out / "results.json").write_text(json.dumps(saved))
    again = script.main([*args, *TINY, "--out", str(out)])
    captured = capsys.readouterr()
    assert "the entry of MSGD is damaged; training MSGD again" in captured.err
    assert "training MSGD together" in captured.out
    for key in ("train", "valid", "test", "best_round", "rounds"):  # alone, as together
        assert again["methods"]["MSGD"][key] == pytest.approx(record["methods"]["MSGD"][key], 1e-4)
    assert again["methods"]["MSGD-C"] == record["methods"]["MSGD-C"]
    # A damaged results file is one line naming it.
    (out / "results.json").write_text('{"methods": {')
    assert script.main([*args, *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'results.json'} is damaged") and err.count("\n") == 1


def test_chars_five_steps_ahead(tmp_path, capsys):
    text = tmp_path / "book.txt"
    text.write_text("the cat sat on the mat. " * 40)
    out = tmp_path / "chars"
    script.main(["--dataset", "chars", "--data", str(text), "--steps-ahead", "5", "--out",
                 str(out), "--updates-per-round", "3", *TINY])  # fmt: skip
    printed = capsys.readouterr().out
    assert "chars: bits per character" in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["info"]["steps_ahead"] == 5 and saved["info"]["vocabulary"] == 12
    for r in saved["methods"].values():
        assert 0 < r["train"] < 2 * np.log2(12)
        assert r["updates"] == 6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["--methods", "MSGD,SGD"], "unknown method(s) ['SGD']; valid: MSGD, MSGD-C, MSGD-CR"),
        (["--dataset", "ptb"], "--dataset ptb needs --data: a folder with ptb.char"),
        (["--data", "x.pickle"], "use --dataset jsb-pickle --data"),
        (["--dataset", "piano", "--data", "p.pickle", "--steps-ahead", "5"], "text data sets"),
        (["--hidden", "8"], "needs --hidden >= 15"),
        (["--lr", "0"], "--lr must be > 0, got 0.0"),
        (["--rounds", "0"], "--rounds must be >= 1, got 0"),
        (["--batch", "-1"], "--batch must be >= 1, got -1"),
    ],
)
def test_bad_arguments_fail_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        script.parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "invalid choice" in message:
        assert all(name in err for name in ("jsb-pickle", "nottingham", "ptb", "chars"))


def test_missing_data_file_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "Nottingham.pickle"
    args = ["--dataset", "nottingham", "--data", str(missing), "--out", str(tmp_path)]
    assert script.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert f"{missing}: no such file; expected a pickled" in err


def test_a_folder_of_before_config_json_is_resumed_through_its_results(tmp_path, capsys):
    """docs/results/natural_jsb_quick has no config.json: its results.json's settings are
    read, matched, and recorded in config.json; a settings change is refused."""
    out = tmp_path / "jsb"
    out.mkdir()
    (out / "results.json").write_bytes(
        (ROOT / "docs/results/natural_jsb_quick/results.json").read_bytes()
    )
    assert script.main(["--quick", "--out", str(out), "--hidden", "20"]) == 2
    err = capsys.readouterr().err
    assert "config.n_hidden: 50 in the folder, 20 now" in err
    assert not (out / "config.json").exists()
    # The same settings: every method is finished, nothing is trained or loaded again
    # beyond the data set (not available offline here without music21's corpus cache).
    settings = {k: json.loads((out / "results.json").read_text())[k] for k in script.SETTINGS}
    from pascanu_jax.outputs.folder import open_folder

    open_folder(out, None, settings=settings, legacy=script._legacy_settings)
    assert json.loads((out / "config.json").read_text()) == settings


def test_table_sets_the_paper_numbers_beside_ours():
    ours = {m: {"train": 3.0 + i, "test": 3.5 + i} for i, m in enumerate(("MSGD", "MSGD-C"))}
    record = {"dataset": "ptb", "paper_key": "ptb-5", "methods": ours}
    record["info"] = {"unit": "bits per character"}
    lines = script.table(record).splitlines()
    assert lines[0] == "ptb: bits per character"
    assert lines[2].split() == ["this", "run", "train", "3.00", "4.00"]
    assert lines[3].split() == ["test", "3.50", "4.50"]
    # Table 1, Penn Treebank 5 steps: MSGD has no entry, MSGD+C 3.76 (train) / 3.89 (test)
    assert lines[4].split()[-3:] == ["train", "-", "3.76"]
    assert lines[5].split() == ["test", "-", "3.89"]
    assert "Penn Treebank 5 steps" in lines[4]
