"""The retarget preset editor in the sidebar: detect the rig's family, edit the map, preview, save.

The editor holds one preset as rows (one row per target key: its ARKit channel or mix, and a gain);
selecting a row shows the rest (mix weights, offset, clamp, response curve, fallback). Scrubbing the
timeline with Preview on shows the selected take through the edited map on the head's shape keys,
without keying anything. Saved presets go to Blender's user config folder (exomni_presets), never
inside the extension, and replace a built-in preset of the same name.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import os
from pathlib import Path

import bpy
import numpy as np
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from ..blender import compat
from ..core import retarget
from ..core.arkit import ARKIT_52
from .panel import SidebarPanel, _text_width
from .preferences import draw_message

MAIN_PANEL = "EXOMNI_PT_main"
_CHANNEL_ITEMS = [(c, c, f"ARKit channel {c}") for c in ARKIT_52]
_CURVE_ITEMS = [("linear", "Linear", "No shaping"), ("smoothstep", "Smoothstep", "Soft start and end"),
                ("gamma", "Gamma", "x to the power gamma: above 1 keeps small values small")]
_COMBINE_ITEMS = [("sum", "Sum", "Weighted sum of the channels"), ("max", "Max", "Largest weighted channel")]
# Blender keeps only pointers to enum item strings: the list must outlive the callback's return.
_preset_items = []


# -- where the editor acts -------------------------------------------------------------------------

def target_object(context):
    """The head being retargeted: the main panel's head, else the active mesh with shape keys."""
    settings = getattr(context.scene, "exomni", None)
    obj = getattr(settings, "target", None) if settings is not None else None
    return obj if obj is not None else _active_head(context)


def _preset_enum_items(self, context):
    _preset_items[:] = []
    for i, p in enumerate(sorted(retarget.load_presets(), key=lambda p: p.name.lower())):
        tag = " (user)" if p.user else ""
        _preset_items.append((p.id, p.name + tag, p.description or p.name, "USER" if p.user else "PRESET", i))
    if not _preset_items:
        _preset_items.append(("", "(no presets)", "No preset files were found", "ERROR", 0))
    return _preset_items


# -- properties ---------------------------------------------------------------------------------

class ExOmniRetargetTerm(bpy.types.PropertyGroup):
    channel: EnumProperty(name="Channel", items=_CHANNEL_ITEMS, description="ARKit channel feeding the key")
    weight: FloatProperty(name="Weight", default=1.0, soft_min=-2.0, soft_max=2.0,
                          description="How much of the channel goes into the mix (negative: subtracts)")


def _on_edit(self, context):
    if getattr(context.scene, "exomni_retarget", None) is not None and context.scene.exomni_retarget.preview:
        apply_preview(context.scene)


class ExOmniRetargetRow(bpy.types.PropertyGroup):
    """One target key of the edited preset."""

    enabled: BoolProperty(name="On", default=True, update=_on_edit, description="Write this key")
    key: StringProperty(name="Key", update=_on_edit, description="The rig's shape key this row writes")
    aliases: StringProperty(name="Aliases", description="Other spellings of the key, comma-separated")
    terms: CollectionProperty(type=ExOmniRetargetTerm)
    gain: FloatProperty(name="Gain", default=1.0, soft_min=0.0, soft_max=2.0, update=_on_edit)
    offset: FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0, update=_on_edit)
    clamp_min: FloatProperty(name="Min", default=0.0, update=_on_edit)
    clamp_max: FloatProperty(name="Max", default=1.0, update=_on_edit)
    curve: EnumProperty(name="Curve", items=_CURVE_ITEMS, default="linear", update=_on_edit)
    gamma: FloatProperty(name="Gamma", default=1.0, min=0.05, soft_max=4.0, update=_on_edit)
    combine: EnumProperty(name="Combine", items=_COMBINE_ITEMS, default="sum", update=_on_edit)
    fallback: BoolProperty(name="Fallback", default=False, update=_on_edit,
                           description="Only used when the channels it mixes land on no other key of this rig")
    status: StringProperty(name="Status", description="Whether the key was found on the head at the last check")

    def source_label(self) -> str:
        if len(self.terms) == 1 and abs(self.terms[0].weight - 1.0) < 1e-6:
            return self.terms[0].channel
        return " + ".join(f"{t.weight:g}*{t.channel}" for t in self.terms) or "(no channel)"


