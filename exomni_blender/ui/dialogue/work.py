"""Dialogue: a screenplay (a Text datablock or a file: Fountain, CSV or JSON) becomes a
dialogue in the open scene, the same as `exomni batch` makes it headless.

The backend plans the script (POST /v1/dialogue/plan: characters cast on the scene's heads, each
line's take request with its delivery), the takes are made through POST /v1/takes on a worker
thread and kept in the one dialogue take cache (core/take_cache.py, shared with `exomni batch`) by
their content key beside the .blend (an edited script remakes only the edited
lines), and on the main thread the lines are laid out from the playhead and keyed by
`dialogue_scene.build_into_scene`: one NLA strip per line, the audio on each character's own
channel, a marker per line, idle layers.
"""

import tempfile
from pathlib import Path

import bpy

from ...core import contract as C
from ...core import dialogue_layout as L
from ...core.take import Take
from ...core.take_cache import CacheKeyError, TakeCache, line_meta
from ...remote.client import BackendError, Client
from .. import jobs
from .. import preferences
from ..common import UserError, check_online, scene_fps, session_ids, takes_root, undo_push
from ..generate.operators import job_error

KIND = "dialogue"
CACHE_FOLDER = "dialogue"  # under the add-on's take folder
SCRIPT_SUFFIXES = {".fountain": "fountain", ".spmd": "fountain", ".txt": "fountain", ".csv": "csv", ".json": "json"}


def script_source(settings) -> tuple:
    """(text, format or None, name) of the panel's script; UserError says what to pick."""
    if settings.source == "TEXT":
        if settings.text is None:
            raise UserError("Pick the Text datablock that holds the screenplay (or switch to File).")
        text, name = settings.text.as_string(), settings.text.name
        suffix = Path(name).suffix.lower()
        fmt = SCRIPT_SUFFIXES.get(suffix) if suffix in (".csv", ".json") else None  # else the backend sniffs
    else:
        path = Path(bpy.path.abspath(settings.filepath)) if settings.filepath.strip() else None
        if path is None or not path.is_file():
            raise UserError(f"No script at '{settings.filepath}'; pick a .fountain, .csv or .json file.")
        fmt = SCRIPT_SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise UserError(f"{path.name}: use a .fountain, .csv or .json script.")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"Cannot read {path.name}: {exc}") from None
        name = path.name
    if not text.strip():
        raise UserError(f"The script {name} is empty.")
    return text, fmt, name


def parse_cast(text: str) -> dict:
    return _pairs(text, "Cast", "NAME=Object, e.g. BRICK=HeadA")


def parse_languages(text: str) -> dict:
    return _pairs(text, "Languages", "NAME=language, e.g. ROSA=es or ROSA=Spanish")


def _pairs(text: str, field: str, form: str) -> dict:
    table = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UserError(f"{field} entry '{item.strip()}' should look like {form}.")
        table[name.strip()] = value.strip()
    return table


def plan_body(context) -> dict:
    from ...blender.dialogue_scene import inspect_scene

    check_online()
    scene = context.scene
    settings = scene.exomni_dialogue
    text, fmt, name = script_source(settings)
    engine = getattr(scene.exomni, "engine", "") or C.DEFAULT_ENGINE
    return {"script": text, "format": fmt, "name": name, "engine": engine, "fps": scene_fps(scene),
            "seed": int(settings.seed), "objects": inspect_scene(scene)["objects"],
            "cast": parse_cast(settings.cast), "languages": parse_languages(settings.languages), "scene": scene.name,
            "create_heads": {"AUTO": None, "YES": True, "NO": False}[settings.create_heads]}


def cache_root() -> Path:
    return takes_root() / CACHE_FOLDER


