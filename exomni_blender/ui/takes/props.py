"""One take made (or imported) in the scene, as the takes list keeps it.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import bpy
from bpy.props import IntProperty, StringProperty

from ...blender import compat


class ExOmniTakeItem(bpy.types.PropertyGroup):
    """A take made (or imported) in this scene; `name` is its label in the list."""

    text: StringProperty(name="Line")
    engine: StringProperty(name="Engine")
    take_id: StringProperty(name="Take id", description="The backend's id of the take (empty for imports)")
    folder: StringProperty(name="Folder", subtype="DIR_PATH", description="The take folder on disk",
                           options=compat.path_options())
    start_frame: IntProperty(name="Start frame")
    frames: IntProperty(name="Frames")
    object_name: StringProperty(name="Head", description="The object the take was keyed on")
    action_name: StringProperty(name="Action")
    mode: StringProperty(name="Mode")
    strip_name: StringProperty(name="Sound strip", description="The sound strip the take was made from (lip sync)")
    preset: StringProperty(name="Preset", description="The retarget preset the take was keyed through")
    missing: StringProperty(name="Not keyed", description="ARKit channels that found no shape key on the head")
    keyed: StringProperty(name="Keyed", description="The meshes and bones of the character the take was keyed on")


CLASSES = (ExOmniTakeItem,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