class ExOmniRetargetSettings(bpy.types.PropertyGroup):
    preset: EnumProperty(name="Preset", items=_preset_enum_items, description="A built-in or saved preset")
    name: StringProperty(name="Name", default="My rig", description="Name to save the edited preset under")
    description: StringProperty(name="Description")
    signature: StringProperty(name="Signature", description="Key names that identify the family (comma-separated)")
    rows: CollectionProperty(type=ExOmniRetargetRow)
    rows_index: IntProperty(name="Row", default=0)
    preview: BoolProperty(name="Preview while scrubbing", default=False,
                          update=lambda self, context: _update_preview_handler(),
                          description="Show the take through the edited map when the frame changes (keys nothing)")
    preview_take: StringProperty(name="Take", subtype="DIR_PATH", options=compat.path_options(),
                                 description="Take folder to preview (empty: the take selected in the takes list)")
    preview_start: IntProperty(name="Start", default=1, description="Frame the previewed take starts at")
    report: StringProperty(name="Report", description="The last detection or coverage report")


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


def _preview_source(scene):
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
        from ..core.take import Take, TakeFormatError

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
    take, start = _preview_source(scene)
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


def _update_preview_handler():
    wanted = any(getattr(getattr(s, "exomni_retarget", None), "preview", False) for s in bpy.data.scenes)
    handlers = bpy.app.handlers.frame_change_post
    present = _preview_handler in handlers
    if wanted and not present:
        handlers.append(_preview_handler)
    elif not wanted and present:
        handlers.remove(_preview_handler)


# -- operators ---------------------------------------------------------------------------------------

def _settings(context):
    return context.scene.exomni_retarget


def _store_report(settings, lines) -> None:
    settings.report = "\n".join(lines)


def _user_preset_folder():
    """Blender's user config folder for presets (the core searches it for every Blender version)."""
    path = bpy.utils.user_resource("CONFIG", path=retarget.USER_PRESET_FOLDER, create=True)
    if not path:
        raise _Refused("Blender has no user config folder here: pick a folder to save the preset in.")
    return path


class _Refused(Exception):
    """Why a retarget operator cannot go on, in words for the user."""


class _RetargetOperator:
    """Runs `run(context, settings)`; a refusal or a preset error becomes an error report, not a traceback."""

    def execute(self, context):
        try:
            return self.run(context, _settings(context))
        except (_Refused, retarget.PresetError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}


def _head(context):
    obj = target_object(context)
    if obj is None:
        raise _Refused("Select a mesh with shape keys (or set the head in the main panel)")
    return obj


class EXOMNI_OT_retarget_detect(_RetargetOperator, bpy.types.Operator):
    """Find the rig family that fits the head's shape keys and load its preset into the editor"""

    bl_idname = "exomni.retarget_detect"
    bl_label = "Detect"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context, settings):
        obj = _head(context)
        detection = retarget.detect(obj)
        _store_report(settings, detection.lines())
        if detection.preset is None:
            self.report({"WARNING"}, detection.reason)
            return {"CANCELLED"}
        load_into_editor(settings, detection.preset)
        settings.preset = detection.preset.id
        _mark_rows(settings, obj)
        level = {"WARNING"} if detection.warnings else {"INFO"}
        self.report(level, " ".join(detection.lines()))
        return {"FINISHED"}


class EXOMNI_OT_retarget_load(_RetargetOperator, bpy.types.Operator):
    """Load the chosen preset into the editor"""

    bl_idname = "exomni.retarget_load"
    bl_label = "Load"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context, settings):
        preset = retarget.find_preset(settings.preset)
        load_into_editor(settings, preset)
        obj = target_object(context)
        if obj is not None:
            _store_report(settings, preset.coverage(obj).lines())
            _mark_rows(settings, obj)
        return {"FINISHED"}


class EXOMNI_OT_retarget_from_rig(_RetargetOperator, bpy.types.Operator):
    """Propose a preset from the head's own shape-key names (check it, then save it)"""

    bl_idname = "exomni.retarget_from_rig"
    bl_label = "From This Rig"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context, settings):
        obj = _head(context)
        preset, notes = retarget.propose_preset(obj, name=f"{obj.name} rig")
        load_into_editor(settings, preset)
        coverage = preset.coverage(obj)
        _store_report(settings, notes + coverage.lines())
        _mark_rows(settings, obj)
        self.report({"INFO"}, f"Proposed {len(preset.entries)} keys; {len(coverage.channels_landed)}/52 channels land")
        return {"FINISHED"}


class EXOMNI_OT_retarget_check(_RetargetOperator, bpy.types.Operator):
    """Check the edited map on the head: channels with no key, keys missing on the rig"""

    bl_idname = "exomni.retarget_check"
    bl_label = "Check Coverage"

    def run(self, context, settings):
        obj = _head(context)
        report = preset_from_editor(settings).coverage(obj)
        _store_report(settings, report.lines())
        _mark_rows(settings, obj)
        self.report({"WARNING"} if report.unmapped_channels else {"INFO"}, report.lines()[0])
        return {"FINISHED"}


