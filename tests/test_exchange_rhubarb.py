"""Rhubarb Lip Sync JSON: a real phonetic take's mouth as cues, cues back into ARKit poses, bad files."""

import dataclasses
import json

import numpy as np
import pytest

from exomni_blender.core.arkit import INDEX
from exomni_blender.core.exchange import (RHUBARB_SHAPES, ExchangeFormatError, phoneme_shape, read_rhubarb_json,
                                     rhubarb_cues, rhubarb_json, write_rhubarb_json)
from exomni_blender.core.take import Phoneme, Take, TakeFormatError, encode_wav

LINE = "Bob may pay the man. Then we will go home, maybe by the pool."
BILABIALS = set("pbm")


@pytest.fixture(scope="module")
def phonetic_take():
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    return PhoneticEngine().make_take(TakeRequest(text=LINE), Progress())


def shapes_over(cues, start, end):
    return {c["value"] for c in cues if c["end"] > start and c["start"] < end}


def shape_at(cues, t):
    return next(c["value"] for c in cues if c["start"] <= t < c["end"])


def pauses(take, at_least=0.2):
    """(start, end) of the silences of at least `at_least` s: before, between and after the phonemes."""
    edges = [0.0] + [x for p in take.phonemes for x in (p.start, p.end)] + [take.duration]
    return [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= at_least]


def check_cue_list(cues, duration):
    assert cues[0]["start"] == 0 and cues[-1]["end"] == pytest.approx(duration, abs=0.01)
    for a, b in zip(cues, cues[1:]):
        assert a["end"] == b["start"] and a["value"] != b["value"]
    for c in cues:
        assert c["value"] in RHUBARB_SHAPES and c["end"] > c["start"]
        assert round(c["start"], 2) == c["start"] and round(c["end"], 2) == c["end"]


@pytest.mark.parametrize("source", ["phonemes", "curves"])
def test_lips_close_at_p_b_m_and_rest_in_pauses(phonetic_take, source):
    take = phonetic_take if source == "phonemes" else dataclasses.replace(phonetic_take, phonemes=[])
    cues = rhubarb_cues(take, source)
    check_cue_list(cues, phonetic_take.duration)
    closures = [p for p in phonetic_take.phonemes if p.symbol.strip("ˈˌ") in BILABIALS]
    assert len(closures) >= 8
    for p in closures:
        assert shapes_over(cues, p.start, p.end) & {"A", "X"}, (p, cues)
    gaps = pauses(phonetic_take)
    assert len(gaps) >= 3  # lead-in, the full stop, the tail
    for a, b in gaps:
        assert shape_at(cues, (a + b) / 2) == "X", ((a, b), cues)
    # and the mouth opens in between: the vowel of "Bob", "man", "home" are not closed shapes
    assert {"C", "D", "E", "F"} & {c["value"] for c in cues}
    assert sum(c["value"] in "AX" for c in cues) < len(cues) / 2 + 1


def test_open_vowels_read_as_open_shapes_from_the_curves(phonetic_take):
    cues = rhubarb_cues(phonetic_take, "curves")
    vowel = next(p for p in phonetic_take.phonemes if "ɑ" in p.symbol)  # "Bob"
    assert shapes_over(cues, vowel.start, vowel.end) & {"C", "D"}


def test_the_json_has_rhubarbs_layout(phonetic_take, tmp_path):
    path = write_rhubarb_json(phonetic_take, tmp_path / "line.json", sound_file="line.wav")
    data = json.loads(path.read_text())
    assert set(data) == {"metadata", "mouthCues"}
    assert data["metadata"] == {"soundFile": "line.wav", "duration": round(phonetic_take.duration, 2)}
    assert all(set(c) == {"start", "end", "value"} for c in data["mouthCues"])
    assert data == rhubarb_json(phonetic_take, "line.wav")


def test_phonemes_map_to_rhubarbs_shapes():
    assert [phoneme_shape(s) for s in ("p", "b", "m", "f", "v", "w", "ɹ", "ˈɑː", "ˈaɪ", "ˈæ", "ɛ", "iː", "ɪ",
                                       "ˈuː", "oʊ", "əʊ", "ˈɔː", "ɜː", "ɚ", "t", "s", "k", "ʃ", "")] == \
        list("AAAGGFEDDCCBBFFFEEEBBBBX")
    assert phoneme_shape("l", 0.12) == "H" and phoneme_shape("l", 0.03) == "C"


def cue_file(path, cues, duration=None, sound=""):
    data = {"metadata": {"soundFile": sound, "duration": duration or cues[-1][1]},
            "mouthCues": [{"start": a, "end": b, "value": v} for a, b, v in cues]}
    path.write_text(json.dumps(data))
    return path


