"""The backend server: check it and list its engines, start it on this machine, stop it.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import bpy

from ..remote.client import BackendError, Client
from . import jobs
from . import preferences
from .common import ExOmniOperator, UserError, check_online
from .generate import props

KIND = "backend"


def start_backend_check(context, label: str = "Checking the backend") -> "jobs.Job":
    """Ask the backend for its health and engines off the main thread; the panel's list follows."""
    check_online()
    prefs = preferences.get(context)
    url, token = prefs.backend_url, prefs.token

    def work(job):
        with Client(url, token) as client:
            health = client.health()
            job.report(0.5, "Listing engines")
            return {"health": health, "engines": client.engines(), "url": client.base_url}

    return jobs.start(KIND, work, label=label, on_finish=_on_backend_checked)


def _on_backend_checked(job):
    if job.state != jobs.DONE:
        return
    result = job.result
    props.set_engines(result["engines"])
    names = ", ".join(e["name"] + ("" if e.get("available", True) else " (unavailable)") for e in props.engines())
    version = result["health"].get("version") if isinstance(result["health"], dict) else None
    job.message = f"Backend ready at {result['url']}" + (f" (v{version})" if version else "") + f"; engines: {names}"


def _require_idle() -> None:
    if jobs.busy(KIND):
        raise UserError("Already talking to the backend; wait a moment.")


class EXOMNI_OT_refresh_engines(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.refresh_engines"
    bl_label = "Refresh Engines"
    bl_description = "Ask the backend which engines it has and whether it is running"
    kind = KIND

    def run(self, context):
        _require_idle()
        start_backend_check(context)


class EXOMNI_OT_start_backend(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.start_backend"
    bl_label = "Start Backend"
    bl_description = "Run `exomni serve` (the 'Backend command' preference) for the backend URL, on this machine"
    kind = KIND

    def run(self, context):
        from ..remote import launcher
        check_online()
        _require_idle()
        prefs = preferences.get(context)
        url, token = prefs.backend_url, prefs.token
        argv = launcher.serve_argv(prefs.backend_command, url, token, prefs.store)  # fails fast

        def work(job):
            with Client(url, token, connect_timeout=1.0) as client:
                try:
                    health = client.health()
                    job.report(0.5, "A backend already answers at this URL")
                except BackendError as exc:
                    if exc.code != "unreachable":
                        raise
                    job.report(0.1, "Starting the backend...")
                    launcher.start(argv, token=token)
                    health = launcher.wait_until_ready(url, token, should_stop=lambda: job.cancel_requested)
                return {"health": health, "engines": client.engines(), "url": client.base_url}

        jobs.start(KIND, work, label="Starting the backend...", on_finish=_on_backend_checked)
        self.report({"INFO"}, "Starting the backend...")


class EXOMNI_OT_stop_backend(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.stop_backend"
    bl_label = "Stop Backend"
    bl_description = "Stop the backend started from this Blender session"
    kind = KIND

    def run(self, context):
        from ..remote import launcher
        stopped = launcher.stop()
        jobs.record(KIND, "Backend stopped" if stopped else "No backend started from this session is running",
                    jobs.CANCELLED)


CLASSES = (EXOMNI_OT_refresh_engines, EXOMNI_OT_start_backend, EXOMNI_OT_stop_backend)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
