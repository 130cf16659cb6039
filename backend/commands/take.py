"""`exomni take`: make one take locally, without a server, and write its take folder."""

import sys
from pathlib import Path

from exomni_blender.core import contract as C
from exomni_blender.core.face import MOOD_NAMES
from exomni_blender.core.request import (DEFAULT_FPS, FPS_RANGE, HEAD_MOTION_RANGE, INTENSITY_RANGE, PITCH_RANGE,
                                        RATE_RANGE)

from ._common import ProgressBar, add_engine_options, fail, make_registry


def register(sub):
    p = sub.add_parser("take", help="make a take locally and write the take folder")
    p.add_argument("--engine", default=C.DEFAULT_ENGINE)
    p.add_argument("--mode", default=None, choices=C.MODES,
                   help="say (default), chat, or lipsync (the default when --audio is given)")
    p.add_argument("--text", default="", help="the line to say (say), the prompt (chat) or the transcript (lipsync)")
    p.add_argument("--audio", default=None, help="a recording: lipsync source or spoken prompt")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS,
                   help=f"frames per second of the curves, {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    p.add_argument("--voice", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=1.0,
                   help=f"speaking-rate multiplier, {RATE_RANGE[0]:g} to {RATE_RANGE[1]:g} (1 = normal)")
    p.add_argument("--pitch", type=float, default=1.0,
                   help=f"pitch multiplier, {PITCH_RANGE[0]:g} to {PITCH_RANGE[1]:g} (1 = normal)")
    p.add_argument("--mouth-only", action="store_true", help="no blinks, brows, gaze, mood or head motion")
    # No argparse choices for the mood: the one validator checks it and says what to send instead.
    p.add_argument("--mood", default="neutral", help=f"the face's mood: {', '.join(MOOD_NAMES)} (default neutral)")
    p.add_argument("--intensity", type=float, default=1.0,
                   help=f"how strongly the mood shows, {INTENSITY_RANGE[0]:g} to {INTENSITY_RANGE[1]:g}")
    p.add_argument("--head-motion", type=float, default=1.0,
                   help=f"head nods and sway, {HEAD_MOTION_RANGE[0]:g} to {HEAD_MOTION_RANGE[1]:g} "
                        "(1 = natural, 0 = a still head)")
    p.add_argument("--out", required=True, help="folder to write the take into")
    add_engine_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engines.base import EngineError, Progress

    registry = make_registry(args)
    if args.mode is None:  # a recording with no mode is one to animate
        args.mode = "lipsync" if args.audio else "say"
    data = {"engine": args.engine, "mode": args.mode, "text": args.text, "fps": args.fps, "voice": args.voice,
            "seed": args.seed, "rate": args.rate, "pitch": args.pitch, "mouth_only": args.mouth_only,
            "mood": args.mood, "intensity": args.intensity, "head_motion": args.head_motion}
    try:
        if args.audio and not Path(args.audio).is_file():
            return fail(f"no such audio file: {args.audio}")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            return fail(f"--out {args.out} is a file; give the folder to write the take into")
        request = registry.validate(data, has_audio=bool(args.audio))
        request.audio_path = args.audio
        registry.check_available(request.engine)
        Path(args.out).mkdir(parents=True, exist_ok=True)  # a bad --out fails now, before the take is made
        bar = ProgressBar(f"{request.engine}/{request.mode}")
        take = registry.get(request.engine).make_take(request, Progress(bar))
        bar.done()
    except EngineError as exc:
        return fail(str(exc))
    out = take.save(args.out)
    print(f"wrote {out} ({take.frames} frames at {take.fps:g} fps, {take.duration:.2f} s"
          f"{'' if take.has_audio else ', no audio'})", file=sys.stdout)
    return 0

