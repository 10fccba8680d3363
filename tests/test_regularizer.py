"""Omega and its immediate derivative against an independent float64 computation.

The reference builds the states with a Python loop, the total derivatives d_k = dE/dh_k by
chaining explicit per-step Jacobians (`jax.jacrev` of one step), and Omega from those
Jacobians; its W_rec-gradient holds h_k, d_k and act'(z_k) fixed by construction (no
stop_gradient, no perturbation trick, no act' formula).
"""

import ast
import dataclasses
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pascanu_jax as pj

ACT = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}


def reference(params, inputs, targets, task, activation, bound):
    act = ACT[activation]
    W_in, b = params["W_in"], params["b"]
    T, B, _ = inputs.shape
    H = params["W_rec"].shape[0]

    def pre(h_prev, u, W):
        return h_prev @ W + u @ W_in + b

    def forward(W):
        hs, h = [], jnp.zeros((B, H))
        for t in range(T):
            h = act(pre(h, inputs[t], W))
            hs.append(h)
        return jnp.stack(hs)

    W0 = params["W_rec"]
    states = forward(W0)
    h_prev = [jnp.zeros((B, H))] + [states[t] for t in range(T - 1)]
    # J[t][b][j, i] = d h_t[j] / d h_{t-1}[i], explicit, per sequence.
    J = [
        [
            jax.jacrev(lambda hp, t=t, s=s: act(pre(hp, inputs[t, s], W0)))(h_prev[t][s])
            for s in range(B)
        ]
        for t in range(T)
    ]
    partial = jax.grad(lambda S: task.loss(params, S, targets))(states)  # immediate dE/dh_t
    d = [None] * T
    d[T - 1] = partial[T - 1]
    for t in range(T - 2, -1, -1):
        d[t] = partial[t] + jnp.stack([d[t + 1][s] @ J[t + 1][s] for s in range(B)])
    d = jnp.stack(d)
    # act'(z_t) as an explicit Jacobian of the activation, frozen at the trained W0.
    dact = [
        [jax.jacrev(act)(pre(h_prev[t][s], inputs[t, s], W0)) for s in range(B)] for t in range(T)
    ]

    def omega_ref(W):
        total, kept = 0.0, 0
        for t in range(T):
            for s in range(B):
                d_sq = float(jnp.sum(d[t, s] ** 2))
                if d_sq < bound:
                    continue
                J_frozen = dact[t][s] @ jax.jacrev(lambda hp: hp @ W)(h_prev[t][s])
                back = d[t, s] @ J_frozen
                total = total + (jnp.sum(back**2) / d_sq - 1.0) ** 2
                kept += 1
        return total / max(kept, 1), kept

    (om, kept), g_om = jax.value_and_grad(omega_ref, has_aux=True)(W0)
    ratios = np.array(
        [
            [
                float(jnp.linalg.norm(d[t, s] @ J[t][s]) / jnp.linalg.norm(d[t, s]))
                if float(jnp.sum(d[t, s] ** 2)) >= bound
                else np.nan
                for s in range(B)
            ]
            for t in range(T)
        ]
    )
    # Frozen Jacobians equal the true ones at W0: the reference is the paper's Omega.
    for t in (0, T - 1):
        np.testing.assert_allclose(dact[t][0] @ W0.T, J[t][0], rtol=1e-12, atol=1e-14)
    g_E = jax.grad(lambda p: task.loss(p, jnp.stack(_loop_states(p, inputs, act)), targets))(params)
    return states, d, om, g_om, g_E, kept, ratios


def _loop_states(p, inputs, act):
    h, hs = jnp.zeros((inputs.shape[1], p["W_rec"].shape[0])), []
    for u in inputs:
        h = act(h @ p["W_rec"] + u @ p["W_in"] + p["b"])
        hs.append(h)
    return hs


def _problem(scheme, task_name, length, seed=0, scale=1.0):
    task = pj.get_task(task_name)
    k1, k2 = jax.random.split(jax.random.key(seed))
    params = pj.init_rnn(k1, scheme, task.n_in, 5, task.n_out)
    params = {
        k: jnp.asarray(v, jnp.float64) * (scale if k == "W_rec" else 1.0) for k, v in params.items()
    }
    inputs, targets = task.sample(k2, 3, length)
    return (
        task,
        params,
        inputs.astype(jnp.float64),
        jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, targets),
    )


