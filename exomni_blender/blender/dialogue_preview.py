"""The preview of a dialogue scene an editor can watch: a shot per line on the character who speaks
(a two-shot for dual dialogue), rendered in Workbench at preview size, with the dialogue mixed in.

Run headless on a scene that `dialogue_scene` saved (the backend's `exomni batch --render` does):

    python -m exomni_blender.blender.dialogue_preview --plan PLAN.json --blend SCENE.blend --video OUT.mp4
        [--width 384] [--own-settings] [--limit SECONDS] [--confirm]

The .blend is never saved here: the shot cameras and the preview settings exist only for the render.
With --own-settings the scene renders as it is set up (its engine, resolution and camera). Before
rendering, one frame is timed; a render estimated past --limit seconds is refused (exit 3) unless
--confirm. Each rendered frame prints progress with an estimate of the time left.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import bpy
import numpy as np
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from ..core.dialogue_layout import PROGRESS_TAG, RESULT_TAG
from ..core.errors import ExOmniError
from .preview_render import mp4_output, workbench_look

SHOT_PREFIX = "ExOmni shot"
FACE_HEIGHT_IN_FRAME = 0.62  # a single shot: the face (brows to chin) fills most of the frame's height
TWO_SHOT_WIDTH_IN_FRAME = 0.8  # a two-shot: both faces across most of the frame's width
PROBE_MAX_WIDTH = 320  # the timing probe of a scene's own settings renders at most this wide


class PreviewError(ExOmniError, ValueError):
    """A scene that cannot be previewed; the message says what to do."""


def _progress(fraction: float, message: str = "") -> None:
    print(f"{PROGRESS_TAG} {max(0.0, min(1.0, fraction)):.3f} {message}", flush=True)


# -- where a face is -----------------------------------------------------------------------------

def face_box(obj) -> tuple[Vector, Vector]:
    """World-space (low, high) corners of the part of `obj` its shape keys move (the face), or of
    the whole mesh when it has none: a full-body character is framed on its face, not its feet."""
    mesh = obj.data
    n = len(mesh.vertices)
    co = np.empty(n * 3, np.float32)
    keys = mesh.shape_keys
    if keys is not None and len(keys.key_blocks) > 1:
        keys.reference_key.data.foreach_get("co", co)
        base = co.reshape(-1, 3).copy()
        moved = np.zeros(n, bool)
        for kb in keys.key_blocks:
            if kb == keys.reference_key:
                continue
            kb.data.foreach_get("co", co)
            moved |= np.abs(co.reshape(-1, 3) - base).max(axis=1) > 1e-5
        points = base[moved] if moved.any() else base
    else:
        mesh.vertices.foreach_get("co", co)
        points = co.reshape(-1, 3)
    m = np.array(obj.matrix_world, np.float64)
    world = points.astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    return Vector(world.min(axis=0)), Vector(world.max(axis=0))


def _facing(obj) -> Vector:
    """The way a head looks: its local -Y (the procedural head and ARKit rigs face -Y)."""
    d = obj.matrix_world.to_3x3() @ Vector((0.0, -1.0, 0.0))
    return d.normalized() if d.length > 1e-9 else Vector((0.0, -1.0, 0.0))


# -- shots ---------------------------------------------------------------------------------------

def plan_shots(plan: dict) -> list[dict]:
    """[{start, objects, lines}] in time order: one shot per line on its speaker, a dual-dialogue line
    joins the line it pairs with into a two-shot, and consecutive lines of one head share a shot."""
    lines = sorted(plan["lines"], key=lambda l: (int(l["start_frame"]), int(l["index"])))
    shots: list[dict] = []
    for line in lines:
        if line.get("dual") and shots:
            shot = shots[-1]
            if line["object"] not in shot["objects"]:
                shot["objects"].append(line["object"])
            shot["lines"].append(int(line["index"]))
            continue
        if shots and shots[-1]["objects"] == [line["object"]]:
            shots[-1]["lines"].append(int(line["index"]))
            continue
        shots.append({"start": int(line["start_frame"]), "objects": [line["object"]], "lines": [int(line["index"])]})
    if shots:
        shots[0]["start"] = min(shots[0]["start"], int(plan["frame_start"]))
    return shots


def _aim(scene, cam_data, objects) -> tuple[Vector, Vector]:
    """(camera location, the point it looks at) that frames the faces of `objects`."""
    boxes = [face_box(o) for o in objects]
    lo = Vector((min(b[0].x for b in boxes), min(b[0].y for b in boxes), min(b[0].z for b in boxes)))
    hi = Vector((max(b[1].x for b in boxes), max(b[1].y for b in boxes), max(b[1].z for b in boxes)))
    centre = (lo + hi) / 2
    facing = sum((_facing(o) for o in objects), Vector())
    facing = facing.normalized() if facing.length > 1e-6 else Vector((0.0, -1.0, 0.0))
    aspect = scene.render.resolution_y / max(1, scene.render.resolution_x)
    tan_w = cam_data.sensor_width / 2.0 / cam_data.lens  # the sensor's width spans the (landscape) frame
    tan_h = tan_w * aspect
    size = hi - lo
    height = max(size.z, 1e-3)
    # Across the view: the box's extent perpendicular to the facing direction, horizontally.
    across = Vector((-facing.y, facing.x, 0.0))
    across = across.normalized() if across.length > 1e-6 else Vector((1.0, 0.0, 0.0))
    width = sum(abs(across[i]) * size[i] for i in range(3))
    depth = sum(abs(facing[i]) * size[i] for i in range(3))
    distance = (height / 2) / (FACE_HEIGHT_IN_FRAME * tan_h)
    if len(objects) > 1:
        distance = max(distance, (width / 2) / (TWO_SHOT_WIDTH_IN_FRAME * tan_w))
    return centre + facing * (distance + depth / 2), centre


def add_shots(scene, plan: dict) -> list[dict]:
    """A camera per shot, switched in at its first frame by a timeline marker (Blender's own camera
    switching). Returns the shots with their camera names."""
    for marker in scene.timeline_markers:  # the scene's own camera switches would fight the shots
        marker.camera = None
    shots = plan_shots(plan)
    for i, shot in enumerate(shots):
        objects = []
        for name in shot["objects"]:
            obj = scene.objects.get(name)
            if obj is None or obj.type != "MESH":
                raise PreviewError(f"the plan's head {name!r} is not a mesh in {bpy.data.filepath}; "
                                   "build the scene again with `exomni batch`")
            objects.append(obj)
        data = bpy.data.cameras.new(f"{SHOT_PREFIX} {i + 1}")
        data.lens, data.sensor_fit, data.clip_start = 50.0, "HORIZONTAL", 0.01
        cam = bpy.data.objects.new(data.name, data)
        scene.collection.objects.link(cam)
        location, target = _aim(scene, data, objects)
        cam.location = location
        cam.rotation_euler = (target - location).to_track_quat("-Z", "Y").to_euler()
        marker = scene.timeline_markers.new(data.name, frame=shot["start"])
        marker.camera = cam
        shot["camera"] = cam.name
    if shots:
        scene.camera = bpy.data.objects[shots[0]["camera"]]
        _show_only_shot_heads(scene, plan, shots)
    return shots


def _show_only_shot_heads(scene, plan, shots) -> None:
    """Each shot shows only its own heads; the other dialogue heads are left out of its frames (the
    rest of the scene stays). A head costs its shape-key evaluation on every rendered frame, seen or
    not, and a neighbour cut by the frame's edge only distracts from who speaks."""
    heads = [scene.objects[n] for n in dict.fromkeys(l["object"] for l in plan["lines"]) if n in scene.objects]
    for shot in shots:
        for head in heads:
            head.hide_render = head.name not in shot["objects"]
            head.keyframe_insert("hide_render", frame=shot["start"])


