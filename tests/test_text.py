"""Character data: the Penn Treebank loader and any text file, on files written here."""

import numpy as np
import pytest

from pascanu_jax.natural import text


def _ptb(folder, train="a b _ c\nb a\n", valid="c a _ b\n", test="a _ z\n"):
    folder.mkdir(exist_ok=True)
    for split, content in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"ptb.char.{split}.txt").write_text(content)
    return folder


def test_ptb_symbols_vocabulary_and_unknowns(tmp_path):
    data = text.load_ptb_chars(_ptb(tmp_path / "ptb"))
    vocab = data.vocabulary
    # training symbols sorted ("\n" < "_" < "a" ...), then the unknown symbol
    assert vocab.symbols == ("\n", "_", "a", "b", "c", text.UNKNOWN)
    assert vocab.decode(data.splits["train"]) == "ab_c\nba\n"
    assert data.splits["train"].dtype == np.int32
    # "z" never occurs in training: it becomes the unknown id, and is counted
    assert data.splits["test"].tolist() == [2, 1, 5, 0]
    assert dict(data.unknown) == {"train": 0, "valid": 0, "test": 1}


def test_ptb_blank_lines_are_skipped(tmp_path):
    data = text.load_ptb_chars(_ptb(tmp_path / "ptb", train="a b\n\n   \nb\n"))
    assert data.vocabulary.decode(data.splits["train"]) == "ab\nb\n"


def test_ptb_errors_name_path_and_format(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing: no such folder; expected a folder"):
        text.load_ptb_chars(tmp_path / "missing")
    folder = _ptb(tmp_path / "ptb")
    (folder / "ptb.char.valid.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"ptb\.char\.valid\.txt: no such file"):
        text.load_ptb_chars(folder)
    _ptb(folder, test="a b\nab c\n")  # a word, not characters
    with pytest.raises(ValueError, match=r"ptb\.char\.test\.txt, line 2: token 'ab' is not a"):
        text.load_ptb_chars(folder)
    _ptb(folder, train="\n\n")
    with pytest.raises(ValueError, match=r"ptb\.char\.train\.txt: no characters; expected"):
        text.load_ptb_chars(folder)
    (folder / "ptb.char.train.txt").write_bytes(b"a \xff b\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        text.load_ptb_chars(folder)


def test_any_text_file_split_90_5_5(tmp_path):
    body = "".join(chr(ord("a") + i % 7) for i in range(200)) + "\u00e9"  # one non-ASCII
    path = tmp_path / "book.txt"
    path.write_text(body, encoding="utf-8")
    data = text.load_text_file(path)
    assert [len(data.splits[s]) for s in ("train", "valid", "test")] == [180, 10, 11]
    assert data.vocabulary.decode(data.splits["train"]) == body[:180]
    assert data.vocabulary.size == 8  # a..g + unknown
    assert data.unknown["test"] == 1  # the "é" at the very end
    with pytest.raises(FileNotFoundError, match=r"nope\.txt: no such file"):
        text.load_text_file(tmp_path / "nope.txt")
    (tmp_path / "short.txt").write_text("tiny")
    with pytest.raises(ValueError, match=r"short\.txt: only 4 characters"):
        text.load_text_file(tmp_path / "short.txt")


def test_vocabulary_round_trip():
    vocab = text.Vocabulary.from_text("hello world")
    ids = vocab.encode("hold? low")
    assert vocab.decode(ids) == f"hold{text.UNKNOWN} low"
    assert vocab.unknown_id == vocab.size - 1 == 8
