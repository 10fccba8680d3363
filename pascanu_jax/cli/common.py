"""What the commands share: library errors as one `error: ...` line (exit status 2), the
config classes' messages with flag names, and progress (a line per finished unit of work,
always; a progress bar on a terminal only)."""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import sys
from collections.abc import Callable, Iterator, Mapping

from pascanu_jax.experiments.presets import SettingError
from pascanu_jax.outputs.checkpoint import CheckpointError
from pascanu_jax.outputs.folder import OutputFolderError

# What a command turns into one line: the output folder and its files, settings, and the
# operating system's refusals (a read-only folder, a full disk).
LIBRARY_ERRORS = (OutputFolderError, CheckpointError, SettingError, OSError)


def flag_names(fields: Mapping[str, str] | None = None) -> Callable[[str], str]:
    """field -> its flag: `fields[field]`, else --field-with-dashes."""
    return lambda field: (fields or {}).get(field, "--" + field.replace("_", "-"))


def setting_message(error: ValueError, fields: Mapping[str, str] | None = None) -> str:
    """A config class's error with its fields written as flags."""
    if isinstance(error, SettingError):
        name = flag_names(fields)
        return error.naming({f: name(f) for f in error.fields})
    return str(error)


def make_config(parser: argparse.ArgumentParser, build: Callable, fields=None):
    """build() (a config class's constructor or preset lookup); its SettingError or
    ValueError becomes `parser.error` with flag names (exit status 2)."""
    try:
        return build()
    except ValueError as e:
        parser.error(setting_message(e, fields))


def add_output_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """--out DIR (created if missing) and --svg."""
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path(default_out), help="output folder"
    )
    parser.add_argument("--svg", action="store_true", help="also write an SVG of each figure")


def comma_list(parser: argparse.ArgumentParser, text: str | None, flag: str, kind=str):
    """`--flag a,b,c` as a tuple of `kind` (None when the flag is absent, so that 0 and an
    empty list are values, not "use the preset's"); a bad item is `parser.error`."""
    if text is None:
        return None
    try:
        return tuple(kind(x.strip()) for x in text.split(",") if x.strip())
    except ValueError as e:
        parser.error(f"{flag}: {e}")


def eval_every_default(args: argparse.Namespace, preset) -> int | None:
    """--eval-every as given; without it, the preset's interval but no more than a given
    --max-updates (None: the preset's own pair)."""
    if args.eval_every is None and args.max_updates is not None:
        return min(preset.eval_every, args.max_updates)
    return args.eval_every


def fail(error: BaseException) -> int:
    """Print `error: ...` (one line) to stderr; the exit status 2."""
    text = " ".join(str(error).split()) or type(error).__name__
    print(f"error: {text}", file=sys.stderr, flush=True)
    return 2


def log(line: str) -> None:
    """A line of progress on stdout, flushed (a log file shows it at once)."""
    print(line, flush=True)


@contextlib.contextmanager
def progress_bar(*columns) -> Iterator[Callable[..., Callable[[int, int], None]]]:
    """Yields `new(description)` -> update(done, total). On a terminal each is a rich
    progress bar (lines printed meanwhile appear above it); otherwise updates do nothing
    and only the progress lines show."""
    if not sys.stdout.isatty():
        yield lambda description: lambda done, total: None
        return
    from rich.progress import Progress

    with Progress(*columns) as bar:

        def new(description: str) -> Callable[[int, int], None]:
            job = bar.add_task(description, total=1)
            return lambda done, total: bar.update(job, completed=done, total=total)

        yield new