def fill_fraction(scene, obj) -> float:
    """How much of the rendered frame the object's bounding box covers, seen from the scene's camera."""
    cam = scene.camera
    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    view = [world_to_camera_view(scene, cam, c) for c in corners]
    if all(v.z <= 0 for v in view):
        return 0.0
    xs = [min(1.0, max(0.0, v.x)) for v in view]
    ys = [min(1.0, max(0.0, v.y)) for v in view]
    return (max(xs) - min(xs)) * (max(ys) - min(ys))


def measure_lines(scene, plan: dict) -> list[dict]:
    """For each line, at its middle frame: the camera in use and how much of the frame the speaker fills."""
    out = []
    keep = scene.frame_current
    for line in sorted(plan["lines"], key=lambda l: int(l["index"])):
        middle = (int(line["start_frame"]) + int(line["end_frame"])) // 2
        scene.frame_set(middle)
        obj = scene.objects[line["object"]]
        out.append({"line": int(line["index"]), "character": line["character"], "frame": middle,
                    "camera": scene.camera.name, "fill": round(fill_fraction(scene, obj), 4)})
    scene.frame_set(keep)
    return out


# -- settings, estimate, render ------------------------------------------------------------------

def preview_settings(scene, width: int) -> None:
    workbench_look(scene)
    # The characters' own textures (skin, eyes, teeth), their material colours where they have none.
    scene.display.shading.color_type = "TEXTURE"
    scene.render.resolution_x = int(width)
    scene.render.resolution_y = max(2, int(round(width * 9 / 16 / 2)) * 2)
    scene.render.resolution_percentage = 100