CASES = [
    ("basic_tanh", "tanh", "temporal_order", 12, 15.0),
    ("sigmoid", "sigmoid", "temporal_order", 12, 300.0),
    ("basic_tanh", "tanh", "addition", 10, 15.0),
]


@pytest.mark.parametrize(("scheme", "activation", "task_name", "length", "scale"), CASES)
@pytest.mark.parametrize("bound_mode", ["default", "median"])
def test_omega_matches_explicit_jacobians(scheme, activation, task_name, length, scale, bound_mode):
    with jax.enable_x64(True):
        task, params, inputs, targets = _problem(scheme, task_name, length, scale=scale)
        states = pj.rnn_states(params, inputs, activation)
        chex.assert_type(states, jnp.float64)
        if bound_mode == "default":
            bound = 1e-20
        else:  # leave out about half of the (k, sequence) pairs
            ref_d = pj.bptt(params, inputs, targets, task=task, activation=activation)[2]
            bound = float(np.median(np.sum(np.asarray(ref_d) ** 2, -1)))
        ref_states, ref_d, ref_om, ref_g_om, ref_g_E, kept, ref_ratios = reference(
            params, inputs, targets, task, activation, bound
        )
        T, B = inputs.shape[:2]
        if bound_mode == "median":
            assert 0 < kept < T * B
        if task_name == "addition":  # steps after the last real one carry no error
            assert kept < T * B or targets.last[0] == T - 1
        np.testing.assert_allclose(states, ref_states, rtol=1e-12, atol=1e-14)

        alpha = 4.0
        loss, om, grads = pj.loss_and_grads(
            params, inputs, targets, task=task, activation=activation, alpha=alpha, bound=bound
        )
        assert om > 1e-3  # a non-trivial value is being compared
        np.testing.assert_allclose(om, ref_om, rtol=1e-10)
        np.testing.assert_allclose(loss, task.loss(params, ref_states, targets), rtol=1e-12)
        for name in ("W_in", "b", "W_out", "b_out"):
            np.testing.assert_allclose(grads[name], ref_g_E[name], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(
            grads["W_rec"], ref_g_E["W_rec"] + alpha * ref_g_om, rtol=1e-9, atol=1e-15
        )
        # d_k from the explicit backward pass equals the Jacobian chain.
        _, states_b, d_b, _ = pj.bptt(params, inputs, targets, task=task, activation=activation)
        np.testing.assert_allclose(d_b, ref_d, rtol=1e-10, atol=1e-300)
        ratios = pj.jacobian_norm_ratios(params["W_rec"], states_b, d_b, activation, bound)
        np.testing.assert_allclose(ratios, ref_ratios, rtol=1e-10)
        g_om_lib = jax.grad(pj.omega)(params["W_rec"], ref_states, ref_d, activation, bound)
        np.testing.assert_allclose(g_om_lib, ref_g_om, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("x64", [False, True])
def test_alpha_zero_is_exactly_grad_of_E(activation, x64):
    """alpha = 0 adds nothing: the gradient is jax.grad of E through the scan, to rounding
    (the explicit BPTT sums dE/dW_rec in one GEMM, autodiff step by step)."""
    with jax.enable_x64(x64):
        dtype = jnp.float64 if x64 else jnp.float32
        task = pj.get_task("temporal_order")
        k1, k2 = jax.random.split(jax.random.key(3))
        params = jax.tree.map(lambda x: x.astype(dtype), pj.init_rnn(k1, "basic_tanh", 6, 50, 4))
        inputs, targets = task.sample(k2, 20, 30)
        inputs = inputs.astype(dtype)
        _, _, grads = pj.loss_and_grads(
            params, inputs, targets, task=task, activation=activation, alpha=0.0
        )
        expected = jax.jit(
            jax.grad(lambda p: task.loss(p, pj.rnn_states(p, inputs, activation), targets))
        )(params)
        for name in expected:
            scale = float(jnp.max(jnp.abs(expected[name])))
            np.testing.assert_allclose(
                grads[name],
                expected[name],
                rtol=1e-12 if x64 else 1e-4,
                atol=scale * (1e-13 if x64 else 1e-5),
            )


def test_omega_is_zero_when_every_pair_is_left_out():
    task = pj.get_task("temporal_order")
    params = pj.init_rnn(jax.random.key(0), "basic_tanh", 6, 8, 4)
    inputs, targets = task.sample(jax.random.key(1), 4, 10)
    _loss, om, grads = pj.loss_and_grads(
        params, inputs, targets, task=task, activation="tanh", alpha=4.0, bound=1e30
    )
    assert float(om) == 0.0
    expected = jax.jit(jax.grad(lambda p: task.loss(p, pj.rnn_states(p, inputs, "tanh"), targets)))(
        params
    )
    np.testing.assert_allclose(grads["W_rec"], expected["W_rec"], rtol=1e-5, atol=1e-8)


def test_flag_activation_equals_named_activation():
    task = pj.get_task("temporal_order")
    params = pj.init_rnn(jax.random.key(0), "basic_tanh", 6, 16, 4)
    inputs, targets = task.sample(jax.random.key(1), 4, 20)
    for name, flag in (("tanh", True), ("sigmoid", False)):
        a = pj.loss_and_grads(params, inputs, targets, task=task, activation=name, alpha=2.0)
        b = jax.jit(
            lambda f: pj.loss_and_grads(params, inputs, targets, task=task, activation=f, alpha=2.0)
        )(jnp.asarray(flag))
        chex.assert_trees_all_close(a, b, rtol=1e-6, atol=1e-8)


def test_bad_input_is_a_clear_error():
    task = pj.get_task("temporal_order")
    params = pj.init_rnn(jax.random.key(0), "basic_tanh", 6, 8, 4)
    inputs, targets = task.sample(jax.random.key(1), 4, 10)
    with pytest.raises(ValueError, match="W_in"):
        pj.loss_and_grads(params, inputs[..., :5], targets, task=task, activation="tanh", alpha=0.0)
    with pytest.raises(ValueError, match="W_out"):
        pj.loss_and_grads(
            params, inputs, targets, task="temporal_order_3bit", activation="tanh", alpha=0.0
        )
    with pytest.raises(ValueError, match="unknown activation"):
        pj.loss_and_grads(params, inputs, targets, task=task, activation="relu", alpha=0.0)
    with pytest.raises(ValueError, match="unknown task"):
        pj.loss_and_grads(params, inputs, targets, task="adding", activation="tanh", alpha=0.0)
    with pytest.raises(TypeError, match="Objective"):
        pj.loss_and_grads(params, inputs, targets, task=object(), activation="tanh", alpha=0.0)


@dataclasses.dataclass(frozen=True)
class MeanSquaredLastState:
    """An objective that is no task of the catalogue: E = mean of |y_T - 1|^2."""

    n_out: int = 4

    def loss(self, params, states, targets):
        del targets
        return jnp.mean(jnp.sum((pj.readout(params, states[-1]) - 1.0) ** 2, axis=-1))


def test_any_objective_works_and_a_name_equals_its_task():
    task = pj.get_task("temporal_order")
    params = pj.init_rnn(jax.random.key(0), "basic_tanh", 6, 8, 4)
    inputs, targets = task.sample(jax.random.key(1), 4, 10)
    by_name = pj.loss_and_grads(
        params, inputs, targets, task="temporal_order", activation="tanh", alpha=4.0
    )
    by_task = pj.loss_and_grads(params, inputs, targets, task=task, activation="tanh", alpha=4.0)
    chex.assert_trees_all_equal(by_name, by_task)

    objective = MeanSquaredLastState()
    assert isinstance(objective, pj.Objective) and isinstance(task, pj.Objective)
    loss, om, grads = pj.loss_and_grads(
        params, inputs, targets, task=objective, activation="tanh", alpha=0.0
    )

    def E(p):
        return objective.loss(p, pj.rnn_states(p, inputs, "tanh"), None)

    np.testing.assert_allclose(loss, E(params), rtol=1e-6)
    chex.assert_trees_all_close(grads, jax.grad(E)(params), rtol=1e-5, atol=1e-7)
    assert float(om) > 0.0
    with pytest.raises(ValueError, match="W_out"):
        pj.loss_and_grads(
            params, inputs, targets, task=MeanSquaredLastState(3), activation="tanh", alpha=0.0
        )


def test_regulariser_and_gradient_flow_do_not_import_the_task_catalogue_at_module_level():
    root = pathlib.Path(pj.__file__).parent
    for path in (root / "regularizer.py", root / "analysis" / "gradient_flow.py"):
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        modules = {n.module for n in top if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        assert "pascanu_jax.tasks" not in modules, path
        assert "pascanu_jax.losses" in modules, path  # the Objective protocol
