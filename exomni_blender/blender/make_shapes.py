"""The 52 ARKit shape keys made on a head mesh that has none (or only some), in Blender.

    python -m exomni_blender.blender.make_shapes IN.blend|IN.glb|IN.gltf|IN.vrm --out OUT.blend [--object NAME]

reads the mesh, finds its eyeballs (eye meshes beside it, or sphere-like islands of its own),
finds the landmarks (or reads the ones the animator placed: empties made by `add_landmark_empties`),
carries the demo head's 52 shapes over (core/shapes) and writes them as shape keys. Keys the head
already has are kept; made keys are listed in the object's `exomni_made_shapes` property, so making
them again replaces them and nothing else. The input file is never written.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core.arkit import ARKIT_52
from ..core.errors import ExOmniError
from ..core.shapes import Mesh, Template, detect, fit_sphere, transfer
from ..core.shapes.check import close_lids, self_check
from ..core.shapes.landmarks import _triangles

MADE_PROPERTY = "exomni_made_shapes"
LANDMARK_PROPERTY = "exomni_landmark"


class MakeShapesError(ExOmniError, ValueError):
    """The shapes cannot be made on this object as asked; the message says what to change."""


@lru_cache(maxsize=1)
def template() -> Template:
    """The procedural demo head as the template (built once per process)."""
    from . import head

    rest, faces, materials, keys = head._build()
    skin_materials = {head.M_SKIN, head.M_LIPS, head.M_LASHES, head.M_MOUTH}
    skin = np.zeros(len(rest), bool)
    for face, material in zip(faces, materials):
        if material in skin_materials:
            skin[list(face)] = True
    eyes = [((s * head.EYE_X, head.EYE_Y, head.EYE_Z), head.EYE_RADIUS) for s in (1.0, -1.0)]
    return Template.from_head(rest, faces, keys, skin, eyes)


def read_mesh(obj) -> Mesh:
    """The object's rest shape (its Basis key when it has keys) as a core Mesh, in local space."""
    me = obj.data
    n = len(me.vertices)
    co = np.empty(n * 3, np.float64)
    keys = me.shape_keys
    (keys.reference_key.data if keys else me.vertices).foreach_get("co", co)
    loops = np.empty(len(me.loops), np.int64)
    me.loops.foreach_get("vertex_index", loops)
    starts = np.empty(len(me.polygons), np.int64)
    me.polygons.foreach_get("loop_start", starts)
    sizes = np.empty(len(me.polygons), np.int64)
    me.polygons.foreach_get("loop_total", sizes)
    return Mesh(co.reshape(-1, 3), loops, starts, sizes)


def _local(obj, world_points):
    inv = np.array(obj.matrix_world.inverted())
    p = np.c_[np.asarray(world_points, float), np.ones(len(world_points))]
    return (p @ inv.T)[:, :3]


def _world_points(obj):
    n = len(obj.data.vertices)
    co = np.empty(n * 3, np.float64)
    obj.data.vertices.foreach_get("co", co)
    m = np.array(obj.matrix_world)
    p = np.c_[co.reshape(-1, 3), np.ones(n)]
    return (p @ m.T)[:, :3]


