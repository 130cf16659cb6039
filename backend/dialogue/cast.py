"""Who plays whom: each character's head in the Blender scene, voice and seed.

A character finds its head by name (case, spaces and punctuation ignored: BRICK matches "Brick",
"brick_head" or "BrickHead"), or through a cast table: `--cast "BRICK=HeadA,STEEL=HeadB"` on the
command line, or a sidecar file next to the script (SCRIPT.cast.json or SCRIPT.cast.toml) mapping
names to an object or to {object, voice, mood, intensity, language}: a mood or a language there is
the character's default for every line (a line's own parenthetical, "(angrily)" or "(in French)",
still wins). Characters without a head are
reported all at once, before any take is made, unless heads are to be created for them.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from exomni_blender.core.errors import ExOmniError
from exomni_blender.core.face import MOOD_NAMES
from exomni_blender.core.request import INTENSITY_RANGE

from .language import DEFAULT_LANGUAGE, LanguageError, language_code

# Distinct eSpeak NG timbres, handed out in order of first appearance.
DEFAULT_VOICES = ("en-us+m3", "en-gb+m1", "en-us+f2", "en-us+m7", "en-gb+f3", "en-us+m2", "en-gb+m4",
                  "en-us+f4", "en-gb+m6", "en-us+f1", "en-gb+m5", "en-us+m1")
_HEAD_WORDS = ("head", "face", "mesh", "geo")


class CastError(ExOmniError, ValueError):
    """A cast that cannot be resolved; the message lists what is missing and how to fix it."""


def key(name: str) -> str:
    """A name reduced for matching: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def display_name(character: str) -> str:
    """An object name for a created head: 'MR. STEEL' -> 'Mr. Steel'."""
    words = character.split()
    return " ".join(w[:1].upper() + w[1:].lower() for w in words)[:63] or "Head"


@dataclass
class Role:
    character: str
    object: str  # the head's object name in the scene
    voice: str
    seed: int
    create: bool = False  # the head does not exist yet and is to be created
    channel: int = 1  # the character's own sequencer channel, counted from the first free one
    lines: int = 0
    mood: str = "neutral"  # the character's default mood, for lines whose parentheticals name none
    intensity: float = 1.0
    language: Optional[str] = None  # the character's language from the cast table, for lines that name none

    def to_json(self) -> dict:
        return {"character": self.character, "object": self.object, "voice": self.voice, "seed": self.seed,
                "create": self.create, "channel": self.channel, "lines": self.lines, "mood": self.mood,
                "intensity": self.intensity, "language": self.language or DEFAULT_LANGUAGE}


@dataclass
class Cast:
    roles: dict[str, Role]  # by character key
    warnings: list[str] = field(default_factory=list)

    def role(self, character: str) -> Role:
        return self.roles[key(character)]

    def __iter__(self):
        return iter(self.roles.values())


# -- reading cast tables --------------------------------------------------------------------------

