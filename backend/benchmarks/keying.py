"""Keying in Blender: key_take against per-frame keyframe_insert (52 channels x 9000 frames).

The backend never imports bpy, so the benchmark runs as `python -m exomni_blender.blender.benchmark`
in a child process of this same Python.
"""

import subprocess
import sys

from .. import blender_process


def add_arguments(parser):
    parser.add_argument("--frames", type=int, default=9000, help="frames in the take (default 9000)")
    parser.add_argument("--insert-frames", type=int, default=900,
                        help="frames keyed with per-frame keyframe_insert, extrapolated to --frames (default 900)")
    parser.add_argument("--repeats", type=int, default=3, help="key_take runs; the best is reported (default 3)")


def run(args) -> int:
    try:
        cmd = blender_process.command("benchmark", "--frames", args.frames, "--insert-frames", args.insert_frames,
                                      "--repeats", args.repeats)
        return subprocess.run(cmd, check=False).returncode
    except blender_process.BlenderMissing as exc:
        print(f"exomni bench keying: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"could not start {sys.executable}: {exc}", file=sys.stderr)
        return 1
