"""An avatar keyed by one take: what was keyed per mesh and bone, and a contact sheet to judge it.

Makes a phonetic take of a line with p/b/m, open and rounded vowels, then runs
`python -m exomni_blender.blender.avatar_bench` in a child process (through `backend.blender_process`):
the avatar is imported, the take keyed on its whole character, and the sheet (rest, p/b/m, open vowel,
rounded vowel, blink) written as one PNG.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from .. import blender_process

LINE = "Bob moved the blue boat, and Paul saw a big moon over the pool."


def add_arguments(parser):
    parser.add_argument("avatar", help="a glTF/GLB/VRM or .blend file with a head that has ARKit shape keys")
    parser.add_argument("--object", default=None, help="the head mesh (default: the mesh with most ARKit keys)")
    parser.add_argument("--out", default="bench_avatar", help="folder for the contact sheet (default: %(default)s)")
    parser.add_argument("--text", default=LINE, help="the line the take says")


def run(args) -> int:
    from ..engines.base import Progress, TakeRequest
    from ..engines.phonetic.engine import PhoneticEngine

    if not Path(args.avatar).is_file():
        print(f"exomni bench avatar: no such file: {args.avatar}", file=sys.stderr)
        return 2
    try:
        cmd = blender_process.command("avatar_bench")
    except blender_process.BlenderMissing as exc:
        print(f"exomni bench avatar: {exc}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        take = PhoneticEngine().make_take(TakeRequest(text=args.text, fps=30.0, seed=0), Progress())
        take.save(Path(tmp) / "take")
        extra = ["--object", args.object] if args.object else []
        return subprocess.run([*cmd, str(Path(args.avatar).resolve()), str(Path(tmp) / "take"),
                               str(Path(args.out).resolve()), *extra], check=False).returncode
