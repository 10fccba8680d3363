"""The pathological problems of Hochreiter & Schmidhuber (1997) as used by Pascanu et al.
(2013, §4.1), with the exact layouts of docs/protocol.md (L = requested length, positions
0-based, ranges half-open, w = floor(L / 10)):

temporal_order      6 symbols one-hot (A=0, B=1, distractors 2..5). Random distractors,
                    except p0 in [w, 2w) holding v0 in {A, B} and p1 in
                    [floor(L/2), floor(L/2) + w) holding v1. 4 classes: v0 + 2 v1.
temporal_order_3bit markers at floor(.1L), floor(.3L), floor(.6L), each in a window of w;
                    8 classes: v0 + 2 v1 + 4 v2.
addition            2 channels: channel 1 uniform in [0, 1), channel 0 a marker at p0 and
                    p1. Real length l = L + U{0, .., w-1}, one l per batch, padded to the
                    longest possible l; p0 in [0, floor(.1l)), p1 in
                    [floor(.1l), floor(.1l) + floor(.4l)). Target (x[p0] + x[p1]) / 2.
multiplication      as addition, target x[p0] * x[p1].
permutation         100 symbols one-hot; the first is v in {0, 1}, the rest uniform in
                    {2..99}; 100-way target v at the last step.
memorization        n_values symbols + blank + go channels, L + 2 n_pos steps: the pattern,
                    L blanks, go (at step L + n_pos), n_pos - 1 blanks. Target: blank class
                    (= n_values) except the last n_pos steps, which repeat the pattern.
                    Presets: memorization_5bit (2 values, 5 positions), memorization_20bit
                    (5 values, 10 positions: about 23 bits; the authors' default).

Generators are pure JAX: keyed, jittable (batch and length static), so training loops
draw fresh data on the device. `sample_padded` also takes a traced length, for training on
lengths that change every update without recompiling.
"""

from __future__ import annotations

import dataclasses
import functools
from types import MappingProxyType

import jax
import jax.numpy as jnp

from pascanu_jax.losses import ALL_SOFTMAX, LAST_LINEAR, LAST_SOFTMAX, Head, Objective, Padded
from pascanu_jax.rnn import Params

Array = jax.Array

TEMPORAL_ORDER_OFFSETS = MappingProxyType(
    {"temporal_order": (1, 5), "temporal_order_3bit": (1, 3, 6)}
)
MEMORIZATION_PRESETS = MappingProxyType(
    {"memorization_5bit": (2, 5), "memorization_20bit": (5, 10)}
)
TASK_NAMES = (
    "temporal_order",
    "temporal_order_3bit",
    "addition",
    "multiplication",
    "permutation",
    "memorization",
    *MEMORIZATION_PRESETS,
)
"""The names `get_task` accepts: the six tasks of §4 and memorization's two variants."""


@dataclasses.dataclass(frozen=True)
class Task:
    """A pathological task: sizes, head (loss and error) and a keyed data generator.

    Attributes:
      name: as passed to `get_task`. kind: which generator.
      n_in, n_out: input channels and output units.
      head: loss and per-sequence error (`losses.py`).
      min_length: the shortest L for which the layout exists.
      pads: True when even `sample` returns `Padded` targets (addition, multiplication).
      n_values, n_pos: memorization only.
    """

    name: str
    kind: str
    n_in: int
    n_out: int
    head: Head
    min_length: int
    pads: bool = False
    n_values: int = 0
    n_pos: int = 0

    def max_steps(self, length: int) -> int:
        """Number of steps T of a batch of nominal length L (padding included)."""
        if self.kind in ("addition", "multiplication"):
            return length + length // 10 - 1
        if self.kind == "memorization":
            return length + 2 * self.n_pos
        return length

    def check_length(self, length: int) -> None:
        if isinstance(length, jax.core.Tracer):
            raise ValueError(
                f"{self.name}: sample() needs a Python int length; use sample_padded(key, batch, "
                "length, max_length) for a traced length"
            )
        if int(length) != length or length < self.min_length:
            raise ValueError(
                f"{self.name} needs an integer length >= {self.min_length}, got {length!r}"
            )

    def sample(self, key: Array, batch: int, length: int) -> tuple[Array, Array | Padded]:
        """A fresh batch: inputs (T, B, n_in) float32 and targets.

        Targets: (B,) int labels (last_softmax), (T, B) int labels (memorization), or for
        addition and multiplication `Padded(target (B, 1) float32, last (B,))`.
        """
        self.check_length(length)
        _check_batch(batch)
        inputs, target, last = _generate(self, key, batch, self.max_steps(length), length)
        return inputs, (Padded(target, last) if self.pads else target)

    def sample_padded(
        self, key: Array, batch: int, length: Array | int, max_length: int
    ) -> tuple[Array, Padded]:
        """A batch of nominal length `length` (may be traced) padded with zero inputs to
        the steps of `max_length`; the targets carry each sequence's last real step.
        The caller keeps min_length <= length <= max_length when length is traced."""
        self.check_length(max_length)
        _check_batch(batch)
        if not isinstance(length, jax.core.Tracer):
            self.check_length(int(length))
            if length > max_length:
                raise ValueError(f"length {length} exceeds max_length {max_length}")
        inputs, target, last = _generate(self, key, batch, self.max_steps(max_length), length)
        return inputs, Padded(target, last)

    def truncate(self, inputs: Array, targets: Padded, steps: int) -> tuple[Array, Padded]:
        """The first `steps` steps of a padded batch (every sequence's real steps must fit):
        the same sequences as a shorter padding would hold, drawn independently of it."""
        if self.head is ALL_SOFTMAX:  # per-step labels are cut with the inputs
            targets = Padded(targets.target[:steps], targets.last)
        return inputs[:steps], targets

    def loss(self, params: Params, states: Array, targets: Array | Padded) -> Array:
        """The training loss E (scalar) from the states (T, B, H)."""
        return self.head.loss(params, states, targets)

    def errors(self, params: Params, states: Array, targets: Array | Padded) -> Array:
        """(B,) bool: which sequences are misclassified."""
        return self.head.errors(params, states, targets)


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _generate(task: Task, key: Array, batch: int, steps: int, length: Array | int):
    """Run the task's generator: (inputs (steps, B, n_in), target, last (B,))."""
    return _GENERATORS[task.kind](task, key, batch, steps, jnp.asarray(length, jnp.int32))