def test_rhubarb_shapes_become_arkit_poses_open_for_d(tmp_path):
    cues = [(0.0, 0.3, "X"), (0.3, 0.6, "B"), (0.6, 0.9, "C"), (0.9, 1.3, "D"), (1.3, 1.6, "A"), (1.6, 1.9, "F"),
            (1.9, 2.2, "G"), (2.2, 2.5, "X")]
    take = read_rhubarb_json(cue_file(tmp_path / "line.json", cues), fps=30)
    assert take.fps == 30 and take.frames == 75 and not take.has_audio and take.text == "line"

    def at(t, name):
        return take.weights[int(round(t * 30)), INDEX[name]]

    assert at(1.1, "jawOpen") > at(0.75, "jawOpen") > at(0.45, "jawOpen") > at(1.45, "jawOpen")
    assert at(1.1, "jawOpen") >= 0.5
    assert at(0.15, "jawOpen") == 0 and at(2.35, "jawOpen") == 0  # X is the face at rest
    assert at(1.45, "mouthPressLeft") > 0.2 and at(1.75, "mouthPucker") > 0.5 and at(2.05, "mouthRollLower") > 0.4
    # a short blend into each cue, not a jump: half-way across the C -> D boundary the jaw is in between
    mid = take.weights[27, INDEX["jawOpen"]]  # t = 0.9
    assert at(0.75, "jawOpen") < mid < at(1.1, "jawOpen")


def test_cues_read_back_give_the_same_shapes(phonetic_take, tmp_path):
    written = json.loads(write_rhubarb_json(phonetic_take, tmp_path / "line.json").read_text())["mouthCues"]
    again = rhubarb_cues(read_rhubarb_json(tmp_path / "line.json", fps=60), "curves")
    held = [c for c in written if c["end"] - c["start"] >= 0.08]
    assert len(held) >= 10
    for c in held:  # H (tongue up) has no ARKit shape of its own and comes back as the open C
        assert shape_at(again, (c["start"] + c["end"]) / 2) == c["value"].replace("H", "C"), (c, again)


def test_the_sound_file_or_a_wav_beside_is_the_audio(tmp_path):
    (tmp_path / "speech.wav").write_bytes(encode_wav(np.full(16000, 0.1, np.float32), 16000))
    (tmp_path / "other.wav").write_bytes(encode_wav(np.zeros(800, np.float32), 8000))
    take = read_rhubarb_json(cue_file(tmp_path / "cues.json", [(0, 1.0, "D")], sound=r"C:\work\speech.wav"))
    assert take.sample_rate == 16000 and take.duration == pytest.approx(1.0)
    take = read_rhubarb_json(cue_file(tmp_path / "other.json", [(0, 1.0, "D")], sound="missing.wav"))
    assert take.sample_rate == 8000  # same name as the JSON


def test_a_take_without_phonemes_can_still_be_exported_from_its_curves():
    w = np.zeros((30, 52), np.float32)
    w[10:20, INDEX["jawOpen"]] = 0.6
    take = Take(fps=30, weights=w)
    assert [c["value"] for c in rhubarb_cues(take)] == ["X", "D", "X"]
    with pytest.raises(ExchangeFormatError, match="no phoneme timeline"):
        rhubarb_cues(take, "phonemes")
    spoken = dataclasses.replace(take, phonemes=[Phoneme("m", 0.1, 0.2), Phoneme("ɑ", 0.2, 0.5)])
    assert [c["value"] for c in rhubarb_cues(spoken)] == ["X", "A", "D", "X"]


@pytest.mark.parametrize("data, words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a Rhubarb Lip Sync JSON"),
    ('{"metadata": {}}', "no \\\"mouthCues\\\""),
    ('{"mouthCues": [{"start": 0, "end": 1}]}', "cue 0 must be an object with start, end and value"),
    ('{"mouthCues": [{"start": 0, "end": 1, "value": "Q"}]}', "value 'Q'.*A to H and X"),
    ('{"mouthCues": [{"start": "soon", "end": 1, "value": "A"}]}', "must be seconds"),
    ('{"mouthCues": [{"start": 2, "end": 1, "value": "A"}]}', "start before end"),
    ('{"mouthCues": []}', "nothing to animate"),
])
def test_malformed_rhubarb_files_say_what_is_wrong(tmp_path, data, words):
    path = tmp_path / "bad.json"
    path.write_text(data)
    with pytest.raises(ExchangeFormatError, match=words) as err:
        read_rhubarb_json(path)
    assert isinstance(err.value, TakeFormatError) and str(path) in str(err.value)
