"""Every Blender version difference the extension meets, from 4.2 LTS to 5.x, in one module.

The rest of the extension calls these functions and never asks which Blender it runs in:
- Actions: up to 4.3 an Action holds its F-curves directly (`action.fcurves`). From 4.4 Actions
  are slotted and layered: F-curves live in a channelbag of a keyframe strip for one slot
  (`action.layers[..].strips[..].channelbag(slot)`), and whoever uses the Action names the slot
  (`animation_data.action_slot`, `NlaStrip.action_slot`). 4.4 and 4.5 keep `action.fcurves` as a
  legacy view of the first slot; 5.0 removed it. The layered path is used wherever it exists, so
  4.4+ and 5.x run the same code.
- Sequencer: `sequence_editor.sequences` became `sequence_editor.strips` (both in 4.4/4.5, only
  `strips` in 5.0); `new_sound` moved with it.
- Materials: 5.0 materials always have a node tree and deprecate `use_nodes`.
- Shape keys: 5.0's `Object.shape_key_add` gives a new key the value 1.0 (earlier: 0.0).
- Path properties: from 4.5 a file or folder property takes a blend-relative "//" path only when
  declared with the `PATH_SUPPORTS_BLEND_RELATIVE` option (else a warning, and the file browser
  offers no relative path); earlier versions have no such option and refuse it.
"""

from __future__ import annotations

import bpy

VERSION = tuple(bpy.app.version)

# Capabilities, probed from the RNA rather than the version number, so a point release that
# backports or drops something is still handled.
HAS_SLOTTED_ACTIONS = hasattr(bpy.types, "ActionSlot") and "slots" in bpy.types.Action.bl_rna.properties
HAS_LAYERED_ACTIONS = (
    HAS_SLOTTED_ACTIONS
    and "layers" in bpy.types.Action.bl_rna.properties
    and hasattr(bpy.types, "ActionKeyframeStrip")
    and "channelbag" in bpy.types.ActionKeyframeStrip.bl_rna.functions
)
HAS_LEGACY_FCURVES = "fcurves" in bpy.types.Action.bl_rna.properties
HAS_SEQUENCER_STRIPS = "strips" in bpy.types.SequenceEditor.bl_rna.properties
HAS_BLEND_RELATIVE_OPTION = "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties

LAYER_NAME = "ExOmni"


# -- Actions -------------------------------------------------------------------------------

def new_action(name: str) -> bpy.types.Action:
    return bpy.data.actions.new(name)


def action_slot(action, owner, create: bool = True):
    """The slot of `action` that animates the ID `owner` (None before 4.4, where there are none).

    Prefers the slot the owner already uses, then one made for an ID of the same type and name,
    and creates one when `create` is true.
    """
    if not HAS_SLOTTED_ACTIONS:
        return None
    ad = owner.animation_data
    if ad is not None and ad.action == action and ad.action_slot is not None:
        return ad.action_slot
    id_type = owner.id_type
    for slot in action.slots:
        if slot.target_id_type == id_type and slot.name_display == owner.name:
            return slot
    for slot in action.slots:
        if slot.target_id_type in (id_type, "UNSPECIFIED"):
            return slot
    if not create:
        return None
    return action.slots.new(id_type=id_type, name=owner.name)


def _layered_fcurves(action, slot):
    layer = action.layers[0] if len(action.layers) else action.layers.new(LAYER_NAME)
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True)


def action_fcurves(action, id_for_slot=None, legacy: bool | None = None):
    """The F-curve collection of `action` for the ID `id_for_slot`; supports `.new`, `.find`, iteration.

    With layered actions this is the channelbag of the slot for that ID (created if needed; without
    an ID, the first slot's, or a new one); before 4.4 it is `action.fcurves`. `legacy` forces a
    path (tests run both in the Blender versions that have both).
    """
    use_legacy = (not HAS_LAYERED_ACTIONS) if legacy is None else legacy
    if use_legacy:
        if not HAS_LEGACY_FCURVES:
            raise RuntimeError(f"Blender {bpy.app.version_string} has no Action.fcurves; use the layered path")
        return action.fcurves
    if not HAS_LAYERED_ACTIONS:
        raise RuntimeError(f"Blender {bpy.app.version_string} has no layered Actions; use the legacy path")
    if id_for_slot is not None:
        slot = action_slot(action, id_for_slot)
    elif len(action.slots):
        slot = action.slots[0]
    else:
        raise ValueError("a layered Action needs the ID it animates to pick its slot")
    return _layered_fcurves(action, slot).fcurves


def _channel_groups(action, id_for_slot, legacy):
    if legacy or not HAS_LAYERED_ACTIONS:
        return action.groups
    return _layered_fcurves(action, action_slot(action, id_for_slot)).groups


def new_fcurve(action, id_for_slot, data_path: str, index: int = 0, group: str | None = None,
               legacy: bool | None = None) -> bpy.types.FCurve:
    """A new F-curve on `action` for the ID `id_for_slot`, optionally in a channel group."""
    use_legacy = (not HAS_LAYERED_ACTIONS) if legacy is None else legacy
    fcurves = action_fcurves(action, id_for_slot, legacy=use_legacy)
    if use_legacy:
        return fcurves.new(data_path, index=index, action_group=group or "")
    fcurve = fcurves.new(data_path, index=index)
    if group:
        groups = _channel_groups(action, id_for_slot, use_legacy)
        fcurve.group = groups.get(group) or groups.new(group)
    return fcurve


