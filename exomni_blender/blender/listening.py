"""The listening layer of a dialogue scene: each character looks at whoever speaks and reacts.

`key_listening(scene, plan, heads, presets)` reads where the characters sit (their faces' world
positions and the way they face), what each line's take does (its phrase ends and stresses) and whom
each line addresses, plans the conversation with `core.listening` and keys it per character on its
own NLA track, "ExOmni dialogue listen", above the dialogue's layers:

- on the shape keys (ADD): the look (eyeLook*), reaction blinks and the breath before a line;
- on the head (COMBINE: the head bone of the mesh's armature, else the object's delta rotation, as
  the dialogue's head layer): the head's share of the look, nods, breathing;
- on the armature's eye bones (COMBINE), where the face has no eyeLook shape keys.

The track can be muted, or scaled with its strips' influence (`layers.set_influence`), on its own.
Nothing is keyed on a line's own layers. Seeded by each character's seed: a re-run keys the same.
"""

from __future__ import annotations

import bpy
import numpy as np

from . import compat, nla
from .fcurves import sparse_channels, write_fcurves
from .keying import _identity_targets, shape_key_path
from .layers import _parent_armature, key_head
from ..core import face
from ..core import listening as L
from ..core.arkit import ARKIT_52
from ..core.take import Take

LISTEN_TRACK = "ExOmni dialogue listen"
LISTEN_KEY = "exomni_listen"  # on the layer's Actions: the character
TOLERANCE = 0.005


def face_point(obj) -> np.ndarray:
    """The world point others look at: the middle of the face (the part the shape keys move)."""
    from .dialogue_preview import face_box

    lo, hi = face_box(obj)
    return (np.array(lo, np.float64) + np.array(hi, np.float64)) / 2


def seat_of(obj) -> L.Seat:
    m = np.array(obj.matrix_world, np.float64)
    return L.Seat(head=face_point(obj), rotation=m[:3, :3])


def scene_lines(plan: dict, cast: list) -> list:
    """core.listening Lines of a plan (scene seconds from its first frame), with their speech marks
    read from each line's take and whom each addresses."""
    fps, first = float(plan["fps"]), int(plan["frame_start"])
    rows = plan["lines"]
    whom = L.addressees([r["character"] for r in rows], [r.get("parentheticals") or [] for r in rows], cast)
    out = []
    for row, addressee in zip(rows, whom):
        take = Take.load(row["take"])
        accents, ends = L.marks_of(take.weights, float(take.fps))
        start = (float(row["start_frame"]) - first) / fps
        seconds = np.asarray(take.weights).shape[0] / float(take.fps)
        out.append(L.Line(row["character"], start, start + seconds, addressee, accents, ends,
                          head=face.head_rotation(getattr(take, "meta", {}), np.asarray(take.weights).shape[0]),
                          head_fps=float(take.fps)))
    return out


def key_listening(scene, plan: dict, heads: dict, presets: dict | None = None, characters=None) -> dict:
    """Key the listening layer of every character in `heads` ({character: head object}) that
    `characters` names (None: all; a cast entry with "listen": false is left out). Returns
    {character: {"strips": [...], "looks": n, "nods": [frames], "blinks": [frames]}}."""
    presets = presets or {}
    first_frame, last_frame = int(plan["frame_start"]), int(plan["frame_end"])
    fps = float(plan["fps"])
    off = {r["character"] for r in plan.get("characters", []) if r.get("listen") is False}
    unique = {}
    for who, obj in heads.items():  # one layer per head object
        if obj.name not in {o.name for o in unique.values()}:
            unique[who] = obj
    bpy.context.view_layer.update()
    seats = {who: seat_of(obj) for who, obj in unique.items()}
    lines = [ln for ln in scene_lines(plan, list(heads)) if ln.character in seats]
    seeds = {r["character"]: int(r.get("seed", 0)) for r in plan.get("characters", [])}
    planned = L.plan_listening(lines, seats, (last_frame - first_frame) / fps, fps, seeds)
    frames = first_frame + np.arange(planned[next(iter(planned))].times.size, dtype=np.float64) if planned else None
    made = {}
    for who, obj in unique.items():
        if who in off or (characters is not None and who not in characters):
            continue
        layer = planned[who]
        strips = []
        for mesh in _meshes_of(obj):  # the head and the character's eye meshes, teeth, ...
            strips += _key_shape_keys(mesh, who, layer.weights, frames, presets.get(mesh.name, _DETECT))
        strips += _key_head(obj, who, layer, frames)
        made[who] = {"strips": [s.name for s in strips], "looks": len(layer.looks),
                     "nods": [round(first_frame + t * fps, 2) for t in layer.nods],
                     "blinks": [round(first_frame + t * fps, 2) for t in layer.blinks]}
    return made


