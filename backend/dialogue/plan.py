"""The dialogue plan: what each line's take is made from, where it lands on the timeline, and the
JSON that the Blender side builds the scene from.

Takes are cached by a content hash of everything that shapes them (the spoken text, voice, engine
and its version, seed, frame rate and delivery), so rerunning after a script edit regenerates only
the lines whose inputs changed.

Layout (exomni_blender.core.dialogue_layout, shared with the add-on's Dialogue panel) is in whole
frames: lines follow each other with a gap, a line with a start time sits at that time, and dual
dialogue starts together with the line it pairs with. Those last two are the only overlaps.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from exomni_blender.core import dialogue_layout as L
from exomni_blender.core.request import is_english

from .cast import Cast
from .delivery import Delivery, apply_to_request, delivery_for
from .language import DEFAULT_LANGUAGE, language_of, voice_for_language
from .script import Line, Script

PLAN_FORMAT = "exomni-dialogue-plan"
PLAN_VERSION = 1
# Bump when what this package does to a take after the engine (delivery, resampling) changes,
# so cached takes made the old way are not reused.
POSTPROCESS_VERSION = 2  # 2: a delivery's intensity scales the take around its mood layer

@dataclass
class PlannedLine:
    line: Line
    object: str
    channel: int
    voice: str
    seed: int
    delivery: Delivery
    request: dict  # TakeRequest fields
    hash: str = ""
    take_dir: str = ""
    # Filled in by layout(), once the take's length is known:
    seconds: float = 0.0  # audio length
    frames: int = 0  # frames the line occupies (curves or audio, whichever is longer)
    audio_frames: int = 0
    start_frame: int = 0
    cached: Optional[bool] = None

    @property
    def end_frame(self) -> int:
        """The last frame of the line (inclusive)."""
        return self.start_frame + self.frames - 1

    @property
    def given_start(self) -> Optional[float]:
        return self.line.start

    @property
    def dual(self) -> bool:
        return self.line.dual

    @property
    def marker(self) -> str:
        return L.marker_name(self.line.character, self.line.text)

    @property
    def strip_name(self) -> str:
        return L.strip_name(self.line.index, self.line.character, self.line.text)


def content_hash(request: dict, delivery: Delivery, engine_version: str) -> str:
    """The cache key of a take: equal exactly when the take would come out the same."""
    payload = {
        "text": request["text"], "voice": request.get("voice"), "engine": request["engine"],
        "engine_version": engine_version, "mode": request.get("mode", "say"), "seed": request.get("seed", 0),
        "fps": float(request["fps"]), "rate": round(float(request.get("rate", 1.0)), 6),
        "pitch": round(float(request.get("pitch", 1.0)), 6), "mouth_only": bool(request.get("mouth_only", False)),
        "options": request.get("options") or {}, "delivery": delivery.settings(),
        "postprocess": POSTPROCESS_VERSION,
    }
    if request.get("mood", "neutral") != "neutral":  # neutral lines keep the keys they had before moods
        payload.update(mood=request["mood"], intensity=round(float(request.get("intensity", 1.0)), 6))
    if not is_english(request.get("language")):  # English lines keep the keys they had before languages
        payload.update(language=request["language"])
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


def plan_lines(script: Script, cast: Cast, engine: str, engine_version: str, fps: float,
               mouth_only: bool = False, options: dict | None = None) -> list[PlannedLine]:
    """Every line with its head, voice, delivery, take request and cache key (no timing yet)."""
    from ..engines.base import TakeRequest

    planned = []
    for line in script.lines:
        role = cast.role(line.character)
        delivery = delivery_for(line.parentheticals)
        named = line.language or language_of(line.parentheticals, line.text) or role.language  # None: nobody said
        spoken_in = named or DEFAULT_LANGUAGE
        # A voice the script names for the line is taken as written; the cast's speaks a language
        # someone named (a voice cast with no language speaks the lines as it always did).
        voice = line.voice or (voice_for_language(role.voice, named) if named else role.voice)
        request = TakeRequest(engine=engine, mode="say", text=line.text, fps=float(fps), voice=voice,
                              seed=role.seed, mouth_only=mouth_only, options=dict(options or {}),
                              mood=role.mood, intensity=role.intensity, language=spoken_in)  # the cast's mood
        apply_to_request(request, delivery)  # a parenthetical naming a mood overrides it
        fields = {"engine": request.engine, "mode": request.mode, "text": request.text, "fps": request.fps,
                  "voice": request.voice, "seed": request.seed, "rate": request.rate, "pitch": request.pitch,
                  "mouth_only": request.mouth_only, "mood": request.mood, "intensity": request.intensity,
                  "options": request.options, "language": request.language}
        p = PlannedLine(line=line, object=role.object, channel=role.channel, voice=request.voice, seed=role.seed,
                        delivery=delivery, request=fields)
        p.hash = content_hash(fields, delivery, engine_version)
        planned.append(p)
    return planned


@dataclass
class DialoguePlan:
    """A script planned for an engine: its cast and every line's take request and cache key."""
    script: Script
    cast: Cast
    engine: str
    engine_version: str
    fps: float
    lines: list[PlannedLine]


def engine_version(engine) -> str:
    """The engine as the cache keys know it (a new release of the package makes new takes)."""
    from .. import __version__

    return f"{engine.name} (exomni {__version__})"


