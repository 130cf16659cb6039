"""`exomni bench avatar FILE`, the Blender side: import an avatar, key a take on its whole character,
print what was keyed per mesh and bone, and render a contact sheet a person can judge: rest, p/b/m,
open vowel, rounded vowel, blink, each with its label, the face framed from eyes to chin.

    python -m exomni_blender.blender.avatar_bench AVATAR TAKE_DIR OUT_DIR [--object NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..core.arkit import ARKIT_52, INDEX
from ..core.take import Take

PANEL = 360  # pixels per side of one picture of the sheet
BILABIALS = ("p", "b", "m")
ROUNDED = ("u", "uː", "ʊ", "o", "oː", "oʊ", "əʊ", "w")


def pick_frames(take: Take) -> dict:
    """{label: frame index} of the five poses the sheet shows, from the take's phonemes and curves."""
    w = np.asarray(take.weights, np.float32)
    jaw, blink = w[:, INDEX["jawOpen"]], w[:, INDEX["eyeBlinkLeft"]]
    rounded = w[:, INDEX["mouthPucker"]] + w[:, INDEX["mouthFunnel"]]
    speaking = np.zeros(len(w), bool)
    bilabial = []
    for p in take.phonemes or []:
        a, b = int(p.start * take.fps), int(np.ceil(p.end * take.fps))
        speaking[max(a, 0):b] = True
        if p.symbol.strip("ˈˌ") in BILABIALS:
            bilabial.append(min((a + b) // 2, len(w) - 1))
    quiet = np.flatnonzero(~speaking & (blink < 0.1))
    frames = {"rest": int(quiet[0]) if quiet.size else 0}
    closed = [f for f in bilabial if jaw[f] < 0.2] or bilabial
    frames["p/b/m"] = int(min(closed, key=lambda f: jaw[f])) if closed else int(np.argmin(jaw + ~speaking))
    frames["open vowel"] = int(np.argmax(jaw))
    frames["rounded vowel"] = int(np.argmax(rounded))
    frames["blink"] = int(np.argmax(blink))
    return frames


def _frame_face(scene, obj, character):
    """An orthographic camera on the face, eyes to chin, from the front (-Y, the glTF/Blender front)."""
    import bpy
    from mathutils import Vector

    # the face is framed on the character's biggest mesh, whichever of its meshes was picked
    meshes = [bpy.data.objects.get(p.object_name) for p in character.keyable()]
    meshes = [o for o in meshes if o is not None and o.type == "MESH"]
    obj = max(meshes, key=lambda o: len(o.data.vertices), default=obj)
    eyes = []
    for part in character.keyable():
        o = bpy.data.objects.get(part.object_name)
        if part.kind == "eye bone" and o is not None:
            eyes.append(np.array(o.matrix_world @ o.pose.bones[part.bone].head))
        elif o is not None and "eye" in o.name.lower() and o.type == "MESH" and o != obj:
            eyes.append(np.mean([list(o.matrix_world @ Vector(c)) for c in o.bound_box], axis=0))
    box = np.array([list(obj.matrix_world @ Vector(c)) for c in obj.bound_box])
    low, high = box.min(axis=0), box.max(axis=0)
    if len(eyes) >= 2:
        eye_z, spread = float(np.mean([e[2] for e in eyes])), float(np.ptp([e[0] for e in eyes]))
        centre_x = float(np.mean([e[0] for e in eyes]))
    else:  # no eyes found: the top of the head mesh
        spread = (high[0] - low[0]) * 0.3
        eye_z, centre_x = high[2] - (high[2] - low[2]) * 0.35, (low[0] + high[0]) / 2
    spread = spread or (high[0] - low[0]) * 0.3
    # eyes to chin is about 2 eye spacings; the picture holds that with some forehead
    centre = Vector((centre_x, low[1] - 10 * spread, eye_z - 0.9 * spread))
    cam_data = bpy.data.cameras.new("exomni avatar camera")
    cam_data.type, cam_data.ortho_scale, cam_data.clip_end = "ORTHO", 3.2 * spread, 100 * spread + 10
    cam = bpy.data.objects.new("exomni avatar camera", cam_data)
    scene.collection.objects.link(cam)
    cam.location = centre
    cam.rotation_euler = (np.pi / 2, 0.0, 0.0)  # looking along +Y at the face
    scene.camera = cam
    return cam, spread


def _label(scene, cam, spread, text):
    import bpy

    curve = bpy.data.curves.new("exomni label", type="FONT")
    curve.body, curve.size, curve.align_x = text, 0.28 * spread, "CENTER"
    ink = bpy.data.materials.get("exomni label ink") or bpy.data.materials.new("exomni label ink")
    ink.diffuse_color = (0.02, 0.02, 0.02, 1.0)
    curve.materials.append(ink)
    label = bpy.data.objects.new("exomni label", curve)
    scene.collection.objects.link(label)
    label.location = cam.location + type(cam.location)((0.0, 2 * spread, 1.3 * spread))  # on the forehead
    label.rotation_euler = (np.pi / 2, 0.0, 0.0)
    return label


def contact_sheet(scene, obj, character, take: Take, start_frame: int, out: Path) -> dict:
    """Render the five poses and stitch them side by side into `out` (PNG); {label: frame}."""
    import bpy

    from .preview_render import workbench_look

    workbench_look(scene)
    scene.render.resolution_x = scene.render.resolution_y = PANEL
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.film_transparent = False
    cam, spread = _frame_face(scene, obj, character)
    picks = pick_frames(take)
    step = scene.render.fps / scene.render.fps_base / take.fps
    tiles = []
    for name, frame in picks.items():
        label = _label(scene, cam, spread, name)
        scene.frame_set(int(round(start_frame + frame * step)))
        path = out.with_name(f"{out.stem}_{name.replace('/', '').replace(' ', '_')}.png")
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        bpy.data.objects.remove(label)
        image = bpy.data.images.load(str(path))
        tiles.append(np.array(image.pixels[:], np.float32).reshape(PANEL, PANEL, 4))
        bpy.data.images.remove(image)
        path.unlink()
    sheet = np.concatenate(tiles, axis=1)
    image = bpy.data.images.new("exomni contact sheet", sheet.shape[1], sheet.shape[0], alpha=True)
    image.pixels.foreach_set(sheet.ravel())
    image.filepath_raw, image.file_format = str(out), "PNG"
    image.save()
    return picks


def choose_head(name: str | None):
    """The named mesh, or the mesh with the most ARKit-named shape keys."""
    import bpy

    if name:
        obj = bpy.data.objects.get(name)
        if obj is None:
            raise SystemExit(f"no object named {name!r}; the meshes are "
                             + ", ".join(o.name for o in bpy.data.objects if o.type == "MESH"))
        return obj
    from ..core.retarget import RigNames

    def score(o):
        """ARKit channels found among its keys (as retargeting finds them: eyeBlink_L is one), then
        size: a scanned face's eyes and teeth carry all of its keys too, the head is the biggest."""
        keys = o.data.shape_keys.key_blocks if o.type == "MESH" and o.data.shape_keys else []
        rig = RigNames([k.name for k in keys][1:])
        return sum(rig.lookup(n)[0] is not None for n in ARKIT_52), len(keys), len(o.data.vertices)

    best = max((o for o in bpy.data.objects if o.type == "MESH"), key=score, default=None)
    if best is None or score(best)[:2] == (0, 0):
        raise SystemExit("no mesh with shape keys in this file; make them first (exomni make-shapes)")
    return best


def main(argv=None) -> int:
    import bpy

    from .character import CharacterError, find_character, key_character
    from .make_shapes import load_input

    p = argparse.ArgumentParser(prog="python -m exomni_blender.blender.avatar_bench")
    p.add_argument("avatar")
    p.add_argument("take")
    p.add_argument("out")
    p.add_argument("--object")
    args = p.parse_args(argv)
    load_input(Path(args.avatar))
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    take = Take.load(args.take)
    obj = choose_head(args.object)
    try:
        keyed = key_character(obj, take, start_frame=1)
    except CharacterError as exc:
        print(f"nothing keyed: {exc}")
        return 1
    character = find_character(obj)
    print(f"character of {obj.name!r} (armature: {character.armature or 'none'}):")
    for label, channels in keyed.keyed.items():
        print(f"  keyed  {label:<24} on {keyed.objects.get(label, label):<20} {len(channels):>2} channels")
    for label, why in keyed.skipped.items():
        print(f"  left   {label:<24} {why}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sheet = out / f"{Path(args.avatar).stem}_contact_sheet.png"
    picks = contact_sheet(scene, obj, character, take, 1, sheet)
    print("contact sheet: " + ", ".join(f"{k} (frame {v + 1})" for k, v in picks.items()) + f" -> {sheet}")
    print("RESULT " + json.dumps({"keyed": {k: len(v) for k, v in keyed.keyed.items()},
                                  "skipped": keyed.skipped, "sheet": str(sheet), "frames": picks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
