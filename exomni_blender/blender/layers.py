"""A take as layers an animator can direct: mouth, eyes, expression and head, each its own NLA strip.

`key_layers(obj, take)` lands a take as four Actions in the NLA, in Blender's own terms:
- mouth       (REPLACE) the base: every shape key the speech drives (jaw, lips, tongue, and the
              brows and squints that follow emphasis), the eyes' at rest;
- eyes        (REPLACE) blinks and gaze (the shape keys that eyeBlink*/eyeLook* drive);
- expression  (ADD) the mood: what it adds on top of the neutral face, so muting it leaves the
              neutral performance and its strip's influence scales the mood;
- head        nods, tilts and sway: on the head bone of an armature (COMBINE, so it adds to the
              animator's pose) or on the object's delta rotation, whichever the head has.
Each strip can be muted (its track's checkbox), scaled (`set_influence`) or replaced on its own;
`key_mood` replaces only the expression layer of a take with another mood. Keys are sparse by
default: a channel keeps only the keys its motion needs to stay within `tolerance` (0.01 of a
shape key's range; HEAD_TOLERANCE_DEG for the head). A channel at rest gets no keys in the
expression layer and a single key in the mouth and eyes layers: those REPLACE what lies below, so
they must own every channel they map, or a value from another layer or an earlier mood would stay.
Tracks are shared between takes by the one NLA policy (blender/nla.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import bpy
import numpy as np

from . import compat, nla
from .fcurves import sparse_channels, write_fcurves
from .keying import (KeyingError, _action_name, _check_editable, _checked_targets, _identity_targets,
                     _preset_name, _scene_of, _shape_keys_of, shape_key_path)
from ..core import face
from ..core.arkit import ARKIT_52
from ..core.retarget import name_words

LAYERS = ("mouth", "eyes", "expression", "head")
TRACKS = {layer: f"ExOmni {layer}" for layer in LAYERS}
BLEND = {"mouth": "REPLACE", "eyes": "REPLACE", "expression": "ADD"}
EYE_CHANNELS = np.array([n.startswith(("eyeBlink", "eyeLook")) for n in ARKIT_52])
DEFAULT_TOLERANCE = 0.01
HEAD_TOLERANCE_DEG = 0.05
LAYER_KEY = "exomni_layer"
TAKE_KEY = "exomni_take"  # the mouth Action's name: ties a take's layers together
TRACKS_KEY = "exomni_tracks"  # what the take's layer tracks are named after (key_layers' `tracks`)

HEAD_BONE_NAMES = ("head", "CC_Base_Head", "mixamorig:Head", "Head_M", "Bip01 Head")
_HELPER_PREFIXES = ("mch", "org", "def", "tweak", "vis", "prop")


@dataclass
class LayeredTake:
    """What `key_layers` made: {layer: Action} and {layer: NLA strip}, and the report of unmapped channels."""
    actions: dict = field(default_factory=dict)
    strips: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    keys: int = 0  # keyframes written, all layers


# -- splitting a take ------------------------------------------------------------------------------

def split(take) -> dict:
    """{"neutral": [frames, 52], "expression": [frames, 52]}: the take without its mood, and the mood
    layer (`core.face.mood_curves` for the mood the take records), so neutral + expression = take."""
    weights = np.asarray(take.weights, np.float32)
    mood, intensity = face.mood_of(getattr(take, "meta", {}))
    expression = face.mood_curves(weights.shape[0], float(take.fps), mood, intensity)
    return {"neutral": np.clip(weights - expression, 0.0, 1.0), "expression": expression}


def _shape_key_layers(targets_of, neutral, expression) -> dict:
    """{layer: {shape key: curve}} for mouth, eyes and expression, through a rig's mapping."""
    full = targets_of(neutral)
    no_eyes = neutral.copy()
    no_eyes[:, EYE_CHANNELS] = 0.0
    without = targets_of(no_eyes)
    # A shape key belongs to the eyes when taking the eye channels away changes it. The mouth layer,
    # the base, owns every shape key (the eyes' at rest), so muting the eyes shows open eyes, not
    # whatever value the eyes left behind.
    eyes = {k: c for k, c in full.items() if not np.allclose(c, without.get(k, 0.0), atol=1e-6)}
    mouth = {k: without.get(k, np.zeros_like(c)) for k, c in full.items()}
    moody = targets_of(np.clip(neutral + expression, 0.0, None))  # the mood through the mapping, as a delta
    delta = {k: moody[k] - full.get(k, 0.0) for k in moody}
    delta = {k: c for k, c in delta.items() if np.abs(c).max(initial=0.0) > 1e-6}
    return {"mouth": mouth, "eyes": eyes, "expression": delta}


