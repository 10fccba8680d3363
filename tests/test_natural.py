"""The Table 1 training program: it learns, methods are independent of their companions, and
bad requests fail early with the valid choices."""

import math
import pickle

import numpy as np
import pytest

from pascanu_jax import natural


def _arpeggio_pickle(path):
    """Pieces cycling through C-E-G-C' chords one note at a time (predictable)."""
    cycle = [(60,), (64,), (67,), (72,), (60, 64, 67)]
    pieces = [[cycle[(s + t) % 5] for t in range(12 + 3 * s)] for s in range(10)]
    data = {"train": pieces[:6], "valid": pieces[6:8], "test": pieces[8:]}
    path.write_bytes(pickle.dumps(data))
    return path


CONFIG = natural.TrainConfig(
    n_hidden=16, learning_rate=0.3, threshold=2.0, max_rounds=40, patience=40, batch_size=3
)


def test_training_learns_a_predictable_piece(tmp_path):
    problem = natural.load_problem("jsb-pickle", _arpeggio_pickle(tmp_path / "a.pickle"))
    assert problem.paper_key is None and problem.head.n_out == 88
    results = natural.train_methods(problem, CONFIG)
    assert list(results) == ["MSGD", "MSGD-C", "MSGD-CR"]
    for r in results.values():
        first = r["curve"]["valid"][0]
        assert first > 10  # 88 near-uniform notes start near 88 ln 2 = 61 nats
        assert r["test"] < 3.0 and r["valid"] < 3.0, r  # the pattern was learnt
        assert r["valid"] == pytest.approx(min(r["curve"]["valid"]), rel=1e-5)
    assert results["MSGD"]["threshold"] == math.inf and results["MSGD"]["clipped_fraction"] == 0
    assert results["MSGD-CR"]["alpha0"] == 4.0 and results["MSGD-C"]["alpha0"] == 0.0
    assert results["MSGD-C"]["clipped_fraction"] > 0  # the threshold was in play
    omega = results["MSGD-CR"]["curve"]["omega"]
    assert all(np.isfinite(omega))


def test_a_method_alone_gets_the_same_result(tmp_path):
    problem = natural.load_problem("jsb-pickle", _arpeggio_pickle(tmp_path / "a.pickle"))
    config = natural.TrainConfig(
        n_hidden=16, max_rounds=8, patience=2, batch_size=3, learning_rate=1.0, threshold=2.0,
        seed=1,
    )  # fmt: skip
    together = natural.train_methods(problem, config)
    rounds = {m: r["rounds"] for m, r in together.items()}
    assert rounds == {"MSGD": 4, "MSGD-C": 6, "MSGD-CR": 6}  # MSGD stops first
    for method in natural.METHOD_NAMES:
        # A method that stopped early must not train on beside the others: its clipping
        # statistics and learning curve, too, are those of the method run alone.
        alone = natural.train_methods(problem, config, [method])[method]
        for key in ("train", "valid", "test", "best_round", "rounds", "clipped_fraction",
                    "nonfinite_updates", "mean_gradient_norm"):  # fmt: skip
            assert alone[key] == pytest.approx(together[method][key], rel=1e-4), key
        assert alone["curve"]["valid"] == pytest.approx(together[method]["curve"]["valid"], 1e-4)


def test_default_configs_and_errors(tmp_path):
    music = natural.default_config("music")
    assert (music.n_hidden, music.learning_rate, music.threshold) == (50, 0.3, 2.0)
    quick = natural.default_config("text", quick=True, seed=3)
    assert quick.updates_per_round == 200 and quick.seed == 3 and quick.learning_rate == 1.0
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; valid: jsb, jsb-pickle"):
        natural.load_problem("mnist")
    with pytest.raises(ValueError, match="needs a data path"):
        natural.load_problem("nottingham")
    with pytest.raises(ValueError, match="character data only"):
        natural.load_problem("piano", tmp_path / "x.pickle", steps_ahead=5)
    with pytest.raises(FileNotFoundError, match=r"Nottingham\.pickle: no such file"):
        natural.load_problem("nottingham", tmp_path / "Nottingham.pickle")
    with pytest.raises(ValueError, match="unknown method 'SGD'; valid: MSGD, MSGD-C, MSGD-CR"):
        natural.method_arrays(["SGD"], music)
    with pytest.raises(ValueError, match="unknown initialisation"):
        natural.TrainConfig(init="orthogonal")
    with pytest.raises(ValueError, match="has sigmoid units"):
        natural.TrainConfig(init="sigmoid")
    with pytest.raises(ValueError, match="needs n_hidden >= 15"):
        natural.TrainConfig(n_hidden=8)
