"""`exomni demo --out DIR`: the main job, end to end on the embedded engine.

A take of a built-in line is made through the real server path (a backend on 127.0.0.1), then a
Blender process builds the scene (procedural head, keyed take, audio strip), saves demo.blend and
renders demo.mp4 with the audio; curves.png shows the mouth channels over the waveform.
"""

import subprocess
import sys
import time
from pathlib import Path

from exomni_blender.core import contract as C

from .. import blender_process

from ._common import ProgressBar, fail

DEMO_LINE = ("Hello! I'm your new talking head. Type a line, press Generate, "
             "and watch my lips move with every word you give me.")


def register(sub):
    p = sub.add_parser("demo", help="make a talking-head demo: demo.blend, demo.mp4, curves.png and the take")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--text", default=DEMO_LINE, help="the line to say (default: a built-in line)")
    p.add_argument("--voice", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-render", action="store_true", help="skip the preview video")
    p.set_defaults(func=run)


def run(args) -> int:
    import requests

    from exomni_blender.core.take import Take

    from ..server.launcher import LocalServer

    blender_process.command("demo_scene")  # no Blender module: say so before any work is done
    from ..plots import plot_curves

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    take_dir = out / "take"
    t0 = time.monotonic()
    print(f"exomni demo: starting the backend on 127.0.0.1 (log: {out / 'server.log'})", flush=True)
    with LocalServer(out / "store", log_path=out / "server.log") as server:
        body = {"engine": "phonetic", "mode": "say", "text": args.text, "fps": 30, "seed": args.seed,
                "voice": args.voice}
        r = requests.post(server.url + C.TAKES, json=body, timeout=30)
        if r.status_code != 202:
            return fail(f"the backend refused the take: {r.json().get('error', {}).get('message', r.text)}")
        job_id = r.json()["job_id"]
        bar = ProgressBar("take")
        while True:
            job = requests.get(server.url + C.job_path(job_id), timeout=30).json()
            bar(job["progress"], job["message"])
            if job["state"] in C.FINISHED_STATES:
                break
            time.sleep(0.1)
        if job["state"] != C.DONE:
            return fail(f"the take {job['state']}: {(job.get('error') or {}).get('message', job['message'])}")
        bar.done()
        take_dir.mkdir(exist_ok=True)
        for name in ("take.json", "blendshapes.json", "audio.wav"):
            resp = requests.get(server.url + C.take_path(job["take_id"], "" if name == "take.json" else name), timeout=60)
            resp.raise_for_status()
            (take_dir / name).write_bytes(resp.content)
    take = Take.load(take_dir)
    plot_curves(take, out / "curves.png")
    print(f"take: {take.frames} frames at {take.fps:g} fps, {take.duration:.2f} s of audio, "
          f"{len(take.phonemes)} phonemes -> {take_dir}", flush=True)

    try:
        cmd = blender_process.command("demo_scene", "--take", take_dir, "--blend", out / "demo.blend")
    except blender_process.BlenderMissing as exc:
        return fail(str(exc))
    # The video is rendered under a temporary name and renamed when whole: a failed or cancelled
    # render leaves no broken demo.mp4, and the one of an earlier run never stays beside a new scene.
    video, partial = out / "demo.mp4", out / ".demo.rendering.mp4"
    video.unlink(missing_ok=True)
    if not args.no_render:
        cmd += ["--video", str(partial)]
        print(f"blender: building the scene and rendering {take.frames} frames of preview...", flush=True)
    try:
        result = subprocess.run(cmd, capture_output=True, text=True)
        (out / "blender.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            return fail(f"building the Blender scene failed; see {out / 'blender.log'}:\n{result.stderr[-2000:]}")
        if not args.no_render:
            if not partial.is_file() or partial.stat().st_size < 1024:
                return fail(f"the preview render wrote no video; see {out / 'blender.log'}")
            partial.replace(video)
    finally:
        partial.unlink(missing_ok=True)
    for line in result.stdout.splitlines():
        if line.startswith(("scene:", "rendered")):
            print("blender: " + line.replace(str(partial), str(video)), flush=True)
    made = [p for p in ("demo.blend", "demo.mp4", "curves.png", "take") if (out / p).exists()]
    print(f"done in {time.monotonic() - t0:.1f} s: " + ", ".join(str(out / m) for m in made))
    return 0
