"""What every feature of the UI shares: the one way operators report errors, the sidebar tab, the
head a feature acts on, the scene's frame rate, where take folders go, and wrapped messages.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import tempfile
import textwrap
import traceback
from pathlib import Path

import bpy

from ..core.errors import ExOmniError, UserError  # noqa: F401  (UserError: what operators raise for bad input)
from ..remote.client import online_access_allowed, online_access_message
from . import ADDON_PACKAGE
from . import jobs

TAKES_FOLDER = "ExOmniTakes"


class ExOmniOperator:
    """Mixed into every operator that can fail: `run(context)` does the work.

    An `ExOmniError` is written for the person and is shown as it is; anything else is a bug, shown as
    one with its traceback in the system console. With a job `kind`, the failure is also recorded where
    the panel shows that kind's jobs, so it stays visible after the report fades.
    """

    kind = ""

    def execute(self, context):
        try:
            return self.run(context) or {"FINISHED"}
        except ExOmniError as exc:
            message = str(exc)
        except Exception as exc:  # a bug: say so, keep Blender running, and leave the traceback for a report
            traceback.print_exc()
            message = jobs.error_message(exc)
        if self.kind:
            jobs.fail(self.kind, message)
        self.report({"ERROR"}, message)
        return {"CANCELLED"}


class SidebarPanel:
    """Where the add-on's panels live: their own tab in the 3D viewport's sidebar."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Ex-Omni"


MAIN_PANEL = "EXOMNI_PT_main"


def text_width(context) -> int:
    """About how many characters fit across the region being drawn."""
    region = getattr(context, "region", None)
    return max(24, int((region.width if region else 300) / 7.5))


def draw_message(layout, message: str, icon: str, width: int) -> None:
    """A message wrapped to the panel's width, in a box, its icon on the first line."""
    box = layout.box()
    col = box.column(align=True)
    first = True
    for paragraph in (message or "").splitlines() or [""]:
        for line in textwrap.wrap(paragraph, max(20, width)) or [""]:
            col.label(text=line, icon=icon if first else "BLANK1")
            first = False


def job_icon(job) -> str:
    return {jobs.DONE: "CHECKMARK", jobs.FAILED: "ERROR"}.get(job.state, "INFO")


# -- the head --------------------------------------------------------------------------------------

def is_head(obj) -> bool:
    """An object that can receive a take: a mesh with shape keys, or a bone-driven face rig."""
    if obj is None:
        return False
    if obj.type == "ARMATURE":
        from ..blender.bone_face import find_jaw_bone

        return find_jaw_bone(obj) is not None
    return obj.type == "MESH" and obj.data is not None and obj.data.shape_keys is not None


def target_object(context):
    """The head a take goes on: the panel's choice, else the active object when it can be one."""
    settings = getattr(context.scene, "exomni", None)
    chosen = getattr(settings, "target", None) if settings is not None else None
    if chosen is not None:
        return chosen
    view_layer = getattr(context, "view_layer", None)
    active = view_layer.objects.active if view_layer is not None else None
    return active if is_head(active) else None


def require_head(context, hint: str = " or press Add Demo Head"):
    """The object a take goes on (the panel's head, else the active object), checked before any take is
    made: its character (blender.character) must have something a take moves, or the error says what to do."""
    from ..blender.character import check_character

    head = target_object(context)
    if head is None:
        view_layer = getattr(context, "view_layer", None)
        head = view_layer.objects.active if view_layer is not None else None  # a body, an armature: its character
        if head is None:
            raise UserError(f"Pick a head with shape keys in the panel (or select one){hint}.")
    check_character(head)
    return head


# -- the scene and the file ------------------------------------------------------------------------

def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def takes_root() -> Path:
    """Where take folders go: beside the saved .blend, else the extension's user folder."""
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//")) / TAKES_FOLDER
    if ADDON_PACKAGE.startswith("bl_ext."):
        try:
            return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path="takes", create=True))
        except (ValueError, RuntimeError, OSError):
            pass
    return Path(tempfile.gettempdir()) / "exomni_takes"


def session_ids(*ids) -> tuple:
    """Kept through undo and renames, new for every file opened: tells "the same head" from "a head
    of the same name in another file" (a rig named alike in every shot)."""
    return tuple(getattr(i, "session_uid", None) for i in ids)


def undo_push(message: str) -> None:
    # Results land from a timer, outside any operator: give them their own undo step.
    try:
        bpy.ops.ed.undo_push(message=message)
    except RuntimeError:
        pass


def check_online() -> None:
    if not online_access_allowed():
        raise UserError(online_access_message())
