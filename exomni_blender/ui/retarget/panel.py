"""The Retarget sub-panel: the edited preset's rows, the selected row's details, preview and save."""

import bpy

from ...core import retarget
from ..common import MAIN_PANEL, SidebarPanel, draw_message, text_width
from .preview import target_object


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
        settings = context.scene.exomni_retarget
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
            draw_message(col, f"Skipped a preset: {message}", "ERROR", text_width(context))
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


CLASSES = (EXOMNI_UL_retarget_rows, EXOMNI_PT_retarget)


def register():
    # Without the main panel (e.g. the editor registered on its own) it becomes a top-level panel in the tab.
    EXOMNI_PT_retarget.bl_parent_id = MAIN_PANEL if hasattr(bpy.types, MAIN_PANEL) else ""
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
