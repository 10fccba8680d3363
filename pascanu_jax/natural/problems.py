"""The natural problems of Pascanu, Mikolov & Bengio (2013, §4.2, Table 1): the data sets,
the paper's numbers, and the hyperparameters of a run.

    DATASETS          name -> (kind, what the data path must be): music (NLL per time step) or
                      text (bits per character)
    PAPER_TABLE1      the paper's (train, test) per data set and method; PAPER_NAMES
    load_problem      a data set as a `Problem`: output head, training items, whole
                      validation and test sequences
    TrainConfig       the hyperparameters; `default_config(kind, quick)` the defaults below

The authors' natural-task hyperparameters are in supplementary material that we do not
have; the defaults (`default_config`) are our choices and are printed with every result.
Common to all: tanh units initialised as "smart_tanh" (the paper's initialisation for its
synthetic tasks: spectral radius 0.95, 15 non-zeros per row), plain SGD without momentum
(the paper's MSGD) on minibatches of 20 sequences (the paper's batch size) cropped to 100
steps, alpha0 = 4 (the paper's weight for the synthetic tasks, here decaying), non-finite
gradients skipped, seed 0.

                   hidden  learning rate  threshold c  rounds (at most)      patience
    music              50            0.3            2  1000 epochs                 30
    text               50            1.0            1   100 epochs                  5
    music, --quick     50            0.3            2   150 epochs                 20
    text, --quick      50            1.0            1    10 rounds of 200 updates   5

The learning rates are the largest at which plain MSGD trained stably in short trials
(music: of 0.1, 0.3, 0.5, 1 on the JSB chorales; text: of 0.3, 1, 3 on a 145 kB English
text; at the next rate up MSGD's gradient norm exploded). The safe rate falls with the
width: with 200 hidden units, text at rate 1 already throws MSGD off a cliff, so change
--hidden and --lr together. The thresholds follow the paper's heuristic (§3.2: from half
to ten times the average gradient norm, which was about 1.7 for music and 0.5 for text at
these rates). `trainer.py` trains the three methods on a `Problem`.
"""

from __future__ import annotations

import dataclasses
import os
from types import MappingProxyType
from typing import Any

from pascanu_jax.experiments.presets import SettingError, preset
from pascanu_jax.initializers import get_scheme
from pascanu_jax.methods import BATCH_SIZE
from pascanu_jax.natural.music import SPLITS, load_jsb_chorales, load_piano_roll_pickle
from pascanu_jax.natural.sequence_model import (
    CharHead,
    NoteHead,
    SequenceHead,
    SequenceSet,
    music_set,
    text_set,
)
from pascanu_jax.natural.text import load_ptb_chars, load_text_file

DATASETS = MappingProxyType(
    {
        "jsb": ("music", "nothing (the music21 corpus; needs the 'natural' extra)"),
        "jsb-pickle": ("music", "JSB Chorales.pickle"),
        "piano": ("music", "Piano-midi.de.pickle"),
        "nottingham": ("music", "Nottingham.pickle"),
        "musedata": ("music", "MuseData.pickle"),
        "ptb": ("text", "a folder with ptb.char.{train,valid,test}.txt"),
        "chars": ("text", "any UTF-8 text file"),
    }
)
"""The data sets `load_problem` reads: name -> (kind, what the data path must be)."""

PAPER_TABLE1 = MappingProxyType(
    {
        "piano": {"MSGD": (6.87, 7.56), "MSGD-C": (6.81, 7.53), "MSGD-CR": (7.01, 7.46)},
        "nottingham": {"MSGD": (3.67, 3.80), "MSGD-C": (3.21, 3.48), "MSGD-CR": (2.95, 3.36)},
        "musedata": {"MSGD": (8.25, 7.11), "MSGD-C": (6.54, 7.00), "MSGD-CR": (6.43, 6.97)},
        "ptb-1": {"MSGD": (1.46, 1.50), "MSGD-C": (1.34, 1.42), "MSGD-CR": (1.36, 1.41)},
        "ptb-5": {"MSGD": None, "MSGD-C": (3.76, 3.89), "MSGD-CR": (3.70, 3.74)},
    }
)
"""Table 1 of the paper: (train, test) per method; None where the paper has no entry."""
PAPER_NAMES = MappingProxyType(
    {
        "piano": "Piano-midi.de (NLL)",
        "nottingham": "Nottingham (NLL)",
        "musedata": "MuseData (NLL)",
        "ptb-1": "Penn Treebank 1 step (bits/char)",
        "ptb-5": "Penn Treebank 5 steps (bits/char)",
    }
)
"""The row names of Table 1, by the keys of `PAPER_TABLE1`."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a natural-problem run; the defaults are those for music
    (`default_config` and the module docstring give the others)."""

    n_hidden: int = 50
    init: str = "smart_tanh"
    learning_rate: float = 0.3
    batch_size: int = BATCH_SIZE
    train_length: int = 100
    threshold: float = 2.0
    alpha0: float = 4.0
    alpha_tau: int | None = None  # updates; None: updates_per_round
    updates_per_round: int | None = None  # None: one epoch
    max_rounds: int = 1000
    patience: int = 30
    eval_length: int = 1000  # text: symbols per evaluation segment
    seed: int = 0

    def __post_init__(self):
        scheme = get_scheme(self.init)  # ValueError lists the valid schemes
        if scheme.activation != "tanh":
            raise ValueError(f"init {self.init!r} has {scheme.activation} units; use a tanh one")
        if scheme.rec_nonzero is not None and self.n_hidden < scheme.rec_nonzero:
            raise SettingError(
                f"init {self.init!r} needs {{n_hidden}} >= {scheme.rec_nonzero}", "n_hidden"
            )
        positive = ("n_hidden", "batch_size", "train_length", "max_rounds", "patience")
        positive += ("eval_length", "alpha_tau", "updates_per_round")
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SettingError(f"{{{name}}} must be >= 1, got {value}", name)
        for name, value, ok in (
            ("learning_rate", self.learning_rate, self.learning_rate > 0),
            ("threshold", self.threshold, self.threshold > 0),
            ("alpha0", self.alpha0, self.alpha0 >= 0),
        ):
            if not ok:
                raise SettingError(
                    f"{{{name}}} must be {'>= 0' if name == 'alpha0' else '> 0'}, got {value}",
                    name,
                )


