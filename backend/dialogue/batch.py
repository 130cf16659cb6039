"""A dialogue scene from a screenplay, headless: what `exomni batch` does, as a function.

`run_batch(script, out, ...)` plans every line of the script (the one dialogue planner, as
POST /v1/dialogue/plan), makes or reuses each line's take through the one dialogue take cache
(`TakeCache.get_or_make`, the same step as the add-on's Dialogue panel, so both write the same
meta), lays the lines out, mixes their audio, has Blender build and save the scene, and, when asked,
renders a preview and sends the render to a Flamenco Manager. It reports as it goes through a
`BatchReport` (the command line prints it) and returns a `BatchResult`; a step that cannot be done
raises `BatchError` with the message to show and the exit status.

Files in OUT, each named after the script so scripts sharing a folder never share one:
<script>.plan.json, <script>.wav (the mixed dialogue), <script>.blend (the input .blend is never
written), <script>.blender.log, and with a render <script>.mp4 and <script>.render.log. Takes go to
OUT/takes/<content key>/ and stay there between runs (a rerun after an edit makes only the edited
lines). A video of an earlier run never stays beside a new scene: it is removed before the scene is
built, and rendered again only when a render is asked for.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from exomni_blender.core import contract as C
from exomni_blender.core.dialogue_layout import INSPECT_TAG, PROGRESS_TAG, RESULT_TAG
from exomni_blender.core.errors import ExOmniError
from exomni_blender.core.request import FPS_RANGE

from .. import blender_process
from .plan import CacheStats, DialoguePlan

PREVIEW_WIDTH = 384  # the preview's default width: a close-up's mouth reads well, and 2 CPU cores keep up
EMPTY_SCENE = {"objects": [], "fps": 30.0, "frame_start": 1}


class BatchError(ExOmniError):
    """A batch step that cannot be done; the message says what to do, `status` is the exit status."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


class RenderRefused(BatchError):
    """The render's estimate is over the render limit and a long render was not confirmed (exit
    status 3); `reason` is the estimate against the limit."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message, status=3)
        self.reason = reason or message


class BatchReport:
    """What a batch run tells while it works. Every method does nothing here; the command line's
    report prints. Stages with progress: "takes", "scene" and "render"."""

    def planned(self, plan: DialoguePlan, fps: float, script_name: str) -> None:
        """The script is planned: its cast and every line's take request, before anything is made."""

    def note(self, message: str) -> None:
        """Something worth knowing that is not an error (a cast guess, an overlap, a removed video)."""

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        """`stage` is `fraction` (0..1) done, at `message`."""

    def stage_done(self, stage: str, message: str) -> None:
        """`stage` is finished; `message` sums it up."""


@dataclass
class BatchResult:
    plan: DialoguePlan
    fps: float
    checked_only: bool = False  # check=True: planned and reported, nothing made
    frame_start: int = 0
    frame_end: int = 0
    cache: CacheStats = field(default_factory=CacheStats)
    plan_path: Optional[Path] = None
    audio: Optional[Path] = None  # the mixed dialogue
    blend: Optional[Path] = None  # the saved scene
    video: Optional[Path] = None  # the preview, when rendered
    preview: Optional[dict] = None  # the render's report (frames, resolution, engine, seconds, shots)
    removed_video: Optional[Path] = None  # an earlier run's video, removed
    flamenco_job_file: Optional[Path] = None
    flamenco_job_id: Optional[str] = None
    warnings: list = field(default_factory=list)  # from building the scene
    seconds: float = 0.0  # the run's wall time

    @property
    def dialogue_seconds(self) -> float:
        return (self.frame_end - self.frame_start + 1) / self.fps


MAX_LINES = 500  # a long scene; a whole feature is a few thousand lines, made scene by scene
CHARS_PER_SECOND = 14.0  # speech at a natural pace, for estimates
TAKE_BYTES_PER_SECOND = 22050 * 2 + 30 * 52 * 7  # a take folder: 16-bit audio plus the curves as JSON


def estimate_batch(lines) -> dict:
    """What making these planned lines costs, roughly: their count, minutes of speech, MB of takes."""
    seconds = sum(len(p.line.text) for p in lines) / CHARS_PER_SECOND
    return {"lines": len(lines), "speech_minutes": seconds / 60, "megabytes": seconds * TAKE_BYTES_PER_SECOND / 2**20}


