"""The whole test suite, as CI and the README run it: every test on this environment's Blender (bpy
4.5 LTS), then the Blender-facing tests again on Blender 5.0, in a second virtual environment beside the
first (`.venv-bpy5`: bpy 5.0 only; everything else is shared with this one).

    python tests/run.py [pytest arguments]      # EXOMNI_BPY5=0 skips the second run

Exit status: 0 when both runs pass (pytest's "no tests collected" counts as a pass), else 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BPY5 = "bpy==5.0.*"
BPY5_VENV = REPO / ".venv-bpy5"


def pytest(python: str, args: list[str], label: str) -> tuple[int, str]:
    print(f"\n=== {label} ===", flush=True)
    proc = subprocess.Popen([python, "-m", "pytest", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    last = ""
    for line in proc.stdout:
        sys.stdout.write(line)
        if re.search(r"\d+ (passed|failed|error)", line):
            last = line
    status = proc.wait()
    return (0 if status == 5 else status), last


def bpy5_python() -> str:
    """The second environment's Python: its own bpy 5.0, this environment's site-packages behind it."""
    python = BPY5_VENV / "bin" / "python"
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(BPY5_VENV)], check=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # After its own packages, so its bpy wins; addsitedir also runs this environment's .pth files
    # (the editable install of the repository).
    (site / "exomni_shared_env.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    ok = subprocess.run([str(python), "-c", "import bpy, sys; sys.exit(bpy.app.version[0] != 5)"],
                        capture_output=True).returncode == 0
    if not ok:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", BPY5], check=True)
    return str(python)


def counts(line: str) -> dict:
    return {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", line)}


def main(argv: list[str]) -> int:
    started = time.monotonic()
    status, last = pytest(sys.executable, argv, "whole suite, bpy 4.5 LTS")
    total = counts(last)
    if os.environ.get("EXOMNI_BPY5", "1") != "0":
        try:
            python = bpy5_python()
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"could not make the bpy 5.0 environment: {exc}", flush=True)
            status = status or 1
        else:
            status5, last5 = pytest(python, ["-m", "blender", *argv], "Blender-facing tests, bpy 5.0")
            status = status or status5
            for k, v in counts(last5).items():
                total[k] = total.get(k, 0) + v
    minutes = (time.monotonic() - started) / 60
    print(f"\nboth runs in {minutes:.1f} min")
    failed = total.get("failed", 0) + total.get("error", 0) + total.get("errors", 0)
    print(f"{total.get('passed', 0)} passed, {failed} failed, {total.get('skipped', 0)} skipped")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
