"""How the error flows back through time in a trained (or untrained) network (Pascanu et
al., 2013, §2, eqs. 4, 5, 9).

    d_k = dE/dh_k = sum_{t >= k} dE_t/dh_t  dh_t/dh_k,   dh_t/dh_k = prod_{k < i <= t} dh_i/dh_{i-1}

|d_k| against k is the size of the temporal contributions of eq. (4) that reach step k:
it falls exponentially towards k = 1 when the gradient vanishes and grows when it explodes.
The per-step ratio |d_k dh_k/dh_{k-1}| / |d_k| is the factor one step of the backward pass
applies; Omega (eq. 9) pushes it towards 1.

Both come from one BPTT pass (`regularizer.bptt`), for any parameters and any objective
(`losses.Objective`: a task of the catalogue, or a natural problem's prediction).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pascanu_jax.losses import Objective
from pascanu_jax.regularizer import DEFAULT_BOUND, bptt, jacobian_norm_ratios
from pascanu_jax.rnn import Params, activation_flag

Array = jax.Array


class GradientFlow(NamedTuple):
    """The backward pass of one batch, per step k = 1..T (axis 0) and sequence (axis 1).

    Attributes:
      loss: E of the batch (the task loss, a mean over the batch).
      contributions: (T, B) |dE/dh_k|, the L2 norm over the hidden units.
      ratios: (T, B) |d_k dh_k/dh_{k-1}| / |d_k|; NaN where |d_k|^2 < bound.
    """

    loss: Array
    contributions: Array
    ratios: Array


def measure_gradient_flow(
    params: Params,
    inputs: Array,
    targets,
    *,
    task: Objective | str,
    activation: str | Array,
    bound: float = DEFAULT_BOUND,
) -> GradientFlow:
    """|dE/dh_k| and the per-step Jacobian norm ratios of one batch (module docstring).

    Args:
      params: dict from `init_rnn`, trained or not.
      inputs: (T, B, n_in); targets as returned by `task.sample`.
      task: a `losses.Objective` (a `Task`, ...) or a task name, as in `loss_and_grads`.
      activation: "tanh" or "sigmoid".
      bound: steps with |d_k|^2 < bound get a NaN ratio (as Omega leaves them out).

    E is the batch mean, so each sequence's d_k carries a factor 1/B; a plot of
    log10 |dE/dh_k| against k is only shifted by it. Steps after a padded sequence's last
    real step do not affect E: their |d_k| is 0.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 50, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 20, 50)  # (T, B, n_in), (B,)
      >>> flow = pj.measure_gradient_flow(params, inputs, targets, task=task, activation="tanh")
      >>> flow.contributions.shape, flow.ratios.shape  # (T, B)
      ((50, 20), (50, 20))
    """
    if isinstance(task, str):
        from pascanu_jax.tasks import resolve_task  # the catalogue, only for a name

        task = resolve_task(task)
    return _measure(params, inputs, targets, activation_flag(activation), task=task, bound=bound)


@functools.partial(jax.jit, static_argnames=("task", "bound"))
def _measure(params, inputs, targets, is_tanh, *, task, bound):
    loss, states, d, _ = bptt(params, inputs, targets, task=task, activation=is_tanh)
    ratios = jacobian_norm_ratios(params["W_rec"], states, d, is_tanh, bound)
    return GradientFlow(loss, jnp.linalg.norm(d, axis=-1), ratios)


def temporal_contributions(
    params: Params,
    inputs: Array,
    targets,
    *,
    task: Objective | str,
    activation: str | Array,
    per_sequence: bool = False,
) -> Array:
    """|dE/dh_k| for k = 1..T: (T,), the mean over the batch, or (T, B) if per_sequence.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 50, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 20, 50)  # (T, B, n_in), (B,)
      >>> pj.temporal_contributions(params, inputs, targets, task=task, activation="tanh").shape
      (50,)
    """
    flow = measure_gradient_flow(params, inputs, targets, task=task, activation=activation)
    norms = flow.contributions
    return norms if per_sequence else jnp.mean(norms, axis=1)
