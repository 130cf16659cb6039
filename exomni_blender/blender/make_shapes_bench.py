"""Measures of made shapes, printed by `exomni bench shapes` (run as a child process with bpy):

    python -m exomni_blender.blender.make_shapes_bench --avatar FILE.glb --object NAME [--take DIR]

1. artist: the avatar's own 52 shapes are kept aside and removed, the shapes are made, and per
   shape the cosine between the made and the artist's displacement fields and their size ratio
   are printed (the main mouth, eye and brow shapes are averaged);
2. proportions: the same head scaled, rotated, stretched and squashed: the largest edge stretch
   of any shape at full weight, folded faces, and (for rigid changes) agreement with the upright head;
3. take: a take keyed onto the made head: the lip gap with jawOpen and at its p/b/m closures.

Before 2., the key shapes' measures (core/shapes/check.py) on the artist's and the made shapes:
the lip opening at jawOpen=1 and mouthFunnel=1, the eye left showing at eyeBlink=1, edge stretch,
against the issue's bars (sizes 0.5-2x, lips parting >= 0.7x the artist's, lids within 1 mm, blink
stretch <= 1.5x the artist's); with --renders, side-by-side Workbench renders (artist left, made
right) of the key shapes and close-ups of the eye and the mouth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..core.arkit import ARKIT_52
from ..core.errors import ExOmniError

MAIN_SHAPES = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
               "mouthFrownLeft", "mouthFrownRight", "mouthStretchLeft", "mouthStretchRight", "mouthLeft",
               "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthUpperUpLeft", "mouthLowerDownLeft",
               "eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
               "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight")


def key_deltas(obj) -> dict:
    keys = obj.data.shape_keys
    n = len(obj.data.vertices)
    basis = np.empty(n * 3)
    keys.reference_key.data.foreach_get("co", basis)
    out = {}
    for block in keys.key_blocks[1:]:
        co = np.empty(n * 3)
        block.data.foreach_get("co", co)
        out[block.name] = (co - basis).reshape(-1, 3)
    return out


def strip_arkit(obj) -> dict:
    """Remove (and return, by ARKit name) the object's ARKit shape keys: the artist's shapes kept
    aside. Names are matched as retargeting matches them (eyeBlink_L is eyeBlinkLeft); a shape the
    rig has only as two halves (browInnerUp_L and _R) is kept as their sum."""
    from ..core.retarget import RigNames
    from ..core.retarget.apply import split_halves

    deltas = key_deltas(obj)
    rig = RigNames(list(deltas))
    kept, used = {}, []
    for name in ARKIT_52:
        hit = rig.lookup(name)[0]
        halves = split_halves(name, rig) if hit is None else None
        if hit is not None:
            kept[name], used = deltas[hit], used + [hit]
        elif halves is not None:
            (left, _), right = halves
            kept[name], used = deltas[left] + deltas[right], used + [left, right]
    for rig_name in dict.fromkeys(used):
        obj.shape_key_remove(obj.data.shape_keys.key_blocks[rig_name])
    return kept


def compare(made: dict, artist: dict, names=MAIN_SHAPES) -> dict:
    """Per shape: (cosine of the displacement fields, made size / artist size)."""
    out = {}
    for name in names:
        a, b = artist[name].ravel(), made[name].ravel()
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        out[name] = (float(a @ b / max(na * nb, 1e-20)), float(nb / max(na, 1e-20)))
    return out


def stretch_and_folds(obj) -> tuple:
    """The largest edge stretch over every ARKit shape at full weight, and folded faces in total."""
    from ..core.shapes import edge_stretch, folded_faces
    from .make_shapes import read_mesh

    mesh = read_mesh(obj)
    edges = mesh.edges()
    worst, folds = 1.0, 0
    for name, d in key_deltas(obj).items():
        if name in ARKIT_52:
            worst = max(worst, edge_stretch(mesh.points, mesh.points + d, edges))
            folds += folded_faces(mesh, mesh.points + d)
    return worst, folds


def transform_meshes(objects, matrix) -> None:
    """Apply a 3x3 linear map to the meshes' vertices (and every shape key), in place."""
    for obj in objects:
        blocks = obj.data.shape_keys.key_blocks if obj.data.shape_keys else [obj.data.vertices]
        for data in [obj.data.vertices] + [b.data for b in blocks if b is not obj.data.vertices]:
            co = np.empty(len(data) * 3)
            data.foreach_get("co", co)
            data.foreach_set("co", (co.reshape(-1, 3) @ np.asarray(matrix).T).ravel())
        obj.data.update()


