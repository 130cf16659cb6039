"""`exomni convert`: takes between a take folder, Audio2Face JSON, Live Link Face CSV and Rhubarb JSON."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.cli import main
from exomni_blender.core.arkit import INDEX
from exomni_blender.core.exchange import LIVELINK_HEADER
from exomni_blender.core.take import Take

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


@pytest.fixture(scope="module")
def phonetic_dir(tmp_path_factory):
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    folder = tmp_path_factory.mktemp("take")
    PhoneticEngine().make_take(TakeRequest(text="Pack my box with five dozen jugs."), Progress()).save(folder)
    return folder


def test_the_command_line_converts_a_take_folder_to_live_link_csv(phonetic_dir, tmp_path):
    result = subprocess.run([sys.executable, "-m", "backend.cli", "convert", str(phonetic_dir), "--to", "livelink",
                             "--out", str(tmp_path / "line.csv")], capture_output=True, text=True, timeout=120,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "line.csv" in result.stdout and "line.wav" in result.stdout
    rows = list(csv.reader((tmp_path / "line.csv").open()))
    take = Take.load(phonetic_dir)
    assert tuple(rows[0]) == LIVELINK_HEADER and len(rows) == take.frames + 1
    assert Take.load(phonetic_dir).audio.size == (tmp_path / "line.wav").stat().st_size // 2 - 22


def test_csv_back_to_a_take_folder_keeps_curves_and_audio(capsys, phonetic_dir, tmp_path):
    assert run(capsys, "convert", phonetic_dir, "--to", "livelink", "--out", tmp_path / "line.csv")[0] == 0
    status, out, err = run(capsys, "convert", tmp_path / "line.csv", "--to", "a2f", "--out", tmp_path / "back")
    assert status == 0, err
    assert "30 fps (timecode)" in err  # the rate it read the recording at is said
    original, back = Take.load(phonetic_dir), Take.load(tmp_path / "back")
    assert back.fps == original.fps and back.frames == original.frames
    np.testing.assert_allclose(back.weights, original.weights, atol=1e-7)
    assert back.sample_rate == original.sample_rate and np.abs(back.audio - original.audio).max() < 1e-4


def test_rhubarb_out_and_back_in(capsys, phonetic_dir, tmp_path):
    status, out, err = run(capsys, "convert", phonetic_dir / "blendshapes.json", "--to", "rhubarb",
                           "--out", tmp_path / "mouth.json")
    assert status == 0, err
    data = json.loads((tmp_path / "mouth.json").read_text())
    assert data["metadata"]["soundFile"] == "mouth.wav" and (tmp_path / "mouth.wav").is_file()
    values = {c["value"] for c in data["mouthCues"]}
    assert {"A", "X"} <= values and len(values) >= 5

    status, out, err = run(capsys, "convert", tmp_path / "mouth.json", "--to", "a2f", "--out", tmp_path / "a2f.json",
                           "--fps", 24)
    assert status == 0, err
    a2f = json.loads((tmp_path / "a2f.json").read_text())
    assert a2f["exportFps"] == 24 and a2f["numFrames"] == len(a2f["weightMat"]) > 0
    jaw = np.asarray(a2f["weightMat"])[:, a2f["facsNames"].index("jawOpen")]
    assert jaw.max() > 0.25 and jaw[0] == 0.0  # opens for vowels, at rest before the line
    assert (tmp_path / "a2f.wav").is_file()


def test_an_audio2face_json_converts_with_the_wav_beside_it_or_without_audio(capsys, tmp_path):
    w = np.zeros((20, 52), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 1, 20)
    Take(fps=30, weights=w).save(tmp_path / "t")
    status, out, err = run(capsys, "convert", tmp_path / "t", "--to", "livelink", "--out", tmp_path, "--no-audio")
    assert status == 0, err
    assert (tmp_path / "t.csv").is_file() and not (tmp_path / "t.wav").exists()
    rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert float(rows[-1][rows[0].index("JawOpen")]) == pytest.approx(1.0)


@pytest.mark.parametrize("make, args, message", [
    (None, ["--to", "rhubarb", "--out", "x.json"], "nothing at"),
    ("notes.txt", ["--to", "rhubarb", "--out", "x.json"], "unknown kind of file"),
    ("bad.csv", ["--to", "a2f", "--out", "x.json"], "first column is 'name'"),
    ("cues.json", ["--to", "livelink", "--out", "x.json"], "should end in .csv"),
    ("cues.json", ["--to", "livelink", "--out", "x.csv", "--fps", "-3"], "--fps must be positive"),
    ("other.json", ["--to", "livelink", "--out", "x.csv"], "neither Audio2Face"),
    ("cues.json", ["--to", "rhubarb", "--out", "y.json", "--mouth-from", "phonemes"], "no phoneme timeline"),
])
def test_bad_input_gets_a_clear_error(capsys, tmp_path, make, args, message):
    files = {"notes.txt": "hello", "bad.csv": "name,value\na,1\n", "other.json": '{"a": 1}',
             "cues.json": json.dumps({"mouthCues": [{"start": 0, "end": 0.5, "value": "D"}]})}
    source = tmp_path / (make or "missing.csv")
    if make:
        source.write_text(files[make])
    args = [tmp_path / a if a.endswith((".json", ".csv")) else a for a in args]
    status, out, err = run(capsys, "convert", source, *args)
    assert status == 2 and err.startswith("exomni: error:") and message in err, err
