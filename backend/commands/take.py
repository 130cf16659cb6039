"""`exomni take`: make one take locally, without a server, and write its take folder."""

import json
import os
import sys
from pathlib import Path

from exomni_blender.core import request as R

from ._common import ProgressBar, add_engine_options, fail, make_registry


def register(sub):
    p = sub.add_parser("take", help="make a take locally and write the take folder")
    add_request_arguments(p)
    p.add_argument("--audio", default=None, help="a recording: lipsync source or spoken prompt")
    p.add_argument("--out", required=True, help="folder to write the take into")
    add_engine_options(p)
    p.set_defaults(func=run)


def add_request_arguments(p) -> None:
    """One flag per declared request field, and --option NAME=VALUE for the engine options. No argparse
    ranges or choices: the one validator checks every value and says what to send instead."""
    for name, spec in R.SPECS.items():
        if spec.kind is dict:
            continue
        flag = "--" + name.replace("_", "-")
        rule = spec.describe()
        words = f"{spec.help}{'; ' + rule if rule else ''}"
        if spec.kind is bool:
            p.add_argument(flag, action="store_true", default=spec.default, help=spec.help)
        elif name == "mode":  # a recording with no mode is one to animate
            p.add_argument(flag, default=None, help=f"{words} (default: say, or lipsync with --audio)")
        else:
            p.add_argument(flag, type=spec.kind, default=spec.default, metavar=name.upper(),
                           help=f"{words} (default: {spec.default})" if spec.default not in (None, "") else words)
    options = "; ".join(f"{n}: {o.help}, {o.describe()} ({', '.join(o.engines)})" for n, o in R.OPTIONS.items())
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help=f"an engine option, repeatable: {options}")


def request_fields(args) -> dict:
    """The request's fields from the parsed flags (the validator checks them)."""
    data = {name: getattr(args, name) for name, spec in R.SPECS.items() if spec.kind is not dict}
    data["options"] = dict(parse_option(text) for text in args.option)
    return data


def check_writable(out: Path) -> None:
    """The folder can be made and written where it is asked for; nothing is created yet, so a take that
    fails leaves no empty folder behind."""
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise R.RequestError(f"--out {out}: {parent} is a file (Not a directory); give a folder to write the "
                             "take into")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise R.RequestError(f"--out {out}: cannot write into {parent}; give a folder you can write to")


def parse_option(text: str) -> tuple:
    """NAME=VALUE, the value read as JSON where it is (numbers, true/false), else as text."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise R.RequestError(f"--option {text!r} must be NAME=VALUE, such as --option max_new_tokens=256; "
                             f"the options are {', '.join(R.OPTIONS)}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name.strip(), value


def run(args) -> int:
    from ..engines.base import EngineError, Progress

    registry = make_registry(args)
    if args.mode is None:  # a recording with no mode is one to animate
        args.mode = "lipsync" if args.audio else "say"
    try:
        data = request_fields(args)
        if args.audio and not Path(args.audio).is_file():
            return fail(f"no such audio file: {args.audio}")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            return fail(f"--out {args.out} is a file; give the folder to write the take into")
        request = registry.validate(data, has_audio=bool(args.audio))
        request.audio_path = args.audio
        registry.check_available(request.engine)
        check_writable(Path(args.out))  # a bad --out fails now, before the take is made
        bar = ProgressBar(f"{request.engine}/{request.mode}")
        take = registry.get(request.engine).make_take(request, Progress(bar))
        bar.done()
    except EngineError as exc:
        return fail(str(exc))
    out = take.save(args.out)
    print(f"wrote {out} ({take.frames} frames at {take.fps:g} fps, {take.duration:.2f} s"
          f"{'' if take.has_audio else ', no audio'})", file=sys.stdout)
    return 0