@dataclasses.dataclass(frozen=True)
class Problem:
    """A natural problem ready to train: the head, training items and evaluation sets."""

    name: str
    head: SequenceHead
    train_items: SequenceSet
    eval_sets: MappingProxyType  # split -> SequenceSet of whole sequences
    info: MappingProxyType
    paper_key: str | None


_TEXT = {"n_hidden": 50, "learning_rate": 1.0, "threshold": 1.0, "patience": 5}
PRESETS = MappingProxyType(
    {
        "music": TrainConfig(),
        "music-quick": TrainConfig(max_rounds=150, patience=20),
        "text": TrainConfig(**_TEXT, max_rounds=100),
        "text-quick": TrainConfig(**_TEXT, max_rounds=10, updates_per_round=200),
    }
)
"""The presets of the module docstring: name -> the complete configuration."""


def default_config(kind: str, quick: bool = False, **overrides: Any) -> TrainConfig:
    """The preset of the module docstring for "music" or "text" (`PRESETS`), with the
    overrides that are not None.

    Examples:
      >>> from pascanu_jax.natural import default_config
      >>> default_config("text", quick=True).max_rounds
      10
      >>> default_config("music", learning_rate=0.5).learning_rate
      0.5
    """
    if kind not in ("music", "text"):
        raise ValueError(f"unknown kind {kind!r}; valid: music, text")
    return preset(PRESETS, kind + ("-quick" if quick else ""), **overrides)


def load_problem(
    dataset: str,
    data: str | os.PathLike | None = None,
    *,
    steps_ahead: int = 1,
    config: TrainConfig = TrainConfig(),
    max_pieces: int | None = None,
    cache_dir: str | os.PathLike | None = "default",
) -> Problem:
    """Load a data set of `DATASETS` as a `Problem`.

    Args:
      dataset: a name of `DATASETS`.
      data: the file or folder (`DATASETS[dataset][1]`); must be None for "jsb".
      steps_ahead: text only: predict the symbol this many steps ahead (the paper: 1 and 5).
      config: train_length and eval_length set how text is cut into items.
      max_pieces: jsb only: keep the first pieces of each split (quick tests).
      cache_dir: jsb only: where the converted chorales are cached (None: no cache).

    Examples:
      >>> import pathlib
      >>> _ = pathlib.Path("tiny.txt").write_text("the cat sat on the mat. " * 50)
      >>> problem = pj.load_problem("chars", "tiny.txt")
      >>> problem.info["unit"], problem.info["vocabulary"]
      ('bits per character', 12)
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    kind, expected = DATASETS[dataset]
    if dataset == "jsb":
        if data is not None:
            raise ValueError(
                "data set jsb reads the music21 corpus (no data path); use jsb-pickle for a file"
            )
    elif data is None:
        raise ValueError(f"data set {dataset} needs a data path: {expected}")
    if kind == "music":
        if steps_ahead != 1:
            raise ValueError("steps_ahead applies to character data only")
        music = (
            load_jsb_chorales(cache_dir, max_pieces)
            if dataset == "jsb"
            else load_piano_roll_pickle(data)
        )
        sets = {s: music_set(music.splits[s]) for s in SPLITS}
        info = {"source": music.source, "unit": NoteHead.unit}
        info["pieces"] = {s: sets[s].n_items for s in SPLITS}
        info["steps"] = {s: sets[s].n_steps for s in SPLITS}
        if dataset == "jsb":
            info["split"] = {s: list(music.names[s]) for s in SPLITS}
        head = NoteHead()
        paper_key = dataset if dataset in PAPER_TABLE1 else None
        return Problem(
            dataset, head, sets["train"], MappingProxyType(sets), MappingProxyType(info), paper_key
        )
    text = load_ptb_chars(data) if dataset == "ptb" else load_text_file(data)
    head = CharHead(text.vocabulary.size, steps_ahead)
    sets = {s: text_set(text.splits[s], steps_ahead, config.eval_length) for s in SPLITS}
    train_items = text_set(text.splits["train"], steps_ahead, config.train_length)
    info = {
        "source": text.source,
        "unit": CharHead.unit,
        "vocabulary": text.vocabulary.size,
        "characters": {s: len(text.splits[s]) for s in SPLITS},
        "predicted": {s: sets[s].n_steps for s in SPLITS},
        "unknown_in_split": dict(text.unknown),
        "steps_ahead": steps_ahead,
    }
    paper_key = f"ptb-{steps_ahead}" if dataset == "ptb" else None
    paper_key = paper_key if paper_key in PAPER_TABLE1 else None
    return Problem(
        dataset, head, train_items, MappingProxyType(sets), MappingProxyType(info), paper_key
    )


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """The hyperparameters as a plain dict (for json and printing).

    Examples:
      >>> from pascanu_jax.natural import config_dict, default_config
      >>> config_dict(default_config("music"))["threshold"]
      2.0
    """
    return dataclasses.asdict(config)
