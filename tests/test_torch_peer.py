"""The batched PyTorch peer (benchmarks/torch_peer.py) computes what pascanu_jax computes:
the loss, Omega, the MSGD-CR gradient and the clipped SGD step, run by run. CI does not
install PyTorch (the `bench` extra), so these tests are skipped there."""

import importlib.util
import json
import pathlib

import jax
import numpy as np
import optax
import pytest

import pascanu_jax as pj

torch = pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[1]
TASK = pj.get_task("temporal_order")
R, T, B, H = 2, 12, 20, 50


def load():
    spec = importlib.util.spec_from_file_location(
        "torch_peer", ROOT / "benchmarks" / "torch_peer.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peer = load()


def runs():
    """R runs' parameters (pascanu_jax's basic_tanh, W_rec scaled up so that the
    gradient reaches back through the steps) and batches, and the same stacked."""
    params = []
    for seed in range(R):
        p = pj.init_rnn(jax.random.key(seed), "basic_tanh", TASK.n_in, H, TASK.n_out)
        params.append({**p, "W_rec": 3.0 * p["W_rec"], "b": p["b"] + 0.1 * (seed + 1)})
    batches = [TASK.sample(jax.random.key(100 + seed), B, T) for seed in range(R)]
    stacked = {k: np.stack([np.asarray(p[k]) for p in params]) for k in params[0]}
    inputs = np.stack([np.asarray(x) for x, _ in batches])
    labels = np.stack([np.asarray(y) for _, y in batches])
    return params, batches, stacked, inputs, labels


def close(actual, expected):
    expected = np.asarray(expected)
    atol = 1e-5 * np.abs(expected).max()
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("sigmoid_tanh", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 4.0])
def test_batched_gradients_match_pascanu_jax(alpha, sigmoid_tanh):
    params, batches, stacked, inputs, labels = runs()
    loss, omega, grads = peer.loss_omega_grads(stacked, inputs, labels, alpha, sigmoid_tanh)
    for r, (p, (x, y)) in enumerate(zip(params, batches, strict=True)):
        ref_loss, ref_omega, ref = pj.loss_and_grads(
            p, x, y, task=TASK, activation="tanh", alpha=alpha
        )
        close(loss[r], ref_loss)
        close(omega[r], ref_omega)
        assert set(grads) == set(ref)
        for k in ref:
            close(grads[k][r], ref[k])
    if alpha:  # Omega's gradient is a visible part of what was checked
        _, _, plain = pj.loss_and_grads(
            params[0], *batches[0], task=TASK, activation="tanh", alpha=0.0
        )
        assert not np.allclose(ref["W_rec"], plain["W_rec"], rtol=1e-2)


def test_msgd_c_skips_omega():
    _, _, stacked, inputs, labels = runs()
    loss, omega, grads = peer.loss_omega_grads(stacked, inputs, labels, None)
    loss0, omega0, grads0 = peer.loss_omega_grads(stacked, inputs, labels, 0.0)
    assert omega is None and omega0.shape == (R,)
    np.testing.assert_array_equal(loss, loss0)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads0[k], rtol=1e-6, atol=1e-9)


def test_update_clips_each_run_like_pascanu_jax():
    params, batches, stacked, inputs, labels = runs()
    ref_grads = [
        pj.loss_and_grads(p, x, y, task=TASK, activation="tanh", alpha=4.0)[2]
        for p, (x, y) in zip(params, batches, strict=True)
    ]
    norms = [float(optax.tree.norm(g)) for g in ref_grads]
    threshold = float(np.sqrt(norms[0] * norms[1]))  # one run is clipped, the other not
    assert min(norms) < threshold < max(norms)
    with torch.inference_mode():
        p = peer.BatchedPeer(R, T, H, B)
        for k, v in p.params().items():
            v.copy_(torch.as_tensor(stacked[k]))
        p.set_batch(torch.as_tensor(inputs), torch.as_tensor(labels))
        p.update(4.0, threshold=threshold, lr=0.01)
        new = {k: v.clone() for k, v in p.params().items()}
    tx = pj.sgd_with_clipping(threshold, learning_rate=0.01)
    for r, (params_r, g) in enumerate(zip(params, ref_grads, strict=True)):
        steps, _ = tx.update(g, tx.init(params_r), params_r)
        expected = optax.apply_updates(params_r, steps)
        for k in expected:
            close(new[k][r], expected[k])


