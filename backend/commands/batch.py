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
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from exomni_blender.core import contract as C
from exomni_blender.core.dialogue_layout import INSPECT_TAG, PROGRESS_TAG, RESULT_TAG
from exomni_blender.core.errors import ExOmniError

from .. import blender_process
from exomni_blender.core.request import FPS_RANGE

from ._common import ProgressBar, add_engine_options, fail, make_registry

PREVIEW_WIDTH = 384  # the preview's default width: a close-up's mouth reads well, and 2 CPU cores keep up


class RenderRefused(ExOmniError):
    """The render's estimate is over --render-limit and --confirm-long-render was not given."""


def register(sub):
    p = sub.add_parser("batch", help="a dialogue scene from a screenplay (Fountain, CSV, JSON): takes, .blend, render",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("script", help="the script: .fountain, .csv (character,line[,start][,voice]) or .json")
    p.add_argument("--blend", default=None, help="the scene to start from (read only; default: an empty scene)")
    p.add_argument("--out", required=True, help="output folder: the .blend, takes/, the mixed audio, the video")
    p.add_argument("--engine", default=C.DEFAULT_ENGINE, help="engine that makes the takes (default: %(default)s)")
    p.add_argument("--cast", default="", metavar="NAME=OBJECT,...",
                   help='character to head object, e.g. "BRICK=HeadA,STEEL=HeadB" (default: match by name)')
    p.add_argument("--cast-file", default=None, metavar="FILE",
                   help="a cast table (.json or .toml); SCRIPT.cast.json/.toml beside the script is read anyway")
    p.add_argument("--voices", default="", metavar="NAME=VOICE,...",
                   help='a voice per character, e.g. "BRICK=en-gb+m3" (default: a distinct voice each)')
    p.add_argument("--create-heads", action=argparse.BooleanOptionalAction, default=None,
                   help="add a procedural head for characters without one (default: only when the scene has no heads)")
    p.add_argument("--gap", type=float, default=0.5, help="seconds between lines (default: %(default)s)")
    p.add_argument("--lead-in", type=float, default=0.5, help="seconds before the first line and after the last")
    p.add_argument("--fps", type=float, default=None, help="frame rate (default: the scene's)")
    p.add_argument("--seed", type=int, default=0, help="base seed; each character's takes vary with it")
    p.add_argument("--mouth-only", action="store_true", help="no blinks, brows or gaze in the takes")
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
    add_engine_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..dialogue import cast as castmod
    from ..dialogue import plan as planmod
    from ..dialogue.script import ScriptError, load_script
    from ..engines.base import EngineError

    t0 = time.monotonic()
    out = Path(args.out).resolve()
    try:
        script = load_script(args.script)
    except ScriptError as exc:
        return fail(str(exc))
    blend = Path(args.blend).resolve() if args.blend else None
    if blend is not None and (not blend.is_file() or blend.suffix.lower() != ".blend"):
        return fail(f"--blend {args.blend}: no such .blend file; give the scene to start from, or leave --blend out")
    stem = Path(args.script).stem
    out_blend = out / f"{stem}.blend"
    if blend is not None and out_blend == blend:
        return fail(f"{out_blend} is the input scene; choose another --out folder so the input is never overwritten")
    if args.gap < 0 or args.lead_in < 0:
        return fail("--gap and --lead-in are seconds, zero or more")
    if args.fps is not None and not (FPS_RANGE[0] <= args.fps <= FPS_RANGE[1]):
        return fail(f"--fps must be a number from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    if args.resolution is not None and not (16 <= args.resolution <= 8192):
        return fail("--resolution is a width in pixels, from 16 to 8192")
    if not args.render_limit > 0:
        return fail("--render-limit is minutes, more than zero")

    # 1. The scene, the cast and every line's take request, checked before anything is made.
    try:
        scene = inspect_blend(blend) if blend is not None else {"objects": [], "fps": 30.0, "frame_start": 1}
    except RuntimeError as exc:
        return fail(str(exc))
    fps = float(args.fps or scene["fps"])
    try:
        table, voices, moods = {}, {}, {}
        for source in (castmod.sidecar_for(args.script), args.cast_file):
            if source:
                t, v, m = castmod.read_cast_file(source)
                table.update(t)
                voices.update(v)
                moods.update(m)
        table.update(castmod.parse_cast_arg(args.cast))
        voices.update(castmod.parse_voices_arg(args.voices))
        registry = make_registry(args)
        plan = planmod.plan_script(script, scene["objects"], registry, engine=args.engine, fps=fps, seed=args.seed,
                                   cast_table=table, voices=voices, create_heads=args.create_heads,
                                   mouth_only=args.mouth_only, scene_name=blend.name if blend else "the new scene",
                                   moods=moods)
    except (castmod.CastError, EngineError) as exc:
        return fail(str(exc))
    cast, planned = plan.cast, plan.lines
    for warning in cast.warnings:
        print(f"exomni batch: note: {warning}", file=sys.stderr)
    print(f"exomni batch: {Path(args.script).name}: {len(script.lines)} lines, {len(cast.roles)} characters; "
          f"engine {plan.engine}, {fps:g} fps", flush=True)
    for role in cast:
        print(f"  {role.character:<16} -> {role.object}{' (new head)' if role.create else ''}, voice {role.voice}, "
              f"{role.lines} line(s)", flush=True)
    if args.check:
        return 0

    # 2. Takes, from the cache where their inputs have not changed.
    engine = registry.get(plan.engine, "say")
    try:
        takes, stats = make_takes(planned, engine, out / "takes", fps)
    except EngineError as exc:
        return fail(str(exc))

    # 3. Layout, the mixed dialogue and the plan for Blender. Every file is named after the script,
    # so scripts written to one folder never share one.
    frame_start = int(scene.get("frame_start", 1))
    for p in planned:
        planmod.measure(p, takes[p.hash], fps)
    planmod.layout(planned, fps, frame_start, gap=args.gap, lead_in=args.lead_in)
    first, last = planmod.frame_range(planned, frame_start, fps, tail=args.lead_in)
    audio, sr = planmod.mixdown(planned, takes, fps, first, last)
    from exomni_blender.core.take import encode_wav

    mix_path = out / f"{stem}.wav"
    mix_path.write_bytes(encode_wav(audio, sr))
    plan_json = planmod.to_json(script, cast, planned, fps=fps, frame_start=first, frame_end=last, engine=plan.engine,
                                engine_version=plan.engine_version, gap=args.gap, lead_in=args.lead_in,
                                audio=str(mix_path), extra={"cache": stats.to_json()})
    unasked = [o for o in plan_json["overlaps"] if not o["asked"]]
    for o in unasked:
        print(f"exomni batch: note: lines {o['lines'][0] + 1} and {o['lines'][1] + 1} overlap", file=sys.stderr)
    plan_path = out / f"{stem}.plan.json"
    plan_path.write_text(json.dumps(plan_json, indent=1, ensure_ascii=False), encoding="utf-8")

    # 4. The scene, in Blender. A video of an earlier run would not match this scene: it goes first.
    video = out / f"{stem}.mp4"
    if video.exists():
        video.unlink()
        print(f"exomni batch: note: removed {video.name} of an earlier run"
              f"{'; it is rendered again below' if args.render else ' (add --render for a new one)'}", file=sys.stderr)
    try:
        result = build_scene(plan_path, blend, out_blend, out / f"{stem}.blender.log")
    except RuntimeError as exc:
        return fail(str(exc))
    preview = None
    if args.render:
        try:
            preview = render_preview(plan_path, out_blend, video, out / f"{stem}.render.log", args)
        except RenderRefused as exc:
            lighter = "leave out --own-render-settings for the Workbench preview" if args.own_render_settings else \
                "give a smaller --resolution"
            return fail(f"the scene is saved ({out_blend}), not rendered: {exc}; add --confirm-long-render to render "
                        f"it anyway, raise --render-limit (minutes), or {lighter}", status=3)
        except RuntimeError as exc:
            return fail(f"the scene is saved ({out_blend}), but the render failed: {exc}")

    # 5. The farm.
    job_note = ""
    if args.flamenco or args.flamenco_job:
        from ..dialogue import flamenco

        try:
            job = flamenco.build_job(
                name=f"{script.title.get('title', '').splitlines()[0] if script.title.get('title') else stem} dialogue",
                blendfile=out_blend, frame_start=first, frame_end=last, fps=fps,
                output_root=args.flamenco_output or (out / "frames"), chunk_size=args.chunk_size,
                priority=args.flamenco_priority,
                metadata={"exomni.audio": mix_path.as_posix(), "exomni.script": Path(args.script).resolve().as_posix(),
                          "exomni.lines": len(planned), "project": stem})
            if args.flamenco_job:
                path = flamenco.write_job(job, args.flamenco_job)
                job_note = f"; Flamenco job written to {path}"
            else:
                answer = flamenco.submit_job(job, args.flamenco)
                job_note = f"; Flamenco job {answer.get('id', '?')} submitted to {args.flamenco}"
        except (ValueError, flamenco.FlamencoError) as exc:
            return fail(f"the scene is saved ({out_blend}), but the farm job failed: {exc}")

    seconds = (last - first + 1) / fps
    made = [str(out_blend), str(mix_path)] + ([str(video)] if preview else [])
    print(f"done in {time.monotonic() - t0:.1f} s: {len(planned)} lines, {seconds:.1f} s of dialogue "
          f"(frames {first}-{last} at {fps:g} fps); takes: {len(stats.misses)} made, {len(stats.hits)} reused"
          f"{job_note}", flush=True)
    if preview:
        fill = [s["fill"] for s in preview.get("shots", [])]
        print(f"preview: {preview['frames']} frames at {preview['resolution'][0]}x{preview['resolution'][1]} "
              f"({preview['engine']}) in {preview['seconds']:.1f} s"
              + (f"; the speaker fills {min(fill):.0%}-{max(fill):.0%} of the frame" if fill else ""), flush=True)
    print("wrote " + ", ".join(made), flush=True)
    if result.get("warnings"):
        for w in result["warnings"]:
            print(f"exomni batch: note: {w}", file=sys.stderr)
    return 0


# -- steps ---------------------------------------------------------------------------------------

def make_takes(planned, engine, folder: Path, fps: float):
    """Load or make every planned line's take through the one dialogue take cache; returns
    ({hash: Take}, CacheStats)."""
    from exomni_blender.core.take_cache import TakeCache, finish

    from ..dialogue.plan import CacheStats
    from ..engines.base import EngineError, Progress, TakeRequest

    cache = TakeCache(folder)
    stats = CacheStats()
    takes: dict = {}
    bar = ProgressBar("takes")
    total = sum(len(p.line.text) for p in planned) or 1
    done = 0
    for p in planned:
        p.take_dir = str(cache.path(p.hash))
        take = takes.get(p.hash) or cache.get(p.hash)
        if take is not None:
            p.cached = True
            stats.hits.append(p.line.index)
        else:
            p.cached = False
            stats.misses.append(p.line.index)
            base, span = done / total, len(p.line.text) / total
            label = f"{p.line.character}: {p.line.first_words}"

            def report(fraction, message="", base=base, span=span, label=label):
                bar(base + span * fraction, label)

            try:
                take = engine.make_take(TakeRequest(**p.request), Progress(report))
            except EngineError as exc:
                raise EngineError(f"line {p.line.index + 1} ({p.line.character}, script line {p.line.source_line}): "
                                  f"{exc}", exc.code, exc.status) from None
            take = finish(take, fps=fps, intensity=p.delivery.intensity,
                          meta={"character": p.line.character, "line": p.line.index + 1, "voice": p.voice,
                                "seed": p.seed, "hash": p.hash, "delivery": p.delivery.to_json()})
            cache.put(p.hash, take)  # replaces a damaged entry, atomically
        takes[p.hash] = take
        done += len(p.line.text)
        bar(done / total, f"{p.line.character}: {p.line.first_words}")
    bar.done(f"{len(stats.misses)} made, {len(stats.hits)} reused")
    return takes, stats


def _blender(module: str, args: list[str], log_path: Path | None = None, progress: ProgressBar | None = None):
    """Run exomni_blender.blender.<module>; (exit code, output, {tag: payload}). Ctrl-C stops it too."""
    cmd = blender_process.command(module, *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines, tagged = [], {}
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if line.startswith(PROGRESS_TAG + " ") and progress is not None:
                _, fraction, *message = line.split(" ", 2)
                try:
                    progress(float(fraction), message[0] if message else "")
                except ValueError:
                    pass
            elif line.startswith(RESULT_TAG + " ") or line.startswith(INSPECT_TAG + " "):
                tag, payload = line.split(" ", 1)
                tagged[tag] = json.loads(payload)
        proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: the child goes too, before its outputs are cleaned up
            proc.kill()
            proc.wait()
    text = "\n".join(lines)
    if log_path is not None:
        log_path.write_text(text + "\n", encoding="utf-8")
    return proc.returncode, text, tagged


def inspect_blend(blend: Path) -> dict:
    """The scene's objects (name, type, shape keys), frame rate and first frame, read by Blender."""
    code, text, tagged = _blender("dialogue_scene", ["--inspect", "--blend", str(blend)])
    if code != 0 or INSPECT_TAG not in tagged:
        raise RuntimeError(f"Blender could not read {blend}:\n{_tail(text)}")
    return tagged[INSPECT_TAG]


def build_scene(plan_path: Path, blend, out_blend: Path, log_path: Path) -> dict:
    args = ["--plan", str(plan_path), "--out", str(out_blend)]
    if blend is not None:
        args += ["--blend", str(blend)]
    bar = ProgressBar("scene")
    code, text, tagged = _blender("dialogue_scene", args, log_path, bar)
    if code != 0 or RESULT_TAG not in tagged:
        raise RuntimeError(f"building the Blender scene failed (log: {log_path}):\n{_tail(text)}")
    bar.done("saved")
    return tagged[RESULT_TAG]


def render_preview(plan_path: Path, blend: Path, video: Path, log_path: Path, args) -> dict:
    """Render the saved scene to `video` (exomni_blender.blender.dialogue_preview). The video is
    written beside under a temporary name and renamed when whole: a failed, refused or cancelled
    render leaves no file."""
    partial = video.with_name(f".{video.stem}.rendering{video.suffix}")
    partial.unlink(missing_ok=True)  # left by a run that was killed outright
    cmd = ["--plan", str(plan_path), "--blend", str(blend), "--video", str(partial),
           "--limit", str(args.render_limit * 60.0)]
    if args.own_render_settings:
        cmd.append("--own-settings")
    if args.resolution or not args.own_render_settings:
        cmd += ["--width", str(args.resolution or PREVIEW_WIDTH)]
    if args.confirm_long_render:
        cmd.append("--confirm")
    bar = ProgressBar("render")

    def stop(signum, frame):  # a kill is a cancel: the partial video goes, as on Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        code, text, tagged = _blender("dialogue_preview", cmd, log_path, bar)
        result = tagged.get(RESULT_TAG) or {}
        if result.get("refused"):
            raise RenderRefused(result["refused"])
        if code != 0 or not result.get("video") or not partial.is_file():
            raise RuntimeError(f"see {log_path}:\n{_tail(text)}")
        partial.replace(video)
    finally:
        partial.unlink(missing_ok=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    bar.done(f"{result['frames']} frames")
    return result


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.splitlines()[-n:])
