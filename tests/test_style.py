"""The code base is ruff clean (lint and format), checked by CI with the rest."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args):
    ruff = shutil.which("ruff")
    assert ruff, "ruff is part of the test extra: pip install -e '.[test]'"
    result = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_library_knows_no_command_line():
    """argparse (and so flags) only in pascanu_jax/cli/: the library is called, not parsed."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "pascanu_jax").rglob("*.py"))
        if "cli" not in path.relative_to(ROOT / "pascanu_jax").parts[:1]
        and "import argparse" in path.read_text()
    ]
    assert offenders == []
