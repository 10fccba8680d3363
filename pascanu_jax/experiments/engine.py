"""Train R runs of one task in parallel as one compiled program (the Fig. 7 protocol).

A run is (initialisation, method, seed). Methods are data (threshold, alpha, guard, the
optimizer's hyperparameters) and the activation is a per-run flag, so sigmoid and tanh
runs, all three methods and all seeds share one `vmap`ped update: one compile per task and
length. Methods with another `UpdateRule` (another optimizer or clipping kind, e.g. Adam or
element-wise clipping) form programs of their own (`runner.train` groups them).

One compiled call runs up to `periods_per_call` periods. A period is `eval_every` SGD
updates (a `lax.scan`, data drawn on the device from keys fold_in(data_key, update)) and
then a *screen*: the run's error on `screen_size` fresh sequences. A run whose screen is
under the success rate stops training (it is frozen, masked) and becomes a candidate; the
host then checks candidates on `confirm_size` = 10,000 fresh sequences (the paper's test:
fewer than 1% misclassified). A candidate that fails the check trains on. A run whose
parameters stop being finite (plain MSGD has no guard) ends as a failure. Every key is a
function of (seed, update count), so freezing, resuming from a checkpoint or sharding
over devices never changes a run's trajectory.

Training on a range of lengths: the length of update n is drawn from a schedule shared by
all runs, and the update's batch is padded only to the longest length of its bucket
(`EngineConfig.length_buckets`), so mixed-length training costs what its lengths cost.

Diagnostics per run and period: mean training loss, mean pre-clip gradient norm, clipped
fraction (the updates that Algorithm 1 rescaled; element-wise and adaptive clipping act
per entry and are not counted, so their runs show 0), non-finite updates (guard trips),
mean Omega, spectral radius of W_rec (on the host: eig is not available on every
accelerator) and the screening error.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

from pascanu_jax.clipping import NONFINITE_MODES
from pascanu_jax.experiments.sharding import RUN_AXIS
from pascanu_jax.methods import (
    BATCH_SIZE,
    LEARNING_RATE,
    PAPER_RULE,
    Method,
    UpdateRule,
    clip_state,
    method_transform,
)
from pascanu_jax.regularizer import BACKENDS, DEFAULT_BOUND
from pascanu_jax.rnn import rnn_states
from pascanu_jax.step import rnn_gradients, train_step
from pascanu_jax.tasks import Task

Array = jax.Array
EVAL_CHUNK = 500  # sequences per forward pass when counting errors (bounds memory)
DIAGNOSTICS = (
    "loss",
    "grad_norm",
    "clipped_fraction",
    "nonfinite",
    "omega",
    "spectral_radius",
    "error",
)
LENGTH_SCHEDULE = 0x5CA1E  # seed of the length schedule that all runs of a range share


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run: initialisation scheme, method (a name of METHODS or a `Method`) and seed."""

    init: str
    method: str | Method
    seed: int


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Everything that fixes the compiled program of one task and length range.

    Attributes:
      lengths: [lo, hi) nominal lengths; one length L is (L, L + 1). With a range, every
        update draws its length uniformly (the paper's [50, 200) training, §4.1.1) from a
        schedule shared by all runs, and trains on a batch padded to the longest length of
        its bucket (see `length_buckets`), so there is no recompile per length.
      success: a run is solved when its misclassified fraction is < success (paper: 1%).
      stop_on_success: False: no run stops at a passed screen; every run trains to
        max_updates and is checked once there (to train on after a first success).
      nonfinite: clip_by_pascanu_norm's guard rule; "shrink" is the authors'. Methods without
        the guard (plain MSGD) apply a non-finite gradient and the run ends as a failure.
      length_buckets: a range is cut into this many buckets of lengths, each one compiled
        step (1: always pad to hi - 1, the cost of the longest length).
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
    stop_on_success: bool = True
    nonfinite: str = "shrink"
    bound: float = DEFAULT_BOUND
    periods_per_call: int = 10
    length_buckets: int = 6
    backend: str = "xla"

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
            "length_buckets",
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
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")

    def buckets(self) -> tuple[int, ...]:
        """The longest nominal length of each bucket: [lo, hi) cut into `length_buckets`
        equal-width pieces (one piece for one length). An update trains on a batch padded
        to the steps of its bucket's longest length."""
        lo, hi = self.lengths
        width = -(-(hi - lo) // min(self.length_buckets, hi - lo))
        return tuple(min(b + width, hi) - 1 for b in range(lo, hi, width))


class RunConstants(NamedTuple):
    """Per-run data that never changes: leading axis R. `hyper` holds the numeric
    hyperparameters of the program's optimizer (`UpdateRule.hyperparameters`, the
    learning rate among them); `threshold` is the clipping rule's number, `measure` the
    updates that §3.2's heuristic averages over (`Method`)."""

    is_tanh: Array
    threshold: Array
    alpha: Array
    guard: Array
    data_key: Array
    screen_key: Array
    hyper: dict[str, Array]
    measure: Array


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
    nonfinite: Array
    steps: Array
    error: Array
    W_rec: Array


def run_keys(seed: int, length: int) -> dict[str, Array]:
    """Keys of a run. Every init and method of one seed sees the same initial draw and the
    same data: the comparison between methods is paired.

    Examples:
      >>> from pascanu_jax.experiments import engine
      >>> sorted(engine.run_keys(0, 50))
      ['confirm', 'data', 'init', 'screen']
    """
    base = jax.random.fold_in(jax.random.PRNGKey(seed), length)
    return {
        name: jax.random.fold_in(base, i)
        for i, name in enumerate(("init", "data", "screen", "confirm"))
    }


def confirm_key(run_confirm_key: Array, updates: int) -> Array:
    """Key of the `confirm_size` sequences that check a run stopped after `updates` updates:
    fold_in(run_keys(seed, length)["confirm"], updates). Each check draws fresh sequences, so
    a run that trains on after a lucky screen is confirmed later on sequences it has not met.

    Examples:
      >>> from pascanu_jax.experiments import engine
      >>> k = engine.confirm_key(engine.run_keys(0, 50)["confirm"], 2_800)
      >>> bool((k != engine.confirm_key(engine.run_keys(0, 50)["confirm"], 2_900)).any())
      True
    """
    return jax.random.fold_in(run_confirm_key, updates)


def train_length(cfg: EngineConfig, update: Array) -> Array:
    """The nominal length of update number `update`: lengths[0] for one length, otherwise
    drawn uniformly from [lo, hi) by a schedule that every run shares (so the runs of one
    program train on one length per update, and the program pays for that length only).

    Examples:
      >>> from pascanu_jax.experiments import engine
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 30), length_buckets=4)
      >>> lengths = [int(engine.train_length(cfg, jnp.int32(u))) for u in range(5)]
      >>> all(10 <= n < 30 for n in lengths)
      True
    """
    lo, hi = cfg.lengths
    if hi - lo == 1:
        return jnp.asarray(lo, jnp.int32)
    key = jax.random.fold_in(jax.random.key(LENGTH_SCHEDULE), update)
    return jax.random.randint(key, (), lo, hi)


def bucket_of(cfg: EngineConfig, update: Array) -> Array:
    """Index into `cfg.buckets()` of the bucket that holds update `update`'s length.

    Examples:
      >>> from pascanu_jax.experiments import engine
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 30), length_buckets=4)
      >>> cfg.buckets()
      (14, 19, 24, 29)
      >>> u = jnp.int32(7)
      >>> longest = cfg.buckets()[int(engine.bucket_of(cfg, u))]
      >>> bool(engine.train_length(cfg, u) <= longest)
      True
    """
    lo, hi = cfg.lengths
    width = -(-(hi - lo) // len(cfg.buckets()))
    return (train_length(cfg, update) - lo) // width


def training_batch(cfg: EngineConfig, data_key: Array, update: Array, steps: int):
    """The batch of update `update` of a run: length `train_length`, sequences from the
    run's own key, drawn padded to the range's longest length and cut to `steps` (the
    bucket's), so the data never depends on the bucket it is trained in.

    Examples:
      >>> from pascanu_jax.experiments import engine
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 30), length_buckets=4)
      >>> key = engine.run_keys(0, 10)["data"]
      >>> inputs, targets = engine.training_batch(cfg, key, jnp.int32(0), 29)
      >>> inputs.shape  # (steps, batch, n_in)
      (29, 20, 6)
    """
    lo, hi = cfg.lengths
    key = jax.random.fold_in(data_key, update)
    if hi - lo == 1:
        return cfg.task.sample(key, cfg.batch, lo)
    inputs, targets = cfg.task.sample_padded(key, cfg.batch, train_length(cfg, update), hi - 1)
    return cfg.task.truncate(inputs, targets, steps)


def draw(task: Task, lengths: tuple[int, int], key: Array, batch: int):
    """An evaluation batch: nominal length lengths[0] when the range holds one length;
    otherwise drawn uniformly from [lo, hi) and padded to hi - 1.

    Examples:
      >>> from pascanu_jax.experiments import engine
      >>> inputs, targets = engine.draw(pj.get_task("temporal_order"), (10, 11), jax.random.key(0),
      ...     3)
      >>> inputs.shape
      (10, 3, 6)
    """
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
    chunks of EVAL_CHUNK (each chunk with its own length when `lengths` is a range).

    Examples:
      >>> from pascanu_jax.experiments import engine
      >>> task = pj.get_task("temporal_order")
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", task.n_in, 4, task.n_out)
      >>> n = engine.count_errors(task, (10, 11), params, jnp.bool_(True), jax.random.key(0), 100)
      >>> 0 <= int(n) <= 100
      True
    """
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
    """Misclassified of cfg.screen_size fresh sequences, keyed by the run's update count.

    Examples:
      >>> from pascanu_jax.experiments import engine
      >>> from pascanu_jax.experiments.runner import initial_state
      >>> cfg = pj.EngineConfig(pj.get_task("temporal_order"), (10, 11), screen_size=20)
      >>> runs = [pj.RunSpec("basic_tanh", "MSGD", seed=0)]
      >>> const, state, _ = initial_state(cfg, runs, 1)
      >>> first = lambda tree: jax.tree.map(lambda a: a[0], tree)  # run 0 of the stacked runs
      >>> errors = engine.screen(cfg, first(const), first(state.params), state.updates[0])
      >>> 0 <= int(errors) <= cfg.screen_size
      True
    """
    key = jax.random.fold_in(const.screen_key, updates)
    return count_errors(cfg.task, cfg.lengths, params, const.is_tanh, key, cfg.screen_size)


def _run_update(
    cfg: EngineConfig,
    rule: UpdateRule,
    constants: tuple[tuple[str, float], ...],
    steps: int,
    const: RunConstants,
    params,
    opt_state,
    n,
    on,
):
    """One update of one run on a batch of `steps` steps (kept as is when not `on`):
    `train_step` with the run's method; returns (params, opt_state, [loss, Omega]).
    `constants`: hyperparameters that every run of the program shares, compiled in as
    numbers (XLA folds them as it did the paper's fixed learning rate; the rest are data)."""
    gradients = rnn_gradients(
        cfg.task, activation=const.is_tanh, alpha=const.alpha, bound=cfg.bound, backend=cfg.backend
    )
    tx = method_transform(
        rule,
        {**const.hyper, **dict(constants)},
        threshold=const.threshold,
        guard=const.guard,
        measure=const.measure,
        nonfinite=cfg.nonfinite,
    )
    batch = training_batch(cfg, const.data_key, n, steps)
    params, opt_state, metrics = train_step(gradients, params, opt_state, batch, tx, active=on)
    return params, opt_state, jnp.stack([metrics.loss, metrics.omega])


def _all_finite(params) -> Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))


def _period(cfg: EngineConfig, rule: UpdateRule, constants, const: RunConstants, state: TrainState):
    """All runs (leading axis R): eval_every updates of the active runs, then a screen.

    Every update trains all runs on the bucket of the longest length drawn by an active run
    (with the shared schedule, the length of that update): a `lax.switch` over the buckets
    picks one compiled step, so an update costs what its length costs, not the range's
    longest.
    """
    steps = [cfg.task.max_steps(bound) for bound in cfg.buckets()]
    branches = [
        jax.vmap(functools.partial(_run_update, cfg, rule, constants, s), in_axes=(0, 0, 0, 0, 0))
        for s in steps
    ]
    on = state.active

    def update(carry, _):
        params, opt_state, n, sums = carry
        if len(branches) == 1:
            out = branches[0](const, params, opt_state, n, on)
        else:
            bucket = jnp.max(jnp.where(on, jax.vmap(lambda k: bucket_of(cfg, k))(n), 0))
            out = jax.lax.switch(bucket, branches, const, params, opt_state, n, on)
        params, opt_state, stats = out
        return (params, opt_state, n + on.astype(n.dtype), sums + stats), None

    before = clip_state(state.opt_state)
    (params, opt_state, n, sums), _ = jax.lax.scan(
        update,
        (state.params, state.opt_state, state.updates, jnp.zeros((on.shape[0], 2))),
        None,
        length=cfg.eval_every,
    )
    errors = jax.vmap(lambda c, p, k: screen(cfg, c, p, k))(const, params, n)
    passed = on & (errors < cfg.success * cfg.screen_size)
    if not cfg.stop_on_success:
        passed = jnp.zeros_like(passed)
    # A run whose parameters are no longer finite (plain MSGD after a blow-up) has failed.
    ruined = ~jax.vmap(_all_finite)(params)
    after = clip_state(opt_state)
    steps_run = after.count - before.count
    nonfinite = after.nonfinite - before.nonfinite
    diag = Diagnostics(
        trained=on,
        updates=n,
        loss=sums[:, 0] / cfg.eval_every,
        omega=sums[:, 1] / cfg.eval_every,
        norm_sum=after.norm_sum - before.norm_sum,
        counted=steps_run - nonfinite,
        clipped=after.clipped - before.clipped,
        nonfinite=nonfinite,
        steps=steps_run,
        error=errors / cfg.screen_size,
        W_rec=params["W_rec"],
    )
    state = TrainState(
        params,
        opt_state,
        n,
        on & ~passed & ~ruined & (n < cfg.max_updates),
        state.candidate | (passed & ~ruined),
    )
    return state, diag


@functools.partial(jax.jit, static_argnums=0, static_argnames=("mesh", "rule", "constants"))
def train_call(
    cfg: EngineConfig,
    const: RunConstants,
    state: TrainState,
    mesh: Mesh | None = None,
    rule: UpdateRule = PAPER_RULE,
    constants: tuple[tuple[str, float], ...] = (),
):
    """Up to cfg.periods_per_call periods for all runs; stops early when none is active.

    rule: the update rule every run's method shares (default: the paper's SGD with norm
      clipping).
    constants: (name, value) of the hyperparameters every run shares (`runner.shared_numbers`):
      compiled in as numbers, in place of their `const.hyper` entries.
    mesh: the 1-D mesh the run axis is sharded over (`sharding.run_mesh`). Each device
      then trains its own runs with no communication (`shard_map`): in particular each
      picks the length bucket of its own runs. None: one program over all runs.
    Returns (state, diagnostics with leading axes (periods_per_call, R), periods run).
    """
    period = functools.partial(_period, cfg, rule, constants)
    if mesh is not None:
        runs = PartitionSpec(RUN_AXIS)
        # check_vma=False: every value inside is per device; the internal scans start from
        # constants that the checker would otherwise ask to be cast to "varying".
        period = jax.shard_map(
            period, mesh=mesh, in_specs=(runs, runs), out_specs=runs, check_vma=False
        )
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