def find_eyeballs(obj, mesh: Mesh):
    """(eyeballs in the object's local space, mask of the object's own eyeball vertices).

    Eye meshes beside the head (objects named like "eye" near it) win; otherwise two sphere-like
    islands of the head mesh of about the same size."""
    import bpy

    lo, hi = mesh.points.min(0), mesh.points.max(0)
    size = float(np.linalg.norm(hi - lo))
    found = []
    for other in bpy.data.objects:
        if other is obj or other.type != "MESH" or "eye" not in other.name.lower() or not len(other.data.vertices):
            continue
        pts = _local(obj, _world_points(other))
        ball = fit_sphere(pts)
        inside = np.all(ball.centre > lo - 0.05 * size) and np.all(ball.centre < hi + 0.05 * size)
        if inside and ball.radius < 0.2 * size:
            found.append(ball)
            ball.source = other  # the eye object, which gets the gaze shapes
            eye_mesh = read_mesh(other)
            ball.surface = pts[_triangles(eye_mesh)]  # its triangles in the head's space, for the check
    own = np.zeros(len(mesh.points), bool)
    if len(found) == 2:
        return found, own
    comp = mesh.components()
    islands = []
    for c in np.unique(comp):
        ids = np.nonzero(comp == c)[0]
        if len(ids) < 12 or len(ids) > 0.2 * len(mesh.points):
            continue
        ball = fit_sphere(mesh.points[ids])
        err = np.abs(np.linalg.norm(mesh.points[ids] - ball.centre, axis=1) - ball.radius).mean()
        if 0.01 * size < ball.radius < 0.2 * size and err < 0.08 * ball.radius:
            islands.append((err / ball.radius, ball, ids))
    best = None
    for i in range(len(islands)):
        for j in range(i + 1, len(islands)):
            a, b = islands[i][1], islands[j][1]
            ratio = min(a.radius, b.radius) / max(a.radius, b.radius)
            apart = np.linalg.norm(a.centre - b.centre)
            if ratio > 0.8 and apart > 2.0 * max(a.radius, b.radius):
                score = islands[i][0] + islands[j][0] + (1 - ratio)
                if best is None or score < best[0]:
                    best = (score, i, j)
    if best is None:
        raise MakeShapesError(f"No eyeballs found for {obj.name!r}: keep the eye meshes (named with "
                              "'eye') beside the head, or place the eyeL and eyeR landmarks.")
    for k in best[1:]:
        own[islands[k][2]] = True
    return [islands[best[1]][1], islands[best[2]][1]], own


def landmark_overrides(obj) -> dict:
    """Landmarks the animator placed: empties parented to the head with an `exomni_landmark` name."""
    out = {}
    for child in obj.children:
        name = child.get(LANDMARK_PROPERTY)
        if child.type == "EMPTY" and name:
            out[str(name)] = _local(obj, np.array([child.matrix_world.translation]))[0]
    return out


def add_landmark_empties(obj, landmarks) -> list:
    """One empty per landmark, parented to the head, for the animator to check and move."""
    import bpy

    existing = {c.get(LANDMARK_PROPERTY): c for c in obj.children if c.get(LANDMARK_PROPERTY)}
    size = 0.06 * landmarks.eye_distance
    made = []
    m = np.array(obj.matrix_world)
    for name, p in landmarks.points.items():
        empty = existing.get(name)
        if empty is None:
            empty = bpy.data.objects.new(f"{obj.name} {name}", None)
            empty.empty_display_type = "SPHERE"
            empty[LANDMARK_PROPERTY] = name
            (obj.users_collection[0] if obj.users_collection else bpy.context.scene.collection).objects.link(empty)
            empty.parent = obj
        empty.empty_display_size = size
        world = m @ np.r_[p, 1.0]
        empty.matrix_world.translation = tuple(world[:3])
        made.append(empty)
    return made


def find_landmarks(obj):
    mesh = read_mesh(obj)
    eyes, own_eyes = find_eyeballs(obj, mesh)
    skin = ~own_eyes
    # landmarks the animator placed win; the rest are found (or estimated) around them
    lm = detect(mesh, skin, eyes, overrides=landmark_overrides(obj))
    return mesh, skin, lm, eyes


