"""|dE/dh_k| and the per-step Jacobian norm ratios against an independent computation.

The reference runs the RNN as a Python loop and gets dE/dh_k for each k by differentiating
a function of h_k alone: the loss of the states before k (held fixed), h_k itself, and the
states re-computed from h_k onwards. The ratios use an explicit per-step Jacobian
(`jax.jacrev` of one step). No perturbation trick, no `bptt`, no act' formula.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pascanu_jax as pj

ACT = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}


def step(params, act, h_prev, u):
    return act(h_prev @ params["W_rec"] + u @ params["W_in"] + params["b"])


@functools.partial(jax.jit, static_argnames=("task", "activation"))
def reference(params, inputs, targets, task, activation):
    """(T, B) |dE/dh_k| and ratios; one compiled program, so the many small steps of the
    loops cost one compilation instead of one dispatch each."""
    act = ACT[activation]
    T, B, _ = inputs.shape
    H = params["W_rec"].shape[0]
    states, h = [], jnp.zeros((B, H))
    for t in range(T):
        h = step(params, act, h, inputs[t])
        states.append(h)

    def loss_from(k, h_k):
        hs, h = [*states[:k], h_k], h_k
        for t in range(k + 1, T):
            h = step(params, act, h, inputs[t])
            hs.append(h)
        return task.loss(params, jnp.stack(hs), targets)

    d = [jax.grad(loss_from, argnums=1)(k, states[k]) for k in range(T)]
    ratios = []
    for k in range(T):
        h_prev = states[k - 1] if k else jnp.zeros((B, H))
        row = []
        for s in range(B):
            J = jax.jacrev(lambda hp, k=k, s=s: step(params, act, hp, inputs[k, s]))(h_prev[s])
            row.append(jnp.linalg.norm(d[k][s] @ J) / jnp.linalg.norm(d[k][s]))
        ratios.append(jnp.stack(row))
    return jnp.linalg.norm(jnp.stack(d), axis=-1), jnp.stack(ratios)


H, B, T = 6, 3, 10


def make_params(task, seed, rec_std):
    """Random weights (numpy, so no compilation per shape): any parameters will do."""
    rng = np.random.default_rng(seed)
    shapes = {"W_in": (task.n_in, H), "W_rec": (H, H), "b": (H,), "W_out": (H, task.n_out)}
    params = {k: rng.normal(0.0, 0.5, shape).astype(np.float32) for k, shape in shapes.items()}
    params["W_rec"] *= rec_std / 0.5
    params["b_out"] = np.zeros(task.n_out, np.float32)
    return jax.tree.map(jnp.asarray, params)


def make_batch(task, seed):
    """One-hot inputs (T, B, n_in) and targets in the task's format."""
    rng = np.random.default_rng(seed)
    inputs = np.eye(task.n_in, dtype=np.float32)[rng.integers(0, task.n_in, (T, B))]
    if task.pads:
        last = np.array([T - 1, T - 4, T - 6])
        return inputs, pj.Padded(jnp.asarray(rng.random((B, 1)), jnp.float32), jnp.asarray(last))
    shape = (T, B) if task.head.name == "all_softmax" else (B,)
    return jnp.asarray(inputs), jnp.asarray(rng.integers(0, task.n_out, shape))


@pytest.mark.parametrize(
    "task_name, activation", [("temporal_order", "tanh"), ("memorization_5bit", "sigmoid")]
)
def test_contributions_and_ratios_equal_an_independent_computation(task_name, activation):
    task = pj.get_task(task_name)
    params = make_params(task, 0, rec_std=1.5 if activation == "tanh" else 4.0)
    inputs, targets = make_batch(task, 1)
    flow = pj.measure_gradient_flow(params, inputs, targets, task=task, activation=activation)
    chex.assert_shape([flow.contributions, flow.ratios], (T, B))
    ref_norms, ref_ratios = reference(params, inputs, targets, task, activation)
    assert float(jnp.min(ref_norms)) > 1e-9  # the comparison is not between zeros
    np.testing.assert_allclose(flow.contributions, ref_norms, rtol=1e-4, atol=0)
    np.testing.assert_allclose(flow.ratios, ref_ratios, rtol=1e-4)
    mean = pj.temporal_contributions(params, inputs, targets, task=task, activation=activation)
    np.testing.assert_allclose(mean, ref_norms.mean(axis=1), rtol=1e-4)
    per_sequence = pj.temporal_contributions(
        params, inputs, targets, task=task, activation=activation, per_sequence=True
    )
    np.testing.assert_array_equal(per_sequence, flow.contributions)


def test_vanishing_gradient_shows_as_decay_towards_k_1():
    # A small W_rec: |dE/dh_k| falls by orders of magnitude from k = T back to k = 1.
    task = pj.get_task("temporal_order")
    inputs, targets = make_batch(task, 1)
    params = make_params(task, 0, rec_std=0.05)
    c = pj.temporal_contributions(params, inputs, targets, task=task, activation="tanh")
    assert c[-1] / c[0] > 1e6
    assert np.all(np.diff(np.log(np.asarray(c))) > 0)


def test_padded_steps_contribute_nothing():
    task = pj.get_task("addition")
    params = make_params(task, 0, rec_std=0.5)
    inputs, targets = make_batch(task, 2)
    flow = pj.measure_gradient_flow(params, inputs, targets, task=task, activation="tanh")
    last = np.asarray(targets.last)
    for s in range(B):
        assert np.all(np.asarray(flow.contributions[last[s] + 1 :, s]) == 0)
        assert np.all(np.asarray(flow.contributions[: last[s] + 1, s]) > 0)
        assert np.all(np.isnan(np.asarray(flow.ratios[last[s] + 1 :, s])))
