"""Keying a take onto a head's shape keys: one new Action per take, written in bulk.

`key_take(obj, take)` is the public entry point (the panel and scripts both call it). Keys are
written with `keyframe_points.add` + `foreach_set` (a 52-channel, 9000-frame take keys in a
fraction of a second; `python -m exomni_blender.benchmark` measures it against per-frame
`keyframe_insert`). Nothing the animator made is lost: an Action already on the shape keys is
pushed down into the NLA before the new take becomes the active Action.
"""

from __future__ import annotations

import re

import bpy
import numpy as np

from . import compat, nla
from .fcurves import sparse_channels, write_fcurves
from ..core.arkit import ARKIT_52
from ..core.errors import ExOmniError

ACTION_PREFIX = "ExOmni: "
TAKE_TRACK = nla.TAKE_TRACK
CHANNEL_GROUP = "ExOmni"
_SEPARATORS = re.compile(r"[\s_.\-:|/]+")


class KeyingError(ExOmniError, ValueError):
    """A take that cannot be keyed onto the given object; the message says what to do."""


# -- mapping ARKit channels onto shape keys --------------------------------------------------

def _normalise(name: str) -> str:
    return _SEPARATORS.sub("", name).lower()


def _identity_targets(key_names, weights):
    """Map ARKit-52 channels onto shape keys of the same name (any case, separators ignored).

    Returns ({shape key name: curve [frames]}, report) where the report lists the ARKit channels
    that found no shape key (`missing`), what each channel drove (`mapped`) and the shape keys
    no channel drove (`unused`). `weights` is [frames, 52] in canonical ARKit order.
    """
    weights = np.asarray(weights, dtype=np.float32)
    by_normal = {}
    for name in key_names:
        by_normal.setdefault(_normalise(name), name)  # the first of two look-alike names wins
    targets, mapped, missing = {}, {}, []
    for index, channel in enumerate(ARKIT_52):
        key_name = by_normal.get(_normalise(channel))
        if key_name is None:
            missing.append(channel)
            continue
        targets[key_name] = weights[:, index]
        mapped[channel] = key_name
    unused = [name for name in key_names if name not in targets]
    return targets, {"missing": missing, "mapped": mapped, "unused": unused}


# -- the public entry point ------------------------------------------------------------------

