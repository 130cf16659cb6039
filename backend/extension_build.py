"""Build the installable Blender extension zips from `addon_manifest.toml` and `exomni_blender/`.

Blender installs an extension from a zip holding `blender_manifest.toml` at its root next to the
add-on's package files (`__init__.py` and its modules), plus the retarget presets in `presets/`. The
manifest is generated here from the repository's addon_manifest.toml, the one place the extension's
metadata is written by hand, and checked against the rules Blender's own validator applies, so a bad
field fails the build with a message instead of failing the install.

The embedded engine: a platform's zip carries the phonetic engine's code in `engine/` (run by the
add-on as a subprocess of Blender's Python, never imported into Blender's process) and the engine's
dependencies as wheels for that platform and for both Pythons Blender uses (3.11 in 4.2-5.0, 3.13
from 5.1), listed in the manifest's `wheels` so Blender installs them.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from exomni_blender.core.errors import ExOmniError

REPO = Path(__file__).resolve().parents[1]
MANIFEST_SOURCE = REPO / "addon_manifest.toml"
PACKAGE_DIR = REPO / "exomni_blender"
# Shipped data outside the package that the add-on reads from inside it once packaged
# (retarget presets: `retarget.builtin_preset_dirs()` looks in <package>/presets).
DATA_DIRS = {"presets": (REPO / "presets", "*.toml")}
MANIFEST_NAME = "blender_manifest.toml"
SCHEMA_VERSION = "1.0.0"

REQUIRED = {"id": str, "name": str, "version": str, "tagline": str, "maintainer": str, "type": str,
            "blender_version_min": str, "license": list}
OPTIONAL = {"blender_version_max": str, "website": str, "copyright": list, "tags": list, "platforms": list,
            "wheels": list, "permissions": dict}
FIELD_ORDER = ["schema_version", "id", "version", "name", "tagline", "maintainer", "type", "website", "tags",
               "blender_version_min", "blender_version_max", "license", "copyright", "platforms", "wheels"]
PERMISSION_KEYS = ("files", "network", "clipboard", "camera", "microphone")
EXTENSION_TYPES = ("add-on", "theme")
TERSE_MAX = 64  # Blender's limit for the tagline and each permission's reason

# Left out of the zip: caches, tests and benchmark-only files have no use inside Blender.
EXCLUDED_DIRS = {"__pycache__", "tests", "benchmarks", ".pytest_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej", ".swp"}
EXCLUDED_PREFIXES = ("test_", "bench_", ".")

# A zip entry's date; fixed so the same sources always give the same bytes.
ZIP_DATE = (2024, 1, 1, 0, 0, 0)

# The embedded engine's code, copied into the zip's `engine/` folder with its package layout, so the
# add-on runs it as `python -m backend.embedded` with `engine/` on the child's path.
ENGINE_DIR = "engine"
ENGINE_SOURCES = ("backend/__init__.py", "backend/embedded.py", "backend/engines/__init__.py",
                  "backend/engines/base.py", "backend/engines/phonetic/*.py",
                  "backend/audio_input.py")
# Blender's platform names and the pip platform tag whose wheels each one installs.
PLATFORMS = {"windows-x64": "win_amd64", "macos-arm64": "macosx_11_0_arm64", "macos-x64": "macosx_11_0_x86_64",
             # glibc 2.28 (Blender 4.2's floor) first: soundfile's Linux wheel that carries libsndfile is
             # manylinux_2_28; with manylinux2014 alone pip took its wheel without the library
             "linux-x64": "manylinux_2_28_x86_64,manylinux2014_x86_64"}
# Blender 4.2-5.0 run Python 3.11, Blender 5.1 and later 3.13.
PYTHONS = ("3.11", "3.13")
# The phonetic engine's dependencies, pinned as the backend pins them (pyproject.toml): eSpeak NG for
# speech, pocketsphinx, soundfile and soxr (resampling, instead of all of scipy) for recordings. Their own
# dependencies come along. (macOS x64: Blender 4.2 and later need macOS 11, and soxr has no wheel for 10.13.)
ENGINE_REQUIREMENTS = ("espeakng-loader==0.2.4", "pocketsphinx==5.1.1", "soundfile==0.14.0", "soxr==0.5.0.post1")
# Bundled with Blender: a second copy would shadow Blender's own.
BLENDER_SHIPS = {"numpy"}
WHEELS_DIR = "wheels"


class ExtensionBuildError(ExOmniError, ValueError):
    """The manifest or the package cannot make a valid extension; the message says what to fix."""


def read_manifest(path: Path = MANIFEST_SOURCE) -> dict:
    """addon_manifest.toml as a checked dict, with schema_version added."""
    path = Path(path)
    if not path.is_file():
        raise ExtensionBuildError(f"{path} not found: build the extension from a checkout of the repository.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ExtensionBuildError(f"{path.name} is not valid TOML: {exc}") from None
    data = {"schema_version": SCHEMA_VERSION, **data}
    errors = validate_manifest(data)
    if errors:
        raise ExtensionBuildError(f"{path.name} has problems:\n  " + "\n  ".join(errors))
    return data


def validate_manifest(data: dict) -> list:
    """Every problem with the manifest's fields (empty when it is fine)."""
    errors = []
    for key, kind in REQUIRED.items():
        if key not in data:
            errors.append(f"'{key}' is missing")
        elif not isinstance(data[key], kind) or not data[key]:
            errors.append(f"'{key}' must be a non-empty {kind.__name__}")
    for key, kind in OPTIONAL.items():
        if key in data and not isinstance(data[key], kind):
            errors.append(f"'{key}' must be a {kind.__name__}")
    unknown = set(data) - set(REQUIRED) - set(OPTIONAL) - {"schema_version"}
    if unknown:
        errors.append(f"unknown field(s) {sorted(unknown)}; Blender's manifest has no such field")
    if errors:
        return errors
    ident = data["id"]
    if not ident.isidentifier() or "__" in ident or ident.startswith("_") or ident.endswith("_"):
        errors.append(f"'id' {ident!r} must be a Python identifier without double, leading or trailing '_'")
    for key in ("version", "blender_version_min", "blender_version_max"):
        if key in data and not re.fullmatch(r"\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?", data[key]):
            errors.append(f"'{key}' {data[key]!r} must be a version like 1.2.3")
    if data["type"] not in EXTENSION_TYPES:
        errors.append(f"'type' must be one of {EXTENSION_TYPES}, not {data['type']!r}")
    if not all(isinstance(x, str) and x.startswith("SPDX:") for x in data["license"]):
        errors.append("'license' entries must be SPDX identifiers written like \"SPDX:GPL-3.0-or-later\"")
    errors += _terse("tagline", data["tagline"])
    for key, reason in data.get("permissions", {}).items():
        if key not in PERMISSION_KEYS:
            errors.append(f"permission '{key}' is not one Blender knows ({', '.join(PERMISSION_KEYS)})")
        elif not isinstance(reason, str):
            errors.append(f"permission '{key}' must give its reason as a string")
        else:
            errors += _terse(f"permission '{key}'", reason)
    return errors


