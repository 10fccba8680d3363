"""One training update: gradient, Algorithm 1's clipping, an SGD step, frozen runs kept.

Every training loop of the package makes its updates here: the Fig. 7 engine
(`experiments/engine.py`), the Table 1 trainer (`natural/trainer.py`), gradient descent on
the Fig. 6 error surface (`analysis/error_surface.py`) and the benchmark's naive JAX peer
(`benchmarks/throughput.py`). One update of parameters theta on a batch:

    E, Omega, g = gradients(theta, batch)      g = dE/dtheta + alpha d+Omega/dW_rec (eq. 10)
    if ||g|| is non-finite (guard on):  g <- 0, or with nonfinite="shrink" the authors'
                                        rule (g_W_rec <- 0.02 W_rec, the others 0)
    elif ||g|| >= threshold:            g <- (threshold / ||g||) g       (Algorithm 1)
    theta' = theta - learning_rate g                                     (SGD, no momentum)
    theta' = theta  and the optimizer state unchanged where the run is not `active`

||g|| is the global L2 norm over every parameter. The clipping and the SGD step are
`methods.sgd_with_clipping` (optax.chain(clip_by_pascanu_norm, optax.sgd)); a method is
data: (threshold, guard) here, alpha inside `gradients` (`rnn_gradients`), so one program
can `vmap` over methods. threshold = inf is plain MSGD. `train_step` is the same update
with any optax transformation in place of clipping + SGD (`methods.method_transform`: Adam,
element-wise clipping, ...); `sgd_step` is `train_step` with `sgd_with_clipping`.

Shapes: one run. `params` is any pytree (the RNN's dict of `init_rnn`, or the (w, b) point
of the one-unit problem), `batch` whatever `gradients` takes (`rnn_gradients`: (inputs
(T, B, n_in), targets)), `active`, `threshold`, `guard` and every metric but `update` are
scalars. For R runs at once, `jax.vmap` the step: everything gains a leading axis R (the
batch too, or `in_axes=None` for a batch shared by all runs).

Reference: R. Pascanu, T. Mikolov, Y. Bengio, "On the difficulty of training recurrent
neural networks", ICML 2013, Algorithm 1 (§3.2) and eqs. 9-10 (§3.3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pascanu_jax.clipping import PascanuClipState, global_norm
from pascanu_jax.methods import LEARNING_RATE, clip_state, sgd_with_clipping
from pascanu_jax.regularizer import DEFAULT_BOUND, loss_and_grads

Array = jax.Array
# (params, batch) -> (loss E, Omega (0 where there is no regulariser), gradient like params)
GradientFn = Callable[[Any, Any], tuple[Array, Array, Any]]


class StepMetrics(NamedTuple):
    """What one update saw; all zero (False) for a run that is not active.

    Attributes:
      loss: E on the batch at the parameters before the update.
      omega: Omega on the batch (0 where the gradient function has no regulariser).
      grad_norm: ||g|| before clipping (NaN or Inf when the gradient was).
      clipped: bool, Algorithm 1 rescaled g (||g|| >= threshold, guard not tripped).
      nonfinite: bool, ||g|| was NaN or Inf (with nonfinite="shrink": or > 1e10).
      update: the change made to the parameters (-learning_rate times the clipped g),
        like params.
    """

    loss: Array
    omega: Array
    grad_norm: Array
    clipped: Array
    nonfinite: Array
    update: Any


def rnn_gradients(
    task: Any,
    *,
    activation: str | Array,
    alpha: float | Array,
    bound: float = DEFAULT_BOUND,
    backend: str = "xla",
) -> GradientFn:
    """The RNN's gradient function: (params, (inputs, targets)) -> `loss_and_grads(params,
    inputs, targets, task=task, activation=activation, alpha=alpha, bound=bound,
    backend=backend)`.

    `activation` ("tanh", "sigmoid" or a boolean flag, True = tanh) and `alpha` (the weight
    of Omega; 0 for MSGD and MSGD-C) may be traced; `backend` is "xla" or "pallas".

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 2, 10)  # (T, B, n_in), (B,)
      >>> gradients = pj.rnn_gradients(task, activation="tanh", alpha=4.0)  # MSGD-CR
      >>> loss, omega, grads = gradients(params, (inputs, targets))
      >>> grads["W_rec"].shape
      (4, 4)
    """
    kw = dict(task=task, activation=activation, alpha=alpha, bound=bound, backend=backend)

    def gradients(params, batch):
        inputs, targets = batch
        return loss_and_grads(params, inputs, targets, **kw)

    return gradients


def init_opt_state(params: Any) -> optax.OptState:
    """The optimizer state `sgd_step` expects: the clipping statistics at zero (it does not
    depend on the threshold, learning rate or guard).

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> opt_state = pj.init_opt_state(params)
      >>> int(pj.clip_state(opt_state).clipped)
      0
    """
    return sgd_with_clipping(1.0).init(params)


def train_step(
    gradients: GradientFn,
    params: Any,
    opt_state: optax.OptState,
    batch: Any,
    tx: optax.GradientTransformation,
    *,
    active: bool | Array = True,
) -> tuple[Any, optax.OptState, StepMetrics]:
    """One update of one run with any optax transformation `tx` (module docstring):
    returns (params, opt_state, metrics).

    The clipping metrics come from the `PascanuClipState` in `opt_state` (every
    `method_transform` has one); where `tx` has none, grad_norm is the global norm of the
    gradient and clipped and nonfinite say only whether it was finite.

    Args:
      gradients: (params, batch) -> (loss, omega, grads), e.g. `rnn_gradients(...)`.
      params: the run's parameters.
      opt_state: its optimizer state (`tx.init(params)`).
      batch: passed to `gradients` as it is.
      tx: the update, e.g. `method_transform(method.rule, method.numbers(), ...)`.
      active: False keeps params and opt_state bitwise as they were and zeroes the metrics
        (a frozen run of a vmapped program); may be traced.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> batch = task.sample(jax.random.key(1), 2, 10)  # (inputs (T, B, n_in), targets (B,))
      >>> gradients = pj.rnn_gradients(task, activation="tanh", alpha=0.0)
      >>> tx = optax.chain(pj.clip_by_pascanu_norm(1.0), optax.adam(1e-3))
      >>> new, opt_state, metrics = pj.train_step(gradients, params, tx.init(params), batch, tx)
      >>> bool(metrics.grad_norm > 0), int(pj.clip_state(opt_state).count)
      (True, 1)
    """
    loss, omega, grads = gradients(params, batch)
    update, new_opt = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, update)
    if _has_clip_state(opt_state):
        before, after = clip_state(opt_state), clip_state(new_opt)
        grad_norm = after.norm
        clipped = after.clipped > before.clipped
        nonfinite = after.nonfinite > before.nonfinite
    else:
        grad_norm = global_norm(grads)
        clipped, nonfinite = jnp.bool_(False), ~jnp.isfinite(grad_norm)
    metrics = StepMetrics(loss, omega, grad_norm, clipped, nonfinite, update)
    return (
        optax.tree.where(active, new_params, params),
        optax.tree.where(active, new_opt, opt_state),
        jax.tree.map(lambda x: jnp.where(active, x, jnp.zeros_like(x)), metrics),
    )


def _has_clip_state(opt_state) -> bool:
    leaves = jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, PascanuClipState))
    return any(isinstance(x, PascanuClipState) for x in leaves)


def sgd_step(
    gradients: GradientFn,
    params: Any,
    opt_state: optax.OptState,
    batch: Any,
    *,
    threshold: float | Array,
    learning_rate: float | Array = LEARNING_RATE,
    guard: bool | Array = True,
    nonfinite: str = "skip",
    active: bool | Array = True,
) -> tuple[Any, optax.OptState, StepMetrics]:
    """One update of one run (module docstring): returns (params, opt_state, metrics).

    Args:
      gradients: (params, batch) -> (loss, omega, grads), e.g. `rnn_gradients(...)`.
      params: the run's parameters.
      opt_state: its optimizer state (`init_opt_state`).
      batch: passed to `gradients` as it is.
      threshold: Algorithm 1's threshold, > 0 (inf: no clipping); may be traced.
      learning_rate: SGD's step size.
      guard: the non-finite guard of `clip_by_pascanu_norm`; may be traced (off: plain
        MSGD applies such a gradient).
      nonfinite: what the guard does, "skip" or the authors' "shrink".
      active: False keeps params and opt_state bitwise as they were and zeroes the metrics
        (a frozen run of a vmapped program); may be traced.

    Examples:
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> inputs, targets = task.sample(jax.random.key(1), 2, 10)  # (T, B, n_in), (B,)
      >>> gradients = pj.rnn_gradients(task, activation="tanh", alpha=0.0)
      >>> opt_state = pj.init_opt_state(params)
      >>> batch = (inputs, targets)
      >>> new, opt_state, metrics = pj.sgd_step(gradients, params, opt_state, batch, threshold=1.0)
      >>> bool(metrics.grad_norm > 0), int(pj.clip_state(opt_state).clipped) == int(metrics.clipped)
      (True, True)
      >>> same, _, _ = pj.sgd_step(gradients, params, opt_state, batch, threshold=1.0, active=False)
      >>> bool(jnp.array_equal(same["W_rec"], params["W_rec"]))  # a frozen run stays as it was
      True
    """
    tx = sgd_with_clipping(threshold, learning_rate, nonfinite=nonfinite, guard=guard)
    return train_step(gradients, params, opt_state, batch, tx, active=active)
