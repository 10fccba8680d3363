"""Polyphonic music as piano rolls, for the natural problems of Pascanu et al. (2013, §4.2,
Table 1).

A piece is a sequence of time steps; a step is the set of MIDI pitches sounding, within the
88 keys of the piano (21 = A0 .. 108 = C8). As an array, a piano roll is (T, 88) with
roll[t, p - 21] = 1 when pitch p sounds at step t.

Two sources:

- The standard pickles of Boulanger-Lewandowski et al. (2012) -- JSB Chorales, Piano-midi.de,
  Nottingham, MuseData -- which the paper uses: a dict with keys "train", "valid", "test",
  each a list of pieces, each a list of steps, each a list/tuple of MIDI note numbers
  (`load_piano_roll_pickle`).
- The J. S. Bach chorales shipped with music21's corpus, which work offline
  (`load_jsb_chorales`): the 350 distinct files of the 371 Riemenschneider chorales,
  converted by `pitch_sets_from_score` and split by piece with a fixed seeded rule
  (`split_by_piece`).

Conversion of a score (`pitch_sets_from_score`), on a grid of quarter notes:

- Step t is the instant t quarter notes after the start of the score (the first beat of a
  pickup bar is step 0). The pitches at step t are those of every note (all parts) sounding
  at that instant: onset <= t < onset + duration.
- Ties: a tied note is held, so its pitch stays in every step it covers; as in the standard
  pickles, a roll does not distinguish a held note from a repeated one.
- Rests add nothing; a step where every part rests is the empty set.
- Chords contribute all their pitches; a pitch sounding in two parts appears once.
- Notes shorter than a quarter (and notes starting off the beat) appear only in the steps
  whose instant they cover: of two eighths on a beat, the first is kept and the second,
  off the beat, is dropped; a dotted quarter on beat 1 also sounds on beat 2. Grace notes
  (no duration) never sound at an instant and are dropped.
- Written repeats are not expanded; pitches are sounding pitches (transposing parts are
  converted); the number of steps is ceil(score length in quarter notes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import os
import pathlib
import pickle
from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from pascanu_jax.outputs.files import default_cache_dir, write_json

MIDI_LOW = 21  # A0, the lowest piano key
MIDI_HIGH = 108  # C8, the highest
N_NOTES = MIDI_HIGH - MIDI_LOW + 1  # 88
SPLITS = ("train", "valid", "test")

# The offline data set: a fixed split by piece, decided by a salted hash of each piece's name
# (stable across numpy and Python versions, unlike a shuffled permutation). The fractions are
# those of the JSB pickle of Boulanger-Lewandowski et al. (229 / 76 / 77 pieces).
JSB_SPLIT_SEED = 2013
JSB_SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
# Bump when the conversion changes, so stale caches are not reused.
CONVERSION_VERSION = 1

PICKLE_FORMAT = (
    "a pickled dict with keys 'train', 'valid' and 'test', each a list of pieces, each a "
    f"list of time steps, each a list or tuple of MIDI note numbers in {MIDI_LOW}..{MIDI_HIGH} "
    "(the piano-roll pickles of Boulanger-Lewandowski et al., 2012)"
)

PitchSets = list[tuple[int, ...]]


def import_music21() -> Any:
    """music21, imported on first use: only the offline chorales need it."""
    try:
        return importlib.import_module("music21")
    except ImportError as err:
        raise ImportError(
            "the J. S. Bach chorales of the music21 corpus need music21; install it with "
            'pip install -e ".[natural]"'
        ) from err


def pitch_sets_from_score(score: Any) -> PitchSets:
    """The sounding pitches of a music21 score at every quarter note (module docstring).

    Returns:
      a list of T sorted tuples of MIDI numbers, T = ceil(length of the score in quarters).

    Examples:
      >>> from music21 import chord, note, stream
      >>> score = stream.Stream([chord.Chord(["C4", "E4"], quarterLength=2), note.Note("G4")])
      >>> pj.pitch_sets_from_score(score)
      [(60, 64), (60, 64), (67,)]
    """
    if getattr(score, "atSoundingPitch", True) is False:
        score = score.toSoundingPitch()
    steps: list[set[int]] = [set() for _ in range(math.ceil(score.highestTime))]
    for element in score.recurse().notes:  # notes and chords of every part, rests excluded
        onset = element.getOffsetInHierarchy(score)
        end = onset + element.quarterLength
        # Instants t with onset <= t < end (none for grace notes, whose length is 0).
        for t in range(math.ceil(onset), min(math.ceil(end), len(steps))):
            steps[t].update(p.midi for p in element.pitches)
    return [tuple(sorted(s)) for s in steps]


def piano_roll(pitch_sets: Sequence[Iterable[int]], where: str = "piece") -> np.ndarray:
    """(T, 88) float32 piano roll from T sets of MIDI numbers; roll[t, p - 21] = 1.

    Raises ValueError (naming `where`) for a pitch outside 21..108 or not an integer.

    Examples:
      >>> roll = pj.piano_roll([{60, 64, 67}, set(), {21}])  # a C major chord, a rest, the lowest A
      >>> roll.shape, roll.sum(axis=1)
      ((3, 88), array([3., 0., 1.], dtype=float32))
    """
    roll = np.zeros((len(pitch_sets), N_NOTES), np.float32)
    for t, notes in enumerate(pitch_sets):
        for note in notes:
            if not float(note).is_integer() or not MIDI_LOW <= note <= MIDI_HIGH:
                raise ValueError(
                    f"{where}, step {t}: note {note!r} is not a MIDI number in "
                    f"{MIDI_LOW}..{MIDI_HIGH}"
                )
            roll[t, int(note) - MIDI_LOW] = 1.0
    return roll


def pitch_sets(roll: np.ndarray) -> PitchSets:
    """Inverse of `piano_roll`: the sorted MIDI numbers of each step."""
    return [tuple(int(i) + MIDI_LOW for i in np.flatnonzero(row)) for row in np.asarray(roll)]


@dataclasses.dataclass(frozen=True)
class MusicData:
    """Piano rolls by split: splits[name] is a list of (T_i, 88) float32 arrays.

    names[name] lists the pieces' names (or indices in the pickle) in the same order.
    """

    splits: MappingProxyType
    names: MappingProxyType
    source: str

    def __post_init__(self):
        for split in SPLITS:
            if not self.splits.get(split):
                raise ValueError(f"{self.source}: the {split!r} split holds no pieces")


# Only plain containers and numbers may come out of a piano-roll pickle (numpy scalars and
# arrays included); anything else is refused rather than executed.
_PICKLE_ALLOWED = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("__builtin__", "set"),
        ("__builtin__", "frozenset"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_piano_roll_pickle(path: str | os.PathLike) -> MusicData:
    """Load a piano-roll pickle of Boulanger-Lewandowski et al. (2012).

    Expected format: `PICKLE_FORMAT`. Pickles written by Python 2 load too (latin-1). Only
    containers and numbers are unpickled; any other object is refused.

    Raises:
      FileNotFoundError: no file at `path` (the message gives the expected format).
      ValueError: the file is not such a pickle; the message names the path, what is wrong
        and the expected format.

    Examples:
      >>> import pickle
      >>> pieces = {"train": [[[60, 64], [62]]], "valid": [[[60]]], "test": [[[], [67]]]}
      >>> pickle.dump(pieces, open("tiny.pickle", "wb"))
      >>> data = pj.load_piano_roll_pickle("tiny.pickle")
      >>> [roll.shape for roll in data.splits["train"]]
      [(2, 88)]
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected {PICKLE_FORMAT}")

    def bad(why: str) -> ValueError:
        return ValueError(f"{path}: {why}; expected {PICKLE_FORMAT}")

    try:
        with path.open("rb") as f:
            data = _DataUnpickler(f, encoding="latin1").load()
    except Exception as err:  # any unpickling failure means: not this format
        raise bad(f"cannot be unpickled ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict) or not all(k in data for k in SPLITS):
        keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise bad(f"holds {keys}, not a dict with keys {list(SPLITS)}")
    splits, names = {}, {}
    for split in SPLITS:
        pieces = data[split]
        if not isinstance(pieces, list | tuple) or not pieces:
            raise bad(f"{split!r} is not a non-empty list of pieces")
        rolls = []
        for i, piece in enumerate(pieces):
            if isinstance(piece, str | bytes) or not hasattr(piece, "__len__") or not piece:
                raise bad(f"{split!r} piece {i} is not a non-empty list of time steps")
            for t, notes in enumerate(piece):
                if isinstance(notes, str | bytes) or not hasattr(notes, "__iter__"):
                    raise bad(f"{split!r} piece {i}, step {t} is {notes!r}, not a list of notes")
            try:
                rolls.append(piano_roll(piece, where=f"{split!r} piece {i}"))
            except (ValueError, TypeError) as err:
                raise bad(str(err)) from err
        splits[split] = rolls
        names[split] = [f"{split}[{i}]" for i in range(len(rolls))]
    return MusicData(MappingProxyType(splits), MappingProxyType(names), str(path))


def split_by_piece(
    names: Sequence[str],
    seed: int = JSB_SPLIT_SEED,
    fractions: tuple[float, float, float] = JSB_SPLIT_FRACTIONS,
) -> dict[str, list[str]]:
    """A fixed, seeded split by piece: train / valid / test lists of names.

    The pieces are ordered by sha256(f"{seed}:{name}") and cut at the cumulative fractions
    (rounded to whole pieces; the test split takes the rest). The rule needs no random
    number generator, so the split is the same on every machine and version.
    """
    if len(set(names)) != len(names):
        raise ValueError("piece names must be distinct")
    order = sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    n_train = round(fractions[0] * len(order))
    n_valid = round(fractions[1] * len(order))
    return {
        "train": order[:n_train],
        "valid": order[n_train : n_train + n_valid],
        "test": order[n_train + n_valid :],
    }


def jsb_chorale_names() -> list[str]:
    """Corpus names ("bach/bwv269", ...) of the distinct Riemenschneider chorales in music21.

    The 371 Riemenschneider numbers map to 350 distinct files (some harmonisations appear
    twice in that numbering); sorted.
    """
    music21 = import_music21()
    iterator = music21.corpus.chorales.Iterator(returnType="filename")
    return sorted(set(iterator))


def chorale_pitch_sets(names: Sequence[str], cache_dir: str | os.PathLike | None) -> dict:
    """{name: pitch sets} for corpus chorales, parsed once and cached as JSON.

    The cache file is keyed by the music21 version and CONVERSION_VERSION; parsing all 350
    chorales takes about a minute, reading the cache a fraction of a second.
    """
    music21 = import_music21()
    cache = None
    cached: dict = {}
    if cache_dir is not None:
        tag = f"m21-{music21.VERSION_STR}-v{CONVERSION_VERSION}"
        cache = pathlib.Path(cache_dir) / f"jsb_chorales_{tag}.json"
        if cache.is_file():
            try:
                cached = json.loads(cache.read_text())
            except ValueError:
                cached = {}  # a damaged cache is rebuilt
    missing = [n for n in names if n not in cached]
    for name in missing:
        cached[name] = pitch_sets_from_score(music21.corpus.parse(name))
    if cache is not None and missing:
        write_json(cache, cached)
    return {n: [tuple(s) for s in cached[n]] for n in names}


def load_jsb_chorales(
    cache_dir: str | os.PathLike | None = "default",
    max_pieces: int | None = None,
    seed: int = JSB_SPLIT_SEED,
) -> MusicData:
    """The music21 Bach chorales as piano rolls, split by `split_by_piece`.

    Args:
      cache_dir: where converted chorales are cached ("default": `default_cache_dir()`;
        None: no cache).
      max_pieces: keep only the first pieces of each split (in split order), for quick tests;
        the split itself is always decided over all 350 chorales.
      seed: the split's salt.

    Examples:
      >>> # not run: converts the music21 corpus (30 s, then cached); scripts/natural.py runs it
      >>> data = pj.load_jsb_chorales()  # doctest: +SKIP
      >>> {split: len(ids) for split, ids in data.splits.items()}  # doctest: +SKIP
    """
    if cache_dir == "default":
        cache_dir = default_cache_dir()
    split = split_by_piece(jsb_chorale_names(), seed)
    if max_pieces is not None:
        split = {k: v[:max_pieces] for k, v in split.items()}
    sets = chorale_pitch_sets([n for names in split.values() for n in names], cache_dir)
    rolls = {k: [piano_roll(sets[n], where=n) for n in v] for k, v in split.items()}
    return MusicData(
        MappingProxyType(rolls),
        MappingProxyType(split),
        f"music21 corpus, Bach chorales (split seed {seed})",
    )