def key_take(obj, take, start_frame=1, preset=None, tolerance=None) -> bpy.types.Action:
    """Key `take` onto the shape keys of `obj` as a new Action and make it the active one.

    obj          a mesh object with shape keys (`create_head()` makes one with all 52 ARKit keys)
    take         an `exomni_blender.take.Take`; its curves are at `take.fps`
    start_frame  the scene frame of the take's first frame; frame i lands on
                 start_frame + i * scene_fps / take.fps (scene_fps = render.fps / fps_base)
    preset       None to detect the rig family from the shape-key names (`retarget.detect`;
                 matching by ARKit name, case and separators ignored, when no family fits), or a
                 retarget preset: any object with `targets(key_names, weights) -> (dict, report)`
                 returning {shape key name: curve [frames]} and a report with `missing`
    tolerance    None to key every channel on every frame; a number (such as 0.01) to key only what the
                 motion needs to stay within it, linear between keys, and one key on a still channel

    Returns the new Action, named after the take ("ExOmni: <first words of the line>"), with one
    linear F-curve per target shape key (`key_blocks["<name>"].value`). The report is kept on
    the Action: `action["exomni_missing"]` lists ARKit channels that found no shape key.

    An Action already on the shape keys (an earlier take or the animator's own keys) is pushed
    down into an NLA track first, one strip per take, so nothing is overwritten.
    Raises KeyingError with what to do when the object cannot take the animation.
    """
    key = _shape_keys_of(obj)
    _check_editable(obj, key)
    weights = np.asarray(take.weights, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[0] == 0:
        raise KeyingError("the take has no frames to key; generate it again")

    key_names = [kb.name for kb in key.key_blocks if kb != key.reference_key]
    targets, report, preset, detection = resolve_targets(key_names, take, preset)
    targets = _checked_targets(targets, key, weights.shape[0], preset)
    if not targets:
        raise KeyingError(
            f"none of the 52 ARKit channels matches a shape key of '{obj.name}' "
            f"(it has {len(key_names)}: {', '.join(key_names[:4])}{', ...' if len(key_names) > 4 else ''}); "
            "pick a retarget preset for this rig, or key a head made by create_head()")

    scene = _scene_of(obj)
    scene_fps = scene.render.fps / scene.render.fps_base
    step = scene_fps / float(take.fps)
    frames = float(start_frame) + np.arange(weights.shape[0], dtype=np.float64) * step

    ad = key.animation_data
    if ad is not None and ad.use_tweak_mode:
        raise KeyingError(f"the shape keys of '{obj.name}' are in NLA tweak mode; "
                          "leave it (Tab in the NLA editor) and generate again")

    with nla.new_take_action(_action_name(take), obj.name, KeyingError) as action:
        _write_curves(action, key, targets, frames, tolerance)
        nla.activate(key, action)

    _record(action, take, report, start_frame, step, preset)
    if detection is not None:
        action["exomni_detection"] = " ".join(detection.lines())
    return action


def resolve_targets(key_names, take, preset=None) -> tuple:
    """(targets, report, preset, detection): where a take's channels land on shape keys named `key_names`.

    The mapping `key_take` keys through: `preset` when given, else the rig family detected from the
    names (`detection`, None when a preset was given), else ARKit names matched loosely. `targets`
    is {shape key name: curve [frames]}; `preset` is the one used (None: matched by name)."""
    detection = None
    if preset is None:  # find the rig family from its key names; identity when none fits
        from ..core import retarget

        detection = retarget.detect(key_names)
        preset = detection.preset
    if preset is not None:  # visemes come from the take's phonemes where the rig's mouth is visemes
        from ..core.retarget import rig_weights

        targets, report = rig_weights(take, preset, key_names)
    else:
        targets, report = _identity_targets(key_names, np.asarray(take.weights, dtype=np.float32))
    return targets, report, preset, detection


# -- steps -----------------------------------------------------------------------------------

def _shape_keys_of(obj):
    if obj is None:
        raise KeyingError("no object given; select a head with shape keys (or make one with create_head())")
    data = getattr(obj, "data", None)
    key = getattr(data, "shape_keys", None) if data is not None else None
    if key is None or len(key.key_blocks) < 2:
        raise KeyingError(
            f"'{obj.name}' has no shape keys to animate; use a head with ARKit shape keys, "
            "or make one with exomni_blender.blender.head.create_head()")
    return key


def _check_editable(obj, key):
    for block, what in ((obj, "object"), (obj.data, "mesh"), (key, "shape keys")):
        if compat.is_editable(block):
            continue
        if getattr(block, "override_library", None) is not None:
            raise KeyingError(
                f"the {what} of '{obj.name}' is a library override that is not editable yet; make it "
                "editable (Object > Library Override > Make Editable) and generate again")
        where = f" from {block.library.filepath}" if getattr(block, "library", None) else ""
        raise KeyingError(
            f"the {what} of '{obj.name}' is linked{where} and cannot be animated here; make a "
            "library override of it and its mesh data and make that editable (Object > Library "
            "Override > Make > Selected & Content), or key a local head")


def _checked_targets(targets, key, frames, preset):
    names = set(key.key_blocks.keys())
    checked = {}
    for name, curve in targets.items():
        if name not in names:
            raise KeyingError(f"the retarget preset {_preset_name(preset)!r} names shape key '{name}', "
                              f"which '{key.user.name}' does not have; pick the preset made for this rig")
        curve = np.asarray(curve, dtype=np.float32).reshape(-1)
        if curve.shape[0] != frames:
            raise KeyingError(f"the curve for '{name}' has {curve.shape[0]} frames, the take {frames}; "
                              "the retarget preset must return one value per frame")
        if not np.all(np.isfinite(curve)):
            raise KeyingError(f"the curve for '{name}' has NaN or infinite values; check the retarget preset")
        checked[name] = curve
    return checked


def _write_curves(action, key, targets, frames, tolerance=None):
    for name, curve in targets.items():
        block = key.key_blocks[name]
        # Shape key values are clamped to the slider range; widen it when a preset goes beyond.
        low, high = float(curve.min()), float(curve.max())
        if low < block.slider_min:
            block.slider_min = max(-10.0, low)
        if high > block.slider_max:
            block.slider_max = min(10.0, high)
    channels = {shape_key_path(name): curve for name, curve in targets.items()}
    if tolerance is not None:
        channels = sparse_channels(channels, frames, float(tolerance), skip_still=False)
    write_fcurves(action, key, channels, frames, group=CHANNEL_GROUP)


def shape_key_path(name: str) -> str:
    return f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'


def _scene_of(obj):
    scene = bpy.context.scene
    users = getattr(obj, "users_scene", ())
    if scene is not None and (not users or scene in users):
        return scene
    return users[0] if users else bpy.data.scenes[0]


def _action_name(take) -> str:
    words = " ".join(str(getattr(take, "text", "") or "").split())
    if not words:
        words = f"{getattr(take, 'engine', '') or 'take'} take"
    if len(words) > 40:
        cut = words[:40].rsplit(" ", 1)[0] or words[:40]
        words = cut.rstrip(",.;:!? ") + "..."
    return ACTION_PREFIX + words


def _preset_name(preset):
    return getattr(preset, "name", None) or type(preset).__name__


def _record(action, take, report, start_frame, step, preset):
    missing = [str(m) for m in (report or {}).get("missing", [])]
    action["exomni_missing"] = missing
    action["exomni_text"] = str(getattr(take, "text", "") or "")
    action["exomni_engine"] = str(getattr(take, "engine", "") or "")
    action["exomni_take_fps"] = float(take.fps)
    action["exomni_frames"] = int(take.weights.shape[0])
    action["exomni_start_frame"] = float(start_frame)
    action["exomni_frame_step"] = float(step)
    action["exomni_preset"] = "" if preset is None else str(_preset_name(preset))
