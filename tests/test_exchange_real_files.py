"""Exchange formats on files other tools made (tests/data/exchange/README.md says where each comes from):
a Live Link Face recording from the iPhone app, Rhubarb Lip Sync output, and Audio2Face's export layout."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from backend.cli import main
from exomni_blender.core.exchange import (LIVELINK_BLENDSHAPES, LIVELINK_ROTATIONS, load_any, read_livelink_csv,
                                          rhubarb_cues, write_livelink_csv, write_rhubarb_json)
from exomni_blender.core.take import Take, decode_wav, encode_wav

DATA = Path(__file__).parent / "data" / "exchange"
LIVELINK = DATA / "MySlate_3_iPhone.csv"
RHUBARB = DATA / "threelittlekittens_rhubarb.json"
RHUBARB_CUE_LIST = DATA / "en_male_electricity_cues.json"


def _rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_a_live_link_recording_round_trips_rows_and_timecode(tmp_path):
    take = read_livelink_csv(LIVELINK)
    header, rows = _rows(LIVELINK)
    assert take.fps == 60.0 and take.frames == len(rows)
    out = write_livelink_csv(take, tmp_path / "again.csv")
    header2, rows2 = _rows(out)
    assert header2[:len(header)] == header and len(rows2) == len(rows)
    # The timecode goes on from where the recording began, frame by frame at the recording's rate.
    assert rows2[0][0] == rows[0][0] == "00:32:09:07.867"
    assert rows2[-1][0][:8] == rows[-1][0][:8]
    names = list(LIVELINK_BLENDSHAPES) + list(LIVELINK_ROTATIONS)
    before = np.array([[float(r[header.index(n)]) for n in names] for r in rows])
    after = np.array([[float(r[header2.index(n)]) for n in names] for r in rows2])
    # The app's timecodes wobble by a thousandth of a frame and are resampled onto a regular grid:
    # the values survive to that precision.
    assert np.max(np.abs(before - after)) < 0.05
    assert np.mean(np.abs(before - after)) < 1e-3


def _shapes(cues, times):
    starts = np.array([float(c["start"]) for c in cues])
    index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(cues) - 1)
    ends = np.array([float(c["end"]) for c in cues])[index]
    return np.where(times < ends, np.array([c["value"] for c in cues])[index], "X")


def test_rhubarb_output_round_trips_exactly(tmp_path):
    original = json.loads(RHUBARB.read_text())["mouthCues"]
    take, kind = load_any(RHUBARB)
    assert kind == "rhubarb" and take.duration == pytest.approx(356.57, abs=0.04)
    written = json.loads(write_rhubarb_json(take, tmp_path / "again.json").read_text())
    times = np.arange(0.0, 356.57, 0.005)
    before, after = _shapes(original, times), _shapes(written["mouthCues"], times)
    assert np.mean(before == after) >= 0.97
    assert np.all(after[before == "A"] == "A")  # the lips close where they closed
    assert written["mouthCues"] == [{"start": c["start"], "end": c["end"], "value": c["value"]} for c in original]
    assert written["metadata"]["duration"] == pytest.approx(356.57)


def test_rhubarb_cues_follow_the_curves_once_they_change():
    take, _ = load_any(RHUBARB)
    kept = rhubarb_cues(take)
    edited = Take(**{**take.__dict__, "weights": take.weights * 0.2})  # a much quieter mouth
    assert rhubarb_cues(edited) != kept


def test_rhubarb_times_written_as_strings_read_as_seconds():
    take, kind = load_any(RHUBARB_CUE_LIST)
    cues = json.loads(RHUBARB_CUE_LIST.read_text())["mouthCues"]
    assert kind == "rhubarb" and take.frames == round(float(cues[-1]["end"]) * 30)
    assert rhubarb_cues(take) == [{"start": float(c["start"]), "end": float(c["end"]), "value": c["value"]}
                                  for c in cues]


def test_a_bare_list_of_rhubarb_cues_reads_as_rhubarb(tmp_path):
    cues = [{"start": 0.0, "end": 0.1, "value": "X"}, {"start": 0.1, "end": 0.25, "value": "A"},
            {"start": 0.25, "end": 0.4, "value": "D"}, {"start": 0.4, "end": 0.5, "value": "X"}]
    path = tmp_path / "cues.json"
    path.write_text(json.dumps(cues))
    take, kind = load_any(path)
    assert kind == "rhubarb" and take.frames == 15 and rhubarb_cues(take) == cues


def _a2f_export(path: Path, track_path: str, frames: int = 45) -> Path:
    """An export in the layout Audio2Face writes: its ARKit names, an absolute trackPath from the solving machine."""
    from exomni_blender.core.arkit import ARKIT_52

    rng = np.random.default_rng(3)
    path.write_text(json.dumps({"exportFps": 30, "trackPath": track_path, "numPoses": 52, "numFrames": frames,
                                "facsNames": list(ARKIT_52), "weightMat": rng.uniform(0, 1, (frames, 52)).tolist()},
                               indent=4))
    return path


def _wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    path.write_bytes(encode_wav(0.1 * np.sin(np.arange(int(seconds * rate)) * 0.07), rate))
    return path


def test_an_audio2face_export_pairs_with_its_own_wav_among_others(tmp_path, capsys):
    _wav(tmp_path / "bu.wav", 1.5)
    _wav(tmp_path / "other.wav", 0.5)
    export = _a2f_export(tmp_path / "bu.wav_bsweight.json",
                         "/home/someone/.local/share/ov/pkg/audio2face-data/tracks/bu.wav")
    take, kind = load_any(export)
    assert kind == "a2f" and take.duration == pytest.approx(1.5) and take.meta["audio"]["file"] == "bu.wav"
    assert main(["convert", str(export), "--to", "a2f", "--out", str(tmp_path / "out")]) == 0
    samples, rate = decode_wav((tmp_path / "out" / "audio.wav").read_bytes())
    assert samples.size / rate == pytest.approx(1.5, abs=1e-3)
    assert json.loads((tmp_path / "out" / "blendshapes.json").read_text())["trackPath"] == "audio.wav"


def test_the_track_path_names_the_wav_when_the_export_is_named_otherwise(tmp_path):
    _wav(tmp_path / "line_07.wav", 0.8)
    _wav(tmp_path / "line_08.wav", 1.2)
    export = _a2f_export(tmp_path / "a2f_export_bsweight.json", "C:\\Users\\someone\\takes\\line_08.wav")
    take, _ = load_any(export)
    assert take.meta["audio"]["file"] == "line_08.wav" and take.duration == pytest.approx(1.2)


def test_no_audio_is_said_and_never_written_empty(tmp_path, capsys):
    _wav(tmp_path / "one.wav", 0.5)
    _wav(tmp_path / "two.wav", 0.5)
    export = _a2f_export(tmp_path / "bu.wav_bsweight.json", "/elsewhere/bu.wav")
    assert main(["convert", str(export), "--to", "a2f", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "no audio found for bu.wav_bsweight.json" in err and "bu.wav" in err and "one.wav" in err
    assert not (tmp_path / "out" / "audio.wav").exists()
    assert Take.load(tmp_path / "out").has_audio is False
    assert main(["convert", str(export), "--to", "livelink", "--out", str(tmp_path / "bu.csv")]) == 0
    assert not (tmp_path / "bu.wav").exists()