def make_shapes(obj, replace: bool = False) -> dict:
    """Make the missing ARKit shape keys on `obj` (a mesh). Returns a summary: made, kept, landmarks
    estimated rather than found, the template-to-head scale."""
    from . import compat

    if obj is None or obj.type != "MESH":
        raise MakeShapesError("Pick a mesh object (the head) to make shapes on.")
    if not compat.is_editable(obj.data):
        raise MakeShapesError(f"{obj.name!r} comes from a linked library: make it local or override it first.")
    mesh, skin, lm, eyes = find_landmarks(obj)
    made = transfer(template(), mesh, skin, lm)
    made.notes += close_lids(mesh, skin, lm, eyes, made)
    if obj.data.shape_keys is None:
        compat.add_shape_key(obj, "Basis")
    blocks = obj.data.shape_keys.key_blocks
    previously = set(json.loads(obj.get(MADE_PROPERTY, "[]")))
    names, kept = [], []
    base = mesh.points
    for i, name in enumerate(ARKIT_52):
        block = blocks.get(name)
        if block is not None and name not in previously and not replace:
            kept.append(name)
            continue
        if block is None:
            block = compat.add_shape_key(obj, name)
        block.data.foreach_set("co", (base + made.deltas[i]).astype(np.float32).ravel())
        block.slider_min, block.slider_max = 0.0, 1.0
        names.append(name)
    obj[MADE_PROPERTY] = json.dumps(sorted(previously | set(names)))
    obj.data.update()
    for ball in eyes:
        eye_obj = getattr(ball, "source", None)
        if eye_obj is not None and compat.is_editable(eye_obj.data):
            side = "Left" if (ball.centre - 0.5 * (eyes[0].centre + eyes[1].centre)) @ lm.rotation[0] > 0 else "Right"
            make_gaze_shapes(eye_obj, obj, ball, lm.rotation, side, replace)
    for other, part in mouth_parts(obj, mesh):
        if compat.is_editable(other.data):
            make_mouth_part_shapes(other, obj, part, lm, mesh.points, made.named(), replace)
    # the self-check, on what the head now has (made and kept keys alike)
    failures, measures = self_check(mesh, skin, lm, eyes, {n: made.deltas[i] if n in names else
                                                          _key_delta(obj, n, base) for i, n in enumerate(ARKIT_52)},
                                    made.labels)
    return {"object": obj.name, "made": names, "kept": kept, "estimated": lm.estimated,
            "scale": round(made.scale, 4), "landmarks": {k: [round(float(x), 5) for x in v] for k, v in lm.points.items()},
            "failing": [{"shape": f.shape, "measured": f.measured, "landmarks": list(f.landmarks), "text": str(f),
                         "kind": f.kind}
                        for f in failures],
            "measures": {k: round(float(v), 5) for k, v in measures.items() if k != "stretch"},
            "notes": made.notes}


def _key_delta(obj, name, base):
    block = obj.data.shape_keys.key_blocks.get(name)
    co = np.empty(len(base) * 3)
    block.data.foreach_get("co", co)
    return co.reshape(-1, 3) - base


def check_words(summary) -> list:
    """The self-check's findings as lines for the animator: one per failing shape."""
    return [f["text"] for f in summary.get("failing", [])]


GAZE_DEGREES = {"Up": 25.0, "Down": 25.0, "In": 30.0, "Out": 30.0}  # as the demo head turns its eyes


def _turn(axis, degrees):
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], float)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def make_gaze_shapes(eye_obj, head_obj, ball, rotation, side, replace=False) -> list:
    """eyeLook{Up,Down,In,Out}{side} on a separate eye mesh: the eyeball turned about its centre."""
    from . import compat

    # eye local -> head local, where the eyeball and the face's frame are known
    to_head = np.array(head_obj.matrix_world.inverted() @ eye_obj.matrix_world)
    pts = read_mesh(eye_obj).points
    in_head = np.c_[pts, np.ones(len(pts))] @ to_head.T
    sign = 1.0 if side == "Left" else -1.0  # "Out" turns the left eye toward +X (canonical)
    turns = {"Up": ((1, 0, 0), -GAZE_DEGREES["Up"]), "Down": ((1, 0, 0), GAZE_DEGREES["Down"]),
             "Out": ((0, 0, 1), sign * GAZE_DEGREES["Out"]), "In": ((0, 0, 1), -sign * GAZE_DEGREES["In"])}
    if eye_obj.data.shape_keys is None:
        compat.add_shape_key(eye_obj, "Basis")
    blocks = eye_obj.data.shape_keys.key_blocks
    previously = set(json.loads(eye_obj.get(MADE_PROPERTY, "[]")))
    made = []
    back = np.linalg.inv(to_head)
    for direction, (axis, degrees) in turns.items():
        name = f"eyeLook{direction}{side}"
        if blocks.get(name) is not None and name not in previously and not replace:
            continue
        turn = rotation.T @ _turn(np.asarray(axis, float), degrees) @ rotation
        moved = (in_head[:, :3] - ball.centre) @ turn.T + ball.centre
        local = (np.c_[moved, np.ones(len(moved))] @ back.T)[:, :3]
        block = blocks.get(name) or compat.add_shape_key(eye_obj, name)
        block.data.foreach_set("co", local.astype(np.float32).ravel())
        block.slider_min, block.slider_max = 0.0, 1.0
        made.append(name)
    eye_obj[MADE_PROPERTY] = json.dumps(sorted(previously | set(made)))
    eye_obj.data.update()
    return made


