"""The two halves stay apart: the backend never imports bpy, the extension never imports the backend."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import backend

REPO = Path(__file__).resolve().parents[1]


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


def test_no_extension_file_imports_the_backend():
    for path in (REPO / "exomni_blender").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""] if node.level == 0 else []
            else:
                continue
            assert not any(m == "backend" or m.startswith("backend.") for m in mods), f"{path.name} imports {mods}"
