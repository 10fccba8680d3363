"""The fused Pallas kernels (`pallas_rnn.py`) against the XLA `loss_and_grads`, on CPU in
Pallas interpret mode.

Tolerances: the kernels accumulate the weight gradients step by step and compute
h W_rec + u W_in + b as two products, where the XLA path makes one GEMM over all steps and
one product of [h, u, 1]; the float32 rounding differs, nothing else. rtol 1e-5 / atol 1e-6
holds for loss, Omega and every gradient entry at these sizes (T <= 22). The engine
trajectories compound those roundings over 30 chaotic SGD updates: checked at rtol 1e-4 /
atol 1e-6 (the engine tests compare the engine with a Python loop at a similar 2e-5).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pascanu_jax as pj
from pascanu_jax import pallas_rnn
from pascanu_jax.experiments import engine
from pascanu_jax.experiments.runner import initial_state
from pascanu_jax.experiments.sharding import run_mesh, to_devices, to_host
from pascanu_jax.regularizer import DEFAULT_BOUND, bptt

RTOL, ATOL = 1e-5, 1e-6
# (task, nominal length, batch, hidden): every head kind the tasks use; batch and hidden
# deliberately not tile multiples, so the padding of B, H, n_in and n_out is exercised.
CASES = [
    ("temporal_order", 12, 5, 10),  # last-step softmax
    ("addition", 12, 6, 9),  # last-step linear, Padded targets (lengths differ by batch)
    ("memorization_5bit", 3, 4, 17),  # softmax at every step (H = 17 pads to 32)
]


def _problem(name, length, batch, hidden, seed=0):
    task = pj.get_task(name)
    params = pj.init_rnn(jax.random.key(seed), "basic_tanh", task.n_in, hidden, task.n_out)
    params["W_rec"] = params["W_rec"] * 1.5  # long enough memory that every step matters
    inputs, targets = task.sample(jax.random.key(seed + 1), batch, length)
    return task, params, inputs, targets


def _assert_close(got, want, rtol=RTOL, atol=ATOL, what=""):
    loss, om, grads = got
    np.testing.assert_allclose(loss, want[0], rtol=rtol, atol=atol, err_msg=f"{what} loss")
    np.testing.assert_allclose(om, want[1], rtol=rtol, atol=atol, err_msg=f"{what} omega")
    assert set(grads) == set(want[2])
    for k in grads:
        assert grads[k].shape == want[2][k].shape, k
        np.testing.assert_allclose(
            grads[k], want[2][k], rtol=rtol, atol=atol, err_msg=f"{what} {k}"
        )


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_xla_for_every_head_activation_and_alpha(case):
    task, params, inputs, targets = _problem(*case)
    for activation in ("tanh", "sigmoid"):
        for alpha in (0.0, 4.0):
            kw = dict(task=task, activation=activation, alpha=alpha)
            want = pj.loss_and_grads(params, inputs, targets, **kw)
            got = pj.loss_and_grads(params, inputs, targets, backend="pallas", **kw)
            _assert_close(got, want, what=f"{case[0]} {activation} alpha={alpha}")
            assert float(want[1]) > 0.01  # Omega is really there to compare
    # alpha enters the W_rec gradient only, and does change it.
    g0 = pj.loss_and_grads(
        params, inputs, targets, task=task, activation="tanh", alpha=0.0, backend="pallas"
    )[2]
    g4 = pj.loss_and_grads(
        params, inputs, targets, task=task, activation="tanh", alpha=4.0, backend="pallas"
    )[2]
    assert not np.allclose(g0["W_rec"], g4["W_rec"], rtol=1e-3)
    np.testing.assert_array_equal(g0["W_in"], g4["W_in"])


def test_padded_steps_and_bound_match_xla():
    """Padded targets with a length per sequence (the all-step head masks the steps after
    each), and a bound that leaves some (step, sequence) pairs out of Omega."""
    task, params, _, _ = _problem("memorization_5bit", 12, 5, 10)
    inputs, targets = task.sample_padded(jax.random.key(3), 5, 10, 12)
    targets = targets._replace(last=targets.last - jnp.arange(5))  # a length per sequence
    d = bptt(params, inputs, targets, task=task, activation="tanh")[2]
    d_sq = np.sum(np.asarray(d) ** 2, -1)
    bound = float(np.median(d_sq[d_sq > 0]))  # half of the non-zero pairs left out
    assert np.sum((d_sq > 0) & (d_sq < bound)) > 0 and np.sum(d_sq >= bound) > 0
    kw = dict(task=task, activation="tanh", alpha=4.0, bound=bound)
    want = pj.loss_and_grads(params, inputs, targets, **kw)
    _assert_close(pj.loss_and_grads(params, inputs, targets, backend="pallas", **kw), want)


def test_vmap_over_runs_and_batched_entry():
    """Runs with their own parameters, data, activation and alpha: jax.vmap of the one-run
    entry (the engine's path) and the batched entry both equal the XLA path run by run."""
    task = pj.get_task("temporal_order")
    problems = [_problem("temporal_order", 12, 5, 10, seed=s) for s in range(3)]
    params, inputs, targets = (
        jax.tree.map(lambda *x: jnp.stack(x), *[p[i] for p in problems]) for i in (1, 2, 3)
    )
    flags = jnp.array([True, False, True])
    alpha = jnp.array([4.0, 4.0, 0.0])
    singles = [
        pj.loss_and_grads(
            *problems[r][1:],
            task=task,
            activation="tanh" if flags[r] else "sigmoid",
            alpha=float(alpha[r]),
        )
        for r in range(3)
    ]
    want = jax.tree.map(lambda *x: jnp.stack(x), *singles)

    def one(p, x, y, flag, a):
        kw = dict(task=task, activation=flag, alpha=a, backend="pallas")
        return pj.loss_and_grads(p, x, y, **kw)

    _assert_close(jax.jit(jax.vmap(one))(params, inputs, targets, flags, alpha), want, what="vmap")
    got = pallas_rnn.loss_and_grads_runs(
        params, inputs, targets, task=task, activation=flags, alpha=alpha, bound=DEFAULT_BOUND
    )
    _assert_close(got, want, what="batched entry")


def test_engine_trajectories_match_xla_backend():
    cfg = engine.EngineConfig(
        pj.get_task("temporal_order"),
        (10, 11),
        n_hidden=16,
        batch=8,
        max_updates=30,
        eval_every=10,
        periods_per_call=3,
        screen_size=20,
        success=0.001,
    )
    runs = [
        engine.RunSpec("smart_tanh", "MSGD-CR", 0),
        engine.RunSpec("sigmoid", "MSGD-CR", 1),
        engine.RunSpec("basic_tanh", "MSGD-C", 2),
    ]
    out = {}
    for backend in ("xla", "pallas"):
        c = dataclasses.replace(cfg, backend=backend)
        const, state, _ = initial_state(c, runs, len(runs))
        mesh = run_mesh()
        const, state = to_devices(const, mesh), to_devices(state, mesh)
        state, diag, periods = engine.train_call(c, const, state, mesh=mesh)
        assert int(periods) == 3
        out[backend] = to_host((state, diag))
    (s_x, d_x), (s_p, d_p) = out["xla"], out["pallas"]
    np.testing.assert_array_equal(s_p.updates, 30)
    for k in s_x.params:
        np.testing.assert_allclose(s_p.params[k], s_x.params[k], rtol=1e-4, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(d_p.loss, d_x.loss, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(d_p.omega, d_x.omega, rtol=1e-4, atol=1e-6)
    assert np.all(d_x.omega[:, :2] > 0)  # MSGD-CR runs
    start = to_host(initial_state(cfg, runs, len(runs))[1])
    assert not np.allclose(s_p.params["W_rec"], start.params["W_rec"])  # it did train


def test_one_line_errors():
    task, params, inputs, targets = _problem("temporal_order", 12, 5, 10)
    kw = dict(task=task, activation="tanh", alpha=0.0)

    def error(**changes):
        args = {"params": params, "inputs": inputs, "targets": targets, **kw, **changes}
        p, x, y = args.pop("params"), args.pop("inputs"), args.pop("targets")
        with pytest.raises(ValueError) as info:
            pj.loss_and_grads(p, x, y, **{"backend": "pallas", **args})
        assert "\n" not in str(info.value)
        return str(info.value)

    assert "xla, pallas" in error(backend="cuda")
    note = pj.NotePrediction()
    note_params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 10, note.n_out)
    assert "last_softmax, last_linear, all_softmax" in error(task=note, params=note_params)
    assert "float32" in error(params={**params, "W_rec": params["W_rec"].astype(jnp.float16)})
    assert "(T, B, n_in)" in error(inputs=inputs[0])
    assert "tanh, sigmoid" in error(activation="relu")
    with pytest.raises(ValueError, match=r"^backend must be one of \('xla', 'pallas'\)"):
        dataclasses.replace(engine.EngineConfig(task, (10, 11)), backend="triton")


def test_kernels_lower_to_triton_for_gpu():
    """No GPU here: lowering for CUDA runs the Pallas Triton lowering (op support,
    power-of-two shapes, dot sizes) on this machine; the vmapped run axis becomes a grid
    dimension of both kernels. Compiling to PTX and running needs a GPU (not done)."""
    for name, length, batch, hidden in CASES:
        task, params, inputs, targets = _problem(name, length, batch, hidden)
        runs = jax.tree.map(lambda x: jnp.stack([x, x]), (params, inputs, targets))

        def grads(p, x, y, flag, task=task):
            kw = dict(task=task, activation=flag, alpha=4.0, bound=DEFAULT_BOUND)
            return pallas_rnn.loss_and_grads(p, x, y, interpret=False, **kw)

        traced = jax.jit(jax.vmap(grads)).trace(*runs, jnp.array([True, False]))
        text = traced.lower(lowering_platforms=("cuda",)).as_text()
        kernels = [
            line for line in text.splitlines() if "custom_call @__gpu$xla.gpu.triton" in line
        ]
        assert len(kernels) == 2, name  # forward, backward
        assert all("grid_y = 2" in k for k in kernels), name