# -- the public entry points -------------------------------------------------------------------------

def key_layers(obj, take, start_frame=1, preset=None, head=None, sparse: bool = True,
               tolerance: float = DEFAULT_TOLERANCE, tracks: str = "ExOmni") -> LayeredTake:
    """Key `take` on `obj` (a mesh with shape keys) as the four layers; returns a LayeredTake.

    head   the object whose rotation the head layer keys: an armature (its head bone) or any
           object (its delta rotation); None: the mesh's parent armature when it has a head bone,
           else the mesh itself. The head layer is made only when the take records head rotation.
    sparse keep only the keys the motion needs (within `tolerance`) and skip channels at rest;
           False keys every channel on every frame.
    tracks what the layers' NLA tracks are named after: "<tracks> mouth", "<tracks> eyes", ...
           (a dialogue scene keeps its lines apart from the panel's takes this way).
    """
    key = _shape_keys_of(obj)
    _check_editable(obj, key)
    weights = np.asarray(take.weights, np.float32)
    if weights.ndim != 2 or weights.shape[0] == 0:
        raise KeyingError("the take has no frames to key; generate it again")
    key_names = [kb.name for kb in key.key_blocks if kb != key.reference_key]
    if preset is None:
        from ..core import retarget

        preset = retarget.detect(key_names).preset
    mapping = preset.targets if preset is not None else _identity_targets
    report = mapping(key_names, weights)[1]

    def targets_of(w):
        return _checked_targets(mapping(key_names, w)[0], key, w.shape[0], preset)

    parts = split(take)
    layers = _shape_key_layers(targets_of, parts["neutral"], parts["expression"])
    if not layers["mouth"] and not layers["eyes"]:
        raise KeyingError(f"none of the 52 ARKit channels matches a shape key of '{obj.name}'; "
                          "pick a retarget preset for this rig, or key a head made by create_head()")
    scene = _scene_of(obj)
    step = scene.render.fps / scene.render.fps_base / float(take.fps)
    frames = float(start_frame) + np.arange(weights.shape[0], dtype=np.float64) * step

    made = LayeredTake(missing=[str(m) for m in report.get("missing", [])])
    nla.push_down_active(key)  # whatever was active stays, in the NLA
    name = _action_name(take)
    for layer in ("mouth", "eyes", "expression"):
        curves = {shape_key_path(k): c for k, c in layers[layer].items()}
        if not curves:
            continue
        action = _layer_action(f"{name} [{layer}]", layer, take, start_frame, step, preset)
        action[TRACKS_KEY] = tracks
        made.keys += _write(action, key, curves, frames, sparse, tolerance, layer)
        made.actions[layer], made.strips[layer] = action, _place(key, action, frames[0], layer, tracks=tracks)
    tie = made.actions.get("mouth") or next(iter(made.actions.values()))
    for action in made.actions.values():
        action[TAKE_KEY] = tie.name
    tie["exomni_missing"] = made.missing

    rotation = face.head_rotation(getattr(take, "meta", {}), weights.shape[0])
    if rotation is not None:
        target = head if head is not None else (_parent_armature(obj) or obj)
        action = _layer_action(f"{name} [head]", "head", take, start_frame, step, preset)
        action[TAKE_KEY], action[TRACKS_KEY] = tie.name, tracks
        made.keys += key_head(target, rotation, frames, action, sparse)
        made.actions["head"], made.strips["head"] = action, _place(target, action, frames[0], "head",
                                                                   blend=_head_blend(target), tracks=tracks)
    return made


