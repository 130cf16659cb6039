"""Dialogue's operators: Build Dialogue and its Cancel."""

import bpy

from .. import jobs
from ..common import ExOmniOperator
from .work import KIND, start_dialogue


class EXOMNI_OT_dialogue_build(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.dialogue_build"
    bl_label = "Build Dialogue"
    bl_description = ("Make a take for every line of the script on the backend and key them on the characters' "
                      "heads from the playhead, with their audio and a marker per line")

    kind = KIND

    def run(self, context):
        start_dialogue(context)
        self.report({"INFO"}, "Making the dialogue's takes...")


class EXOMNI_OT_dialogue_cancel(bpy.types.Operator):
    bl_idname = "exomni.dialogue_cancel"
    bl_label = "Cancel Dialogue"
    bl_description = "Stop making the dialogue (takes already made stay cached; nothing is keyed)"

    def execute(self, context):
        if not jobs.cancel(KIND):
            self.report({"INFO"}, "Nothing to cancel")
            return {"CANCELLED"}
        return {"FINISHED"}


CLASSES = (EXOMNI_OT_dialogue_build, EXOMNI_OT_dialogue_cancel)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