def plan_script(script: Script, objects: list, registry, *, engine: str, fps: float, seed: int = 0,
                cast_table: dict | None = None, voices: dict | None = None, create_heads=None,
                mouth_only: bool = False, scene_name: str = "the scene", moods: dict | None = None,
                languages: dict | None = None) -> DialoguePlan:
    """The one dialogue planner (`exomni batch` and POST /v1/dialogue/plan): cast the script's
    characters on the scene's objects, then plan every line as a take request that the engine can
    make, checked with the one request validator before any take is made.

    Raises cast.CastError (a character without a head) or EngineError (an unknown or unavailable
    engine, a line the engine cannot say), each with a message that says what to do."""
    from ..engines.base import EngineError
    from .cast import resolve_cast

    cast = resolve_cast(script.characters, objects, dict(cast_table or {}), dict(voices or {}), create_heads,
                        base_seed=seed, line_counts=script.line_counts, scene_name=scene_name, moods=moods,
                        languages=languages)
    made_by = registry.get(engine, "say")
    registry.check_available(engine)
    version = engine_version(made_by)
    planned = plan_lines(script, cast, made_by.name, version, fps, mouth_only=mouth_only)
    for p in planned:
        try:
            registry.validate(p.request)
        except EngineError as exc:
            raise EngineError(f"line {p.line.index + 1} ({p.line.character}): {exc}", exc.code) from None
    return DialoguePlan(script=script, cast=cast, engine=made_by.name, engine_version=version, fps=float(fps),
                        lines=planned)


def measure(p: PlannedLine, take, fps: float) -> None:
    """Record a take's length on its planned line."""
    p.seconds = float(take.duration)
    p.frames, p.audio_frames = L.line_frames(take, fps)


def layout(planned: list[PlannedLine], fps: float, frame_start: int = 1, gap: float = 0.5,
           lead_in: float = 0.5) -> None:
    """Place the lines on the timeline (in place), once measure() has filled in their lengths."""
    for p, start in zip(planned, L.layout(planned, fps, frame_start, gap, lead_in)):
        p.start_frame = start


def overlaps(planned: list[PlannedLine]) -> list[tuple[int, int, bool]]:
    """(line index, line index, asked) for lines that sound at the same time (see dialogue_layout)."""
    found = L.overlaps(planned, [p.start_frame for p in planned])
    return [(planned[i].line.index, planned[j].line.index, asked) for i, j, asked in found]


def frame_range(planned: list[PlannedLine], frame_start: int, fps: float, tail: float = 0.5) -> tuple[int, int]:
    return L.frame_range(planned, [p.start_frame for p in planned], frame_start, fps, tail)


def to_json(script: Script, cast: Cast, planned: list[PlannedLine], *, fps: float, frame_start: int,
            frame_end: int, engine: str, engine_version: str, gap: float, lead_in: float,
            audio: Optional[str] = None, extra: dict | None = None) -> dict:
    """The plan the Blender side reads (python -m exomni_blender.blender.dialogue_scene --plan)."""
    scene_markers = []
    by_index = {p.line.index: p for p in planned}
    for heading in script.scenes:
        target = by_index.get(heading.before_line)
        if target is not None:
            scene_markers.append({"name": L.clip_name(heading.text), "frame": target.start_frame})
    return {
        "format": PLAN_FORMAT, "version": PLAN_VERSION,
        "script": script.source, "title": script.title.get("title", ""),
        "engine": engine, "engine_version": engine_version,
        "fps": fps, "frame_start": frame_start, "frame_end": frame_end,
        "seconds": (frame_end - frame_start + 1) / fps, "gap": gap, "lead_in": lead_in,
        "characters": [r.to_json() for r in cast],
        "lines": [{
            "index": p.line.index, "character": p.line.character, "object": p.object, "channel": p.channel,
            "text": p.line.text, "parentheticals": p.line.parentheticals, "extension": p.line.extension,
            "scene": p.line.scene, "dual": p.line.dual, "given_start": p.line.start,
            "voice": p.voice, "seed": p.seed, "delivery": p.delivery.to_json(), "gain": p.delivery.volume,
            "hash": p.hash, "take": p.take_dir, "cached": p.cached,
            "start_frame": p.start_frame, "frames": p.frames, "end_frame": p.end_frame,
            "audio_frames": p.audio_frames, "seconds": round(p.seconds, 4),
            "marker": p.marker, "strip": p.strip_name,
        } for p in planned],
        "overlaps": [{"lines": [a, b], "asked": asked} for a, b, asked in overlaps(planned)],
        "scene_markers": scene_markers,
        "audio": audio,
        **(extra or {}),
    }


def mixdown(planned: list[PlannedLine], takes: dict, fps: float, frame_start: int, frame_end: int,
            sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """The whole dialogue as one mono track, each line at its frame and gain (for farm renders and checks)."""
    rates = {t.sample_rate for t in takes.values() if t.has_audio}
    sr = sample_rate or (max(rates) if rates else 22050)
    total = int(math.ceil((frame_end - frame_start + 1) / fps * sr))
    out = np.zeros(total, np.float32)
    for p in planned:
        take = takes[p.hash]
        if not take.has_audio:
            continue
        audio = take.audio.astype(np.float32)
        if take.sample_rate != sr:
            n = int(round(audio.size * sr / take.sample_rate))
            audio = np.interp(np.arange(n) * take.sample_rate / sr, np.arange(audio.size), audio).astype(np.float32)
        at = int(round((p.start_frame - frame_start) / fps * sr))
        end = min(total, at + audio.size)
        if end > at:
            out[at:end] += audio[: end - at] * p.delivery.volume
    return np.clip(out, -1.0, 1.0), sr


@dataclass
class CacheStats:
    hits: list[int] = field(default_factory=list)  # line indices whose take was reused
    misses: list[int] = field(default_factory=list)  # line indices whose take was made

    def to_json(self) -> dict:
        return {"hits": len(self.hits), "misses": len(self.misses), "made": self.misses, "reused": self.hits}