def estimate_seconds(scene) -> float:
    """Seconds the whole render should take, from a timed render of its middle frame. A scene's own
    heavy settings are timed at a smaller size and scaled by the pixel count."""
    frames = scene.frame_end - scene.frame_start + 1
    r = scene.render
    full_width = r.resolution_x * r.resolution_percentage / 100
    percentage = r.resolution_percentage
    scale = 1.0
    if full_width > PROBE_MAX_WIDTH:
        r.resolution_percentage = max(1, int(percentage * PROBE_MAX_WIDTH / full_width))
        scale = (percentage / r.resolution_percentage) ** 2
    keep = scene.frame_current
    scene.frame_set((scene.frame_start + scene.frame_end) // 2)
    try:
        t0 = time.monotonic()
        bpy.ops.render.render(scene=scene.name)
        seconds = time.monotonic() - t0
        if seconds < 5.0:  # the first frame also pays for start-up: time a second one
            t0 = time.monotonic()
            bpy.ops.render.render(scene=scene.name)
            seconds = time.monotonic() - t0
    finally:
        r.resolution_percentage = percentage
        scene.frame_set(keep)
    return seconds * scale * frames


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def render(scene, video: str) -> float:
    """Render the animation to `video`, printing each frame with the time left; returns seconds."""
    total = scene.frame_end - scene.frame_start + 1
    state = {"done": 0, "printed": 0.0}
    t0 = time.monotonic()

    def on_frame(*_):
        state["done"] += 1
        now = time.monotonic()
        if now - state["printed"] < 0.5 and state["done"] < total:
            return
        state["printed"] = now
        left = (now - t0) / state["done"] * (total - state["done"])
        _progress(state["done"] / total, f"frame {state['done']}/{total}, {_clock(left)} left")

    bpy.app.handlers.render_post.append(on_frame)
    try:
        mp4_output(scene)
        scene.render.filepath = os.path.abspath(video)
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        bpy.app.handlers.render_post.remove(on_frame)
    return time.monotonic() - t0


def preview(plan: dict, blend: str, video: str, width: int | None = None, own_settings: bool = False,
            limit: float | None = None, confirm: bool = False) -> dict:
    bpy.ops.wm.open_mainfile(filepath=os.path.abspath(blend), load_ui=False)
    scene = bpy.context.scene
    shots = []
    if own_settings:
        if scene.camera is None:
            raise PreviewError(f"{os.path.basename(blend)} has no camera; add one, or leave out the own render "
                               "settings for a preview with a shot on each speaker")
        if width:
            aspect = scene.render.resolution_y / max(1, scene.render.resolution_x)
            scene.render.resolution_x = int(width)
            scene.render.resolution_y = max(2, int(round(width * aspect / 2)) * 2)
    else:
        preview_settings(scene, width or 384)
        shots = add_shots(scene, plan)
    measured = measure_lines(scene, plan)
    r = scene.render
    size = (int(r.resolution_x * r.resolution_percentage / 100), int(r.resolution_y * r.resolution_percentage / 100))
    frames = scene.frame_end - scene.frame_start + 1
    _progress(0.0, "timing a frame")
    estimate = estimate_seconds(scene)
    summary = {"frames": frames, "resolution": list(size), "engine": r.engine, "estimate": round(estimate, 1),
               "shots": measured, "cameras": len(shots)}
    if limit is not None and estimate > limit and not confirm:
        summary["refused"] = (f"the render of {frames} frames at {size[0]}x{size[1]} in {r.engine} is estimated at "
                              f"{_clock(estimate)}, over the limit of {_clock(limit)}")
        return summary
    seconds = render(scene, video)
    return {**summary, "video": os.path.abspath(video), "seconds": round(seconds, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m exomni_blender.blender.dialogue_preview")
    p.add_argument("--plan", required=True, help="the plan.json the scene was built from")
    p.add_argument("--blend", required=True, help="the dialogue scene (read, never saved)")
    p.add_argument("--video", required=True, help="the .mp4 to write")
    p.add_argument("--width", type=int, default=None, help="frame width in pixels (the preview is 16:9)")
    p.add_argument("--own-settings", action="store_true", help="the scene's own engine, resolution and camera")
    p.add_argument("--limit", type=float, default=None, help="refuse a render estimated longer (seconds)")
    p.add_argument("--confirm", action="store_true", help="render even past --limit")
    args = p.parse_args(argv)
    try:
        with open(args.plan, encoding="utf-8") as fh:
            plan = json.load(fh)
        if not plan.get("lines"):
            raise PreviewError(f"{args.plan} has no lines")
        result = preview(plan, args.blend, args.video, args.width, args.own_settings, args.limit, args.confirm)
    except (PreviewError, OSError, ValueError, RuntimeError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"{RESULT_TAG} {json.dumps(result)}", flush=True)
    return 3 if result.get("refused") else 0


if __name__ == "__main__":
    sys.exit(main())
