"""Reproduce Fig. 7 of Pascanu et al. (2013): rate of success against sequence length.

    python scripts/sweep_lengths.py                      # quick preset, temporal order
    python scripts/sweep_lengths.py --preset cpu         # the paper's lengths, 30,000 updates
    python scripts/sweep_lengths.py --preset long        # MSGD-CR, 300,000 updates, 200, 250
    python scripts/sweep_lengths.py --preset paper       # the full protocol (accelerator)
    python scripts/sweep_lengths.py --task addition --lengths 10,20 --seeds 2 --out runs/add
    python scripts/sweep_lengths.py --methods MSGD-C,adam:lr=1e-3+clip=1 --out runs/adam

For every length, 3 initialisations x 3 methods x 5 seeds train as one compiled program
(methods with another optimizer or clipping kind: one program each);
a run succeeds when fewer than 1% of 10,000 fresh sequences are misclassified. Results,
diagnostics and fig7.png go into --out; re-running into the same --out resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np

import pascanu_jax as pj
from pascanu_jax.cli import _distributed
from pascanu_jax.cli.common import (
    LIBRARY_ERRORS,
    comma_list,
    eval_every_default,
    fail,
    log,
    make_config,
    progress_bar,
)
from pascanu_jax.experiments.presets import preset as preset_config
from pascanu_jax.experiments.sharding import one_device_per_core
from pascanu_jax.experiments.sweep import (
    PRESETS,
    SweepConfig,
    run_sweep,
    success_table,
    wilson_interval,
)
from pascanu_jax.outputs.folder import read_json_file
from pascanu_jax.outputs.provenance import device_name


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, SweepConfig]:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--task", default="temporal_order", help=f"one of {', '.join(pj.TASK_NAMES)}")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--lengths", help="comma-separated sequence lengths (default: the preset's)")
    p.add_argument("--inits", help="comma-separated schemes (default: all)")
    p.add_argument(
        "--methods",
        help="comma-separated methods: MSGD, MSGD-C, MSGD-CR (default: all three) or specs "
        "such as adam:lr=1e-3+clip=1+alpha=4, sgd:clip=2xmean, sgd:clipvalue=0.1 "
        "(docs: the library guide's methods)",
    )
    p.add_argument("--seeds", type=int, help="runs per configuration (default: the preset's, 5)")
    p.add_argument("--max-updates", type=int, help="update budget per run (default: preset's)")
    p.add_argument("--eval-every", type=int, help="updates between screens (default: preset's)")
    p.add_argument(
        "--time-limit",
        type=float,
        help="seconds: pause cleanly (the length in progress checkpointed) after the compiled "
        "call that passes it; the same command resumes",
    )
    p.add_argument("--out", help="output folder (default runs/<task>-<preset>)")
    _distributed.add_arguments(p)
    args = p.parse_args(argv)
    _distributed.check_arguments(p, args)
    if args.time_limit is not None and not args.time_limit >= 0:
        p.error(f"--time-limit must be a number of seconds >= 0, got {args.time_limit}")
    preset = PRESETS[args.preset]

    try:
        task = pj.get_task(args.task)
    except ValueError as e:
        p.error(f"--task: {e}")
    lengths = comma_list(p, args.lengths, "--lengths", int)
    if lengths == ():
        p.error(f"--lengths: give distinct lengths, got {args.lengths!r}")
    cfg = make_config(
        p,
        lambda: preset_config(
            PRESETS,
            args.preset,
            task=task,
            lengths=lengths,
            inits=comma_list(p, args.inits, "--inits"),
            methods=comma_list(p, args.methods, "--methods"),
            seeds=args.seeds,
            max_updates=args.max_updates,
            eval_every=eval_every_default(args, preset),
        ),
    )
    same = (cfg.lengths, cfg.max_updates) == (preset.lengths, preset.max_updates)
    name = args.preset if same else "custom"
    note = (
        f"{name}: lengths {','.join(map(str, cfg.lengths))}, budget {cfg.max_updates:,} "
        f"updates, {cfg.seeds} seeds (paper: lengths 50-250, 5,000,000 updates, 5 seeds)"
    )
    cfg = dataclasses.replace(cfg, note=note)
    args.out = args.out if args.out is not None else f"runs/{args.task}-{args.preset}"
    return args, cfg


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    one_device_per_core()  # runs shard over the cores of a CPU; no effect on an accelerator
    _distributed.start(args)  # several processes, if asked for; process 0 prints
    from rich.progress import (
        BarColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    print(f"{cfg.note}\n{len(cfg.runs())} runs per length on {device_name()}, output {args.out}")
    start = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    try:
        with progress_bar(*columns) as new_bar:
            results = run_sweep(cfg, args.out, new_bar("run-updates"), log, args.time_limit)
        summary = read_json_file(os.path.join(args.out, "summary.json"), "delete it") or {}
    except LIBRARY_ERRORS as e:
        return fail(e)
    done = {r["length"] for r in results}
    if done != set(cfg.lengths):
        finished = ", ".join(map(str, sorted(done))) or "none"
        print(f"\npaused with lengths {finished} of {', '.join(map(str, cfg.lengths))} done; "
              "the same command resumes")  # fmt: skip
        print(f"wall time {time.perf_counter() - start:.0f} s; outputs in {args.out}")
        return 0
    table = success_table(results)
    print(f"\nsuccess (solved/runs [95% Wilson interval, %]), {cfg.note}")
    w = max(8, *map(len, cfg.methods))  # the paper's names in 8 columns, as always
    print(f"{'init':<11} {'method':<{w}} " + "".join(f"{L:>16}" for L in cfg.lengths))
    for init in cfg.inits:
        for method in cfg.methods:
            cells = "".join(f"{_cell(table.get((init, method, L))):>16}" for L in cfg.lengths)
            print(f"{init:<11} {method:<{w}} {cells}")
    print("\nmedian updates to success of the solved runs:")
    for init in cfg.inits:
        for method in cfg.methods:
            med = [
                _median(
                    [
                        r["updates"]
                        for r in results
                        if r["init"] == init
                        and r["method"] == method
                        and r["length"] == L
                        and r["solved"]
                    ]
                )
                for L in cfg.lengths
            ]
            print(f"{init:<11} {method:<{w}} " + "".join(f"{m:>8}" for m in med))
    for length, t in summary.items():
        print(
            f"length {length}: {t['wall_s']:.0f} s training (compile {t['compile_s']:.0f} s), "
            f"evaluation {100 * t['eval_fraction']:.1f}% of it"
        )
    print(f"\nwall time {time.perf_counter() - start:.0f} s; outputs in {args.out}")
    return 0


def _cell(cell: tuple[int, int] | None) -> str:
    if cell is None:
        return "-"
    lo, hi = wilson_interval(*cell)
    return f"{cell[0]}/{cell[1]} [{100 * lo:.0f}-{100 * hi:.0f}]"


def _median(values: list[int]) -> str:
    return "-" if not values else f"{np.median(values):.0f}"


if __name__ == "__main__":
    sys.exit(main())
