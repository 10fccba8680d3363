"""Training throughput: pascanu_jax against PyTorch and naive JAX, and against the hardware.

    python benchmarks/throughput.py --impl all --json benchmarks/results/<device>.json
    python benchmarks/throughput.py --quick                      # a few seconds, for tests

Workload (the paper's temporal order, docs/protocol.md): B = 20 sequences, H = 50 tanh units
(basic_tanh), threshold 1, T in {50, 200}, methods MSGD-C and MSGD-CR, R in {1, 15, 45}.

Implementations, measured on the same workload:
  pascanu_jax  the engine: R runs vmapped in one compiled program, many updates per call,
               data drawn on the device, runs sharded over every local device (on a CPU,
               one XLA device per core: --cpu-devices).
  jax_naive    one jitted update (`pj.sgd_step`: `pj.loss_and_grads`, clipping, SGD) per
               Python call, one run at a time: what the README's usage example gives when
               looped in Python.
  torch        PyTorch as a PyTorch user writes it (benchmarks/torch_peer.py): nn.RNN and
               autograd (MSGD-C), an explicit step loop with retain_grad (MSGD-CR), one
               run at a time; CPU build here, CUDA where present.
  torch_batched  the strongest PyTorch peer we could write (torch_peer.BatchedPeer): the R
               runs' weights stacked on a leading axis, one bmm a step each way, BPTT and
               Omega's value and immediate gradient written out by hand (no autograd), the
               weight gradients as one GEMM over all steps, per-run clipping and SGD as
               two ops on one flat parameter buffer, preallocated buffers, inference mode.
               Its throughput grows with R, so it is measured for every R.
  Both PyTorch peers run in child processes of their own, first, so that neither
  library's threads slow the other. --torch-threads sets their intra-op threads (default
  PyTorch's, one per core): with other work on the cores, the per-op thread barriers of
  two threads slowed the peers 5x (torch) and over 100x (torch_batched) against one
  thread (T = 50, 2 cores under a load of 2).

Reported per row: run-updates per second (updates x runs / second), the speed-up over
each peer, the compile time, and the achieved FLOP/s against the measured matmul peak.
FLOP model per run-update (useful work, the same for every implementation; n_in = 6):
  forward  2 T B H (H + n_in);  backward  2 T B H H (error through time) + 2 T B H (H + n_in)
  (weight gradients);  MSGD-CR adds 2 T B H H for Omega's gradient (its value reuses the
  backward pass). So MSGD-C = 6 T B H^2 + 4 T B H n_in, MSGD-CR = 8 T B H^2 + 4 T B H n_in.
The peak is a 2048^3 float32 matmul timed in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import pascanu_jax as pj
from pascanu_jax.experiments import engine
from pascanu_jax.experiments.runner import initial_state
from pascanu_jax.experiments.sharding import one_device_per_core, padded_runs, run_mesh, to_devices
from pascanu_jax.outputs.files import write_json
from pascanu_jax.outputs.provenance import provenance

B, H, N_IN = 20, 50, 6
TASK = pj.get_task("temporal_order")


def model_flops(method: str, T: int) -> float:
    """Useful FLOPs of one run-update (module docstring)."""
    return (8 if method == "MSGD-CR" else 6) * T * B * H * H + 4 * T * B * H * N_IN


def matmul_peak() -> float:
    """FLOP/s of a 2048^3 float32 matmul on the default device (best of 5)."""
    a = jnp.ones((2048, 2048), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(f(a))
    best = min(_timed(lambda: jax.block_until_ready(f(a))) for _ in range(5))
    return 2 * 2048**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_engine(method: str, T: int, runs: int, updates: int, repeats: int) -> dict:
    """The engine: all runs in one compiled call of `updates` updates. A run would stop
    only with no error on its 20 screened sequences (success 1e-9), which these few
    updates do not reach; the assert below checks that every run trained throughout."""
    cfg = engine.EngineConfig(
        TASK,
        (T, T + 1),
        n_hidden=H,
        batch=B,
        max_updates=10**9,
        eval_every=updates,
        periods_per_call=1,
        screen_size=B,
        success=1e-9,
    )
    specs = [engine.RunSpec("basic_tanh", method, s) for s in range(runs)]
    mesh = run_mesh()
    const, state, _ = initial_state(cfg, specs, padded_runs(runs, mesh))
    const, state = to_devices(const, mesh), to_devices(state, mesh)
    jax.clear_caches()  # time a real compile, not an in-memory cache hit
    start = time.perf_counter()
    call = engine.train_call.lower(cfg, const, state, mesh=mesh).compile()
    compile_s = time.perf_counter() - start
    state = jax.block_until_ready(call(const, state))[0]  # warm-up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        state = jax.block_until_ready(call(const, state))[0]
        best = min(best, time.perf_counter() - start)
    assert np.asarray(state.active)[:runs].all(), "a run stopped training while timed"
    return {"run_updates_per_s": runs * updates / best, "compile_s": compile_s}


def bench_jax_naive(method: str, T: int, runs: int, updates: int) -> dict:
    """One jitted update per Python call, runs one after another."""
    m = pj.get_method(method)
    gradients = pj.rnn_gradients(TASK, activation="tanh", alpha=m.alpha)

    @jax.jit
    def update(params, opt_state, key):
        batch = TASK.sample(key, B, T)
        params, opt_state, _ = pj.sgd_step(
            gradients, params, opt_state, batch, threshold=m.threshold
        )
        return params, opt_state

    params = pj.init_rnn(jax.random.PRNGKey(0), "basic_tanh", N_IN, H, TASK.n_out)
    opt_state = pj.init_opt_state(params)
    start = time.perf_counter()
    jax.block_until_ready(update(params, opt_state, jax.random.PRNGKey(0)))
    compile_s = time.perf_counter() - start
    total = 0.0
    for seed in range(runs):
        params = pj.init_rnn(jax.random.PRNGKey(seed), "basic_tanh", N_IN, H, TASK.n_out)
        opt_state = pj.init_opt_state(params)
        key = jax.random.PRNGKey(seed)
        start = time.perf_counter()
        for i in range(updates):
            params, opt_state = update(params, opt_state, jax.random.fold_in(key, i))
        jax.block_until_ready(params)
        total += time.perf_counter() - start
    return {"run_updates_per_s": runs * updates / total, "compile_s": compile_s}


def bench_torch(
    method: str,
    T: int,
    runs: int,
    updates: int,
    batched: bool = False,
    threads: int | None = None,
) -> dict:
    """PyTorch (`torch_peer.py`; `batched`: its BatchedPeer), in a child process of its
    own (see `main`)."""
    peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_peer.py")
    args = [sys.executable, peer, method, str(T), str(runs), str(updates)]
    args += ["--batched"] * batched + ([] if threads is None else ["--threads", str(threads)])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return {**json.loads(out.strip().splitlines()[-1]), "compile_s": 0.0}


def _updates(T: int, quick: bool) -> tuple[int, int]:
    """Updates per timed engine call (and batched PyTorch run) and per timed one-run peer
    run: about a second of work each."""
    return (5, 3) if quick else (max(20, 20_000 // T), max(10, 4_000 // T))


def device_name() -> str:
    d = jax.devices()[0]
    kind = d.device_kind if d.platform != "cpu" else _cpu_model()
    return f"{kind} x{jax.device_count()}" if d.platform != "cpu" else kind


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        model = "cpu"
    return f"{model} ({os.cpu_count()} cores)"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--impl",
        choices=["pascanu_jax", "torch", "torch_batched", "jax_naive", "all"],
        default="all",
    )
    p.add_argument("--method", choices=["MSGD-C", "MSGD-CR", "both"], default="both")
    p.add_argument("--length", type=int, nargs="+", default=[50, 200])
    p.add_argument("--runs", type=int, nargs="+", default=[1, 15, 45])
    p.add_argument("--json", help="write the results here (JSON)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for tests")
    p.add_argument("--cpu-devices", type=int, help="XLA devices on a CPU (default: cores)")
    p.add_argument("--torch-threads", type=int, help="PyTorch peers' threads (default: cores)")
    args = p.parse_args(argv)
    for T in args.length:
        if TASK.min_length > T:
            p.error(f"--length must be >= {TASK.min_length}, got {T}")
    if min(args.runs) < 1:
        p.error(f"--runs must be >= 1, got {args.runs}")
    one_device_per_core(args.cpu_devices)  # before JAX's first computation
    methods = ["MSGD-C", "MSGD-CR"] if args.method == "both" else [args.method]
    all_impls = ["pascanu_jax", "jax_naive", "torch", "torch_batched"]
    impls = all_impls if args.impl == "all" else [args.impl]
    if args.quick:
        lengths, runs_list = [min(args.length)], [min(args.runs)]
    else:
        lengths, runs_list = args.length, args.runs
    sizes = [(T, method, *_updates(T, args.quick)) for T in lengths for method in methods]
    # The peers first, before the engine. PyTorch runs in a child process: XLA's CPU thread
    # pools slowed the PyTorch loop by up to 2.7x when it ran after them in one process, and
    # PyTorch's threads slowed the engine by ~20% (T = 200, 15 runs) when it ran before.
    # The one-run peers are measured once per (T, method), the batched peer for every R.
    threads = args.torch_threads
    peers = {}
    for impl in [i for i in ("torch", "torch_batched", "jax_naive") if i in impls]:
        for T, method, engine_n, peer_n in sizes:
            if impl == "torch_batched":
                for R in runs_list:
                    peers[impl, T, method, R] = bench_torch(
                        method, T, R, engine_n, batched=True, threads=threads
                    )
            elif impl == "torch":
                peers[impl, T, method] = bench_torch(
                    method, T, 1 if args.quick else 2, peer_n, threads=threads
                )
            else:
                peers[impl, T, method] = bench_jax_naive(method, T, 1 if args.quick else 2, peer_n)
    peak = matmul_peak()
    print(
        f"device: {device_name()} ({jax.device_count()} XLA devices); "
        f"matmul peak {peak / 1e9:.0f} GFLOP/s"
    )
    rows = []
    for T, method, engine_n, _ in sizes:
        for R in runs_list:
            for impl in impls:
                if impl == "pascanu_jax":
                    r = bench_engine(method, T, R, engine_n, 1 if args.quick else 3)
                elif impl == "torch_batched":
                    r = dict(peers[(impl, T, method, R)])
                else:  # one run at a time: the throughput does not grow with R
                    r = dict(peers[(impl, T, method)])
                rate = r["run_updates_per_s"]
                flops = rate * model_flops(method, T)
                rows.append(
                    {
                        "impl": impl,
                        "method": method,
                        "length": T,
                        "runs": R,
                        **r,
                        "gflops": flops / 1e9,
                        "fraction_of_peak": flops / peak,
                    }
                )
                print(
                    f"{impl:13s} {method:8s} T={T:<4d} R={R:<3d} {rate:9.1f} run-updates/s  "
                    f"compile {r['compile_s']:5.1f} s  {flops / 1e9:6.1f} GFLOP/s "
                    f"({100 * flops / peak:4.1f}% of peak)",
                    flush=True,
                )
    for row in rows:  # speed-ups over each peer on the same (method, T, R)
        for peer in ("torch", "torch_batched", "jax_naive"):
            same = [
                r
                for r in rows
                if r["impl"] == peer
                and (r["method"], r["length"], r["runs"])
                == (row["method"], row["length"], row["runs"])
            ]
            if same and row["impl"] != peer:
                row[f"speedup_vs_{peer}"] = row["run_updates_per_s"] / same[0]["run_updates_per_s"]
    out = {
        "provenance": provenance(),
        "device": device_name(),
        "xla_devices": jax.device_count(),
        "jax": jax.__version__,
        "matmul_peak_gflops": peak / 1e9,
        "flop_model": "MSGD-C 6TBH^2 + 4TBH*n_in, MSGD-CR 8TBH^2 + 4TBH*n_in per run-update",
        "workload": {"task": "temporal_order", "batch": B, "hidden": H, "init": "basic_tanh"},
        "results": rows,
    }
    print("\n" + table(out))
    if args.json:
        write_json(args.json, out)
    return out


def table(out: dict) -> str:
    """A Markdown table of the pascanu_jax rows with their speed-ups."""
    lines = [
        "| method | T | R | pascanu_jax run-updates/s | vs torch | vs torch (batched) | "
        "vs naive JAX | compile s | % of peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def speedup(r, peer):
        v = r.get(f"speedup_vs_{peer}")
        return "-" if v is None else f"{v:.1f}x"

    for r in out["results"]:
        if r["impl"] != "pascanu_jax":
            continue
        vs = " | ".join(speedup(r, peer) for peer in ("torch", "torch_batched", "jax_naive"))
        lines.append(
            f"| {r['method']} | {r['length']} | {r['runs']} | {r['run_updates_per_s']:.0f} | "
            f"{vs} | {r['compile_s']:.1f} | {100 * r['fraction_of_peak']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
