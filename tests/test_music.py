"""Piano rolls: the music21 conversion against bars read by hand, the pickle loader on files
written here, and the fixed split of the chorales."""

import pickle

import numpy as np
import pytest

from pascanu_jax.natural import music

# BWV 140.7 ("Gloria sei dir gesungen", E-flat major, 4/4, no pickup), bars 1-4, read from
# the score note by note (soprano, alto, tenor, bass; MIDI: C4 = 60), one set per quarter.
# Bar 1: S Eb4 G4 Bb4(dotted quarter) Bb4(eighth, off the beat); A Bb3 Eb4 G4 F4;
#        T G3 Bb3 Eb4 D4; B Eb3(half, tied to an eighth) G3(eighth) Bb3 Ab3(eighths).
# Bar 2: S Bb4 Bb4 C5(half); A G4 F4 G4 F4; T Eb4 Bb3 Bb3 A3;
#        B G3 F3 Eb3 D3 Eb3 C3 (eighths) F3.
# Bar 3: all four hold a half note (fermata: S Bb4, A F4, T D4, B Bb2), rest together on
#        beat 3, then S Bb4, A F4, T D4, B Bb3 Ab3 (eighths).
# Bar 4: S Eb5 Bb4 Eb5 F5(eighths) G5; A Bb4(dotted quarter) Ab4 G4 Ab4(eighths) Bb4;
#        T Eb4 Eb4 Bb3 Eb4; B G3 Ab3 G3 F3 (eighths) Eb3 Eb4.
BWV140_7_BARS_1_TO_4 = [
    {51, 55, 58, 63},  # beat 1: Eb3 G3 Bb3 Eb4
    {51, 58, 63, 67},  # beat 2: bass Eb3 still held
    {51, 63, 67, 70},  # beat 3: the tied Eb3 eighth sounds on the beat
    {58, 62, 65, 70},  # beat 4: soprano's dotted Bb4 still sounds; bass Bb3 on the beat
    {55, 63, 67, 70},
    {51, 58, 65, 70},
    {51, 58, 67, 72},
    {53, 57, 65, 72},  # C5 held from beat 3
    {46, 62, 65, 70},  # fermata chord
    {46, 62, 65, 70},  # ... held: a roll does not mark re-articulation
    set(),  # everyone rests
    {58, 62, 65, 70},
    {55, 63, 70, 75},
    {55, 63, 70},  # soprano Bb4 and the alto's held Bb4: one pitch
    {51, 58, 67, 75},
    {63, 70, 79},  # tenor and bass both on Eb4
]

# BWV 66.6 (F-sharp minor) opens with a one-quarter pickup of eighths: S C#5 B4, A E4 (a
# quarter), T A3 B3, B A3 G#3; step 0 holds the first eighth of each voice. Bar 1, beat 1:
# S A4, A F#4, T C#4, B F#3.
BWV66_6_FIRST_STEPS = [{57, 64, 73}, {54, 61, 66, 69}]


def test_bwv140_7_hand_read_bars():
    from music21 import corpus  # the test extra installs music21

    steps = music.pitch_sets_from_score(corpus.parse("bach/bwv140.7"))
    assert len(steps) == 68  # 17 bars of 4/4
    assert [set(s) for s in steps[:16]] == BWV140_7_BARS_1_TO_4
    roll = music.piano_roll(steps)
    assert roll.shape == (68, 88)
    assert roll[0].sum() == 4 and roll[0, 63 - 21] == 1 and roll[10].sum() == 0


def test_bwv66_6_pickup():
    from music21 import corpus

    steps = music.pitch_sets_from_score(corpus.parse("bach/bwv66.6"))
    assert len(steps) == 36  # pickup of 1 + 8 bars of 4 + a final bar of 3
    assert [set(s) for s in steps[:2]] == BWV66_6_FIRST_STEPS


def test_piano_roll_round_trip_and_range():
    sets = [(21, 60, 108), (), (64, 67)]
    roll = music.piano_roll(sets)
    assert roll[0, 0] == roll[0, 39] == roll[0, 87] == 1 and roll.sum() == 5
    assert music.pitch_sets(roll) == [(21, 60, 108), (), (64, 67)]
    with pytest.raises(ValueError, match=r"step 1: note 109"):
        music.piano_roll([(60,), (109,)])
    with pytest.raises(ValueError, match=r"note 60\.5"):
        music.piano_roll([(60.5,)])


def _write(path, obj, protocol=2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_pickle_loader_reads_the_standard_layout(tmp_path):
    data = {
        "train": [[(60, 64), [67], ()], [[21, 108]]],
        "valid": [[(60.0,), (62,)]],  # integral floats are accepted
        "test": [[(72,)]],
    }
    loaded = music.load_piano_roll_pickle(_write(tmp_path / "tiny.pickle", data))
    assert [len(p) for p in loaded.splits["train"]] == [3, 1]
    assert music.pitch_sets(loaded.splits["train"][0]) == [(60, 64), (67,), ()]
    assert music.pitch_sets(loaded.splits["valid"][0]) == [(60,), (62,)]
    assert loaded.splits["test"][0].dtype == np.float32
    assert loaded.names["train"] == ["train[0]", "train[1]"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a pickle at all", "cannot be unpickled"),
        ({"train": [[(60,)]], "valid": [[(60,)]]}, "not a dict with keys"),
        ([[(60,)]], "holds list"),
        ({"train": [[(60,)]], "valid": [[(60,)]], "test": []}, "'test' is not a non-empty"),
        ({"train": [[(60,)]], "valid": [[(60,)]], "test": [[60]]}, "step 0 is 60"),
        ({"train": [[(60,)]], "valid": [[(200,)]], "test": [[(60,)]]}, "note 200"),
    ],
)
def test_pickle_loader_names_path_and_format_on_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.pickle"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        _write(path, content)
    with pytest.raises(ValueError, match=message) as err:
        music.load_piano_roll_pickle(path)
    assert str(path) in str(err.value) and "'train', 'valid' and 'test'" in str(err.value)


def test_pickle_loader_refuses_objects_and_missing_files(tmp_path):
    import datetime

    path = _write(tmp_path / "evil.pickle", {"train": datetime.date(2013, 1, 1)})
    with pytest.raises(ValueError, match=r"refusing to load datetime\.date"):
        music.load_piano_roll_pickle(path)
    with pytest.raises(FileNotFoundError, match=r"nope\.pickle: no such file; expected a pickled"):
        music.load_piano_roll_pickle(tmp_path / "nope.pickle")


def test_split_by_piece_is_fixed_disjoint_and_seeded():
    names = [f"piece{i}" for i in range(50)]
    split = music.split_by_piece(names)
    assert [len(split[s]) for s in music.SPLITS] == [30, 10, 10]
    assert sorted(n for names_ in split.values() for n in names_) == sorted(names)
    assert music.split_by_piece(list(reversed(names))) == split  # order of input irrelevant
    assert music.split_by_piece(names, seed=1)["test"] != split["test"]


def test_jsb_chorale_split_over_the_corpus():
    names = music.jsb_chorale_names()
    assert len(names) == 350 and "bach/bwv140.7" in names
    split = music.split_by_piece(names)
    assert [len(split[s]) for s in music.SPLITS] == [210, 70, 70]


def test_missing_music21_says_how_to_install(monkeypatch):
    import importlib

    real = importlib.import_module

    def fail(name, *args):
        if name == "music21":
            raise ImportError("No module named 'music21'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fail)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[natural\]"'):
        music.jsb_chorale_names()
