"""Files others can read (issue 15): under umask 022 every file the take commands write is 0644 and
every folder 0755, as any other file of the user's; the take store through the real server is in
test_demo_main_job, batch in test_dialogue_preview."""

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def exomni(*args):
    r = subprocess.run([sys.executable, "-m", "backend.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=REPO, timeout=300, preexec_fn=lambda: os.umask(0o022))
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def modes(root: Path) -> dict:
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in root.rglob("*")}


def test_take_convert_and_retarget_write_files_others_can_read(tmp_path):
    take = tmp_path / "take"
    exomni("take", "--text", "Are they cold?", "--out", take)
    exomni("convert", take, "--to", "livelink", "--out", tmp_path / "convert" / "line.csv")
    exomni("convert", take, "--to", "a2f", "--out", tmp_path / "convert" / "line.json")
    exomni("retarget", take, "--preset", "character_creator", "--out", tmp_path / "retarget")
    found = modes(tmp_path)
    files = {k: v for k, v in found.items() if (tmp_path / k).is_file()}
    # take: 3 files; convert: 2 documents and their WAVs; retarget: curves, report, audio
    assert len(files) >= 8, sorted(files)
    assert {k: oct(v) for k, v in files.items() if v != 0o644} == {}
    assert {k: oct(v) for k, v in found.items() if k not in files and v != 0o755} == {}
