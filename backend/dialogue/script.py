"""Dialogue scripts in: Fountain screenplays, CSV and JSON, all read into one list of spoken lines.

Fountain follows the published syntax (fountain.io): a character cue is a line in upper case (or
forced with `@`) after an empty line and directly followed by dialogue; extensions such as
(V.O.), (O.S.) or (cont'd) are not part of the name; a cue ending in `^` is dual dialogue, spoken at
the same time as the dialogue before it; parentheticals (also indented) sit inside the dialogue.
Scene headings are kept as markers; action, transitions, centred text, notes, the boneyard, section
and synopsis lines, page breaks and the title page are not spoken and are skipped. Emphasis marks
(*, **, _) are removed from the spoken text.

The screenplain library was tried first; it reads a scene heading followed directly by action,
and a forced heading or transition followed by centred text, as dialogue, so this module follows
the syntax itself.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from exomni_blender.core.dialogue_layout import first_words
from exomni_blender.core.errors import ExOmniError

from .language import LanguageError, language_code

FOUNTAIN_SUFFIXES = (".fountain", ".spmd", ".txt")


class ScriptError(ExOmniError, ValueError):
    """A script that cannot be read; the message says where and what to do."""


@dataclass
class Line:
    """One spoken line: who says it, what they say, and how."""

    index: int  # position in the script, from 0
    character: str  # the cue without extensions, as written (upper case in Fountain)
    text: str  # what is spoken; pauses asked for by (pause)/(beat) become "..."
    parentheticals: list[str] = field(default_factory=list)  # without the brackets
    start: Optional[float] = None  # seconds, when the script gives a time
    voice: Optional[str] = None  # when the script names one
    language: Optional[str] = None  # when the script's language column names one (language.py)
    dual: bool = False  # spoken together with the line before (Fountain `^`)
    scene: Optional[str] = None  # the scene heading it falls under
    extension: Optional[str] = None  # V.O., O.S., CONT'D ...
    source_line: int = 0  # 1-based line in the source file, for messages

    @property
    def first_words(self) -> str:
        return first_words(self.text)


@dataclass
class SceneHeading:
    text: str
    before_line: int  # index of the first Line after the heading
    source_line: int = 0


@dataclass
class Script:
    lines: list[Line]
    title: dict = field(default_factory=dict)
    scenes: list[SceneHeading] = field(default_factory=list)
    source: str = ""

    @property
    def characters(self) -> list[str]:
        """Characters in order of their first line."""
        seen: dict[str, None] = {}
        for line in self.lines:
            seen.setdefault(line.character, None)
        return list(seen)

    @property
    def line_counts(self) -> dict[str, int]:
        """Lines per character."""
        return dict(Counter(line.character for line in self.lines))


# -- loading ------------------------------------------------------------------------------------

MAX_SCRIPT_BYTES = 2 * 2**20  # a feature film's whole screenplay is about 0.3 MB


def load_script(path) -> Script:
    """Read a script by its file type: .fountain (or .spmd/.txt), .csv or .json."""
    path = Path(path)
    if not path.is_file():
        raise ScriptError(f"no such script file: {path}")
    size = path.stat().st_size
    if size > MAX_SCRIPT_BYTES:
        raise ScriptError(f"{path} is {size / 2**20:.1f} MB; a screenplay scene is tens of KB (the limit is "
                          f"{MAX_SCRIPT_BYTES // 2**20} MB): split it into scenes, or check it is the script")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{path} is not UTF-8 text ({exc}); save it as UTF-8 and try again") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        script = parse_csv(text, source=str(path))
    elif suffix == ".json":
        script = parse_json(text, source=str(path))
    elif suffix in FOUNTAIN_SUFFIXES:
        script = parse_fountain(text, source=str(path))
    else:
        raise ScriptError(f"{path}: unknown script type {suffix!r}; use a .fountain screenplay, "
                          "a .csv (character,line[,start][,voice][,language]) or a .json list of lines")
    if not script.lines:
        raise ScriptError(f"{path} has no dialogue lines; a Fountain character cue is a line in upper "
                          "case after an empty line, with the dialogue on the next line")
    return script


# -- Fountain -------------------------------------------------------------------------------------

_BONEYARD = re.compile(r"/\*.*?\*/", re.DOTALL)
_NOTE = re.compile(r"\[\[.*?\]\]", re.DOTALL)
_TITLE_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9 _-]*):\s*(.*)$")
_SCENE = re.compile(r"^(INT\.?/EXT|INT/EXT|I/E|INT|EXT|EST)[ .]", re.IGNORECASE)
_SCENE_NUMBER = re.compile(r"\s*#[\w.\-]+#\s*$")
_EXTENSION = re.compile(r"\(([^()]*)\)")
_PAUSES = {"pause", "beat", "a beat", "long pause", "a long pause", "short pause", "beat.", "pause."}
_EMPHASIS = (re.compile(r"(?<!\\)\*\*\*(.+?)(?<!\\)\*\*\*"), re.compile(r"(?<!\\)\*\*(.+?)(?<!\\)\*\*"),
             re.compile(r"(?<!\\)\*(.+?)(?<!\\)\*"), re.compile(r"(?<!\\)_(.+?)(?<!\\)_"))


def strip_emphasis(text: str) -> str:
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    return text.replace("\\*", "*").replace("\\_", "_")


def _blank_out(match: re.Match) -> str:
    # Removed spans keep their line breaks so that line numbers in messages stay right.
    return "\n" * match.group(0).count("\n")


def _is_cue(line: str) -> bool:
    s = line.strip()
    if not s or s.startswith(("!", ".", ">", "~", "=", "#", "[[")):
        return False
    if s.startswith("@"):
        return len(s) > 1
    name = s[:-1].rstrip() if s.endswith("^") else s
    name = name.split("(", 1)[0].strip()
    if not name or not any(c.isalpha() for c in name) or name != name.upper():
        return False
    return not _SCENE.match(name)


def _split_cue(cue: str) -> tuple[str, Optional[str], bool]:
    """(name, extension, dual) from a cue such as 'BRICK (V.O.) ^' or '@McCLANE'."""
    s = cue.strip()
    dual = s.endswith("^")
    if dual:
        s = s[:-1].rstrip()
    if s.startswith("@"):
        s = s[1:].strip()
    extensions = [e.strip() for e in _EXTENSION.findall(s)]
    name = _EXTENSION.sub(" ", s)
    name = " ".join(name.split())
    return name, (", ".join(e for e in extensions if e) or None), dual


def _title_page_end(lines: list[str]) -> int:
    """How many leading lines form the title page (0 when there is none)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or first != 0 or not _TITLE_KEY.match(lines[0]):
        return 0
    for i, line in enumerate(lines):
        if not line.strip():
            return i
        if not (_TITLE_KEY.match(line) or line.startswith(("   ", "\t"))):
            return 0  # not a title page after all: keys and indented values only
    return len(lines)