def _terse(what: str, value: str) -> list:
    if len(value) > TERSE_MAX:
        return [f"{what} is {len(value)} characters; Blender allows {TERSE_MAX}"]
    if not value.strip() or value != value.strip():
        return [f"{what} must not be empty or start/end with spaces"]
    if not (value[-1].isalnum() or value[-1] in ")]}"):
        return [f"{what} must not end with punctuation ({value[-1]!r})"]
    return []


def manifest_toml(data: dict) -> str:
    """blender_manifest.toml text: top-level fields in a fixed order, then [permissions]."""
    lines = ["# Generated from addon_manifest.toml by `exomni build-extension`; edit that file instead.", ""]
    keys = [k for k in FIELD_ORDER if k in data] + sorted(k for k in data if k not in FIELD_ORDER and k != "permissions")
    for key in keys:
        lines.append(f"{key} = {_toml_value(data[key])}")
    if data.get("permissions"):
        lines += ["", "[permissions]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in data["permissions"].items()]
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    # JSON's string escapes (\", \\, \n, \uXXXX) are all valid in TOML basic strings.
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ExtensionBuildError(f"cannot write {value!r} into the manifest (strings and lists of strings only)")


def package_files(package_dir: Path = PACKAGE_DIR) -> list:
    """The add-on's files, relative to its package folder, in a stable order."""
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise ExtensionBuildError(f"{package_dir} has no __init__.py; it is not the add-on package.")
    files = []
    for path in sorted(package_dir.rglob("*")):
        rel = path.relative_to(package_dir)
        if not path.is_file() or any(part in EXCLUDED_DIRS for part in rel.parts[:-1]):
            continue
        if path.suffix in EXCLUDED_SUFFIXES or rel.name.startswith(EXCLUDED_PREFIXES):
            continue
        files.append(rel)
    return files


def zip_name(data: dict, platform: str | None = None) -> str:
    """`<id>-<version>.zip`, or `<id>-<version>-<platform>.zip` as Blender names its per-platform builds."""
    suffix = f"-{platform.replace('-', '_')}" if platform else ""
    return f"{data['id']}-{data['version']}{suffix}.zip"


def data_files(data_dirs: dict = DATA_DIRS) -> list:
    """(name in the zip, source path) for the shipped data folders."""
    found = []
    for target, (folder, pattern) in sorted(data_dirs.items()):
        for path in sorted(Path(folder).glob(pattern)) if Path(folder).is_dir() else []:
            if path.is_file() and not path.name.startswith("."):
                found.append((f"{target}/{path.name}", path))
    return found


def build_extension(out_dir, manifest_path: Path = MANIFEST_SOURCE, package_dir: Path = PACKAGE_DIR,
                    data_dirs: dict = DATA_DIRS, platform: str | None = None, wheel_cache=None) -> Path:
    """Write the extension zip into `out_dir` and return its path.

    With a `platform` (a key of PLATFORMS) the zip is `<id>-<version>-<platform>.zip` and carries the
    embedded engine, its code and its wheels for that platform; without one, `<id>-<version>.zip` has
    neither (the backend server makes every take). Wheels are downloaded once into `wheel_cache` (default `out_dir/.wheels`).
    """
    data = read_manifest(manifest_path)
    files = package_files(package_dir)
    extra = data_files(data_dirs)
    if platform is not None:  # the embedded engine: its code and its wheels travel together
        wheels = engine_wheels(platform, Path(wheel_cache) if wheel_cache else Path(out_dir) / ".wheels")
        data = {**data, "platforms": [platform], "wheels": [f"./{WHEELS_DIR}/{w.name}" for w in wheels]}
        extra += engine_files() + [(f"{WHEELS_DIR}/{w.name}", w) for w in wheels]
    clash = {name for name, _ in extra} & {rel.as_posix() for rel in files}
    if clash:
        raise ExtensionBuildError(f"{sorted(clash)} exist both in the package and in a shipped data folder; keep one")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / zip_name(data, platform)
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _add(zf, MANIFEST_NAME, manifest_toml(data).encode("utf-8"))
        for rel in files:
            _add(zf, rel.as_posix(), (Path(package_dir) / rel).read_bytes())
        for name, path in extra:
            # Wheels are zips already: stored, not compressed again.
            _add(zf, name, path.read_bytes(), zipfile.ZIP_STORED if name.endswith(".whl") else zipfile.ZIP_DEFLATED)
    partial.replace(target)
    return target


def build_extensions(out_dir, platforms=tuple(PLATFORMS), wheel_cache=None) -> list:
    """One zip per platform (each with its wheels); the paths written."""
    return [build_extension(out_dir, platform=p, wheel_cache=wheel_cache) for p in platforms]


def engine_files(repo: Path = REPO) -> list:
    """(name in the zip, source path) for the embedded engine's code."""
    found = []
    for pattern in ENGINE_SOURCES:
        matches = sorted(repo.glob(pattern))
        if not matches:
            raise ExtensionBuildError(f"{pattern} is missing: the embedded engine cannot be packaged without it")
        found += [(f"{ENGINE_DIR}/{p.relative_to(repo).as_posix()}", p) for p in matches
                  if not p.name.startswith(EXCLUDED_PREFIXES)]
    return found


def engine_wheels(platform: str, cache: Path) -> list:
    """The engine's dependencies as wheels for `platform` and every Python in PYTHONS, downloaded from
    PyPI by pip into `cache/<platform>-<python>` (kept: a second build downloads nothing)."""
    if platform not in PLATFORMS:
        raise ExtensionBuildError(f"unknown platform {platform!r}; the platforms are {', '.join(PLATFORMS)}")
    wheels = {}
    for python in PYTHONS:
        folder = Path(cache) / f"{platform}-{python}"
        # named by what was asked for: new requirements or platform tags download again
        asked = hashlib.sha256(repr((ENGINE_REQUIREMENTS, PLATFORMS[platform])).encode()).hexdigest()[:12]
        done = folder / f"complete-{asked}.json"
        if not done.is_file():
            _pip_download(PLATFORMS[platform], python, folder)
            done.write_text(json.dumps(sorted(p.name for p in folder.glob("*.whl"))))
        for name in json.loads(done.read_text()):
            if _distribution(name) not in BLENDER_SHIPS:
                wheels[name] = folder / name
    return [wheels[name] for name in sorted(wheels)]


def _pip_download(platform_tag: str, python: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.whl"):
        stale.unlink()
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary",
            ":all:", *[arg for tag in platform_tag.split(",") for arg in ("--platform", tag)], "--python-version", python, "--implementation", "cp",
            "--dest", str(folder), *ENGINE_REQUIREMENTS]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ExtensionBuildError(f"pip could not download the engine's wheels for {platform_tag}, Python {python} "
                                  f"(is PyPI reachable?):\n{tail}")


def _distribution(wheel_name: str) -> str:
    return wheel_name.split("-")[0].lower().replace("_", "-")


def _add(zf: zipfile.ZipFile, name: str, data: bytes, compression: int = zipfile.ZIP_DEFLATED) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)
