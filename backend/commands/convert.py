"""`exomni convert INPUT --to FORMAT --out PATH`: a take in another tool's format.

The formats are the exchange registry's (exomni_blender.core.exchange.registry): a take folder,
Audio2Face JSON, Live Link Face CSV and Rhubarb Lip Sync JSON, and any a plugin adds through the
`exomni.exchange_formats` entry points. INPUT is any file or folder a format reads; its audio is the
WAV that goes with it (named in the file, by Audio2Face's `<name>.wav_bsweight.json` naming, or
beside it under the same name; see exomni_blender.core.exchange.files); when none is found the
converter says so. The take's audio is written beside the output under the same name
(`line.csv` + `line.wav`) unless --no-audio, and no WAV at all when there is no sound. A format that
writes folders (take, a2f) writes a whole take folder for an --out with no suffix.
"""

import sys
from pathlib import Path

from ._common import fail


class _WritableFormats:
    """--to's choices, read from the registry only when checked or shown (not on every CLI start)."""

    def _names(self):
        from exomni_blender.core.exchange import writable_formats

        return [f.name for f in writable_formats()]

    def __contains__(self, name):
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


def register(sub):
    p = sub.add_parser("convert", help="convert a take between exchange formats: a take folder, Audio2Face JSON, "
                                       "Live Link Face CSV, Rhubarb Lip Sync JSON and any a plugin adds")
    p.add_argument("input", metavar="INPUT",
                   help="a take folder, an Audio2Face .json, a Live Link Face .csv, a Rhubarb .json, or a file "
                        "of another registered format")
    p.add_argument("--to", required=True, choices=_WritableFormats(), metavar="FORMAT",
                   help="the format to write: %(choices)s")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="the file to write, or a folder to write into (take, a2f: a folder with no suffix gets "
                        "a whole take folder)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of the written curves (default: the input's; a Rhubarb input is sampled at 30)")
    p.add_argument("--source-fps", "--livelink-fps", dest="source_fps", type=float, default=None, metavar="N",
                   help="the rate the input was recorded at, when the file does not say (a Live Link Face CSV; "
                        "default: inferred from its timecodes)")
    p.add_argument("--mouth-from", choices=("auto", "phonemes", "curves"), default="auto",
                   help="mouth-shape output (Rhubarb): shapes from the phoneme timeline or from the mouth curves "
                        "(default: phonemes when the take has them)")
    p.add_argument("--no-audio", action="store_true", help="write no WAV beside the output")
    p.set_defaults(func=run)


def run(args) -> int:
    from exomni_blender.core.exchange import get_format, load_any, missing_audio_message, plugin_errors
    from exomni_blender.core.take import TakeFormatError

    for option in ("fps", "source_fps"):
        value = getattr(args, option)
        if value is not None and not value > 0:
            return fail(f"--{option.replace('_', '-')} must be positive, got {value}")
    for problem in plugin_errors():
        print(f"warning: {problem}", file=sys.stderr)
    source = Path(args.input)
    target = get_format(args.to)
    write_opts = {"audio": not args.no_audio, "mouth_from": args.mouth_from}
    try:
        take, kind = load_any(source, fps=args.fps, source_fps=args.source_fps)
        if args.fps:
            take = take.resampled(args.fps)
        out = _output_path(Path(args.out), target, source)
        out.parent.mkdir(parents=True, exist_ok=True)
        written = target.write(take, out, **write_opts)
    except TakeFormatError as exc:
        return fail(str(exc))
    except ValueError as exc:  # a setting that does not fit this take (say, --mouth-from phonemes without any)
        return fail(str(exc))
    read_from = get_format(kind)
    notes = list(read_from.read_notes(take, {"source_fps": args.source_fps}) if read_from.read_notes else [])
    notes += list(target.write_notes(take, write_opts) if target.write_notes else [])
    if read_from.paired_audio and not args.no_audio:
        notes.append(missing_audio_message(source, take.meta.get("audio") or {}))
    for note in filter(None, notes):
        print(note, file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in written)} ({take.frames} frames at {take.fps:g} fps, "
          f"{take.duration:.2f} s, from {kind})")
    return 0


def _output_path(out: Path, target, source: Path) -> Path:
    """--out as a file with the right suffix; a folder gets a file named after the input, or (a format
    that writes folders) is written as it is."""
    from exomni_blender.core.take import TakeFormatError

    if out.is_dir() or not out.suffix:
        if target.writes_folders:
            return out
        if out.is_dir() and target.suffixes:
            stem = source.name if source.is_dir() else source.stem
            return out / f"{stem}{target.suffixes[0]}"
    if not target.suffixes:
        raise TakeFormatError(f"--out {out} should be a folder for --to {target.name}")
    if out.suffix.lower() not in target.suffixes:
        raise TakeFormatError(f"--out {out} should end in {' or '.join(target.suffixes)} for --to {target.name} "
                              f"(or be a folder to write into)")
    return out