def parse_fountain(text: str, source: str = "") -> Script:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _BONEYARD.sub(_blank_out, text)
    text = _NOTE.sub(_blank_out, text)
    raw = text.split("\n")
    title_end = _title_page_end(raw)
    title = _parse_title(raw[:title_end])

    lines: list[Line] = []
    scenes: list[SceneHeading] = []
    scene: Optional[str] = None
    previous_was_dialogue = False  # for dual dialogue: the cue before must be dialogue, nothing between

    def blank(i: int) -> bool:
        # A line of two spaces is a deliberate empty line inside dialogue, not a break.
        return i < title_end or i < 0 or i >= len(raw) or (raw[i].strip() == "" and raw[i] != "  ")

    i = title_end
    while i < len(raw):
        s = raw[i].strip()
        if not s:
            i += 1
            continue
        after_blank = i == title_end or blank(i - 1)
        heading = _scene_heading(s)
        if heading is not None and after_blank:
            scene = heading
            scenes.append(SceneHeading(heading, len(lines), i + 1))
            previous_was_dialogue = False
            i += 1
            continue
        if after_blank and _is_cue(raw[i]) and not blank(i + 1):
            name, extension, dual = _split_cue(raw[i])
            j, spoken, parentheticals = _read_dialogue(raw, i + 1, blank)
            if spoken:
                if dual and not previous_was_dialogue:
                    dual = False  # a caret with nothing to pair with is spoken on its own
                lines.append(Line(index=len(lines), character=name, text=spoken, parentheticals=parentheticals,
                                  dual=dual, scene=scene, extension=extension, source_line=i + 1))
                previous_was_dialogue = True
            i = j
            continue
        # Action, transitions, centred text, sections, synopses, page breaks: not spoken.
        previous_was_dialogue = False
        while i < len(raw) and not blank(i):
            i += 1
    return Script(lines=lines, title=title, scenes=scenes, source=source)


