"""The error surface of a single recurrent unit and gradient descent on it (Pascanu et al.,
2013, §2.3, Fig. 6).

One unit, no input, trained to reach a target after `steps` steps (eq. 8):

    x_t = w sigmoid(x_{t-1}) + b,    x_0 = 0.5,    E_50(w, b) = (sigmoid(x_50) - 0.7)^2.

Where a small change of (w, b) moves x_0 = 0.5 across the boundary between two basins of
attraction (`dynamics.basin_boundary`), x_50 jumps from one attractor to the other: E has a
steep wall there and dE/d(w, b) explodes. A plain gradient step taken at the wall is thrown
far across the valley; Algorithm 1 (norm clipping) keeps its direction and bounds its
length. `descent` runs both, through optax, from the same starting points.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pascanu_jax.step import init_opt_state, sgd_step

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class OneUnitProblem:
    """The Fig. 6 problem: start state x0, number of steps, target of sigmoid(x_steps)."""

    x0: float = 0.5
    steps: int = 50
    target: float = 0.7


FIG6 = OneUnitProblem()


def final_state(w: Array, b: Array, problem: OneUnitProblem = FIG6) -> Array:
    """x_steps of x_t = w sigmoid(x_{t-1}) + b from x_0 = problem.x0 (scalar w, b).

    Examples:
      >>> from pascanu_jax.analysis.error_surface import final_state
      >>> round(float(final_state(5.0, -2.5)), 3)  # x_50 from x_0 = 0.5
      1.776
    """
    x0 = jnp.asarray(problem.x0, jnp.result_type(w, b, float))
    return jax.lax.fori_loop(0, problem.steps, lambda _, x: w * jax.nn.sigmoid(x) + b, x0)


def one_unit_error(w: Array, b: Array, problem: OneUnitProblem = FIG6) -> Array:
    """E = (sigmoid(x_steps) - target)^2 for scalar w, b; differentiable in both.

    Examples:
      >>> from pascanu_jax.analysis.error_surface import one_unit_error
      >>> round(float(one_unit_error(5.0, -2.5)), 4)  # (sigma(x_50) - 0.7)^2
      0.0241
    """
    return (jax.nn.sigmoid(final_state(w, b, problem)) - problem.target) ** 2


@functools.partial(jax.jit, static_argnames=("problem",))
def error_surface_grid(ws: Array, bs: Array, problem: OneUnitProblem = FIG6) -> Array:
    """E over the grid ws x bs: shape (len(bs), len(ws)), row i is b = bs[i] (image layout)."""
    over_w = jax.vmap(one_unit_error, in_axes=(0, None, None))
    return jax.vmap(over_w, in_axes=(None, 0, None))(ws, bs, problem)


class Descent(NamedTuple):
    """Gradient descent paths on E(w, b); leading axes as the starts and thresholds.

    Attributes:
      points: (..., updates + 1, 2) the (w, b) visited, the start first.
      errors: (..., updates + 1) E at those points.
      grad_norms: (..., updates) |dE/d(w, b)| before clipping.
      steps: (..., updates, 2) the update applied (points[k + 1] - points[k]).
      clipped: (..., updates) bool, the update was rescaled by Algorithm 1.
    """

    points: Array
    errors: Array
    grad_norms: Array
    steps: Array
    clipped: Array


@functools.partial(jax.jit, static_argnames=("updates", "problem"))
def _descent(start: Array, threshold: Array, learning_rate: Array, *, updates, problem):
    value_and_grad = jax.value_and_grad(lambda p: one_unit_error(p[0], p[1], problem))

    def gradients(point, _):
        error, grad = value_and_grad(point)
        return error, jnp.zeros_like(error), grad  # no regulariser: Omega = 0

    def update(carry, _):
        point, state = carry
        new_point, state, m = sgd_step(
            gradients, point, state, None, threshold=threshold, learning_rate=learning_rate
        )
        return (new_point, state), (point, m.loss, m.grad_norm, m.update, m.clipped)

    (last, _), (points, errors, norms, steps, clipped) = jax.lax.scan(
        update, (start, init_opt_state(start)), length=updates
    )
    points = jnp.concatenate([points, last[None]])
    errors = jnp.concatenate([errors, one_unit_error(last[0], last[1], problem)[None]])
    return Descent(points, errors, norms, steps, clipped)


def descent(
    starts: Array,
    *,
    thresholds: Array,
    learning_rate: float,
    updates: int,
    problem: OneUnitProblem = FIG6,
) -> Descent:
    """Gradient descent on E(w, b) from every start, with every clipping threshold.

    Each update is `sgd_step` (Algorithm 1, then SGD) on dE/d(w, b). threshold = inf is
    plain gradient descent. Non-finite gradients are skipped (the clip transform's
    default).

    Args:
      starts: (S, 2) starting points (w, b).
      thresholds: (C,) clipping thresholds, each > 0 (jnp.inf: no clipping).
      learning_rate: SGD step size.
      updates: number of updates per path.

    Returns:
      A `Descent` with leading axes (C, S).

    Examples:
      >>> paths = pj.descent(jnp.array([[4.5, -2.5]]), thresholds=jnp.array([jnp.inf, 1.0]),
      ...     learning_rate=0.1, updates=30)
      >>> paths.points.shape  # (threshold, start, updates + 1, (w, b))
      (2, 1, 31, 2)
      >>> bool(paths.clipped[1].any()), bool(paths.clipped[0].any())
      (True, False)
    """
    starts = jnp.asarray(starts, jnp.float32)
    thresholds = jnp.asarray(thresholds, jnp.float32)
    if starts.ndim != 2 or starts.shape[-1] != 2:
        raise ValueError(f"starts must be (S, 2) points (w, b); got shape {starts.shape}")
    if thresholds.ndim != 1 or not bool(jnp.all(thresholds > 0)):
        raise ValueError(f"thresholds must be a 1-d array of values > 0; got {thresholds}")
    run = functools.partial(_descent, updates=updates, problem=problem)
    per_start = jax.vmap(run, in_axes=(0, None, None))
    return jax.vmap(per_start, in_axes=(None, 0, None))(starts, thresholds, learning_rate)
