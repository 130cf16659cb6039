"""The exchange formats as a registry: one `Format` record per format, registered by its own module.

Everything that lists, detects, reads or writes formats iterates the registry: `detect_format`,
`load_any`, `exomni convert` (its `--to` choices and its writing), and the take panel's Key Take
From Disk (its file filter and what it opens). Nothing else names a format.

Where formats come from:
- every module of this package is imported (`formats()` does it once), and a format module
  registers itself at import with `register_format(Format(...))`. Adding a format is one new file
  in this folder, named nowhere else: the package's own folder is the list of its formats;
- other packages add formats through the entry-point group `exomni.exchange_formats`. An entry
  point names a `Format`, a list or tuple of them, or a module that registers its own, e.g. in
  pyproject.toml:  [project.entry-points."exomni.exchange_formats"]  toy = "toy_format:FORMAT".
  A plugin that fails to load is left out and its error kept (`plugin_errors`); it never stops the
  built-in formats from working.

The options readers and writers take (by keyword; each ignores those it has no use for, so every
`read` and `write` must accept **opts):
- read(path, *, fps=None, source_fps=None, audio=True) -> Take: `fps` is the rate wanted (a format
  that has no frame rate of its own, like Rhubarb cues, samples at it); `source_fps` the rate the file
  was recorded at when it does not say (Live Link Face); `audio` whether to bring its WAV along;
- write(take, path, *, audio=True, mouth_from="auto") -> [paths written]: `audio` whether to write
  the take's WAV beside it; `mouth_from` where mouth shapes come from, for formats that are shapes.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .files import ExchangeFormatError

ENTRY_POINT_GROUP = "exomni.exchange_formats"
AUDIO_PARTNER_SUFFIXES = (".wav",)  # picked in place of the file that goes with them (same name)


@dataclass(frozen=True)
class Format:
    """One exchange format. `read` or `write` is None where the format is write-only or read-only."""

    name: str  # what `exomni convert --to` takes and `load_any` reports: "a2f"
    label: str  # what it is, in a sentence: "Audio2Face blendshape JSON (facsNames, weightMat)"
    suffixes: tuple = ()  # file suffixes, lower case with the dot; the first is what `write` makes
    sniff: Callable | None = None  # sniff(path) -> bool; None: a file with one of `suffixes`
    read: Callable | None = None  # read(path, **opts) -> Take
    write: Callable | None = None  # write(take, path, **opts) -> list of the paths written
    hint: str = ""  # how to ask a person for one: "an Audio2Face .json"
    writes_folders: bool = False  # `write` takes a folder path (no suffix) and fills it
    paired_audio: bool = True  # its sound is a WAV found beside the file (take.meta["audio"] says which)
    priority: int = 100  # formats are sniffed in this order, lowest first (a take folder before its files)
    read_notes: Callable | None = None  # read_notes(take, opts) -> [lines to tell the user]
    write_notes: Callable | None = None  # write_notes(take, opts) -> [lines to tell the user]

    @property
    def readable(self) -> bool:
        return self.read is not None

    @property
    def writable(self) -> bool:
        return self.write is not None

    def claims(self, path: Path) -> bool:
        """Whether `path` is this format's (ExchangeFormatError: it is its kind of file, but broken)."""
        if self.sniff is not None:
            return bool(self.sniff(path))
        return path.is_file() and path.suffix.lower() in self.suffixes


_formats: dict[str, Format] = {}
_order: dict[str, int] = {}
_plugin_errors: list[str] = []
_discovered = False


def register_format(fmt: Format) -> Format:
    """Add a format (or replace the one of the same name, as a module reloaded in Blender does)."""
    if not isinstance(fmt, Format):
        raise TypeError(f"register_format takes a Format, not {type(fmt).__name__}")
    if not fmt.name or not fmt.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"a format's name is a word (letters, digits, - or _), not {fmt.name!r}")
    if fmt.read is None and fmt.write is None:
        raise ValueError(f"format {fmt.name!r} neither reads nor writes")
    bad = [s for s in fmt.suffixes if not (s.startswith(".") and s == s.lower())]
    if bad:
        raise ValueError(f"format {fmt.name!r}: suffixes are lower case and start with a dot, not {bad}")
    _order.setdefault(fmt.name, len(_order))
    _formats[fmt.name] = fmt
    return fmt


def unregister_format(name: str) -> None:
    _formats.pop(name, None)


def formats() -> tuple:
    """Every registered format, in sniffing order (priority, then registration order)."""
    _discover()
    return tuple(sorted(_formats.values(), key=lambda f: (f.priority, _order[f.name])))


def readable_formats() -> tuple:
    return tuple(f for f in formats() if f.readable)


def writable_formats() -> tuple:
    return tuple(f for f in formats() if f.writable)


def get_format(name: str) -> Format:
    _discover()
    if name not in _formats:
        raise ExchangeFormatError(f"no exchange format named {name!r}; the formats are "
                                  f"{', '.join(f.name for f in formats())}")
    return _formats[name]


def plugin_errors() -> list:
    """Why each entry-point plugin that failed to load was left out (empty when all loaded)."""
    _discover()
    return list(_plugin_errors)


