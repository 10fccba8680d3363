"""The command line: `python -m pascanu_jax` (the `pascanu-jax` entry point's main) lists
the commands, runs each one's --help, and refuses an unknown command in one line."""

import shutil
import subprocess
import sys

import pytest

from pascanu_jax.cli import COMMANDS, main


def test_module_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "pascanu_jax", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert f"  {name} " in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert f"usage: pascanu-jax {name}" in capsys.readouterr().out


def test_unknown_and_missing_commands(capsys):
    assert main(["sweeep"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown command 'sweeep'; one of sweep," in err
    assert main([]) == 2 and "usage: pascanu-jax <command>" in capsys.readouterr().out


def test_installed_entry_point():
    exe = shutil.which("pascanu-jax")
    if exe is None:
        pytest.skip("pascanu-jax is not on PATH (install with pip install -e .)")
    result = subprocess.run([exe, "sweep", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--preset" in result.stdout