def key_mood(obj, mood: str, intensity: float = 1.0, take_action=None, tolerance: float = DEFAULT_TOLERANCE):
    """Replace the expression layer of a take on `obj` with `mood` at `intensity`; the other layers stay.

    take_action  any layer Action of the take (default: the last take keyed with key_layers on obj).
    Returns the new expression Action (None for the neutral mood: the layer is only removed)."""
    face.check_mood(mood)
    key = _shape_keys_of(obj)
    tie = _take_of(key, take_action)
    actions = [a for a in bpy.data.actions if a.get(TAKE_KEY) == tie]
    base = next((a for a in actions if a.get(LAYER_KEY) == "mouth"), None) or actions[0]
    frames_n, fps = int(base["exomni_frames"]), float(base["exomni_take_fps"])
    start, step = float(base["exomni_start_frame"]), float(base["exomni_frame_step"])
    for old in [a for a in actions if a.get(LAYER_KEY) == "expression"]:
        nla.remove_strips(key, old)
        if old.users == 0:
            bpy.data.actions.remove(old)
    expression = face.mood_curves(frames_n, fps, mood, intensity)
    if not expression.any():
        return None
    key_names = [kb.name for kb in key.key_blocks if kb != key.reference_key]
    preset = _preset_named(base.get("exomni_preset", ""), key_names)
    mapping = preset.targets if preset is not None else _identity_targets
    rest = np.zeros_like(expression)
    moody, plain = mapping(key_names, expression)[0], mapping(key_names, rest)[0]
    curves = {shape_key_path(k): np.asarray(c, np.float32) - np.asarray(plain.get(k, 0.0), np.float32)
              for k, c in moody.items()}
    frames = start + np.arange(frames_n, dtype=np.float64) * step
    name = base.name.rsplit(" [", 1)[0]
    action = compat.new_action(f"{name} [expression]")
    for prop in ("exomni_text", "exomni_engine", "exomni_take_fps", "exomni_frames", "exomni_start_frame",
                 "exomni_frame_step", "exomni_preset"):
        if prop in base.keys():
            action[prop] = base[prop]
    action[LAYER_KEY], action[TAKE_KEY] = "expression", tie
    action[face.MOOD], action[face.INTENSITY] = mood, float(intensity)
    action[TRACKS_KEY] = base.get(TRACKS_KEY, "ExOmni")
    _write(action, key, curves, frames, True, tolerance, "expression")
    _place(key, action, frames[0], "expression", tracks=action[TRACKS_KEY])
    return action


def set_influence(strip, influence: float) -> None:
    """Scale a layer: the strip's influence, held over the whole strip (0 = off, 1 = as keyed)."""
    strip.use_animated_influence = True  # Blender adds a key on the influence; hold it at the new value
    strip.influence = float(influence)
    for fcurve in strip.fcurves:
        if fcurve.data_path == "influence":
            for point in fcurve.keyframe_points:
                point.co.y = float(influence)
            fcurve.update()


# -- head -------------------------------------------------------------------------------------------

def find_head_bone(armature_obj) -> str | None:
    """The name of the armature's head control bone, or None."""
    bones = [b.name for b in armature_obj.data.bones]
    loose = {" ".join(name_words(n)): n for n in reversed(bones)}
    for wanted in HEAD_BONE_NAMES:
        hit = loose.get(" ".join(name_words(wanted)))
        if hit is not None:
            return hit
    candidates = [(len(name_words(n)), n) for n in bones
                  if "head" in name_words(n) and name_words(n)[0] not in _HELPER_PREFIXES
                  and not {"top", "end", "nub", "tip"} & set(name_words(n))]
    return min(candidates)[1] if candidates else None


def head_channels(target, rotation_deg: np.ndarray) -> dict:
    """{(data path, index): values} for head rotation [frames, 3] (pitch, yaw, roll; degrees) on
    `target`: the head bone's local rotation for an armature, the delta rotation for another object.

    Characters face -Y: pitch turns about the armature's X (+ nods down), yaw about Z (+ to the
    subject's left), roll about Y (+ tilts to the subject's left)."""
    r = np.radians(np.asarray(rotation_deg, np.float64))
    world = [_axis_matrix(0, r[:, 0]), _axis_matrix(2, r[:, 1]), _axis_matrix(1, r[:, 2])]
    matrices = world[1] @ world[0] @ world[2]  # yaw, then pitch, then roll: [frames, 3, 3]
    if target.type == "ARMATURE" and find_head_bone(target):
        bone_name = find_head_bone(target)
        rest = np.array([list(row) for row in target.data.bones[bone_name].matrix_local], np.float64)[:3, :3]
        local = np.einsum("ij,fjk,kl->fil", rest.T, matrices, rest)  # the same turn in the bone's own axes
        return bone_rotation_curves(target.pose.bones[bone_name], local, "head bone")
    euler = _eulers(matrices, "XYZ")
    return {("delta_rotation_euler", i): euler[:, i] for i in range(3)}


def key_head(target, rotation_deg: np.ndarray, frames: np.ndarray, action, sparse: bool = True) -> int:
    channels = head_channels(target, rotation_deg)
    group = "ExOmni head"
    if sparse:
        radians = math.radians(HEAD_TOLERANCE_DEG)
        kept = sparse_channels(channels, frames, radians, skip_still=False)
        write_fcurves(action, target, kept, frames, group=group)
        return sum(len(v[0]) for v in kept.values())
    write_fcurves(action, target, channels, frames, group=group)
    return len(channels) * len(frames)


# -- steps --------------------------------------------------------------------------------------------

