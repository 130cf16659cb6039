"""Bone-driven faces (no shape keys), such as Rigify face rigs: the take keyed on face bones.

Approach. A face rig without shape keys moves the face with bones, so the ARKit curves become bone
rotations. The part of a talking head that matters most, the jaw, has one bone in every family we know
(Rigify's `jaw_master`, a metarig's `jaw`, Character Creator's `CC_Base_JawRoot`, Daz's `lowerJaw`,
MetaHuman's `FACIAL_C_Jaw`), so:

- jawOpen rotates the jaw bone about its lateral axis (the bone's local axis most aligned with the
  armature's X), up to `max_open_deg`, in the direction that moves the chin down and back;
- jawLeft/jawRight rotate it about its remaining local axis, up to `max_side_deg`, towards the
  character's left (+X in the armature) or right;
- the rotation is written in the pose bone's own rotation mode (quaternion or Euler), keyed in one
  new Action per take with `keyframe_points.add` + `foreach_set` (through the compat module, so
  Blender 4.2 to 5.x); an Action already on the armature is kept in the NLA (blender/nla.py), never lost.

The directions come from the bone's rest matrix, not from assumptions about the rig's roll, so a
jaw that points forward or down opens the right way. Lips, lids and brows on Rigify are many small
tweak bones whose rest poses differ per character; mapping them well needs per-rig calibration, so
they are left to shape keys (or to a later preset kind) rather than guessed.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.arkit import INDEX
from ..core.retarget.names import name_words
from ..core.errors import ExOmniError

# Known jaw control bones, most specific first (compared loosely: case and separators ignored).
JAW_BONE_NAMES = ("jaw_master", "jaw", "CC_Base_JawRoot", "lowerJaw", "FACIAL_C_Jaw", "Jaw_Bone", "Bip01 Jaw")
# Helper bones of generated rigs that are not meant to be animated.
_HELPER_PREFIXES = ("mch", "org", "def", "tweak", "vis", "prop")

DEFAULT_MAX_OPEN_DEG = 22.0
DEFAULT_MAX_SIDE_DEG = 6.0


class BoneFaceError(ExOmniError, ValueError):
    """The armature cannot receive a bone-driven take; the message says what to do."""


def _loose(name: str) -> str:
    return " ".join(name_words(name))


def find_jaw_bone(armature_obj) -> str | None:
    """The name of the armature's jaw control bone, or None."""
    bones = [b.name for b in armature_obj.data.bones]
    loose = {_loose(n): n for n in reversed(bones)}  # first bone wins on equal spelling
    for wanted in JAW_BONE_NAMES:
        hit = loose.get(_loose(wanted))
        if hit is not None:
            return hit
    candidates = []
    for n in bones:
        words = name_words(n)
        if "jaw" not in words or (words and words[0] in _HELPER_PREFIXES):
            continue
        candidates.append((0 if "master" in words else 1, len(words), n))
    return min(candidates)[2] if candidates else None


def jaw_axes(armature_obj, bone_name: str) -> dict:
    """Local rotation axes of the jaw bone: {'open': (axis, sign), 'side': (axis, sign)}.

    axis is 0, 1 or 2 (the bone's local X, Y, Z); sign is +1 or -1. For a small rotation about axis a
    the bone's tail moves along a x (tail - head); the sign makes that motion go down and back for
    opening, and towards the character's left (+X) for jawLeft.
    """
    bone = armature_obj.data.bones[bone_name]
    m = np.array([list(row) for row in bone.matrix_local], dtype=np.float64)[:3, :3]
    p = np.array(bone.tail_local, dtype=np.float64) - np.array(bone.head_local, dtype=np.float64)
    if np.linalg.norm(p) < 1e-9:
        raise BoneFaceError(f"bone {bone_name!r} has no length; cannot tell which way it opens")
    columns = [m[:, k] / (np.linalg.norm(m[:, k]) or 1.0) for k in range(3)]
    # The bone's own axis (Y) never opens a jaw; of X and Z, the one closest to the armature's X is lateral.
    lateral = max((0, 2), key=lambda k: abs(columns[k][0]))
    yaw = 2 if lateral == 0 else 0

    def sign_for(k: int, wanted: np.ndarray) -> int:
        motion = np.cross(columns[k], p)
        return 1 if float(motion @ wanted) >= 0 else -1

    down_and_back = np.array([0.0, 0.5, -1.0])  # characters face -Y in Blender
    return {"open": (lateral, sign_for(lateral, down_and_back)),
            "side": (yaw, sign_for(yaw, np.array([1.0, 0.0, 0.0])))}


