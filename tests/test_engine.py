"""The training engine against plain single-run Python loops and independent counts."""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pascanu_jax as pj
from pascanu_jax.experiments import engine
from pascanu_jax.experiments.runner import initial_state, train
from pascanu_jax.experiments.sharding import run_mesh, to_devices, to_host
from pascanu_jax.outputs.checkpoint import load_arrays, save_arrays

TASK = pj.get_task("temporal_order")
# Never solves (0 errors out of 100 needed within 40 updates): nothing freezes.
LOOP_CFG = engine.EngineConfig(
    TASK,
    (10, 11),
    n_hidden=16,
    max_updates=40,
    eval_every=10,
    periods_per_call=4,
    screen_size=100,
    success=0.005,
)
# A low threshold makes clipping fire within these few updates.
TIGHT = pj.Method("MSGD-C@0.05", 0.05, 0.0)
LOOP_RUNS = [engine.RunSpec(i, m, 3) for i in pj.SCHEMES for m in [*pj.METHODS, TIGHT]]
# Solves quickly with smart_tanh + MSGD-CR; sigmoid + MSGD exhausts its budget.
SOLVE_CFG = engine.EngineConfig(
    TASK, (10, 11), max_updates=1200, eval_every=100, periods_per_call=3, confirm_size=2000
)
SOLVE_RUNS = [
    engine.RunSpec("smart_tanh", "MSGD-CR", 0),
    engine.RunSpec("basic_tanh", "MSGD-C", 1),
    engine.RunSpec("sigmoid", "MSGD", 0),
]


