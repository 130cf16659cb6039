"""Where presets live and how they are read and saved: the shipped folder, user folders, a cache."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from ..files import atomic_write
from ..settings import Settings
from .errors import PresetError
from .preset import Preset, slug

PRESET_SUFFIX = ".toml"
USER_PRESET_FOLDER = "exomni_presets"  # under Blender's user config folder
PRESETS_ENV = "EXOMNI_PRESETS"  # extra preset folders, os.pathsep-separated (read by core.settings)

# This file is exomni_blender/core/retarget/files.py; the package root is three folders up.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def load_preset(path) -> Preset:
    """Read and validate one preset file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise PresetError(f"{path}: no such preset file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{path}: not valid TOML ({exc})") from None
    return Preset.from_dict(data, id=path.stem, source=str(path), user=not _is_builtin_dir(path.parent))


def builtin_preset_dirs() -> list:
    """Folders holding the shipped presets: inside the package when packaged, else the repository's presets/."""
    return [d for d in (_PACKAGE_ROOT / "presets", _PACKAGE_ROOT.parent / "presets") if d.is_dir()]


def _is_builtin_dir(folder: Path) -> bool:
    try:
        return any(folder.resolve() == d.resolve() for d in builtin_preset_dirs())
    except OSError:
        return False


def user_preset_dirs() -> list:
    """User preset folders: $EXOMNI_PRESETS, then Blender's user config folders on this machine.

    Every installed Blender version's config folder is searched (and $BLENDER_USER_CONFIG, where Blender
    was told to keep it), so presets saved from the add-on serve every version and `exomni retarget`.
    """
    env = Settings.from_env(strict=False)
    dirs = [Path(p) for p in env.presets]
    if env.blender_user_config:
        dirs.append(Path(env.blender_user_config) / USER_PRESET_FOLDER)
    home = Path.home()
    roots = [home / ".config" / "blender", home / "Library" / "Application Support" / "Blender"]
    if env.appdata:
        roots.append(Path(env.appdata) / "Blender Foundation" / "Blender")
    for root in roots:
        if root.is_dir():
            dirs.extend(sorted(root.glob(f"*/config/{USER_PRESET_FOLDER}")))
    return list(dict.fromkeys(dirs))


_cache = {}  # preset file -> (mtime, Preset): the panel lists presets on every redraw


def _cached_load(path: Path):
    """The preset in a file, read again only when the file changed; None when the file went away."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    preset = load_preset(path)
    _cache[path] = (stamp, preset)
    return preset


def load_presets(extra_dirs=(), include_user: bool = True, errors=None) -> list:
    """Every preset: built-in ones, then user folders (a user file with a built-in's id replaces it).

    A broken user file is skipped and its error appended to `errors` (when given) so one bad file does
    not hide the others; a broken built-in is a bug and raises.
    """
    dirs = [(d, True) for d in builtin_preset_dirs()]
    if include_user:
        dirs += [(Path(d), False) for d in (*user_preset_dirs(), *extra_dirs)]
    by_id = {}
    for folder, builtin in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{PRESET_SUFFIX}")):
            try:
                preset = _cached_load(path)
            except PresetError as exc:
                if builtin:
                    raise
                if errors is not None:
                    errors.append(str(exc))
                continue
            if preset is not None:
                by_id[preset.id] = preset
    return list(by_id.values())


def find_preset(name: str, presets=None, extra_dirs=()) -> Preset:
    """A preset by id, display name or file path; the error lists what exists."""
    if name and (name.endswith(PRESET_SUFFIX) or os.sep in name) and Path(name).is_file():
        return load_preset(name)
    presets = load_presets(extra_dirs) if presets is None else list(presets)
    wanted = str(name).strip().lower()
    for p in presets:
        if wanted in (p.id.lower(), p.name.lower()):
            return p
    for p in presets:
        if wanted in (a.lower() for a in p.aliases):
            return p
    available = ", ".join(sorted(p.id for p in presets)) or "none"
    raise PresetError(f"no preset named {name!r}; available: {available}")


def save_user_preset(preset: Preset, folder) -> Path:
    """Write a preset as TOML into a user preset folder (the add-on passes Blender's user config folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = preset.to_toml()
    Preset.from_dict(tomllib.loads(text), id=preset.id)  # never write what cannot be read back
    path = folder / f"{slug(preset.id)}{PRESET_SUFFIX}"
    atomic_write(path, text.encode("utf-8"))
    _cache.pop(path, None)
    return path
