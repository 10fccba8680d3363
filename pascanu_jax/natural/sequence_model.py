"""Sequence prediction with the paper's RNN: an output at every step (Pascanu et al., 2013,
§4.2, Table 1).

Two prediction problems, each a `losses.Objective` (usable as `task=` in
`pj.loss_and_grads`; targets are `pj.Padded`, steps after each sequence's `last` are
masked):

    NotePrediction  88 sigmoid outputs, one per piano key. With y_t = h_t W_out + b_out
                    and v_t in {0, 1}^88 the notes at step t,
                        NLL_t = sum_{p=1..88} -[v_tp log s(y_tp) + (1 - v_tp) log(1 - s(y_tp))],
                    s the logistic sigmoid (natural log): the negative log-likelihood of
                    the step under independent notes. Reported: NLL per time step =
                    mean_t NLL_t.
    CharPrediction  softmax over the vocabulary, target k steps ahead:
                        NLL_t = -log softmax(y_t)[x_{t+k}];
                    reported in bits per character = mean_t NLL_t / ln 2.

(Formerly `NoteHead` and `CharHead`, names kept as aliases: "head" is the word for a
pathological task's loss and error criterion, `losses.Head`, which these are not.)

E (the loss trained) is mean_t NLL_t over the real steps of the minibatch.

Data layout (`SequenceSet`): every split is one stream of rows (piano-roll rows or symbol
ids) plus a table of items (offset, length) into it. Step t of an item (t = 0 .. length-1)

    music:  reads row offset + t - 1 (a silent, all-zero input at t = 0) and predicts row
            offset + t, so a piece of T steps is scored on all T steps and its NLL is
            -log P(v_1 .. v_T), the first step predicted from h_1 = act(b) alone;
    text:   reads symbol offset + t and predicts symbol offset + t + k.

Training crops items to `length` steps at a start drawn on the host; evaluation runs every
item whole, each from h_0 = 0, in groups padded to a power of two of steps, so a handful of
compiled shapes cover a data set.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pascanu_jax.losses import Padded, _step_mask
from pascanu_jax.natural.music import N_NOTES
from pascanu_jax.rnn import Params, activation_flag, readout, rnn_states

Array = jax.Array

LN2 = math.log(2.0)


class SequenceSet(NamedTuple):
    """A stream of rows and the items (sequences) cut from it; a pytree, so jit takes it.

    Attributes:
      data: (N, 88) uint8 piano-roll rows, or (N,) int32 symbol ids.
      offsets: (n,) int32, the first row of each item.
      lengths: (n,) int32, the number of predicted steps of each item.
    """

    data: Array
    offsets: Array
    lengths: Array

    @property
    def n_items(self) -> int:
        return int(self.offsets.shape[0])

    @property
    def n_steps(self) -> int:
        """Predicted steps in all items together."""
        return int(np.sum(np.asarray(self.lengths)))


def music_set(rolls: list[np.ndarray]) -> SequenceSet:
    """Pieces (T_i, 88) as one SequenceSet: item i = piece i, all T_i steps predicted.

    Examples:
      >>> rolls = [np.zeros((5, 88), np.uint8), np.zeros((3, 88), np.uint8)]
      >>> pj.music_set(rolls).lengths  # every step of a piece is predicted
      Array([5, 3], dtype=int32)
    """
    if not rolls:
        raise ValueError("no pieces")
    lengths = np.array([len(r) for r in rolls], np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
    data = np.concatenate(rolls).astype(np.uint8)
    return SequenceSet(jnp.asarray(data), jnp.asarray(offsets), jnp.asarray(lengths))


def text_set(ids: np.ndarray, steps_ahead: int, item_length: int) -> SequenceSet:
    """A symbol stream cut into consecutive items of `item_length` predictions.

    Symbol x_t is read to predict x_{t+k}, k = steps_ahead, for t = 0 .. N-k-1: the N - k
    predictions are cut into items of item_length (the last one shorter).

    Examples:
      >>> data = pj.text_set(np.arange(25, dtype=np.int32), steps_ahead=1, item_length=10)
      >>> data.offsets, data.lengths
      (Array([ 0, 10, 20], dtype=int32), Array([10, 10,  4], dtype=int32))
    """
    n_pred = len(ids) - steps_ahead
    if steps_ahead < 1 or item_length < 1:
        raise ValueError("steps_ahead and item_length must be >= 1")
    if n_pred < 1:
        raise ValueError(f"a text of {len(ids)} symbols has nothing {steps_ahead} steps ahead")
    offsets = np.arange(0, n_pred, item_length, dtype=np.int32)
    lengths = np.minimum(item_length, n_pred - offsets).astype(np.int32)
    return SequenceSet(jnp.asarray(ids, jnp.int32), jnp.asarray(offsets), jnp.asarray(lengths))


def _masked_mean(step_nll: Array, mask: Array) -> Array:
    return jnp.sum(jnp.where(mask, step_nll, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


@dataclasses.dataclass(frozen=True)
class NotePrediction:
    """Next piano-roll row: 88 independent sigmoid outputs; NLL_t summed over notes."""

    n_out: int = N_NOTES
    unit: ClassVar[str] = "NLL per time step (nats)"
    unit_scale: ClassVar[float] = 1.0
    input_shift: ClassVar[int] = -1
    target_shift: ClassVar[int] = 0

    def encode_inputs(self, rows: Array) -> Array:
        return rows.astype(jnp.float32)

    def encode_targets(self, rows: Array) -> Array:
        return rows.astype(jnp.float32)

    def step_nll(self, params: Params, states: Array, targets: Array) -> Array:
        """(T, B) NLL_t in nats."""
        logits = readout(params, states)
        return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1)

    def loss(self, params: Params, states: Array, targets: Array | Padded) -> Array:
        """E = mean of NLL_t over the real steps."""
        mask, y = _step_mask(states, targets)
        return _masked_mean(self.step_nll(params, states, y), mask)


@dataclasses.dataclass(frozen=True)
class CharPrediction:
    """Softmax over `n_out` symbols, predicting the symbol `steps_ahead` steps ahead."""

    n_out: int
    steps_ahead: int = 1
    unit: ClassVar[str] = "bits per character"
    unit_scale: ClassVar[float] = 1.0 / LN2
    input_shift: ClassVar[int] = 0

    @property
    def target_shift(self) -> int:
        return self.steps_ahead

    def encode_inputs(self, rows: Array) -> Array:
        return jax.nn.one_hot(rows, self.n_out, dtype=jnp.float32)

    def encode_targets(self, rows: Array) -> Array:
        return rows

    def step_nll(self, params: Params, states: Array, targets: Array) -> Array:
        """(T, B) NLL_t in nats."""
        logits = readout(params, states)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets)

    def loss(self, params: Params, states: Array, targets: Array | Padded) -> Array:
        """E = mean of NLL_t over the real steps (nats)."""
        mask, y = _step_mask(states, targets)
        return _masked_mean(self.step_nll(params, states, y), mask)


SequencePrediction = NotePrediction | CharPrediction

# Former names, kept for existing code.
NoteHead = NotePrediction
CharHead = CharPrediction
SequenceHead = SequencePrediction


def gather_batch(
    prediction: SequencePrediction, data: SequenceSet, items: Array, starts: Array, length: int
) -> tuple[Array, Padded]:
    """Inputs (length, B, n_in) and `Padded` targets of items cropped at `starts`.

    Step t of sequence b is step starts[b] + t of item items[b]; steps past the item's end
    are padding (zero inputs, masked by `last`).

    Examples:
      >>> data = pj.text_set(np.arange(25, dtype=np.int32) % 5, steps_ahead=1, item_length=10)
      >>> items, starts = jnp.array([0, 1]), jnp.array([0, 2])  # crops of items 0 and 1
      >>> inputs, targets = pj.gather_batch(pj.CharPrediction(5), data, items, starts, 6)
      >>> inputs.shape  # (length, B, n_in): one-hot symbols
      (6, 2, 5)
    """
    t = starts[None, :] + jnp.arange(length)[:, None]  # (length, B): steps within the item
    n = data.lengths[items]
    rows = data.offsets[items][None, :] + t
    top = data.data.shape[0] - 1
    real = (t + prediction.input_shift >= 0) & (t < n[None, :])
    x = prediction.encode_inputs(data.data[jnp.clip(rows + prediction.input_shift, 0, top)])
    x = jnp.where(real[..., None], x, 0.0)
    y = prediction.encode_targets(data.data[jnp.clip(rows + prediction.target_shift, 0, top)])
    last = jnp.minimum(n - starts, length) - 1
    return x, Padded(y, last)


@functools.partial(jax.jit, static_argnames=("prediction", "length", "batched"))
def _group_nll(prediction, params, data, items, weight, is_tanh, *, length, batched):
    x, y = gather_batch(prediction, data, items, jnp.zeros_like(items), length)
    mask = jnp.arange(length)[:, None] <= y.last[None, :]
    mask = mask & (weight[None, :] > 0)

    def total(p):
        nll = prediction.step_nll(p, rnn_states(p, x, is_tanh), y.target)
        return jnp.sum(jnp.where(mask, nll, 0.0))

    nll = jax.vmap(total)(params) if batched else total(params)
    return nll, jnp.sum(mask)


def sequence_nll(
    prediction: SequencePrediction,
    params: Params,
    data: SequenceSet,
    activation: str | Array,
    *,
    group_size: int = 64,
    batched: bool = False,
) -> tuple[np.ndarray, int]:
    """Sum of NLL_t (nats) over every step of every item, and the number of steps.

    Each item runs whole from h_0 = 0. Items are sorted by length and run in groups of
    `group_size`, padded to the next power of two of steps (at least 16), so few shapes
    compile. With `batched`, params carry a leading axis (e.g. one entry per method) and the
    sums are per entry. The mean NLL per step is sum / steps; times `prediction.unit_scale` it is
    in the reported unit.

    Examples:
      >>> prediction = pj.CharPrediction(5)
      >>> data = pj.text_set(np.arange(25, dtype=np.int32) % 5, steps_ahead=1, item_length=10)
      >>> params = pj.init_rnn(jax.random.key(0), "basic_tanh", 5, 8, 5)
      >>> nll, steps = pj.sequence_nll(prediction, params, data, "tanh")
      >>> int(steps), bool(nll / steps > 0)
      (24, True)
    """
    lengths = np.asarray(data.lengths)
    order = np.argsort(lengths, kind="stable")
    parts = []  # read back after the loop, so the groups are dispatched without waiting
    for i in range(0, len(order), group_size):
        group = order[i : i + group_size]
        weight = np.ones(group_size, np.float32)
        weight[len(group) :] = 0.0  # the last group is filled with copies that count zero
        group = np.resize(group, group_size)
        length = max(16, 1 << int(lengths[group].max() - 1).bit_length())
        parts.append(
            _group_nll(
                prediction,
                params,
                data,
                jnp.asarray(group, jnp.int32),
                jnp.asarray(weight),
                activation_flag(activation),
                length=length,
                batched=batched,
            )
        )
    total = sum(np.asarray(nll, np.float64) for nll, _ in parts)
    return np.asarray(total), sum(int(count) for _, count in parts)