def _action(who, part):
    action = compat.new_action(f"ExOmni listen: {who} [{part}]")
    action[LISTEN_KEY] = who
    return action


def _place(owner, action, frames, blend):
    action.use_frame_range = True
    action.frame_start, action.frame_end = float(frames[0]), float(frames[-1])
    strip, _ = nla.place(owner, action, float(frames[0]), LISTEN_TRACK, own_track=True, blend_type=blend,
                         extrapolation="HOLD", name=action.name)
    return strip


_DETECT = object()  # a mesh's retarget preset, detected from its shape keys


def _meshes_of(obj) -> list:
    from .character import CharacterError, find_character

    try:
        found = find_character(obj)
    except CharacterError:
        return [obj]
    names = dict.fromkeys([obj.name, *(p.object_name for p in found.meshes())])
    return [bpy.data.objects[n] for n in names if n in bpy.data.objects]


def _key_shape_keys(obj, who, weights, frames, preset) -> list:
    key = getattr(obj.data, "shape_keys", None)
    if key is None:
        return []
    key_names = [kb.name for kb in key.key_blocks if kb != key.reference_key]
    if preset is _DETECT:
        from ..core import retarget

        preset = retarget.detect(key_names).preset
    targets, _ = (preset.targets if preset is not None else _identity_targets)(key_names, weights)
    rest, _ = (preset.targets if preset is not None else _identity_targets)(key_names, np.zeros_like(weights[:1]))
    # An ADD layer: what the mapping adds over the rest pose, channels that stay at rest left out.
    curves = {shape_key_path(n): np.asarray(c, np.float32) - np.asarray(rest.get(n, 0.0), np.float32).reshape(-1)[:1]
              for n, c in targets.items()}
    channels = sparse_channels(curves, frames, TOLERANCE, skip_still=True)
    if not channels:
        return []
    action = _action(who, obj.name)
    write_fcurves(action, key, channels, frames, group="ExOmni listen")
    return [_place(key, action, frames, "ADD")]


def _has_gaze_keys(obj) -> bool:
    key = getattr(obj.data, "shape_keys", None)
    names = {kb.name.lower() for kb in key.key_blocks} if key is not None else set()
    return any(n.lower() in names for n in ARKIT_52 if n.startswith("eyeLook"))


def _key_head(obj, who, layer, frames) -> list:
    target = _parent_armature(obj) or obj
    action = _action(who, "head")
    key_head(target, layer.head, frames, action)
    if target.type == "ARMATURE" and not _has_gaze_keys(obj):
        _key_eye_bones(target, layer, frames, action)
    return [_place(target, action, frames, "COMBINE")]


def _key_eye_bones(armature, layer, frames, action) -> None:
    from .character import eye_channels, find_eye_bones

    eyes_only = L.eye_weights(layer.eyes[:, 0], layer.eyes[:, 1])
    for side, bone in find_eye_bones(armature).items():
        channels = eye_channels(armature, bone, side, eyes_only)
        kept = sparse_channels(channels, frames, np.radians(0.05), skip_still=False)
        write_fcurves(action, armature, kept, frames, group="ExOmni listen eyes")
