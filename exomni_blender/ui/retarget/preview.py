"""The retarget editor's model and preview: the editor's rows to and from a preset, and the take shown
through the edited map on the head's shape keys while scrubbing (nothing is keyed)."""

import os
from pathlib import Path

import bpy
import numpy as np

from ...core import retarget


def target_object(context):
    """The head being retargeted: the main panel's head, else the active mesh with shape keys."""
    settings = getattr(context.scene, "exomni", None)
    obj = getattr(settings, "target", None) if settings is not None else None
    return obj if obj is not None else _active_head(context)


# -- editor <-> preset ------------------------------------------------------------------------------

def load_into_editor(settings, preset) -> None:
    """Replace the editor's rows with a preset's targets."""
    settings.rows.clear()
    for t in preset.entries:
        row = settings.rows.add()
        row.key = t.key
        row.aliases = ", ".join(t.aliases)
        for channel, weight in t.mix:
            term = row.terms.add()
            term.channel = channel
            term.weight = weight
        row.gain, row.offset = t.gain, t.offset
        row.clamp_min, row.clamp_max = t.clamp
        row.curve, row.gamma, row.combine, row.fallback = t.curve, t.gamma, t.combine, t.fallback
    settings.rows_index = 0
    settings.name = preset.name
    settings.description = preset.description
    settings.signature = ", ".join(preset.signature)


def preset_from_editor(settings, user: bool = True):
    """The edited rows as a Preset (disabled rows and rows without a key or channel left out)."""
    targets = []
    for row in settings.rows:
        if not row.enabled or not row.key.strip() or not len(row.terms):
            continue
        mix = {}
        for term in row.terms:
            mix[term.channel] = mix.get(term.channel, 0.0) + float(term.weight)
        targets.append(retarget.Target(
            key=row.key.strip(), mix=tuple(mix.items()),
            aliases=tuple(a.strip() for a in row.aliases.split(",") if a.strip()),
            gain=float(row.gain), offset=float(row.offset),
            clamp=(min(row.clamp_min, row.clamp_max), max(row.clamp_min, row.clamp_max)),
            curve=row.curve, gamma=float(row.gamma), combine=row.combine, fallback=bool(row.fallback)))
    signature = [s.strip() for s in settings.signature.split(",") if s.strip()]
    return retarget.Preset(settings.name.strip() or "My rig", targets, description=settings.description,
                           signature=signature, user=user)


# -- preview -----------------------------------------------------------------------------------------

_take_cache = {}


def preview_source(scene):
    """(Take resampled to the scene's rate, start frame) for the preview, or (None, 0)."""
    settings = scene.exomni_retarget
    folder, start = settings.preview_take.strip(), settings.preview_start
    if not folder:
        main = getattr(scene, "exomni", None)
        takes = getattr(main, "takes", None)
        if takes is not None and 0 <= main.takes_index < len(takes):
            item = takes[main.takes_index]
            folder, start = item.folder, item.start_frame
    if not folder:
        return None, 0
    folder = bpy.path.abspath(folder)
    stamp_file = Path(folder) / "blendshapes.json"
    try:
        stamp = stamp_file.stat().st_mtime_ns
    except OSError:
        return None, 0
    fps = scene.render.fps / scene.render.fps_base
    key = (os.path.normpath(folder), stamp, round(fps, 6))
    take = _take_cache.get(key)
    if take is None:
        from ...core.take import Take, TakeFormatError

        try:
            take = Take.load(folder).resampled(fps)
        except (TakeFormatError, OSError):
            return None, 0
        _take_cache.clear()
        _take_cache[key] = take
    return take, start


def apply_weights_at(obj, preset, weights: np.ndarray, index: int):
    """Set the head's shape-key values to one frame of ARKit weights through a preset; returns the report."""
    keys = obj.data.shape_keys
    names = retarget.key_names_of(obj)
    row = np.asarray(weights[max(0, min(index, len(weights) - 1))], dtype=np.float32)[None, :]
    curves, report = preset.targets(names, row)
    for name, values in curves.items():
        block = keys.key_blocks.get(name)
        if block is not None:
            block.value = float(values[0])
    return report


def apply_preview(scene) -> bool:
    settings = getattr(scene, "exomni_retarget", None)
    if settings is None or not settings.preview:
        return False
    obj = getattr(getattr(scene, "exomni", None), "target", None) or _active_head(bpy.context)
    if obj is None or obj.type != "MESH" or obj.data.shape_keys is None or not len(settings.rows):
        return False
    take, start = preview_source(scene)
    if take is None or take.frames == 0:
        return False
    try:
        preset = preset_from_editor(settings)
    except retarget.PresetError:
        return False
    apply_weights_at(obj, preset, take.weights, scene.frame_current - start)
    return True


def _active_head(context):
    view_layer = getattr(context, "view_layer", None)
    active = view_layer.objects.active if view_layer is not None else None
    if active is not None and active.type == "MESH" and active.data.shape_keys is not None:
        return active
    return None


@bpy.app.handlers.persistent
def _preview_handler(scene, depsgraph=None):
    apply_preview(scene)


def update_preview_handler():
    wanted = any(getattr(getattr(s, "exomni_retarget", None), "preview", False) for s in bpy.data.scenes)
    handlers = bpy.app.handlers.frame_change_post
    present = _preview_handler in handlers
    if wanted and not present:
        handlers.append(_preview_handler)
    elif not wanted and present:
        handlers.remove(_preview_handler)


def unregister_preview() -> None:
    handlers = bpy.app.handlers.frame_change_post
    if _preview_handler in handlers:
        handlers.remove(_preview_handler)
    _take_cache.clear()
