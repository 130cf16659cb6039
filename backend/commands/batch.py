"""`exomni batch SCRIPT --blend SCENE.blend --out DIR`: a dialogue scene from a screenplay, headless.

Every line of the script (Fountain, CSV or JSON) is planned by the one dialogue planner (the same as
POST /v1/dialogue/plan), becomes a take made locally by the engine and kept in the one dialogue take
cache, DIR/takes/<content hash>/, so a rerun after an edit makes only the edited lines again. A
Blender process then keys each take on its character's head (one NLA strip per line), lays its
audio on the character's own sequencer channel, marks each line on the timeline and saves
DIR/<script>.blend (the input .blend is never written). Every file is named after the script
(<script>.plan.json, <script>.wav, ...), so scripts sharing a folder never share a file.

`--render` adds DIR/<script>.mp4 with the dialogue mixed in: a Workbench preview with a shot per line
on whoever speaks, or the scene's own settings with --own-render-settings. One frame is timed first;
a render estimated past --render-limit is refused unless --confirm-long-render. A failed, refused
or cancelled render leaves no video, and a video of an earlier run never stays beside a new scene.
`--flamenco URL` sends the render to a Flamenco Manager, `--flamenco-job FILE` writes the job.
"""

import argparse
import sys

from exomni_blender.core import contract as C

from ..dialogue.batch import PREVIEW_WIDTH, BatchReport
from ._common import ProgressBar, add_engine_options, fail, make_registry


