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
import dataclasses
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
from pascanu_jax.outputs.provenance import git_state, provenance

B, H, N_IN = 20, 50, 6
TASK = pj.get_task("temporal_order")


def model_flops(method: str, T: int) -> float:
    """Useful FLOPs of one run-update (module docstring)."""
    return (8 if method == "MSGD-CR" else 6) * T * B * H * H + 4 * T * B * H * N_IN


def matmul_peak() -> float:
    """FLOP/s of a 2048^3 float32 matmul on the default device (best of 5)."""
    # Random data: a constant matrix can run faster than real data does.
    a = jax.random.normal(jax.random.PRNGKey(0), (2048, 2048), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(f(a))
    best = min(_timed(lambda: jax.block_until_ready(f(a))) for _ in range(5))
    return 2 * 2048**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def engine_backends() -> bool:
    """Whether this pascanu_jax's EngineConfig takes `backend` (another kernel path)."""
    return "backend" in {f.name for f in dataclasses.fields(engine.EngineConfig)}


class EngineBench:
    """The engine: all runs in one compiled call of `updates` updates, compiled once (the
    compile is timed), then timed as often as asked. A run would stop only with no error on
    its 20 screened sequences (success 1e-9), which these few updates do not reach;
    `measure` checks that every run trained throughout."""

    def __init__(self, method: str, T: int, runs: int, updates: int, backend: str | None):
        extra = {} if backend is None else {"backend": backend}
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
            **extra,
        )
        specs = [engine.RunSpec("basic_tanh", method, s) for s in range(runs)]
        mesh = run_mesh()
        const, state, _ = initial_state(cfg, specs, padded_runs(runs, mesh))
        self.const, self.state = to_devices(const, mesh), to_devices(state, mesh)
        self.runs, self.updates = runs, updates
        jax.clear_caches()  # time a real compile, not an in-memory cache hit
        start = time.perf_counter()
        self.call = engine.train_call.lower(cfg, self.const, self.state, mesh=mesh).compile()
        self.compile_s = time.perf_counter() - start
        self.state = jax.block_until_ready(self.call(self.const, self.state))[0]  # warm-up

    def measure(self, repeats: int) -> float:
        """Run-updates per second, the best of `repeats` timed calls."""
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            self.state = jax.block_until_ready(self.call(self.const, self.state))[0]
            best = min(best, time.perf_counter() - start)
        assert np.asarray(self.state.active)[: self.runs].all(), "a run stopped while timed"
        return self.runs * self.updates / best


def bench_engine(
    method: str, T: int, runs: int, updates: int, repeats: int, backend: str | None = None
) -> dict:
    """One engine measurement: {"run_updates_per_s", "compile_s"}."""
    bench = EngineBench(method, T, runs, updates, backend)
    return {"run_updates_per_s": bench.measure(repeats), "compile_s": bench.compile_s}


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


PEER_FLAGS = {"torch": [], "torch_batched": ["--batched"], "torch_rnn": ["--rnn"]}


class PeerError(RuntimeError):
    """A PyTorch peer's child process failed; the message is its last line of stderr."""


