#!/usr/bin/env python
"""Table 1 of Pascanu, Mikolov & Bengio (2013): MSGD, MSGD+C and MSGD+CR on a natural problem.

    python scripts/natural.py                         # J. S. Bach chorales (music21), offline
    python scripts/natural.py --quick                 # the same in a few minutes on a CPU
    python scripts/natural.py --dataset nottingham --data Nottingham.pickle
    python scripts/natural.py --dataset ptb --data DIR --steps-ahead 5
    python scripts/natural.py --dataset chars --data any_text.txt

Prints a Table 1-style table (train and test, per method) next to the paper's numbers where
the data set is one of the paper's, and writes results.json and learning_curves.png into
--out. A rerun with the same settings skips the methods already finished there.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

from pascanu_jax import natural
from pascanu_jax.cli.common import LIBRARY_ERRORS, fail, log, progress_bar, setting_message
from pascanu_jax.outputs.figures import save_figure
from pascanu_jax.outputs.files import write_json
from pascanu_jax.outputs.folder import defaults_of, open_folder
from pascanu_jax.outputs.provenance import provenance

SETTINGS = ("dataset", "data", "steps_ahead", "config", "max_pieces")
# TrainConfig's fields -> the flags that set them.
FLAGS = {
    "n_hidden": "--hidden",
    "learning_rate": "--lr",
    "threshold": "--threshold",
    "alpha0": "--alpha0",
    "batch_size": "--batch",
    "train_length": "--length",
    "max_rounds": "--rounds",
    "patience": "--patience",
    "updates_per_round": "--updates-per-round",
    "seed": "--seed",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    formats = "\n".join(f"  {k}: --data {v[1]}" for k, v in natural.DATASETS.items())
    parser.add_argument(
        "--dataset", default="jsb", choices=list(natural.DATASETS), help="data set:\n" + formats
    )
    parser.add_argument("--data", help="the data file or folder (see --dataset)")
    parser.add_argument(
        "--steps-ahead", type=int, default=1, help="text: predict k characters ahead (paper: 5)"
    )
    parser.add_argument("--out", type=pathlib.Path, help="output folder (default results/...)")
    parser.add_argument("--quick", action="store_true", help="reduced budget (minutes on a CPU)")
    parser.add_argument(
        "--methods",
        default=",".join(natural.METHOD_NAMES),
        help=f"comma-separated subset of {', '.join(natural.METHOD_NAMES)}",
    )
    parser.add_argument("--hidden", type=int, help="hidden units")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--threshold", type=float, help="clipping threshold of MSGD+C(R)")
    parser.add_argument("--alpha0", type=float, help="initial regularisation weight (MSGD+CR)")
    parser.add_argument("--batch", type=int, help="sequences per minibatch")
    parser.add_argument("--length", type=int, help="training crop length (steps)")
    parser.add_argument("--rounds", type=int, help="most rounds (validation after each)")
    parser.add_argument("--patience", type=int, help="rounds without improvement to stop")
    parser.add_argument("--updates-per-round", type=int, help="default: one epoch")
    parser.add_argument("--seed", type=int, help="initialisation and data order")
    parser.add_argument("--max-pieces", type=int, help="jsb: first pieces of each split only")
    parser.add_argument(
        "--cache-dir", default="default", help="jsb: cache of converted chorales ('none': off)"
    )
    args = parser.parse_args(argv)

    # Everything that can be checked without data is checked here, before any heavy work.
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in args.methods if m not in natural.METHOD_NAMES]
    if unknown or not args.methods:
        parser.error(f"unknown method(s) {unknown}; valid: {', '.join(natural.METHOD_NAMES)}")
    kind, expected = natural.DATASETS[args.dataset]
    if args.dataset == "jsb" and args.data is not None:
        parser.error("--dataset jsb reads the music21 corpus; use --dataset jsb-pickle --data")
    if args.dataset != "jsb" and args.data is None:
        parser.error(f"--dataset {args.dataset} needs --data: {expected}")
    if args.max_pieces is not None and (args.dataset != "jsb" or args.max_pieces < 1):
        parser.error("--max-pieces is a positive count, for --dataset jsb only")
    if args.steps_ahead < 1 or (kind == "music" and args.steps_ahead != 1):
        parser.error("--steps-ahead is >= 1, and applies to text data sets only")
    try:
        args.config = natural.default_config(
            kind,
            args.quick,
            n_hidden=args.hidden,
            learning_rate=args.lr,
            threshold=args.threshold,
            alpha0=args.alpha0,
            batch_size=args.batch,
            train_length=args.length,
            max_rounds=args.rounds,
            patience=args.patience,
            updates_per_round=args.updates_per_round,
            seed=args.seed,
        )
    except ValueError as err:
        parser.error(setting_message(err, FLAGS))
    if args.out is None:
        tag = args.dataset + (f"-k{args.steps_ahead}" if args.steps_ahead != 1 else "")
        args.out = pathlib.Path("runs") / ("natural-" + tag + ("-quick" if args.quick else ""))
    args.cache_dir = None if args.cache_dir == "none" else args.cache_dir
    return args


def fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}"


def table(record: dict) -> str:
    """The Table 1 rows of this run (train and test per method) and the paper's."""
    methods = list(record["methods"])
    key = record["paper_key"]
    paper = natural.PAPER_TABLE1.get(key) if key else None
    labels = ["this run"] + ([f"paper: {natural.PAPER_NAMES[key]}"] if paper else [])
    width = max(map(len, labels)) + 2
    lines = [
        f"{record['dataset']}: {record['info']['unit']}",
        f"{'':{width}}{'fold':6}" + "".join(f"{m:>9}" for m in methods),
    ]
    rows = [(labels[0], {m: (r["train"], r["test"]) for m, r in record["methods"].items()})]
    if paper:
        rows.append((labels[1], {m: paper[m] or (None, None) for m in methods}))
    for label, values in rows:
        for i, fold in enumerate(("train", "test")):
            cells = "".join(f"{fmt(values[m][i]):>9}" for m in methods)
            lines.append(f"{label if i == 0 else '':{width}}{fold:6}{cells}")
    if not paper:
        lines.append(
            "paper: this data set is not in the paper's Table 1 (Piano-midi.de, Nottingham, "
            "MuseData, Penn Treebank); no numbers to compare with."
        )
    return "\n".join(lines)


