"""`exomni retarget TAKE_DIR --preset NAME --out DIR`: a take's curves with a rig family's key names.

Presets come from the repository's presets/ folder, the user folders (Blender's user config
exomni_presets, $EXOMNI_PRESETS) and --presets-dir. With --rig-keys (the rig's own key names) the
names are matched loosely against the rig and, without --preset, the family is detected.
"""

import sys

from ._common import fail


def register(sub):
    p = sub.add_parser("retarget", help="write a take's curves with a rig family's shape-key names (A2F JSON)")
    p.add_argument("take", nargs="?", metavar="TAKE_DIR", help="a take folder (blendshapes.json, take.json)")
    p.add_argument("--preset", help="preset id, name or .toml file (default: detected from --rig-keys)")
    p.add_argument("--out", help="folder to write blendshapes.json, retarget_report.json and audio.wav into")
    p.add_argument("--rig-keys", metavar="FILE",
                   help="the rig's key names: one per line, a JSON list, or an Audio2Face JSON")
    p.add_argument("--presets-dir", action="append", default=[], metavar="DIR", help="another preset folder")
    p.add_argument("--fps", type=float, default=None, help="resample the curves to this frame rate first")
    p.add_argument("--list", action="store_true", help="list the presets found and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    from exomni_blender.core.retarget import PresetError, load_presets
    from exomni_blender.core.take import TakeFormatError

    from ..retarget_export import choose_preset, read_rig_keys, write_retargeted

    errors = []
    try:
        presets = load_presets(args.presets_dir, errors=errors)
    except PresetError as exc:
        return fail(str(exc))
    for message in errors:
        print(f"exomni: warning: skipped a preset: {message}", file=sys.stderr)
    if args.list:
        for p in sorted(presets, key=lambda p: p.id):
            where = "user" if p.user else "built-in"
            print(f"{p.id:20s} {p.name} ({len(p.entries)} keys, {where})")
        return 0
    if not args.take or not args.out:
        return fail("give a take folder and --out DIR (see exomni retarget --help), or --list")
    if args.fps is not None and args.fps <= 0:
        return fail(f"--fps must be positive, got {args.fps}")
    try:
        rig_keys = read_rig_keys(args.rig_keys) if args.rig_keys else None
        preset, note = choose_preset(args.preset, rig_keys, presets)
        if note:
            print(note, file=sys.stderr)
        written, report = write_retargeted(args.take, args.out, preset, rig_keys, fps=args.fps)
    except (PresetError, TakeFormatError) as exc:
        return fail(str(exc))
    for line in report.lines():
        print(line, file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0
