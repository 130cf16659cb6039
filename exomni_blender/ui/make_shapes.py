"""The Make Shapes step: a head with no ARKit shape keys gets the 52.

Pick the head (the active mesh), Find Landmarks (empties to check and move), Make Shapes, then
preview each shape with its slider. Making runs here on Blender's main thread: it is local numpy
work of a few seconds on a head, with nothing to wait for from the network.
"""

import json

import bpy

from ..blender import make_shapes as shapes
from .common import MAIN_PANEL, ExOmniOperator, SidebarPanel, UserError

CHECK_PROPERTY = "exomni_shapes_check"  # the last self-check's failing shapes, in words (JSON list)


def _head(context):
    obj = context.active_object
    if obj is None or obj.type != "MESH":
        raise UserError("Select the head mesh first (the mesh that should get the 52 ARKit shape keys).")
    return obj


class EXOMNI_OT_shapes_find_landmarks(ExOmniOperator, bpy.types.Operator):
    """Find the face's landmarks on the selected head and show them as empties you can move"""

    bl_idname = "exomni.shapes_find_landmarks"
    bl_label = "Find Landmarks"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        obj = _head(context)
        _, _, landmarks, _ = shapes.find_landmarks(obj)
        shapes.add_landmark_empties(obj, landmarks)
        note = f"; estimated, check them: {', '.join(landmarks.estimated)}" if landmarks.estimated else ""
        self.report({"INFO"}, f"{len(landmarks.points)} landmarks on {obj.name}{note}")


class EXOMNI_OT_shapes_clear_landmarks(ExOmniOperator, bpy.types.Operator):
    """Remove the landmark empties of the selected head (landmarks are found again when making)"""

    bl_idname = "exomni.shapes_clear_landmarks"
    bl_label = "Clear Landmarks"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        obj = _head(context)
        for child in list(obj.children):
            if child.get(shapes.LANDMARK_PROPERTY):
                bpy.data.objects.remove(child)


class EXOMNI_OT_shapes_make(ExOmniOperator, bpy.types.Operator):
    """Make the ARKit shape keys the selected head lacks (its own keys are kept; made ones are remade)"""

    bl_idname = "exomni.shapes_make"
    bl_label = "Make Shapes"
    bl_options = {"REGISTER", "UNDO"}

    replace: bpy.props.BoolProperty(name="Replace Existing", default=False,
                                    description="Also replace ARKit keys the head already had")

    def run(self, context):
        obj = _head(context)
        context.window.cursor_set("WAIT") if context.window else None
        try:
            summary = shapes.make_shapes(obj, replace=self.replace)
        finally:
            context.window.cursor_set("DEFAULT") if context.window else None
        kept = f", kept {len(summary['kept'])} of its own" if summary["kept"] else ""
        failing = shapes.check_words(summary)
        obj[CHECK_PROPERTY] = json.dumps(failing)
        if failing:
            names = sorted({f["shape"] for f in summary["failing"]})
            self.report({"WARNING"}, f"Made {len(summary['made'])} shape keys on {obj.name}{kept}, but "
                        f"{len(names)} fail the check ({', '.join(names)}): " + "; ".join(failing))
        else:
            self.report({"INFO"}, f"Made {len(summary['made'])} shape keys on {obj.name}{kept}; all pass the check")


class EXOMNI_OT_shapes_remove(ExOmniOperator, bpy.types.Operator):
    """Remove the shape keys made here (the head's own keys stay)"""

    bl_idname = "exomni.shapes_remove"
    bl_label = "Remove Made Shapes"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        obj = _head(context)
        removed = shapes.remove_made_shapes(obj)
        if CHECK_PROPERTY in obj:
            del obj[CHECK_PROPERTY]
        self.report({"INFO"}, f"Removed {len(removed)} made shape keys from {obj.name}")


class EXOMNI_PT_make_shapes(SidebarPanel, bpy.types.Panel):
    bl_idname = "EXOMNI_PT_make_shapes"
    bl_label = "Make Shapes"
    bl_parent_id = MAIN_PANEL
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            layout.label(text="Select the head mesh", icon="INFO")
            return
        col = layout.column()
        made = json.loads(obj.get(shapes.MADE_PROPERTY, "[]"))
        marks = sum(1 for c in obj.children if c.get(shapes.LANDMARK_PROPERTY))
        col.label(text=f"{obj.name}: {len(made)} made shape keys", icon="SHAPEKEY_DATA")
        row = col.row(align=True)
        row.operator(EXOMNI_OT_shapes_find_landmarks.bl_idname, icon="EMPTY_AXIS")
        if marks:
            row.operator(EXOMNI_OT_shapes_clear_landmarks.bl_idname, text="", icon="X")
            col.label(text=f"{marks} landmarks placed: moving them is used when making", icon="INFO")
        big = col.row()
        big.scale_y = 1.3
        big.operator(EXOMNI_OT_shapes_make.bl_idname, icon="MOD_SHRINKWRAP")
        if made:
            failing = json.loads(obj.get(CHECK_PROPERTY, "[]"))
            box = col.box()
            if failing:
                box.label(text=f"{len(failing)} check failures: move these landmarks", icon="ERROR")
                for line in failing:
                    shape, _, rest = line.partition(": ")
                    box.label(text=shape, icon="SHAPEKEY_DATA")
                    for part in rest.split("; "):
                        box.label(text=f"   {part}")
            else:
                box.label(text="Check passed: lips part, lids close, no edge overstretched", icon="CHECKMARK")
            col.operator(EXOMNI_OT_shapes_remove.bl_idname, icon="TRASH")
        keys = obj.data.shape_keys
        if keys is not None and len(keys.key_blocks) > 1:
            col.template_list("MESH_UL_shape_keys", "exomni_made", keys, "key_blocks", obj,
                              "active_shape_key_index", rows=4)
            active = obj.active_shape_key
            if active is not None and active is not keys.reference_key:
                col.prop(active, "value", text=active.name, slider=True)


CLASSES = (EXOMNI_OT_shapes_find_landmarks, EXOMNI_OT_shapes_clear_landmarks, EXOMNI_OT_shapes_make,
           EXOMNI_OT_shapes_remove, EXOMNI_PT_make_shapes)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
