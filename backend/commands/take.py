"""`exomni take`: make one take locally, without a server, and write its take folder."""

import sys
from pathlib import Path

from exomni_blender import contract as C

from ._common import ProgressBar, add_engine_options, fail, make_registry


def register(sub):
    p = sub.add_parser("take", help="make a take locally and write the take folder")
    p.add_argument("--engine", default=C.DEFAULT_ENGINE)
    p.add_argument("--mode", default="say", choices=C.MODES)
    p.add_argument("--text", default="", help="the line to say (say), the prompt (chat) or the transcript (lipsync)")
    p.add_argument("--audio", default=None, help="a recording: lipsync source or spoken prompt")
    p.add_argument("--fps", type=float, default=C.DEFAULT_FPS)
    p.add_argument("--voice", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=1.0, help="speaking-rate multiplier")
    p.add_argument("--pitch", type=float, default=1.0, help="pitch multiplier")
    p.add_argument("--mouth-only", action="store_true", help="no blinks, brows or gaze")
    p.add_argument("--out", required=True, help="folder to write the take into")
    add_engine_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..dialogue.service import check_voices
    from ..engines.base import EngineError, Progress
    from ..server.requests import parse_take_request

    registry = make_registry(args)
    data = {"engine": args.engine, "mode": args.mode, "text": args.text, "fps": args.fps, "voice": args.voice,
            "seed": args.seed, "rate": args.rate, "pitch": args.pitch, "mouth_only": args.mouth_only}
    try:
        if args.audio and not Path(args.audio).is_file():
            return fail(f"no such audio file: {args.audio}")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            return fail(f"--out {args.out} is a file; give the folder to write the take into")
        request = parse_take_request(data, registry, has_audio=bool(args.audio))
        request.audio_path = args.audio
        registry.check_available(request.engine)
        check_voices(registry.get(request.engine), [request.voice])
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
