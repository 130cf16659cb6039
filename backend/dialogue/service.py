"""Dialogue planning as a service: the add-on's Dialogue panel sends a script and the scene's objects,
and gets back each line's head, take request (delivery applied) and cache key. The takes are then
made through the ordinary POST /v1/takes, and the panel lays them out and keys them in Blender.

`plan_dialogue(body, registry)` does the work; `make_router(registry)` mounts it at
POST /v1/dialogue/plan on the backend's FastAPI app (`app.include_router(make_router(registry))`).
Bad scripts and uncast characters come back as errors whose message says what to do.
"""


import csv

from exomni_blender.core import contract as C
from exomni_blender.core.dialogue_layout import clip_name
from exomni_blender.core.request import DEFAULT_FPS, check_field, is_text

from ..engines.base import EngineError
from . import cast as castmod
from .language import LanguageError, language_code
from .plan import plan_script
from .script import MAX_SCRIPT_BYTES, ScriptError, parse_csv, parse_fountain, parse_json

FORMATS = ("fountain", "csv", "json")


def sniff_format(text: str) -> str:
    head = text.lstrip()[:200]
    if head.startswith(("[", "{")):
        return "json"
    first = head.splitlines()[0].lower() if head else ""
    if "," in first and any(w in first for w in ("character", "speaker")) and any(
            w in first for w in ("line", "text", "dialog")):
        return "csv"
    return "fountain"


def parse_script(text: str, fmt: str | None = None, name: str = "script"):
    if fmt is not None and not isinstance(fmt, str):
        raise ScriptError(f"format must be one of {', '.join(FORMATS)}, as text")
    fmt = (fmt or sniff_format(text)).lower()
    if fmt not in FORMATS:
        raise ScriptError(f"unknown script format {fmt[:40]!r}; use one of {', '.join(FORMATS)}")
    parser = {"fountain": parse_fountain, "csv": parse_csv, "json": parse_json}[fmt]
    try:
        script = parser(text, source=name)
    except csv.Error as exc:  # a field over the csv module's limit, a stray NUL, ...
        raise ScriptError(f"{name}: not a CSV this reader can take ({exc}); one line of dialogue per row, "
                          "character,line[,start][,voice]") from None
    except RecursionError:
        raise ScriptError(f"{name}: JSON nested too deeply; a script is a flat list of lines") from None
    if not script.lines:
        raise ScriptError(f"{name} has no dialogue lines; a Fountain character cue is a line in upper case "
                          "after an empty line, with the dialogue on the next line")
    return script


def _field(body: dict, name: str, kind, default):
    value = body.get(name, default)
    if value is None:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise EngineError(f"{name} must be a {getattr(kind, '__name__', kind)}", C.E_BAD_REQUEST)
    return value


def _names(table: dict, field: str, what: str) -> dict:
    """{character: text} from a JSON object, every key and value text of a sensible length."""
    for key, value in table.items():
        if not (is_text(key) and is_text(value) and 0 < len(key) <= 200 and len(value) <= 200):
            raise EngineError(f"{field} maps each character's name to {what}, as text; "
                              f"{str(key)[:40]!r} does not", C.E_BAD_REQUEST)
    return dict(table)


def plan_dialogue(body, registry) -> dict:
    """The plan of a dialogue script: characters (head, voice, seed) and lines (take request, key)."""
    if not isinstance(body, dict):
        raise EngineError('the body must be a JSON object such as {"script": "...", "objects": [...]}',
                          C.E_BAD_REQUEST)
    text = body.get("script")
    if not isinstance(text, str) or not text.strip():
        raise EngineError("script is empty: send the screenplay (Fountain, CSV or JSON) as text in 'script'",
                          C.E_EMPTY_TEXT)
    if len(text) > MAX_SCRIPT_BYTES:
        raise EngineError(f"the script has {len(text)} characters, over {MAX_SCRIPT_BYTES}; split it into scenes",
                          C.E_TEXT_TOO_LONG)
    if not is_text(text):
        raise EngineError("the script holds a broken character (an unpaired surrogate); send it as UTF-8 text",
                          C.E_BAD_SCRIPT)
    name = str(body.get("name") or "script")
    engine_name = _field(body, "engine", str, C.DEFAULT_ENGINE)
    fps = check_field("fps", body.get("fps", DEFAULT_FPS) if body.get("fps") is not None else DEFAULT_FPS)
    seed = check_field("seed", body.get("seed") if body.get("seed") is not None else 0)
    objects = _field(body, "objects", list, [])
    if not all(isinstance(o, dict) and is_text(o.get("name")) for o in objects):
        raise EngineError('objects must be a list of {"name", "type", "shape_keys"}', C.E_BAD_REQUEST)
    table = _names(_field(body, "cast", dict, {}), "cast", "an object name")
    voices = _names(_field(body, "voices", dict, {}), "voices", "a voice such as en-gb")
    languages = _names(_field(body, "languages", dict, {}), "languages", "a language such as es or Spanish")
    try:
        languages = {name: language_code(value, f"languages: {name}'s ") for name, value in languages.items()}
    except LanguageError as exc:
        raise EngineError(str(exc), C.E_BAD_REQUEST) from None
    mouth_only = _field(body, "mouth_only", bool, False)
    create = body.get("create_heads")
    if create is not None and not isinstance(create, bool):
        raise EngineError("create_heads must be true, false or null", C.E_BAD_REQUEST)

    try:
        script = parse_script(text, body.get("format"), name)
    except ScriptError as exc:
        raise EngineError(str(exc), C.E_BAD_SCRIPT) from None
    try:
        plan = plan_script(script, objects, registry, engine=engine_name, fps=fps, seed=seed, cast_table=table,
                           voices=voices, create_heads=create, mouth_only=mouth_only,
                           scene_name=str(body.get("scene") or "the scene"), languages=languages)
    except castmod.CastError as exc:
        raise EngineError(str(exc), C.E_UNCAST) from None
    return {
        "engine": plan.engine, "engine_version": plan.engine_version, "fps": fps,
        "title": script.title.get("title", ""),
        "characters": [r.to_json() for r in plan.cast],
        "lines": [{
            "index": p.line.index, "character": p.line.character, "object": p.object, "channel": p.channel,
            "text": p.line.text, "parentheticals": p.line.parentheticals, "dual": p.line.dual,
            "language": p.request["language"],
            "given_start": p.line.start, "scene": p.line.scene, "marker": p.marker, "strip": p.strip_name,
            "gain": p.delivery.volume, "intensity": p.delivery.intensity, "delivery": p.delivery.to_json(),
            "hash": p.hash, "request": p.request,
        } for p in plan.lines],
        "scenes": [{"name": clip_name(h.text), "before_line": h.before_line} for h in script.scenes],
        "warnings": plan.cast.warnings,
    }


def make_router(registry):
    """POST /v1/dialogue/plan for the backend's FastAPI app."""
    import json

    from fastapi import APIRouter, Request
    from starlette.concurrency import run_in_threadpool

    router = APIRouter()

    @router.post(C.DIALOGUE_PLAN)
    async def dialogue_plan(request: Request):
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except (ValueError, RecursionError):
            raise EngineError("the body is not valid JSON; send {\"script\": \"...\", \"objects\": [...]}",
                              C.E_MALFORMED_JSON) from None
        return await run_in_threadpool(plan_dialogue, body, registry)

    return router
