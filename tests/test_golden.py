"""Pins the training numerics: a tiny engine run against committed golden values.

Training is chaotic, so any change to what the engine computes (the protocol, the data
schedule, even the rounding of a fused kernel) moves these numbers. When a change does so
on purpose, regenerate them and every committed result they invalidate in the same change:

    python tests/test_golden.py --regenerate

The values hold for the jax/jaxlib versions pinned in pyproject.toml on an x86-64 CPU.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import jax
import numpy as np
import pytest

import pascanu_jax as pj
from pascanu_jax.experiments import engine
from pascanu_jax.experiments.runner import train

GOLDEN = pathlib.Path(__file__).parent / "golden" / "engine.json"
TASK = pj.get_task("temporal_order")
FIXED = engine.EngineConfig(
    TASK,
    (10, 11),
    max_updates=600,
    eval_every=100,
    periods_per_call=2,
    screen_size=100,
    confirm_size=500,
)
RANGE = dataclasses.replace(FIXED, lengths=(10, 30), max_updates=300, length_buckets=4)
CASES = {
    "fixed": (FIXED, [engine.RunSpec(i, m, 0) for i in pj.SCHEMES for m in pj.METHODS]),
    "range": (
        RANGE,
        [engine.RunSpec("basic_tanh", m, s) for m in ("MSGD", "MSGD-CR") for s in (0, 1)],
    ),
}


def measure() -> dict:
    out = {"jax": jax.__version__}
    for name, (cfg, runs) in CASES.items():
        res = train(cfg, runs, measure_eval=False)
        out[name] = [
            {
                **{k: r[k] for k in ("init", "method", "seed", "solved", "updates", "nonfinite")},
                "error": r["error"],
                "params": {k: [float(v.sum()), float(np.abs(v).sum())] for k, v in p.items()},
                "loss": [
                    d["loss"]
                    for d in res.diagnostics
                    if d["seed"] == r["seed"]
                    and (d["init"], d["method"]) == (r["init"], r["method"])
                ],
            }
            for r, p in zip(res.runs, res.params, strict=True)
        ]
    return out


@pytest.fixture(scope="module")
def measured():
    return measure()


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_numerics_match_the_golden_values(measured, case):
    golden = json.loads(GOLDEN.read_text())
    hint = "training numerics changed: see tests/test_golden.py for what to regenerate"
    for got, want in zip(measured[case], golden[case], strict=True):
        for key in ("init", "method", "seed", "solved", "updates", "nonfinite"):
            assert got[key] == want[key], f"{hint}: {want['init']} {want['method']} {key}"
        np.testing.assert_allclose(got["error"], want["error"], rtol=1e-5, err_msg=hint)
        np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5, err_msg=hint)
        for k in want["params"]:
            np.testing.assert_allclose(got["params"][k], want["params"][k], rtol=1e-5, err_msg=hint)


def test_the_golden_run_exercises_what_it_pins():
    golden = json.loads(GOLDEN.read_text())
    fixed = golden["fixed"]
    assert any(r["solved"] for r in fixed) and not all(r["solved"] for r in fixed)
    assert len({tuple(r["params"]["W_rec"]) for r in golden["range"]}) == 4


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_golden.py --regenerate")
    GOLDEN.write_text(json.dumps(measure(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