def _check_batch(batch: int) -> None:
    if isinstance(batch, jax.core.Tracer) or int(batch) != batch or batch < 1:
        raise ValueError(f"batch must be a positive Python int, got {batch!r}")


def _one_hot_padded(symbols: Array, length: Array, n: int) -> Array:
    """One-hot (T, B, n) float32; steps >= length become all-zero padding."""
    t = jnp.arange(symbols.shape[0])[:, None]
    return jax.nn.one_hot(jnp.where(t < length, symbols, -1), n, dtype=jnp.float32)


def _temporal_order(task: Task, key: Array, batch: int, steps: int, length: Array):
    offsets = TEMPORAL_ORDER_OFFSETS[task.kind]
    k_sym, k_pos, k_val = jax.random.split(key, 3)
    t = jnp.arange(steps)[:, None]
    symbols = jax.random.randint(k_sym, (steps, batch), 2, 6)
    window = length // 10
    jitter = jax.random.randint(k_pos, (len(offsets), batch), 0, window)
    values = jax.random.randint(k_val, (len(offsets), batch), 0, 2)
    target = jnp.zeros((batch,), jnp.int32)
    for i, tenths in enumerate(offsets):
        position = (tenths * length) // 10 + jitter[i]
        symbols = jnp.where(t == position[None, :], values[i][None, :], symbols)
        target = target + values[i] * 2**i
    last = jnp.full((batch,), length - 1, jnp.int32)
    return _one_hot_padded(symbols, length, task.n_in), target, last


def _permutation(task: Task, key: Array, batch: int, steps: int, length: Array):
    k_first, k_rest = jax.random.split(key)
    first = jax.random.randint(k_first, (batch,), 0, 2)
    symbols = jax.random.randint(k_rest, (steps, batch), 2, task.n_in).at[0].set(first)
    last = jnp.full((batch,), length - 1, jnp.int32)
    return _one_hot_padded(symbols, length, task.n_in), first, last