def _layer_action(name, layer, take, start_frame, step, preset):
    action = compat.new_action(name)
    action[LAYER_KEY] = layer
    action[nla.TAKE_MARK] = str(getattr(take, "text", "") or "")
    action["exomni_engine"] = str(getattr(take, "engine", "") or "")
    action["exomni_take_fps"] = float(take.fps)
    action["exomni_frames"] = int(np.asarray(take.weights).shape[0])
    action["exomni_start_frame"] = float(start_frame)
    action["exomni_frame_step"] = float(step)
    action["exomni_preset"] = "" if preset is None else str(_preset_name(preset))
    mood, intensity = face.mood_of(getattr(take, "meta", {}))
    action[face.MOOD], action[face.INTENSITY] = mood, intensity
    return action


def _write(action, owner, curves, frames, sparse, tolerance, layer) -> int:
    if sparse:
        kept = sparse_channels(curves, frames, tolerance, skip_still=BLEND[layer] == "ADD")
        if not kept:  # an all-rest layer still gets one channel, so its strip has a length
            first = next(iter(curves))
            kept = {first: (frames[[0, -1]], np.asarray(curves[first], np.float32)[[0, -1]])}
        write_fcurves(action, owner, kept, frames, group=f"ExOmni {layer}")
        return sum(len(v[0]) for v in kept.values())
    write_fcurves(action, owner, curves, frames, group=f"ExOmni {layer}")
    return len(curves) * len(frames)


def _place(owner, action, start, layer, blend=None, tracks: str = "ExOmni"):
    strip, _ = nla.place(owner, action, float(start), f"{tracks} {layer}", blend_type=blend or BLEND[layer])
    return strip


def _head_blend(target) -> str:
    # On a bone the turn combines with the animator's pose; on an object it is its delta rotation.
    return "COMBINE" if target.type == "ARMATURE" else "REPLACE"


def _parent_armature(obj):
    parent = obj.parent
    while parent is not None:
        if parent.type == "ARMATURE" and find_head_bone(parent):
            return parent
        parent = parent.parent
    return None


def _take_of(key, take_action) -> str:
    if take_action is not None:
        tie = take_action.get(TAKE_KEY)
        if tie is None:
            raise KeyingError(f"the Action '{take_action.name}' is not a layered take; key the take with layers first")
        return tie
    ad = key.animation_data
    strips = [s for t in (ad.nla_tracks if ad else ()) for s in t.strips
              if s.action is not None and s.action.get(TAKE_KEY)]
    if not strips:
        raise KeyingError(f"'{key.user.name}' has no layered take; key one first (key_layers)")
    return max(strips, key=lambda s: s.frame_start).action[TAKE_KEY]


def _preset_named(name, key_names):
    if not name:
        return None
    from ..core import retarget

    detected = retarget.detect(key_names).preset
    return detected if detected is not None and _preset_name(detected) == name else None


def _axis_matrix(axis: int, angles: np.ndarray) -> np.ndarray:
    c, s = np.cos(angles), np.sin(angles)
    m = np.zeros((angles.shape[0], 3, 3))
    a, b = [(1, 2), (2, 0), (0, 1)][axis]
    m[:, axis, axis] = 1.0
    m[:, a, a], m[:, a, b], m[:, b, a], m[:, b, b] = c, -s, s, c
    return m


def bone_rotation_curves(pose_bone, local: np.ndarray, role: str) -> dict:
    """{(data path, index): values} turning `pose_bone` by `local` ([frames, 3, 3] in its rest axes), in
    the bone's own rotation mode; axis-angle bones are refused, saying what to set."""
    path = f'pose.bones["{bpy.utils.escape_identifier(pose_bone.name)}"]'
    if pose_bone.rotation_mode == "QUATERNION":
        q = _quaternions(local)
        return {(f"{path}.rotation_quaternion", i): q[:, i] for i in range(4)}
    if pose_bone.rotation_mode == "AXIS_ANGLE":
        raise KeyingError(f"{role} {pose_bone.name!r} uses axis-angle rotation; set it to quaternion or Euler")
    euler = _eulers(local, pose_bone.rotation_mode)
    return {(f"{path}.rotation_euler", i): euler[:, i] for i in range(3)}


def _quaternions(m: np.ndarray) -> np.ndarray:
    """w, x, y, z per rotation matrix (small rotations: w stays well away from 0)."""
    w = np.sqrt(np.clip(1.0 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2], 1e-12, None)) / 2.0
    x = (m[:, 2, 1] - m[:, 1, 2]) / (4 * w)
    y = (m[:, 0, 2] - m[:, 2, 0]) / (4 * w)
    z = (m[:, 1, 0] - m[:, 0, 1]) / (4 * w)
    return np.stack([w, x, y, z], axis=1)


def _eulers(m: np.ndarray, order: str) -> np.ndarray:
    from mathutils import Matrix

    return np.array([Matrix(row.tolist()).to_euler(order) for row in m], np.float64)