# -- detecting and reading ---------------------------------------------------------------------------

def detect_format(path) -> str:
    """The name of the readable format `path` holds: the first whose sniff claims it."""
    p = Path(path)
    if not p.exists():
        raise ExchangeFormatError(f"nothing at {p}; give {_hints()}")
    found, broken = _claimant(p)
    if found is not None:
        return found.name
    if broken is not None:  # its kind of file, but not readable: that says more than "unknown"
        raise broken
    if p.is_dir():
        raise ExchangeFormatError(f"{p} is not a folder that an exchange format reads (such as a take folder, "
                                  f"with its blendshapes.json); give the file in it instead")
    suffix = p.suffix.lower()
    labels = [f.label for f in readable_formats() if suffix in f.suffixes]
    if labels:
        raise ExchangeFormatError(f"{p}: a {suffix} file that is {_neither(labels)}")
    raise ExchangeFormatError(f"{p.name}: unknown kind of file; give {_hints()}")


def load_any(path, **opts):
    """(Take, format name) from any readable format, with the audio that goes with a file when there
    is some (`take.meta["audio"]` says which file, or that none was found). `opts`: see above."""
    p = Path(path)
    fmt = get_format(detect_format(p))
    return fmt.read(p, **opts), fmt.name


# -- what the take panel offers ----------------------------------------------------------------------

def file_filter() -> str:
    """The file browser's filter for files a format reads (and the WAVs picked in their place)."""
    suffixes = [s for f in readable_formats() for s in f.suffixes] + list(AUDIO_PARTNER_SUFFIXES)
    return ";".join(f"*{s}" for s in dict.fromkeys(suffixes))


def exchange_file_for(path) -> Path:
    """What to read for what a person picked: a path a format claims as it is; in a folder no format
    reads, the only file in it one does; for a WAV, the file of the same name a format reads, else the
    folder it lies in when a format reads that (a take folder's audio.wav)."""
    p = Path(path)
    if not str(path).strip() or not p.exists():
        raise ExchangeFormatError(f"nothing at '{path}'; pick {_hints()}")
    if p.is_dir():
        if _claims(p):
            return p
        inside = [q for q in sorted(p.iterdir()) if q.is_file() and _claims(q)]
        if len(inside) == 1:
            return inside[0]
        if inside:
            raise ExchangeFormatError(f"{p} holds {len(inside)} files to read ({', '.join(q.name for q in inside[:4])}); "
                                      f"pick one of them")
        raise ExchangeFormatError(f"{p} is not a take folder (no blendshapes.json) and holds no file to read; "
                                  f"pick {_hints()}")
    readable = {s for f in readable_formats() for s in f.suffixes}
    if p.suffix.lower() in readable or _claims(p):
        return p
    partners = [p.with_suffix(s) for s in sorted(readable) if p.with_suffix(s).is_file()]
    partners = [q for q in partners if _claims(q)]
    if partners:
        return partners[0]
    if p.suffix.lower() in AUDIO_PARTNER_SUFFIXES and _claims(p.parent):  # a take folder's audio.wav
        return p.parent
    if p.suffix.lower() in AUDIO_PARTNER_SUFFIXES:
        raise ExchangeFormatError(f"{p.name} is audio only; pick the file that goes with it "
                                  f"({', '.join(sorted(readable))})")
    raise ExchangeFormatError(f"{p.name} is not a take: pick {_hints()}, or its WAV")


# -- inside ------------------------------------------------------------------------------------------

def _claimant(p: Path):
    """(the first readable format that claims p or None, the first sniff's error or None)."""
    broken = None
    for fmt in readable_formats():
        try:
            if fmt.claims(p):
                return fmt, None
        except ExchangeFormatError as exc:
            broken = broken or exc
    return None, broken


def _claims(p: Path) -> bool:
    return _claimant(p)[0] is not None


def _hints() -> str:
    hints = [f.hint or f.label for f in readable_formats()]
    return hints[0] if len(hints) == 1 else f"{', '.join(hints[:-1])} or {hints[-1]}"


def _neither(labels: list) -> str:
    if len(labels) == 1:
        return f"not {labels[0]}"
    if len(labels) == 2:
        return f"neither {labels[0]} nor {labels[1]}"
    return f"none of {', '.join(labels[:-1])} or {labels[-1]}"


def _discover() -> None:
    """Import every module of this package (each format registers itself), then the entry points."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = __name__.rpartition(".")[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
    _load_entry_points()


def _load_entry_points() -> None:
    try:
        from importlib.metadata import entry_points

        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken installed distribution: the built-in formats still work
        _plugin_errors.append(f"the {ENTRY_POINT_GROUP} entry points could not be listed ({exc})")
        return
    for ep in found:
        try:
            obj = ep.load()
            for fmt in obj if isinstance(obj, (list, tuple)) else [obj]:
                if isinstance(fmt, Format):
                    register_format(fmt)
        except Exception as exc:  # a plugin's bug must not stop the built-in formats
            _plugin_errors.append(f"exchange format plugin {ep.name} ({ep.value}) was left out: "
                                  f"{type(exc).__name__}: {exc}")
