"""The throughput benchmark runs at a tiny size and writes valid JSON (numbers unchecked:
speed belongs to the benchmark, not to timed tests)."""

import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load():
    spec = importlib.util.spec_from_file_location(
        "throughput", ROOT / "benchmarks" / "throughput.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "impl", ["pascanu_jax", "jax_naive", "torch", "torch_batched", "torch_rnn"]
)
def test_quick_benchmark_writes_valid_json(impl, tmp_path):
    if impl.startswith("torch"):
        pytest.importorskip("torch")  # the `bench` extra
    path = tmp_path / "bench.json"
    method = "MSGD-C" if impl == "torch_rnn" else "MSGD-CR"  # nn.RNN: no Omega
    load().main(["--quick", "--impl", impl, "--method", method, "--json", str(path)])
    out = json.loads(path.read_text())
    assert out["device"] and out["matmul_peak_gflops"] > 0
    assert out["provenance"]["commit"] is not None and out["settings"]["repeats"] == 1
    (row,) = out["results"]
    assert (row["impl"], row["method"], row["length"], row["runs"]) == (impl, method, 50, 1)
    assert len(row["samples"]) == 1
    assert row["run_updates_per_s"] > 0 and row["compile_s"] >= 0
    assert 0 < row["fraction_of_peak"] < 1


def test_flop_model_and_bad_flags(capsys):
    bench = load()
    # MSGD-CR adds 2 T B H^2 to MSGD-C's 6 T B H^2 + 4 T B H n_in.
    assert bench.model_flops("MSGD-C", 200) == 6 * 200 * 20 * 50**2 + 4 * 200 * 20 * 50 * 6
    assert (
        bench.model_flops("MSGD-CR", 200) - bench.model_flops("MSGD-C", 200) == 2 * 200 * 20 * 2500
    )
    with pytest.raises(SystemExit):
        bench.main(["--length", "5"])
    assert "--length must be >= 10" in capsys.readouterr().err


def test_bad_flags_are_one_line_errors(capsys):
    bench = load()
    for argv, message in [
        (["--repeats", "0"], "--repeats must be >= 1"),
        (["--torch-threads", "0"], "--torch-threads must be >= 1"),
        (["--impl", "tensorflow"], "invalid choice"),
    ]:
        with pytest.raises(SystemExit):
            bench.main(argv)
        assert message in capsys.readouterr().err
    if not bench.engine_backends():  # until EngineConfig has `backend`
        with pytest.raises(SystemExit):
            bench.main(["--backend", "pallas"])
        assert "has no backend option" in capsys.readouterr().err


def test_speedups_pair_the_rounds_and_name_the_strongest_peer():
    def row(impl, samples, **extra):
        return {
            "impl": impl,
            "method": "MSGD-C",
            "length": 200,
            "runs": 15,
            "samples": samples,
            "run_updates_per_s": sorted(samples)[len(samples) // 2],
            **extra,
        }

    rows = [
        row("pascanu_jax", [100.0, 50.0, 90.0]),
        row("torch_batched", [50.0, 25.0, 60.0], torch_threads=1),
        row("torch_batched", [10.0, 10.0, 10.0], torch_threads=2),
        row("torch_rnn", [20.0, 20.0, 20.0], torch_threads=1),
        {**row("pascanu_jax", [1.0]), "runs": 45},  # another size: not compared
    ]
    load().add_speedups(rows)
    engine = rows[0]
    # Paired by round: 100/50, 50/25, 90/60 -> median 2.0 (the ratio of medians is 90/50).
    assert engine["speedup_vs_torch_batched"] == pytest.approx(2.0)
    assert engine["speedup_vs_torch_rnn"] == pytest.approx(4.5)
    assert engine["strongest_peer"] == "torch_batched (1 thread)"
    assert engine["strongest_peer_run_updates_per_s"] == 50.0
    assert engine["speedup_vs_strongest_peer"] == pytest.approx(2.0)
    assert "strongest_peer" not in rows[4]


def test_table_has_a_column_per_peer():
    row = {"impl": "pascanu_jax", "method": "MSGD-CR", "length": 200, "runs": 15}
    row |= {"run_updates_per_s": 700.0, "compile_s": 2.0, "fraction_of_peak": 0.1}
    rows = [
        {
            **row,
            "speedup_vs_torch": 20.0,
            "speedup_vs_torch_batched": 2.5,
            "strongest_peer": "torch_batched (1 thread)",
            "strongest_peer_run_updates_per_s": 280.0,
            "speedup_vs_strongest_peer": 2.5,
        },
        {**row, "runs": 45},  # no peer measured: dashes
    ]
    header, rule, first, second = load().table({"results": rows}).splitlines()
    assert "| vs strongest | vs torch | vs torch (batched) | vs nn.RNN | vs naive JAX |" in header
    assert rule.count("|") == header.count("|") == first.count("|")
    assert "| torch_batched (1 thread): 280 | 2.50x | 20.00x | 2.50x | - | - |" in first
    assert "| - | - | - | - | - | - |" in second


def test_rounds_rotate_and_every_round_is_saved(monkeypatch, tmp_path):
    """--repeats: each round measures every cell once, in a rotated order; the JSON is
    rewritten after each round (what a time limit would otherwise lose). The peers are
    replaced by a fake whose rates depend on the round: no timing is checked."""
    bench = load()
    order, saved = [], []

    def fake_torch(method, T, runs, updates, impl, threads, device, procs):
        order.append(impl)
        rounds = {"torch_batched": [100.0, 200.0, 300.0], "torch_rnn": [25.0, 400.0, 150.0]}
        rate = rounds[impl][order.count(impl) - 1]
        return {"run_updates_per_s": rate, "torch_threads": threads, "compile_s": 0.0}

    monkeypatch.setattr(bench, "bench_torch", fake_torch)
    monkeypatch.setattr(bench, "matmul_peak", lambda: 1e12)
    monkeypatch.setattr(bench, "write_json", lambda path, out: saved.append(out))
    argv = ["--impl", "torch_batched", "torch_rnn", "--method", "MSGD-C", "--length", "20"]
    argv += ["--runs", "2", "--repeats", "3", "--torch-threads", "1", "--json", "x.json"]
    out = bench.main(argv)
    # Round k starts k cells further on: the order is rotated.
    b, r = "torch_batched", "torch_rnn"
    assert order == [b, r, r, b, b, r]
    assert [s["settings"]["rounds_done"] for s in saved] == [1, 2, 3]
    assert [len(r["samples"]) for r in saved[0]["results"]] == [1, 1]
    batched, rnn = out["results"]
    assert batched["samples"] == [100.0, 200.0, 300.0] and batched["run_updates_per_s"] == 200
    assert rnn["samples"] == [25.0, 400.0, 150.0] and rnn["run_updates_per_s"] == 150
    # Paired by round: 4, 0.5, 2 -> median 2 (the ratio of the medians would be 1.33).
    assert batched["speedup_vs_torch_rnn"] == pytest.approx(2.0)
    assert rnn["strongest_peer"] == "torch_batched (1 thread)"
