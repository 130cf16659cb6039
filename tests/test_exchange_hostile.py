"""Exchange files from elsewhere, written to hurt: a path that points out of the file's folder, times
that would need tens of GB of frames, JSON nested past any parser's stack, a Live Link recording whose
rows all carry one timecode. Each is refused (or confined) in words; none runs the machine out."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from exomni_blender.core.exchange import ExchangeFormatError, load_any, read_livelink_csv, read_rhubarb_json
from exomni_blender.core.exchange.livelink import LIVELINK_BLENDSHAPES
from exomni_blender.core.take import encode_wav


def _wav(path, seconds=0.5, rate=16000):
    path.write_bytes(encode_wav(np.full(int(seconds * rate), 0.1, np.float32), rate))
    return path


def _a2f(path, track):
    path.write_text(json.dumps({"exportFps": 30, "trackPath": track, "numPoses": 1, "numFrames": 2,
                                "facsNames": ["jawOpen"], "weightMat": [[0.1], [0.2]]}))
    return path


@pytest.mark.parametrize("track", ["../outside/secret.wav", "OUTSIDE_ABSOLUTE", "sub/../../outside/secret.wav"])
def test_a_track_path_never_reaches_out_of_the_files_folder(tmp_path, track):
    (tmp_path / "outside").mkdir()
    secret = _wav(tmp_path / "outside" / "secret.wav")
    folder = tmp_path / "export"
    folder.mkdir()
    track = str(secret) if track == "OUTSIDE_ABSOLUTE" else track
    take, _ = load_any(_a2f(folder / "line.json", track))
    assert not take.has_audio and take.meta["audio"]["file"] == ""


def test_a_track_path_inside_the_folder_or_by_name_is_still_found(tmp_path):
    (tmp_path / "sounds").mkdir()
    _wav(tmp_path / "sounds" / "line.wav")
    take, _ = load_any(_a2f(tmp_path / "curves.json", "sounds/line.wav"))
    assert take.has_audio
    _wav(tmp_path / "take7.wav")  # an absolute path from another machine: its name, beside the file
    take, _ = load_any(_a2f(tmp_path / "other.json", "C:\\\\Users\\\\anim\\\\take7.wav"))
    assert take.has_audio and take.meta["audio"]["file"].endswith("take7.wav")


def test_a_rhubarb_cue_far_in_the_future_is_refused_at_once(tmp_path):
    path = tmp_path / "cues.json"
    path.write_text(json.dumps({"metadata": {"soundFile": "", "duration": "1.0"},
                                "mouthCues": [{"start": 0.0, "end": 0.5, "value": "B"},
                                              {"start": 0.5, "end": 1e7, "value": "X"}]}))
    t0 = time.perf_counter()
    with pytest.raises(ExchangeFormatError, match="over the 4 hours"):
        read_rhubarb_json(path)
    assert time.perf_counter() - t0 < 5  # refused from the numbers, no frames made


def test_json_nested_past_the_parser_is_refused_by_convert(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000)
    r = subprocess.run([sys.executable, "-m", "backend.cli", "convert", str(path), "--to", "a2f",
                        "--out", str(tmp_path / "out.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "nested too deeply" in r.stderr
    assert not (tmp_path / "out.json").exists()


def _same_timecode_csv(path, rows=90):
    header = ["Timecode", "BlendShapeCount", *LIVELINK_BLENDSHAPES]
    lines = [",".join(header)]
    for i in range(rows):
        values = [f"{(i % 30) / 30:.3f}"] + ["0"] * (len(LIVELINK_BLENDSHAPES) - 1)
        lines.append(",".join(["10:00:00:00.000", str(len(LIVELINK_BLENDSHAPES)), *values]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_live_link_rows_that_share_one_timecode_are_not_collapsed_silently(tmp_path):
    path = _same_timecode_csv(tmp_path / "frozen.csv")
    with pytest.raises(ExchangeFormatError, match="all 90 rows share the timecode.*--source-fps"):
        read_livelink_csv(path)
    take = read_livelink_csv(path, fps=60.0)
    assert take.frames == 90 and take.fps == 60.0
    assert take.meta["livelink"]["repeated_timecodes"] == 89