MOUTH_PARTS = {"teeth": "teeth", "tooth": "teeth", "tongue": "tongue"}
JAW_SHAPES = ("jawOpen", "jawLeft", "jawRight", "jawForward")


def mouth_parts(head_obj, mesh: Mesh) -> list:
    """(object, "teeth" | "tongue") for the meshes named so whose middle lies inside the head."""
    import bpy

    lo, hi = mesh.points.min(0), mesh.points.max(0)
    out = []
    for other in bpy.data.objects:
        if other is head_obj or other.type != "MESH" or not len(other.data.vertices):
            continue
        part = next((p for word, p in MOUTH_PARTS.items() if word in other.name.lower()), None)
        if part is None:
            continue
        centre = _local(head_obj, _world_points(other)).mean(0)
        if np.all(centre > lo) and np.all(centre < hi):
            out.append((other, part))
    return out


def _jaw_motion(lm, head_points, deltas: dict, name: str):
    """The lower jaw's rigid motion in a made jaw shape, in the head's canonical frame: (rotation,
    pivot, shift). jawOpen turns about a hinge behind and below the eyes, by the angle that moves the
    chin as the made shape moves it; the sideways and forward shapes shift as the chin shifts."""
    chin = lm.canonical(lm.points["chin"])
    i = int(np.argmin(np.linalg.norm(lm.canonical(head_points) - chin, axis=1)))
    move = lm.canonical(deltas[name][i])
    eyes = 0.5 * (lm.canonical(lm.points["eyeL"]) + lm.canonical(lm.points["eyeR"]))
    ied = lm.eye_distance
    if name != "jawOpen":
        return np.eye(3), chin, move
    hinge = eyes + np.array([0.0, 1.3 * ied, -0.6 * ied])  # in front of the ears, about the nose's height
    angle = float(np.linalg.norm(move)) / max(float(np.linalg.norm(chin - hinge)), 1e-9)
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])  # the chin (in front, -Y) goes down and back
    return turn, hinge, np.zeros(3)


def make_mouth_part_shapes(part_obj, head_obj, part: str, lm, head_points, deltas: dict, replace=False) -> list:
    """Jaw shapes for the lower teeth and the tongue (they ride on the jaw), tongueOut for the
    tongue, on a teeth or tongue mesh beside the head. The upper teeth stay with the skull."""
    from . import compat

    to_head = np.array(head_obj.matrix_world.inverted() @ part_obj.matrix_world)
    pts = read_mesh(part_obj).points
    canon = lm.canonical((np.c_[pts, np.ones(len(pts))] @ to_head.T)[:, :3])
    lip_z = 0.5 * (lm.canonical(lm.points["lipUpper"])[2] + lm.canonical(lm.points["lipLower"])[2])
    if part == "tongue":
        riding = np.ones(len(canon), bool)
    else:
        # the lower teeth: the lower of the arches when they are separate islands (closed teeth
        # overlap the lip line), else what lies below the lip line
        comp = read_mesh(part_obj).components()
        ids = np.unique(comp)
        heights = np.array([canon[comp == c, 2].mean() for c in ids])
        if len(ids) >= 2:
            split = 0.5 * (heights.min() + heights.max())
            riding = np.isin(comp, ids[heights < split])
        else:
            riding = canon[:, 2] < lip_z
    shapes = {}
    if riding.any():
        for name in JAW_SHAPES:
            turn, pivot, shift = _jaw_motion(lm, head_points, deltas, name)
            moved = canon.copy()
            moved[riding] = (canon[riding] - pivot) @ turn.T + pivot + shift
            shapes[name] = moved
    if part == "tongue":
        # tongueOut: the tip goes out past the lips, the root stays
        lips_front = min(lm.canonical(lm.points["lipUpper"])[1], lm.canonical(lm.points["lipLower"])[1])
        front, back = canon[:, 1].min(), canon[:, 1].max()
        reach = (front - lips_front) + 0.2 * lm.eye_distance
        along = np.clip((back - canon[:, 1]) / max(back - front, 1e-9), 0.0, 1.0) ** 2
        shapes["tongueOut"] = canon + np.outer(along, [0.0, -reach, -0.1 * reach])
    if not shapes:
        return []
    if part_obj.data.shape_keys is None:
        compat.add_shape_key(part_obj, "Basis")
    blocks = part_obj.data.shape_keys.key_blocks
    previously = set(json.loads(part_obj.get(MADE_PROPERTY, "[]")))
    back_to_part = np.linalg.inv(to_head)
    made = []
    for name, moved in shapes.items():
        if blocks.get(name) is not None and name not in previously and not replace:
            continue
        in_head = moved @ lm.rotation
        local = (np.c_[in_head, np.ones(len(in_head))] @ back_to_part.T)[:, :3]
        block = blocks.get(name) or compat.add_shape_key(part_obj, name)
        block.data.foreach_set("co", local.astype(np.float32).ravel())
        block.slider_min, block.slider_max = 0.0, 1.0
        made.append(name)
    part_obj[MADE_PROPERTY] = json.dumps(sorted(previously | set(made)))
    part_obj.data.update()
    return made


