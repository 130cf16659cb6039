"""The layers, stated as folder rules, checked on every file's imports (and, for bpy, at run time).

- core: neither bpy nor the network (no requests, sockets or HTTP), nor any other layer;
- remote: the core only, and the network; no bpy;
- blender: the core and bpy; no network, no ui;
- ui: any layer of the extension; the only place that registers classes;
- the backend: never bpy, and of the extension only the core;
- the extension never imports the backend.
"""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import backend

REPO = Path(__file__).resolve().parents[1]
EXT = REPO / "exomni_blender"
NETWORK = {"requests", "socket", "http", "urllib.request", "urllib3", "httpx", "ssl", "subprocess"}
BLENDER = {"bpy", "mathutils", "bmesh", "aud", "gpu", "bpy_extras"}


def imports_of(path: Path):
    """(absolute module names, extension layers reached by relative imports) of one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.relative_to(EXT).parts[:-1]  # the package path inside exomni_blender
    absolute, layers = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            absolute.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                absolute.add(node.module or "")
                continue
            base = list(here[:len(here) - (node.level - 1)]) if node.level > 1 else list(here)
            parts = base + (node.module.split(".") if node.module else [])
            if parts:
                layers.add(parts[0])
            else:  # "from .. import x": x is a layer
                layers.update(a.name for a in node.names)
    return absolute, layers


def _top(names):
    return {n.split(".")[0] for n in names} | set(names)


def files_of(layer):
    return sorted((EXT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer, allowed_layers, forbidden", [
    ("core", {"core"}, BLENDER | NETWORK),
    ("remote", {"core", "remote"}, BLENDER),
    ("blender", {"core", "blender"}, NETWORK - {"subprocess"}),
])
def test_layer_imports(layer, allowed_layers, forbidden):
    files = files_of(layer)
    assert files, f"no files in {layer}/"
    for path in files:
        absolute, layers = imports_of(path)
        bad = _top(absolute) & forbidden
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}, which the {layer} layer must not"
        assert layers <= allowed_layers, f"{path.relative_to(REPO)} reaches {sorted(layers - allowed_layers)}"
        assert "exomni_blender" not in _top(absolute), f"{path.relative_to(REPO)}: use relative imports inside the extension"
        text = path.read_text(encoding="utf-8")
        assert "sys.modules.get(\"bpy\")" not in text, f"{path.relative_to(REPO)} reaches Blender through sys.modules"


def test_only_the_ui_registers_classes():
    for path in EXT.rglob("*.py"):
        if path.relative_to(EXT).parts[0] in ("ui",) or path == EXT / "__init__.py":
            continue
        text = path.read_text(encoding="utf-8")
        for call in ("register_class(", "register_classes_factory(", "bpy.types.Scene."):
            assert call not in text, f"{path.relative_to(REPO)} calls {call}: registration belongs to ui/"


def test_the_core_imports_without_bpy_or_network():
    names = [m.name for m in pkgutil.walk_packages([str(EXT / "core")], "exomni_blender.core.")]
    assert len(names) >= 8
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(BLENDER | {'requests', 'fastapi'})!r})\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]


def test_no_backend_module_imports_bpy():
    names = [m.name for m in pkgutil.walk_packages(backend.__path__, "backend.")]
    assert len(names) > 30
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "bad = sorted(m for m in sys.modules if m == 'bpy' or m.startswith('bpy.'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]


# The one backend launcher lives in remote/; the CLI's local server builds on it (issue 10).
LAUNCHER_USERS = {("backend/server/launcher.py", "exomni_blender.remote.launcher")}


def test_the_backend_imports_only_the_extensions_core():
    for path in (REPO / "backend").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for m in mods:
                if m == "exomni_blender" or m.startswith("exomni_blender."):
                    if (path.relative_to(REPO).as_posix(), m) in LAUNCHER_USERS:
                        continue
                    assert m.startswith("exomni_blender.core"), f"{path.relative_to(REPO)} imports {m}"


def test_no_extension_file_imports_the_backend():
    for path in EXT.rglob("*.py"):
        absolute, _ = imports_of(path)
        assert "backend" not in _top(absolute), f"{path.relative_to(REPO)} imports the backend"
