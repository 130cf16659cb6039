"""`exomni batch` end to end: the real sample screenplay, real eSpeak NG takes, the real bpy.

One scene is made for the module (a .blend with heads for Brick and Steel, nothing else), the sample
screenplay is turned into a dialogue scene on it, then run again with one line edited, and a short
script is rendered. Each .blend is read back in one Blender process; the tests check what is in it.
"""

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from backend.dialogue.script import load_script
from exomni_blender.core.take import decode_wav

pytestmark = [pytest.mark.blender, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
FPS = 24

MAKE_SCENE = """
import bpy, sys
from exomni_blender.blender.head import create_head
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.fps, scene.render.fps_base = {fps}, 1.0
create_head("Brick").location.x = -0.15
create_head("Steel Head").location.x = 0.15
bpy.ops.mesh.primitive_cube_add(size=0.1, location=(0, 0.5, -0.3))
bpy.context.active_object.name = "Table"
scene.render.engine = "BLENDER_WORKBENCH"
scene.display.render_aa = "OFF"
scene.render.resolution_x, scene.render.resolution_y = 96, 54
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""

DUMP = """
import bpy, json, sys
from exomni_blender.blender import compat
out = {}
for path in sys.argv[sys.argv.index("--") + 1:]:
    bpy.ops.wm.open_mainfile(filepath=path)
    scene = bpy.context.scene
    heads = {}
    for obj in scene.objects:
        key = getattr(getattr(obj, "data", None), "shape_keys", None)
        if key is None or key.animation_data is None:
            continue
        heads[obj.name] = [{"track": t.name, "mute": t.mute, "strips": [
            {"name": s.name, "start": s.frame_start, "end": s.frame_end, "action": s.action.name,
             "line": s.action.get("exomni_line"), "character": s.action.get("exomni_character"),
             "curves": len(compat.all_fcurves(s.action))} for s in t.strips]} for t in key.animation_data.nla_tracks]
    sounds = [{"name": s.name, "channel": s.channel, "start": s.frame_final_start, "frames": s.frame_final_duration,
               "volume": s.volume, "line": s.get("exomni_line"), "character": s.get("exomni_character")}
              for s in compat.sequencer_all_strips(scene) if s.type == "SOUND"]
    out[path] = {"fps": scene.render.fps / scene.render.fps_base, "frame_start": scene.frame_start,
                 "frame_end": scene.frame_end, "heads": heads, "sounds": sounds,
                 "markers": sorted([m.name, m.frame] for m in scene.timeline_markers),
                 "camera": scene.camera is not None}
print("DUMP " + json.dumps(out))
"""


def exomni(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "backend.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=600)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def work(tmp_path_factory, samples_dir):
    root = tmp_path_factory.mktemp("dialogue")
    blend = root / "scene.blend"
    subprocess.run([sys.executable, "-c", MAKE_SCENE.format(fps=FPS), str(blend)], check=True, capture_output=True,
                   cwd=REPO, timeout=300)
    script = root / "brick_and_steel.fountain"
    shutil.copy(samples_dir / "brick_and_steel.fountain", script)
    return {"root": root, "blend": blend, "blend_sha": sha(blend), "script": script}


@pytest.fixture(scope="module")
def unknown_run(work):
    out = work["root"] / "refused"
    return out, exomni("batch", work["script"], "--blend", work["blend"], "--out", out)


@pytest.fixture(scope="module")
def runs(work, unknown_run):
    """The sample made into a scene, then made again after one line was edited; both read back."""
    first, second = work["root"] / "first", work["root"] / "second"
    common = ["--blend", work["blend"], "--create-heads", "--cast", "MR. STEEL=Steel Head", "--gap", "0.3"]
    r1 = exomni("batch", work["script"], "--out", first, *common, "--flamenco-job", first / "job.json")
    assert r1.returncode == 0, r1.stderr[-3000:]
    plan1 = json.loads((first / "brick_and_steel.plan.json").read_text())
    # The edit: one line of Steel's. The second run reuses the first run's takes.
    text = work["script"].read_text()
    edited = text.replace("Beer's ready!", "Beer's ready, partner!")
    assert edited != text
    work["script"].write_text(edited)
    shutil.copytree(first / "takes", second / "takes")
    # This time the render goes to a (stand-in) Flamenco Manager over HTTP.
    from http.server import HTTPServer

    from test_dialogue_flamenco import _StandInManager

    manager = HTTPServer(("127.0.0.1", 0), _StandInManager)
    _StandInManager.received = []
    threading.Thread(target=manager.serve_forever, daemon=True).start()
    try:
        r2 = exomni("batch", work["script"], "--out", second, *common,
                    "--flamenco", f"http://127.0.0.1:{manager.server_address[1]}")
    finally:
        manager.shutdown()
        manager.server_close()
        work["script"].write_text(text)
    assert r2.returncode == 0, r2.stderr[-3000:]
    plan2 = json.loads((second / "brick_and_steel.plan.json").read_text())
    blends = [first / "brick_and_steel.blend", second / "brick_and_steel.blend"]
    dump = subprocess.run([sys.executable, "-c", DUMP, "--", *map(str, blends)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    line = next(l for l in dump.stdout.splitlines() if l.startswith("DUMP "))
    scenes = json.loads(line[5:])
    return {"r1": r1, "r2": r2, "submitted": list(_StandInManager.received), "plan1": plan1, "plan2": plan2, "scene1": scenes[str(blends[0])],
            "scene2": scenes[str(blends[1])], "first": first, "second": second}


def test_unknown_characters_are_reported_before_any_work(unknown_run, work):
    out, r = unknown_run
    assert r.returncode != 0
    script = load_script(work["script"])
    missing = [c for c in script.characters if c not in ("BRICK", "STEEL")]
    assert len(missing) >= 3
    for name in missing:
        assert name in r.stderr
    assert "--cast" in r.stderr and "--create-heads" in r.stderr
    assert not (out / "takes").exists() or not any((out / "takes").iterdir())
    assert not (out / "brick_and_steel.blend").exists()


def test_every_line_is_a_take_on_the_right_head_in_order(runs, work):
    script = load_script(work["script"])
    scene, plan = runs["scene1"], runs["plan1"]
    expected_head = {"BRICK": "Brick", "STEEL": "Steel Head", "MR. STEEL": "Steel Head"}
    strips = {}
    for head, tracks in scene["heads"].items():
        idle = [t for t in tracks if t["track"] == "ExOmni idle"]
        assert len(idle) == 1 and len(idle[0]["strips"]) == 1  # rest mouth and blinks under the lines
        assert idle[0]["strips"][0]["start"] <= scene["frame_start"] and idle[0]["strips"][0]["end"] >= scene["frame_end"]
        for track in tracks:
            if track["track"].startswith("ExOmni dialogue mouth"):  # the line's base layer
                for s in track["strips"]:
                    assert s["curves"] == 52
                    strips[s["line"]] = (head, s)
    assert sorted(strips) == list(range(len(script.lines)))
    assert len(script.characters) >= 3
    for line in script.lines:
        head, strip = strips[line.index]
        assert head == expected_head.get(line.character, line.character.title())
        assert strip["character"] == line.character
        assert strip["name"].startswith(f"{line.index + 1:03d} {line.character}: ")
        assert strip["name"].split(": ", 1)[1].split()[0] in line.text
    # Script order on the timeline: each line starts after the one before, except dual dialogue.
    starts = [strips[i][1]["start"] for i in range(len(script.lines))]
    for line in script.lines[1:]:
        if line.dual:
            assert starts[line.index] == starts[line.index - 1]
        else:
            assert starts[line.index] > strips[line.index - 1][1]["end"]
    # The dialogue's heads: Brick and Steel were in the scene; the others were made.
    assert scene["camera"] and "Table" not in scene["heads"]
    assert {h for h, _ in strips.values()} == {r["object"] for r in plan["characters"]}


def test_audio_strips_align_with_takes_and_only_dual_dialogue_overlaps(runs, work):
    script = load_script(work["script"])
    scene = runs["scene1"]
    strips = {s["line"]: s for tracks in scene["heads"].values() for t in tracks for s in t["strips"]
              if t["track"].startswith("ExOmni dialogue mouth")}
    sounds = {s["line"]: s for s in scene["sounds"]}
    assert sorted(sounds) == sorted(strips)
    channel_of = {}
    for i, sound in sounds.items():
        take_dir = Path(runs["plan1"]["lines"][i]["take"])
        audio, sr = decode_wav((take_dir / "audio.wav").read_bytes())
        assert sound["start"] == strips[i]["start"]
        assert abs(sound["frames"] - audio.size / sr * FPS) <= 1
        assert abs((strips[i]["end"] - strips[i]["start"] + 1) - sound["frames"]) <= 1
        channel_of.setdefault(sound["character"], set()).add(sound["channel"])
    # Each character has a channel of its own.
    assert all(len(c) == 1 for c in channel_of.values())
    assert len({next(iter(c)) for c in channel_of.values()}) == len(channel_of)
    overlaps = []
    ordered = sorted(sounds.values(), key=lambda s: s["start"])
    for a_i, a in enumerate(ordered):
        for b in ordered[a_i + 1:]:
            if b["start"] < a["start"] + a["frames"]:
                overlaps.append(tuple(sorted((a["line"], b["line"]))))
    dual = [l.index for l in script.lines if l.dual]
    assert dual and overlaps == [(d - 1, d) for d in dual]
    # The scene covers the dialogue, at the scene's own frame rate.
    assert scene["fps"] == FPS
    assert scene["frame_start"] <= min(s["start"] for s in sounds.values())
    assert scene["frame_end"] >= max(s["start"] + s["frames"] - 1 for s in sounds.values())


def test_a_marker_at_every_line(runs, work):
    script = load_script(work["script"])
    markers = runs["scene1"]["markers"]
    sounds = {s["line"]: s for s in runs["scene1"]["sounds"]}
    for line in script.lines:
        name = next(m for m in markers if m[0].startswith(f"{line.character}: ") and m[1] == sounds[line.index]["start"])
        assert line.text.startswith(name[0].split(": ", 1)[1].split()[0])


def test_input_blend_untouched_and_summary(runs, work):
    assert sha(work["blend"]) == work["blend_sha"]
    r1, plan = runs["r1"], runs["plan1"]
    distinct = len({l["hash"] for l in plan["lines"]})
    assert f"takes: {distinct} made, {len(plan['lines']) - distinct} reused" in r1.stdout
    assert "wrote" in r1.stdout and "brick_and_steel.blend" in r1.stdout


def test_editing_one_line_regenerates_exactly_that_take(runs, work):
    plan1, plan2 = runs["plan1"], runs["plan2"]
    changed = [l["index"] for l in plan2["lines"] if l["text"] != plan1["lines"][l["index"]]["text"]]
    assert len(changed) == 1
    assert plan2["cache"]["misses"] == 1 and plan2["cache"]["made"] == changed
    assert plan2["cache"]["hits"] == len(plan2["lines"]) - 1
    assert plan1["cache"]["misses"] == len(plan1["lines"]) - _repeats(plan1)
    for a, b in zip(plan1["lines"], plan2["lines"]):
        assert (a["hash"] == b["hash"]) == (a["index"] not in changed)
    assert f"takes: 1 made, {len(plan2['lines']) - 1} reused" in runs["r2"].stdout
    # The new take is in the new scene.
    names = [s["name"] for t in runs["scene2"]["heads"]["Steel Head"] for s in t["strips"]]
    assert any("Beer's ready, partner" in n for n in names)


def _repeats(plan):
    return len(plan["lines"]) - len({l["hash"] for l in plan["lines"]})


def test_flamenco_job_for_the_scene_fits_the_schema(runs):
    from test_dialogue_flamenco import job_errors

    job = json.loads((runs["first"] / "job.json").read_text())
    assert job_errors(job) == []
    s = job["settings"]
    assert s["blendfile"] == (runs["first"] / "brick_and_steel.blend").resolve().as_posix()
    assert s["frames"] == f"{runs['scene1']['frame_start']}-{runs['scene1']['frame_end']}"
    assert s["fps"] == FPS and Path(job["metadata"]["exomni.audio"]).is_file()
    # --flamenco URL: the second run's job reached the Manager, which gave it an id.
    (sent,) = runs["submitted"]
    assert sent["settings"]["blendfile"].endswith("second/brick_and_steel.blend")
    assert "Flamenco job " in runs["r2"].stdout and "submitted" in runs["r2"].stdout


# -- render ----------------------------------------------------------------------------------------

def _ffmpeg():
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _decode_audio(video, sr=16000):
    raw = subprocess.run([_ffmpeg(), "-v", "error", "-i", str(video), "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le",
                          "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32)


def _resample(audio, sr, to):
    n = int(round(audio.size * to / sr))
    return np.interp(np.arange(n) * sr / to, np.arange(audio.size), audio).astype(np.float32)


def _envelope(audio, sr, hop=0.01):
    h = int(sr * hop)
    n = audio.size // h
    return np.sqrt((audio[: n * h].reshape(n, h) ** 2).mean(axis=1))


def test_render_has_the_timeline_length_and_the_dialogue_audio(work):
    import imageio_ffmpeg

    out = work["root"] / "render"
    script = work["root"] / "short.csv"
    script.write_text("character,line,parenthetical\nBrick,Are they cold?,\n"
                      "Steel,\"Does a bear crap in the woods?\",(shouting)\nBrick,To retirement.,\n")
    # 12 fps (over the scene's 24) keeps the render short.
    r = exomni("batch", script, "--blend", work["blend"], "--out", out, "--cast", "Steel=Steel Head", "--render",
               "--gap", "0.4", "--fps", 12, "--resolution", 96)
    assert r.returncode == 0, r.stderr[-3000:]
    plan = json.loads((out / "short.plan.json").read_text())
    fps = plan["fps"]
    assert fps == 12
    video = out / "short.mp4"
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))
    expected = plan["frame_end"] - plan["frame_start"] + 1
    assert frames == expected
    assert abs(seconds - expected / fps) <= 1.0 / fps
    sr = 16000
    rendered = _decode_audio(video, sr)
    assert abs(rendered.size / sr - expected / fps) <= 2.0 / fps  # AAC pads a little
    mix, mix_sr = decode_wav((out / "short.wav").read_bytes())
    mix = _resample(mix, mix_sr, sr)
    a, b = _envelope(rendered, sr), _envelope(mix, sr)
    n = min(a.size, b.size)
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    lags = range(-10, 11)  # 10 ms steps
    corr = [np.dot(a[max(0, k):n + min(0, k)], b[max(0, -k):n - max(0, k)]) for k in lags]
    best = list(lags)[int(np.argmax(corr))]
    assert abs(best) * 0.01 <= 1.0 / fps  # the dialogue sits where the timeline says, within a frame
    assert np.corrcoef(a, b)[0, 1] > 0.9
    # Sound during each line, silence in the gaps between them; the shouted line is louder.
    env = _envelope(rendered, sr)
    loud = []
    for line in plan["lines"]:
        t0 = (line["start_frame"] - plan["frame_start"]) / fps
        t1 = t0 + line["seconds"]
        inside = env[int(t0 * 100) + 5:int(t1 * 100) - 5]
        assert inside.max() > 0.02
        loud.append(np.percentile(inside, 90))
    assert loud[1] > max(loud[0], loud[2])
    for before, after in zip(plan["lines"], plan["lines"][1:]):
        gap0 = (before["end_frame"] + 1 - plan["frame_start"]) / fps
        gap1 = (after["start_frame"] - plan["frame_start"]) / fps
        assert env[int(gap0 * 100) + 3:int(gap1 * 100) - 3].max() < 0.01


def test_each_line_is_keyed_as_layers(runs, work):
    """Mouth, eyes and expression (the mood, ADD) per line, on their own dialogue tracks, named after
    the line, so a line's mood or eyes can be muted or scaled alone (as the panel's Layers mode)."""
    scene = runs["scene1"]
    by_line: dict = {}
    listening = set()
    for head, tracks in scene["heads"].items():
        for t in tracks:
            if t["track"] == "ExOmni dialogue listen":  # one per character for the whole scene, not per line
                assert t["strips"] and all(s["line"] is None for s in t["strips"]), t
                listening.add(head)
            elif t["track"].startswith("ExOmni dialogue"):
                layer = t["track"][len("ExOmni dialogue "):].split(" ")[0]
                for s in t["strips"]:
                    by_line.setdefault(s["line"], {})[layer] = s
    assert listening == {r["object"] for r in runs["plan1"]["characters"]}
    assert sorted(by_line) == list(range(len(runs["plan1"]["lines"])))
    for line, layers in by_line.items():
        assert {"mouth", "eyes"} <= set(layers), (line, layers)
        base = layers["mouth"]
        for layer, s in layers.items():
            assert s["start"] == base["start"] and s["character"] == base["character"]
            assert s["name"] == base["name"] if layer == "mouth" else s["name"] == f"{base['name']} [{layer}]"
        assert 0 < layers["eyes"]["curves"] < base["curves"]