def _addition_like(task: Task, key: Array, batch: int, steps: int, length: Array):
    k_len, k_p0, k_p1, k_x = jax.random.split(key, 4)
    real = length + jax.random.randint(k_len, (), 0, length // 10)  # one l per batch
    w = real // 10
    p0 = jax.random.randint(k_p0, (batch,), 0, w)
    p1 = w + jax.random.randint(k_p1, (batch,), 0, (4 * real) // 10)
    x = jax.random.uniform(k_x, (steps, batch), jnp.float32)
    t = jnp.arange(steps)[:, None]
    inside = t < real
    marker = inside & ((t == p0[None, :]) | (t == p1[None, :]))
    inputs = jnp.stack([marker.astype(jnp.float32), jnp.where(inside, x, 0.0)], axis=-1)
    b = jnp.arange(batch)
    a, c = x[p0, b], x[p1, b]
    target = (a + c) / 2 if task.kind == "addition" else a * c
    last = jnp.full((batch,), real - 1, jnp.int32)
    return inputs, target[:, None], last


def _memorization(task: Task, key: Array, batch: int, steps: int, length: Array):
    n_values, n_pos = task.n_values, task.n_pos
    blank, go = n_values, n_values + 1
    pattern = jax.random.randint(key, (n_pos, batch), 0, n_values)
    t = jnp.broadcast_to(jnp.arange(steps)[:, None], (steps, batch))
    go_step = length + n_pos
    total = length + 2 * n_pos

    def pattern_at(i):
        return jnp.take_along_axis(pattern, jnp.clip(i, 0, n_pos - 1), axis=0)

    symbols = jnp.where(t < n_pos, pattern_at(t), blank)
    symbols = jnp.where(t == go_step, go, symbols)
    recall = (t >= go_step) & (t < total)
    target = jnp.where(recall, pattern_at(t - go_step), blank)
    last = jnp.full((batch,), total - 1, jnp.int32)
    return _one_hot_padded(symbols, total, task.n_in), target, last


_GENERATORS = MappingProxyType(
    {
        "temporal_order": _temporal_order,
        "temporal_order_3bit": _temporal_order,
        "addition": _addition_like,
        "multiplication": _addition_like,
        "permutation": _permutation,
        "memorization": _memorization,
    }
)


def get_task(name: str, **options: int) -> Task:
    """The task `name` (one of TASK_NAMES).

    Options: memorization takes n_values (default 5) and n_pos (default 10); the presets
    memorization_5bit and memorization_20bit fix them. Other tasks take no options.

    Examples:
      >>> task = pj.get_task("addition")
      >>> task.n_in, task.n_out
      (2, 1)
      >>> inputs, targets = task.sample(jax.random.key(0), 3, 20)
      >>> inputs.shape
      (21, 3, 2)
    """
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASK_NAMES)}")
    takes = ("n_values", "n_pos") if name == "memorization" else ()
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ValueError(f"task {name!r} takes options {list(takes)}; got unknown {unknown}")
    if name in TEMPORAL_ORDER_OFFSETS:
        n_classes = 2 ** len(TEMPORAL_ORDER_OFFSETS[name])
        return Task(name, name, 6, n_classes, LAST_SOFTMAX, min_length=10)
    if name in ("addition", "multiplication"):
        return Task(name, name, 2, 1, LAST_LINEAR, min_length=10, pads=True)
    if name == "permutation":
        return Task(name, name, 100, 100, LAST_SOFTMAX, min_length=2)
    n_values, n_pos = MEMORIZATION_PRESETS.get(
        name, (options.get("n_values", 5), options.get("n_pos", 10))
    )
    for opt, v, lo in (("n_values", n_values, 2), ("n_pos", n_pos, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"memorization option {opt} must be an integer >= {lo}, got {v!r}")
    return Task(
        name,
        "memorization",
        n_values + 2,
        n_values + 1,
        ALL_SOFTMAX,
        min_length=1,
        n_values=int(n_values),
        n_pos=int(n_pos),
    )


def constant_baseline(
    task: Task, key: Array, n: int = 100_000, length: int = 50, grid: int = 1001
) -> tuple[float, float]:
    """What a model that ignores its input scores on a regression task (addition,
    multiplication): the constant answer c in [0, 1] (on `grid` points) that the task's
    error rule (`Task.errors`) misclassifies least often on `n` fresh sequences, and that
    fraction. A trained model beats the task only below it.

    For addition c = 0.5 misclassifies P(|(a + b)/2 - 0.5| > 0.2) = 0.36 (a, b uniform);
    for multiplication c = 0.2 misclassifies P(ab > 0.4) = 1 - 0.4 (1 - ln 0.4) = 0.23.

    Examples:
      >>> c, error = pj.constant_baseline(pj.get_task("addition"), jax.random.key(0), 20_000)
      >>> round(error, 2), abs(c - 0.5) < 0.05
      (0.36, True)
    """
    if task.head is not LAST_LINEAR:
        raise ValueError(f"{task.name} is not a regression task (addition, multiplication)")
    _, targets = task.sample(key, n, length)
    states = jnp.zeros((task.max_steps(length), n, 1))  # every answer is b_out

    def misclassified(c):
        params = {"W_out": jnp.zeros((1, task.n_out)), "b_out": jnp.full((task.n_out,), c)}
        return jnp.mean(task.errors(params, states, targets))

    answers = jnp.linspace(0.0, 1.0, grid)
    errors = jax.lax.map(misclassified, answers)
    best = int(jnp.argmin(errors))
    return float(answers[best]), float(errors[best])


def resolve_task(task: Objective | str) -> Objective:
    """`get_task(task)` for a task name, else `task` itself (a `Task` or any `Objective`).

    Public functions that take `task=` call it first, so names are resolved at the API edge
    and the code below them depends only on the `losses.Objective` protocol.
    """
    return get_task(task) if isinstance(task, str) else task
