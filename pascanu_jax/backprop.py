"""Backpropagation through time, written out (Pascanu et al., 2013, eqs. 3-5).

With z_t = h_{t-1} W_rec + u_t W_in + b, h_t = act(z_t) and E a loss of the states,

    d_t  = dE/dh_t = g_t + a_{t+1} W_rec^T       (g_t: the loss's own derivative at h_t)
    a_t  = dE/dz_t = d_t * act'(z_t)             (act' from the state: tanh 1 - h^2, ...)
    dE/dW_rec = sum_t h_{t-1}^T a_t,   dE/dW_in = sum_t u_t^T a_t,   dE/db = sum_t a_t

Only the two recurrences (h forward, d backward) are sequential: one small matmul per step
each. The weight gradients are GEMMs over all T*B (step, sequence) pairs, outside the loop,
where autodiff of a scan accumulates them inside it. The backward pass also yields what the
regulariser Omega needs: d_t and back_t = a_t W_rec^T, the error carried one step back.
On the training path only their squared norms per (step, sequence) leave the loop, since
Omega's immediate gradient can be written with a_t alone (`regularizer.py`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from pascanu_jax.rnn import Params, activation_coefficients, rnn_states

Array = jax.Array


class Backward(NamedTuple):
    """One forward and backward pass. Shapes (T, B, H), norms (T, B)."""

    loss: Array  # ()
    states: Array  # h_t
    a: Array  # dE/dz_t = d_t * act'(z_t)
    d: Array | None  # dE/dh_t, the total derivative (when asked for)
    back: Array | None  # a_t W_rec^T = d_t dh_t/dh_{t-1} (when asked for)
    d_sq: Array  # |d_t|^2
    back_sq: Array  # |back_t|^2
    grads: Params  # dE/dtheta: W_in, b, W_out, b_out and W_rec


def backward(W_rec: Array, states: Array, g: Array, is_tanh: Array, keep: bool):
    """The backward recurrence d_t = g_t + a_{t+1} W_rec^T, from t = T - 1 down to 0.

    Returns (a, d, back) if `keep`, else (a, |d|^2, |back|^2): the (T, B, H) arrays that
    leave the loop are what costs, so the training path keeps only a.
    """
    scale, slope, shift = activation_coefficients(is_tanh, states.dtype)

    def step(carry, xs):
        g_t, h_t = xs
        d = g_t + carry
        v = (h_t - shift) / scale  # tanh(slope z_t)
        a = d * (scale * slope * (1.0 - v * v))
        back = a @ W_rec.T
        if keep:
            return back, (a, d, back)
        return back, (a, jnp.sum(d * d, -1), jnp.sum(back * back, -1))

    zero = jnp.zeros(g.shape[1:], g.dtype)
    return jax.lax.scan(step, zero, (g, states), reverse=True)[1]


def backprop(params: Params, inputs: Array, targets, task, is_tanh: Array, keep: bool = True):
    """One forward and one backward pass of `task.loss` (module docstring) -> Backward.

    keep: also return the (T, B, H) arrays d and back (else None; their norms are kept).
    """
    states = rnn_states(params, inputs, is_tanh)
    head = {k: x for k, x in params.items() if k not in ("W_in", "W_rec", "b")}

    def loss_of(head, states):
        return task.loss({**params, **head}, states, targets)

    loss, loss_vjp = jax.vjp(loss_of, head, states)
    head_grads, g = loss_vjp(jnp.ones_like(loss))
    a, x1, x2 = backward(params["W_rec"], states, g, is_tanh, keep)
    d, back = (x1, x2) if keep else (None, None)
    d_sq, back_sq = (jnp.sum(x1 * x1, -1), jnp.sum(x2 * x2, -1)) if keep else (x1, x2)
    grads = {
        **head_grads,
        "W_in": jnp.einsum("tbi,tbh->ih", inputs, a),
        "b": jnp.sum(a, axis=(0, 1)),
        # sum_t h_{t-1}^T a_t, with h_0 = 0 (the first step adds nothing)
        "W_rec": jnp.einsum("tbh,tbk->hk", states[:-1], a[1:]),
    }
    return Backward(loss, states, a, d, back, d_sq, back_sq, grads)