def _rotation(axis, degrees):
    a = np.radians(degrees)
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


VARIANTS = {  # name -> linear map applied to the head and its eyes
    "as is": np.eye(3),
    "scaled x10": 10.0 * np.eye(3),
    "Y-up (turned 90 deg about X)": _rotation((1, 0, 0), 90),
    "turned 37 deg, tilted 20 deg": _rotation((0, 0, 1), 37) @ _rotation((1, 0, 0), 20),
    "elongated (1.35 tall)": np.diag([1.0, 1.0, 1.35]),
    "stylised (wide 1.3, flat 0.75)": np.diag([1.3, 0.75, 1.0]),
}
RIGID = {"as is", "scaled x10", "Y-up (turned 90 deg about X)", "turned 37 deg, tilted 20 deg"}


def load_avatar(path, name):
    from .make_shapes import choose_object, load_input
    from pathlib import Path

    load_input(Path(path))
    obj = choose_object(name)
    return obj


def run_artist(path, name) -> tuple:
    from .make_shapes import make_shapes

    obj = load_avatar(path, name)
    artist = strip_arkit(obj)
    t0 = time.perf_counter()
    summary = make_shapes(obj)
    seconds = time.perf_counter() - t0
    made = {k: v for k, v in key_deltas(obj).items() if k in ARKIT_52}
    return obj, artist, made, summary, seconds


def lip_vertices(summary, obj):
    """The vertices nearest the upper and lower lip landmarks."""
    from .make_shapes import read_mesh

    pts = read_mesh(obj).points
    up = np.asarray(summary["landmarks"]["lipUpper"])
    lo = np.asarray(summary["landmarks"]["lipLower"])
    iu = int(np.argmin(np.linalg.norm(pts - up, axis=1)))
    il = int(np.argmin(np.linalg.norm(pts - lo, axis=1)))
    return iu, il


def evaluated_points(obj) -> np.ndarray:
    import bpy

    dg = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(dg)
    me = ev.to_mesh()
    co = np.empty(len(me.vertices) * 3)
    me.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    return co.reshape(-1, 3)