def remove_made_shapes(obj) -> list:
    """Remove the keys this module made (the animator's own keys stay)."""
    names = json.loads(obj.get(MADE_PROPERTY, "[]"))
    keys = obj.data.shape_keys
    removed = []
    for name in names:
        block = keys.key_blocks.get(name) if keys else None
        if block is not None:
            obj.shape_key_remove(block)
            removed.append(name)
    if MADE_PROPERTY in obj:
        del obj[MADE_PROPERTY]
    return removed


# -- the command line (run by `exomni make-shapes` in a child process) ------------------------------

GLTF_SUFFIXES = {".glb", ".gltf", ".vrm"}


def load_input(path: Path):
    import bpy

    suffix = path.suffix.lower()
    if suffix == ".blend":
        bpy.ops.wm.open_mainfile(filepath=str(path))
    elif suffix in GLTF_SUFFIXES:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        try:
            bpy.ops.import_scene.gltf(filepath=str(path))
        except RuntimeError as exc:
            raise MakeShapesError(f"{path.name} could not be imported as glTF: {str(exc).strip()}") from exc
    else:
        raise MakeShapesError(f"{path.name}: give a .blend, .glb, .gltf or .vrm file.")


def choose_object(name):
    import bpy

    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    if name:
        obj = bpy.data.objects.get(name)
        if obj is None or obj.type != "MESH":
            listed = ", ".join(sorted(o.name for o in meshes)[:12])
            raise MakeShapesError(f"No mesh object named {name!r}; the meshes are: {listed}.")
        return obj
    heads = [o for o in meshes if any(w in o.name.lower() for w in ("head", "face"))]
    if len(heads) == 1:
        return heads[0]
    listed = ", ".join(sorted(o.name for o in meshes)[:12])
    raise MakeShapesError(f"Say which mesh is the head with --object NAME; the meshes are: {listed}.")


def main(argv=None) -> int:
    import argparse

    import bpy

    p = argparse.ArgumentParser(prog="python -m exomni_blender.blender.make_shapes")
    p.add_argument("input")
    p.add_argument("--out", required=True)
    p.add_argument("--object")
    p.add_argument("--replace", action="store_true")
    args = p.parse_args(argv)
    src, out = Path(args.input).resolve(), Path(args.out).resolve()
    try:
        if not src.is_file():
            raise MakeShapesError(f"{src} does not exist: give the head's .blend, .glb, .gltf or .vrm file.")
        if out == src:
            raise MakeShapesError("--out is the input file: the input is never changed, give another path.")
        if out.suffix.lower() != ".blend":
            raise MakeShapesError(f"--out {out.name}: the result is a .blend file.")
        load_input(src)
        obj = choose_object(args.object)
        summary = make_shapes(obj, replace=args.replace)
        out.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(out), copy=True)
    except ExOmniError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary["out"] = str(out)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
