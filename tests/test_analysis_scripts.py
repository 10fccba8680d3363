"""The figure scripts run end to end at a tiny size, write their files (and nothing else),
and reject bad input with a message that says what is valid."""

import csv
import importlib
import pathlib
import re
import subprocess
import sys

import pytest

import pascanu_jax as pj

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(name):
    return importlib.import_module(f"pascanu_jax.cli.{name}")


def assert_written(out, names):
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary files left
    for name in names:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) if name.endswith(".png") else b"<svg" in data[:2000]


def usage_error(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_bifurcation(tmp_path, capsys):
    load("bifurcation").main(["--grid", "20", "--steps", "20", "--out", str(tmp_path), "--svg"])
    assert_written(tmp_path, ["fig3_bifurcation.png", "fig3_bifurcation.svg"])
    b1 = float(re.search(r"b1 = (\S+)", capsys.readouterr().out).group(1))
    assert b1 == pytest.approx(pj.bifurcations(5.0).b1, abs=1e-6)


def test_bifurcation_rejects_bad_input(tmp_path, capsys):
    main = load("bifurcation").main
    assert "--w must be > 4" in usage_error(main, ["--w", "3", "--out", str(tmp_path)], capsys)
    err = usage_error(main, ["--b-min", "1", "--b-max", "0", "--out", str(tmp_path)], capsys)
    assert "--b-min < --b-max" in err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_error_surface(tmp_path, capsys):
    argv = ["--grid", "20", "--updates", "30", "--start", "4.5", "-2.5", "--out", str(tmp_path)]
    load("error_surface").main(argv)
    assert_written(tmp_path, ["fig6_error_surface.png"])
    plain, clipped = map(
        float, re.search(r"plain (\S+), clipped (\S+);", capsys.readouterr().out).groups()
    )
    assert plain > 5.0 and clipped == pytest.approx(0.1, rel=1e-4)  # the jump at the wall


def test_error_surface_rejects_bad_input(capsys):
    main = load("error_surface").main
    assert "LO < HI" in usage_error(main, ["--w-range", "5", "3"], capsys)
    assert "must be > 0" in usage_error(main, ["--threshold", "0"], capsys)


def test_gradient_flow_training(tmp_path, capsys):
    argv = ["--updates", "20", "--length", "10", "--hidden", "6", "--batch", "3"]
    load("gradient_flow").main([*argv, "--eval-batch", "3", "--out", str(tmp_path)])
    assert_written(tmp_path, ["gradient_flow.png"])
    out = capsys.readouterr().out
    assert "MSGD, after 20 updates" in out and "MSGD-CR, after 20 updates" in out


def test_gradient_flow_rejects_bad_input(capsys):
    main = load("gradient_flow").main
    assert "--length must be >= 10" in usage_error(main, ["--length", "5"], capsys)
    assert "invalid choice" in usage_error(main, ["--methods", "Adam"], capsys)


# The header the sweep writes (issue 3), spelled out here independently of the script.
COLUMNS = [
    "task", "init", "method", "seed", "length", "updates", "loss",
    "grad_norm", "clipped_fraction", "nonfinite", "omega", "spectral_radius", "error",
]  # fmt: skip


def write_sweep(folder, header=COLUMNS):
    folder.mkdir()
    with (folder / "diagnostics.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for method, clip in (("MSGD", 0.0), ("MSGD-CR", 0.4)):
            for seed in range(2):
                for updates in range(20, 201, 20):
                    omega = 0.0 if updates == 20 else 0.5 / updates
                    row = ["temporal_order", "smart_tanh", method, seed, 50, updates, 1.3, 2.0]
                    writer.writerow([*row, clip, 0, omega, 0.95 + updates / 1000, 0.7])


def test_gradient_flow_sweep_diagnostics(tmp_path):
    write_sweep(tmp_path / "sweep")
    out = tmp_path / "figures"
    argv = ["--sweep", str(tmp_path / "sweep"), "--out", str(out), "--svg"]
    load("gradient_flow").main([*argv, "--select", "method=MSGD-CR"])
    assert_written(out, ["sweep_diagnostics.png", "sweep_diagnostics.svg"])


def test_gradient_flow_sweep_rejects_bad_files(tmp_path, capsys):
    main = load("gradient_flow").main
    err = usage_error(main, ["--sweep", str(tmp_path / "none")], capsys)
    assert "diagnostics.csv not found" in err
    write_sweep(tmp_path / "bad", header=[*COLUMNS[:-1], "errors"])
    err = usage_error(main, ["--sweep", str(tmp_path / "bad")], capsys)
    assert "expected " + ",".join(COLUMNS) in err
    write_sweep(tmp_path / "good")
    err = usage_error(main, ["--sweep", str(tmp_path / "good"), "--select", "method=X"], capsys)
    assert "no rows match" in err
    assert "KEY one of" in usage_error(main, ["--sweep", "x", "--select", "colour=red"], capsys)


def test_a_script_runs_from_the_command_line(tmp_path):
    command = [sys.executable, "scripts/bifurcation.py", "--grid", "10", "--steps", "5"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert_written(tmp_path, ["fig3_bifurcation.png"])
