"""The package's public face: what `import pascanu_jax` loads, and the lazy top-level names."""

import json
import os
import subprocess
import sys

import pytest

import pascanu_jax as pj

HEAVY = ("music21", "matplotlib", "pascanu_jax.natural", "pascanu_jax.analysis")


def _run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_leaves_natural_problems_music21_and_matplotlib_out():
    loaded = _run(
        "import sys, json, pascanu_jax as pj\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert loaded == []


def test_engine_and_core_are_top_level():
    from pascanu_jax.experiments.engine import EngineConfig, RunSpec
    from pascanu_jax.experiments.runner import train

    assert (pj.train, pj.EngineConfig, pj.RunSpec) == (train, EngineConfig, RunSpec)
    for name in ("loss_and_grads", "init_rnn", "get_task", "clip_by_pascanu_norm", "Objective"):
        assert name in pj.__all__ and callable(getattr(pj, name))


def test_each_lazy_name_resolves_to_its_module_object():
    names = {name: module for module, names in pj._LAZY_MODULES.items() for name in names}
    # In a fresh interpreter: the first use loads the module, and the name is that object.
    resolved = _run(
        "import sys, json, importlib, pascanu_jax as pj\n"
        f"names = {names!r}\n"
        "first = 'pascanu_jax.natural' in sys.modules\n"
        "ok = {n: getattr(pj, n) is getattr(importlib.import_module(m), n) "
        "for n, m in names.items()}\n"
        "print(json.dumps({'natural_before': first, 'ok': ok}))"
    )
    assert resolved["natural_before"] is False
    assert resolved["ok"] == dict.fromkeys(names, True)
    for name in ("load_jsb_chorales", "TrainConfig", "train_methods", "descent", "bifurcations"):
        assert name in pj.__all__ and name in dir(pj)
    assert pj.NoteHead is pj.NotePrediction and pj.CharHead is pj.CharPrediction
    assert pj.natural.load_problem is pj.load_problem


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'load_everything'"):
        pj.load_everything  # noqa: B018
    assert not hasattr(pj, "music21")