def _pairs(text: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise CastError(f"{what} entry {item.strip()!r} should look like NAME=VALUE, "
                            f"e.g. --{what} \"BRICK=HeadA,STEEL=HeadB\"")
        out[name.strip()] = value.strip()
    return out


def parse_cast_arg(text: str) -> dict[str, str]:
    """`BRICK=HeadA,STEEL=HeadB` -> {character: object}."""
    return _pairs(text, "cast")


def parse_voices_arg(text: str) -> dict[str, str]:
    """`BRICK=en-gb+m3,STEEL=en-us+f2` -> {character: voice}."""
    return _pairs(text, "voices")


def parse_languages_arg(text: str) -> dict[str, str]:
    """`ROSA=es,HANS=German` -> {character: language code}."""
    try:
        return {name: language_code(value, f"--languages: {name}'s ") for name, value in _pairs(text, "languages").items()}
    except LanguageError as exc:
        raise CastError(str(exc)) from None


def sidecar_for(script_path) -> Optional[Path]:
    """SCRIPT.cast.json or SCRIPT.cast.toml beside the script (with or without its extension)."""
    p = Path(script_path)
    for stem in (p.with_suffix(""), p):
        for ext in (".cast.json", ".cast.toml"):
            candidate = stem.parent / (stem.name + ext)
            if candidate.is_file():
                return candidate
    return None


def load_cast_file(path) -> tuple[dict[str, str], dict[str, str]]:
    """({character: object}, {character: voice}) from a JSON or TOML cast file (see read_cast_file)."""
    objects, voices, _ = read_cast_file(path)
    return objects, voices


def read_cast_file(path) -> tuple[dict[str, str], dict[str, str], dict[str, tuple[str, float]]]:
    """({character: object}, {character: voice}, {character: (mood, intensity)}) from a JSON or TOML
    cast file.

    Either form works, at the top level or under a "cast" table:
      {"BRICK": "HeadA", "STEEL": {"object": "HeadB", "voice": "en-gb+m3", "mood": "angry", "intensity": 0.5}}
    An entry may also say "listen": false (read by `read_listen_switches`).
    """
    path = Path(path)
    data = _read_table(path)
    objects, voices, moods = {}, {}, {}
    for name, value in data.items():
        if isinstance(value, str):
            objects[name] = value
        elif isinstance(value, dict):
            if value.get("object"):
                objects[name] = str(value["object"])
            if value.get("voice"):
                voices[name] = str(value["voice"])
            if value.get("mood") is not None or value.get("intensity") is not None:
                moods[name] = _mood_entry(path, name, value)
        else:
            raise CastError(f"{path}: the entry for {name!r} must be an object name or "
                            '{"object": ..., "voice": ...}')
    return objects, voices, moods


def _read_table(path: Path) -> dict:
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CastError(f"cannot read the cast file {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("cast"), dict):
        data = data["cast"]
    if not isinstance(data, dict):
        raise CastError(f"{path}: a cast file maps character names to an object name or to "
                        '{"object": ..., "voice": ...}')
    return data


def read_listen_switches(path) -> dict[str, bool]:
    """{character: whether it listens} for the entries of a cast file that say "listen": true or false
    (false: no listening layer for that character, which then holds still while others speak)."""
    path = Path(path)
    out = {}
    for name, value in _read_table(path).items():
        if isinstance(value, dict) and "listen" in value:
            if not isinstance(value["listen"], bool):
                raise CastError(f"{path}: {name}'s listen must be true or false, not {value['listen']!r}")
            out[name] = value["listen"]
    return out


def read_languages(path) -> dict[str, str]:
    """{character: language code} for the entries of a cast file that say "language": "es" (or a name
    such as "Spanish"); their lines are spoken and lip-synced in that language unless a line says
    otherwise."""
    path = Path(path)
    out = {}
    for name, value in _read_table(path).items():
        if isinstance(value, dict) and value.get("language") is not None:
            try:
                out[name] = language_code(value["language"], f"{path}: {name}'s ")
            except LanguageError as exc:
                raise CastError(str(exc)) from None
    return out


def _mood_entry(path, name, value) -> tuple[str, float]:
    mood = value.get("mood", "neutral")
    if not isinstance(mood, str) or mood.strip().lower() not in MOOD_NAMES:
        raise CastError(f"{path}: {name}'s mood {mood!r} is not one of {', '.join(MOOD_NAMES)}")
    intensity = value.get("intensity", 1.0)
    low, high = INTENSITY_RANGE
    if isinstance(intensity, bool) or not isinstance(intensity, (int, float)) or not low <= intensity <= high:
        raise CastError(f"{path}: {name}'s intensity must be a number from {low:g} to {high:g}, not {intensity!r}")
    return mood.strip().lower(), float(intensity)


# -- resolving ------------------------------------------------------------------------------------

def _match_object(character: str, heads: list[str]) -> Optional[str]:
    """The scene object whose name is the character's (ignoring case, spaces, 'Head' words)."""
    k = key(character)
    exact = [h for h in heads if key(h) == k]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        return None  # ambiguous: the cast table has to say

    def trimmed(name: str) -> str:
        n = key(name)
        for word in _HEAD_WORDS:
            if n.endswith(word) and len(n) > len(word):
                n = n[: -len(word)]
            elif n.startswith(word) and len(n) > len(word):
                n = n[len(word):]
        return n

    loose = [h for h in heads if trimmed(h) == k]
    return loose[0] if len(loose) == 1 else None


def resolve_cast(characters: list[str], scene_objects: list[dict], table: dict[str, str] | None = None,
                 voices: dict[str, str] | None = None, create_heads: Optional[bool] = None,
                 base_seed: int = 0, line_counts: dict[str, int] | None = None,
                 scene_name: str = "the scene", moods: dict[str, tuple[str, float]] | None = None,
                 languages: dict[str, str] | None = None) -> Cast:
    """Give every character a head, a voice and a seed, or raise CastError naming all who lack one.

    scene_objects: [{"name", "type", "shape_keys"}] as listed by the Blender side.
    create_heads: True creates a procedural head for every character without one; None (the
    default) does so only when the scene has no head at all (no mesh with shape keys).
    moods: {character: (mood, intensity)}, each character's default mood (read_cast_file).
    languages: {character: language code}, each character's language (read_languages).
    """
    table = table or {}
    voices = voices or {}
    names = [o["name"] for o in scene_objects]
    heads = [o["name"] for o in scene_objects if o.get("type", "MESH") == "MESH" and o.get("shape_keys", 0)]
    if create_heads is None:
        create_heads = not heads
    warnings: list[str] = []

    by_key: dict[str, str] = {}
    for c in characters:
        by_key.setdefault(key(c), c)
    table_by_key = {key(k): (k, v) for k, v in table.items()}
    voices_by_key = {key(k): (k, v) for k, v in voices.items()}
    moods_by_key = {key(k): v for k, v in (moods or {}).items()}
    languages_by_key = {key(k): v for k, v in (languages or {}).items()}
    for k, (name, _) in list(table_by_key.items()) + list(voices_by_key.items()):
        if k not in by_key:
            warnings.append(f"the cast names {name!r}, who has no line in the script")

    roles: dict[str, Role] = {}
    missing: list[str] = []
    not_heads: list[str] = []
    used_voices: set[str] = {v for _, v in voices_by_key.values()}
    pool = [v for v in DEFAULT_VOICES if v not in used_voices]
    for channel, (k, character) in enumerate(by_key.items(), start=1):
        create = False
        if k in table_by_key:
            obj = table_by_key[k][1]
            if obj not in names:
                if not create_heads:
                    missing.append(f"{character} (cast as {obj!r}, which is not in {scene_name})")
                    continue
                create = True
            elif obj not in heads:
                not_heads.append(f"{character} -> {obj!r}")
        else:
            obj = _match_object(character, heads)
            if obj is None:
                if not create_heads:
                    missing.append(character)
                    continue
                obj, create = display_name(character), True
                if obj in names and obj in heads:
                    create = False
        sharing = next((r for r in roles.values() if r.object == obj), None)
        if k in voices_by_key:
            voice = voices_by_key[k][1]
        elif sharing is not None:
            voice = sharing.voice  # one head, one person (MR. STEEL is STEEL): one voice
        else:
            voice = pool[(len(roles)) % len(pool)] if pool else DEFAULT_VOICES[len(roles) % len(DEFAULT_VOICES)]
        seed = (zlib.crc32(k.encode()) + base_seed) % (2**31 - 1)
        roles[k] = Role(character=character, object=obj, voice=voice, seed=seed, create=create, channel=channel,
                        lines=sum(n for c, n in (line_counts or {}).items() if key(c) == k),  # BOB and Bob alike
                        mood=moods_by_key.get(k, ("neutral", 1.0))[0], intensity=moods_by_key.get(k, ("", 1.0))[1],
                        language=languages_by_key.get(k))
    problems = []
    if missing:
        available = ", ".join(heads) if heads else "none"
        problems.append(
            f"{len(missing)} character(s) have no head in {scene_name}: {', '.join(missing)}. "
            f"Map them to heads in a cast table (--cast \"NAME=Object,...\" or SCRIPT.cast.json beside the "
            f"script; the Cast field of Blender's Dialogue panel), or create procedural heads for them "
            f"(--create-heads; New Heads: Add). "
            f"Objects with shape keys in {scene_name}: {available}.")
    if not_heads:
        problems.append(f"cast objects without shape keys: {', '.join(not_heads)}; "
                        "cast a mesh with shape keys (ARKit-52 or a rig a retarget preset knows)")
    if problems:
        raise CastError(" ".join(problems))
    # Created heads must not take a name that an existing non-head object already uses.
    for role in roles.values():
        if role.create and role.object in names:
            raise CastError(f"{role.character}: a head would be created as {role.object!r}, but {scene_name} "
                            "already has an object of that name that is not a head; cast another name with --cast")
    # Two characters on one head is allowed (MR. STEEL is STEEL), but worth a word.
    seen: dict[str, str] = {}
    for role in roles.values():
        if role.object in seen:
            warnings.append(f"{role.character} and {seen[role.object]} share the head {role.object!r}")
        seen.setdefault(role.object, role.character)
    return Cast(roles=roles, warnings=warnings)
