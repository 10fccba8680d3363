"""The GPU runbook (benchmarks/gpu_runbook.sh) parses, rejects bad options in one line,
and its Fig. 7 projection (benchmarks/project_fig7.py) computes what its docstring says."""

import importlib.util
import json
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "benchmarks" / "gpu_runbook.sh"


def load():
    spec = importlib.util.spec_from_file_location(
        "project_fig7", ROOT / "benchmarks" / "project_fig7.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_runbook_shell_syntax_and_bad_options():
    assert subprocess.run(["bash", "-n", str(RUNBOOK)]).returncode == 0
    assert RUNBOOK.read_text().count("set -euo pipefail") == 1
    for args, message in [
        (["--bogus"], "unknown option --bogus"),
        (["--wheels", "/no/such/folder"], "--wheels: no folder /no/such/folder"),
        (["--skip-install", "--wheels", str(ROOT)], "exclude each other"),
    ]:
        done = subprocess.run(["bash", str(RUNBOOK), *args], capture_output=True, text=True)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and message in done.stderr
    done = subprocess.run(
        ["bash", str(RUNBOOK), "--skip-install"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SWEEP_UPDATES": "1500"},
    )
    assert done.returncode == 2 and "multiple of 1000" in done.stderr


def sweep_files(tmp_path):
    """A two-length slice: 1000 updates of L = 50 in 10 s, 500 of L = 100 in 11 s."""
    summary = {
        "50": {"compile_s": 4.0, "wall_s": 10.0, "eval_s": 1.0},
        "100": {"compile_s": 6.0, "wall_s": 11.0, "eval_s": 1.0},
    }
    runs = [
        {"length": 50, "updates": 1000},
        {"length": 50, "updates": 300},  # solved early: the program ran on
        {"length": 100, "updates": 500},
    ]
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "results.json").write_text(json.dumps({"runs": runs}))
    return summary, runs


def test_projection_from_a_small_sweep(tmp_path):
    summary, runs = sweep_files(tmp_path)
    out = load().project(summary, runs, lengths=(50, 200), max_updates=10_000)
    # s/update/step: 10 / 1000 / 50 = 2e-4 and 11 / 500 / 100 = 2.2e-4 -> mean 2.1e-4.
    assert out["measured"]["50"]["seconds_per_update"] == pytest.approx(0.01)
    assert out["measured"]["100"]["updates"] == 500
    assert out["seconds_per_update_step"] == pytest.approx(2.1e-4)
    # Per length: 2.1e-4 L 10,000 + the mean compile, 5 s.
    assert out["projected_seconds_per_length"]["50"] == pytest.approx(105 + 5)
    assert out["projected_seconds_per_length"]["200"] == pytest.approx(420 + 5)
    assert out["projected_seconds"] == pytest.approx(535)
    assert out["projected_hours"] == pytest.approx(535 / 3600)
    with pytest.raises(ValueError, match="no finished length"):
        load().project({}, runs)


def test_projection_cli(tmp_path, capsys):
    sweep_files(tmp_path)
    target = tmp_path / "projection.json"
    load().main([str(tmp_path), "--lengths", "50", "--max-updates", "1000", "--json", str(target)])
    saved = json.loads(target.read_text())
    assert saved["projected_seconds"] == pytest.approx(2.1e-4 * 50 * 1000 + 5)
    assert "projected grid (1 lengths x 1,000 updates)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        load().main([str(tmp_path / "missing")])
    assert "summary.json not found" in capsys.readouterr().err


def test_a_copy_outside_git_takes_its_commit_from_the_environment(tmp_path, monkeypatch):
    # A lent machine gets the working tree without .git: the runbook names the commit.
    from pascanu_jax.outputs import provenance

    monkeypatch.setenv("PASCANU_JAX_COMMIT", "ab" * 20)
    assert provenance.git_state.__wrapped__(str(tmp_path)) == {"commit": "ab" * 20, "dirty": None}
    monkeypatch.delenv("PASCANU_JAX_COMMIT")
    assert provenance.git_state.__wrapped__(str(tmp_path)) == {"commit": None, "dirty": None}
    # Inside the checkout the environment does not override git.
    monkeypatch.setenv("PASCANU_JAX_COMMIT", "ab" * 20)
    assert provenance.git_state.__wrapped__(str(ROOT))["commit"] != "ab" * 20
    record = provenance.provenance()
    assert {"matmul_precision", "tf32_override"} <= set(record)
