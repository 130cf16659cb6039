"""The Takes sub-panel: the takes made in this scene, what each did, and Key Take From Disk."""

import bpy

from ..common import MAIN_PANEL, SidebarPanel


class EXOMNI_UL_takes(bpy.types.UIList):
    """One row per take made in this scene: name, line, start frame."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=item.name, icon="SPEAKER")
        row.label(text=item.text or "(no text)")
        row.label(text=f"@{item.start_frame}")

    def filter_items(self, context, data, propname):
        # Search the line as well as the name.
        items = getattr(data, propname)
        pattern = self.filter_name.lower()
        flags = [self.bitflag_filter_item if not pattern or pattern in (i.name + " " + i.text).lower() else 0
                 for i in items]
        return flags, []


class EXOMNI_PT_takes(SidebarPanel, bpy.types.Panel):
    bl_idname = "EXOMNI_PT_takes"
    bl_label = "Takes"
    bl_parent_id = MAIN_PANEL

    def draw(self, context):
        layout = self.layout
        settings = context.scene.exomni
        row = layout.row()
        row.template_list("EXOMNI_UL_takes", "", settings, "takes", settings, "takes_index", rows=3)
        side = row.column(align=True)
        side.operator("exomni.jump_to_take", text="", icon="PLAY_REVERSE")
        side.operator("exomni.rekey_take", text="", icon="KEYINGSET")
        side.operator("exomni.remove_take", text="", icon="REMOVE")
        side.operator("exomni.clear_take", text="", icon="TRASH")
        if 0 <= settings.takes_index < len(settings.takes):
            item = settings.takes[settings.takes_index]
            box = layout.box().column(align=True)
            box.label(text=f"{item.frames} frames from frame {item.start_frame} on {item.object_name}")
            if item.keyed:
                icon = "OUTLINER_OB_ARMATURE" if "," in item.keyed else "MESH_DATA"
                box.label(text=f"Keyed: {item.keyed}", icon=icon)
            if item.action_name:
                box.label(text=f"Action: {item.action_name}", icon="ACTION")
            if item.engine:
                box.label(text=f"Engine: {item.engine}" + (f" ({item.mode})" if item.mode else ""))
            if item.strip_name:
                box.label(text=f"Lined up with the sound strip {item.strip_name}", icon="SEQUENCE")
            if item.preset:
                box.label(text=f"Retarget preset: {item.preset}", icon="SHAPEKEY_DATA")
            if item.missing:
                count = item.missing.count(",") + 1
                box.label(text=f"{count} channels found no shape key:", icon="ERROR")
                box.label(text=item.missing[:120] + ("..." if len(item.missing) > 120 else ""))
        layout.operator("exomni.key_take_from_disk", icon="IMPORT")


CLASSES = (EXOMNI_UL_takes, EXOMNI_PT_takes)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
