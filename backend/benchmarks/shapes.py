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

AVATARS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "avatars"
AVATAR = AVATARS_DIR / "makehuman_head.glb"
# the real avatars with an artist's 52 shapes (tests/data/README.md): file, head mesh
AVATARS = (("makehuman_head.glb", "Head"), ("rpm_head.glb", "Head"), ("ict_head.glb", "Head"))
LINE = "Bob, please pass me the big blue map, maybe by the boat."


def add_arguments(parser):
    parser.add_argument("--avatar", help="a glTF/VRM/.blend head with the 52 ARKit shapes (default: every "
                        "avatar shipped in tests/data/avatars)")
    parser.add_argument("--object", default="Head", help="the head mesh's name (default Head)")
    parser.add_argument("--renders", default="bench_shapes_renders",
                        help="folder for the side-by-side renders, one subfolder per avatar")


def run(args) -> int:
    avatars = [(args.avatar, args.object)] if args.avatar else [(str(AVATARS_DIR / f), o) for f, o in AVATARS]
    try:
        blender_process.command("make_shapes_bench")
    except blender_process.BlenderMissing as exc:
        print(f"exomni bench shapes: {exc}", file=sys.stderr)
        return 1
    worst = 0
    for k, (path, name) in enumerate(avatars):
        renders = Path(args.renders) / Path(path).stem
        print(f"\n=== {Path(path).name} ({name}) ===", flush=True)
        # the scaled, turned and stretched variants and the take on the first avatar only
        cmd = blender_process.command("make_shapes_bench", "--avatar", path, "--object", name, "--renders", renders)
        if k > 0:
            worst = max(worst, _run(cmd + ["--no-variants"]))
            continue
        worst = max(worst, _with_take(cmd))
    return worst


def _run(cmd) -> int:
    try:
        return subprocess.run(cmd, check=False).returncode
    except OSError as exc:
        print(f"could not start {sys.executable}: {exc}", file=sys.stderr)
        return 1


def _with_take(cmd) -> int:
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    with tempfile.TemporaryDirectory() as tmp:
        take_dir = Path(tmp) / "take"
        try:
            take = PhoneticEngine().make_take(TakeRequest(text=LINE, fps=30.0, seed=0), Progress())
            take.save(take_dir)
            cmd += ["--take", str(take_dir)]
        except Exception as exc:  # the shapes are still measured without a take
            print(f"no take (the phonetic engine failed: {exc}); skipping the take measures", file=sys.stderr)
        return _run(cmd)
