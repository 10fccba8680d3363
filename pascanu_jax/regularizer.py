"""The vanishing-gradient regulariser Omega (Pascanu et al., 2013, §3.3, eqs. 9 and 10).

With states h_k (k = 1..T) and d_k = dE/dh_k, the total derivative that BPTT computes,

    a_k     = d_k * act'(h_k)                         (the error just before the activation)
    Omega_k = ( |a_k W_rec^T|^2 / |d_k|^2 - 1 )^2      (per step and sequence)
    Omega   = mean of Omega_k over the pairs (k, sequence) with |d_k|^2 >= bound

a_k W_rec^T = d_k dh_k/dh_{k-1} is the error carried one step back, so Omega asks every
step of the backward pass to preserve the norm of the error in its own direction. The norms
are squared as in eq. (10) and the authors' code (docs/protocol.md). Pairs with a vanishing
|d_k|^2 (below `bound`) are left out; Omega is 0 when no pair is left.

Only the "immediate" derivative d+Omega/dW_rec is used: h_k and d_k are held constant
(`omega` applies `jax.lax.stop_gradient`, so `jax.grad(omega)` is that derivative). The
d_k come from the same backward pass as dE/dtheta (`backprop.py`), which also computes
a_k W_rec^T, so training gets Omega's value without any extra pass over time, and its
immediate gradient, sum_k c_k (a_k W_rec^T)^T a_k = W_rec (sum_k c_k a_k^T a_k), needs only
a_k, which dE/dW_rec needs anyway.

`task=` is anything that follows `losses.Objective` (n_out and loss(params, states,
targets)); a task name is looked up in the catalogue (`tasks.resolve_task`) when the call
is made, so this module does not depend on the catalogue.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from pascanu_jax.backprop import backprop
from pascanu_jax.losses import Objective
from pascanu_jax.rnn import Params, activation_derivative, activation_flag, check_params

Array = jax.Array

DEFAULT_BOUND = 1e-20
BACKENDS = ("xla", "pallas")  # loss_and_grads: backprop.py, or the kernels of pallas_rnn.py


def error_one_step_back(W_rec: Array, states: Array, d: Array, activation: str | Array) -> Array:
    """a_k W_rec^T = d_k dh_k/dh_{k-1}: the error d_k = dE/dh_k carried back one step.

    a_k = d_k * act'(h_k). Shapes: W_rec (H, H), states and d (T, B, H) -> (T, B, H).

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 2, 10)  # (T, B, n_in), (B,)
      >>> _, states, d, _ = pj.bptt(params, inputs, targets, task=task, activation="tanh")
      >>> pj.error_one_step_back(params["W_rec"], states, d, "tanh").shape
      (10, 2, 4)
    """
    return (d * activation_derivative(states, activation)) @ W_rec.T


def jacobian_norm_ratios(
    W_rec: Array, states: Array, d: Array, activation: str | Array, bound: float = DEFAULT_BOUND
) -> Array:
    """|d_k dh_k/dh_{k-1}| / |d_k| per step and sequence, (T, B); NaN where |d_k|^2 < bound.

    The ratios that Omega pushes towards 1 (eq. 9): above 1 the error grows going back in
    time, below 1 it vanishes.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 2, 10)  # (T, B, n_in), (B,)
      >>> _, states, d, _ = pj.bptt(params, inputs, targets, task=task, activation="tanh")
      >>> pj.jacobian_norm_ratios(params["W_rec"], states, d, "tanh").shape  # (T, B)
      (10, 2)
    """
    back = error_one_step_back(W_rec, states, d, activation)
    d_sq = jnp.sum(d * d, axis=-1)
    keep = d_sq >= bound
    ratio = jnp.sqrt(jnp.sum(back * back, axis=-1) / jnp.where(keep, d_sq, 1.0))
    return jnp.where(keep, ratio, jnp.nan)


def omega(
    W_rec: Array, states: Array, d: Array, activation: str | Array, bound: float = DEFAULT_BOUND
) -> Array:
    """Omega (module docstring); `jax.grad` of it w.r.t. W_rec is d+Omega/dW_rec.

    Args:
      W_rec: (H, H).
      states: (T, B, H) states h_k; held constant.
      d: (T, B, H) total derivatives dE/dh_k; held constant.
      activation: "tanh", "sigmoid" or a boolean flag (True = tanh).
      bound: pairs with |d_k|^2 < bound are left out.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 2, 10)  # (T, B, n_in), (B,)
      >>> _, states, d, _ = pj.bptt(params, inputs, targets, task=task, activation="tanh")
      >>> value, immediate = jax.value_and_grad(pj.omega)(params["W_rec"], states, d, "tanh")
      >>> value.shape, immediate.shape  # Omega and its immediate derivative dOmega+/dW_rec
      ((), (4, 4))
    """
    h = jax.lax.stop_gradient(states)
    d = jax.lax.stop_gradient(d)
    back = error_one_step_back(W_rec, h, d, activation)
    _, terms, kept = omega_pair_weights(bound)(jnp.sum(d * d, -1), jnp.sum(back * back, -1))
    return jnp.sum(terms) / jnp.maximum(jnp.sum(kept), 1.0)


def bptt(
    params: Params, inputs: Array, targets, *, task: Objective | str, activation: str | Array
) -> tuple[Array, Array, Array, Params]:
    """One forward and one backward pass: (E, states h_k, d_k = dE/dh_k, dE/dtheta).

    d_k is the total derivative of E w.r.t. the state h_k (all paths through later steps),
    the "temporal contribution" factor of eq. (4); |d_k| against k shows the gradient
    vanishing or exploding. Shapes: states and d (T, B, H). `task` as in `loss_and_grads`.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 2, 10)  # (T, B, n_in), (B,)
      >>> loss, states, d, grads = pj.bptt(params, inputs, targets, task=task, activation="tanh")
      >>> states.shape, d.shape  # d_k = dE/dh_k
      ((10, 2, 4), (10, 2, 4))
      >>> sorted(grads)
      ['W_in', 'W_out', 'W_rec', 'b', 'b_out']
    """
    task = _objective(task, params, inputs)
    return _bptt(params, inputs, targets, activation_flag(activation), task=task)


def _objective(task: Objective | str, params: Params, inputs: Array) -> Objective:
    """The objective of `task=` (a name is resolved here, at the API edge); checks params."""
    if isinstance(task, str):
        from pascanu_jax.tasks import resolve_task  # the catalogue, only for a name

        task = resolve_task(task)
    if not isinstance(task, Objective):
        raise TypeError(
            "task must be a task name or an Objective (n_out and loss(params, states, "
            f"targets)); got {type(task).__name__}"
        )
    check_params(params, n_in=inputs.shape[-1], n_out=task.n_out)
    return task


@functools.partial(jax.jit, static_argnames=("task",))
def _bptt(params, inputs, targets, is_tanh, *, task):
    bw = backprop(params, inputs, targets, task, is_tanh, keep=True)
    return bw.loss, bw.states, bw.d, bw.grads


def omega_pair_weights(bound: float = DEFAULT_BOUND):
    """Per (step, sequence) pair, from |d_k|^2 and |a_k W_rec^T|^2: (c'_k, Omega_k, kept_k).

    With r_k = |a_k W_rec^T|^2 / |d_k|^2 and n the number of kept pairs,
    Omega = (1/n) sum_k Omega_k, Omega_k = (r_k - 1)^2, and its immediate gradient is
    d+Omega/dW_rec = (4/n) sum_k c'_k (a_k W_rec^T)^T a_k = W_rec (4/n) sum_k c'_k a_k^T a_k,
    c'_k = (r_k - 1) / |d_k|^2. Pairs with |d_k|^2 < bound get 0 in all three.
    """

    def weights(d_sq: Array, back_sq: Array) -> tuple[Array, Array, Array]:
        kept = d_sq >= bound
        safe = jnp.where(kept, d_sq, 1.0)
        excess = back_sq / safe - 1.0
        zero = jnp.zeros_like(d_sq)
        return (
            jnp.where(kept, excess / safe, zero),
            jnp.where(kept, excess * excess, zero),
            kept.astype(d_sq.dtype),
        )

    return weights


def loss_and_grads(
    params: Params,
    inputs: Array,
    targets,
    *,
    task: Objective | str,
    activation: str | Array,
    alpha: float | Array,
    bound: float = DEFAULT_BOUND,
    backend: str = "xla",
) -> tuple[Array, Array, Params]:
    """The task loss E, Omega, and the gradient used by MSGD-CR.

        grads = dE/dtheta,  with  grads["W_rec"] += alpha * d+Omega/dW_rec

    alpha = 0 gives plain dE/dtheta (MSGD, MSGD-C); the paper's MSGD-CR uses alpha = 4.

    Args:
      params: dict from `init_rnn`.
      inputs: (T, B, n_in); targets: as returned by `task.sample` (or `sample_padded`).
      task: a `losses.Objective` (hashable, with `n_out` and `loss(params, states,
        targets)`): a `Task`, a natural problem's `NotePrediction` / `CharPrediction`, or
        a task name of `tasks.TASK_NAMES`.
      activation: "tanh", "sigmoid" or a boolean flag (True = tanh); may be traced.
      alpha: regularisation weight; may be traced (vmap over methods).
      bound: pairs with |dE/dh_k|^2 < bound are left out of Omega.
      backend: "xla" (`backprop.py`) or "pallas" (the fused kernels of `pallas_rnn.py`).

    Returns:
      (loss, omega, grads), grads with the structure of params.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 2, 10)  # (T, B, n_in), (B,)
      >>> loss, omega, grads = pj.loss_and_grads(
      ...     params, inputs, targets, task=task, activation="tanh", alpha=4.0
      ... )
      >>> bool(omega >= 0), grads["W_rec"].shape
      (True, (4, 4))
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    task = _objective(task, params, inputs)
    if backend == "pallas":
        from pascanu_jax import pallas_rnn

        kw = dict(task=task, activation=activation, alpha=alpha, bound=bound)
        return pallas_rnn.loss_and_grads(params, inputs, targets, **kw)
    return _loss_and_grads(
        params, inputs, targets, activation_flag(activation), alpha, task=task, bound=bound
    )


@functools.partial(jax.jit, static_argnames=("task", "bound"))
def _loss_and_grads(params, inputs, targets, is_tanh, alpha, *, task, bound):
    # Omega's value and its weighted Gram term come out of the same backward pass as dE.
    bw = backprop(params, inputs, targets, task, is_tanh, weights=omega_pair_weights(bound))
    n_kept = jnp.maximum(bw.counted, 1.0)
    g_om = params["W_rec"] @ ((4.0 / n_kept) * bw.pair_gram)
    alpha = jnp.asarray(alpha, g_om.dtype)
    grads = {**bw.grads, "W_rec": bw.grads["W_rec"] + alpha * g_om}
    return bw.loss, bw.term_sum / n_kept, grads
