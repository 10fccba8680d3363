"""The sweep and generalisation scripts end to end at a tiny scale; resume; bad flags."""

import csv
import importlib
import json
import os
import pathlib

import jax
import numpy as np
import pytest

from pascanu_jax.experiments.sweep import DIAGNOSTIC_FIELDS, RESULT_FIELDS, run_sweep

CLI = {"sweep_lengths": "sweep"}


def load(name):
    return importlib.import_module(f"pascanu_jax.cli.{CLI.get(name, name)}")


SWEEP_ARGS = [
    "--lengths",
    "10,11",
    "--seeds",
    "1",
    "--inits",
    "smart_tanh,sigmoid",
    "--methods",
    "MSGD,MSGD-CR",
    "--max-updates",
    "1200",
    "--eval-every",
    "100",
]


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert load("sweep_lengths").main([*SWEEP_ARGS, "--out", str(out)]) == 0
    return out


def _strip(results):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in results]


def test_sweep_writes_results_diagnostics_and_figure(sweep_out):
    record = json.loads((sweep_out / "results.json").read_text())
    for key in ("commit", "dirty", "jax", "jaxlib", "device", "written"):
        assert key in record["provenance"]
    assert record["settings"]["max_updates"] == 1200
    results = record["runs"]
    assert len(results) == 2 * 2 * 2  # lengths x inits x methods x 1 seed
    for r in results:
        assert set(RESULT_FIELDS) <= set(r)
        assert r["updates"] == 1200 or (r["solved"] and r["updates"] % 100 == 0)
        assert r["solved"] == (r["error"] < 0.01)
    assert any(r["solved"] for r in results if r["init"] == "smart_tanh")
    assert not any(r["solved"] for r in results if r["init"] == "sigmoid")
    with open(sweep_out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(results)
    with open(sweep_out / "diagnostics.csv") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == DIAGNOSTIC_FIELDS
        rows = list(reader)
    for r in results:  # one diagnostics row per evaluation of every run
        mine = [
            d
            for d in rows
            if (d["init"], d["method"], int(d["length"])) == (r["init"], r["method"], r["length"])
        ]
        assert [int(d["updates"]) for d in mine] == list(range(100, r["updates"] + 1, 100))
    assert (sweep_out / "fig7.png").stat().st_size > 10_000
    summary = json.loads((sweep_out / "summary.json").read_text())
    assert sorted(summary) == ["10", "11"]
    for t in summary.values():
        assert 0 <= t["eval_fraction"] < 1 and t["compile_s"] > 0 and t["wall_s"] > 0
    assert not list(sweep_out.glob("ckpt-*"))


def test_interrupted_sweep_resumes_to_the_same_results(sweep_out, tmp_path):
    _, cfg = load("sweep_lengths").parse_args([*SWEEP_ARGS, "--out", str(tmp_path)])
    per_length = len(cfg.runs()) * cfg.max_updates

    def interrupt(done, total):
        if done > per_length:  # length 11 has trained for one compiled call
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, str(tmp_path), interrupt)
    assert (tmp_path / "ckpt-L11.npz").exists()
    assert len(json.loads((tmp_path / "results.json").read_text())["runs"]) == 4  # length 10
    resumed = run_sweep(cfg, str(tmp_path))
    expected = json.loads((sweep_out / "results.json").read_text())["runs"]
    assert _strip(resumed) == _strip(expected)
    assert (tmp_path / "diagnostics.csv").read_text() == (sweep_out / "diagnostics.csv").read_text()
    # A re-run of a finished sweep trains nothing and keeps the results, provenance included.
    before = (tmp_path / "results.json").read_bytes()
    assert _strip(run_sweep(cfg, str(tmp_path))) == _strip(expected)
    assert (tmp_path / "results.json").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "adding"], "unknown task 'adding'"),
        (["--lengths", "5"], "length >= 10"),
        (["--lengths", "ten"], "--lengths"),
        (["--inits", "xavier"], "--inits: unknown ['xavier']"),
        (["--methods", "MSGD,Adamm"], "--methods: method 'Adamm': unknown optimizer or method"),
        (["--methods", "adam:lrate=1e-3"], "unknown key 'lrate' for adam; valid: lr,"),
        (["--methods", "adam:lr=-1e-3"], "learning_rate must be > 0, got -1e-3"),
        (["--methods", "sgd:clip=1+clipvalue=1"], "give one clipping rule"),
        (["--methods", "MSGD,MSGD"], "give distinct methods"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--max-updates", "250"], "multiple of the evaluation interval"),
        (["--max-updates", "0"], "--max-updates must be >= 1"),
        (["--eval-every", "-5"], "--eval-every must be >= 1"),
        (["--lengths", ""], "--lengths"),
        (["--lengths", "10,10"], "distinct lengths"),
        (["--preset", "huge"], "invalid choice: 'huge'"),
    ],
)
def test_bad_flags_fail_before_any_work(args, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        load("sweep_lengths").parse_args([*args, "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_sweep_refuses_an_output_folder_with_other_settings(sweep_out):
    _, cfg = load("sweep_lengths").parse_args([*SWEEP_ARGS, "--seeds", "2"])
    with pytest.raises(ValueError, match="other settings"):
        run_sweep(cfg, str(sweep_out))


def test_generalize_end_to_end_and_resume(tmp_path, capsys):
    gen = load("generalize")
    args = [
        "--train-lengths",
        "10,20",
        "--test-lengths",
        "10,15,40",
        "--max-updates",
        "600",
        "--eval-every",
        "100",
        "--test-size",
        "600",
        "--init",
        "smart_tanh",
        "--out",
        str(tmp_path),
    ]
    assert gen.main(args) == 0
    record = json.loads((tmp_path / "generalization.json").read_text())
    assert record["settings"]["train_lengths"] == [10, 20]
    assert record["provenance"]["jax"] == jax.__version__
    with np.load(tmp_path / record["models"]["0"]) as model:
        assert sorted(model.files) == ["W_in", "W_out", "W_rec", "b", "b_out"]
        assert model["W_rec"].shape == (50, 50)
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    assert (tmp_path / "diagnostics.csv").read_text().startswith("seed,updates,loss")
    # Training on after success: 200 updates more, tested on the same test sequences.
    assert gen.main([*args, "--train-on", "200"]) == 0
    stage = json.loads((tmp_path / "generalization.json").read_text())["train_on"]["200"]
    assert [r["updates"] for r in stage["training"]] == [200]
    assert sorted(t["length"] for t in stage["tests"]) == [10, 15, 40]
    assert (tmp_path / stage["models"]["0"]).exists()
    report = load("report")
    assert report.main(["generalization", str(tmp_path / "generalization.json")]) == 0
    assert report.main(["tasks", str(tmp_path.parent)]) == 0
    printed = capsys.readouterr().out
    assert "after 200 updates more" in printed and "| temporal_order | " in printed
    assert "misclassified at each test length" in printed
    run = record["training"][0]
    assert run["updates"] == 600 or run["solved"]
    tests = {t["length"]: t["error"] for t in record["tests"]}
    assert sorted(tests) == [10, 15, 40] and all(0 <= e <= 1 for e in tests.values())
    if run["solved"]:  # inside the training range the model must do as its check said
        assert tests[10] < 0.05 and tests[15] < 0.05
    assert (tmp_path / "generalization.png").stat().st_size > 10_000
    # Re-running evaluates nothing new and trains nothing: the record is unchanged.
    mtime = os.path.getmtime(tmp_path / "train-state.npz")
    assert gen.main(args) == 0
    assert json.loads((tmp_path / "generalization.json").read_text())["tests"] == record["tests"]
    assert os.path.getmtime(tmp_path / "train-state.npz") == mtime
    # Damaged: a test entry edited away and a model file truncated are redone and
    # rewritten (from the finished checkpoint), with a warning line each; nothing trains.
    capsys.readouterr()
    edited = json.loads((tmp_path / "generalization.json").read_text())
    edited["tests"] = [*edited["tests"][1:], {"seed": 0, "length": "x"}]
    (tmp_path / "generalization.json").write_text(json.dumps(edited))
    model = tmp_path / record["models"]["0"]
    intact = model.read_bytes()
    model.write_bytes(intact[:100])
    assert gen.main(args) == 0
    captured = capsys.readouterr()
    assert "damaged or repeated test entries dropped" in captured.err
    assert "a model file is missing or damaged; rewriting it" in captured.err
    assert f"tested seed 0 at length {record['tests'][0]['length']}" in captured.out
    again = json.loads((tmp_path / "generalization.json").read_text())
    assert sorted(map(json.dumps, again["tests"])) == sorted(map(json.dumps, record["tests"]))
    assert model.read_bytes() == intact
    assert os.path.getmtime(tmp_path / "train-state.npz") == mtime
    (tmp_path / "generalization.json").write_text("{")
    assert gen.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'generalization.json'} is damaged")
    assert err.count("\n") == 1
    with pytest.raises(SystemExit):
        gen.parse_args(["--train-lengths", "20,10"])
    assert gen.parse_args(["--success", "0.05"])[1].success == 0.05


@pytest.mark.parametrize(("k", "n"), [(0, 5), (2, 5), (5, 5), (7, 20), (1, 1)])
def test_wilson_interval_solves_the_score_equation(k, n):
    """The bounds are the p with |k/n - p| = z sqrt(p (1 - p) / n), found by bisection."""
    from pascanu_jax.experiments.sweep import wilson_interval

    z, phat = 1.96, k / n
    gap = lambda p: abs(phat - p) - z * np.sqrt(p * (1 - p) / n)  # noqa: E731

    def root(a, b):  # gap(a) and gap(b) of opposite signs
        for _ in range(100):
            m = (a + b) / 2
            a, b = (m, b) if np.sign(gap(m)) == np.sign(gap(a)) else (a, m)
        return (a + b) / 2

    lo = 0.0 if k == 0 else root(0.0, phat - 1e-12)
    hi = 1.0 if k == n else root(phat + 1e-12, 1.0)
    np.testing.assert_allclose(wilson_interval(k, n), (lo, hi), atol=1e-9)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(n + 1, n)


def test_a_mean_norm_sweep_draws_and_reports_success_against_the_multiple(
    tmp_path, sweep_out, capsys
):
    # §3.2's heuristic: the paper's fixed threshold beside two multiples of the mean norm.
    out = tmp_path / "threshold"
    methods = "MSGD-C,MSGD-C:clip=0.5xmean+measure=20,MSGD-C:clip=5xmean+measure=20"
    inits = "smart_tanh,basic_tanh"
    args = ["--lengths", "10", "--seeds", "2", "--inits", inits, "--methods", methods]
    args += ["--max-updates", "600", "--eval-every", "100", "--out", str(out)]
    assert load("sweep_lengths").main(args) == 0
    assert (out / "threshold.png").stat().st_size > 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    for run, row in zip(runs, rows, strict=True):
        measured = "xmean" in run["method"]
        assert ("measured_norm" in run) == measured and (row["measured_norm"] != "") == measured
        if measured:
            multiple = float(run["method"].split("=")[1].split("x")[0])
            assert run["clip_threshold"] == pytest.approx(multiple * run["measured_norm"])
    report = load("report")
    assert report.main(["threshold", str(out / "results.json")]) == 0
    printed = capsys.readouterr().out
    assert "| init | method | length | mean norm | fixed 1 | 0.5x mean | 5x mean |" in printed
    row = next(line for line in printed.splitlines() if line.startswith("| smart_tanh | MSGD-C"))
    cells = [c.strip() for c in row.split("|")[5:8]]
    for cell, spec in zip(cells, methods.split(","), strict=True):
        k = sum(r["solved"] for r in runs if r["method"] == spec and r["init"] == "smart_tanh")
        assert cell.startswith(f"{k}/2 [")
    # Pooled over the two inits: 4 runs per multiple.
    row = next(line for line in printed.splitlines() if line.startswith("| all inits | MSGD-C"))
    cells = [c.strip() for c in row.split("|")[5:8]]
    for cell, spec in zip(cells, methods.split(","), strict=True):
        k = sum(r["solved"] for r in runs if r["method"] == spec)
        assert cell.startswith(f"{k}/4 [")
    # A sweep without such a method is refused in one line.
    with pytest.raises(SystemExit, match="no method clips at a multiple of the mean norm"):
        report.main(["threshold", str(sweep_out / "results.json")])


def test_an_optimizer_sweep_draws_and_reports_each_remedy(tmp_path, sweep_out, capsys):
    # Beyond the paper: one optimizer setting with and without each of the remedies.
    out = tmp_path / "remedies"
    methods = "adam:lr=1e-2,adam:lr=1e-2+clip=1,adam:lr=1e-2+alpha=4,adam:lr=1e-2+clip=1+alpha=4"
    args = ["--lengths", "10", "--seeds", "1", "--inits", "smart_tanh,basic_tanh"]
    args += ["--methods", methods, "--max-updates", "200", "--eval-every", "100"]
    assert load("sweep_lengths").main([*args, "--out", str(out)]) == 0
    assert (out / "remedies.png").stat().st_size > 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert load("report").main(["remedies", str(out / "results.json")]) == 0
    printed = capsys.readouterr().out
    assert "| length | optimizer | none | clip=1 | alpha=4 | clip=1+alpha=4 |" in printed
    row = next(line for line in printed.splitlines() if line.startswith("| 10 | adam:lr=1e-2 |"))
    cells = [c.strip() for c in row.split("|")[3:7]]
    for cell, spec in zip(cells, methods.split(","), strict=True):
        per_init = [
            sum(r["solved"] for r in runs if r["method"] == spec and r["init"] == init)
            for init in ("smart_tanh", "basic_tanh")
        ]
        assert cell.startswith(f"{sum(per_init)}/2 [") and cell.endswith(
            f"({per_init[0]}, {per_init[1]})"
        )
    # The paper's sweep has no optimizer beyond SGD: no remedies.png, and its three
    # methods still read as one setting with three remedies.
    assert not (sweep_out / "remedies.png").exists()
    assert load("report").main(["remedies", str(sweep_out / "results.json")]) == 0
    assert "| length | optimizer | none | clip=1+alpha=4 |" in capsys.readouterr().out


def test_report_prints_the_fig7_table_with_intervals(sweep_out, capsys):
    assert load("report").main(["fig7", str(sweep_out / "results.json")]) == 0
    printed = capsys.readouterr().out
    assert "| sigmoid | MSGD | 0/1 [0, 79] | 0/1 [0, 79] |" in printed
    with pytest.raises(SystemExit):
        load("report").main(["fig7", str(sweep_out / "missing.json")])


def test_report_gives_the_median_of_an_even_number_of_solved_runs(tmp_path, capsys):
    # Four solved runs: the median is the mean of the middle two, not the upper one.
    runs = [
        {"init": "basic_tanh", "method": "MSGD-CR", "length": 250, "seed": s, "solved": True,
         "updates": u, "nonfinite": 0}
        for s, u in enumerate((146_000, 152_000, 263_000, 268_000))
    ]  # fmt: skip
    provenance = {"commit": "0" * 40, "dirty": False, "jax": jax.__version__, "device": "cpu"}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"provenance": provenance, "runs": runs}))
    assert load("report").main(["fig7", str(path)]) == 0
    assert "- MSGD-CR: L = 250: 207,500" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, folder",
    [("fig7", "fig7_cpu"), ("threshold", "threshold_heuristic"), ("remedies", "optimizers")],
)
def test_the_reproduction_reports_tables_are_what_report_prints(kind, folder, capsys):
    # A table printed from committed results must not go stale when the report's
    # arithmetic changes: every line report prints is in REPRODUCTION.md (for the
    # threshold sweep, the success table, which the page shows as printed).
    root = pathlib.Path(__file__).resolve().parents[1]
    page = (root / "docs" / "REPRODUCTION.md").read_text()
    assert load("report").main([kind, str(root / "docs/results" / folder / "results.json")]) == 0
    printed = capsys.readouterr().out
    if kind == "threshold":
        printed = printed.split("median updates")[0]
    lines = [line for line in printed.splitlines() if line.strip() and "provenance" not in line]
    assert len(lines) > 10
    assert [line for line in lines if line not in page] == []
