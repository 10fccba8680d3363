"""Mixed-length training: what one update costs, padded to the longest length or bucketed.

    python benchmarks/mixed_lengths.py --json benchmarks/results/mixed_lengths-cpu.json

The §4.1.1 workload: temporal order, lengths drawn per update from [50, 200), basic_tanh,
MSGD-CR, B = 20, H = 50, R runs in one program. A (`length_buckets=1`) pads every batch to
199 steps; B (the default, 6 buckets) pads it to the longest length of its bucket, with
the length schedule shared by all runs. Both are compiled first, then timed alternately
(A, B, A, B, ...) in this one process, so load on the machine falls on both alike. The
ratio B / A of seconds per update is the figure of merit (the issue's target: <= 0.75);
the expected value from the buckets alone is mean(bucket steps) / 199.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import jax
import numpy as np

import pascanu_jax as pj
from pascanu_jax.experiments import engine
from pascanu_jax.experiments.runner import initial_state
from pascanu_jax.experiments.sharding import one_device_per_core, padded_runs, run_mesh, to_devices
from pascanu_jax.outputs.files import write_json
from pascanu_jax.outputs.provenance import provenance


def compiled_call(cfg: engine.EngineConfig, runs: int):
    specs = [engine.RunSpec("basic_tanh", "MSGD-CR", s) for s in range(runs)]
    mesh = run_mesh()
    const, state, _ = initial_state(cfg, specs, padded_runs(runs, mesh))
    const, state = to_devices(const, mesh), to_devices(state, mesh)
    call = engine.train_call.lower(cfg, const, state, mesh=mesh).compile()
    return call, const, state


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs in the program (default 5)")
    p.add_argument("--updates", type=int, default=200, help="updates per timed call")
    p.add_argument("--repeats", type=int, default=5, help="timed calls of each, alternating")
    p.add_argument("--buckets", type=int, default=6, help="buckets of B (default 6)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    for flag in ("runs", "updates", "repeats", "buckets"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    one_device_per_core()
    # success 1e-9: no run passes a 20-sequence screen, so every run trains throughout.
    base = engine.EngineConfig(
        pj.get_task("temporal_order"),
        (50, 200),
        max_updates=10**9,
        eval_every=args.updates,
        periods_per_call=1,
        screen_size=20,
        success=1e-9,
    )
    configs = {
        "padded": dataclasses.replace(base, length_buckets=1),
        "bucketed": dataclasses.replace(base, length_buckets=args.buckets),
    }
    calls = {name: compiled_call(cfg, args.runs) for name, cfg in configs.items()}
    seconds = {name: [] for name in calls}
    start_all = time.perf_counter()
    for name, (call, const, state) in calls.items():  # warm-up
        calls[name] = (call, const, jax.block_until_ready(call(const, state))[0])
    for _ in range(args.repeats):
        for name, (call, const, state) in calls.items():
            start = time.perf_counter()
            state = jax.block_until_ready(call(const, state))[0]
            seconds[name].append((time.perf_counter() - start) / args.updates)
            calls[name] = (call, const, state)
    steps = [base.task.max_steps(b) for b in configs["bucketed"].buckets()]
    lo, hi = base.lengths
    lengths = np.arange(lo, hi)
    width = -(-(hi - lo) // len(steps))
    expected = float(np.mean([steps[(L - lo) // width] for L in lengths]) / (hi - 1))
    med = {name: float(np.median(s)) for name, s in seconds.items()}
    out = {
        "provenance": provenance(wall_s=time.perf_counter() - start_all),
        "workload": {
            "task": "temporal_order",
            "lengths": [lo, hi],
            "init": "basic_tanh",
            "method": "MSGD-CR",
            "runs": args.runs,
            "batch": base.batch,
            "hidden": base.n_hidden,
            "updates_per_call": args.updates,
            "bucket_steps": steps,
        },
        "seconds_per_update": seconds,
        "median_seconds_per_update": med,
        "ratio_bucketed_over_padded": med["bucketed"] / med["padded"],
        "expected_ratio_from_steps": expected,
    }
    print(
        f"{args.runs} runs, [50, 200): padded {1e3 * med['padded']:.2f} ms/update, bucketed "
        f"({len(steps)} buckets) {1e3 * med['bucketed']:.2f} ms/update: ratio "
        f"{out['ratio_bucketed_over_padded']:.3f} (steps alone: {expected:.3f})"
    )
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