def take_lip_gaps(obj, summary, take) -> dict:
    """Key the take onto the head; the lip gap (metres) with jawOpen alone, and over the take's
    frames where its curves close the lips (p/b/m) against the frames where they are open."""
    import bpy

    from ..core.face import lip_gap
    from .keying import key_take

    iu, il = lip_vertices(summary, obj)
    blocks = obj.data.shape_keys.key_blocks
    rest = evaluated_points(obj)
    rest_gap = float(np.linalg.norm(rest[iu] - rest[il]))
    blocks["jawOpen"].value = 1.0
    jaw = evaluated_points(obj)
    blocks["jawOpen"].value = 0.0
    jaw_gap = float(np.linalg.norm(jaw[iu] - jaw[il]))
    scene = bpy.context.scene
    scene.render.fps = int(round(take.fps))
    key_take(obj, take, start_frame=1)
    gaps = lip_gap(take.weights)
    closed = np.nonzero(gaps <= 0.05)[0]
    opened = np.nonzero(gaps >= 0.4)[0]
    closed = closed[(closed > 0) & (closed < take.frames - 1)]

    def gap_at(frames):
        out = []
        for f in frames[:: max(1, len(frames) // 25)]:
            scene.frame_set(int(f) + 1)
            p = evaluated_points(obj)
            out.append(float(np.linalg.norm(p[iu] - p[il])))
        return out
    return {"rest": rest_gap, "jawOpen": jaw_gap, "closed": gap_at(closed), "open": gap_at(opened)}


def main(argv=None) -> int:
    import bpy

    from .make_shapes import make_shapes

    p = argparse.ArgumentParser(prog="python -m exomni_blender.blender.make_shapes_bench")
    p.add_argument("--avatar", required=True)
    p.add_argument("--object", required=True)
    p.add_argument("--take", help="a take folder to key onto the made head")
    p.add_argument("--renders", help="a folder for side-by-side renders (artist / made) of the key shapes")
    p.add_argument("--no-variants", action="store_true", help="skip the scaled, turned and stretched heads")
    args = p.parse_args(argv)

    obj, artist, made, summary, seconds = run_artist(args.avatar, args.object)
    scores = compare(made, artist)
    report_key_shapes(obj, artist, made, args.renders)
    if args.no_variants and not args.take:
        return 0
    print(f"\n1. {obj.name} ({len(obj.data.vertices)} vertices): made {len(summary['made'])} shapes in "
          f"{seconds:.2f} s, all 52 present: {all(n in obj.data.shape_keys.key_blocks for n in ARKIT_52)}")
    print(f"{'shape':22s} {'cosine':>7s} {'size':>6s}")
    for name, (cos, size) in scores.items():
        print(f"{name:22s} {cos:7.3f} {size:6.2f}")
    cosines = [c for c, _ in scores.values()]
    sizes = [s for _, s in scores.values()]
    print(f"mean cosine over {len(cosines)} main shapes: {np.mean(cosines):.3f} (issue: >= 0.5); sizes "
          f"{min(sizes):.2f}..{max(sizes):.2f} (issue: within 3x), {sum(1/3 <= s <= 3 for s in sizes)}/{len(sizes)} within")

    if args.no_variants:
        args_variants = {}
    else:
        args_variants = VARIANTS
    obj = load_avatar(args.avatar, args.object)
    worst, folds = stretch_and_folds(obj)
    print("\n2. proportions: largest edge stretch at full weight over the 52 shapes, folded faces, cosine to upright")
    print(f"{'the artist own shapes':32s} stretch {worst:6.2f}  folds {folds:4d}  (for reference)")
    base = None
    for label, matrix in args_variants.items():
        obj = load_avatar(args.avatar, args.object)
        strip_arkit(obj)
        eyes = [o for o in bpy.data.objects if o.type == "MESH" and o is not obj]
        transform_meshes([obj] + eyes, matrix)
        try:
            summary_v = make_shapes(obj)
        except ExOmniError as exc:  # one variant failing is a result; the others are still measured
            print(f"{label:32s} FAILED: {exc}")
            continue
        worst, folds = stretch_and_folds(obj)
        made_v = {k: v for k, v in key_deltas(obj).items() if k in ARKIT_52}
        agree = ""
        if label == "as is":
            base = made_v
        elif label in RIGID and base is not None:
            inv = np.linalg.inv(matrix)
            back = {k: v @ inv.T for k, v in made_v.items()}
            agree = f"{np.mean([c for c, _ in compare(back, base).values()]):.3f}"
        print(f"{label:32s} stretch {worst:6.2f}  folds {folds:4d}  cosine to upright {agree or '-':>6s}  "
              f"estimated {summary_v['estimated'] or 'none'}")

    if args.take:
        from ..core.take import Take

        obj = load_avatar(args.avatar, args.object)
        strip_arkit(obj)
        summary = make_shapes(obj)
        from ..core.retarget import detect

        found = detect(obj.data.shape_keys.key_blocks.keys()[1:])
        gaps = take_lip_gaps(obj, summary, Take.load(args.take))
        print(f"\n3. take on the made head: retarget detects {found.preset.id if found.preset else None}; lip gap "
              f"at rest {gaps['rest'] * 1000:.1f} mm, jawOpen {gaps['jawOpen'] * 1000:.1f} mm; at p/b/m "
              f"closures mean {np.mean(gaps['closed']) * 1000 if gaps['closed'] else float('nan'):.1f} mm "
              f"({len(gaps['closed'])} frames), open frames mean "
              f"{np.mean(gaps['open']) * 1000 if gaps['open'] else float('nan'):.1f} mm")
    return 0



SIZE_RANGE = (0.5, 2.0)  # the bar: made size / artist size of every main shape
OPENING_SHARE = 0.7      # the made jawOpen parts the lips at least this share of the artist's
LID_CLOSED = 0.001       # metres of eye left showing at eyeBlink=1
LID_STRETCH_SHARE = 1.5  # the made blink stretches an edge at most this many times the artist's


def key_shape_measures(obj, artist: dict, made: dict) -> dict:
    """The self-check's measures on the artist's shapes and on the made ones, on the same head."""
    from ..core.shapes.check import measure
    from ..core.shapes.transfer import character_labels
    from ..core.shapes.check import _eye_side
    from .make_shapes import find_landmarks

    mesh, skin, lm, eyes = find_landmarks(obj)
    labels = character_labels(mesh, skin, lm)
    eyes = _eye_side(lm, eyes)
    return {"artist": measure(mesh, skin, lm, eyes, artist, labels),
            "made": measure(mesh, skin, lm, eyes, made, labels), "landmarks": lm}


def report_key_shapes(obj, artist: dict, made: dict, renders=None) -> dict:
    """Print what the key shapes do, the artist's against the made, and the issue's bars; write
    the side-by-side renders when asked."""
    m = key_shape_measures(obj, artist, made)
    a, b = m["artist"], m["made"]
    scores = compare(made, artist, names=[n for n in MAIN_SHAPES + ("cheekPuff",) if n in artist])
    mm = lambda v: f"{v * 1000:6.1f} mm"
    print(f"\nkey shapes on {obj.name}: {'measure':36s} {'artist':>9s} {'made':>9s}")
    for key in ("jawOpen lip opening", "mouthFunnel lip opening", "eyeBlinkLeft lid gap", "eyeBlinkRight lid gap"):
        if key in a:
            print(f"  {key:48s} {mm(a[key])} {mm(b[key])}")
    opening = b["jawOpen lip opening"] / max(a["jawOpen lip opening"], 1e-9)
    lids = max(b.get("eyeBlinkLeft lid gap", 0.0), b.get("eyeBlinkRight lid gap", 0.0))
    lid_stretch = max(b["stretch"][n] / max(a["stretch"][n], 1e-9) for n in ("eyeBlinkLeft", "eyeBlinkRight"))
    worst = max(b["stretch"][n] / max(a["stretch"][n], 1e-9) for n in b["stretch"] if n in a["stretch"])
    out_of = [n for n, (_, size) in scores.items() if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]]
    bars = {
        f"sizes within {SIZE_RANGE[0]}-{SIZE_RANGE[1]}x": (not out_of, f"{len(scores) - len(out_of)}/{len(scores)}"
                                                          + (f", out: {', '.join(out_of)}" if out_of else "")),
        f"jawOpen parts the lips >= {OPENING_SHARE}x the artist's": (opening >= OPENING_SHARE, f"{opening:.2f}x"),
        f"lids close within {LID_CLOSED * 1000:.0f} mm": (lids <= LID_CLOSED, f"{lids * 1000:.1f} mm"
                                                          f" (artist {max(a.get('eyeBlinkLeft lid gap', 0), a.get('eyeBlinkRight lid gap', 0)) * 1000:.1f} mm)"),
        f"blink edge stretch <= {LID_STRETCH_SHARE}x the artist's": (lid_stretch <= LID_STRETCH_SHARE, f"{lid_stretch:.2f}x"),
    }
    print(f"  mean cosine {np.mean([c for c, _ in scores.values()]):.3f} over {len(scores)} shapes; "
          f"worst edge stretch vs the artist's, any shape: {worst:.2f}x")
    for name, (ok, words) in bars.items():
        print(f"  {'PASS' if ok else 'FAIL'} {name}: {words}")
    if renders:
        paths = render_side_by_side(obj, m["landmarks"], artist, made, renders)
        print(f"  renders (artist left, made right): {Path(renders)}/ ({len(paths)} shapes)")
    return {"scores": scores, "bars": bars, "artist": a, "made": b}


CLOSE_UPS = {"eyeBlinkLeft": "eyeL", "jawOpen": "lipLower", "mouthFunnel": "lipUpper"}


def _side_by_side(paths, out):
    """Two renders of one size joined left to right into one PNG (the parts removed)."""
    import bpy

    images = [bpy.data.images.load(str(p)) for p in paths]
    w, h = images[0].size
    pixels = [np.array(im.pixels[:], np.float32).reshape(h, w, 4) for im in images]
    joined = bpy.data.images.new("exomni side by side", 2 * w + 4, h, alpha=True)
    canvas = np.ones((h, 2 * w + 4, 4), np.float32)
    canvas[:, :w], canvas[:, w + 4:] = pixels
    joined.pixels[:] = canvas.ravel()
    joined.filepath_raw = str(out)
    joined.file_format = "PNG"
    joined.save()
    for im in images + [joined]:
        bpy.data.images.remove(im)
    for p in paths:
        Path(p).unlink()
    return str(out)


RENDERED = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "eyeBlinkLeft", "cheekPuff",
            "browInnerUp", "mouthClose")


