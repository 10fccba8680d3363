"""The engine against another checkout of itself: does a change make Fig. 7 slower?

    python benchmarks/engine_ab.py --baseline /path/to/other/checkout \
        --json benchmarks/results/engine_ab.json

Workload: one Fig. 7 length of the paper's three methods (3 initialisations x 3 methods x 5
seeds, temporal order at length 50, `--updates` updates, no run stops early enough to
matter), trained by `pj.train` in a fresh process per measurement. The two checkouts run
in turn (this one, the baseline, this one, ...), each process timing its own training
after the compile, so that a drift of the machine's speed falls on both alike; the ratio
is taken pair by pair and its median reported. Both checkouts must import with this
Python (the same jax), each from its own tree (PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = """
import json, sys, time
import pascanu_jax as pj
updates = int(sys.argv[1])
cfg = pj.EngineConfig(pj.get_task("temporal_order"), (50, 51), max_updates=updates,
                      eval_every=updates // 2, periods_per_call=2)
runs = [pj.RunSpec(i, m, s) for i in pj.SCHEMES for m in pj.METHODS for s in range(5)]
result = pj.train(cfg, runs, measure_eval=False)
print(json.dumps({"train_s": result.wall_s, "compile_s": result.compile_s,
                  "package": pj.__file__}))
"""


def measure(tree: pathlib.Path, updates: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(updates)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=pathlib.Path, required=True, help="the other checkout")
    p.add_argument("--pairs", type=int, default=4, help="measured pairs (default 4)")
    p.add_argument("--updates", type=int, default=1000, help="updates per run (default 1000)")
    p.add_argument("--json", type=pathlib.Path, help="write the record here")
    args = p.parse_args(argv)
    if not (args.baseline / "pascanu_jax" / "__init__.py").is_file():
        p.error(f"--baseline: {args.baseline} is not a pascanu_jax checkout")
    if args.pairs < 1 or args.updates < 2 or args.updates % 2:
        p.error("--pairs must be >= 1 and --updates an even number >= 2")
    sys.path.insert(0, str(ROOT))
    from pascanu_jax.outputs.files import write_json
    from pascanu_jax.outputs.provenance import git_state, provenance

    measure(ROOT, args.updates)  # warm-up: caches, page-ins
    pairs = []
    for i in range(args.pairs):
        this, base = measure(ROOT, args.updates), measure(args.baseline, args.updates)
        pairs.append({"this": this, "baseline": base})
        ratio = this["train_s"] / base["train_s"]
        print(f"pair {i + 1}: this {this['train_s']:.1f} s, baseline {base['train_s']:.1f} s, "
              f"ratio {ratio:.3f}")  # fmt: skip
    ratios = [q["this"]["train_s"] / q["baseline"]["train_s"] for q in pairs]
    record = {
        "provenance": provenance(baseline=dict(git_state(str(args.baseline)))),
        "settings": {"pairs": args.pairs, "updates": args.updates, "runs": 45, "length": 50},
        "pairs": pairs,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }
    print(
        f"training time, this / baseline: median {record['ratio_median']:.3f} "
        f"(min {record['ratio_min']:.3f}, max {record['ratio_max']:.3f}) over {args.pairs} pairs"
    )
    if args.json is not None:
        write_json(str(args.json), record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