def run_batch(script_path, out, *, blend=None, engine: str = C.DEFAULT_ENGINE,
              registry: Callable[[], object] | None = None, cast: dict | None = None, cast_file=None,
              voices: dict | None = None, languages: dict | None = None, create_heads: bool | None = None,
              gap: float = 0.5,
              lead_in: float = 0.5, fps: float | None = None, seed: int = 0, mouth_only: bool = False,
              render: bool = False, resolution: int | None = None, own_render_settings: bool = False,
              render_limit: float = 10.0, confirm_long_render: bool = False, flamenco: str | None = None,
              flamenco_job=None, flamenco_output=None, flamenco_priority: int = 50, chunk_size: int = 10,
              check: bool = False, confirm_large: bool = False, listen: bool = True,
              report: BatchReport | None = None) -> BatchResult:
    """Make the dialogue scene of `script_path` (.fountain, .csv or .json) in the folder `out`,
    starting from the scene `blend` (read only; None: an empty scene).

    `registry` makes the engine registry (called once the inputs are read; default: the backend's
    default registry); `cast` maps characters to head objects, `voices` characters to voices and
    `languages` characters to language codes,
    over a cast file (`cast_file`, and SCRIPT.cast.json/.toml beside the script, read anyway).
    `fps` None is the scene's frame rate. `render` adds the preview video (Workbench, `resolution`
    wide, or the scene's own settings), refused when estimated past `render_limit` minutes unless
    `confirm_long_render`. `flamenco` (a Manager URL) submits the render job, `flamenco_job` (a file)
    writes it. `check` plans and reports only. A script of more than MAX_LINES lines is refused with its
    estimate unless `confirm_large`. `listen` (the default) keys the listening layer: everyone looks
    at whoever speaks and reacts; a cast entry with "listen": false leaves that character out.
    Raises BatchError (RenderRefused for a refused render)."""
    from ..engines.base import EngineError
    from . import cast as castmod
    from . import plan as planmod
    from .script import ScriptError, load_script

    report = report or BatchReport()
    t0 = time.monotonic()
    out = Path(out).resolve()
    try:
        script = load_script(script_path)
    except ScriptError as exc:
        raise BatchError(str(exc)) from None
    blend_arg, blend = blend, Path(blend).resolve() if blend else None
    if blend is not None and (not blend.is_file() or blend.suffix.lower() != ".blend"):
        raise BatchError(f"--blend {blend_arg}: no such .blend file; give the scene to start from, or leave --blend out")
    stem = Path(script_path).stem
    out_blend = out / f"{stem}.blend"
    if blend is not None and out_blend == blend:
        raise BatchError(f"{out_blend} is the input scene; choose another --out folder so the input is never "
                         "overwritten")
    if gap < 0 or lead_in < 0:
        raise BatchError("--gap and --lead-in are seconds, zero or more")
    if fps is not None and not (FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise BatchError(f"--fps must be a number from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    if resolution is not None and not (16 <= resolution <= 8192):
        raise BatchError("--resolution is a width in pixels, from 16 to 8192")
    if not render_limit > 0:
        raise BatchError("--render-limit is minutes, more than zero")

    # 1. The scene, the cast and every line's take request, checked before anything is made.
    try:
        scene = inspect_blend(blend) if blend is not None else dict(EMPTY_SCENE)
    except RuntimeError as exc:
        raise BatchError(str(exc)) from None
    fps = float(fps or scene["fps"])
    try:
        table, voice_table, moods, listens, language_table = {}, {}, {}, {}, {}
        for source in (castmod.sidecar_for(script_path), cast_file):
            if source:
                t, v, m = castmod.read_cast_file(source)
                table.update(t)
                voice_table.update(v)
                moods.update(m)
                listens.update(castmod.read_listen_switches(source))
                language_table.update(castmod.read_languages(source))
        table.update(cast or {})
        voice_table.update(voices or {})
        language_table.update(languages or {})
        if registry is None:
            from ..engines.registry import default_registry as registry
        engines = registry()
        plan = planmod.plan_script(script, scene["objects"], engines, engine=engine, fps=fps, seed=seed,
                                   cast_table=table, voices=voice_table, create_heads=create_heads,
                                   mouth_only=mouth_only, scene_name=blend.name if blend else "the new scene",
                                   moods=moods, languages=language_table)
    except (castmod.CastError, EngineError) as exc:
        raise BatchError(str(exc)) from None
    for warning in plan.cast.warnings:
        report.note(warning)
    report.planned(plan, fps, Path(script_path).name)
    result = BatchResult(plan=plan, fps=fps)
    estimate = estimate_batch(plan.lines)
    if estimate["lines"] > MAX_LINES and not (confirm_large or check):
        raise BatchError(f"{Path(script_path).name} has {estimate['lines']} lines: about "
                         f"{estimate['speech_minutes']:.0f} minutes of speech and {estimate['megabytes']:.0f} MB of "
                         f"takes, over the {MAX_LINES} lines one batch makes unasked; split the script into scenes, "
                         "or pass --confirm-large-batch to make them all")
    if check:
        result.checked_only = True
        result.seconds = time.monotonic() - t0
        return result

    # 2. Takes, from the cache where their inputs have not changed.
    planned = plan.lines
    try:
        takes, result.cache = make_takes(planned, engines.get(plan.engine, "say"), out / "takes", fps,
                                         lambda f, m: report.progress("takes", f, m))
    except EngineError as exc:
        raise BatchError(str(exc)) from None
    report.stage_done("takes", f"{len(result.cache.misses)} made, {len(result.cache.hits)} reused")

    # 3. Layout, the mixed dialogue and the plan for Blender.
    frame_start = int(scene.get("frame_start", 1))
    for p in planned:
        planmod.measure(p, takes[p.hash], fps)
    planmod.layout(planned, fps, frame_start, gap=gap, lead_in=lead_in)
    first, last = planmod.frame_range(planned, frame_start, fps, tail=lead_in)
    result.frame_start, result.frame_end = first, last
    audio, sr = planmod.mixdown(planned, takes, fps, first, last)
    from exomni_blender.core.take import encode_wav

    result.audio = out / f"{stem}.wav"
    result.audio.write_bytes(encode_wav(audio, sr))
    plan_json = planmod.to_json(script, plan.cast, planned, fps=fps, frame_start=first, frame_end=last,
                                engine=plan.engine, engine_version=plan.engine_version, gap=gap, lead_in=lead_in,
                                audio=str(result.audio), extra={"cache": result.cache.to_json(), "listen": listen})
    quiet = {castmod.key(name) for name, on in listens.items() if not on}
    for role in plan_json["characters"]:
        if castmod.key(role["character"]) in quiet:
            role["listen"] = False
    for o in plan_json["overlaps"]:
        if not o["asked"]:
            report.note(f"lines {o['lines'][0] + 1} and {o['lines'][1] + 1} overlap")
    result.plan_path = out / f"{stem}.plan.json"
    result.plan_path.write_text(json.dumps(plan_json, indent=1, ensure_ascii=False), encoding="utf-8")

    # 4. The scene, in Blender. A video of an earlier run would not match this scene: it goes first.
    video = out / f"{stem}.mp4"
    if video.exists():
        video.unlink()
        result.removed_video = video
        report.note(f"removed {video.name} of an earlier run"
                    f"{'; it is rendered again below' if render else ' (add --render for a new one)'}")
    try:
        built = build_scene(result.plan_path, blend, out_blend, out / f"{stem}.blender.log",
                            lambda f, m: report.progress("scene", f, m))
    except RuntimeError as exc:
        raise BatchError(str(exc)) from None
    report.stage_done("scene", "saved")
    result.blend = out_blend
    result.warnings = list(built.get("warnings") or [])
    if render:
        try:
            result.preview = render_preview(result.plan_path, out_blend, video, out / f"{stem}.render.log",
                                            resolution=resolution, own_render_settings=own_render_settings,
                                            render_limit=render_limit, confirm_long_render=confirm_long_render,
                                            progress=lambda f, m: report.progress("render", f, m))
        except RenderRefused as exc:
            lighter = "leave out --own-render-settings for the Workbench preview" if own_render_settings else \
                "give a smaller --resolution"
            raise RenderRefused(f"the scene is saved ({out_blend}), not rendered: {exc.reason}; add "
                                f"--confirm-long-render to render it anyway, raise --render-limit (minutes), or "
                                f"{lighter}", exc.reason) from None
        except RuntimeError as exc:
            raise BatchError(f"the scene is saved ({out_blend}), but the render failed: {exc}") from None
        result.video = video
        report.stage_done("render", f"{result.preview['frames']} frames")

    # 5. The farm.
    if flamenco or flamenco_job:
        from . import flamenco as farm

        title = script.title.get("title")
        try:
            job = farm.build_job(
                name=f"{title.splitlines()[0] if title else stem} dialogue",
                blendfile=out_blend, frame_start=first, frame_end=last, fps=fps,
                output_root=flamenco_output or (out / "frames"), chunk_size=chunk_size, priority=flamenco_priority,
                metadata={"exomni.audio": result.audio.as_posix(),
                          "exomni.script": Path(script_path).resolve().as_posix(),
                          "exomni.lines": len(planned), "project": stem})
            if flamenco_job:
                result.flamenco_job_file = farm.write_job(job, flamenco_job)
            else:
                result.flamenco_job_id = str(farm.submit_job(job, flamenco).get("id", "?"))
        except (ValueError, farm.FlamencoError) as exc:
            raise BatchError(f"the scene is saved ({out_blend}), but the farm job failed: {exc}") from None
    result.seconds = time.monotonic() - t0
    return result


# -- steps ---------------------------------------------------------------------------------------

def make_takes(planned, engine, folder: Path, fps: float, progress: Callable[[float, str], None] | None = None):
    """Load or make every planned line's take through the one dialogue take cache
    (TakeCache.get_or_make, as the Dialogue panel); returns ({hash: Take}, CacheStats)."""
    from exomni_blender.core.take_cache import TakeCache, line_meta

    from ..engines.base import EngineError, Progress, TakeRequest

    progress = progress or (lambda fraction, message: None)
    cache = TakeCache(folder)
    stats = CacheStats()
    takes: dict = {}
    total = sum(len(p.line.text) for p in planned) or 1
    done = 0
    for p in planned:
        p.take_dir = str(cache.path(p.hash))
        label = f"{p.line.character}: {p.line.first_words}"
        if p.hash in takes:  # the same line said again in this script
            cached = True
        else:
            base, span = done / total, len(p.line.text) / total

            def make(p=p, base=base, span=span, label=label):
                def report(fraction, message=""):
                    progress(base + span * fraction, label)

                try:
                    return engine.make_take(TakeRequest(**p.request), Progress(report))
                except EngineError as exc:
                    raise EngineError(f"line {p.line.index + 1} ({p.line.character}, script line "
                                      f"{p.line.source_line}): {exc}", exc.code, exc.status) from None

            meta = line_meta(character=p.line.character, line=p.line.index + 1, voice=p.voice, seed=p.seed,
                             delivery=p.delivery.to_json())
            # A damaged entry is a miss: made again and replaced, atomically.
            takes[p.hash], cached = cache.get_or_make(p.hash, make, meta, fps=fps, intensity=p.delivery.intensity)
        p.cached = cached
        (stats.hits if cached else stats.misses).append(p.line.index)
        done += len(p.line.text)
        progress(done / total, label)
    return takes, stats


def _blender(module: str, args: list[str], log_path: Path | None = None,
             progress: Callable[[float, str], None] | None = None):
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


def build_scene(plan_path: Path, blend, out_blend: Path, log_path: Path,
                progress: Callable[[float, str], None] | None = None) -> dict:
    """Build the planned dialogue on `blend` (None: an empty scene) in Blender and save it as
    `out_blend`; returns Blender's summary (warnings, ...)."""
    args = ["--plan", str(plan_path), "--out", str(out_blend)]
    if blend is not None:
        args += ["--blend", str(blend)]
    code, text, tagged = _blender("dialogue_scene", args, log_path, progress)
    if code != 0 or RESULT_TAG not in tagged:
        raise RuntimeError(f"building the Blender scene failed (log: {log_path}):\n{_tail(text)}")
    return tagged[RESULT_TAG]


def render_preview(plan_path: Path, blend: Path, video: Path, log_path: Path, *, resolution: int | None = None,
                   own_render_settings: bool = False, render_limit: float = 10.0, confirm_long_render: bool = False,
                   progress: Callable[[float, str], None] | None = None) -> dict:
    """Render the saved scene to `video` (exomni_blender.blender.dialogue_preview). The video is
    written beside under a temporary name and renamed when whole: a failed, refused or cancelled
    render leaves no file. RenderRefused when estimated past `render_limit` minutes."""
    partial = video.with_name(f".{video.stem}.rendering{video.suffix}")
    partial.unlink(missing_ok=True)  # left by a run that was killed outright
    cmd = ["--plan", str(plan_path), "--blend", str(blend), "--video", str(partial),
           "--limit", str(render_limit * 60.0)]
    if own_render_settings:
        cmd.append("--own-settings")
    if resolution or not own_render_settings:
        cmd += ["--width", str(resolution or PREVIEW_WIDTH)]
    if confirm_long_render:
        cmd.append("--confirm")

    def stop(signum, frame):  # a kill is a cancel: the partial video goes, as on Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        code, text, tagged = _blender("dialogue_preview", cmd, log_path, progress)
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
    return result


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.splitlines()[-n:])
