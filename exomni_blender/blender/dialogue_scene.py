"""A dialogue scene from a plan: every line's take keyed on its character's head, its audio on the
character's own sequencer channel, a marker per line, and an idle layer (rest mouth, blinks) for
whoever is not speaking. Optionally renders the scene with the dialogue mixed in.

Run headless with a Python that has `bpy` (the backend never imports bpy):

    python -m exomni_blender.dialogue_scene --plan PLAN.json [--blend IN.blend] --out OUT.blend [--video OUT.mp4]
    python -m exomni_blender.dialogue_scene --inspect --blend IN.blend     (lists the scene's objects)

The plan comes from `exomni batch` (backend/dialogue/plan.py). IN.blend is opened and saved under
the new name first, so it is never written. On each head the NLA, from the bottom up, holds the
animator's own tracks, then "ExOmni idle" (rest mouth and blinks over the whole scene), then each
line's take as layers (blender/layers.py, as the panel's Layers mode): "ExOmni dialogue mouth" with
one strip per line named after the line, and "ExOmni dialogue eyes", "... expression" (the mood, ADD)
and "... head" (on the head's rotation) with the line's name and its layer; a line's take replaces the
idle layer only over its own frames, and each layer can be muted or scaled on its own. On top, unless
the plan says "listen": false, "ExOmni dialogue listen" (blender/listening.py): each character looks at
whoever speaks (the speaker at the one addressed) and nods and blinks at the speaker's phrase ends.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import bpy
import numpy as np

from . import compat, layers, listening, nla
from .fcurves import sparse_channels, write_fcurves
from ..core import face
from ..core.arkit import ARKIT_52, INDEX
from ..core.dialogue_layout import INSPECT_TAG, PROGRESS_TAG, RESULT_TAG
from .character import MESH, find_character, key_character
from .keying import _identity_targets, shape_key_path
from .preview_render import mp4_output, workbench_look
from ..core.take import Take
from .timeline import add_audio_strip
from ..core.errors import ExOmniError

DIALOGUE_TRACK = "ExOmni dialogue"
IDLE_TRACK = "ExOmni idle"
PLAN_FORMAT = "exomni-dialogue-plan"
IDLE_TOLERANCE = 0.01  # the idle layer is keyed sparsely, within this of the blink curve


class DialogueSceneError(ExOmniError, ValueError):
    """A plan or scene that cannot be built; the message says what to do."""


def _progress(fraction: float, message: str = "") -> None:
    print(f"{PROGRESS_TAG} {max(0.0, min(1.0, fraction)):.3f} {message}", flush=True)


# -- inspecting a scene --------------------------------------------------------------------------

def inspect_scene(scene=None) -> dict:
    """Objects (name, type, number of shape keys, ARKit names among them), frame rate and range."""
    scene = scene or bpy.context.scene
    arkit = {n.lower() for n in ARKIT_52}
    objects = []
    for obj in scene.objects:
        keys = getattr(getattr(obj, "data", None), "shape_keys", None)
        names = [kb.name for kb in keys.key_blocks][1:] if keys is not None else []
        objects.append({"name": obj.name, "type": obj.type, "shape_keys": len(names),
                        "arkit": sum(1 for n in names if n.lower() in arkit)})
    strips = compat.sequencer_all_strips(scene)
    return {"scene": scene.name, "fps": scene.render.fps / scene.render.fps_base,
            "frame_start": scene.frame_start, "frame_end": scene.frame_end, "objects": objects,
            "max_channel": max((s.channel for s in strips), default=0),
            "has_camera": scene.camera is not None}


# -- building ------------------------------------------------------------------------------------

def load_plan(path) -> dict:
    with open(path, encoding="utf-8") as fh:
        plan = json.load(fh)
    if plan.get("format") != PLAN_FORMAT:
        raise DialogueSceneError(f"{path} is not a dialogue plan (made by `exomni batch`)")
    if not plan.get("lines"):
        raise DialogueSceneError(f"{path} has no lines")
    return plan


def _set_fps(scene, fps: float) -> None:
    current = scene.render.fps / scene.render.fps_base
    if abs(current - fps) < 1e-6:
        return
    whole = max(1, int(math.ceil(fps - 1e-6)))
    scene.render.fps = whole
    scene.render.fps_base = whole / fps


def build(plan: dict, out_blend: str, in_blend: str | None = None, video: str | None = None,
          resolution: int | None = None) -> dict:
    if in_blend:
        bpy.ops.wm.open_mainfile(filepath=os.path.abspath(in_blend), load_ui=False)
    else:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.context.scene.name = "Dialogue"
    scene = bpy.context.scene
    bpy.context.preferences.filepaths.save_version = 0  # no OUT.blend1 beside the result
    warnings: list[str] = []
    # Saved under the new name first: the input stays untouched and audio lands beside the output.
    out_blend = os.path.abspath(out_blend)
    os.makedirs(os.path.dirname(out_blend), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=out_blend)
    result = build_into_scene(scene, plan, warnings, progress=_progress)
    heads = result["heads"]
    new_scene = not in_blend
    if scene.camera is None:
        _add_camera(scene, [bpy.data.objects[n] for n in dict.fromkeys(heads.values())])
    if not any(o.type == "LIGHT" for o in scene.objects):
        _add_light(scene)
    if new_scene:
        workbench_look(scene)
    if resolution:
        scene.render.resolution_x = int(resolution)
        scene.render.resolution_y = max(2, int(round(resolution * 9 / 16 / 2)) * 2)
        scene.render.resolution_percentage = 100
    elif new_scene:
        scene.render.resolution_x, scene.render.resolution_y = 640, 360
        scene.render.resolution_percentage = 100
    if video:
        _video_output(scene, video)
    _progress(0.92, "saving")
    # Compressed: each procedural head carries 52 shape keys, which shrink about six times.
    bpy.ops.wm.save_as_mainfile(filepath=out_blend, compress=True)
    if video:
        render(scene, video)
    return {**result, "blend": out_blend, "video": os.path.abspath(video) if video else None, "warnings": warnings}


def build_into_scene(scene, plan: dict, warnings: list | None = None, progress=None, grow_range: bool = False) -> dict:
    """Key every line of `plan` into `scene` (the open file): heads (created where the plan says),
    their idle layers, one NLA strip and one sound strip per line, markers, the frame range (set to
    the dialogue's, or only grown to cover it with `grow_range`).

    Each line's "take" is a take folder, already final (delivery applied). Returns a summary.
    """
    warnings = [] if warnings is None else warnings
    _set_fps(scene, float(plan["fps"]))
    base_channel = inspect_scene(scene)["max_channel"] + 1
    n_characters = max((int(c["channel"]) for c in plan["characters"]), default=1)
    if base_channel + n_characters - 1 > 128:
        raise DialogueSceneError(f"the sequencer has strips up to channel {base_channel - 1}; "
                                 f"{n_characters} more channels do not fit under 128")

    heads = _heads(scene, plan, warnings)
    frame_start, frame_end = int(plan["frame_start"]), int(plan["frame_end"])
    presets: dict = {}
    characters, bone_parts = {}, {}
    for obj in dict.fromkeys(heads.values()):
        presets[obj.name] = _preset_for(obj, warnings)
        characters[obj.name] = found = find_character(obj)
        bone_parts[obj.name] = tuple(p.label for p in found.parts if p.kind != MESH)
        for mesh in {obj.name, *(p.object_name for p in found.parts if p.kind == MESH)}:
            _prepare_nla(bpy.data.objects[mesh])
        _key_idle(obj, plan, frame_start, frame_end, presets[obj.name])

    lines = plan["lines"]
    channels = {c["character"]: base_channel + int(c["channel"]) - 1 for c in plan["characters"]}
    made = []
    for i, line in enumerate(lines):
        if progress is not None:
            progress(i / len(lines) * 0.9, f"{line['character']}: {line['marker'].split(': ', 1)[-1]}")
        head = heads[line["character"]]
        take = Take.load(line["take"])
        # The whole character: teeth, tongue and eye meshes open and look with the head. Eye bones are
        # left to the idle layer here: a bone Action per line would replace the line before it.
        keyed = key_character(head, take, start_frame=line["start_frame"], layered=True, preset=presets[head.name],
                              tracks=DIALOGUE_TRACK, character=characters[head.name],
                              exclude=bone_parts[head.name])
        layered = keyed.layered
        strip, track = _name_line(layered, line)
        for label, other in keyed.layers.items():
            if other is not layered:
                _name_line(other, line)
        sound = add_audio_strip(scene, take, line["start_frame"], channel=channels[line["character"]],
                                name=line["strip"])
        sound.volume = float(line.get("gain", 1.0))
        sound["exomni_line"] = int(line["index"])
        sound["exomni_character"] = line["character"]
        scene.timeline_markers.new(line["marker"], frame=int(line["start_frame"]))
        made.append({"index": line["index"], "head": head.name, "strip": strip.name, "track": track.name,
                     "sound": sound.name, "channel": sound.channel,
                     "layers": {layer: s.name for layer, s in layered.strips.items()}})
    listen = {}
    if plan.get("listen", True):  # the others look at whoever speaks and react (blender/listening.py)
        if progress is not None:
            progress(0.9, "listeners")
        listen = listening.key_listening(scene, plan, heads, presets)
    for marker in plan.get("scene_markers", []):
        scene.timeline_markers.new(marker["name"], frame=int(marker["frame"]))
    if grow_range:
        scene.frame_start, scene.frame_end = min(scene.frame_start, frame_start), max(scene.frame_end, frame_end)
    else:
        scene.frame_start, scene.frame_end = frame_start, frame_end
        scene.frame_current = frame_start
    return {"frame_start": frame_start, "frame_end": frame_end, "lines": len(made), "made": made,
            "heads": {c: h.name for c, h in heads.items()}, "base_channel": base_channel, "listen": listen}


def _heads(scene, plan, warnings) -> dict:
    """{character: head object}, creating the procedural heads the plan asks for."""
    heads: dict = {}
    created = []
    for role in plan["characters"]:
        obj = scene.objects.get(role["object"]) or bpy.data.objects.get(role["object"])
        if obj is None:
            if not role.get("create"):
                raise DialogueSceneError(f"{role['character']} is cast as {role['object']!r}, which is not in the "
                                         "scene; cast another object, or create heads (--create-heads)")
            obj = _new_head(scene, role["object"], created[0] if created else None)
            created.append(obj)
        heads[role["character"]] = obj
    if created:
        _arrange(scene, created, [h for h in dict.fromkeys(heads.values()) if h not in created])
    return heads


def _new_head(scene, name: str, template=None):
    """A procedural head; after the first, copies of it (the same mesh and shape keys, made in a
    fraction of the time), each with its own shape keys to animate."""
    if template is None:
        from .head import create_head

        obj = create_head(name)
    else:
        obj = template.copy()
        obj.data = template.data.copy()
        obj.name = name
        obj.data.name = name
        if obj.data.shape_keys is not None:
            obj.data.shape_keys.name = f"{name} ARKit"
    if obj.name not in scene.objects:
        scene.collection.objects.link(obj)
    return obj


def _arrange(scene, created, existing) -> None:
    """Put new heads side by side (to the right of the cast's existing heads)."""
    bpy.context.view_layer.update()
    width = max(max(o.dimensions.x for o in created), 0.1)
    spacing = width * 1.35
    if existing:
        x0 = max(o.matrix_world.translation.x + o.dimensions.x / 2 for o in existing) + spacing * 0.5 + width / 2
    else:
        x0 = -spacing * (len(created) - 1) / 2
    for i, obj in enumerate(created):
        obj.location.x = x0 + i * spacing
    bpy.context.view_layer.update()


def _preset_for(head, warnings):
    """None when the head has ARKit-named shape keys, else the retarget preset its names match."""
    keys = head.data.shape_keys
    names = {kb.name.lower().replace("_", "") for kb in keys.key_blocks}
    if sum(1 for n in ARKIT_52 if n.lower() in names) >= 26:
        return None
    try:
        from ..core import retarget
    except ImportError:
        return None
    preset = retarget.detect_preset(head)
    if preset is None:
        warnings.append(f"{head.name}: no retarget preset matches its shape keys; keyed by ARKit name only")
    return preset


def _shape_key_anim(head):
    key = head.data.shape_keys
    return key, (key.animation_data or key.animation_data_create())


def _prepare_nla(head) -> None:
    """Keep what the head already has under the new layers: its active Action goes into the NLA,
    and a dialogue from an earlier run stays, muted."""
    key, ad = _shape_key_anim(head)
    if ad.use_tweak_mode:
        raise DialogueSceneError(f"the shape keys of {head.name!r} are in NLA tweak mode; leave it and save the scene")
    nla.mute_tracks(key, (DIALOGUE_TRACK, IDLE_TRACK))
    nla.push_down_active(key)
    for owner in {head, layers._parent_armature(head)} - {None}:  # an earlier run's head layer
        nla.mute_tracks(owner, (DIALOGUE_TRACK,))


def _name_line(layered, line):
    """Name a line's layer Actions and strips after the line (the mouth's, the base, is the line's
    own name; the others add their layer) and mark them with the line; returns the mouth's (strip, track)."""
    for layer, action in layered.actions.items():
        name = line["strip"] if layer == "mouth" else f"{line['strip']} [{layer}]"
        action.name = name
        layered.strips[layer].name = name
        action["exomni_line"] = int(line["index"])
        action["exomni_character"] = line["character"]
    base = layered.actions.get("mouth") or next(iter(layered.actions.values()))
    for action in layered.actions.values():  # the tie between a take's layers follows the rename
        action[layers.TAKE_KEY] = base.name
    strip = layered.strips.get("mouth") or next(iter(layered.strips.values()))
    return strip, next(t for t in strip.id_data.animation_data.nla_tracks if any(s == strip for s in t.strips))


def idle_curves(frame_start: int, frame_end: int, fps: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames [k], weights [k, 52]) of an idle layer: mouth at rest, both eyes blinking with the
    engines' blink generator (`core.face`, seeded), sampled per frame."""
    rng = np.random.default_rng(seed)
    frames = np.arange(int(frame_start), int(frame_end) + 1, dtype=np.float64)
    times = (frames - frame_start) / float(fps)
    blink = face.blink_curve(times, face.blink_onsets(float(times[-1]), rng), fps, rng)
    weights = np.zeros((frames.size, len(ARKIT_52)), np.float32)
    for name in ("eyeBlinkLeft", "eyeBlinkRight"):
        weights[:, INDEX[name]] = blink
    return frames, weights


def _key_idle(head, plan, frame_start: int, frame_end: int, preset) -> None:
    key, ad = _shape_key_anim(head)
    roles = [r for r in plan["characters"] if r["object"] == head.name]
    seed = int(roles[0]["seed"]) if roles else 0
    frames, weights = idle_curves(frame_start, frame_end, float(plan["fps"]), seed)
    key_names = [kb.name for kb in key.key_blocks if kb != key.reference_key]
    targets, _ = (preset.targets if preset is not None else _identity_targets)(key_names, weights)
    # Rest for every mapped channel (so the idle layer replaces what lies below), sparse keys.
    channels = sparse_channels({shape_key_path(n): c for n, c in targets.items()}, frames, IDLE_TOLERANCE,
                               skip_still=False)
    action = compat.new_action(f"ExOmni idle: {head.name}")
    write_fcurves(action, key, channels, frames, group="ExOmni idle")
    nla.place(key, action, float(frame_start), IDLE_TRACK, name="Idle (rest, blinks)", own_track=True,
              extrapolation="HOLD")


# -- camera, light, output -----------------------------------------------------------------------

def _add_camera(scene, heads) -> None:
    from mathutils import Vector

    bpy.context.view_layer.update()
    corners = [h.matrix_world @ Vector(c) for h in heads for c in h.bound_box] or [Vector((0, 0, 0))]
    lo = Vector((min(c.x for c in corners), min(c.y for c in corners), min(c.z for c in corners)))
    hi = Vector((max(c.x for c in corners), max(c.y for c in corners), max(c.z for c in corners)))
    centre = (lo + hi) / 2
    data = bpy.data.cameras.new("DialogueCamera")
    data.lens = 50
    cam = bpy.data.objects.new("DialogueCamera", data)
    scene.collection.objects.link(cam)
    aspect = scene.render.resolution_y / max(1, scene.render.resolution_x) if scene.render.resolution_x else 9 / 16
    half_w = math.atan(data.sensor_width / 2 / data.lens)
    half_h = math.atan(data.sensor_width * min(aspect, 1.0) / 2 / data.lens)
    distance = 1.2 * max((hi.x - lo.x) / 2 / math.tan(half_w), (hi.z - lo.z) / 2 / math.tan(half_h), 0.1)
    # Heads face -Y: look at them from the front.
    cam.location = (centre.x, lo.y - distance, centre.z)
    cam.rotation_euler = (math.radians(90), 0.0, 0.0)
    scene.camera = cam


def _add_light(scene) -> None:
    light = bpy.data.objects.new("DialogueLight", bpy.data.lights.new("DialogueLight", "SUN"))
    light.rotation_euler = (math.radians(60), math.radians(-20), math.radians(-30))
    scene.collection.objects.link(light)


def _video_output(scene, video: str) -> None:
    mp4_output(scene)
    scene.render.filepath = os.path.abspath(video)


def render(scene, video: str) -> None:
    total = scene.frame_end - scene.frame_start + 1
    count = [0]

    def on_frame(*_):
        count[0] += 1
        if count[0] % max(1, total // 50) == 0 or count[0] == total:
            _progress(0.93 + 0.07 * count[0] / total, f"rendered {count[0]}/{total} frames")

    bpy.app.handlers.render_post.append(on_frame)
    try:
        scene.render.filepath = os.path.abspath(video)
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        bpy.app.handlers.render_post.remove(on_frame)


# -- command line --------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m exomni_blender.dialogue_scene")
    p.add_argument("--plan", help="plan.json from `exomni batch`")
    p.add_argument("--blend", help="the scene to start from (never written)")
    p.add_argument("--out", help="the .blend to write")
    p.add_argument("--video", help="render this .mp4 with the dialogue mixed in")
    p.add_argument("--resolution", type=int, default=None, help="render width in pixels (16:9)")
    p.add_argument("--inspect", action="store_true", help="print the scene's objects as JSON and exit")
    args = p.parse_args(argv)
    try:
        if args.inspect:
            if not args.blend:
                p.error("--inspect needs --blend")
            bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.blend), load_ui=False)
            print(f"{INSPECT_TAG} {json.dumps(inspect_scene())}", flush=True)
            return 0
        if not args.plan or not args.out:
            p.error("--plan and --out are needed (or --inspect --blend FILE)")
        if args.blend and os.path.abspath(args.blend) == os.path.abspath(args.out):
            raise DialogueSceneError("--out is the input .blend; write the dialogue scene to another file")
        result = build(load_plan(args.plan), args.out, args.blend, args.video, args.resolution)
    except (DialogueSceneError, OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"{RESULT_TAG} {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
