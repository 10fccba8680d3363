"""Train R runs of one task in parallel as one compiled program (the Fig. 7 protocol).

A run is (initialisation, method, seed). Methods are data (threshold, alpha) and the
activation is a per-run flag, so sigmoid and tanh runs, all three methods and all seeds
share one `vmap`ped update: one compile per task and length.

One compiled call runs up to `periods_per_call` periods. A period is `eval_every` SGD
updates (a `lax.scan`, data drawn on the device from keys fold_in(data_key, update)) and
then a *screen*: the run's error on `screen_size` fresh sequences. A run whose screen is
under the success rate stops training (it is frozen, masked) and becomes a candidate; the
host then checks candidates on `confirm_size` = 10,000 fresh sequences (the paper's test:
fewer than 1% misclassified). A candidate that fails the check trains on. Every key is a
function of (seed, update count), so freezing, resuming from a checkpoint or sharding
over devices never changes a run's trajectory.

Diagnostics per run and period: mean training loss, mean pre-clip gradient norm, clipped
fraction, mean Omega, spectral radius of W_rec (on the host: eig is not available on every
accelerator) and the screening error.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pascanu_jax.clipping import NONFINITE_MODES
from pascanu_jax.methods import BATCH_SIZE, LEARNING_RATE, sgd_with_clipping
from pascanu_jax.regularizer import DEFAULT_BOUND, loss_and_grads
from pascanu_jax.rnn import rnn_states
from pascanu_jax.tasks import Task

Array = jax.Array
EVAL_CHUNK = 500  # sequences per forward pass when counting errors (bounds memory)
DIAGNOSTICS = ("loss", "grad_norm", "clipped_fraction", "omega", "spectral_radius", "error")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run: initialisation scheme, method name and seed."""

    init: str
    method: str
    seed: int


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Everything that fixes the compiled program of one task and length range.

    lengths: [lo, hi) nominal lengths; one length L is (L, L + 1). With a range, every
      update draws its length uniformly (the paper's [50, 200) training, §4.1.1) and the
      batch is padded to hi - 1 steps, so there is no recompile per length.
    success: a run is solved when its misclassified fraction is < success (paper: 1%).
    nonfinite: clip_by_pascanu_norm's guard; "shrink" is the authors' rule.
    """

    task: Task
    lengths: tuple[int, int]
    n_hidden: int = 50
    batch: int = BATCH_SIZE
    learning_rate: float = LEARNING_RATE
    max_updates: int = 5_000_000
    eval_every: int = 100
    screen_size: int = 250
    confirm_size: int = 10_000
    success: float = 0.01
    nonfinite: str = "shrink"
    bound: float = DEFAULT_BOUND
    periods_per_call: int = 10

    def __post_init__(self):
        lo, hi = self.lengths
        if hi <= lo:
            raise ValueError(f"lengths must be a range [lo, hi) with hi > lo, got {self.lengths}")
        self.task.check_length(lo)
        for name in (
            "n_hidden",
            "batch",
            "max_updates",
            "eval_every",
            "screen_size",
            "confirm_size",
            "periods_per_call",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_updates % self.eval_every:
            raise ValueError(
                f"max_updates ({self.max_updates}) must be a multiple of eval_every "
                f"({self.eval_every})"
            )
        if not 0 < self.success <= 1:
            raise ValueError(f"success must be a fraction in (0, 1], got {self.success}")
        if self.nonfinite not in NONFINITE_MODES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_MODES}, got {self.nonfinite!r}")


class RunConstants(NamedTuple):
    """Per-run data that never changes: leading axis R."""

    is_tanh: Array
    threshold: Array
    alpha: Array
    data_key: Array
    screen_key: Array


class TrainState(NamedTuple):
    """Per-run training state: leading axis R. `active` runs train in the next period;
    `candidate` runs passed a screen and wait for the 10,000-sequence check."""

    params: dict
    opt_state: Any
    updates: Array
    active: Array
    candidate: Array


class Diagnostics(NamedTuple):
    """One period of one run (buffers have leading axes (period, R))."""

    trained: Array  # the run trained in this period (else the row is empty)
    updates: Array
    loss: Array
    omega: Array
    norm_sum: Array
    counted: Array
    clipped: Array
    steps: Array
    error: Array
    W_rec: Array


def run_keys(seed: int, length: int) -> dict[str, Array]:
    """Keys of a run. Every init and method of one seed sees the same initial draw and the
    same data: the comparison between methods is paired."""
    base = jax.random.fold_in(jax.random.PRNGKey(seed), length)
    return {
        name: jax.random.fold_in(base, i)
        for i, name in enumerate(("init", "data", "screen", "confirm"))
    }


def draw(task: Task, lengths: tuple[int, int], key: Array, batch: int):
    """A batch of nominal length lengths[0] when the range holds one length; otherwise the
    length is drawn uniformly from [lo, hi) and the batch padded to hi - 1."""
    lo, hi = lengths
    if hi - lo == 1:
        return task.sample(key, batch, lo)
    k_len, k_seq = jax.random.split(key)
    length = jax.random.randint(k_len, (), lo, hi)
    return task.sample_padded(k_seq, batch, length, hi - 1)


def count_errors(
    task: Task, lengths: tuple[int, int], params, is_tanh: Array, key: Array, n: int
) -> Array:
    """Misclassified sequences among `n` fresh ones of `draw(task, lengths, ...)`, drawn in
    chunks of EVAL_CHUNK (each chunk with its own length when `lengths` is a range)."""
    chunk = min(n, EVAL_CHUNK)
    n_chunks = -(-n // chunk)

    def one(i):
        inputs, targets = draw(task, lengths, jax.random.fold_in(key, i), chunk)
        wrong = task.errors(params, rnn_states(params, inputs, is_tanh), targets)
        return jnp.sum(wrong & (i * chunk + jnp.arange(chunk) < n))

    return jnp.sum(jax.lax.map(one, jnp.arange(n_chunks)))


@functools.partial(jax.jit, static_argnums=(0, 1, 5))
def misclassified_fraction(
    task: Task, lengths: tuple[int, int], params, is_tanh: Array, key: Array, n: int
) -> Array:
    """Fraction of `n` fresh sequences that `params` misclassifies (the success test)."""
    return count_errors(task, lengths, params, is_tanh, key, n) / n


def screen(cfg: EngineConfig, const: RunConstants, params, updates: Array) -> Array:
    """Misclassified of cfg.screen_size fresh sequences, keyed by the run's update count."""
    key = jax.random.fold_in(const.screen_key, updates)
    return count_errors(cfg.task, cfg.lengths, params, const.is_tanh, key, cfg.screen_size)


def _period(cfg: EngineConfig, const: RunConstants, state: TrainState):
    """One run: eval_every updates (if active), then a screen. Vmapped over runs."""
    tx = sgd_with_clipping(const.threshold, cfg.learning_rate, nonfinite=cfg.nonfinite)
    on = state.active

    def update(carry, _):
        params, opt_state, n, sums = carry
        inputs, targets = draw(
            cfg.task, cfg.lengths, jax.random.fold_in(const.data_key, n), cfg.batch
        )
        loss, omega, grads = loss_and_grads(
            params,
            inputs,
            targets,
            task=cfg.task,
            activation=const.is_tanh,
            alpha=const.alpha,
            bound=cfg.bound,
        )
        updates, new_opt = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        sums = sums + jnp.where(on, jnp.stack([loss, omega]), 0.0)
        return (
            optax.tree.where(on, new_params, params),
            optax.tree.where(on, new_opt, opt_state),
            n + on.astype(n.dtype),
            sums,
        ), None

    before = state.opt_state[0]
    (params, opt_state, n, sums), _ = jax.lax.scan(
        update,
        (state.params, state.opt_state, state.updates, jnp.zeros(2)),
        None,
        length=cfg.eval_every,
    )
    errors = screen(cfg, const, params, n)
    passed = on & (errors < cfg.success * cfg.screen_size)
    after = opt_state[0]
    steps = after.count - before.count
    diag = Diagnostics(
        trained=on,
        updates=n,
        loss=sums[0] / cfg.eval_every,
        omega=sums[1] / cfg.eval_every,
        norm_sum=after.norm_sum - before.norm_sum,
        counted=steps - (after.nonfinite - before.nonfinite),
        clipped=after.clipped - before.clipped,
        steps=steps,
        error=errors / cfg.screen_size,
        W_rec=params["W_rec"],
    )
    state = TrainState(
        params, opt_state, n, on & ~passed & (n < cfg.max_updates), state.candidate | passed
    )
    return state, diag


@functools.partial(jax.jit, static_argnums=0)
def train_call(cfg: EngineConfig, const: RunConstants, state: TrainState):
    """Up to cfg.periods_per_call periods for all runs; stops early when none is active.

    Returns (state, diagnostics with leading axes (periods_per_call, R), periods run).
    """
    period = jax.vmap(functools.partial(_period, cfg))
    empty = jax.eval_shape(period, const, state)[1]
    buffers = jax.tree.map(lambda s: jnp.zeros((cfg.periods_per_call, *s.shape), s.dtype), empty)

    def body(carry):
        p, state, buffers = carry
        state, row = period(const, state)
        return p + 1, state, jax.tree.map(lambda b, x: b.at[p].set(x), buffers, row)

    def cond(carry):
        p, state, _ = carry
        return (p < cfg.periods_per_call) & jnp.any(state.active)

    p, state, buffers = jax.lax.while_loop(cond, body, (0, state, buffers))
    return state, buffers, p


@functools.partial(jax.jit, static_argnums=0)
def screen_all(cfg: EngineConfig, const: RunConstants, state: TrainState) -> Array:
    """The screen of every run on its own (used to measure what screening costs)."""
    return jax.vmap(lambda c, s: screen(cfg, c, s.params, s.updates))(const, state)
