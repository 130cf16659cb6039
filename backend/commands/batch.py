"""`exomni batch SCRIPT --blend SCENE.blend --out DIR`: a dialogue scene from a screenplay, headless.

Every line of the script (Fountain, CSV or JSON) becomes a take made locally by the engine and cached
in DIR/takes/<content hash>/, so a rerun after an edit makes only the edited lines again. A Blender
process then keys each take on its character's head (one NLA strip per line), lays its audio on the
character's own sequencer channel, marks each line on the timeline and saves DIR/<script>.blend (the
input .blend is never written). `--render` adds DIR/<script>.mp4 with the dialogue mixed in;
`--flamenco URL` sends the render to a Flamenco Manager, `--flamenco-job FILE` writes the job.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from exomni_blender.core import contract as C

from .. import blender_process
from exomni_blender.core.request import FPS_RANGE

from ._common import ProgressBar, add_engine_options, fail, make_registry

PROGRESS_TAG = "EXOMNI_PROGRESS"  # lines the Blender side prints: "<tag> <fraction> <message>"
RESULT_TAG = "EXOMNI_RESULT"  # "<tag> <json>"
INSPECT_TAG = "EXOMNI_INSPECT"


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
    p.add_argument("--render", action="store_true", help="render DIR/<script>.mp4 with the dialogue mixed in")
    p.add_argument("--resolution", type=int, default=None, metavar="PIXELS",
                   help="render width (height follows 16:9); default: the scene's, or 640 for a new scene")
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
    from ..dialogue.script import ScriptError, load_script

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

    # 1. The scene and the cast, checked before anything is made.
    try:
        scene = inspect_blend(blend) if blend is not None else {"objects": [], "fps": 30.0, "frame_start": 1}
    except RuntimeError as exc:
        return fail(str(exc))
    fps = float(args.fps or scene["fps"])
    try:
        table, voices = {}, {}
        for source in (castmod.sidecar_for(args.script), args.cast_file):
            if source:
                t, v = castmod.load_cast_file(source)
                table.update(t)
                voices.update(v)
        table.update(castmod.parse_cast_arg(args.cast))
        voices.update(castmod.parse_voices_arg(args.voices))
        cast = castmod.resolve_cast(script.characters, scene["objects"], table, voices, args.create_heads,
                                    base_seed=args.seed, line_counts=script.line_counts,
                                    scene_name=blend.name if blend else "the new scene")
    except castmod.CastError as exc:
        return fail(str(exc))
    for warning in cast.warnings:
        print(f"exomni batch: note: {warning}", file=sys.stderr)

    from ..dialogue import plan as planmod
    from ..dialogue.service import engine_version
    from ..engines.base import EngineError

    registry = make_registry(args)
    try:
        engine = registry.get(args.engine, "say")
        registry.check_available(args.engine)
        planned = planmod.plan_lines(script, cast, engine.name, engine_version(engine), fps, mouth_only=args.mouth_only)
        for p in planned:  # every line is a request the engine can make, before anything is made
            try:
                registry.validate(p.request)
            except EngineError as exc:
                raise EngineError(f"line {p.line.index + 1} ({p.line.character}): {exc}", exc.code) from None
    except EngineError as exc:
        return fail(str(exc))
    print(f"exomni batch: {Path(args.script).name}: {len(script.lines)} lines, {len(cast.roles)} characters; "
          f"engine {engine.name}, {fps:g} fps", flush=True)
    for role in cast:
        print(f"  {role.character:<16} -> {role.object}{' (new head)' if role.create else ''}, voice {role.voice}, "
              f"{role.lines} line(s)", flush=True)
    if args.check:
        return 0

    # 2. Takes, from the cache where their inputs have not changed.
    try:
        takes, stats = make_takes(planned, engine, out / "takes", fps)
    except EngineError as exc:
        return fail(str(exc))

    # 3. Layout, the mixed dialogue and the plan for Blender.
    frame_start = int(scene.get("frame_start", 1))
    for p in planned:
        planmod.measure(p, takes[p.hash], fps)
    planmod.layout(planned, fps, frame_start, gap=args.gap, lead_in=args.lead_in)
    first, last = planmod.frame_range(planned, frame_start, fps, tail=args.lead_in)
    audio, sr = planmod.mixdown(planned, takes, fps, first, last)
    from exomni_blender.core.take import encode_wav

    mix_path = out / f"{stem}.wav"
    mix_path.write_bytes(encode_wav(audio, sr))
    plan = planmod.to_json(script, cast, planned, fps=fps, frame_start=first, frame_end=last, engine=engine.name,
                           engine_version=engine_version(engine), gap=args.gap, lead_in=args.lead_in, audio=str(mix_path),
                           extra={"cache": stats.to_json()})
    unasked = [o for o in plan["overlaps"] if not o["asked"]]
    for o in unasked:
        print(f"exomni batch: note: lines {o['lines'][0] + 1} and {o['lines'][1] + 1} overlap", file=sys.stderr)
    plan_path = out / "plan.json"
    plan_path.write_text(json.dumps(plan, indent=1, ensure_ascii=False), encoding="utf-8")

    # 4. The scene, in Blender.
    video = out / f"{stem}.mp4" if args.render else None
    try:
        result = build_scene(plan_path, blend, out_blend, video, args.resolution, out / "blender.log")
    except RuntimeError as exc:
        return fail(str(exc))

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
    made = [str(out_blend), str(mix_path)] + ([str(video)] if video else [])
    print(f"done in {time.monotonic() - t0:.1f} s: {len(planned)} lines, {seconds:.1f} s of dialogue "
          f"(frames {first}-{last} at {fps:g} fps); takes: {len(stats.misses)} made, {len(stats.hits)} reused"
          f"{job_note}", flush=True)
    print("wrote " + ", ".join(made), flush=True)
    if result.get("warnings"):
        for w in result["warnings"]:
            print(f"exomni batch: note: {w}", file=sys.stderr)
    return 0


# -- steps ---------------------------------------------------------------------------------------

def make_takes(planned, engine, folder: Path, fps: float):
    """Load or make every planned line's take; returns ({hash: Take}, CacheStats)."""
    from exomni_blender.core.take import Take, TakeFormatError

    from ..dialogue.delivery import apply_to_take
    from ..dialogue.plan import CacheStats
    from ..engines.base import EngineError, Progress, TakeRequest
    from ..store import TakeStore

    store = TakeStore(folder)  # the cache is a take store keyed by content hash
    stats = CacheStats()
    takes: dict = {}
    bar = ProgressBar("takes")
    total = sum(len(p.line.text) for p in planned) or 1
    done = 0
    for p in planned:
        target = folder / p.hash
        p.take_dir = str(target)
        take = takes.get(p.hash)
        if take is None and (target / "take.json").is_file():
            try:
                take = Take.load(target)
            except (TakeFormatError, OSError, ValueError, KeyError):
                take = None  # a damaged cache entry is simply made again
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

            request = TakeRequest(**p.request)
            try:
                take = engine.make_take(request, Progress(report))
            except EngineError as exc:
                raise EngineError(f"line {p.line.index + 1} ({p.line.character}, script line {p.line.source_line}): "
                                  f"{exc}", exc.code, exc.status) from None
            if abs(take.fps - fps) > 1e-6:
                take = take.resampled(fps)
            apply_to_take(take, p.delivery)
            take.meta = {**take.meta, "character": p.line.character, "line": p.line.index + 1,
                         "voice": p.voice, "seed": p.seed, "hash": p.hash}
            store.put(take, p.hash)  # replaces a damaged entry, atomically
        takes[p.hash] = take
        done += len(p.line.text)
        bar(done / total, f"{p.line.character}: {p.line.first_words}")
    bar.done(f"{len(stats.misses)} made, {len(stats.hits)} reused")
    return takes, stats


