"""Backpropagation through time, written out (Pascanu et al., 2013, eqs. 3-5).

With z_t = h_{t-1} W_rec + u_t W_in + b, h_t = act(z_t) and E a loss of the states,

    d_t  = dE/dh_t = g_t + a_{t+1} W_rec^T       (g_t: the loss's own derivative at h_t)
    a_t  = dE/dz_t = d_t * act'(z_t)
    dE/dW_rec = sum_t h_{t-1}^T a_t,   dE/dW_in = sum_t u_t^T a_t,   dE/db = sum_t a_t

Only the two recurrences (h forward, d backward) are sequential: one small matmul per step
each. Everything else is one GEMM over all T*B (step, sequence) pairs, outside the loop,
where autodiff of a scan would accumulate dE/dW_rec inside it. The backward pass also
yields, for free, what the regulariser Omega needs: d_t and a_t W_rec^T (the error carried
back one step), so Omega's value and immediate gradient add no matmul over time.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from pascanu_jax.rnn import Params, activation_coefficients

Array = jax.Array


class Backward(NamedTuple):
    """Everything one forward and backward pass computes. Shapes (T, B, H) unless noted."""

    loss: Array  # ()
    states: Array  # h_t
    d: Array  # dE/dh_t, the total derivative (all paths through later steps)
    a: Array  # dE/dz_t = d_t * act'(z_t)
    back: Array  # a_t W_rec^T = d_t dh_t/dh_{t-1}, the error carried one step back
    head_grads: Params  # dE/d(W_out, b_out, ...) through the loss alone
    input_grads: Params  # dE/dW_in and dE/db


def forward(W_rec: Array, drive: Array, is_tanh: Array, unroll: int = 1) -> tuple[Array, Array]:
    """h_t = scale * tanh(slope * (h_{t-1} W_rec + drive_t)) + shift from h_0 = 0.

    Returns (states h, tanh values v with h = scale * v + shift), both (T, B, H); act'(z_t)
    is scale * slope * (1 - v_t^2).
    """
    scale, slope, shift = activation_coefficients(is_tanh, drive.dtype)

    def step(h, x):
        v = jnp.tanh(slope * (h @ W_rec + x))
        h = scale * v + shift
        return h, (h, v)

    h0 = jnp.zeros(drive.shape[1:], drive.dtype)
    return jax.lax.scan(step, h0, drive, unroll=unroll)[1]


def backward(W_rec: Array, g: Array, act_prime: Array, unroll: int = 1) -> tuple[Array, Array]:
    """The backward recurrence d_t = g_t + (d_{t+1} * act'_{t+1}) W_rec^T, from t = T - 1.

    Returns (d, back) with back_t = (d_t * act'_t) W_rec^T, both (T, B, H).
    """

    def step(carry, xs):
        g_t, prime_t = xs
        d = g_t + carry
        back = (d * prime_t) @ W_rec.T
        return back, (d, back)

    zero = jnp.zeros(g.shape[1:], g.dtype)
    return jax.lax.scan(step, zero, (g, act_prime), reverse=True, unroll=unroll)[1]


def backprop(params: Params, inputs: Array, targets, task, is_tanh: Array, unroll: int = 1):
    """One forward and one backward pass of `task.loss` (see module docstring) -> Backward."""
    drive, input_vjp = jax.vjp(lambda W_in, b: inputs @ W_in + b, params["W_in"], params["b"])
    states, v = forward(params["W_rec"], drive, is_tanh, unroll)
    head = {k: x for k, x in params.items() if k not in ("W_in", "W_rec", "b")}

    def loss_of(head, states):
        return task.loss({**params, **head}, states, targets)

    loss, loss_vjp = jax.vjp(loss_of, head, states)
    head_grads, g = loss_vjp(jnp.ones_like(loss))
    scale, slope, _ = activation_coefficients(is_tanh, v.dtype)
    act_prime = scale * slope * (1.0 - v * v)
    d, back = backward(params["W_rec"], g, act_prime, unroll)
    a = d * act_prime
    W_in_grad, b_grad = input_vjp(a)
    return Backward(loss, states, d, a, back, head_grads, {"W_in": W_in_grad, "b": b_grad})


def previous_states(states: Array) -> Array:
    """h_{t-1} for t = 1..T: the states shifted by one step, with h_0 = 0."""
    return jnp.concatenate([jnp.zeros_like(states[:1]), states[:-1]], axis=0)


def outer_sum(left: Array, right: Array) -> Array:
    """sum over steps and sequences of left^T right: (T, B, H) x (T, B, K) -> (H, K)."""
    return jnp.einsum("tbh,tbk->hk", left, right)
