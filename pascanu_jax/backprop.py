"""Backpropagation through time, written out (Pascanu et al., 2013, eqs. 3-5).

With z_t = h_{t-1} W_rec + u_t W_in + b, h_t = act(z_t) and E a loss of the states,

    d_t  = dE/dh_t = g_t + a_{t+1} W_rec^T       (g_t: the loss's own derivative at h_t)
    a_t  = dE/dz_t = d_t * act'(z_t)             (act' from the state: tanh 1 - h^2, ...)
    dE/dW_rec = sum_t h_{t-1}^T a_t,   dE/dW_in = sum_t u_t^T a_t,   dE/db = sum_t a_t

Only the two recurrences (h forward, d backward) are sequential: one small matmul per step
each. Everything else is one GEMM after the loops. Written as x_t = [h_{t-1}, u_t, 1] and
W = [W_rec; W_in; b], the step is h_t = act(x_t W) (one matmul, the input and bias inside
it) and the three weight gradients are the blocks of sum_t x_t^T a_t.

The backward pass also yields what the regulariser Omega needs (`regularizer.py`): d_t and
back_t = a_t W_rec^T, the error carried one step back. A per-(step, sequence) weight w_t of
their squared norms, given by the caller, turns into sum_t w_t a_t^T a_t; those w_t a_t rows
go into the same GEMM as x_t, so Omega's gradient costs no pass of its own.

Layout, chosen by measurement (benchmarks/PERFORMANCE.md): the loops write x_t and w_t a_t
as *columns* of one (K + H, (T + 1) B) buffer and a_t as rows of a ((T + 1) B, H) buffer,
so the GEMM reads both in place, with no transposing copy; the states for the loss are read
back from that buffer. One GEMM with 107 rows took 2.8 ms against 2.5 ms for 50 rows
(8 runs, T = 200, CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pascanu_jax.losses import Objective
from pascanu_jax.rnn import Params, activate, activation_derivative

Array = jax.Array
# weights(|d_t|^2, |back_t|^2) per sequence -> (w_t, term_t, counted_t), each (B,)
PairWeights = Callable[[Array, Array], tuple[Array, Array, Array]]


class Backward(NamedTuple):
    """One forward and backward pass. Shapes (T, B, H) unless noted."""

    loss: Array  # ()
    states: Array  # h_t
    grads: Params  # dE/dtheta: W_in, b, W_out, b_out and W_rec
    pair_gram: Array | None  # (H, H) sum_t w_t a_t^T a_t (with `weights`)
    term_sum: Array | None  # () sum of term_t over steps and sequences (with `weights`)
    counted: Array | None  # () sum of counted_t (with `weights`)
    d: Array | None  # dE/dh_t (with keep)
    back: Array | None  # a_t W_rec^T = d_t dh_t/dh_{t-1} (with keep)


def forward(params: Params, inputs: Array, is_tanh: Array, extra_rows: int = 0) -> Array:
    """h_t = act(x_t W), x_t = [h_{t-1}, u_t, 1], as the buffer X of x_t columns.

    Returns X, (K + extra_rows, (T + 1) B) with K = H + n_in + 1: column block t holds
    x_t for t = 0..T (h_{-1} = 0; block T is [h_{T-1}, 0, 0], the last state with no input
    and no bias entry, harmless as the backward pass's a_T = 0). The extra rows are zeros,
    for the backward pass to fill.
    """
    T, B, n_in = inputs.shape
    H = params["W_rec"].shape[-1]
    dtype = inputs.dtype
    W = jnp.concatenate([params["W_rec"], params["W_in"], params["b"][None]], axis=0)
    u1 = jnp.concatenate([inputs, jnp.ones((T, B, 1), dtype)], axis=-1)
    u1 = jnp.concatenate([u1, jnp.zeros((1, B, n_in + 1), dtype)], axis=0)
    X = jnp.zeros((H + n_in + 1 + extra_rows, (T + 1) * B), dtype)

    def step(t, carry):
        x, X = carry
        X = jax.lax.dynamic_update_slice(X, x.T, (0, t * B))
        h = activate(x @ W, is_tanh)
        return jnp.concatenate([h, jax.lax.dynamic_index_in_dim(u1, t + 1, 0, False)], -1), X

    x0 = jnp.concatenate([jnp.zeros((B, H), dtype), u1[0]], axis=-1)
    x, X = jax.lax.fori_loop(0, T, step, (x0, X))
    return jax.lax.dynamic_update_slice(X, x.T, (0, T * B))


def backprop(
    params: Params,
    inputs: Array,
    targets,
    task: Objective,
    is_tanh: Array,
    weights: PairWeights | None = None,
    keep: bool = False,
) -> Backward:
    """One forward and one backward pass of `task.loss` (module docstring) -> Backward.

    weights: per-pair weights of the squared norms |d_t|^2 and |back_t|^2 (Omega's, from
      `regularizer.py`); their Gram term, sum and count are returned. None: not computed.
    keep: also return the (T, B, H) arrays d and back (else None).
    """
    T, B, n_in = inputs.shape
    H = params["W_rec"].shape[-1]
    K = H + n_in + 1
    dtype = inputs.dtype
    X = forward(params, inputs, is_tanh, extra_rows=0 if weights is None else H)
    states = jnp.transpose(X[:H, B:].reshape(H, T, B), (1, 2, 0))
    head = {k: x for k, x in params.items() if k not in ("W_in", "W_rec", "b")}

    def loss_of(head, states):
        return task.loss({**params, **head}, states, targets)

    loss, loss_vjp = jax.vjp(loss_of, head, states)
    head_grads, g = loss_vjp(jnp.ones_like(loss))

    # A materialised W_rec^T: in the profile XLA's CPU matmul with a transposed operand ran
    # 3x slower (the update as a whole did not change: benchmarks/PERFORMANCE.md).
    W_T = jax.lax.optimization_barrier(params["W_rec"].T)
    zero = jnp.zeros((), dtype)
    kept = jnp.zeros((T, B, H), dtype) if keep else None

    def step(i, carry):
        t = T - 1 - i
        back, X, A, term, count, kept_d, kept_back = carry
        d = jax.lax.dynamic_index_in_dim(g, t, 0, False) + back
        h = jax.lax.dynamic_slice(X, (0, (t + 1) * B), (H, B)).T  # h_t: column block t + 1
        a = d * activation_derivative(h, is_tanh)
        new_back = a @ W_T
        A = jax.lax.dynamic_update_slice(A, a, (t * B, 0))
        if weights is not None:
            w, pair_term, counted = weights(jnp.sum(d * d, -1), jnp.sum(new_back**2, -1))
            X = jax.lax.dynamic_update_slice(X, (w[:, None] * a).T, (K, t * B))
            term, count = term + jnp.sum(pair_term), count + jnp.sum(counted)
        if keep:
            kept_d = jax.lax.dynamic_update_index_in_dim(kept_d, d, t, 0)
            kept_back = jax.lax.dynamic_update_index_in_dim(kept_back, new_back, t, 0)
        return new_back, X, A, term, count, kept_d, kept_back

    A = jnp.zeros(((T + 1) * B, H), dtype)  # block T stays 0: it meets x_T in the GEMM
    init = (jnp.zeros((B, H), dtype), X, A, zero, zero, kept, kept)
    _, X, A, term, count, d, back = jax.lax.fori_loop(0, T, step, init)
    G = X @ A  # sum_t x_t^T a_t (and sum_t w_t a_t^T a_t below row K)
    grads = {**head_grads, "W_rec": G[:H], "W_in": G[H : H + n_in], "b": G[H + n_in]}
    if weights is None:
        return Backward(loss, states, grads, None, None, None, d, back)
    return Backward(loss, states, grads, G[K:], term, count, d, back)
