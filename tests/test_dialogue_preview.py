"""`exomni batch --render`: a preview an editor can watch (issue 15), on a 3-line script with the real
eSpeak NG takes and the real bpy: a shot per line on whoever speaks (a two-shot for dual dialogue),
per-frame progress with the time left, a render past the limit refused, nothing broken left behind,
no stale video beside a new scene, CSV parentheticals not spoken, files others can read."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.blender, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = ("character,line,dual\n"
          "Brick,(whispering) Are they cold?,\n"
          "Steel,Does a bear crap in the woods?,\n"
          "Brick,(laughing) Ha!,yes\n")


def exomni(*args):
    return subprocess.run([sys.executable, "-m", "backend.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=600, preexec_fn=lambda: os.umask(0o022))


@pytest.fixture(scope="module")
def preview(tmp_path_factory):
    root = tmp_path_factory.mktemp("preview")
    script = root / "short.csv"
    script.write_text(SCRIPT)
    out = root / "out"
    r = exomni("batch", script, "--out", out, "--create-heads", "--render", "--resolution", 128, "--fps", 12)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    log = (out / "short.render.log").read_text()
    result = json.loads(next(l for l in log.splitlines() if l.startswith("EXOMNI_RESULT "))[len("EXOMNI_RESULT "):])
    plan = json.loads((out / "short.plan.json").read_text())
    return {"root": root, "script": script, "out": out, "run": r, "result": result, "plan": plan}


def test_each_line_is_framed_on_its_speaker(preview):
    shots = {s["line"]: s for s in preview["result"]["shots"]}
    assert sorted(shots) == [0, 1, 2]
    for s in shots.values():  # the speaking head is a clear part of the frame, not a head among many
        assert s["fill"] >= 0.12, s
    assert shots[0]["camera"] != shots[1]["camera"]  # Brick, then Steel
    assert shots[2]["camera"] == shots[1]["camera"]  # the dual line: one two-shot for both
    assert preview["result"]["cameras"] == 2
    assert "the speaker fills" in preview["run"].stdout


def test_workbench_at_preview_size_with_per_frame_progress(preview):
    result, run = preview["result"], preview["run"]
    assert result["engine"] == "BLENDER_WORKBENCH" and result["resolution"] == [128, 72]
    frames = preview["plan"]["frame_end"] - preview["plan"]["frame_start"] + 1
    assert result["frames"] == frames and result["estimate"] > 0
    ticks = re.findall(r"render \[[#-]+\] +\d+% frame (\d+)/(\d+), (\d+):(\d\d) left", run.stderr)
    assert ticks and all(int(total) == frames for _, total, _, _ in ticks)
    done = [int(d) for d, _, _, _ in ticks]
    assert done == sorted(done) and len(done) >= 3  # frame by frame (at most two a second), in order
    assert f"100% {frames} frames (" in run.stderr  # the bar's own last line


def test_parentheticals_in_csv_are_not_spoken_nor_named(preview):
    lines = preview["plan"]["lines"]
    assert [l["text"] for l in lines] == ["Are they cold?", "Does a bear crap in the woods?", "Ha!"]
    assert lines[0]["parentheticals"] == ["whispering"] and lines[2]["parentheticals"] == ["laughing"]
    assert not any("(" in l["strip"] or "(" in l["marker"] for l in lines)


def test_everything_written_is_readable_by_others_and_nothing_partial(preview):
    out = preview["out"]
    assert (out / "short.mp4").stat().st_size > 1000
    for path in out.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), f"{path.relative_to(out)} is {oct(mode)}"
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    assert len(list((out / "exomni_audio").iterdir())) == 3 and len(list((out / "takes").iterdir())) == 3


def test_scripts_sharing_a_folder_share_no_file_and_no_stale_video(preview):
    out = preview["out"]
    other = preview["root"] / "other.csv"
    other.write_text("character,line\nBrick,(whispering) Are they cold?\n")
    r = exomni("batch", other, "--out", out, "--create-heads", "--fps", 12)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "other.plan.json").read_text())["lines"][0]["text"] == "Are they cold?"
    assert len(json.loads((out / "short.plan.json").read_text())["lines"]) == 3
    assert "1 reused" in r.stdout  # the one take cache serves both scripts
    # The short script again without --render: its old video no longer matches the new scene.
    r = exomni("batch", preview["script"], "--out", out, "--create-heads", "--fps", 12)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (out / "short.mp4").exists() and "removed short.mp4" in r.stderr


def test_a_render_past_the_limit_is_refused_and_leaves_no_video(preview):
    out = preview["root"] / "refused"
    r = exomni("batch", preview["script"], "--out", out, "--create-heads", "--render", "--resolution", 128,
               "--fps", 12, "--render-limit", "0.0001")
    assert r.returncode == 3, r.stderr[-3000:]
    assert "estimated at" in r.stderr and "--confirm-long-render" in r.stderr
    assert (out / "short.blend").is_file() and not list(out.glob("*.mp4")) and not list(out.glob(".*"))


def test_a_cancelled_render_leaves_no_video(preview):
    out = preview["root"] / "cancelled"
    # Ctrl-C as a terminal sends it: SIGINT restored for the child, which inherits it ignored when the suite
    # itself runs as a background job of a shell (`tests/run.py &`), and then could not be interrupted.
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "batch", str(preview["script"]), "--out", str(out),
                             "--create-heads", "--render", "--resolution", "128", "--fps", "12"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stderr:  # Ctrl-C once frames are being rendered
            if frame := re.search(r"frame (\d+)/(\d+)", line):
                os.killpg(proc.pid, signal.SIGINT)
                assert int(frame[1]) < int(frame[2]), line
                break
        proc.stderr.read()
        assert proc.wait(timeout=120) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (out / "short.blend").is_file() and not list(out.glob("*.mp4")) and not list(out.glob(".*"))