def test_batched_data_follows_the_temporal_order_layout():
    gen = torch.Generator().manual_seed(0)
    length = 50
    symbols, labels = peer.temporal_order_runs(gen, 3, 40, length, "cpu")
    assert symbols.shape == (3, length, 40) and labels.shape == (3, 40)
    w = length // 10
    for r in range(3):
        for b in range(40):
            seq = symbols[r, :, b].numpy()
            marked = np.flatnonzero(seq < 2)
            assert len(marked) == 2
            assert w <= marked[0] < 2 * w and length // 2 <= marked[1] < length // 2 + w
            assert labels[r, b] == seq[marked[0]] + 2 * seq[marked[1]]
            assert ((seq >= 0) & (seq < 6)).all()


def test_batched_cli_prints_the_json_of_the_naive_peer(capsys):
    peer.main(["MSGD-CR", "20", "2", "2", "--batched", "--threads", "1"])
    batched = json.loads(capsys.readouterr().out)
    peer.main(["MSGD-C", "20", "1", "1", "--threads", "1"])
    naive = json.loads(capsys.readouterr().out)
    assert set(batched) == set(naive)
    assert batched["run_updates_per_s"] > 0 and batched["torch_threads"] == 1


def test_rnn_peer_gradient_and_update_match_pascanu_jax():
    """nn.RNN (MSGD-C): dE/dtheta of each run, and the clipped SGD step run by run."""
    params, batches, stacked, inputs, labels = runs()
    ref_grads = [
        pj.loss_and_grads(p, x, y, task=TASK, activation="tanh", alpha=0.0)
        for p, (x, y) in zip(params, batches, strict=True)
    ]
    p = peer.RNNPeer(R, H, B)
    p.set_params(stacked)
    p.set_batch(torch.as_tensor(inputs), torch.as_tensor(labels))
    for k, v in p.params().items():
        close(v, stacked[k])
    losses = p.gradients()
    grads = p.grads()
    for r, (ref_loss, _, ref) in enumerate(ref_grads):
        close(losses[r], ref_loss)
        assert set(grads) == set(ref)
        for k in ref:
            close(grads[k][r], ref[k])
    norms = [float(optax.tree.norm(g)) for _, _, g in ref_grads]
    threshold = float(np.sqrt(norms[0] * norms[1]))  # one run is clipped, the other not
    assert min(norms) < threshold < max(norms)
    p.update(threshold=threshold, lr=0.01)
    new = p.params()
    tx = pj.sgd_with_clipping(threshold, learning_rate=0.01)
    for r, (params_r, (_, _, g)) in enumerate(zip(params, ref_grads, strict=True)):
        steps, _ = tx.update(g, tx.init(params_r), params_r)
        expected = optax.apply_updates(params_r, steps)
        for k in expected:
            close(new[k][r], expected[k])


def test_rnn_peer_draws_batch_first_data():
    p = peer.RNNPeer(3, H, B)
    p.draw_batch(torch.Generator().manual_seed(0), 30)
    assert p.x.shape == (3, B, 30, 6) and p.y.shape == (3, B)
    assert bool((p.x.sum(-1) == 1).all())


def test_cli_rnn_and_bad_flags(capsys):
    peer.main(["MSGD-C", "20", "2", "2", "--rnn", "--threads", "1", "--device", "cpu"])
    out = json.loads(capsys.readouterr().out)
    assert out["run_updates_per_s"] > 0 and out["torch_device"] == "cpu"
    for argv, message in [
        (["MSGD-CR", "20", "2", "2", "--rnn"], "--rnn: nn.RNN has no Omega"),
        (["MSGD-C", "20", "0", "2"], "runs must be >= 1"),
        (["MSGD-C", "20", "1", "1", "--rnn", "--batched"], "not allowed with"),
    ]:
        with pytest.raises(SystemExit):
            peer.main(argv)
        assert message in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            peer.main(["MSGD-C", "20", "1", "1", "--device", "cuda"])
        assert "sees no CUDA device" in capsys.readouterr().err
