"""The Dialogue sub-panel: the script, the cast, Build Dialogue with its progress and Cancel."""

import bpy

from .. import jobs
from ..common import MAIN_PANEL, SidebarPanel, draw_message, job_icon, text_width
from .work import KIND


class EXOMNI_PT_dialogue(SidebarPanel, bpy.types.Panel):
    bl_idname = "EXOMNI_PT_dialogue"
    bl_label = "Dialogue"
    bl_parent_id = MAIN_PANEL
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.exomni_dialogue
        col = layout.column()
        col.row().prop(settings, "source", expand=True)
        if settings.source == "TEXT":
            col.prop(settings, "text", text="")
        else:
            col.prop(settings, "filepath", text="")
        col.prop(settings, "cast")
        col.prop(settings, "languages")
        col.prop(settings, "create_heads")
        row = col.row(align=True)
        row.prop(settings, "gap")
        row.prop(settings, "seed")
        col.label(text=f"From frame {context.scene.frame_current} (the playhead)", icon="TIME")
        job = jobs.latest(KIND)
        if job is not None and not job.finished:
            col.progress(factor=job.progress, type="BAR", text=f"{job.progress:.0%} {job.message}"[:60])
            col.operator("exomni.dialogue_cancel", icon="CANCEL")
            return
        big = col.row()
        big.scale_y = 1.3
        big.operator("exomni.dialogue_build", icon="SPEAKER")
        if job is not None:
            draw_message(col, job.message, job_icon(job), text_width(context))


CLASSES = (EXOMNI_PT_dialogue,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
