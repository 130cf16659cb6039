"""The Dialogue panel's settings (`Scene.exomni_dialogue`): the script, the cast, the gap between lines.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ...blender import compat


class ExOmniDialogueSettings(bpy.types.PropertyGroup):
    source: EnumProperty(name="Script", items=(
        ("TEXT", "Text", "A text datablock in this file (Text Editor)"),
        ("FILE", "File", "A .fountain, .csv or .json file on disk")), default="TEXT")
    text: PointerProperty(name="Text", type=bpy.types.Text, description="The screenplay as a text datablock")
    filepath: StringProperty(name="File", subtype="FILE_PATH", options=compat.path_options(),
                             description="A .fountain, .csv or .json script")
    cast: StringProperty(name="Cast", description='Character to head, e.g. "BRICK=HeadA, STEEL=HeadB" '
                                                  "(characters not listed find their head by name)")
    languages: StringProperty(name="Languages", description='Character to language, e.g. "ROSA=es, HANS=German" '
                                                            "(others speak English; a line's \"(in French)\" wins)")
    create_heads: EnumProperty(name="New Heads", items=(
        ("AUTO", "Auto", "Add procedural heads only when the scene has no head at all"),
        ("YES", "Add", "Add a procedural head for every character without one"),
        ("NO", "Never", "Report characters without a head instead")), default="AUTO")
    gap: FloatProperty(name="Gap", default=0.5, min=0.0, max=10.0, unit="TIME_ABSOLUTE",
                       description="Seconds between lines")
    seed: IntProperty(name="Seed", default=0, min=0, description="Each character's takes vary with it")


CLASSES = (ExOmniDialogueSettings,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.exomni_dialogue = PointerProperty(type=ExOmniDialogueSettings)


def unregister():
    if hasattr(bpy.types.Scene, "exomni_dialogue"):
        del bpy.types.Scene.exomni_dialogue
    for cls in reversed(CLASSES):
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
