"""Characters for language modelling, the natural problem of Pascanu et al. (2013, §4.2,
Table 1): Penn Treebank at the character level (Mikolov et al., 2012), or any text file.

A text becomes a stream of symbol ids over a vocabulary taken from the training text. The
model reads symbol x_t and predicts x_{t+k}: k = 1 is ordinary next-character prediction,
k = 5 the paper's modified task ("predict the 5th character in the future").

Penn Treebank character files (`ptb.char.train.txt`, `ptb.char.valid.txt`,
`ptb.char.test.txt`): one sentence per line, characters separated by spaces, "_" marking
word boundaries. Here each token is one symbol ("_" included) and every line ends with the
symbol "\\n" (end of sentence), which is predicted like any other.

Any other text file: read as UTF-8 and cut, by characters, into the first 90 % (train),
the next 5 % (valid) and the last 5 % (test).

Vocabulary: the distinct symbols of the training text, sorted, then one extra symbol
`UNKNOWN` standing for any symbol that the training text lacks; valid and test symbols
outside the training text are mapped to it (and counted), never added to the vocabulary.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence
from types import MappingProxyType

import numpy as np

from pascanu_jax.natural.music import SPLITS

END_OF_SENTENCE = "\n"
UNKNOWN = "\ufffd"  # the replacement character stands for symbols absent from training
TEXT_SPLIT_FRACTIONS = (0.9, 0.05, 0.05)
PTB_FILES = MappingProxyType({s: f"ptb.char.{s}.txt" for s in SPLITS})
PTB_FORMAT = (
    "a folder with ptb.char.train.txt, ptb.char.valid.txt and ptb.char.test.txt: one "
    "sentence per line, single characters separated by spaces, '_' between words"
)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Symbols of the training text plus `UNKNOWN` (the last id)."""

    symbols: tuple[str, ...]

    @classmethod
    def from_text(cls, text: Sequence[str]) -> Vocabulary:
        return cls((*sorted(set(text) - {UNKNOWN}), UNKNOWN))

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def unknown_id(self) -> int:
        return len(self.symbols) - 1

    def encode(self, text: Sequence[str]) -> np.ndarray:
        """int32 ids; symbols outside the vocabulary become `unknown_id`."""
        index = {s: i for i, s in enumerate(self.symbols)}
        return np.fromiter((index.get(s, self.unknown_id) for s in text), np.int32, len(text))

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.symbols[i] for i in ids)


@dataclasses.dataclass(frozen=True)
class TextData:
    """Symbol-id streams by split (int32 arrays), their vocabulary and counts of unknowns."""

    splits: MappingProxyType
    vocabulary: Vocabulary
    unknown: MappingProxyType
    source: str


def encode_splits(texts: dict[str, Sequence[str]], source: str) -> TextData:
    """Vocabulary from texts["train"]; every split encoded with it."""
    for split in SPLITS:
        if len(texts[split]) < 2:
            raise ValueError(f"{source}: the {split!r} text has fewer than 2 characters")
    vocab = Vocabulary.from_text(texts["train"])
    ids = {s: vocab.encode(texts[s]) for s in SPLITS}
    unknown = {s: int(np.sum(ids[s] == vocab.unknown_id)) for s in SPLITS}
    return TextData(MappingProxyType(ids), vocab, MappingProxyType(unknown), source)


def read_ptb_char_file(path: str | os.PathLike) -> list[str]:
    """Symbols of one PTB character file: each line's tokens, then END_OF_SENTENCE.

    Raises FileNotFoundError / ValueError naming the path and the expected format.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected {PTB_FORMAT}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err}); expected {PTB_FORMAT}") from err
    symbols: list[str] = []
    for number, line in enumerate(lines, 1):
        tokens = line.split()
        if not tokens:
            continue  # blank lines carry no sentence
        long = [t for t in tokens if len(t) != 1]
        if long:
            raise ValueError(
                f"{path}, line {number}: token {long[0]!r} is not a single character; "
                f"expected {PTB_FORMAT}"
            )
        symbols.extend(tokens)
        symbols.append(END_OF_SENTENCE)
    if not symbols:
        raise ValueError(f"{path}: no characters; expected {PTB_FORMAT}")
    return symbols


def load_ptb_chars(directory: str | os.PathLike) -> TextData:
    r"""Penn Treebank characters from `directory` (module docstring for the format).

    Examples:
      >>> import pathlib
      >>> text = {"train": "a _ c a t\n", "valid": "a _ c a t\n", "test": "t a c\n"}
      >>> for split, line in text.items():
      ...     _ = pathlib.Path(f"ptb.char.{split}.txt").write_text(line * 3)
      ...
      >>> data = pj.load_ptb_chars(".")
      >>> {split: len(ids) for split, ids in data.splits.items()}, dict(data.unknown)
      ({'train': 18, 'valid': 18, 'test': 12}, {'train': 0, 'valid': 0, 'test': 0})
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such folder; expected {PTB_FORMAT}")
    texts = {s: read_ptb_char_file(directory / PTB_FILES[s]) for s in SPLITS}
    return encode_splits(texts, f"Penn Treebank characters in {directory}")


def load_text_file(
    path: str | os.PathLike, fractions: tuple[float, float, float] = TEXT_SPLIT_FRACTIONS
) -> TextData:
    """Any UTF-8 text file, cut by characters into train / valid / test (`fractions`).

    Examples:
      >>> import pathlib
      >>> _ = pathlib.Path("tiny.txt").write_text("abcabcabca" * 10)
      >>> data = pj.load_text_file("tiny.txt")
      >>> {split: len(ids) for split, ids in data.splits.items()}
      {'train': 90, 'valid': 5, 'test': 5}
    """
    path = pathlib.Path(path)
    expected = "a UTF-8 text file of at least 100 characters"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected {expected}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err}); expected {expected}") from err
    if len(text) < 100:
        raise ValueError(f"{path}: only {len(text)} characters; expected {expected}")
    n_train = int(fractions[0] * len(text))
    n_valid = int(fractions[1] * len(text))
    texts = {
        "train": text[:n_train],
        "valid": text[n_train : n_train + n_valid],
        "test": text[n_train + n_valid :],
    }
    return encode_splits(texts, f"text file {path}")
