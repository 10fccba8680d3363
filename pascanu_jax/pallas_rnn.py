"""`loss_and_grads` as two fused Pallas kernels: forward, then loss + BPTT + Omega.

Same result as `pascanu_jax.regularizer.loss_and_grads` (task loss E, Omega, and
dE/dtheta with alpha * d+Omega/dW_rec added to the W_rec entry), for many independent runs:
each kernel has one program instance per run (grid over the run axis), holds that run's
weights, and runs the time loop itself (`lax.fori_loop` in the kernel body).

Forward kernel, per run (row-vector form of `rnn.py`, act(z) = scale tanh(slope z) + shift):

    h_t = act(h_{t-1} W_rec + u_t W_in + b),   h_{-1} = 0,   t = 0..T-1

writes every h_t to a (T, B, H) output buffer and, for the last-step heads, the state at
each sequence's last real step.

Backward kernel, per run (Pascanu et al., 2013, eqs. 3-5 and 9-10; `backprop.py`,
`regularizer.py`): with g_t = dE/dh_t from the head (only at each sequence's last step for
the last-step heads; at every step for the all-step softmax),

    d_t = g_t + a_{t+1} W_rec^T,   a_t = d_t * act'(h_t),   back_t = a_t W_rec^T
    dE/dW_rec = sum_t h_{t-1}^T a_t,   dE/dW_in = sum_t u_t^T a_t,   dE/db = sum_t a_t
    r_t = |back_t|^2 / |d_t|^2 per sequence, kept when |d_t|^2 >= bound (n pairs kept)
    Omega = (1/n) sum_kept (r_t - 1)^2
    d+Omega/dW_rec = W_rec (4/n) sum_kept c_t a_t^T a_t,   c_t = (r_t - 1) / |d_t|^2

h_t and d_t are constants of Omega (the "immediate" derivative, as `regularizer.omega`'s
stop_gradient), and the returned W_rec gradient is dE/dW_rec + alpha * d+Omega/dW_rec.
All sums accumulate inside the backward loop; the head gradients (W_out, b_out) too.

Heads (`losses.py`): last_softmax and last_linear read h at each sequence's last real step
(`Padded.last`, or T - 1), all_softmax reads every step (steps after `Padded.last` masked).

Padding, for the GPU backend (Pallas Triton): every array a Triton kernel loads, stores or
multiplies must have a power-of-two number of elements, and `dot` wants each of its
dimensions >= 16. So B, H, n_in and n_out are padded to max(16, next power of two); T is
not (the kernels index one step at a time). The padding is exact: padded weights are zero
(padded hidden units never reach a real unit or the output), padded batch rows carry zero
loss weight and are left out of Omega's pairs, padded classes get logit -1e30 (softmax
probability exactly 0). Gradients are cut back to the real shapes.

On CPU the kernels run in Pallas interpret mode (chosen automatically when
`jax.default_backend() == "cpu"`); on GPU they are compiled with Triton, matmuls at float32
("highest") precision. Under `jax.vmap` the pallas_call batching rule adds a grid
dimension, so the engine's vmapped update runs one kernel instance per run as well.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from pascanu_jax.losses import ALL_SOFTMAX, LAST_LINEAR, LAST_SOFTMAX, Padded
from pascanu_jax.rnn import Params, activation_coefficients, activation_flag, check_params
from pascanu_jax.tasks import get_task

Array = jax.Array

HEADS = {head.name: head for head in (LAST_SOFTMAX, LAST_LINEAR, ALL_SOFTMAX)}
MIN_TILE = 16  # Triton's dot needs every dimension >= 16
MASKED_LOGIT = -1e30  # logit of a padded class: exp(MASKED_LOGIT - max) == 0 exactly
HIGHEST = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)


def tile(n: int) -> int:
    """The padded size of a dimension of n: max(16, the next power of two >= n)."""
    return max(MIN_TILE, pl.next_power_of_2(n))


def _mm(a: Array, b: Array) -> Array:  # a @ b
    return jax.lax.dot_general(a, b, (((1,), (0,)), ((), ())), precision=HIGHEST)


def _mm_tn(a: Array, b: Array) -> Array:  # a^T @ b
    return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())), precision=HIGHEST)


def _mm_nt(a: Array, b: Array) -> Array:  # a @ b^T
    return jax.lax.dot_general(a, b, (((1,), (1,)), ((), ())), precision=HIGHEST)


# ----------------------------------------------------------------------------- kernels
# Per-run scalars, one row of `coef`: (scale, slope, shift, alpha, 0, 0, 0, 0).
N_COEF = 8


def _forward_kernel(coef_ref, x_ref, w_in_ref, w_rec_ref, b_ref, *refs, last_step: bool):
    """One run. x (T, Bp, Ip) -> states (T, Bp, Hp) [and h at each row's last step]."""
    if last_step:
        last_ref, states_ref, h_last_ref = refs
    else:
        (states_ref,) = refs
    T, Bp, _ = x_ref.shape
    Hp = w_rec_ref.shape[0]
    scale, slope, shift = coef_ref[0], coef_ref[1], coef_ref[2]
    W_in, W_rec, b = w_in_ref[...], w_rec_ref[...], b_ref[...]
    last = last_ref[...] if last_step else None

    def step(t, carry):
        h, h_last = carry
        h = scale * jnp.tanh(slope * (_mm(h, W_rec) + _mm(x_ref[t], W_in) + b)) + shift
        states_ref[t] = h
        if last_step:
            h_last = jnp.where(last == t, h, h_last)
        return h, h_last

    zero = jnp.zeros((Bp, Hp), jnp.float32)
    _, h_last = jax.lax.fori_loop(0, T, step, (zero, zero))
    if last_step:
        h_last_ref[...] = h_last


def _head_grad(head: str, logits: Array, target: Array, weight: Array) -> tuple[Array, Array]:
    """(sum_b weight_b loss_b, dloss/dlogits) of one step; logits (Bp, Op), weight (Bp, 1).

    softmax: loss_b = logsumexp(z_b) - z_{b, y_b} over the real classes (target: (Bp, 1)
    int labels); dlogits = weight * (softmax(z) - onehot(y)).
    linear: loss_b = sum_o (z - y)_{b, o}^2 (target: (Bp, Op), zero-padded);
    dlogits = 2 weight (z - y).
    """
    if head == LAST_LINEAR.name:
        diff = logits - target
        return jnp.sum(weight * jnp.sum(diff * diff, -1, keepdims=True)), 2.0 * weight * diff
    classes = jax.lax.broadcasted_iota(jnp.int32, logits.shape, 1)
    m = jnp.max(logits, -1, keepdims=True)
    e = jnp.exp(logits - m)
    s = jnp.sum(e, -1, keepdims=True)
    onehot = classes == target
    ce = m + jnp.log(s) - jnp.sum(jnp.where(onehot, logits, 0.0), -1, keepdims=True)
    return jnp.sum(weight * ce), weight * (e / s - onehot.astype(logits.dtype))


def _backward_kernel(
    coef_ref,
    x_ref,
    w_rec_ref,
    w_out_ref,
    b_out_ref,
    cls_ref,
    valid_ref,
    target_ref,
    weight_ref,
    states_ref,
    *refs,
    head: str,
    bound: float,
):
    """One run: the head's loss and gradient, BPTT, Omega (module docstring).

    Inputs (per run): x (T, Bp, Ip); W_rec (Hp, Hp); W_out (Hp, Op); b_out (1, Op);
    cls (1, Op) 1 for real classes; valid (Bp, 1) 1 for real rows; target and weight
    ((Bp, 1) int / (Bp, Op) float and (Bp, 1) for the last-step heads, (T, Bp, 1) both for
    all_softmax); states (T, Bp, Hp); for the last-step heads also last (Bp, 1) and h_last
    (Bp, Hp). Outputs: dW_in (Ip, Hp), dW_rec (Hp, Hp) (Omega's term included), db (1, Hp),
    dW_out (Hp, Op), db_out (1, Op), stats (N_COEF,) = (E, Omega, 0, ...).
    """
    every_step = head == ALL_SOFTMAX.name
    if every_step:
        dw_in_ref, dw_rec_ref, db_ref, dw_out_ref, db_out_ref, stats_ref = refs
    else:
        last_ref, h_last_ref, dw_in_ref, dw_rec_ref, db_ref, dw_out_ref, db_out_ref, stats_ref = (
            refs
        )
    T, Bp, Ip = x_ref.shape
    Hp, Op = w_out_ref.shape
    scale, slope, shift, alpha = coef_ref[0], coef_ref[1], coef_ref[2], coef_ref[3]
    W_rec, W_out = w_rec_ref[...], w_out_ref[...]
    b_out, real_class, valid = b_out_ref[...], cls_ref[...] > 0, valid_ref[...] > 0

    def logits_of(h):
        z = _mm(h, W_out) + b_out
        return jnp.where(real_class, z, MASKED_LOGIT) if head != LAST_LINEAR.name else z

    f32 = jnp.float32
    zero = jnp.zeros((), f32)
    if every_step:
        loss, dW_out, db_out = zero, jnp.zeros((Hp, Op), f32), jnp.zeros((1, Op), f32)
        g_last = last = None
    else:
        h_last, last = h_last_ref[...], last_ref[...]
        loss, dl = _head_grad(head, logits_of(h_last), target_ref[...], weight_ref[...])
        dW_out, db_out = _mm_tn(h_last, dl), jnp.sum(dl, 0, keepdims=True)
        g_last = _mm_nt(dl, W_out)

    def step(i, carry):
        t = T - 1 - i
        back, dW_rec, dW_in, db, gram, term, count, loss, dW_out, db_out = carry
        h = states_ref[t]
        h_prev = jnp.where(t > 0, states_ref[jnp.maximum(t - 1, 0)], 0.0)
        if every_step:
            step_loss, dl = _head_grad(head, logits_of(h), target_ref[t], weight_ref[t])
            loss, dW_out = loss + step_loss, dW_out + _mm_tn(h, dl)
            db_out = db_out + jnp.sum(dl, 0, keepdims=True)
            g = _mm_nt(dl, W_out)
        else:
            g = jnp.where(last == t, g_last, 0.0)
        d = g + back
        u = (h - shift) / scale
        a = d * (scale * slope * (1.0 - u * u))
        new_back = _mm_nt(a, W_rec)
        # Omega's pair weights, as regularizer.omega_pair_weights (padded rows left out).
        d_sq = jnp.sum(d * d, -1, keepdims=True)
        back_sq = jnp.sum(new_back * new_back, -1, keepdims=True)
        kept = (d_sq >= bound) & valid
        safe = jnp.where(kept, d_sq, 1.0)
        excess = back_sq / safe - 1.0
        c = jnp.where(kept, excess / safe, 0.0)
        term = term + jnp.sum(jnp.where(kept, excess * excess, 0.0))
        count = count + jnp.sum(kept.astype(f32))
        gram = gram + _mm_tn(c * a, a)
        dW_rec = dW_rec + _mm_tn(h_prev, a)
        dW_in = dW_in + _mm_tn(x_ref[t], a)
        db = db + jnp.sum(a, 0, keepdims=True)
        return new_back, dW_rec, dW_in, db, gram, term, count, loss, dW_out, db_out

    HH = jnp.zeros((Hp, Hp), f32)
    init = (
        jnp.zeros((Bp, Hp), f32),
        HH,
        jnp.zeros((Ip, Hp), f32),
        jnp.zeros((1, Hp), f32),
        HH,
        zero,
        zero,
        loss,
        dW_out,
        db_out,
    )
    _, dW_rec, dW_in, db, gram, term, count, loss, dW_out, db_out = jax.lax.fori_loop(
        0, T, step, init
    )
    n_kept = jnp.maximum(count, 1.0)
    dw_rec_ref[...] = dW_rec + alpha * _mm(W_rec, (4.0 / n_kept) * gram)
    dw_in_ref[...], db_ref[...] = dW_in, db
    dw_out_ref[...], db_out_ref[...] = dW_out, db_out
    slot = jax.lax.broadcasted_iota(jnp.int32, (N_COEF,), 0)
    stats_ref[...] = jnp.where(slot == 0, loss, jnp.where(slot == 1, term / n_kept, 0.0))


# ----------------------------------------------------------------------------- entry points
def _check(task, params: Params, inputs: Array, runs: bool):
    """The task (resolved from a name) and the head name; one-line ValueErrors otherwise."""
    if isinstance(task, str):
        task = get_task(task)
    head = getattr(task, "head", None)
    if not any(head is known for known in HEADS.values()):
        raise ValueError(
            f"backend='pallas' supports the task heads {', '.join(HEADS)}; "
            f"got task {getattr(task, 'name', task)!r} with head {head!r}"
        )
    lead = 1 if runs else 0
    if inputs.ndim != 3 + lead:
        want = "(R, T, B, n_in)" if runs else "(T, B, n_in)"
        raise ValueError(f"backend='pallas' needs inputs {want}, got shape {inputs.shape}")
    dtypes = {jnp.dtype(x.dtype) for x in (inputs, *params.values())}
    if dtypes != {jnp.dtype(jnp.float32)}:
        raise ValueError(
            f"backend='pallas' supports float32 only, got dtypes {sorted(map(str, dtypes))}"
        )
    core = {k: x[0] for k, x in params.items()} if runs else params
    check_params(core, n_in=inputs.shape[-1], n_out=task.n_out)
    return task, head.name


def _interpret(interpret: bool | None) -> bool:
    if interpret is not None:
        return interpret
    platform = jax.default_backend()
    if platform not in ("cpu", "gpu"):
        raise ValueError(f"backend='pallas' runs on cpu (interpret mode) or gpu, not {platform!r}")
    return platform == "cpu"


def _flags(activation, R: int) -> Array:
    """Per-run activation flags, (R,) bool, from a name, a flag, or R flags."""
    if isinstance(activation, str):
        return jnp.full((R,), activation_flag(activation))
    flag = jnp.asarray(activation)
    if flag.dtype != jnp.bool_ or flag.shape not in ((), (R,)):
        raise ValueError(
            "activation must be 'tanh', 'sigmoid' or boolean flags of shape () or (R,) "
            f"(True = tanh); got dtype {flag.dtype}, shape {flag.shape}"
        )
    return jnp.broadcast_to(flag, (R,))


def loss_and_grads_runs(
    params: Params,
    inputs: Array,
    targets,
    *,
    task,
    activation,
    alpha,
    bound: float,
    interpret: bool | None = None,
) -> tuple[Array, Array, Params]:
    """`regularizer.loss_and_grads` for R independent runs in one pair of kernel calls.

    Args:
      params: dict of `init_rnn` arrays, each with a leading run axis R.
      inputs: (R, T, B, n_in) float32; targets: as `task.sample` returns, leading axis R
        (a `Padded` with R on both of its fields).
      task: a `Task` or task name whose head is last_softmax, last_linear or all_softmax.
      activation: "tanh", "sigmoid", or boolean flags () or (R,) (True = tanh).
      alpha: scalar or (R,) regularisation weight.
      bound: pairs with |dE/dh_t|^2 < bound are left out of Omega.
      interpret: None: interpret mode on CPU, compiled (Triton) on GPU.

    Returns:
      (loss (R,), omega (R,), grads with the structure of params, leading axis R).
    """
    task, head = _check(task, params, inputs, runs=True)
    R = inputs.shape[0]
    flags = _flags(activation, R)
    alpha = jnp.broadcast_to(jnp.asarray(alpha, jnp.float32), (R,))
    return _runs(
        params,
        inputs,
        targets,
        flags,
        alpha,
        head=head,
        n_out=task.n_out,
        bound=float(bound),
        interpret=_interpret(interpret),
    )


def loss_and_grads(
    params: Params,
    inputs: Array,
    targets,
    *,
    task,
    activation,
    alpha,
    bound: float,
    interpret: bool | None = None,
) -> tuple[Array, Array, Params]:
    """One run, as `regularizer.loss_and_grads(..., backend="pallas")`: (loss, omega, grads).

    A run axis of 1 around `loss_and_grads_runs`; under `jax.vmap` (the engine) the
    pallas_call batching rule turns the vmapped axis into a grid dimension.
    """
    _check(task, params, inputs, runs=False)
    flag = activation_flag(activation)
    one = jax.tree.map(lambda x: x[None], (params, inputs, targets, flag, jnp.asarray(alpha)))
    loss, om, grads = loss_and_grads_runs(
        *one[:3], task=task, activation=one[3], alpha=one[4], bound=bound, interpret=interpret
    )
    return loss[0], om[0], jax.tree.map(lambda x: x[0], grads)


def _pad(x: Array, shape: tuple[int, ...], value=0) -> Array:
    """Pad x at the end of each axis to `shape`."""
    return jnp.pad(
        x, [(0, s - n) for s, n in zip(shape, x.shape, strict=True)], constant_values=value
    )


@functools.partial(jax.jit, static_argnames=("head", "n_out", "bound", "interpret"))
def _runs(params, inputs, targets, flags, alpha, *, head, n_out, bound, interpret):
    R, T, B, n_in = inputs.shape
    H = params["W_rec"].shape[-1]
    Bp, Hp, Ip, Op = tile(B), tile(H), tile(n_in), tile(n_out)
    f32 = jnp.float32

    scale, slope, shift = jax.vmap(activation_coefficients)(flags)
    coef = jnp.stack([scale, slope, shift, alpha, *[jnp.zeros((R,), f32)] * 4], axis=1)
    x = _pad(inputs, (R, T, Bp, Ip))
    W_in = _pad(params["W_in"], (R, Ip, Hp))
    W_rec = _pad(params["W_rec"], (R, Hp, Hp))
    b = _pad(params["b"][:, None], (R, 1, Hp))
    W_out = _pad(params["W_out"], (R, Hp, Op))
    b_out = _pad(params["b_out"][:, None], (R, 1, Op))
    cls = jnp.broadcast_to((jnp.arange(Op) < n_out).astype(f32), (R, 1, Op))
    valid = jnp.broadcast_to((jnp.arange(Bp) < B).astype(f32)[:, None], (R, Bp, 1))

    padded = isinstance(targets, Padded)
    target = targets.target if padded else targets
    last = targets.last if padded else jnp.full((R, B), T - 1, jnp.int32)
    if head == ALL_SOFTMAX.name:  # per step: label and weight mask / (number of real steps)
        mask = (jnp.arange(T)[None, :, None] <= last[:, None, :]).astype(f32)
        weight = mask / jnp.sum(mask, axis=(1, 2), keepdims=True)
        weight = _pad(weight[..., None], (R, T, Bp, 1))
        target = _pad(target.astype(jnp.int32)[..., None], (R, T, Bp, 1))
    else:
        weight = _pad(jnp.full((R, B, 1), 1.0 / B, f32), (R, Bp, 1))
        if head == LAST_LINEAR.name:
            target = _pad(target.astype(f32), (R, Bp, Op))
        else:
            target = _pad(target.astype(jnp.int32)[..., None], (R, Bp, 1))
    last = _pad(last.astype(jnp.int32)[..., None], (R, Bp, 1), value=-1)

    def spec(*shape):  # one run's block of an (R, *shape) array
        return pl.BlockSpec((pl.squeezed, *shape), lambda r: (r,) + (0,) * len(shape))

    def out(*shape):
        return jax.ShapeDtypeStruct((R, *shape), f32)

    call = functools.partial(
        pl.pallas_call,
        grid=(R,),
        interpret=interpret,
        compiler_params=None if interpret else _triton_params(),
    )
    last_step = head != ALL_SOFTMAX.name
    fwd_in = [coef, x, W_in, W_rec, b] + ([last] if last_step else [])
    fwd_out = [out(T, Bp, Hp)] + ([out(Bp, Hp)] if last_step else [])
    fwd = call(
        functools.partial(_forward_kernel, last_step=last_step),
        out_shape=fwd_out,
        in_specs=[spec(*a.shape[1:]) for a in fwd_in],
        out_specs=[spec(*o.shape[1:]) for o in fwd_out],
        name="rnn_forward",
    )(*fwd_in)

    bwd_in = [coef, x, W_rec, W_out, b_out, cls, valid, target, weight, fwd[0]]
    bwd_in += [last, fwd[1]] if last_step else []
    bwd_out = [out(Ip, Hp), out(Hp, Hp), out(1, Hp), out(Hp, Op), out(1, Op), out(N_COEF)]
    dW_in, dW_rec, db, dW_out, db_out, stats = call(
        functools.partial(_backward_kernel, head=head, bound=bound),
        out_shape=bwd_out,
        in_specs=[spec(*a.shape[1:]) for a in bwd_in],
        out_specs=[spec(*o.shape[1:]) for o in bwd_out],
        name="rnn_bptt_omega",
    )(*bwd_in)
    grads = {
        "W_in": dW_in[:, :n_in, :H],
        "W_rec": dW_rec[:, :H, :H],
        "b": db[:, 0, :H],
        "W_out": dW_out[:, :H, :n_out],
        "b_out": db_out[:, 0, :n_out],
    }
    return stats[:, 0], stats[:, 1], grads


def _triton_params():
    from jax.experimental.pallas import triton as pltriton

    return pltriton.CompilerParams(num_warps=4, num_stages=1)