def plot(record: dict, path: pathlib.Path) -> None:
    from matplotlib.figure import Figure

    unit = record["info"]["unit"]
    fig = Figure(figsize=(15, 4.2))
    axes = fig.subplots(1, 3)
    for name, result in record["methods"].items():
        c = result["curve"]
        axes[0].semilogy(c["updates"], c["train_loss"], label=name)
        axes[1].plot(c["updates"], c["valid"], label=name)
        axes[2].semilogy(c["updates"], c["norm_median"], label=name)
    titles = (
        f"training minibatches ({unit})",
        f"full validation set ({unit})",
        "gradient norm before clipping (median per round)",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("updates")
        ax.legend()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(unit)
    axes[1].set_ylabel(unit)
    axes[2].set_ylabel("||g||")
    fig.suptitle(f"{record['dataset']}: MSGD, MSGD+C, MSGD+CR (Pascanu et al. 2013, Table 1)")
    fig.tight_layout()
    save_figure(fig, path.parent, path.stem)


def _legacy_settings(out: pathlib.Path) -> dict | None:
    """The settings of a folder written before config.json: those its results.json holds."""
    record = natural.load_results(out / "results.json")
    return None if record is None else {k: record.get(k) for k in SETTINGS}


def main(argv: list[str] | None = None) -> dict | int:
    args = parse_args(argv)
    try:
        return run(args)
    except (*LIBRARY_ERRORS, DataError) as e:
        return fail(e)


class DataError(Exception):
    """The data set cannot be loaded (missing file, wrong format, music21 missing)."""


def run(args: argparse.Namespace) -> dict:
    provenance()  # reads the checkout's state now, before anything changes it
    results_path = args.out / "results.json"
    settings = {
        "dataset": args.dataset,
        "data": None if args.data is None else str(pathlib.Path(args.data).resolve()),
        "steps_ahead": args.steps_ahead,
        "config": natural.config_dict(args.config),
        "max_pieces": args.max_pieces,
    }
    defaults = {"config": defaults_of(natural.TrainConfig), "steps_ahead": 1, "max_pieces": None}
    open_folder(args.out, None, settings=settings, defaults=defaults, legacy=_legacy_settings)
    previous = natural.load_results(results_path)
    done = {} if previous is None else previous["methods"]
    todo = [m for m in args.methods if not done.get(m, {}).get("finished")]

    try:
        problem = natural.load_problem(
            args.dataset,
            args.data,
            steps_ahead=args.steps_ahead,
            config=args.config,
            max_pieces=args.max_pieces,
            cache_dir=args.cache_dir,
        )
    except (FileNotFoundError, ValueError, ImportError) as err:
        raise DataError(str(err)) from err

    print(f"data: {problem.info['source']}")
    print("settings:", ", ".join(f"{k}={v}" for k, v in settings["config"].items()))
    if args.quick:
        print(
            "--quick: reduced budget "
            + (
                f"({args.config.max_rounds} rounds of {args.config.updates_per_round} "
                "updates at most)"
                if args.config.updates_per_round
                else f"({args.config.max_rounds} epochs at most, patience {args.config.patience})"
            )
            + "; numbers are not comparable with a full run"
        )
    results = dict(done)
    start = time.perf_counter()
    if todo:
        print(f"training {', '.join(todo)} together" + (f" (done: {list(done)})" if done else ""))
        with progress_bar() as new_bar:
            bar = new_bar("rounds")

            def progress(round_: int, total: int, valid: dict) -> None:
                scores = " ".join(f"{m} {v:.3f}" for m, v in valid.items())
                log(f"round {round_} of at most {total}: valid {scores}")
                bar(round_, total)

            results.update(natural.train_methods(problem, args.config, todo, progress=progress))
    record = {
        **settings,
        "methods": {m: results[m] for m in natural.METHOD_NAMES if m in results},
        "info": dict(problem.info),
        "paper_key": problem.paper_key,
        "paper": {
            m: None if v is None else {"train": v[0], "test": v[1]}
            for m, v in natural.PAPER_TABLE1.get(problem.paper_key or "", {}).items()
        },
        "seconds_this_call": time.perf_counter() - start,
        "provenance": provenance(wall_s=time.perf_counter() - start),
    }
    write_json(results_path, record)
    plot(record, args.out / "learning_curves.png")
    print(table(record))
    for m, r in record["methods"].items():
        print(
            f"{m}: valid {fmt(r['valid'])}, best round {r['best_round']} of {r['rounds']}, "
            f"{100 * r['clipped_fraction']:.1f}% updates clipped, "
            f"mean gradient norm {r['mean_gradient_norm']:.3g}"
        )
    print(f"wall time of this call: {record['seconds_this_call']:.0f} s")
    print(f"wrote {results_path} and {args.out / 'learning_curves.png'}")
    return record


if __name__ == "__main__":
    status = main()
    sys.exit(status if isinstance(status, int) else 0)