def all_fcurves(action) -> list:
    """Every F-curve of `action`, whatever slot or layer holds it (for reading)."""
    if HAS_LAYERED_ACTIONS and len(action.layers):
        curves = []
        for layer in action.layers:
            for strip in layer.strips:
                for bag in getattr(strip, "channelbags", ()):
                    curves.extend(bag.fcurves)
        return curves
    if HAS_LEGACY_FCURVES:
        return list(action.fcurves)
    return []


def assign_action(owner, action) -> bpy.types.AnimData:
    """Make `action` the active Action of `owner` (and, from 4.4, bind it to the owner's slot)."""
    ad = owner.animation_data or owner.animation_data_create()
    if HAS_SLOTTED_ACTIONS:
        slot = action_slot(action, owner)
        ad.action = action
        if ad.action_slot != slot:
            ad.action_slot = slot
    else:
        if "id_root" in action.bl_rna.properties:
            action.id_root = owner.id_type
        ad.action = action
    return ad


def new_nla_strip(track, name: str, start: float, action, owner) -> bpy.types.NlaStrip:
    """An NLA strip playing `action` (for `owner`'s slot) with its first key at frame `start`."""
    strip = track.strips.new(name, int(start // 1), action)
    if HAS_SLOTTED_ACTIONS and hasattr(strip, "action_slot"):
        slot = action_slot(action, owner, create=False)
        if slot is not None and strip.action_slot != slot:
            strip.action_slot = slot
    if abs(strip.frame_start - start) > 1e-6:
        strip.frame_start_ui = start  # moves the strip and keeps its length
    return strip


# -- Sequencer -----------------------------------------------------------------------------

def sequence_editor(scene, create: bool = True):
    se = scene.sequence_editor
    if se is None and create:
        se = scene.sequence_editor_create()
    return se


def sequencer_strips(scene, create: bool = True, legacy: bool | None = None):
    """The scene's top-level sequencer strips (`strips` from 4.4, `sequences` before)."""
    se = sequence_editor(scene, create)
    if se is None:
        return None
    use_legacy = (not HAS_SEQUENCER_STRIPS) if legacy is None else legacy
    return se.sequences if use_legacy else se.strips


def sequencer_all_strips(scene) -> list:
    """Every strip in the scene's sequencer, meta strips' contents included."""
    se = sequence_editor(scene, create=False)
    if se is None:
        return []
    return list(se.strips_all if HAS_SEQUENCER_STRIPS else se.sequences_all)


def new_sound_strip(scene, name: str, filepath: str, channel: int, frame_start: int,
                    legacy: bool | None = None):
    """A sound strip for the audio file at `filepath` on `channel`, starting at `frame_start`."""
    strips = sequencer_strips(scene, create=True, legacy=legacy)
    return strips.new_sound(name, filepath, int(channel), int(frame_start))


# -- Properties ------------------------------------------------------------------------------

def path_options() -> set:
    """`options=` for a StringProperty holding a file or folder that may be relative to the .blend."""
    return {"ANIMATABLE", "PATH_SUPPORTS_BLEND_RELATIVE"} if HAS_BLEND_RELATIVE_OPTION else {"ANIMATABLE"}


# -- IDs, meshes, materials ----------------------------------------------------------------

def is_editable(id_block) -> bool:
    """False for linked data and for system library overrides the user has not made editable."""
    if id_block is None:
        return True
    override = getattr(id_block, "override_library", None)
    if override is not None and getattr(override, "is_system_override", False):
        return False
    if hasattr(id_block, "is_editable"):
        return bool(id_block.is_editable)
    return id_block.library is None or override is not None


def add_shape_key(obj, name: str, value: float = 0.0):
    """A new shape key (not from the mix) at a known value, whatever this Blender's default is."""
    block = obj.shape_key_add(name=name, from_mix=False)
    block.value = value
    return block


def shade_smooth(mesh) -> None:
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    else:
        mesh.polygons.foreach_set("use_smooth", [True] * len(mesh.polygons))


def material_node_tree(material):
    """The material's shader node tree, switching nodes on where that is still a setting (< 5.0)."""
    if material.node_tree is None and hasattr(material, "use_nodes"):
        material.use_nodes = True
    return material.node_tree


# -- Sound strips ----------------------------------------------------------------------------

# Measured with a mixdown in 4.5 and 5.0: a positive `sound_offset` delays the sound. The 4.2-era
# audio code skipped that far into the sound instead, so there it plays the sound earlier.
SOUND_OFFSET_DELAYS = VERSION >= (4, 5)


def sound_start_frame(strip, fps: float) -> float:
    """The scene frame where a sound strip plays its sound's first sample.

    Trimming or splitting a strip moves only its visible ends (`frame_final_start`), not this; the
    content trim (`content_trim_start` from 5.1, `animation_offset_start` before) and the sub-frame
    `sound_offset` do move it. It can lie before the strip's visible start.
    """
    trim = getattr(strip, "content_trim_start", None)
    if trim is None:
        trim = getattr(strip, "animation_offset_start", 0)
    offset = float(getattr(strip, "sound_offset", 0.0) or 0.0) * fps
    return float(strip.frame_start) - float(trim or 0) + (offset if SOUND_OFFSET_DELAYS else -offset)


def use_video_output(image_settings) -> None:
    """Render to FFmpeg video. From 5.0 the video formats sit behind media_type = 'VIDEO'."""
    if hasattr(image_settings, "media_type"):
        image_settings.media_type = "VIDEO"
    image_settings.file_format = "FFMPEG"