def _blender(args: list[str], log_path: Path | None = None, progress: ProgressBar | None = None):
    cmd = blender_process.command("dialogue_scene", *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines, tagged = [], {}
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
    text = "\n".join(lines)
    if log_path is not None:
        log_path.write_text(text + "\n", encoding="utf-8")
    return proc.returncode, text, tagged


def inspect_blend(blend: Path) -> dict:
    """The scene's objects (name, type, shape keys), frame rate and first frame, read by Blender."""
    code, text, tagged = _blender(["--inspect", "--blend", str(blend)])
    if code != 0 or INSPECT_TAG not in tagged:
        raise RuntimeError(f"Blender could not read {blend}:\n{_tail(text)}")
    return tagged[INSPECT_TAG]


def build_scene(plan_path: Path, blend, out_blend: Path, video, resolution, log_path: Path) -> dict:
    args = ["--plan", str(plan_path), "--out", str(out_blend)]
    if blend is not None:
        args += ["--blend", str(blend)]
    if video is not None:
        args += ["--video", str(video)]
    if resolution:
        args += ["--resolution", str(int(resolution))]
    bar = ProgressBar("scene")
    code, text, tagged = _blender(args, log_path, bar)
    if code != 0 or RESULT_TAG not in tagged:
        raise RuntimeError(f"building the Blender scene failed (log: {log_path}):\n{_tail(text)}")
    bar.done("saved" + (" and rendered" if video is not None else ""))
    return tagged[RESULT_TAG]


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.splitlines()[-n:])
