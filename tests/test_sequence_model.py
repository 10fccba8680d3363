"""Sequence heads and evaluation: the NLL computed by the library and by a plain float64
numpy loop over pieces, time steps and notes (characters)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pascanu_jax as pj
from pascanu_jax import natural
from pascanu_jax.natural import sequence_model

H = 12


def _params(n_in, n_out, seed=0):
    params = pj.init_rnn(jax.random.key(seed), "basic_tanh", n_in, H, n_out)
    k = jax.random.split(jax.random.key(seed + 1), 2)
    params["b"] = 0.2 * jax.random.normal(k[0], (H,))
    params["b_out"] = 0.5 * jax.random.normal(k[1], (n_out,))
    params["W_out"] = params["W_out"] * 10.0  # outputs far from uniform
    return params


def _np(params):
    return {k: np.asarray(v, np.float64) for k, v in params.items()}


def numpy_music_nll(params, rolls):
    """Sum over pieces, steps and notes of -log P(v_t | v_<t), and the number of steps."""
    p = _np(params)
    total, steps = 0.0, 0
    for roll in rolls:
        h = np.zeros(H)
        previous = np.zeros(88)  # silence before the first step
        for t in range(len(roll)):
            h = np.tanh(h @ p["W_rec"] + previous @ p["W_in"] + p["b"])
            y = h @ p["W_out"] + p["b_out"]
            for note in range(88):
                prob_on = 1.0 / (1.0 + math.exp(-y[note]))
                total -= math.log(prob_on if roll[t, note] else 1.0 - prob_on)
            previous = roll[t]
            steps += 1
    return total, steps


def numpy_char_nll(params, ids, k, segment):
    """Sum of -log P(x_{t+k} | x_<=t) over t = 0..N-k-1, the state reset every `segment`."""
    p = _np(params)
    V = p["W_out"].shape[1]
    total = 0.0
    for t in range(len(ids) - k):
        if t % segment == 0:
            h = np.zeros(H)
        h = np.tanh(h @ p["W_rec"] + np.eye(V)[ids[t]] @ p["W_in"] + p["b"])
        y = h @ p["W_out"] + p["b_out"]
        total -= y[ids[t + k]] - math.log(np.sum(np.exp(y)))
    return total, len(ids) - k


def _rolls(rng, lengths):
    return [(rng.random((n, 88)) < 0.05).astype(np.float32) for n in lengths]


def test_music_nll_equals_numpy_loop():
    rng = np.random.default_rng(0)
    rolls = _rolls(rng, [5, 17, 1, 40, 9])
    params = _params(88, 88)
    data = sequence_model.music_set(rolls)
    total, steps = sequence_model.sequence_nll(
        sequence_model.NoteHead(), params, data, "tanh", group_size=2
    )
    ref_total, ref_steps = numpy_music_nll(params, rolls)
    assert steps == ref_steps == 72
    np.testing.assert_allclose(total, ref_total, rtol=2e-5)
    assert 20 < total / steps < 200  # an informative check: far from 0 and not absurd


@pytest.mark.parametrize("k", [1, 5])
def test_bits_per_character_equal_numpy_loop(k):
    rng = np.random.default_rng(1)
    V = 7
    ids = rng.integers(0, V, 230).astype(np.int32)
    params = _params(V, V, seed=2)
    head = sequence_model.CharHead(V, steps_ahead=k)
    data = sequence_model.text_set(ids, k, 50)
    total, steps = sequence_model.sequence_nll(head, params, data, "tanh")
    ref_total, ref_steps = numpy_char_nll(params, ids, k, 50)
    assert steps == ref_steps == 230 - k
    np.testing.assert_allclose(total, ref_total, rtol=2e-5)
    bits = total / steps * head.unit_scale
    np.testing.assert_allclose(bits, ref_total / ref_steps / math.log(2), rtol=2e-5)
    assert bits > math.log2(V) + 0.1  # random targets: worse than uniform for these weights


def test_head_loss_is_the_masked_mean_over_real_steps():
    """The training loss on a padded, cropped batch equals the numpy NLL of those crops."""
    rng = np.random.default_rng(3)
    rolls = _rolls(rng, [30, 8, 12])
    params = _params(88, 88, seed=4)
    head = sequence_model.NoteHead()
    data = sequence_model.music_set(rolls)
    items, starts = jnp.array([0, 1, 2]), jnp.array([10, 0, 3])
    x, y = sequence_model.gather_batch(head, data, items, starts, 16)
    assert x.shape == (16, 3, 88) and y.last.tolist() == [15, 7, 8]
    # The crop of piece 0 from step 10 reads step 9 first; piece 1 starts from silence.
    np.testing.assert_array_equal(x[0, 0], rolls[0][9])
    assert float(jnp.abs(x[0, 1]).sum()) == 0.0
    np.testing.assert_array_equal(x[1, 1], rolls[1][0])
    np.testing.assert_array_equal(y.target[0, 0], rolls[0][10])
    assert float(jnp.abs(x[9:, 2]).sum()) == 0.0  # padding past piece 2's end
    loss = head.loss(params, pj.rnn_states(params, x, "tanh"), y)

    p = _np(params)
    nll, count = 0.0, 0
    for b, (i, s) in enumerate(zip(items.tolist(), starts.tolist(), strict=True)):
        h = np.zeros(H)
        for t in range(int(y.last[b]) + 1):
            u = rolls[i][s + t - 1] if s + t > 0 else np.zeros(88)
            h = np.tanh(h @ p["W_rec"] + u @ p["W_in"] + p["b"])
            q = 1.0 / (1.0 + np.exp(-(h @ p["W_out"] + p["b_out"])))
            v = rolls[i][s + t]
            nll -= np.sum(v * np.log(q) + (1 - v) * np.log(1 - q))
            count += 1
    np.testing.assert_allclose(float(loss), nll / count, rtol=2e-5)
    # ... and pj.loss_and_grads accepts the head as a task.
    E, _omega, grads = pj.loss_and_grads(params, x, y, task=head, activation="tanh", alpha=1.0)
    np.testing.assert_allclose(float(E), nll / count, rtol=2e-5)
    assert grads["W_rec"].shape == (H, H)


def test_text_set_items_and_targets_k_ahead():
    ids = np.arange(23, dtype=np.int32)
    data = sequence_model.text_set(ids, 5, 8)
    assert data.offsets.tolist() == [0, 8, 16] and data.lengths.tolist() == [8, 8, 2]
    head = sequence_model.CharHead(23, steps_ahead=5)
    x, y = sequence_model.gather_batch(head, data, jnp.array([2]), jnp.array([0]), 4)
    assert jnp.argmax(x[:2, 0], -1).tolist() == [16, 17]
    assert y.target[:2, 0].tolist() == [21, 22] and y.last.tolist() == [1]


def test_alpha_schedule_is_one_over_t():
    alpha = natural.alpha_schedule(4.0, jnp.arange(0, 401, 100.0), 100.0)
    np.testing.assert_allclose(alpha, [4.0, 2.0, 4.0 / 3, 1.0, 0.8])
    # ~ alpha0 * tau / t far out: the paper's 1/t decay
    np.testing.assert_allclose(natural.alpha_schedule(4.0, 1e6, 100.0) * 1e6 / 400.0, 1, 1e-3)


def test_item_sampler_visits_every_item_once_per_epoch():
    lengths = np.array([5, 200, 100, 101, 7])
    sampler = natural.ItemSampler(lengths, crop=100, seed=0)
    items, starts = sampler.draw(5, 2)  # two epochs
    assert sorted(items.ravel()[:5]) == sorted(items.ravel()[5:]) == [0, 1, 2, 3, 4]
    room = np.maximum(lengths[items] - 100, 0)
    assert np.all((starts >= 0) & (starts <= room))
    assert np.all(starts[lengths[items] <= 100] == 0)