def make_takes(job, url: str, token: str, body: dict, root: str) -> dict:
    """Worker thread: plan the script on the backend, then make (or reuse) every line's take through
    the one cache-or-make step of `exomni batch` (TakeCache.get_or_make), with the same meta."""
    cache = TakeCache(root)
    with Client(url, token) as client:
        job.report(0.01, "Planning the script on the backend")
        plan = client.plan_dialogue(body)
        lines = plan.get("lines") if isinstance(plan, dict) else None
        if not lines:
            raise BackendError("The backend sent a dialogue plan without lines; update the add-on and the backend.")
        fps = float(plan.get("fps") or body["fps"])
        made = reused = 0
        for i, line in enumerate(lines):
            job.check()
            try:
                folder = cache.path(line["hash"])
            except CacheKeyError as exc:
                raise BackendError(f"The backend sent an unusable cache key: {exc}.") from None
            label = f"{line['character']}: {L.first_words(line['text'])}"
            request = line["request"]
            meta = line_meta(character=line["character"], line=line["index"] + 1, voice=request.get("voice"),
                             seed=request.get("seed", 0), delivery=line.get("delivery") or {})

            def make(i=i, line=line, label=label):
                job.report(0.05 + 0.9 * i / len(lines), label)
                return _remote_take(job, client, line, cache.root)

            # The delivery's intensity (a shout moves more) is applied once, before caching, as in `exomni batch`.
            _, cached = cache.get_or_make(line["hash"], make, meta, fps=fps,
                                          intensity=float(line.get("intensity", 1.0)))
            line["take"] = str(folder)
            if cached:
                reused += 1
            else:
                made += 1
        return {"plan": plan, "made": made, "reused": reused}


def _remote_take(job, client, line: dict, download_root: Path) -> Take:
    """One line's take, made by the backend (POST /v1/takes) and downloaded."""
    started = client.submit_take(**line["request"])
    job.remote_id = started["job_id"]
    final = client.wait(job.remote_id, should_cancel=lambda: job.cancel_requested)
    if final["state"] == C.CANCELLED:
        raise jobs.Cancelled()
    if final["state"] == C.FAILED:
        raise BackendError(f"Line {line['index'] + 1} ({line['character']}): {job_error(final)}")
    take_id = str(final.get("take_id") or "")
    if not C.is_take_id(take_id):
        raise BackendError(f"The backend finished line {line['index'] + 1} with an unusable take id.")
    download_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=download_root) as download:
        return client.fetch_take(take_id, Path(download) / "take")


def lay_out(plan: dict, fps: float, frame_start: int, gap: float) -> dict:
    """The scene plan for dialogue_scene.build_into_scene, laid out from `frame_start`."""
    lines = plan["lines"]
    for line in lines:
        take = Take.load(line["take"])
        line["frames"], line["audio_frames"] = L.line_frames(take, fps)
    starts = L.layout(lines, fps, frame_start, gap=gap, lead_in=0.0)
    for line, start in zip(lines, starts):
        line["start_frame"] = start
        line["end_frame"] = start + line["frames"] - 1
    first, last = L.frame_range(lines, starts, frame_start, fps, tail=0.0)
    markers = []
    for heading in plan.get("scenes", []):
        if 0 <= heading["before_line"] < len(lines):
            markers.append({"name": heading["name"], "frame": lines[heading["before_line"]]["start_frame"]})
    return {**plan, "fps": fps, "frame_start": first, "frame_end": last, "lines": lines, "scene_markers": markers}


def start_dialogue(context) -> "jobs.Job":
    """Validate the panel and start the Dialogue job; UserError for bad input."""
    if jobs.busy(KIND):
        raise UserError("A dialogue is already being made; wait for it or press Cancel.")
    body = plan_body(context)
    prefs = preferences.get(context)
    scene = context.scene
    frame_start, gap, fps = scene.frame_current, float(scene.exomni_dialogue.gap), scene_fps(scene)
    args = (prefs.backend_url, prefs.token, body, str(cache_root()))
    scene_name, identity = scene.name, session_ids(scene)

    def work(job):
        return make_takes(job, *args)

    def finish(job):
        if job.state != jobs.DONE:
            return
        from ...blender.dialogue_scene import build_into_scene

        target = bpy.data.scenes.get(scene_name)
        if target is None or session_ids(target) != identity:
            raise UserError(f"The scene '{scene_name}' is gone (was another file opened?); build the dialogue again "
                            "(the takes made are cached, so only the keying is redone).")
        plan = lay_out(job.result["plan"], fps, frame_start, gap)
        warnings = list(plan.get("warnings", []))
        build_into_scene(target, plan, warnings, grow_range=True)
        undo_push("Ex-Omni dialogue")
        r = job.result
        job.message = (f"{len(plan['lines'])} lines keyed, frames {plan['frame_start']}-{plan['frame_end']} "
                       f"({r['made']} takes made, {r['reused']} reused)" + (f"; {warnings[0]}" if warnings else ""))

    return jobs.start(KIND, work, label=f"Dialogue: {body['name']}", on_finish=finish)