def _mark_rows(settings, obj) -> None:
    rig = retarget.RigNames(retarget.key_names_of(obj))
    for row in settings.rows:
        found = None
        for candidate in [row.key] + [a.strip() for a in row.aliases.split(",") if a.strip()]:
            found = rig.lookup(candidate)[0]
            if found:
                break
        row.status = "" if found is None else found


class EXOMNI_OT_retarget_row_add(bpy.types.Operator):
    """Add a row (a target key fed by one ARKit channel)"""

    bl_idname = "exomni.retarget_row_add"
    bl_label = "Add Row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = _settings(context)
        row = settings.rows.add()
        row.terms.add()
        settings.rows_index = len(settings.rows) - 1
        return {"FINISHED"}


class EXOMNI_OT_retarget_row_remove(bpy.types.Operator):
    """Remove the selected row"""

    bl_idname = "exomni.retarget_row_remove"
    bl_label = "Remove Row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = _settings(context)
        if 0 <= settings.rows_index < len(settings.rows):
            settings.rows.remove(settings.rows_index)
            settings.rows_index = min(settings.rows_index, len(settings.rows) - 1)
        return {"FINISHED"}


class EXOMNI_OT_retarget_term_add(bpy.types.Operator):
    """Mix another ARKit channel into the selected row's key"""

    bl_idname = "exomni.retarget_term_add"
    bl_label = "Add Channel"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = _settings(context)
        if not 0 <= settings.rows_index < len(settings.rows):
            return {"CANCELLED"}
        settings.rows[settings.rows_index].terms.add()
        return {"FINISHED"}


class EXOMNI_OT_retarget_term_remove(bpy.types.Operator):
    """Remove a channel from the selected row's mix"""

    bl_idname = "exomni.retarget_term_remove"
    bl_label = "Remove Channel"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(default=-1)

    def execute(self, context):
        settings = _settings(context)
        if not 0 <= settings.rows_index < len(settings.rows):
            return {"CANCELLED"}
        terms = settings.rows[settings.rows_index].terms
        if 0 <= self.index < len(terms):
            terms.remove(self.index)
        return {"FINISHED"}


class EXOMNI_OT_retarget_save(_RetargetOperator, bpy.types.Operator):
    """Save the edited map as a user preset in Blender's user config folder (not inside the extension)"""

    bl_idname = "exomni.retarget_save"
    bl_label = "Save as User Preset"

    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"},
                              description="Folder to save in (empty: Blender's user config folder)")

    def run(self, context, settings):
        try:
            preset = preset_from_editor(settings)
            folder = bpy.path.abspath(self.directory) if self.directory else _user_preset_folder()
            path = retarget.save_user_preset(preset, folder)
        except (retarget.PresetError, OSError) as exc:
            raise _Refused(f"Could not save the preset: {exc}") from None
        builtin = {p.id for p in retarget.load_presets(include_user=False)}
        note = " (replaces the built-in preset of that name)" if preset.id in builtin else ""
        self.report({"INFO"}, f"Saved {preset.name} to {path}{note}")
        settings.report = f"Saved to {path}{note}"
        return {"FINISHED"}


class EXOMNI_OT_retarget_apply(_RetargetOperator, bpy.types.Operator):
    """Key the previewed take on the head through the edited map (a new Action; earlier takes stay)"""

    bl_idname = "exomni.retarget_apply"
    bl_label = "Key Take With This Map"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context, settings):
        obj = _head(context)
        take, start = _preview_source(context.scene)
        if take is None:
            raise _Refused("No take to key: select one in the takes list or choose a take folder")
        try:
            from ..blender.keying import key_take
        except ImportError:
            raise _Refused("Keying is not available in this version of the add-on") from None
        try:
            preset = preset_from_editor(settings)
            key_take(obj, take, start_frame=start, preset=preset)
        except ValueError as exc:  # a PresetError is one too
            raise _Refused(str(exc)) from None
        report = preset.coverage(obj)
        _store_report(settings, report.lines())
        self.report({"WARNING"} if report.unmapped_channels else {"INFO"}, " ".join(report.lines()[:2]))
        return {"FINISHED"}


# -- UI ----------------------------------------------------------------------------------------------

