"""`exomni retarget`: a take's curves written with a rig family's key names, through the real command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from exomni_blender.core.arkit import INDEX
from exomni_blender.core.retarget import find_preset, load_presets
from exomni_blender.core.take import Take
from test_retarget_rig_names import CHARACTER_CREATOR, VROID


REPO = Path(__file__).resolve().parents[1]


def exomni(*args):
    return subprocess.run([sys.executable, "-m", "backend.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


@pytest.fixture(scope="module")
def take_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("take")
    rng = np.random.default_rng(7)
    audio = (0.1 * np.sin(np.linspace(0, 200, 22050))).astype(np.float32)
    Take(fps=30.0, weights=rng.random((45, 52)).astype(np.float32), audio=audio, text="hello").save(folder)
    return folder


def read_json(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def test_writes_a2f_json_with_the_families_names(take_dir, tmp_path):
    out = tmp_path / "cc"
    result = exomni("retarget", take_dir, "--preset", "cc4", "--out", out)
    assert result.returncode == 0, result.stderr
    data = read_json(out / "blendshapes.json")
    take = Take.load(take_dir)
    preset = find_preset("character_creator", load_presets(include_user=False))
    expected, _ = preset.targets(None, take.weights)
    assert data["facsNames"] == list(expected)
    assert data["numPoses"] == len(expected) and data["numFrames"] == take.frames == len(data["weightMat"])
    assert data["exportFps"] == 30.0
    mat = np.asarray(data["weightMat"])
    np.testing.assert_allclose(mat[:, data["facsNames"].index("Mouth_Smile_L")],
                               take.weights[:, INDEX["mouthSmileLeft"]], atol=1e-5)
    report = read_json(out / "retarget_report.json")
    assert report["preset"] == "character_creator" and report["unmapped_channels"] == []
    assert (out / "audio.wav").is_file()


def test_rig_keys_are_matched_and_the_family_detected(take_dir, tmp_path):
    keys = tmp_path / "rig.txt"
    keys.write_text("Basis\n" + "\n".join(n.lower() for n in VROID) + "\n")
    out = tmp_path / "vroid"
    result = exomni("retarget", take_dir, "--rig-keys", keys, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Detected VRoid" in result.stderr
    data = read_json(out / "blendshapes.json")
    assert "fcl_mth_a" in data["facsNames"] and "Fcl_MTH_A" not in data["facsNames"]  # the rig's own spelling
    report = read_json(out / "retarget_report.json")
    assert report["rig_keys_given"] and "tongueOut" in report["unmapped_channels"]


def test_rig_keys_from_an_a2f_file_and_resampling(take_dir, tmp_path):
    a2f = tmp_path / "rig.json"
    a2f.write_text(json.dumps({"facsNames": CHARACTER_CREATOR[:40], "weightMat": []}))
    out = tmp_path / "cc24"
    result = exomni("retarget", take_dir, "--preset", "character_creator", "--rig-keys", a2f, "--fps", 24,
                    "--out", out)
    assert result.returncode == 0, result.stderr
    data = read_json(out / "blendshapes.json")
    assert set(data["facsNames"]) <= set(CHARACTER_CREATOR[:40]) and data["exportFps"] == 24.0
    assert data["numFrames"] == 36  # 45 frames at 30 fps last 1.5 s


@pytest.mark.parametrize("args, message", [
    (["--preset", "no_such_rig"], "no preset named 'no_such_rig'; available:"),
    (["--rig-keys", "MISSING"], "cannot read the rig's key list"),
    ([], "name a preset with --preset"),
])
def test_bad_input_gets_a_clear_error(take_dir, tmp_path, args, message):
    args = [a if a != "MISSING" else tmp_path / "missing.txt" for a in args]
    result = exomni("retarget", take_dir, *args, "--out", tmp_path / "x")
    assert result.returncode == 2 and message in result.stderr


def test_refuses_to_overwrite_the_take(take_dir):
    result = exomni("retarget", take_dir, "--preset", "arkit", "--out", take_dir)
    assert result.returncode == 2 and "another folder" in result.stderr
    assert Take.load(take_dir).frames == 45


def test_list_shows_builtin_and_user_presets(tmp_path):
    (tmp_path / "studio.toml").write_text('name = "Studio head"\n[[target]]\nkey = "Open"\nfrom = "jawOpen"\n')
    result = exomni("retarget", "--list", "--presets-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "character_creator" in result.stdout and "studio" in result.stdout and "user" in result.stdout
