"""`exomni convert INPUT --to a2f|livelink|rhubarb --out PATH`: a take in another tool's format.

INPUT is a take folder, an Audio2Face JSON, a Live Link Face CSV or a Rhubarb Lip Sync JSON. Its
audio is the WAV that goes with it (named in the file, by Audio2Face's `<name>.wav_bsweight.json`
naming, or beside it under the same name; see exomni_blender.core.exchange.files); when none is
found the converter says so. The take's audio is written beside the output under the same name
(`line.csv` + `line.wav`) unless --no-audio, and no WAV at all when there is no sound; `--to a2f`
with a folder for --out writes a whole take folder (blendshapes.json, take.json, audio.wav).
"""

import sys
from pathlib import Path

from ._common import fail

SUFFIX = {"a2f": ".json", "livelink": ".csv", "rhubarb": ".json"}


def register(sub):
    p = sub.add_parser("convert", help="convert a take between a take folder, Audio2Face JSON, Live Link Face CSV "
                                       "and Rhubarb Lip Sync JSON")
    p.add_argument("input", metavar="INPUT",
                   help="a take folder, an Audio2Face .json, a Live Link Face .csv or a Rhubarb .json")
    p.add_argument("--to", required=True, choices=("a2f", "livelink", "rhubarb"), help="the format to write")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="the file to write (a2f: a .json file, or a folder for a whole take folder)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of the written curves (default: the input's; a Rhubarb input is sampled at 30)")
    p.add_argument("--livelink-fps", type=float, default=None, metavar="N",
                   help="the rate a Live Link Face CSV was recorded at (default: inferred from its timecodes)")
    p.add_argument("--mouth-from", choices=("auto", "phonemes", "curves"), default="auto",
                   help="Rhubarb output: mouth shapes from the phoneme timeline or from the mouth curves "
                        "(default: phonemes when the take has them)")
    p.add_argument("--no-audio", action="store_true", help="write no WAV beside the output")
    p.set_defaults(func=run)


def run(args) -> int:
    from exomni_blender.core.exchange import (load_any, missing_audio_message, write_a2f, write_livelink_csv,
                                              write_rhubarb_json)
    from exomni_blender.core.files import atomic_write_all
    from exomni_blender.core.take import TakeFormatError, encode_wav

    for option in ("fps", "livelink_fps"):
        value = getattr(args, option)
        if value is not None and not value > 0:
            return fail(f"--{option.replace('_', '-')} must be positive, got {value}")
    source = Path(args.input)
    try:
        take, kind = load_any(source, livelink_fps=args.livelink_fps, rhubarb_fps=args.fps or 30.0)
        if args.fps:
            take = take.resampled(args.fps)
        out = _output_path(Path(args.out), args.to, source)
        out.parent.mkdir(parents=True, exist_ok=True)
        # A take without sound gets no WAV at all, never an empty one.
        wav = out.with_suffix(".wav") if take.has_audio and not args.no_audio and out.suffix else None
        if args.to == "a2f" and not out.suffix:
            written = [take.save(out)]
        elif args.to == "a2f":
            written = write_a2f(take, out, audio=wav is not None)
        else:
            if args.to == "livelink":
                write_livelink_csv(take, out)
            else:
                write_rhubarb_json(take, out, sound_file=wav.name if wav else "", source=args.mouth_from)
            written = [out]
            if wav:
                atomic_write_all({wav: encode_wav(take.audio, take.sample_rate)})
                written.append(wav)
    except TakeFormatError as exc:
        return fail(str(exc))
    except ValueError as exc:  # a setting that does not fit this take (say, --mouth-from phonemes without any)
        return fail(str(exc))
    _notes(take, kind, args)
    if kind != "take" and not args.no_audio:
        missing = missing_audio_message(source, take.meta.get("audio") or {})
        if missing:
            print(missing, file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in written)} ({take.frames} frames at {take.fps:g} fps, "
          f"{take.duration:.2f} s, from {kind})")
    return 0


def _output_path(out: Path, to: str, source: Path) -> Path:
    """--out as a file with the right suffix; a folder gets a file named after the input (a2f: a take folder)."""
    suffix = SUFFIX[to]
    if out.is_dir() or not out.suffix:
        if to == "a2f":
            return out  # a whole take folder
        if out.is_dir():
            stem = source.name if source.is_dir() else source.stem
            return out / f"{stem}{suffix}"
    if out.suffix.lower() != suffix:
        from exomni_blender.core.take import TakeFormatError

        raise TakeFormatError(f"--out {out} should end in {suffix} for --to {to} (or be a folder to write into)")
    return out


def _notes(take, kind: str, args) -> None:
    info = take.meta.get("livelink") if kind == "livelink" else None
    if info:
        if info.get("fps_from") != "option":
            print(f"Live Link Face recording read at {info.get('fps'):g} fps ({info.get('fps_from')}); "
                  "give --livelink-fps if it was recorded at another rate", file=sys.stderr)
        if info.get("missing_channels"):
            print(f"channels not in the CSV, left at 0: {', '.join(info['missing_channels'])}", file=sys.stderr)
    if args.to == "rhubarb" and not (take.phonemes and args.mouth_from != "curves"):
        print("mouth shapes taken from the curves (no phoneme timeline): H (tongue up) cannot be seen in them",
              file=sys.stderr)
