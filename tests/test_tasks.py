"""Task layouts decoded with numpy and checked against docs/protocol.md, sequence by sequence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pascanu_jax as pj

KEY = jax.random.key(0)


def _symbols(inputs):
    """(T, B) symbol index of one-hot inputs, -1 where the step is all zero (padding)."""
    x = np.asarray(inputs)
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert (x.sum(-1) <= 1).all()
    return np.where(x.sum(-1) == 1, x.argmax(-1), -1)


@pytest.mark.parametrize("name", ["temporal_order", "temporal_order_3bit"])
@pytest.mark.parametrize("L", [10, 37, 100, 203])
def test_temporal_order_layout(name, L):
    task = pj.get_task(name)
    inputs, targets = task.sample(KEY, 500, L)
    assert inputs.shape == (L, 500, 6) and targets.shape == (500,)
    sym = _symbols(inputs)
    assert (sym >= 0).all()
    w = L // 10
    starts = [L // 10, L // 2] if name == "temporal_order" else [L // 10, 3 * L // 10, 6 * L // 10]
    targets = np.asarray(targets)
    for b in range(500):
        pos = np.flatnonzero(sym[:, b] < 2)
        assert len(pos) == len(starts)
        label = 0
        for i, (p, s) in enumerate(zip(pos, starts, strict=True)):
            assert s <= p < s + w
            label += sym[p, b] * 2**i
        assert targets[b] == label
    assert set(np.unique(sym[sym >= 2])) == {2, 3, 4, 5}


@pytest.mark.parametrize(
    ("name", "n_classes"), [("temporal_order", 4), ("temporal_order_3bit", 8), ("permutation", 2)]
)
def test_class_balance(name, n_classes):
    _, targets = pj.get_task(name).sample(KEY, 40_000, 20)
    freq = np.bincount(np.asarray(targets), minlength=n_classes)[:n_classes] / 40_000
    np.testing.assert_allclose(freq, 1 / n_classes, atol=0.015)


def test_every_marker_position_in_the_window_occurs():
    L = 50
    sym = _symbols(pj.get_task("temporal_order").sample(KEY, 2000, L)[0])
    first = np.argmax(sym < 2, axis=0)
    np.testing.assert_array_equal(np.unique(first), np.arange(L // 10, 2 * (L // 10)))


@pytest.mark.parametrize("name", ["addition", "multiplication"])
@pytest.mark.parametrize("L", [10, 57, 200])
def test_addition_layout_padding_and_target(name, L):
    task = pj.get_task(name)
    lengths = set()
    for seed in range(12):
        inputs, targets = task.sample(jax.random.key(seed), 64, L)
        x = np.asarray(inputs)
        T = L + L // 10 - 1
        assert x.shape == (T, 64, 2)
        assert isinstance(targets, pj.Padded)
        last = np.asarray(targets.last)
        assert (last == last[0]).all()  # one real length per batch
        real = last[0] + 1
        assert L <= real < L + max(L // 10, 1)
        lengths.add(real)
        assert (x[real:] == 0).all()
        values = x[:real, :, 1]
        assert ((values >= 0) & (values < 1)).all()
        w = real // 10
        for b in range(64):
            pos = np.flatnonzero(x[:, b, 0])
            assert len(pos) == 2 and set(x[pos, b, 0]) == {1.0}
            assert 0 <= pos[0] < w and w <= pos[1] < w + (4 * real) // 10
            a, c = x[pos[0], b, 1], x[pos[1], b, 1]
            expected = (a + c) / 2 if name == "addition" else a * c
            np.testing.assert_allclose(targets.target[b, 0], expected, rtol=1e-6)
    if L >= 57:
        assert len(lengths) > 1  # the real length varies between batches


def test_addition_loss_reads_each_sequence_last_step():
    task = pj.get_task("addition")
    params = pj.init_rnn(KEY, "basic_tanh", 2, 8, 1)
    inputs, targets = task.sample(jax.random.key(3), 6, 40)
    real = int(targets.last[0]) + 1
    if real == inputs.shape[0]:  # make sure there is padding to ignore
        inputs, targets = task.sample(jax.random.key(4), 6, 40)
        real = int(targets.last[0]) + 1
    assert real < inputs.shape[0]
    states = pj.rnn_states(params, inputs, "tanh")
    h = np.asarray(states)[real - 1]
    y = h @ np.asarray(params["W_out"]) + np.asarray(params["b_out"])
    se = ((y - np.asarray(targets.target)) ** 2).sum(-1)
    np.testing.assert_allclose(task.loss(params, states, targets), se.mean(), rtol=1e-5)
    np.testing.assert_array_equal(task.errors(params, states, targets), se > 0.04)
    # Whatever sits in the padded steps cannot change the loss or its gradient.
    noisy = inputs.at[real:].set(7.0)
    loss_a, _, g_a = pj.loss_and_grads(
        params, inputs, targets, task=task, activation="tanh", alpha=4.0
    )
    loss_b, _, g_b = pj.loss_and_grads(
        params, noisy, targets, task=task, activation="tanh", alpha=4.0
    )
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
    for k in g_a:
        np.testing.assert_allclose(g_a[k], g_b[k], rtol=1e-5, atol=1e-7)


def test_permutation_layout():
    inputs, targets = pj.get_task("permutation").sample(KEY, 300, 25)
    sym = _symbols(inputs)
    assert inputs.shape == (25, 300, 100)
    np.testing.assert_array_equal(sym[0], np.asarray(targets))
    assert set(np.unique(sym[0])) == {0, 1}
    assert sym[1:].min() >= 2 and sym[1:].max() <= 99
    assert len(np.unique(sym[1:])) == 98


@pytest.mark.parametrize(
    ("name", "n_values", "n_pos"),
    [("memorization_5bit", 2, 5), ("memorization_20bit", 5, 10), ("memorization", 5, 10)],
)
def test_memorization_layout(name, n_values, n_pos):
    task = pj.get_task(name)
    assert (task.n_in, task.n_out) == (n_values + 2, n_values + 1)
    L = 30
    inputs, targets = task.sample(KEY, 200, L)
    T = L + 2 * n_pos
    assert inputs.shape == (T, 200, n_values + 2) and targets.shape == (T, 200)
    sym, y = _symbols(inputs), np.asarray(targets)
    blank, go = n_values, n_values + 1
    for b in range(200):
        pattern = sym[:n_pos, b]
        assert (pattern < n_values).all()
        assert (sym[n_pos : n_pos + L, b] == blank).all()
        assert sym[L + n_pos, b] == go
        assert (sym[L + n_pos + 1 :, b] == blank).all()
        assert (y[: L + n_pos, b] == blank).all()
        np.testing.assert_array_equal(y[L + n_pos :, b], pattern)


def test_sample_padded_with_traced_length():
    task = pj.get_task("temporal_order")

    @jax.jit
    def draw(key, length):
        return task.sample_padded(key, 300, length, 120)

    for L in (50, 97, 120):
        inputs, targets = draw(KEY, L)
        assert inputs.shape == (120, 300, 6)
        sym = _symbols(inputs)
        assert (sym[:L] >= 0).all() and (sym[L:] == -1).all()
        np.testing.assert_array_equal(targets.last, L - 1)
        for b in range(0, 300, 7):
            pos = np.flatnonzero((sym[:, b] >= 0) & (sym[:, b] < 2))
            assert L // 10 <= pos[0] < 2 * (L // 10) and L // 2 <= pos[1] < L // 2 + L // 10
            assert targets.target[b] == sym[pos[0], b] + 2 * sym[pos[1], b]


def test_memorization_padded_mask():
    task = pj.get_task("memorization_5bit")
    inputs, targets = task.sample_padded(KEY, 16, 20, 40)
    assert inputs.shape == (50, 16, 4)
    np.testing.assert_array_equal(targets.last, 20 + 2 * 5 - 1)
    assert (np.asarray(inputs)[30:] == 0).all()
    params = pj.init_rnn(KEY, "basic_tanh", 4, 8, 3)
    states = pj.rnn_states(params, inputs, "tanh")
    logits = np.asarray(states[:30]) @ np.asarray(params["W_out"])
    logz = np.log(np.exp(logits).sum(-1))
    y = np.asarray(targets.target[:30])
    ce = logz - np.take_along_axis(logits, y[..., None], -1)[..., 0]
    np.testing.assert_allclose(task.loss(params, states, targets), ce.mean(), rtol=1e-5)


def test_errors_count_misclassified_sequences():
    task = pj.get_task("memorization_5bit")
    params = pj.init_rnn(KEY, "basic_tanh", 4, 8, 3)
    inputs, targets = task.sample(KEY, 50, 12)
    states = pj.rnn_states(params, inputs, "tanh")
    pred = (np.asarray(states) @ np.asarray(params["W_out"])).argmax(-1)
    expected = (pred != np.asarray(targets)).any(axis=0)
    np.testing.assert_array_equal(task.errors(params, states, targets), expected)


def test_deterministic_by_key():
    for name in pj.TASK_NAMES:
        task = pj.get_task(name)
        a, b, c = (task.sample(k, 8, 20) for k in (KEY, KEY, jax.random.key(1)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(x, y)
        assert not np.array_equal(a[0], c[0])


def test_jittable_with_static_sizes():
    task = pj.get_task("addition")
    inputs, _targets = jax.jit(task.sample, static_argnums=(1, 2))(KEY, 4, 30)
    assert inputs.shape == (32, 4, 2) and inputs.dtype == jnp.float32


def test_bad_input():
    with pytest.raises(ValueError, match=r"unknown task 'adding'.*temporal_order"):
        pj.get_task("adding")
    with pytest.raises(ValueError, match="length >= 10"):
        pj.get_task("temporal_order").sample(KEY, 4, 9)
    with pytest.raises(ValueError, match="length >= 10"):
        pj.get_task("addition").sample(KEY, 4, 5)
    with pytest.raises(ValueError, match="batch must be a positive"):
        pj.get_task("permutation").sample(KEY, 0, 20)
    with pytest.raises(ValueError, match="takes options"):
        pj.get_task("temporal_order", n_pos=3)
    with pytest.raises(ValueError, match="n_values must be an integer >= 2"):
        pj.get_task("memorization", n_values=1)
    with pytest.raises(ValueError, match="exceeds max_length"):
        pj.get_task("temporal_order").sample_padded(KEY, 4, 60, 50)


def test_the_constant_baselines_are_the_closed_forms():
    # addition: c = 0.5, P(|(a + b)/2 - 0.5| > 0.2) = 0.36; multiplication: c = 0.2,
    # P(ab > 0.4) = 1 - 0.4 (1 - ln 0.4); a, b uniform on [0, 1].
    c, error = pj.constant_baseline(pj.get_task("addition"), jax.random.key(1), 50_000)
    assert abs(c - 0.5) < 0.03 and abs(error - 0.36) < 0.01
    c, error = pj.constant_baseline(pj.get_task("multiplication"), jax.random.key(1), 50_000)
    assert abs(c - 0.2) < 0.03 and abs(error - (1 - 0.4 * (1 - np.log(0.4)))) < 0.01
    with pytest.raises(ValueError, match="not a regression task"):
        pj.constant_baseline(pj.get_task("permutation"), jax.random.key(1))
