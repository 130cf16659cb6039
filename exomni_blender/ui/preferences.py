"""Add-on preferences: where the backend is, its token, and how to start it from Blender.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

from types import SimpleNamespace

import bpy
from bpy.props import EnumProperty, StringProperty

from ..core import contract as C
from . import ADDON_PACKAGE
from .common import draw_message

DEFAULTS = {"takes_from": "AUTO", "backend_url": C.DEFAULT_URL, "token": "", "backend_command": "exomni",
            "store": ""}
TAKES_FROM = [
    ("AUTO", "Automatic", "Inside Blender when this install carries the embedded engine (the extension zip for "
                          "your platform) and it can make the take; otherwise the backend server"),
    ("EMBEDDED", "Inside Blender", "The embedded phonetic engine, run by Blender's own Python: no server, no "
                                   "network (says lines; lip sync and the exomni engine need the server)"),
    ("SERVER", "Backend server", "The Ex-Omni backend at the URL below: every engine and mode, GPUs, studios"),
]


class ExOmniPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    takes_from: EnumProperty(name="Takes from", items=TAKES_FROM, default=DEFAULTS["takes_from"],
                             description="Where Generate makes takes")
    backend_url: StringProperty(
        name="Backend URL", default=DEFAULTS["backend_url"],
        description="Where the Ex-Omni backend listens (`exomni serve` prints it)")
    token: StringProperty(
        name="Token", default="", subtype="PASSWORD",
        description="The token the backend was started with (`exomni serve --token`); empty when it has none")
    backend_command: StringProperty(
        name="Backend command", default=DEFAULTS["backend_command"],
        description="The backend's `exomni` command: on PATH, its full path, or the virtual environment folder "
                    "that has it (the README's setup makes .venv/bin/exomni)")
    store: StringProperty(
        name="Take store", default="", subtype="DIR_PATH",
        description="Where a backend started from here keeps its takes (empty: the backend's default)")

    def draw(self, context):
        layout = self.layout
        layout.row().prop(self, "takes_from", expand=True)
        from .generate import embedded
        if embedded.shipped():
            layout.label(text="Embedded engine: in this install (says typed lines with the phonetic engine)",
                         icon="CHECKMARK")
        else:
            layout.label(text="Embedded engine: not in this install; the extension zip for your platform has it",
                         icon="INFO")
        col = layout.column()
        col.prop(self, "backend_url")
        col.prop(self, "token")
        col.separator()
        col.prop(self, "backend_command")
        col.prop(self, "store")
        row = layout.row(align=True)
        from ..remote import launcher
        if launcher.running():
            row.operator("exomni.stop_backend", icon="CANCEL")
        else:
            row.operator("exomni.start_backend", icon="PLAY")
        row.operator("exomni.refresh_engines", text="Check Connection", icon="FILE_REFRESH")
        draw_status(layout, context, width=80)


def draw_status(layout, context, width: int = 40) -> None:
    """The backend status line: online access, what the last start or check found."""
    from ..remote import client
    from . import jobs
    if not bpy.app.online_access:
        draw_message(layout, client.online_access_message(), "ERROR", width)
        return
    job = jobs.latest("backend")
    if job is None:
        layout.label(text="Backend: not checked yet", icon="QUESTION")
    elif not job.finished:
        layout.label(text=job.message, icon="SORTTIME")
    elif job.state == jobs.DONE:
        layout.label(text=job.message, icon="CHECKMARK")
    else:
        draw_message(layout, job.message, "ERROR" if job.state == jobs.FAILED else "INFO", width)


def get(context=None):
    """The add-on's preferences, or their defaults when the add-on was registered without Blender's
    add-on system (a script calling register() directly)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    if addon is not None and addon.preferences is not None:
        return addon.preferences
    return SimpleNamespace(**DEFAULTS)


CLASSES = (ExOmniPreferences,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