def _scene_heading(s: str) -> Optional[str]:
    if s.startswith(".") and len(s) > 1 and s[1] != ".":
        return _SCENE_NUMBER.sub("", s[1:].strip())
    if _SCENE.match(s):
        return _SCENE_NUMBER.sub("", s).upper()
    return None


def _read_dialogue(raw: list[str], i: int, blank) -> tuple[int, str, list[str]]:
    """Dialogue from line i to the next empty line: (next index, spoken text, parentheticals)."""
    segments: list[str] = []
    parentheticals: list[str] = []
    pending_pause = False
    open_paren: Optional[list[str]] = None
    while i < len(raw) and not blank(i):
        s = raw[i].strip()
        i += 1
        if open_paren is not None:
            open_paren.append(s)
            if s.endswith(")"):
                pending_pause |= _add_parenthetical(" ".join(open_paren), parentheticals)
                open_paren = None
            continue
        if s.startswith("("):
            if s.endswith(")"):
                pending_pause |= _add_parenthetical(s, parentheticals)
            else:
                open_paren = [s]
            continue
        s = " ".join(strip_emphasis(s.lstrip("~")).split())
        if not s:
            continue
        if pending_pause and segments:
            segments.append("...")
        pending_pause = False
        segments.append(s)
    if open_paren is not None:  # an unclosed parenthetical is taken as one anyway
        _add_parenthetical(" ".join(open_paren) + ")", parentheticals)
    return i, " ".join(segments), parentheticals


def _add_parenthetical(s: str, out: list[str]) -> bool:
    """Record a parenthetical; True when it asks for a pause."""
    inner = " ".join(s.strip()[1:-1].split())
    if inner.lower().strip(" .") in {p.strip(".") for p in _PAUSES}:
        return True
    if inner:
        out.append(inner)
    return False


def _parse_title(lines: list[str]) -> dict:
    title: dict[str, list[str]] = {}
    key = None
    for line in lines:
        m = _TITLE_KEY.match(line)
        if m and not line.startswith((" ", "\t")):
            key = m.group(1).strip().lower()
            title[key] = [m.group(2).strip()] if m.group(2).strip() else []
        elif key is not None and line.strip():
            title[key].append(strip_emphasis(line.strip()))
    return {k: "\n".join(v) for k, v in title.items()}


# -- CSV and JSON ---------------------------------------------------------------------------------

_COLUMNS = {
    "character": ("character", "speaker", "name", "role"),
    "line": ("line", "text", "dialogue", "dialog"),
    "start": ("start", "start_time", "time", "at", "start_seconds"),
    "voice": ("voice",),
    "language": ("language", "lang"),
    "parenthetical": ("parenthetical", "delivery", "direction"),
    "dual": ("dual", "overlap"),
}


