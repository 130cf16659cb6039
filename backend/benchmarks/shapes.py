"""Made ARKit shapes: agreement with an artist's own shapes, edge stretch on other proportions, a take's lip gap.

Runs `python -m exomni_blender.blender.make_shapes_bench` in a child process (the backend never
imports bpy; `backend.blender_process` starts it) on the avatar shipped in tests/data/avatars, with a
phonetic take made here.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from .. import blender_process

AVATAR = Path(__file__).resolve().parents[2] / "tests" / "data" / "avatars" / "makehuman_head.glb"
LINE = "Bob, please pass me the big blue map, maybe by the boat."


def add_arguments(parser):
    parser.add_argument("--avatar", default=str(AVATAR), help="a glTF/VRM/.blend head with the 52 ARKit shapes")
    parser.add_argument("--object", default="Head", help="the head mesh's name (default Head)")


def run(args) -> int:
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    try:
        cmd = blender_process.command("make_shapes_bench", "--avatar", args.avatar, "--object", args.object)
    except blender_process.BlenderMissing as exc:
        print(f"exomni bench shapes: {exc}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        take_dir = Path(tmp) / "take"
        try:
            take = PhoneticEngine().make_take(TakeRequest(text=LINE, fps=30.0, seed=0), Progress())
            take.save(take_dir)
            cmd += ["--take", str(take_dir)]
        except Exception as exc:  # the shapes are still measured without a take
            print(f"no take (the phonetic engine failed: {exc}); skipping the take measures", file=sys.stderr)
        try:
            return subprocess.run(cmd, check=False).returncode
        except OSError as exc:
            print(f"could not start {sys.executable}: {exc}", file=sys.stderr)
            return 1
