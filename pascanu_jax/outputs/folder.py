"""The output-folder protocol that every experiment writing a folder follows.

    folder = open_folder(out, config)        # creates `out`, or reopens it

1. The settings are recorded in `out/config.json`: the fields of the experiment's frozen
   config dataclass (`settings_of`: JSON values, tasks by name, tuples as lists), in field
   order.
2. A re-run with the same settings reopens the folder and resumes it.
3. Different settings are refused with one line naming the folder and each differing
   setting, old and new value (`OutputFolderError`).

A field added to a config class later, with a default, does not invalidate an old folder:
a setting missing from config.json is read as that field's default (`defaults_of`), so an
old folder matches a new run that keeps the default. Folders written before config.json
existed are read through `legacy` (the settings another file of theirs recorded).

Files of a folder that cannot be read (killed run, full disk, edits) are either recovered
from by their owner (a unit of work done again, with a `warn` line) or refused with one
line naming the file and what to do (`read_json_file`). All writes go through
`outputs/files.py`. Library messages name settings, never command-line flags.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pascanu_jax.outputs.files import write_json

CONFIG_FILE = "config.json"
_MISSING = "<not set>"


class OutputFolderError(ValueError):
    """An output folder or one of its files that cannot be used as it is: settings that
    differ, a damaged file, a path that is not a writable folder. The message is one line
    naming the folder or file and what to do."""


def warn(message: str) -> None:
    """One `warning: ...` line on stderr (a damaged unit of work done again)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def to_json(value: Any) -> Any:
    """`value` as JSON would read it back: tuples as lists, mappings as dicts, dataclasses
    as dicts of their fields, tasks by name, numpy scalars as Python numbers."""
    from pascanu_jax.tasks import Task

    if isinstance(value, Task):
        if value.name == "memorization":  # the one task whose name leaves options open
            return f"memorization(n_values={value.n_values}, n_pos={value.n_pos})"
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"setting of type {type(value).__name__} has no JSON form: {value!r}")


def settings_of(config: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of a config dataclass as JSON values, in field order, less `exclude`."""
    skip = set(exclude)
    return {
        f.name: to_json(getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name not in skip
    }


def defaults_of(cls: type) -> dict[str, Any]:
    """The JSON value of the default of every field of a dataclass that has one."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = to_json(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = to_json(f.default_factory())
    return out


def _flat(d: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def differences(
    saved: Mapping, settings: Mapping, defaults: Mapping | None = None
) -> list[tuple[str, Any, Any]]:
    """(setting, saved value, new value) for every setting that differs, nested settings
    named with dots ("config.learning_rate"). A setting `saved` lacks counts as its
    default (from `defaults`, flattened the same way), so a field added later with its
    default value makes no difference."""
    old, new = _flat(saved), _flat(to_json(settings))
    fallback = _flat(defaults or {})
    out = []
    for key in list(new) + [k for k in old if k not in new]:
        before = old.get(key, fallback.get(key, _MISSING))
        after = new.get(key, _MISSING)
        if not _same(before, after):
            out.append((key, before, after))
    return out


def describe_differences(diffs: list[tuple[str, Any, Any]]) -> str:
    return "; ".join(
        f"{key}: {json.dumps(old) if old is not _MISSING else old} in the folder, "
        f"{json.dumps(new) if new is not _MISSING else new} now"
        for key, old, new in diffs
    )


def read_json_file(path: str | os.PathLike, remedy: str, *, empty_is_none: bool = False) -> Any:
    """The JSON in `path`, None when there is no such file (or, with `empty_is_none`, when
    it is empty: a user emptied it to start over). A file that is not JSON is an
    `OutputFolderError` naming it, with `remedy` (what to do, e.g. "restore it, or
    delete it to ...")."""
    path = pathlib.Path(path)
    if not path.exists():
        return None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise OutputFolderError(f"cannot read {path} ({e}); {remedy}") from e
    if empty_is_none and not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise OutputFolderError(f"{path} is damaged (not JSON: {e}); {remedy}") from e


@dataclasses.dataclass(frozen=True)
class OutputFolder:
    """An opened output folder: its path and the settings it holds."""

    path: pathlib.Path
    settings: dict

    def file(self, name: str) -> pathlib.Path:
        return self.path / name


def open_folder(
    path: str | os.PathLike,
    config: Any,
    *,
    exclude: Iterable[str] = (),
    settings: Mapping | None = None,
    defaults: Mapping | None = None,
    legacy: Callable[[pathlib.Path], Mapping | None] | None = None,
) -> OutputFolder:
    """Create folder `path` for `config` (a config dataclass), or reopen it (see the module
    docstring).

    exclude: fields that may change between runs into one folder (not recorded).
    settings: the settings to record instead of `settings_of(config, exclude)` (a dict of
      JSON values; nested dicts allowed).
    defaults: the defaults of settings a folder may lack (default: `defaults_of` the
      config's class).
    legacy: reads the settings of a folder written before config.json (None: none).

    Raises OutputFolderError: `path` is not a folder or cannot be written, config.json is
    damaged, or the folder holds other settings.
    """
    path = pathlib.Path(path)
    settings = to_json(settings_of(config, exclude) if settings is None else settings)
    if defaults is None:
        defaults = defaults_of(type(config)) if dataclasses.is_dataclass(config) else {}
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"output folder {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputFolderError(f"cannot create output folder {path} ({e.strerror})") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputFolderError(f"output folder {path} is not writable")
    config_path = path / CONFIG_FILE
    saved = read_json_file(
        config_path,
        "it records the settings of the run in this folder: restore it, or use another "
        "output folder",
    )
    recorded = saved is not None
    if saved is None and legacy is not None:
        saved = legacy(path)
    if saved is not None:
        if not isinstance(saved, Mapping):
            raise OutputFolderError(
                f"{config_path} is damaged (not a JSON object of settings); restore it, "
                "or use another output folder"
            )
        diffs = differences(saved, settings, defaults)
        if diffs:
            raise OutputFolderError(
                f"{path} holds a run with other settings ({describe_differences(diffs)}); "
                "use another output folder, or delete this one to start over"
            )
    if not recorded:
        write_json(config_path, settings)
    return OutputFolder(path, settings)