class EXOMNI_UL_retarget_rows(bpy.types.UIList):
    """One row per target key: channel (or mix), the rig's key, gain."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        if len(item.terms) == 1:
            row.prop(item.terms[0], "channel", text="")
        else:
            row.label(text=item.source_label())
        obj = target_object(context)
        keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
        if keys is not None:
            row.prop_search(item, "key", keys, "key_blocks", text="",
                            icon="CHECKMARK" if item.status else "BLANK1")
        else:
            row.prop(item, "key", text="")
        row.prop(item, "gain", text="")

    def filter_items(self, context, data, propname):
        items = getattr(data, propname)
        pattern = self.filter_name.lower()
        flags = [self.bitflag_filter_item if not pattern or pattern in (i.key + " " + i.source_label()).lower() else 0
                 for i in items]
        return flags, []


class EXOMNI_PT_retarget(SidebarPanel, bpy.types.Panel):
    bl_idname = "EXOMNI_PT_retarget"
    bl_label = "Retarget"
    bl_parent_id = MAIN_PANEL
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = _settings(context)
        obj = target_object(context)
        col = layout.column()
        if obj is None:
            col.label(text="No head: select a mesh with shape keys", icon="ERROR")
        else:
            col.label(text=f"Rig: {obj.name}", icon="SHAPEKEY_DATA")
        row = col.row(align=True)
        row.operator("exomni.retarget_detect", icon="VIEWZOOM")
        row.operator("exomni.retarget_from_rig", icon="ADD")
        row = col.row(align=True)
        row.prop(settings, "preset", text="")
        row.operator("exomni.retarget_load", text="", icon="IMPORT")
        broken = []
        retarget.load_presets(errors=broken)  # a user preset that cannot be read is left out of the list: say why
        for message in broken[:3]:
            draw_message(col, f"Skipped a preset: {message}", "ERROR", _text_width(context))
        if settings.report:
            box = col.box()
            for line in settings.report.splitlines()[:8]:
                box.label(text=line)

        col.prop(settings, "name")
        row = col.row()
        row.template_list("EXOMNI_UL_retarget_rows", "", settings, "rows", settings, "rows_index", rows=6)
        side = row.column(align=True)
        side.operator("exomni.retarget_row_add", text="", icon="ADD")
        side.operator("exomni.retarget_row_remove", text="", icon="REMOVE")

        if 0 <= settings.rows_index < len(settings.rows):
            item = settings.rows[settings.rows_index]
            box = col.box()
            box.prop(item, "key")
            box.prop(item, "aliases")
            for i, term in enumerate(item.terms):
                r = box.row(align=True)
                r.prop(term, "channel", text="")
                r.prop(term, "weight", text="")
                op = r.operator("exomni.retarget_term_remove", text="", icon="X")
                op.index = i
            r = box.row(align=True)
            r.operator("exomni.retarget_term_add", icon="ADD")
            r.prop(item, "combine", text="")
            r = box.row(align=True)
            r.prop(item, "gain")
            r.prop(item, "offset")
            r = box.row(align=True)
            r.prop(item, "clamp_min")
            r.prop(item, "clamp_max")
            r = box.row(align=True)
            r.prop(item, "curve", text="")
            if item.curve == "gamma":
                r.prop(item, "gamma")
            box.prop(item, "fallback")

        box = col.box()
        box.prop(settings, "preview")
        if settings.preview:
            box.prop(settings, "preview_take")
            if settings.preview_take:
                box.prop(settings, "preview_start")
        row = col.row(align=True)
        row.operator("exomni.retarget_check", icon="CHECKMARK")
        row.operator("exomni.retarget_save", icon="FILE_TICK")
        col.operator("exomni.retarget_apply", icon="KEYINGSET")


CLASSES = (ExOmniRetargetTerm, ExOmniRetargetRow, ExOmniRetargetSettings,
           EXOMNI_OT_retarget_detect, EXOMNI_OT_retarget_load, EXOMNI_OT_retarget_from_rig, EXOMNI_OT_retarget_check,
           EXOMNI_OT_retarget_row_add, EXOMNI_OT_retarget_row_remove, EXOMNI_OT_retarget_term_add,
           EXOMNI_OT_retarget_term_remove, EXOMNI_OT_retarget_save, EXOMNI_OT_retarget_apply,
           EXOMNI_UL_retarget_rows, EXOMNI_PT_retarget)


def register():
    # Without the main panel (e.g. registered on its own) the editor becomes a top-level panel in the tab.
    EXOMNI_PT_retarget.bl_parent_id = MAIN_PANEL if hasattr(bpy.types, MAIN_PANEL) else ""
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.exomni_retarget = PointerProperty(type=ExOmniRetargetSettings)


def unregister():
    handlers = bpy.app.handlers.frame_change_post
    if _preview_handler in handlers:
        handlers.remove(_preview_handler)
    del bpy.types.Scene.exomni_retarget
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
    _preset_items.clear()
    _take_cache.clear()
