"""Train on lengths drawn per update, test on lengths never seen (Pascanu et al. 2013, §4.1.1).

    python scripts/generalize.py                         # quick preset, temporal order
    python scripts/generalize.py --preset paper          # [50, 200) -> up to 5000 steps
    python scripts/generalize.py --task addition --test-lengths 50,100,200,500
    python scripts/generalize.py --preset watch --out docs/results/generalization_watch \
        --time-limit 3600                              # the §4.1.1 campaign, resumable

Writes generalization.json, generalization.png (watch.png when watched) and the trained
models into --out; a re-run into the same --out resumes.
"""

from __future__ import annotations

import argparse
import sys
import time

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
from pascanu_jax.experiments.generalization import (
    PRESETS,
    GeneralizationConfig,
    run_generalization,
    run_watch,
    table,
    train_on,
)
from pascanu_jax.experiments.presets import preset as preset_config
from pascanu_jax.experiments.sharding import one_device_per_core


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, GeneralizationConfig]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="temporal_order", help=f"one of {', '.join(pj.TASK_NAMES)}")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--train-lengths", help="LO,HI: train on lengths drawn from [LO, HI)")
    p.add_argument("--test-lengths", help="comma-separated test lengths")
    p.add_argument("--init", choices=list(pj.SCHEMES), help="default: basic_tanh")
    p.add_argument("--method", choices=list(pj.METHODS), help="default: MSGD-CR")
    p.add_argument(
        "--alpha", type=float, help="regularisation weight (default: the method's; paper 4)"
    )
    p.add_argument("--seeds", type=int, help="default: 1")
    p.add_argument(
        "--train-on",
        type=int,
        help="then train each model this many updates more (no stop at success) and test again",
    )
    p.add_argument("--max-updates", type=int)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--test-size", type=int, help="sequences per test length (default 10,000)")
    p.add_argument(
        "--success",
        type=float,
        help="train until the misclassified fraction is below this (default 1e-4: "
        "0 of 10,000, as the paper's §4.1.1)",
    )
    p.add_argument(
        "--watch-every",
        type=int,
        help="train every seed to --max-updates, testing it every N updates at "
        "--watch-lengths (preset watch: 5000)",
    )
    p.add_argument("--watch-lengths", help="comma-separated lengths watched (50,100,200,1000,5000)")
    p.add_argument("--watch-size", type=int, help="sequences per watched length (default 1,000)")
    p.add_argument(
        "--time-limit",
        type=float,
        help="seconds: pause cleanly (checkpoint, records, figure) after the compiled call "
        "that passes it; the same command resumes",
    )
    p.add_argument("--out", help="output folder (default runs/generalize-<task>-<preset>)")
    _distributed.add_arguments(p)
    args = p.parse_args(argv)
    _distributed.check_arguments(p, args)
    preset = PRESETS[args.preset]

    try:
        task = pj.get_task(args.task)
    except ValueError as e:
        p.error(f"--task: {e}")
    cfg = make_config(
        p,
        lambda: preset_config(
            PRESETS,
            args.preset,
            task=task,
            train_lengths=comma_list(p, args.train_lengths, "--train-lengths", int),
            test_lengths=comma_list(p, args.test_lengths, "--test-lengths", int),
            init=args.init,
            method=args.method,
            alpha=args.alpha,
            seeds=args.seeds,
            max_updates=args.max_updates,
            eval_every=eval_every_default(args, preset),
            test_size=args.test_size,
            success=args.success,
            watch_every=args.watch_every,
            watch_lengths=comma_list(p, args.watch_lengths, "--watch-lengths", int),
            watch_size=args.watch_size,
        ),
    )
    if args.time_limit is not None and not args.time_limit >= 0:
        p.error(f"--time-limit must be a number of seconds >= 0, got {args.time_limit}")
    if args.time_limit is not None and args.train_on is not None:
        p.error("--time-limit pauses the first training stage or a watched run, not --train-on")
    if args.train_on is not None and cfg.watch_every is not None:
        p.error("--train-on continues a first-success run; a watched run (--watch-every) "
                "already trains to --max-updates")  # fmt: skip
    if args.train_on is not None and (args.train_on < 1 or args.train_on % cfg.eval_every):
        p.error(f"--train-on must be a positive multiple of --eval-every ({cfg.eval_every})")
    args.out = args.out if args.out is not None else f"runs/generalize-{args.task}-{args.preset}"
    return args, cfg


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    one_device_per_core()  # runs shard over the cores of a CPU; no effect on an accelerator
    _distributed.start(args)  # several processes, if asked for; process 0 prints
    lo, hi = cfg.train_lengths
    print(
        f"{cfg.task.name}: {cfg.init} + {cfg.run_method().name}, trained on lengths "
        f"[{lo}, {hi}) for at most {cfg.max_updates:,} updates, tested on "
        f"{cfg.test_size:,} sequences per length"
    )
    start = time.perf_counter()
    try:
        with progress_bar() as new_bar:
            bars = {"train": new_bar("training (run-updates)"), "test": new_bar("testing")}
            report = lambda stage, d, t: bars[stage](d, t)  # noqa: E731
            if cfg.watch_every is not None:
                record = run_watch(cfg, args.out, report, log, args.time_limit)
            elif args.train_on is None:
                record = run_generalization(cfg, args.out, report, log, args.time_limit)
            else:
                record = train_on(cfg, args.out, args.train_on, report, log)
    except LIBRARY_ERRORS as e:
        return fail(e)
    if cfg.watch_every is not None:
        print(watch_report(record))
        print(f"\nwall time {time.perf_counter() - start:.0f} s; outputs in {args.out}")
        return 0
    if record.get("status", "complete") != "complete":
        print(f"\n{record['status']}: the same command resumes it")
        print(f"\nwall time {time.perf_counter() - start:.0f} s; outputs in {args.out}")
        return 0
    for run in record["training"]:
        state = (
            f"solved after {run['updates']:,} updates"
            if run["solved"]
            else (f"not solved in {run['updates']:,} updates")
        )
        print(f"seed {run['seed']}: {state} (error {100 * run['error']:.2f}% on [{lo}, {hi}))")
    print("\nmisclassified at each test length:\n" + table(record))
    if args.train_on is not None:
        stage = record["train_on"][str(args.train_on)]
        print(f"\nafter {args.train_on:,} updates more:\n" + table(stage))
    print(f"\nwall time {time.perf_counter() - start:.0f} s; outputs in {args.out}")
    return 0


def watch_report(record: dict) -> str:
    """Per seed: updates trained, the first generalising update, the best snapshot."""
    lines = [f"\n{record['status']}; per seed:"]
    for run in record["training"]:
        seed = str(run["seed"])
        best = record["best"].get(seed)
        general = record["general_at"].get(seed)
        best_text = (
            "-"
            if best is None
            else (f"{best['errors_sum']} errors (watched lengths summed) at {best['updates']:,}")
        )
        lines.append(
            f"seed {seed}: {run['updates']:,} updates; 0 errors at every test length: "
            f"{'never' if general is None else f'at {general:,}'}; best snapshot: {best_text}"
        )
    cost = record["cost"]
    lines.append(
        f"watching cost {cost['watch_s']:.0f} s, {100 * cost['watch_fraction']:.1f}% of training"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