def python_loop(cfg, spec, n_updates):
    """One run, one update per Python iteration, with the engine's keys."""
    scheme, method = pj.get_scheme(spec.init), pj.get_method(spec.method)
    keys = engine.run_keys(spec.seed, cfg.lengths[0])
    params = pj.init_rnn(keys["init"], scheme, TASK.n_in, cfg.n_hidden, TASK.n_out)
    tx = pj.sgd_with_clipping(
        method.threshold, cfg.learning_rate, nonfinite=cfg.nonfinite, guard=method.guard
    )
    opt_state = tx.init(params)
    for i in range(n_updates):
        inputs, targets = TASK.sample(
            jax.random.fold_in(keys["data"], i), cfg.batch, cfg.lengths[0]
        )
        _, _, grads = pj.loss_and_grads(
            params, inputs, targets, task=TASK, activation=scheme.activation, alpha=method.alpha
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    return params, opt_state


def _device_state(cfg, runs):
    const, state, _ = initial_state(cfg, runs, len(runs))
    mesh = run_mesh()
    return to_devices(const, mesh), to_devices(state, mesh)


def test_engine_equals_python_loop_for_every_method_and_activation():
    const, state = _device_state(LOOP_CFG, LOOP_RUNS)
    state, _, periods = engine.train_call(LOOP_CFG, const, state)
    assert int(periods) == 4
    state = to_host(state)
    np.testing.assert_array_equal(state.updates, 40)
    assert not state.candidate.any()
    for r, spec in enumerate(LOOP_RUNS):
        params, opt_state = python_loop(LOOP_CFG, spec, 40)
        for name in params:
            np.testing.assert_allclose(
                state.params[name][r], params[name], rtol=2e-5, atol=1e-7, err_msg=f"{spec} {name}"
            )
        assert pj.clip_state(state.opt_state).clipped[r] == pj.clip_state(opt_state).clipped
        np.testing.assert_allclose(
            pj.clip_state(state.opt_state).norm_sum[r], pj.clip_state(opt_state).norm_sum, rtol=1e-4
        )
    # The methods really differ: Omega changes MSGD-CR; clipping changes MSGD-C where it fired.
    W, clipped = state.params["W_rec"], pj.clip_state(state.opt_state).clipped
    for base in (0, 4, 8):  # MSGD, MSGD-C, MSGD-CR, tight MSGD-C of one initialisation
        assert not np.allclose(W[base], W[base + 2])
        assert np.allclose(W[base], W[base + 1]) == (clipped[base + 1] == 0)
        assert clipped[base] == 0 and clipped[base + 3] > 0
        assert not np.allclose(W[base], W[base + 3])


def test_frozen_runs_stay_frozen():
    const, state = _device_state(LOOP_CFG, LOOP_RUNS)
    before = to_host(state)
    frozen = np.arange(len(LOOP_RUNS)) % 2 == 1
    state = state._replace(active=to_devices(~frozen, run_mesh()))
    state, diag, _ = engine.train_call(LOOP_CFG, const, state)
    after, diag = to_host(state), to_host(diag)
    for leaf_before, leaf_after in zip(
        jax.tree.leaves(before.params), jax.tree.leaves(after.params), strict=True
    ):
        np.testing.assert_array_equal(leaf_after[frozen], leaf_before[frozen])
        assert not np.array_equal(leaf_after[~frozen], leaf_before[~frozen])
    np.testing.assert_array_equal(after.updates, np.where(frozen, 0, 40))
    np.testing.assert_array_equal(pj.clip_state(after.opt_state).count, np.where(frozen, 0, 40))
    np.testing.assert_array_equal(diag.trained, np.broadcast_to(~frozen, diag.trained.shape))


def test_error_count_matches_numpy():
    params = pj.init_rnn(jax.random.key(0), "basic_tanh", 6, 12, 4)
    params["W_rec"] = params["W_rec"] * 6.0
    key = jax.random.key(5)
    n, lengths = 1200, (20, 41)  # three chunks, the last one part-masked; a drawn length each
    frac = float(engine.misclassified_fraction(TASK, lengths, params, jnp.bool_(True), key, n))
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    wrong = []
    for i in range(3):
        inputs, targets = engine.draw(TASK, lengths, jax.random.fold_in(key, i), 500)
        x, last = np.asarray(inputs, np.float64), np.asarray(targets.last)
        h = np.zeros((500, 12))
        states = []
        for u in x:
            h = np.tanh(h @ p["W_rec"] + u @ p["W_in"] + p["b"])
            states.append(h)
        final = np.stack(states)[last, np.arange(500)]
        pred = (final @ p["W_out"] + p["b_out"]).argmax(-1)
        wrong += list(pred != np.asarray(targets.target))
    expected = np.sum(wrong[:n]) / n
    assert 0.05 < expected < 0.95
    assert frac == pytest.approx(expected, abs=1.5 / n)  # float32 argmax ties aside


@pytest.fixture(scope="module")
def solved():
    return train(SOLVE_CFG, SOLVE_RUNS)


def test_success_is_confirmed_on_fresh_sequences(solved):
    smart, _, sigmoid = solved.runs
    assert smart["solved"] and smart["error"] < 0.01
    assert smart["updates"] % SOLVE_CFG.eval_every == 0 and smart["updates"] < 1200
    assert not sigmoid["solved"] and sigmoid["updates"] == 1200 and sigmoid["error"] > 0.5
    for run, params in zip(solved.runs, solved.params, strict=True):
        keys = engine.run_keys(run["seed"], 10)
        key = jax.random.fold_in(keys["confirm"], run["updates"])
        act = jnp.bool_(pj.get_scheme(run["init"]).activation == "tanh")
        error = engine.misclassified_fraction(TASK, (10, 11), params, act, key, 2000)
        assert float(error) == pytest.approx(run["error"], abs=1e-7)
    # Diagnostics: one row per run per period it trained, with sane values.
    rows = [d for d in solved.diagnostics if d["init"] == "smart_tanh"]
    assert [d["updates"] for d in rows] == list(range(100, smart["updates"] + 1, 100))
    assert rows[-1]["error"] < 0.01
    for d in solved.diagnostics:
        assert 0.0 <= d["clipped_fraction"] <= 1.0 and d["grad_norm"] > 0
        assert d["spectral_radius"] > 0 and d["omega"] >= 0
    sig = [d for d in solved.diagnostics if d["init"] == "sigmoid"]
    assert all(d["clipped_fraction"] == 0 for d in sig)  # MSGD never clips
    assert solved.eval_s < 0.5 * solved.wall_s


def test_resume_ends_as_an_uninterrupted_run(tmp_path, solved):
    ckpt = str(tmp_path / "ckpt.npz")
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(SOLVE_CFG, SOLVE_RUNS, checkpoint=ckpt, progress=interrupt)
    assert os.path.exists(ckpt)
    resumed = train(SOLVE_CFG, SOLVE_RUNS, checkpoint=ckpt)
    strip = lambda runs: [{k: v for k, v in r.items() if k != "wall_s"} for r in runs]  # noqa: E731
    assert strip(resumed.runs) == strip(solved.runs)
    assert resumed.diagnostics == solved.diagnostics
    for a, b in zip(resumed.params, solved.params, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    # A finished checkpoint is read back as it is: nothing to compile, nothing trains.
    again = train(SOLVE_CFG, SOLVE_RUNS, checkpoint=ckpt)
    assert strip(again.runs) == strip(solved.runs) and again.compile_s < 0.1
    with pytest.raises(ValueError, match="another configuration"):
        train(SOLVE_CFG, SOLVE_RUNS[:2], checkpoint=ckpt)


def test_checkpoint_from_before_method_fields_resumes(tmp_path, solved):
    """A checkpoint whose runs name methods without the fields `Method` gained later
    (optimizer, hyperparams, clip, measure) resumes: a missing field is its default."""
    ckpt = str(tmp_path / "ckpt.npz")
    runs = [engine.RunSpec(r.init, pj.get_method(r.method), r.seed) for r in SOLVE_RUNS]
    train(SOLVE_CFG, runs, checkpoint=ckpt)
    arrays, meta = load_arrays(ckpt)
    later = ("optimizer", "hyperparams", "clip", "measure")
    for run in meta["identity"]["runs"]:
        run["method"] = {k: v for k, v in run["method"].items() if k not in later}
    save_arrays(ckpt, arrays, meta)
    again = train(SOLVE_CFG, runs, checkpoint=ckpt)
    assert [r["updates"] for r in again.runs] == [r["updates"] for r in solved.runs]
    assert again.compile_s < 0.1
    # A field that differs from the default still refuses.
    meta["identity"]["runs"][0]["method"]["optimizer"] = "adam"
    save_arrays(ckpt, arrays, meta)
    with pytest.raises(ValueError, match=r"another configuration \(runs"):
        train(SOLVE_CFG, runs, checkpoint=ckpt)


def test_sharded_over_four_devices_equals_one_device(solved):
    script = """
import json, jax, numpy as np, pascanu_jax as pj
from pascanu_jax.experiments import engine
from pascanu_jax.experiments.runner import train
import test_engine as t
assert jax.device_count() == 4
res = train(t.SOLVE_CFG, t.SOLVE_RUNS, measure_eval=False)
W_rec = [np.asarray(p["W_rec"]).tolist() for p in res.params]
print(json.dumps({"runs": res.runs, "W_rec": W_rec}))
"""
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "PYTHONPATH": os.path.dirname(__file__),
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sharded = json.loads(out.stdout.strip().splitlines()[-1])
    for a, b in zip(sharded["runs"], solved.runs, strict=True):
        assert {k: v for k, v in a.items() if k != "wall_s"} == {
            k: v for k, v in b.items() if k != "wall_s"
        }
    for a, b in zip(sharded["W_rec"], solved.params, strict=True):
        np.testing.assert_allclose(np.asarray(a), b["W_rec"], rtol=1e-5, atol=1e-7)


def test_variable_length_draws_pad_to_the_longest():
    lengths = set()
    for i in range(20):
        inputs, targets = engine.draw(TASK, (10, 30), jax.random.key(i), 4)
        assert inputs.shape == (29, 4, 6)
        lengths.add(int(targets.last[0]) + 1)
    assert len(lengths) > 5 and min(lengths) >= 10 and max(lengths) < 30


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="multiple of eval_every"):
        engine.EngineConfig(TASK, (10, 11), max_updates=150, eval_every=100)
    with pytest.raises(ValueError, match="length >= 10"):
        engine.EngineConfig(TASK, (5, 6))
    with pytest.raises(ValueError, match="unknown optimizer or method 'SGDD'"):
        train(LOOP_CFG, [engine.RunSpec("basic_tanh", "SGDD", 0)])
    with pytest.raises(ValueError, match="unknown initialisation"):
        train(LOOP_CFG, [engine.RunSpec("xavier", "MSGD", 0)])


RANGE_CFG = dataclasses.replace(LOOP_CFG, lengths=(10, 30), length_buckets=4)


def test_buckets_cover_the_range():
    assert RANGE_CFG.buckets() == (14, 19, 24, 29)
    assert dataclasses.replace(RANGE_CFG, lengths=(50, 200), length_buckets=6).buckets() == (
        74,
        99,
        124,
        149,
        174,
        199,
    )
    assert LOOP_CFG.buckets() == (10,)
    assert dataclasses.replace(RANGE_CFG, lengths=(10, 13), length_buckets=6).buckets() == (
        10,
        11,
        12,
    )
    for n in range(200):
        length = int(engine.train_length(RANGE_CFG, n))
        bound = RANGE_CFG.buckets()[int(engine.bucket_of(RANGE_CFG, n))]
        assert 10 <= length <= bound < length + 5


def test_bucketed_mixed_length_training_equals_padding_to_the_longest():
    """The same math at every bucket size: trajectories agree with one bucket (pad to 29)."""
    runs = [engine.RunSpec(i, "MSGD-CR", 2) for i in pj.SCHEMES]
    finals = []
    for buckets in (1, 4):
        cfg = dataclasses.replace(RANGE_CFG, length_buckets=buckets)
        const, state = _device_state(cfg, runs)
        state, _, _ = engine.train_call(cfg, const, state)
        finals.append(to_host(state.params))
    for name in finals[0]:
        np.testing.assert_allclose(finals[0][name], finals[1][name], rtol=1e-4, atol=1e-6)


def test_plain_msgd_blows_up_into_a_failure_and_the_guard_keeps_msgd_c_finite():
    # Output weights of 1e30 overflow the logits: every gradient is NaN from the start.
    runs = [engine.RunSpec("basic_tanh", m, 0) for m in ("MSGD", "MSGD-C", "MSGD-CR")]
    const, state = _device_state(LOOP_CFG, runs)
    host = to_host(state)
    params = {**host.params, "W_out": np.full_like(host.params["W_out"], 1e30)}
    state = to_devices(host._replace(params=params), run_mesh())
    state, diag, periods = engine.train_call(LOOP_CFG, const, state)
    state, diag = to_host(state), to_host(diag)
    assert int(periods) == 4  # the guarded runs train on
    leaves = [np.asarray(x) for x in jax.tree.leaves(state.params)]
    finite = np.array([all(np.isfinite(x[r]).all() for x in leaves) for r in range(3)])
    np.testing.assert_array_equal(finite, [False, True, True])
    np.testing.assert_array_equal(state.candidate, False)
    np.testing.assert_array_equal(state.updates, [10, 40, 40])  # MSGD stopped, as failed
    np.testing.assert_array_equal(diag.nonfinite[0], [10, 10, 10])  # every step tripped
    # The guard shrinks W_rec by (1 - lr * 0.02) per trip and leaves the rest unchanged.
    W0 = host.params["W_rec"][1]
    np.testing.assert_allclose(state.params["W_rec"][1], W0 * (1 - 0.01 * 0.02) ** 40, rtol=1e-5)
