"""Measures of made shapes, printed by `exomni bench shapes` (run as a child process with bpy):

    python -m exomni_blender.blender.make_shapes_bench --avatar FILE.glb --object NAME [--take DIR]

1. artist: the avatar's own 52 shapes are kept aside and removed, the shapes are made, and per
   shape the cosine between the made and the artist's displacement fields and their size ratio
   are printed (the main mouth, eye and brow shapes are averaged);
2. proportions: the same head scaled, rotated, stretched and squashed: the largest edge stretch
   of any shape at full weight, folded faces, and (for rigid changes) agreement with the upright head;
3. take: a take keyed onto the made head: the lip gap with jawOpen and at its p/b/m closures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

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
    """Remove (and return) the object's ARKit shape keys: the artist's shapes kept aside."""
    kept = {k: v for k, v in key_deltas(obj).items() if k in ARKIT_52}
    for name in kept:
        obj.shape_key_remove(obj.data.shape_keys.key_blocks[name])
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
    args = p.parse_args(argv)

    obj, artist, made, summary, seconds = run_artist(args.avatar, args.object)
    scores = compare(made, artist)
    print(f"\n1. {obj.name} ({len(obj.data.vertices)} vertices): made {len(summary['made'])} shapes in "
          f"{seconds:.2f} s, all 52 present: {all(n in obj.data.shape_keys.key_blocks for n in ARKIT_52)}")
    print(f"{'shape':22s} {'cosine':>7s} {'size':>6s}")
    for name, (cos, size) in scores.items():
        print(f"{name:22s} {cos:7.3f} {size:6.2f}")
    cosines = [c for c, _ in scores.values()]
    sizes = [s for _, s in scores.values()]
    print(f"mean cosine over {len(cosines)} main shapes: {np.mean(cosines):.3f} (issue: >= 0.5); sizes "
          f"{min(sizes):.2f}..{max(sizes):.2f} (issue: within 3x), {sum(1/3 <= s <= 3 for s in sizes)}/{len(sizes)} within")

    obj = load_avatar(args.avatar, args.object)
    worst, folds = stretch_and_folds(obj)
    print("\n2. proportions: largest edge stretch at full weight over the 52 shapes, folded faces, cosine to upright")
    print(f"{'the artist own shapes':32s} stretch {worst:6.2f}  folds {folds:4d}  (for reference)")
    base = None
    for label, matrix in VARIANTS.items():
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


if __name__ == "__main__":
    sys.exit(main())
