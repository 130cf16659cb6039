"""Keying a take on a head and listing it; the takes list's operators (from disk, re-key, jump, remove).

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import os

import bpy
from bpy.props import BoolProperty, StringProperty

from ...core.take import Take
from ..common import ExOmniOperator, UserError, require_head, scene_fps


def apply_take(scene, head, take: Take, start_frame, folder: str = "", take_id: str = "", strip_name: str = "",
               layered: bool = False):
    """Key `take` on `head` from `start_frame` and list it in the scene's takes.

    Its audio gets a new strip at `start_frame`, unless `strip_name` names the sound strip it was
    made from (lip sync): that strip already plays it there, so it is reused, not duplicated.
    `layered` keys a shape-key head as NLA layers (blender.layers); the item names its mouth layer.
    """
    from ...blender.timeline import add_audio_strip

    take = take.resampled(scene_fps(scene))
    keyed = key_head(head, take, start_frame, layered, take_id=take_id)
    action = keyed.main_action
    if take.has_audio and not strip_name:
        add_audio_strip(scene, take, start_frame)
    settings = scene.exomni
    taken = {t.name for t in settings.takes}
    number = len(settings.takes) + 1
    while f"Take {number}" in taken:
        number += 1
    item = settings.takes.add()
    item.name = f"Take {number}"
    item.text = take.text
    item.engine = take.engine
    item.take_id = keyed.take_id  # the id every Action of this take carries (Clear Take finds them by it)
    item.folder = str(folder)
    item.start_frame = int(round(start_frame))
    item.frames = take.frames
    item.object_name = keyed.main_object
    item.action_name = action.name if action is not None else ""
    item.keyed = keyed.summary()
    item.mode = take.mode
    item.strip_name = strip_name
    item.preset = str(action.get("exomni_preset", "")) if action is not None else ""
    item.missing = ", ".join(keyed.missing)
    settings.takes_index = len(settings.takes) - 1
    return item


def key_head(head, take: Take, start_frame, layered: bool = False, take_id: str = ""):
    """Key a take on the whole character of `head` (its meshes' shape keys, its eye, head and jaw
    bones) in step; returns the CharacterTake (`layered`: its meshes as NLA layers)."""
    from ...blender.character import key_character

    return key_character(head, take, start_frame, layered=layered, take_id=take_id)


def take_from_disk(path: str):
    """(Take, folder) from anything an exchange format reads: a take folder or one of its files, an
    Audio2Face JSON, a Live Link Face CSV, a Rhubarb Lip Sync JSON, a plugin's format; or the WAV that
    goes with one of them (the file of the same name is read)."""
    from ...core.exchange import exchange_file_for, load_any

    source = exchange_file_for(bpy.path.abspath(path) if str(path).strip() else "")
    take = load_any(source)[0]
    return take, source if source.is_dir() else source.parent


def take_file_filter() -> str:
    """The file browser's filter: every file an exchange format reads, and the WAVs that go with them."""
    from ...core.exchange import file_filter

    return file_filter()


def selected_take(context):
    settings = context.scene.exomni
    if not 0 <= settings.takes_index < len(settings.takes):
        raise UserError("Select a take in the list first.")
    return settings.takes[settings.takes_index]


class EXOMNI_OT_key_take_from_disk(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.key_take_from_disk"
    bl_label = "Key Take From Disk"
    bl_description = ("Key a take folder, an Audio2Face or Rhubarb Lip Sync JSON, a Live Link Face CSV or any other "
                      "exchange format (with its WAV) on the head at the start frame and add its audio strip")
    bl_options = {"REGISTER", "UNDO"}
    kind = "generate"

    filepath: StringProperty(name="Take", subtype="FILE_PATH",
                             description="A take folder, its blendshapes.json, an Audio2Face or Rhubarb JSON, "
                                         "a Live Link Face CSV, or a file of another exchange format")
    filter_glob: StringProperty(default="*.json;*.csv;*.wav", options={"HIDDEN"})  # set from the registry

    def invoke(self, context, event):
        self.filter_glob = take_file_filter()  # the formats registered now, plugins included
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def run(self, context):
        head = require_head(context)
        take, folder = take_from_disk(self.filepath)
        scene = context.scene
        start_frame = scene.exomni.resolved_start_frame(scene)
        item = apply_take(scene, head, take, start_frame, folder=str(folder))
        self.report({"INFO"}, f"Keyed '{item.name}' ({take.frames} frames) on {head.name} at frame {start_frame}")


class EXOMNI_OT_rekey_take(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.rekey_take"
    bl_label = "Re-key Take"
    bl_description = "Key the selected take again on the head at its start frame, from its folder"
    bl_options = {"REGISTER", "UNDO"}
    kind = "generate"

    audio: BoolProperty(name="Audio strip", default=False, description="Add its audio strip again too")

    def run(self, context):
        from ...blender.timeline import add_audio_strip

        item = selected_take(context)
        head = require_head(context, hint="")
        if not item.folder or not os.path.isdir(bpy.path.abspath(item.folder)):
            raise UserError(f"The take's folder '{item.folder}' is gone; generate it again or key it from disk.")
        take = take_from_disk(item.folder)[0].resampled(scene_fps(context.scene))
        keyed = key_head(head, take, item.start_frame, take_id=item.take_id)
        if self.audio and take.has_audio:
            add_audio_strip(context.scene, take, item.start_frame)
        action = keyed.main_action
        item.object_name, item.action_name = keyed.main_object, action.name if action is not None else ""
        item.keyed = keyed.summary()
        self.report({"INFO"}, f"Re-keyed '{item.name}' on {item.keyed} at frame {item.start_frame}")


class EXOMNI_OT_jump_to_take(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.jump_to_take"
    bl_label = "Jump to Take"
    bl_description = "Move the playhead to the selected take's first frame"
    kind = "generate"

    def run(self, context):
        context.scene.frame_current = selected_take(context).start_frame


class EXOMNI_OT_remove_take(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.remove_take"
    bl_label = "Remove From List"
    bl_description = "Remove the selected take from this list (its action, audio strip and folder stay)"
    bl_options = {"REGISTER", "UNDO"}
    kind = "generate"

    def run(self, context):
        selected_take(context)
        settings = context.scene.exomni
        settings.takes.remove(settings.takes_index)
        settings.takes_index = min(settings.takes_index, len(settings.takes) - 1)


class EXOMNI_OT_clear_take(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.clear_take"
    bl_label = "Clear Take"
    bl_description = ("Remove the selected take's animation from every mesh and bone of the character it was "
                      "keyed on, and the take from this list (its audio strip and folder stay)")
    bl_options = {"REGISTER", "UNDO"}
    kind = "generate"

    def run(self, context):
        from ...blender.character import clear_take

        item = selected_take(context)
        name = item.name
        cleared = clear_take(item.take_id)
        settings = context.scene.exomni
        settings.takes.remove(settings.takes_index)
        settings.takes_index = min(settings.takes_index, len(settings.takes) - 1)
        context.scene.frame_set(context.scene.frame_current)
        self.report({"INFO"}, f"Cleared '{name}' from {', '.join(cleared)}" if cleared else
                    f"Removed '{name}' from the list; its animation was already gone")


CLASSES = (EXOMNI_OT_key_take_from_disk, EXOMNI_OT_rekey_take, EXOMNI_OT_jump_to_take, EXOMNI_OT_remove_take,
           EXOMNI_OT_clear_take)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
