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


@pytest.mark.parametrize("impl", ["pascanu_jax", "jax_naive", "torch", "torch_batched"])
def test_quick_benchmark_writes_valid_json(impl, tmp_path):
    if impl.startswith("torch"):
        pytest.importorskip("torch")  # the `bench` extra
    path = tmp_path / "bench.json"
    load().main(["--quick", "--impl", impl, "--method", "MSGD-CR", "--json", str(path)])
    out = json.loads(path.read_text())
    assert out["device"] and out["matmul_peak_gflops"] > 0
    (row,) = out["results"]
    assert (row["impl"], row["method"], row["length"], row["runs"]) == (impl, "MSGD-CR", 50, 1)
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


def test_table_has_a_column_per_torch_peer():
    row = {"impl": "pascanu_jax", "method": "MSGD-CR", "length": 200, "runs": 15}
    row |= {"run_updates_per_s": 700.0, "compile_s": 2.0, "fraction_of_peak": 0.1}
    rows = [
        {**row, "speedup_vs_torch": 20.0, "speedup_vs_torch_batched": 2.5},
        {**row, "runs": 45},  # no peer measured: dashes
    ]
    header, rule, first, second = load().table({"results": rows}).splitlines()
    assert "| vs torch | vs torch (batched) | vs naive JAX |" in header
    assert rule.count("|") == header.count("|")
    assert "| 20.0x | 2.5x | - |" in first and "| - | - | - |" in second