def render_side_by_side(obj, lm, artist: dict, made: dict, out_dir, names=RENDERED, size=(720, 400)) -> list:
    """One Workbench PNG per shape: the artist's shape on the left, the made one on the right, the
    face seen from the front (eye meshes beside the head drawn too). Returns the paths."""
    import bpy
    from mathutils import Matrix, Vector

    from .make_shapes import read_mesh
    from .preview_render import workbench_look

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scene = bpy.context.scene
    workbench_look(scene)
    scene.display.shading.color_type = "SINGLE"
    scene.display.shading.single_color = (0.8, 0.62, 0.52)
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    rest = read_mesh(obj).points
    m = np.array(obj.matrix_world)
    to_world = lambda p: (np.c_[p, np.ones(len(p))] @ m.T)[:, :3]
    left, back, up = lm.rotation
    ied = lm.eye_distance
    # the face's frame in the world: across (subject's left), front, up
    across = (m[:3, :3] @ left)
    across /= np.linalg.norm(across)
    front = -(m[:3, :3] @ back)
    front /= np.linalg.norm(front)
    upw = m[:3, :3] @ up
    upw /= np.linalg.norm(upw)
    centre = to_world(np.array([0.5 * (lm.points["eyeL"] + lm.points["eyeR"]) * 0.45
                                + 0.55 * 0.5 * (lm.points["mouthL"] + lm.points["mouthR"])]))[0]
    scale_w = float(np.linalg.norm(m[:3, 0]))
    shift = -across * 2.6 * ied * scale_w  # the artist's copy, on the viewer's left
    # a copy of the head (and of the eye and teeth meshes) for the artist's side
    others = [o for o in bpy.data.objects if o.type == "MESH" and o is not obj and o.visible_get()]
    pairs = []
    for src in [obj] + others:
        copy = src.copy()
        copy.data = src.data.copy()
        copy.shape_key_clear() if copy.data.shape_keys else None
        scene.collection.objects.link(copy)
        copy.matrix_world = Matrix.Translation(Vector(shift)) @ src.matrix_world
        pairs.append((src, copy))
    for src in [obj] + others:
        if src.data.shape_keys:
            for b in src.data.shape_keys.key_blocks:
                b.value = 0.0
    head_copy = pairs[0][1]
    cam_data = bpy.data.cameras.new("exomni bench camera")
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = 5.6 * ied * scale_w
    cam = bpy.data.objects.new("exomni bench camera", cam_data)
    scene.collection.objects.link(cam)
    look = Vector(centre + 0.5 * shift)
    rot = Matrix(np.stack([across, upw, front], 1).tolist())  # camera x right, y up, looking along -z
    cam.matrix_world = Matrix.Translation(look + Vector(front) * 10 * ied * scale_w) @ rot.to_4x4()
    cam_data.clip_end = 100 * ied * scale_w
    scene.camera = cam
    paths = []
    made_block = {}
    for name in names:
        if name not in artist or name not in made:
            continue
        head_copy.data.vertices.foreach_set("co", (rest + artist[name]).astype(np.float32).ravel())
        head_copy.data.update()
        block = obj.data.shape_keys.key_blocks.get(name)
        if block is not None:
            block.value = 1.0
        scene.render.filepath = str(out_dir / f"{name}.png")
        bpy.ops.render.render(write_still=True)
        paths.append(scene.render.filepath)
        focus = CLOSE_UPS.get(name)
        if focus:
            # a close-up of the feature: the artist's, then the made, side by side in one image
            spot = to_world(np.array([lm.points[focus]]))[0]
            halves = []
            for k, where in enumerate((spot + shift, spot)):
                cam.matrix_world = Matrix.Translation(Vector(where) + Vector(front) * 10 * ied * scale_w) @ rot.to_4x4()
                cam_data.ortho_scale = 0.9 * ied * scale_w
                scene.render.resolution_x = size[1]
                scene.render.filepath = str(out_dir / f"_{name}_{k}.png")
                bpy.ops.render.render(write_still=True)
                halves.append(Path(scene.render.filepath))
            paths.append(_side_by_side(halves, out_dir / f"{name}_closeup.png"))
            cam.matrix_world = Matrix.Translation(look + Vector(front) * 10 * ied * scale_w) @ rot.to_4x4()
            cam_data.ortho_scale = 5.6 * ied * scale_w
            scene.render.resolution_x = size[0]
        if block is not None:
            block.value = 0.0
    del made_block
    for _, copy in pairs:
        bpy.data.objects.remove(copy)
    bpy.data.objects.remove(cam)
    return paths


if __name__ == "__main__":
    sys.exit(main())
