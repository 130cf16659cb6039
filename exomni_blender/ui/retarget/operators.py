"""The retarget editor's operators: detect the rig's family, load a preset, propose one from the rig,
check coverage, edit rows and channels, save a user preset, key the take through the edited map.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import bpy
from bpy.props import IntProperty, StringProperty

from ...core import retarget
from ..common import ExOmniOperator, UserError
from .preview import load_into_editor, preset_from_editor, preview_source, target_object


# -- operators ---------------------------------------------------------------------------------------

def _settings(context):
    return context.scene.exomni_retarget


def _store_report(settings, lines) -> None:
    settings.report = "\n".join(lines)


def _user_preset_folder():
    """Blender's user config folder for presets (the core searches it for every Blender version)."""
    path = bpy.utils.user_resource("CONFIG", path=retarget.USER_PRESET_FOLDER, create=True)
    if not path:
        raise UserError("Blender has no user config folder here: pick a folder to save the preset in.")
    return path


class _RetargetOperator(ExOmniOperator):
    """Runs `run(context, settings)` on the editor's settings; errors are reported the add-on's one way."""

    def run(self, context):
        return self.run_editor(context, _settings(context))


def _head(context):
    obj = target_object(context)
    if obj is None:
        raise UserError("Select a mesh with shape keys (or set the head in the main panel)")
    return obj


class EXOMNI_OT_retarget_detect(_RetargetOperator, bpy.types.Operator):
    """Find the rig family that fits the head's shape keys and load its preset into the editor"""

    bl_idname = "exomni.retarget_detect"
    bl_label = "Detect"
    bl_options = {"REGISTER", "UNDO"}

    def run_editor(self, context, settings):
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

    def run_editor(self, context, settings):
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

    def run_editor(self, context, settings):
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

    def run_editor(self, context, settings):
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

    def run_editor(self, context, settings):
        try:
            preset = preset_from_editor(settings)
            folder = bpy.path.abspath(self.directory) if self.directory else _user_preset_folder()
            path = retarget.save_user_preset(preset, folder)
        except (retarget.PresetError, OSError) as exc:
            raise UserError(f"Could not save the preset: {exc}") from None
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

    def run_editor(self, context, settings):
        obj = _head(context)
        take, start = preview_source(context.scene)
        if take is None:
            raise UserError("No take to key: select one in the takes list or choose a take folder")
        from ...blender.keying import key_take

        try:
            preset = preset_from_editor(settings)
            key_take(obj, take, start_frame=start, preset=preset)
        except ValueError as exc:  # a PresetError is one too
            raise UserError(str(exc)) from None
        report = preset.coverage(obj)
        _store_report(settings, report.lines())
        self.report({"WARNING"} if report.unmapped_channels else {"INFO"}, " ".join(report.lines()[:2]))
        return {"FINISHED"}


CLASSES = (EXOMNI_OT_retarget_detect, EXOMNI_OT_retarget_load, EXOMNI_OT_retarget_from_rig, EXOMNI_OT_retarget_check,
           EXOMNI_OT_retarget_row_add, EXOMNI_OT_retarget_row_remove, EXOMNI_OT_retarget_term_add,
           EXOMNI_OT_retarget_term_remove, EXOMNI_OT_retarget_save, EXOMNI_OT_retarget_apply)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
