"""Task heads: the loss E that is trained and the per-sequence error that decides success.

Three heads cover the pathological problems (docs/protocol.md, "Task heads"):

    last_softmax  E = mean_b CE(softmax(h_last W_out + b_out), y_b)
                  misclassified: argmax at the last step != y_b
    all_softmax   E = mean_{t,b} CE(softmax(h_t W_out + b_out), y_{t,b})
                  misclassified: any step's argmax is wrong
    last_linear   E = mean_b sum_o (h_last W_out + b_out - y_b)_o^2
                  misclassified: that squared error > 0.04

Targets are either a plain array (every sequence fills all T steps) or `Padded`, which
adds each sequence's last real step: the state read is h at that step, and steps after it
are masked out of all_softmax.

`Objective` is the whole of what BPTT and the regulariser (`backprop.py`, `regularizer.py`)
need from their `task=` argument: the number of outputs and the loss E as a function of the
states. A `tasks.Task` is one; so are the natural problems' `NotePrediction` and
`CharPrediction` (`pascanu_jax.natural.sequence_model`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import optax

from pascanu_jax.rnn import Params, readout

Array = jax.Array

# A sequence of the linear tasks is misclassified when its squared error exceeds this.
LINEAR_TOLERANCE = 0.04


class Padded(NamedTuple):
    """Targets of sequences padded to a common number of steps T.

    Attributes:
      target: the targets, as for unpadded sequences ((B,) labels, (B, n_out) values, or
        (T, B) labels for all_softmax).
      last: (B,) int, index of each sequence's last real step (its length - 1).
    """

    target: Array
    last: Array


@runtime_checkable
class Objective(Protocol):
    """What a training step needs from `task=`: outputs and the loss E of the states.

    Implementations must be hashable and compare by value (frozen dataclasses do): they are
    static arguments of jitted functions, so equal objectives share one compiled program.

    Attributes:
      n_out: number of output units; the shape of W_out (H, n_out) is checked against it.
    """

    n_out: int

    def loss(self, params: Params, states: Array, targets: Array | Padded) -> Array:
        """The scalar loss E from the states h_1..h_T, (T, B, H), and the targets."""
        ...


def _last_state(states: Array, targets: Array | Padded) -> tuple[Array, Array]:
    if isinstance(targets, Padded):
        return states[targets.last, jnp.arange(states.shape[1])], targets.target
    return states[-1], targets


def _step_mask(states: Array, targets: Array | Padded) -> tuple[Array, Array]:
    """(T, B) mask of real steps, and the (T, B) labels."""
    if isinstance(targets, Padded):
        mask = jnp.arange(states.shape[0])[:, None] <= targets.last[None, :]
        return mask, targets.target
    return jnp.ones(states.shape[:2], bool), targets


def last_softmax_loss(params: Params, states: Array, targets: Array | Padded) -> Array:
    h, y = _last_state(states, targets)
    return optax.softmax_cross_entropy_with_integer_labels(readout(params, h), y).mean()


def last_softmax_errors(params: Params, states: Array, targets: Array | Padded) -> Array:
    h, y = _last_state(states, targets)
    return jnp.argmax(readout(params, h), axis=-1) != y


def all_softmax_loss(params: Params, states: Array, targets: Array | Padded) -> Array:
    mask, y = _step_mask(states, targets)
    ce = optax.softmax_cross_entropy_with_integer_labels(readout(params, states), y)
    return jnp.sum(jnp.where(mask, ce, 0.0)) / jnp.sum(mask)


def all_softmax_errors(params: Params, states: Array, targets: Array | Padded) -> Array:
    mask, y = _step_mask(states, targets)
    wrong = jnp.argmax(readout(params, states), axis=-1) != y
    return jnp.any(wrong & mask, axis=0)


def _squared_error(params: Params, states: Array, targets: Array | Padded) -> Array:
    h, y = _last_state(states, targets)
    return jnp.sum((readout(params, h) - y) ** 2, axis=-1)


def last_linear_loss(params: Params, states: Array, targets: Array | Padded) -> Array:
    return _squared_error(params, states, targets).mean()


def last_linear_errors(params: Params, states: Array, targets: Array | Padded) -> Array:
    # Written as "not within tolerance" so that a NaN output (a ruined run) is an error.
    return ~(_squared_error(params, states, targets) <= LINEAR_TOLERANCE)


@dataclasses.dataclass(frozen=True)
class Head:
    """A loss E(params, states, targets) -> scalar and errors(...) -> (B,) bool."""

    name: str
    # repr=False keeps repr(Task) free of addresses, so it can identify a configuration.
    loss: Callable[[Params, Array, Array | Padded], Array] = dataclasses.field(repr=False)
    errors: Callable[[Params, Array, Array | Padded], Array] = dataclasses.field(repr=False)


LAST_SOFTMAX = Head("last_softmax", last_softmax_loss, last_softmax_errors)
ALL_SOFTMAX = Head("all_softmax", all_softmax_loss, all_softmax_errors)
LAST_LINEAR = Head("last_linear", last_linear_loss, last_linear_errors)
