"""`exomni bench avatar` on real avatars (tests/data/avatars: MakeHuman, and the ICT-FaceKit face whose
eyes, gums and teeth carry all of its keys too, so the head must be told by size): every mesh of the character
is keyed and the contact sheet (exomni_blender.blender.avatar_bench) holds five readable pictures in
which the mouth really changes: rest, p/b/m, open vowel, rounded vowel, blink."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
AVATARS = REPO / "tests" / "data" / "avatars"
MESHES = {"makehuman_head.glb": {"Head", "Teeth", "Tongue", "EyeLeft", "EyeRight"},
          "ict_head.glb": {"Head", "GumsTongue", "Teeth", "EyeLeft", "EyeRight"}}


@pytest.mark.parametrize("avatar", sorted(MESHES))
def test_bench_avatar_keys_every_mesh_and_draws_the_poses(tmp_path, avatar):
    pytest.importorskip("bpy")
    r = subprocess.run([sys.executable, "-m", "backend.cli", "bench", "avatar", str(AVATARS / avatar), "--out",
                        str(tmp_path)],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    result = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert set(result["keyed"]) == MESHES[avatar] and not result["skipped"]
    assert "character of 'Head'" in r.stdout
    import bpy

    image = bpy.data.images.load(result["sheet"])
    width, height = image.size
    pixels = np.array(image.pixels[:], np.float32).reshape(height, width, 4)[..., :3].mean(axis=2)
    bpy.data.images.remove(image)
    assert width == 5 * height
    tiles = [pixels[:, i * height:(i + 1) * height] for i in range(5)]
    mouth = slice(int(height * 0.45), int(height * 0.75))  # the lower middle of each picture: the mouth
    rest = tiles[0][mouth]
    changed = [float(np.abs(t[mouth] - rest).mean()) for t in tiles[1:4]]
    assert changed[1] > 0.004 and changed[2] > 0.004, changed  # the open and the rounded mouth differ from rest (a
    # mouth that cannot move leaves these near 0: only light noise of the eyes and head reaches this band)
    eyes = slice(int(height * 0.2), int(height * 0.4))
    assert float(np.abs(tiles[4][eyes] - tiles[0][eyes]).mean()) > 0.003  # the blink shows