def jaw_angles(weights: np.ndarray, max_open_deg: float = DEFAULT_MAX_OPEN_DEG,
               max_side_deg: float = DEFAULT_MAX_SIDE_DEG) -> tuple:
    """(open, side) angles in radians per frame from ARKit weights [frames, 52]; side > 0 is jawLeft."""
    w = np.asarray(weights, dtype=np.float64)
    open_ = w[:, INDEX["jawOpen"]] * math.radians(max_open_deg)
    side = (w[:, INDEX["jawLeft"]] - w[:, INDEX["jawRight"]]) * math.radians(max_side_deg)
    return open_, side


def _axis_quaternions(angles: np.ndarray, axis: int) -> np.ndarray:
    q = np.zeros((angles.shape[0], 4))
    q[:, 0] = np.cos(angles / 2)
    q[:, 1 + axis] = np.sin(angles / 2)
    return q


def _quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a.T
    bw, bx, by, bz = b.T
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=1)


def jaw_channels(armature_obj, bone_name: str, weights: np.ndarray, max_open_deg: float = DEFAULT_MAX_OPEN_DEG,
                 max_side_deg: float = DEFAULT_MAX_SIDE_DEG) -> dict:
    """{(data path, index): values [frames]} for the jaw bone, in its pose bone's rotation mode."""
    pose_bone = armature_obj.pose.bones[bone_name]
    axes = jaw_axes(armature_obj, bone_name)
    open_, side = jaw_angles(weights, max_open_deg, max_side_deg)
    (open_axis, open_sign), (side_axis, side_sign) = axes["open"], axes["side"]
    path = f'pose.bones["{bone_name}"]'
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        q = _quat_multiply(_axis_quaternions(open_sign * open_, open_axis), _axis_quaternions(side_sign * side, side_axis))
        return {(f"{path}.rotation_quaternion", i): q[:, i] for i in range(4)}
    if mode == "AXIS_ANGLE":
        raise BoneFaceError(f"bone {bone_name!r} uses axis-angle rotation; set it to quaternion or Euler")
    rest = list(pose_bone.rotation_euler)
    out = {}
    for axis, values in ((open_axis, open_sign * open_), (side_axis, side_sign * side)):
        out[(f"{path}.rotation_euler", axis)] = values + rest[axis]
    return out


def key_bone_face(armature_obj, take, start_frame: int = 1, jaw_bone: str | None = None,
                  max_open_deg: float = DEFAULT_MAX_OPEN_DEG, max_side_deg: float = DEFAULT_MAX_SIDE_DEG,
                  fps: float | None = None):
    """Key a take's jaw channels on an armature's jaw bone in a new Action; returns the Action.

    `take` is a Take or a [frames, 52] array; frame i lands on start_frame + i. With `fps` (the
    scene's rate) a Take at another rate is resampled first.
    """
    from . import nla
    from .fcurves import write_fcurves

    if armature_obj is None or armature_obj.type != "ARMATURE":
        raise BoneFaceError("select an armature: bone-driven faces are keyed on the rig, not on the mesh")
    bone = jaw_bone or find_jaw_bone(armature_obj)
    if bone is None or bone not in armature_obj.pose.bones:
        raise BoneFaceError(f"{armature_obj.name} has no jaw bone (looked for {', '.join(JAW_BONE_NAMES)}); "
                            "pass jaw_bone= with its name")
    if fps and hasattr(take, "resampled"):
        take = take.resampled(fps)
    weights = np.asarray(getattr(take, "weights", take), dtype=np.float32)
    if weights.ndim != 2 or weights.shape[1] != len(INDEX):
        raise BoneFaceError(f"weights must be [frames, 52], got {weights.shape}")
    channels = jaw_channels(armature_obj, bone, weights, max_open_deg, max_side_deg)
    ad = armature_obj.animation_data
    if ad is not None and ad.use_tweak_mode:
        raise BoneFaceError(f"'{armature_obj.name}' is in NLA tweak mode; leave it (Tab in the NLA editor) and "
                            "key the take again")

    frames = start_frame + np.arange(weights.shape[0], dtype=np.float64)
    with nla.new_take_action(f"ExOmni jaw: {armature_obj.name}", armature_obj.name, BoneFaceError) as action:
        action[nla.TAKE_MARK] = str(getattr(take, "text", "") or "")  # a take: shares the takes' NLA tracks
        write_fcurves(action, armature_obj, channels, frames, group=bone)
        nla.activate(armature_obj, action)
    return action
