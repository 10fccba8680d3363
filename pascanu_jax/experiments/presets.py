"""Presets and settings checks shared by the experiments' config classes.

Every experiment has one frozen config dataclass that checks its own fields
(`__post_init__`), and a `presets` mapping of preset name -> a complete config of that
class. `preset(presets, name, **overrides)` is the one lookup: the preset with the given
fields replaced (None leaves a field at the preset's value, so 0 or an empty tuple is an
override like any other), checked again by the class.

A check that fails raises `SettingError`, whose message names the settings it blames as
`{field}`: `str(error)` writes the field names, `error.naming(names)` writes what a caller
calls them (the command line: its flags).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pascanu_jax.methods import parse_method

T = TypeVar("T")

# Updates are counted in int32 on the device (and keys fold in the update number).
MAX_UPDATES = 2**31 - 1
# Memory grows with the length (backpropagation through time keeps every step's hidden
# states, for every run of the program): refuse lengths no device here can train or test.
# The paper's longest sequences have 5000 steps.
MAX_LENGTH = 100_000
# Every seed is a run (times initialisations and methods) of one compiled program, each
# with its own parameters on the host and device.
MAX_SEEDS = 1_000


class SettingError(ValueError):
    """A setting out of range. `fields` are the settings blamed; the message template writes
    each as `{field}` (see the module docstring)."""

    def __init__(self, template: str, *fields: str):
        self.template = template
        self.fields = fields
        super().__init__(self.naming())

    def naming(self, names: Mapping[str, str] | None = None) -> str:
        """The message with each blamed field written as `names[field]` (default: as is)."""
        text = self.template
        for field in self.fields:
            text = text.replace("{" + field + "}", (names or {}).get(field, field))
        return text


def check_int(name: str, value: Any, lo: int = 1, hi: int | None = None, why: str = "") -> None:
    """SettingError unless `value` is an int in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise SettingError(f"{{{name}}} must be >= {lo}, got {value!r}", name)
    if hi is not None and value > hi:
        raise SettingError(
            f"{{{name}}} must be at most {hi:,}, got {value:,}" + (f" ({why})" if why else ""),
            name,
        )


def check_names(name: str, values: tuple, valid: Iterable[str]) -> None:
    """SettingError unless `values` is a non-empty tuple of distinct names of `valid`."""
    valid = list(valid)
    bad = [v for v in values if v not in valid]
    if bad or not values:
        raise SettingError(
            f"{{{name}}}: unknown {bad or 'empty list'}; valid: {', '.join(valid)}", name
        )
    if len(set(values)) != len(values):
        raise SettingError(f"{{{name}}}: give distinct names, got {list(values)}", name)


def check_methods(name: str, values: tuple) -> None:
    """SettingError unless `values` is a non-empty tuple of distinct method names or specs
    (`parse_method`); the error is the parser's one line, naming the part that is wrong."""
    if not values:
        raise SettingError(f"{{{name}}}: empty list; give MSGD, MSGD-C, MSGD-CR or specs", name)
    for value in values:
        try:
            parse_method(value)
        except ValueError as e:
            raise SettingError(f"{{{name}}}: {e}", name) from e
    if len(set(values)) != len(values):
        raise SettingError(f"{{{name}}}: give distinct methods, got {list(values)}", name)


def check_lengths(name: str, task: Any, lengths: Iterable[int]) -> None:
    """SettingError unless every length is one `task` has and at most MAX_LENGTH."""
    for length in lengths:
        try:
            task.check_length(length)
        except ValueError as e:
            raise SettingError(f"{{{name}}}: {e}", name) from e
        if length > MAX_LENGTH:
            raise SettingError(
                f"{{{name}}}: {length:,} steps is more than {MAX_LENGTH:,} (memory grows "
                "with the length: every step's hidden states are kept; the paper's longest "
                "sequences have 5000)",
                name,
            )


def lookup(presets: Mapping[str, T], name: str, what: str = "preset") -> T:
    """presets[name]; an unknown name is a SettingError listing the valid ones."""
    try:
        return presets[name]
    except KeyError:
        raise SettingError(
            f"unknown {{{what}}} {name!r}; valid: {', '.join(presets)}", what
        ) from None


def preset(presets: Mapping[str, T], name: str, **overrides: Any) -> T:
    """The preset `name` with the fields of `overrides` that are not None replaced (the
    config class checks the result)."""
    base = lookup(presets, name)
    given = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **given) if given else base