def parse_time(value, where: str = "") -> Optional[float]:
    """Seconds from 12.5, "12.5", "1:02.5" or "0:01:02.5"; None for empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ScriptError(f"{where}start time {value!r} is not a time; give seconds (12.5) or m:ss.s")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        parts = str(value).strip().split(":")
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            raise ScriptError(f"{where}start time {value!r} is not a time; give seconds (12.5) or "
                              "[h:]m:ss.s (1:02.5)") from None
        if len(nums) > 3:
            raise ScriptError(f"{where}start time {value!r} has too many ':' parts; use [h:]m:ss.s")
        seconds = 0.0
        for n in nums:
            seconds = seconds * 60 + n
    if seconds < 0 or seconds != seconds:
        raise ScriptError(f"{where}start time {value!r} must be zero or more seconds")
    return seconds


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "x", "^")
    return bool(value)


_INLINE_PAREN = re.compile(r"\(([^()]*)\)")


def _line_from_record(record: dict, index: int, where: str, number: int) -> Optional[Line]:
    character = str(record.get("character") or "").strip()
    text = str(record.get("line") or "").strip()
    if not character and not text:
        return None  # an empty row
    if not character:
        raise ScriptError(f"{where}the line {text[:40]!r} has no character; fill in the character column")
    if not text:
        raise ScriptError(f"{where}{character} has an empty line; write what they say or remove the row")
    parentheticals: list[str] = []
    raw_paren = record.get("parenthetical")
    if raw_paren:
        items = raw_paren if isinstance(raw_paren, list) else [raw_paren]
        for item in items:
            inner = str(item).strip()
            if inner.startswith("(") and inner.endswith(")"):
                inner = inner[1:-1].strip()
            if inner:
                parentheticals.append(inner)
    # "(whispering) Get down!" in the line's own cell: the direction is a parenthetical, not speech.
    pauses = {p.strip(".") for p in _PAUSES}

    def direction(match: re.Match) -> str:
        inner = " ".join(match.group(1).split())
        if inner.lower().strip(" .") in pauses:
            return " ... "  # a beat is a pause in the speech, as in Fountain
        if inner:
            parentheticals.append(inner)
        return " "

    spoken = " ".join(_INLINE_PAREN.sub(direction, text).split()).strip()
    spoken = spoken[4:] if spoken.startswith("... ") else spoken
    if not spoken.strip(" \t.,;:-"):
        raise ScriptError(f"{where}{character}'s line {text[:40]!r} is only a direction in parentheses; "
                          "write what they say beside it")
    text = spoken
    name, extension, _ = _split_cue(character)
    voice = record.get("voice")
    voice = str(voice).strip() if voice not in (None, "") else None
    language = record.get("language")
    try:
        language = language_code(language, where) if language not in (None, "") else None
    except LanguageError as exc:
        raise ScriptError(str(exc)) from None
    return Line(index=index, character=name, text=" ".join(strip_emphasis(text).split()), parentheticals=parentheticals,
                start=parse_time(record.get("start"), where), voice=voice, language=language,
                dual=_truthy(record.get("dual", False)), extension=extension, source_line=number)


def _canonical(record: dict, where: str) -> dict:
    out: dict = {}
    for key, value in record.items():
        if key is None:
            raise ScriptError(f"{where}the row has more fields than the header; quote text that has commas")
        k = str(key).strip().lower().replace(" ", "_")
        for canonical, names in _COLUMNS.items():
            if k in names:
                out[canonical] = value
                break
    return out


def parse_csv(text: str, source: str = "") -> Script:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower().replace(" ", "_") for h in (reader.fieldnames or [])]
    missing = [c for c in ("character", "line") if not any(h in _COLUMNS[c] for h in header)]
    if missing:
        raise ScriptError(f"{source or 'CSV'}: the first row must be a header with the columns character and line "
                          f"(optional: start, voice, language, parenthetical); missing {', '.join(missing)}, found {header}")
    lines: list[Line] = []
    for number, record in enumerate(reader, start=2):
        where = f"{source or 'CSV'} row {number}: "
        line = _line_from_record(_canonical(record, where), len(lines), where, number)
        if line is not None:
            lines.append(line)
    return Script(lines=lines, source=source)


def parse_json(text: str, source: str = "") -> Script:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(f"{source or 'JSON'} is not valid JSON: {exc}") from None
    title = {}
    if isinstance(data, dict):
        title = {k: str(v) for k, v in data.items() if k in ("title", "author") and isinstance(v, (str, int))}
        data = data.get("lines")
    if not isinstance(data, list):
        raise ScriptError(f"{source or 'JSON'}: expected a list of lines, or an object with a \"lines\" list; "
                          'each line is {"character": ..., "line": ..., "start": seconds, "voice": ...}')
    lines: list[Line] = []
    for number, record in enumerate(data, start=1):
        where = f"{source or 'JSON'} line {number}: "
        if not isinstance(record, dict):
            raise ScriptError(f"{where}expected an object with character and line, got {type(record).__name__}")
        line = _line_from_record(_canonical(record, where), len(lines), where, number)
        if line is not None:
            lines.append(line)
    return Script(lines=lines, title=title, source=source)
