"""sgd_step, the one update of every training loop: against Algorithm 1 and SGD computed by
hand in float64, frozen runs bitwise unchanged, and the clipping statistics read by name."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pascanu_jax as pj
from pascanu_jax.step import StepMetrics


def _tree(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {
        "W_in": jnp.asarray(scale * rng.normal(size=(3, 4)), jnp.float32),
        "W_rec": jnp.asarray(scale * rng.normal(size=(4, 4)), jnp.float32),
        "b": jnp.asarray(scale * rng.normal(size=(4,)), jnp.float32),
    }


def quadratic(params, target):
    """E = 0.5 |params - target|^2 (so g = params - target), Omega = sum of squares of b."""
    diff = jax.tree.map(lambda p, t: p - t, params, target)
    loss = 0.5 * sum(jnp.sum(d**2) for d in jax.tree.leaves(diff))
    return loss, jnp.sum(params["b"] ** 2), diff


def _f64(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def _norm64(tree):
    return float(np.sqrt(sum(np.sum(x**2) for x in jax.tree.leaves(_f64(tree)))))


@pytest.mark.parametrize("scale", [0.1, 3.0])  # ||g|| below and above the threshold
def test_metrics_and_update_equal_algorithm_1_by_hand(scale):
    params, target = _tree(0), _tree(1)
    target = jax.tree.map(lambda p, t: p - scale * t, params, target)  # g = scale * tree(1)
    lr, threshold = 0.1, 1.0
    new, state, m = pj.sgd_step(
        quadratic,
        params,
        pj.init_opt_state(params),
        target,
        threshold=threshold,
        learning_rate=lr,
    )
    g = jax.tree.map(lambda p, t: p - t, _f64(params), _f64(target))
    norm = _norm64(g)
    assert (norm >= threshold) == (scale > 1)
    factor = min(1.0, threshold / norm)
    expected_update = jax.tree.map(lambda x: -lr * factor * x, g)
    chex.assert_trees_all_close(m.update, expected_update, rtol=1e-5, atol=1e-7)
    expected = jax.tree.map(lambda p, u: p + u, _f64(params), expected_update)
    chex.assert_trees_all_close(new, expected, rtol=1e-5, atol=1e-7)
    assert float(m.loss) == pytest.approx(0.5 * norm**2, rel=1e-5)
    assert float(m.omega) == pytest.approx(float(np.sum(_f64(params)["b"] ** 2)), rel=1e-5)
    assert float(m.grad_norm) == pytest.approx(norm, rel=1e-5)
    assert bool(m.clipped) == (scale > 1) and not bool(m.nonfinite)
    clip = pj.clip_state(state)
    assert (int(clip.count), int(clip.clipped), int(clip.nonfinite)) == (1, int(scale > 1), 0)


def test_nonfinite_gradient_skip_shrink_and_no_guard():
    params = _tree(2)

    def bad(p, _):
        g = jax.tree.map(jnp.ones_like, p)
        g["b"] = g["b"].at[0].set(jnp.nan)
        return jnp.float32(1.0), jnp.float32(0.0), g

    state = pj.init_opt_state(params)
    new, _, m = pj.sgd_step(bad, params, state, None, threshold=1.0)  # "skip"
    chex.assert_trees_all_equal(new, params)
    assert bool(m.nonfinite) and not bool(m.clipped) and np.isnan(float(m.grad_norm))

    lr = 0.01
    new, _, m = pj.sgd_step(
        bad, params, state, None, threshold=1.0, learning_rate=lr, nonfinite="shrink"
    )
    expected = (1 - lr * 0.02) * np.asarray(params["W_rec"], np.float64)  # the authors' rule
    np.testing.assert_allclose(new["W_rec"], expected, rtol=1e-6)
    chex.assert_trees_all_equal(new["W_in"], params["W_in"])
    assert bool(m.nonfinite)

    # Plain MSGD (no guard) applies the gradient as it is: b[0] becomes NaN.
    new, _, m = pj.sgd_step(bad, params, state, None, threshold=jnp.inf, guard=False)
    assert np.isnan(float(new["b"][0])) and bool(m.nonfinite)


def test_frozen_runs_stay_bitwise_unchanged_and_active_ones_equal_a_lone_run():
    task = pj.get_task("temporal_order")
    runs = [
        pj.init_rnn(jax.random.PRNGKey(i), "smart_tanh", task.n_in, 16, task.n_out)
        for i in range(3)
    ]
    params = jax.tree.map(lambda *x: jnp.stack(x), *runs)
    state = jax.vmap(pj.init_opt_state)(params)
    batch = task.sample(jax.random.PRNGKey(1), 5, 12)
    active = jnp.array([True, False, True])
    thresholds = jnp.array([0.05, 0.05, jnp.inf])

    def one(p, s, threshold, on, steps):
        grads = pj.rnn_gradients(task, activation="tanh", alpha=4.0)

        def body(carry, _):
            p, s = carry
            p, s, m = pj.sgd_step(grads, p, s, batch, threshold=threshold, active=on)
            return (p, s), m

        return jax.lax.scan(body, (p, s), length=steps)

    run = jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None)), static_argnums=4)
    (new, new_state), metrics = run(params, state, thresholds, active, 3)
    frozen = lambda tree: jax.tree.map(lambda x: x[1], tree)  # noqa: E731
    chex.assert_trees_all_equal(frozen(new), frozen(params))
    chex.assert_trees_all_equal(frozen(new_state), frozen(state))
    for leaf in jax.tree.leaves(frozen(metrics)):
        assert not np.any(np.asarray(leaf)), "a frozen run reports zero metrics"
    assert int(pj.clip_state(new_state).count[1]) == 0
    # The active runs: as if each ran alone, and they moved.
    for i in (0, 2):
        pick = lambda tree, i=i: jax.tree.map(lambda x: x[i], tree)  # noqa: E731
        (alone, alone_state), alone_m = jax.jit(one, static_argnums=4)(
            pick(params), pick(state), thresholds[i], True, 3
        )
        chex.assert_trees_all_close(pick(new), alone, rtol=1e-6, atol=1e-7)
        chex.assert_trees_all_close(pick(new_state), alone_state, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(pick(metrics).grad_norm, alone_m.grad_norm, rtol=1e-6)
        assert not np.allclose(pick(new)["W_rec"], pick(params)["W_rec"])
    assert np.all(np.asarray(metrics.clipped[0]))  # threshold 0.05: every update clipped
    assert not np.any(np.asarray(metrics.clipped[2]))  # inf: none


def test_rnn_step_is_the_optax_chain_bitwise():
    """The step is loss_and_grads, then sgd_with_clipping, then apply_updates."""
    task = pj.get_task("addition")
    params = pj.init_rnn(jax.random.PRNGKey(3), "basic_tanh", task.n_in, 12, task.n_out)
    inputs, targets = task.sample(jax.random.PRNGKey(4), 4, 15)
    tx = pj.sgd_with_clipping(0.5, 0.03, nonfinite="shrink", guard=True)
    state = tx.init(params)

    @jax.jit
    def by_hand(params, state):
        loss, omega, grads = pj.loss_and_grads(
            params, inputs, targets, task=task, activation="tanh", alpha=2.0
        )
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss, omega

    @jax.jit
    def by_step(params, state):
        grads = pj.rnn_gradients(task, activation="tanh", alpha=2.0)
        return pj.sgd_step(
            grads,
            params,
            state,
            (inputs, targets),
            threshold=0.5,
            learning_rate=0.03,
            nonfinite="shrink",
        )

    p1, s1, loss, omega = by_hand(params, state)
    p2, s2, m = by_step(params, state)
    chex.assert_trees_all_equal(p1, p2)
    chex.assert_trees_all_equal(s1, s2)
    assert float(loss) == float(m.loss) and float(omega) == float(m.omega) and omega > 0


def test_clipping_statistics_by_name_add_up_the_metrics():
    params = _tree(5)
    state = pj.init_opt_state(params)
    chex.assert_trees_all_equal(state, pj.sgd_with_clipping(3.0, 0.5).init(params))
    norms, clipped = [], 0
    for i, scale in enumerate([0.05, 4.0, 0.05, 9.0, 0.05]):
        goal = jax.tree.map(lambda p, t, s=scale: p - s * t, params, _tree(10 + i))
        params, state, m = pj.sgd_step(quadratic, params, state, goal, threshold=1.0)
        assert isinstance(m, StepMetrics)
        norms.append(float(m.grad_norm))
        clipped += int(m.clipped)
    clip = pj.clip_state(state)
    assert clipped == sum(n >= 1.0 for n in norms) == 2
    assert (int(clip.count), int(clip.clipped), int(clip.nonfinite)) == (5, 2, 0)
    np.testing.assert_allclose(float(clip.mean_norm), np.mean(norms), rtol=1e-6)
    # optax reads the same fields by name.
    assert float(optax.tree.get(state, "norm")) == norms[-1]
    assert int(optax.tree.get(state, "clipped")) == 2