def bench_torch(
    method: str,
    T: int,
    runs: int,
    updates: int,
    impl: str = "torch",
    threads: int | None = None,
    device: str = "auto",
    procs: int = 1,
) -> dict:
    """A PyTorch peer (`torch_peer.py`: `impl` torch, torch_batched or torch_rnn), in
    child processes of its own (see `main`): `procs` of them at once, the runs split
    between them (as the engine splits them between XLA devices); the rate is all their
    run-updates over the slowest one's time."""
    peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_peer.py")
    shares = [runs // procs + (k < runs % procs) for k in range(min(procs, runs))]
    children = []
    for share in shares:
        args = [sys.executable, peer, method, str(T), str(share), str(updates)]
        args += [*PEER_FLAGS[impl], "--device", device]
        args += [] if threads is None else ["--threads", str(threads)]
        children.append(
            subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outs = []
    for child in children:
        stdout, stderr = child.communicate()
        if child.returncode:
            lines = stderr.strip().splitlines() or [f"exit status {child.returncode}"]
            raise PeerError(f"{impl} peer failed: {lines[-1]}")
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    slowest = max(
        share * updates / o["run_updates_per_s"] for share, o in zip(shares, outs, strict=True)
    )
    return {
        **outs[0],
        "run_updates_per_s": sum(shares) * updates / slowest,
        "torch_processes": len(shares),
        "compile_s": 0.0,
    }


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


PEERS = ("torch", "torch_batched", "torch_rnn", "jax_naive")
IMPLS = ("pascanu_jax", *PEERS)
LABELS = {
    "torch": "torch",
    "torch_batched": "torch (batched)",
    "torch_rnn": "nn.RNN",
    "jax_naive": "naive JAX",
}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impl", nargs="+", choices=[*IMPLS, "all"], default=["all"])
    p.add_argument("--method", choices=["MSGD-C", "MSGD-CR", "both"], default="both")
    p.add_argument("--length", type=int, nargs="+", default=[50, 200])
    p.add_argument("--runs", type=int, nargs="+", default=[1, 15, 45])
    p.add_argument("--json", help="write the results here (JSON)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for tests")
    p.add_argument("--cpu-devices", type=int, help="XLA devices on a CPU (default: cores)")
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds: every measurement once a round, the order rotated each round; a row "
        "gives the median round, a speed-up the median of the rounds' ratios (default 1)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        help="PyTorch peers' intra-op threads; several values: each peer at each "
        "(default: PyTorch's, one per core)",
    )
    p.add_argument(
        "--torch-procs",
        type=int,
        nargs="+",
        default=[1],
        help="PyTorch peers' processes, the runs split between them (one-run peers: one "
        "run each); several values: each peer at each (default 1)",
    )
    p.add_argument(
        "--torch-device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="device of the PyTorch peers (default: cuda if PyTorch sees one, else cpu)",
    )
    p.add_argument(
        "--backend",
        help="the engine's EngineConfig(backend=...), e.g. pallas (where this pascanu_jax "
        "has that option)",
    )
    args = p.parse_args(argv)
    for T in args.length:
        if TASK.min_length > T:
            p.error(f"--length must be >= {TASK.min_length}, got {T}")
    if min(args.runs) < 1:
        p.error(f"--runs must be >= 1, got {args.runs}")
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.torch_threads is not None and min(args.torch_threads) < 1:
        p.error(f"--torch-threads must be >= 1, got {args.torch_threads}")
    if min(args.torch_procs) < 1:
        p.error(f"--torch-procs must be >= 1, got {args.torch_procs}")
    if args.backend is not None and not engine_backends():
        p.error(
            f"--backend {args.backend}: this pascanu_jax's EngineConfig has no backend "
            "option; run without --backend"
        )
    wall = time.perf_counter()
    git_state()  # the checkout's state at the start (cached), not at the end
    one_device_per_core(args.cpu_devices)  # before JAX's first computation
    methods = ["MSGD-C", "MSGD-CR"] if args.method == "both" else [args.method]
    impls = list(IMPLS) if "all" in args.impl else list(dict.fromkeys(args.impl))
    if args.quick:
        lengths, runs_list, rounds = [min(args.length)], [min(args.runs)], 1
    else:
        lengths, runs_list, rounds = args.length, args.runs, args.repeats
    # PyTorch settings (threads, processes) per peer measurement.
    torch_settings = [(t, n) for t in args.torch_threads or [None] for n in args.torch_procs]

    # The measurements ("cells"): (impl, method, T, R, threads). One-run-at-a-time peers
    # (torch, jax_naive) have R None: measured once, their rate holds for every R. nn.RNN
    # has no Omega: MSGD-C only. PyTorch runs in child processes: XLA's CPU thread pools
    # slowed the PyTorch loop by up to 2.7x when it ran after them in one process, and
    # PyTorch's threads slowed the engine by ~20% (T = 200, 15 runs) when it ran before.
    cells = []
    for T in lengths:
        for method in methods:
            for impl in impls:
                if impl == "torch_rnn" and method != "MSGD-C":
                    continue
                one_run = impl in ("torch", "jax_naive")
                for R in [None] if one_run else runs_list:
                    for setting in torch_settings if impl.startswith("torch") else [None]:
                        cells.append((impl, method, T, R, setting))
    peak = matmul_peak()
    print(
        f"device: {device_name()} ({jax.device_count()} XLA devices); "
        f"matmul peak {peak / 1e9:.0f} GFLOP/s",
        flush=True,
    )
    engines: dict = {}
    samples: dict = {cell: [] for cell in cells}
    extra: dict = {cell: {} for cell in cells}

    def summarise(rounds_done: int) -> dict:
        """The results of the rounds so far (JSON-ready)."""
        rows = []
        for T in lengths:
            for method in methods:
                for R in runs_list:
                    for cell in cells:
                        impl, m, t, r_cell, setting = cell
                        if (m, t) != (method, T) or r_cell not in (None, R):
                            continue
                        rate = float(np.median(samples[cell]))
                        flops = rate * model_flops(method, T)
                        rows.append(
                            {
                                "impl": impl,
                                "method": method,
                                "length": T,
                                "runs": R,
                                "run_updates_per_s": rate,
                                "samples": list(samples[cell]),
                                "compile_s": 0.0,
                                **extra[cell],
                                **({} if setting is None else {"torch_threads_asked": setting[0]}),
                                "gflops": flops / 1e9,
                                "fraction_of_peak": flops / peak,
                            }
                        )
        add_speedups(rows)
        settings = {
            "command": "python benchmarks/throughput.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "repeats": rounds,
            "rounds_done": rounds_done,
            "torch_threads": args.torch_threads,
            "torch_procs": args.torch_procs,
            "torch_device": args.torch_device,
            "backend": args.backend,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        }
        out = {
            "provenance": provenance(wall_s=time.perf_counter() - wall),
            "settings": settings,
            "device": device_name(),
            "xla_devices": jax.device_count(),
            "jax": jax.__version__,
            "matmul_peak_gflops": peak / 1e9,
            "flop_model": "MSGD-C 6TBH^2 + 4TBH*n_in, MSGD-CR 8TBH^2 + 4TBH*n_in per run-update",
            "workload": {"task": "temporal_order", "batch": B, "hidden": H, "init": "basic_tanh"},
            "results": rows,
        }
        return out

    for k in range(rounds):
        shift = k % len(cells)
        for cell in cells[shift:] + cells[:shift]:
            impl, method, T, R, setting = cell
            threads, procs = setting or (None, 1)
            engine_n, peer_n = _updates(T, args.quick)
            if impl == "pascanu_jax":
                if cell not in engines:
                    engines[cell] = EngineBench(method, T, R, engine_n, args.backend)
                    extra[cell]["compile_s"] = engines[cell].compile_s
                rate = engines[cell].measure(1 if args.quick else 3)
            elif impl == "jax_naive":
                r = bench_jax_naive(method, T, 1 if args.quick else 2, peer_n)
                rate = r.pop("run_updates_per_s")
                extra[cell].setdefault("compile_s", r["compile_s"])
            else:
                runs, updates = {
                    "torch": (1 if args.quick else max(2, procs), peer_n),
                    "torch_batched": (R, engine_n),
                    "torch_rnn": (R, peer_n),
                }[impl]
                try:
                    r = bench_torch(
                        method, T, runs, updates, impl, threads, args.torch_device, procs
                    )
                except PeerError as e:
                    p.exit(2, f"{p.prog}: error: {e}\n")
                rate = r.pop("run_updates_per_s")
                extra[cell] |= r
            samples[cell].append(rate)
            print(
                f"round {k + 1}/{rounds} {impl:13s} {method:8s} T={T:<4d} "
                f"R={R or '-':<3} threads={threads or '-':<2} procs={procs} "
                f"{rate:9.1f} run-updates/s",
                flush=True,
            )
        if args.json and k + 1 < rounds:  # what a time limit would otherwise lose
            write_json(args.json, summarise(k + 1))

    out = summarise(rounds)
    rows = out["results"]
    for r in rows:
        print(
            f"{r['impl']:13s} {r['method']:8s} T={r['length']:<4d} R={r['runs']:<3d} "
            f"{r['run_updates_per_s']:9.1f} run-updates/s (median of {len(r['samples'])})  "
            f"compile {r['compile_s']:5.1f} s  {r['gflops']:6.1f} GFLOP/s "
            f"({100 * r['fraction_of_peak']:4.1f}% of peak)"
        )
    print("\n" + table(out))
    if args.json:
        write_json(args.json, out)
    return out


def _ratio(a: dict, b: dict) -> float:
    """a's rate over b's: the median of the rounds' ratios where both have one sample per
    round, else the ratio of the medians."""
    sa, sb = a.get("samples", []), b.get("samples", [])
    if sa and len(sa) == len(sb):
        return float(np.median(np.asarray(sa) / np.asarray(sb)))
    return a["run_updates_per_s"] / b["run_updates_per_s"]


def add_speedups(rows: list[dict]) -> None:
    """Per row, over every other implementation on the same (method, T, R) (its fastest
    thread setting): `speedup_vs_<impl>`; over the fastest of them all: `strongest_peer`,
    `strongest_peer_run_updates_per_s` and `speedup_vs_strongest_peer`."""
    for row in rows:
        key = (row["method"], row["length"], row["runs"])
        best: dict = {}
        for r in rows:
            if (r["method"], r["length"], r["runs"]) != key or r["impl"] == row["impl"]:
                continue
            if (
                r["impl"] not in best
                or r["run_updates_per_s"] > best[r["impl"]]["run_updates_per_s"]
            ):
                best[r["impl"]] = r
        for impl, r in best.items():
            row[f"speedup_vs_{impl}"] = _ratio(row, r)
        if best:
            top = max(best.values(), key=lambda r: r["run_updates_per_s"])
            row["strongest_peer"] = peer_label(top)
            row["strongest_peer_run_updates_per_s"] = top["run_updates_per_s"]
            row["speedup_vs_strongest_peer"] = _ratio(row, top)


def peer_label(row: dict) -> str:
    """impl, with PyTorch's threads and processes: 'torch_batched (1 thread, 2 procs)'."""
    threads, procs = row.get("torch_threads"), row.get("torch_processes", 1)
    if threads is None:
        return row["impl"]
    setting = f"{threads} thread" + "s" * (threads != 1)
    return f"{row['impl']} ({setting}" + (f", {procs} procs)" if procs > 1 else ")")


def table(out: dict) -> str:
    """A Markdown table of the pascanu_jax rows: the strongest peer and the speed-ups."""
    lines = [
        "| method | T | R | pascanu_jax run-updates/s | strongest peer: run-updates/s | "
        "vs strongest | " + " | ".join(f"vs {LABELS[p]}" for p in PEERS) + " | compile s | "
        "% of peak |",
        "|---|---|---|---|---|---|" + "---|" * len(PEERS) + "---|---|",
    ]

    def speedup(r, peer):
        v = r.get(f"speedup_vs_{peer}")
        return "-" if v is None else f"{v:.2f}x"

    for r in out["results"]:
        if r["impl"] != "pascanu_jax":
            continue
        top = r.get("strongest_peer")
        top = "-" if top is None else f"{top}: {r['strongest_peer_run_updates_per_s']:.0f}"
        vs = " | ".join(speedup(r, peer) for peer in PEERS)
        lines.append(
            f"| {r['method']} | {r['length']} | {r['runs']} | {r['run_updates_per_s']:.0f} | "
            f"{top} | {speedup(r, 'strongest_peer')} | {vs} | {r['compile_s']:.1f} | "
            f"{100 * r['fraction_of_peak']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
