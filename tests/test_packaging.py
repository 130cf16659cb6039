"""The backend is a package of its own: it installs without Blender and serves takes with no bpy."""

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_blender_is_an_extra_not_a_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [d.split(";")[0].split("=")[0].split("<")[0].split(">")[0].strip() for d in project["dependencies"]]
    assert "bpy" not in names and "matplotlib" not in names
    assert any(d.startswith("bpy==") for d in project["optional-dependencies"]["blender"])
    assert project["requires-python"] == ">=3.11,<3.14"


SERVE_WITHOUT_BPY = r"""
import sys
sys.modules["bpy"] = None  # any import of bpy now fails, as on a machine without Blender
from backend.server.launcher import LocalServer
import requests
from exomni_blender.core import contract as C
import time
with LocalServer(sys.argv[1]) as server:
    job = requests.post(server.url + C.TAKES, json={"text": "Hello there."}, timeout=30).json()
    for _ in range(600):
        state = requests.get(server.url + C.job_path(job["job_id"]), timeout=10).json()
        if state["state"] in C.FINISHED_STATES:
            break
        time.sleep(0.1)
    print("STATE", state["state"], state.get("take_id"), state.get("error"))
"""


def test_the_backend_serves_a_take_where_bpy_cannot_be_imported(tmp_path):
    # The server runs in its own child process: block bpy there too, through sitecustomize on its path.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['bpy'] = None\n")
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_BPY, str(tmp_path / "store")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "STATE done" in r.stdout, r.stdout + r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-c", "import bpy"], env=env, capture_output=True, text=True)
    assert r.returncode != 0  # the block held, so the take above was made without Blender


def test_a_command_that_needs_blender_says_so_before_any_work(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(
        "import importlib.util, sys\n_find = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'bpy' else _find(name, *a)\n")
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "backend.cli", "demo", "--out", str(tmp_path / "demo")], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "bpy" in r.stderr and ".[blender]" in r.stderr
    assert not (tmp_path / "demo").exists()  # refused before anything was made
