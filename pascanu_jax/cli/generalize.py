"""Train on lengths drawn per update, test on lengths never seen (Pascanu et al. 2013, §4.1.1).

    python scripts/generalize.py                         # quick preset, temporal order
    python scripts/generalize.py --preset paper          # [50, 200) -> up to 5000 steps
    python scripts/generalize.py --task addition --test-lengths 50,100,200,500

Writes generalization.json, generalization.png and the trained models into --out; a
re-run into the same --out resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from types import MappingProxyType

import pascanu_jax as pj
from pascanu_jax.cli import _distributed
from pascanu_jax.experiments.generalization import (
    PAPER_TEST_LENGTHS,
    GeneralizationConfig,
    run_generalization,
    table,
    train_on,
)
from pascanu_jax.experiments.sharding import one_device_per_core

PRESETS = MappingProxyType(
    {
        # (train [lo, hi), test lengths, budget, eval_every)
        "quick": ((20, 80), (10, 20, 30, 50, 100, 200, 500), 60_000, 1_000),
        "paper": ((50, 200), PAPER_TEST_LENGTHS, 5_000_000, 1_000),
    }
)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, GeneralizationConfig]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="temporal_order", help=f"one of {', '.join(pj.TASK_NAMES)}")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--train-lengths", help="LO,HI: train on lengths drawn from [LO, HI)")
    p.add_argument("--test-lengths", help="comma-separated test lengths")
    p.add_argument("--init", default="basic_tanh", choices=list(pj.SCHEMES))
    p.add_argument("--method", default="MSGD-CR", choices=list(pj.METHODS))
    p.add_argument(
        "--alpha", type=float, help="regularisation weight (default: the method's; paper 4)"
    )
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument(
        "--train-on",
        type=int,
        help="then train each model this many updates more (no stop at success) and test again",
    )
    p.add_argument("--max-updates", type=int)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--test-size", type=int, default=10_000, help="sequences per test length")
    p.add_argument(
        "--success",
        type=float,
        default=1e-4,
        help="train until the misclassified fraction is below this (default 1e-4: "
        "0 of 10,000, as the paper's §4.1.1)",
    )
    p.add_argument("--out", help="output folder (default runs/generalize-<task>-<preset>)")
    _distributed.add_arguments(p)
    args = p.parse_args(argv)
    _distributed.check_arguments(p, args)
    train, test, budget, every = PRESETS[args.preset]
    try:
        task = pj.get_task(args.task)
        if args.train_lengths:
            train = tuple(int(x) for x in args.train_lengths.split(","))
            if len(train) != 2 or train[1] <= train[0]:
                raise ValueError(f"--train-lengths must be LO,HI with HI > LO, got {train}")
        task.check_length(train[0])
        test = tuple(int(x) for x in args.test_lengths.split(",")) if args.test_lengths else test
        for length in test:
            task.check_length(length)
    except ValueError as e:
        p.error(str(e))
    budget = budget if args.max_updates is None else args.max_updates
    every = min(every, budget) if args.eval_every is None else args.eval_every
    if not 0 < args.success <= 1:
        p.error(f"--success must be a fraction in (0, 1], got {args.success}")
    for flag, value in (
        ("--max-updates", budget),
        ("--eval-every", every),
        ("--seeds", args.seeds),
        ("--test-size", args.test_size),
    ):
        if value < 1:
            p.error(f"{flag} must be >= 1, got {value}")
    if budget % every:
        p.error(f"--max-updates ({budget}) must be a multiple of --eval-every ({every})")
    if args.train_on is not None and (args.train_on < 1 or args.train_on % every):
        p.error(f"--train-on must be a positive multiple of --eval-every ({every})")
    if args.alpha is not None and not args.alpha >= 0:
        p.error(f"--alpha must be >= 0, got {args.alpha}")
    cfg = GeneralizationConfig(
        task,
        train,
        test,
        args.init,
        args.method,
        args.alpha,
        args.seeds,
        budget,
        every,
        test_size=args.test_size,
        success=args.success,
    )
    args.out = args.out or f"runs/generalize-{args.task}-{args.preset}"
    return args, cfg


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    one_device_per_core()  # runs shard over the cores of a CPU; no effect on an accelerator
    _distributed.start(args)  # several processes, if asked for; process 0 prints
    from rich.progress import Progress

    lo, hi = cfg.train_lengths
    print(
        f"{cfg.task.name}: {cfg.init} + {cfg.run_method().name}, trained on lengths "
        f"[{lo}, {hi}) for at most {cfg.max_updates:,} updates, tested on "
        f"{cfg.test_size:,} sequences per length"
    )
    start = time.perf_counter()
    with Progress() as bar:
        jobs = {
            "train": bar.add_task("training (run-updates)", total=1),
            "test": bar.add_task("testing (lengths)", total=1),
        }
        report = lambda stage, d, t: bar.update(jobs[stage], completed=d, total=t)  # noqa: E731
        if args.train_on is None:
            record = run_generalization(cfg, args.out, report)
        else:
            record = train_on(cfg, args.out, args.train_on, report)
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


if __name__ == "__main__":
    sys.exit(main())
