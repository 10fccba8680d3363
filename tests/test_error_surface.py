"""The Fig. 6 error surface and gradient descent on it, against plain Python loops and an
independent gradient."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pascanu_jax as pj


def loop_error(w, b, x0=0.5, steps=50, target=0.7):
    """E_50 with the math module, in float64."""
    x = x0
    for _ in range(steps):
        x = w / (1.0 + math.exp(-x)) + b
    return (1.0 / (1.0 + math.exp(-x)) - target) ** 2


def _unrolled_error(p):
    x = jnp.asarray(0.5, jnp.float32)
    for _ in range(50):
        x = p[0] * jax.nn.sigmoid(x) + p[1]
    return (jax.nn.sigmoid(x) - 0.7) ** 2


# dE/d(w, b) by autodiff of an unrolled Python loop (no fori_loop, no optax).
loop_grad = jax.jit(jax.grad(_unrolled_error))


def test_error_surface_equals_a_python_loop():
    ws = np.array([-1.0, 2.0, 4.5, 6.0, 9.0], np.float32)
    bs = np.array([-6.0, -3.0, -1.0, 0.5], np.float32)
    surface = np.asarray(pj.error_surface_grid(ws, bs))
    chex.assert_shape(surface, (4, 5))
    for i, b in enumerate(bs):
        for j, w in enumerate(ws):
            assert surface[i, j] == pytest.approx(
                loop_error(float(w), float(b)), rel=1e-4, abs=1e-7
            )


def test_the_wall_is_where_x0_crosses_the_basin_boundary():
    # Along b = x0 - w sigmoid(x0) the start x0 = 0.5 is the unstable fixed point (w = 6):
    # just below it x_50 falls to the lower attractor, just above it rises to the upper.
    w = 6.0
    b_wall = 0.5 - w / (1.0 + math.exp(-0.5))
    below, above = loop_error(w, b_wall - 1e-3), loop_error(w, b_wall + 1e-3)
    lower = pj.fixed_points(w, b_wall - 1e-3)[0]
    upper = pj.fixed_points(w, b_wall + 1e-3)[-1]
    assert below == pytest.approx((1 / (1 + math.exp(-lower)) - 0.7) ** 2, rel=1e-6)
    assert above == pytest.approx((1 / (1 + math.exp(-upper)) - 0.7) ** 2, rel=1e-6)
    assert below - above > 0.3


@pytest.fixture(scope="module")
def fig6_paths():
    starts = np.array([[4.5, -2.5], [5.0, -2.0], [3.5, -2.5]], np.float32)
    return starts, pj.descent(
        starts, thresholds=np.array([np.inf, 1.0, 0.3]), learning_rate=0.1, updates=40
    )


def test_descent_records_consistent_paths(fig6_paths):
    starts, paths = fig6_paths
    chex.assert_shape(paths.points, (3, 3, 41, 2))
    chex.assert_shape(paths.steps, (3, 3, 40, 2))
    np.testing.assert_array_equal(paths.points[:, :, 0], np.broadcast_to(starts, (3, 3, 2)))
    np.testing.assert_allclose(np.diff(paths.points, axis=2), paths.steps, rtol=1e-5, atol=1e-6)
    for c in range(3):
        for s in range(3):
            for k in (0, 20, 40):
                p = np.asarray(paths.points[c, s, k], np.float64)
                assert paths.errors[c, s, k] == pytest.approx(loop_error(*p), rel=1e-3, abs=1e-6)


def test_unclipped_steps_are_the_plain_gradient_step(fig6_paths):
    _, paths = fig6_paths
    for s in range(3):
        for k in range(40):
            grad = loop_grad(paths.points[0, s, k])
            np.testing.assert_allclose(paths.steps[0, s, k], -0.1 * grad, rtol=2e-3, atol=1e-7)
            assert paths.grad_norms[0, s, k] == pytest.approx(
                float(jnp.linalg.norm(grad)), rel=2e-3
            )
    assert not np.any(paths.clipped[0])


@pytest.mark.parametrize("c, threshold", [(1, 1.0), (2, 0.3)])
def test_every_clipped_step_is_bounded(fig6_paths, c, threshold):
    _, paths = fig6_paths
    norms = np.linalg.norm(np.asarray(paths.steps[c]), axis=-1)
    assert np.all(norms <= 0.1 * threshold * (1 + 1e-5))
    clipped = np.asarray(paths.clipped[c])
    np.testing.assert_array_equal(clipped, np.asarray(paths.grad_norms[c]) >= threshold)
    np.testing.assert_allclose(norms[clipped], 0.1 * threshold, rtol=1e-5)
    assert clipped.any() and not clipped.all()
    # Where not clipped, the step is the plain one: -lr * grad, in the gradient's direction.
    for s, k in zip(*np.nonzero(~clipped), strict=True):
        grad = loop_grad(paths.points[c, s, k])
        np.testing.assert_allclose(paths.steps[c, s, k], -0.1 * grad, rtol=2e-3, atol=1e-7)


def test_at_the_wall_plain_descent_jumps_and_clipping_does_not(fig6_paths):
    # Fig. 6 setting: from (4.5, -2.5) descent reaches the wall within 40 updates.
    _, paths = fig6_paths
    jump = np.linalg.norm(np.asarray(paths.steps[:, 0]), axis=-1).max(-1)
    assert jump[0] > 5.0  # thrown across the valley
    assert jump[1] == pytest.approx(0.1, rel=1e-5)  # lr * threshold
    assert paths.grad_norms[0, 0].max() > 50.0
    # From (3.5, -2.5), in the smooth region, clipping never engages and the paths agree.
    np.testing.assert_allclose(paths.points[0, 2], paths.points[1, 2], rtol=1e-6)


def test_descent_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"\(S, 2\)"):
        pj.descent(np.zeros(2), thresholds=np.array([1.0]), learning_rate=0.1, updates=2)
    with pytest.raises(ValueError, match="> 0"):
        pj.descent(np.zeros((1, 2)), thresholds=np.array([0.0]), learning_rate=0.1, updates=2)