def register(sub):
    p = sub.add_parser("batch", help="a dialogue scene from a screenplay (Fountain, CSV, JSON): takes, .blend, render",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("script", help="the script: .fountain, .csv (character,line[,start][,voice][,language]) or .json")
    p.add_argument("--blend", default=None, help="the scene to start from (read only; default: an empty scene)")
    p.add_argument("--out", required=True, help="output folder: the .blend, takes/, the mixed audio, the video")
    p.add_argument("--engine", default=C.DEFAULT_ENGINE, help="engine that makes the takes (default: %(default)s)")
    p.add_argument("--cast", default="", metavar="NAME=OBJECT,...",
                   help='character to head object, e.g. "BRICK=HeadA,STEEL=HeadB" (default: match by name)')
    p.add_argument("--cast-file", default=None, metavar="FILE",
                   help="a cast table (.json or .toml); SCRIPT.cast.json/.toml beside the script is read anyway")
    p.add_argument("--voices", default="", metavar="NAME=VOICE,...",
                   help='a voice per character, e.g. "BRICK=en-gb+m3" (default: a distinct voice each)')
    p.add_argument("--languages", default="", metavar="NAME=LANGUAGE,...",
                   help='a language per character, e.g. "ROSA=es,HANS=German" (default: English; a line\'s '
                        '"(in French)" or a language column wins)')
    p.add_argument("--create-heads", action=argparse.BooleanOptionalAction, default=None,
                   help="add a procedural head for characters without one (default: only when the scene has no heads)")
    p.add_argument("--gap", type=float, default=0.5, help="seconds between lines (default: %(default)s)")
    p.add_argument("--lead-in", type=float, default=0.5, help="seconds before the first line and after the last")
    p.add_argument("--fps", type=float, default=None, help="frame rate (default: the scene's)")
    p.add_argument("--seed", type=int, default=0, help="base seed; each character's takes vary with it")
    p.add_argument("--mouth-only", action="store_true", help="no blinks, brows or gaze in the takes")
    p.add_argument("--no-listen", dest="listen", action="store_false",
                   help="no listening layer: by default everyone looks at whoever speaks and nods and blinks at the "
                        "speaker's phrase ends (track 'ExOmni dialogue listen'; a cast entry's \"listen\": false "
                        "leaves one character out)")
    r = p.add_argument_group("preview render")
    r.add_argument("--render", action="store_true",
                   help="render DIR/<script>.mp4 with the dialogue mixed in: a Workbench preview with a shot per line "
                        "on whoever speaks (a two-shot for dual dialogue)")
    r.add_argument("--resolution", type=int, default=None, metavar="PIXELS",
                   help=f"preview width (height follows 16:9; default: {PREVIEW_WIDTH}); with --own-render-settings, "
                        "overrides the scene's width")
    r.add_argument("--own-render-settings", action="store_true",
                   help="render with the scene's own engine, resolution and camera instead of the preview")
    r.add_argument("--render-limit", type=float, default=10.0, metavar="MINUTES",
                   help="refuse a render estimated to take longer than this (default: %(default)s minutes)")
    r.add_argument("--confirm-long-render", action="store_true",
                   help="render even when the estimate is over --render-limit")
    farm = p.add_mutually_exclusive_group()
    farm.add_argument("--flamenco", default=None, metavar="URL", help="submit the render to this Flamenco Manager")
    farm.add_argument("--flamenco-job", default=None, metavar="FILE", help="write the Flamenco job to FILE instead")
    p.add_argument("--flamenco-output", default=None, metavar="DIR",
                   help="render output folder as the workers see it (default: DIR/frames)")
    p.add_argument("--flamenco-priority", type=int, default=50)
    p.add_argument("--chunk-size", type=int, default=10, help="frames per farm task (default: %(default)s)")
    p.add_argument("--check", action="store_true", help="read the script and cast, report, make nothing")
    p.add_argument("--confirm-large-batch", action="store_true",
                   help="make the takes even when the script has more lines than one batch makes unasked (500); "
                        "without it such a script is refused with an estimate of its speech and size")
    add_engine_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..dialogue import cast as castmod
    from ..dialogue.batch import BatchError, run_batch

    try:
        cast = castmod.parse_cast_arg(args.cast)
        voices = castmod.parse_voices_arg(args.voices)
        languages = castmod.parse_languages_arg(args.languages)
    except castmod.CastError as exc:
        return fail(str(exc))
    try:
        result = run_batch(
            args.script, args.out, blend=args.blend, engine=args.engine, registry=lambda: make_registry(args),
            cast=cast, cast_file=args.cast_file, voices=voices, languages=languages, create_heads=args.create_heads, gap=args.gap,
            lead_in=args.lead_in, fps=args.fps, seed=args.seed, mouth_only=args.mouth_only, render=args.render,
            resolution=args.resolution, own_render_settings=args.own_render_settings, render_limit=args.render_limit,
            confirm_long_render=args.confirm_long_render, flamenco=args.flamenco, flamenco_job=args.flamenco_job,
            flamenco_output=args.flamenco_output, flamenco_priority=args.flamenco_priority,
            chunk_size=args.chunk_size, check=args.check, confirm_large=args.confirm_large_batch, listen=args.listen,
            report=PrintedReport())
    except BatchError as exc:
        return fail(str(exc), status=exc.status)
    if result.checked_only:
        return 0

    job_note = ""
    if result.flamenco_job_file is not None:
        job_note = f"; Flamenco job written to {result.flamenco_job_file}"
    elif result.flamenco_job_id is not None:
        job_note = f"; Flamenco job {result.flamenco_job_id} submitted to {args.flamenco}"
    made = [str(result.blend), str(result.audio)] + ([str(result.video)] if result.preview else [])
    print(f"done in {result.seconds:.1f} s: {len(result.plan.lines)} lines, {result.dialogue_seconds:.1f} s of "
          f"dialogue (frames {result.frame_start}-{result.frame_end} at {result.fps:g} fps); takes: "
          f"{len(result.cache.misses)} made, {len(result.cache.hits)} reused{job_note}", flush=True)
    preview = result.preview
    if preview:
        fill = [s["fill"] for s in preview.get("shots", [])]
        print(f"preview: {preview['frames']} frames at {preview['resolution'][0]}x{preview['resolution'][1]} "
              f"({preview['engine']}) in {preview['seconds']:.1f} s"
              + (f"; the speaker fills {min(fill):.0%}-{max(fill):.0%} of the frame" if fill else ""), flush=True)
    print("wrote " + ", ".join(made), flush=True)
    for w in result.warnings:
        print(f"exomni batch: note: {w}", file=sys.stderr)
    return 0


class PrintedReport(BatchReport):
    """The run as it goes: the cast on stdout, notes and a progress bar per stage on stderr."""

    def __init__(self):
        self.bars: dict[str, ProgressBar] = {}

    def planned(self, plan, fps, script_name):
        print(f"exomni batch: {script_name}: {len(plan.lines)} lines, {len(plan.cast.roles)} characters; "
              f"engine {plan.engine}, {fps:g} fps", flush=True)
        for role in plan.cast:
            print(f"  {role.character:<16} -> {role.object}{' (new head)' if role.create else ''}, voice "
                  f"{role.voice}, {role.lines} line(s)", flush=True)

    def note(self, message):
        print(f"exomni batch: note: {message}", file=sys.stderr)

    def _bar(self, stage):
        if stage not in self.bars:
            self.bars[stage] = ProgressBar(stage)
        return self.bars[stage]

    def progress(self, stage, fraction, message=""):
        self._bar(stage)(fraction, message)

    def stage_done(self, stage, message):
        self._bar(stage).done(message)
