"""Every code block of the README runs as written, unless a comment right above it says why not
(`<!-- not run: ... -->`: CI's own set-up, or what needs downloaded weights)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>\w*)\n(?P<code>.*?)\n```", re.S)


def blocks():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        line = text[:m.start("lang")].count("\n") + 1
        skip = m.group("before").strip().startswith("<!-- not run")
        found.append(pytest.param(m.group("lang"), m.group("code"), id=f"line{line}-{m.group('lang')}",
                                  marks=[pytest.mark.skip(reason=m.group("before").strip())] if skip else []))
    return found


def _commands(code: str):
    """The block's commands, continuation lines joined, with the README's `.venv/bin/exomni` as this
    environment's command line."""
    exomni = f"{shlex.quote(sys.executable)} -m backend.cli"
    for command in code.replace("\\\n", " ").splitlines():
        command = command.strip()
        if command and not command.startswith("#"):
            yield command.replace(".venv/bin/exomni", exomni)


def test_the_readme_has_runnable_blocks():
    runnable = [b for b in blocks() if not b.marks]
    assert any(b.values[0] == "python" for b in runnable) and any(b.values[0] == "sh" for b in runnable)


@pytest.mark.parametrize("lang, code", blocks())
def test_readme_block_runs_as_written(lang, code, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    exomni = [sys.executable, "-m", "backend.cli"]
    if lang == "python":
        if "bpy" in code:
            pytest.importorskip("bpy")
        # The snippets start from the demo's take folder: make one where they look for it.
        made = subprocess.run([*exomni, "take", "--text", "Hello there.", "--out", "out/demo/take"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, made.stderr
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return
    assert lang == "sh", f"a {lang!r} block: mark it <!-- not run: why --> or teach this test to run it"
    for command in _commands(code):
        r = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{command}\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}"
