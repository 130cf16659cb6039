"""Generate: the panel's take request, the job that makes the take off the main thread, and keying it
when it lands. Also Cancel and Add Demo Head.

Network work runs in `jobs` on worker threads; Blender data changes only in the jobs' finish
callbacks, which run on the main thread.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

from pathlib import Path

import bpy

from ...core import contract as C
from ...core.errors import ExOmniError
from ...core.request import PANEL_FIELDS, EngineSpec, RequestError, validate
from ...remote.client import ApiError, BackendError, Client, UploadCancelled
from .. import jobs, live
from .. import preferences
from ..common import (ExOmniOperator, UserError, check_online, require_head, scene_fps, session_ids, takes_root,
                      undo_push)
from ..takes.operators import apply_take
from . import embedded, props
from .recording import recording_for, uses_recording

KIND = "generate"


def take_request(context) -> dict:
    """The POST /v1/takes body for the panel's settings, checked by the one request validator."""
    scene = context.scene
    settings = scene.exomni
    engine = settings.engine
    if not engine:
        raise UserError("Pick an engine (press the refresh button to list the backend's engines).")
    info = props.engine_info(engine)
    if info is not None and not info.get("available", True):
        raise UserError(f"Engine '{engine}' is not available: {info.get('reason') or 'see the backend'}.")
    mode = settings.mode
    offered = [m for m in ((info or {}).get("modes") or ["say"]) if m in props.PANEL_MODES]
    if not mode or (info is not None and mode not in offered):
        raise UserError(f"Pick a mode: engine '{engine}' offers {', '.join(offered) or 'none the panel drives'}.")
    # Every panel field of the one declaration, as the panel holds it; the frame rate is the scene's.
    fields = {name: getattr(settings, name) for name in PANEL_FIELDS}
    fields.update(fps=scene_fps(scene), voice=settings.voice.strip() or None)
    engines = {engine: EngineSpec.from_description(info)} if info is not None else None
    try:
        return validate(fields, has_audio=bool(uses_recording(settings)), engines=engines).to_json()
    except RequestError as exc:
        if exc.code == C.E_EMPTY_TEXT:
            raise UserError("Type a prompt, or turn on Spoken prompt and pick its recording." if mode == "chat"
                            else "Type a line for the head to say.") from None
        if "fps" in str(exc):
            raise UserError(f"The scene's frame rate ({fields['fps']:g} fps) cannot be used: {exc}. "
                            "Change it in Output Properties > Format.") from None
        raise UserError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None


def start_generate(context) -> "jobs.Job":
    """Validate the panel's settings and start a Generate job. Raises UserError for bad input.

    The take is made inside Blender by the embedded engine or by the backend server, as the add-on's
    preferences say. In lip sync from a sound strip, the take is keyed where the strip plays the
    recording and the strip is reused; otherwise the take starts at the panel's start frame with a new
    audio strip.
    """
    if jobs.busy(KIND):
        raise UserError("A take is already being generated; wait for it or press Cancel.")
    head = require_head(context)
    request = take_request(context)
    prefs = preferences.get(context)
    inside = use_embedded(prefs, request, uses_recording(context.scene.exomni))
    if not inside:
        check_online()
    recording = recording_for(context)
    try:
        scene = context.scene
        reuse_strip = recording.strip_name if recording is not None and request["mode"] == "lipsync" else ""
        start_frame = recording.sound_start if reuse_strip else scene.exomni.resolved_start_frame(scene)
        preview = None
        if inside:
            # A recording goes to the engine as a path on this disk; a packed one is removed after the take.
            local = {**request, "audio_path": recording.path} if recording is not None else request
            work_args = (local, str(takes_root()), embedded.child_path(embedded.engine_root(),
                                                                       embedded.wheel_site_packages()), recording)
            make = embedded_work
        else:
            preview = live.LivePreview(head.name) if scene.exomni.live else None
            work_args = (prefs.backend_url, prefs.token, request, str(takes_root()), recording, preview)
            make = backend_work
        # Names, not references: the scene or head may be gone (undo, File > Open) when the take lands.
        scene_name, head_name = scene.name, head.name
        layered = bool(scene.exomni.layered)
        identity = session_ids(scene, head)

        def work(job):
            return make(job, *work_args)

        def progressed(job):
            if preview is not None:
                preview.tick()

        def finish(job):
            if preview is not None and job.state != jobs.DONE:
                preview.stop()
            if job.state == jobs.DONE:
                item = land_take(job.result, scene_name, head_name, start_frame, reuse_strip, identity, layered)
                job.message = f"Keyed '{item.name}' on {item.keyed or item.object_name} at frame {start_frame:g}" + (
                    f", lined up with the sound strip '{reuse_strip}'" if reuse_strip else "")

        what = request["text"] or (recording.label if recording is not None else "")
        job = jobs.start(KIND, work, label=f"Generating: {what[:40]}", on_finish=finish, on_progress=progressed)
        if preview is not None:
            preview.start()
        return job
    except BaseException:
        if recording is not None:
            recording.discard()
        raise


def takes_inside(prefs, settings) -> bool:
    """Whether Generate would use the embedded engine for the panel's settings (for the panel; never raises)."""
    choice = getattr(prefs, "takes_from", "AUTO")
    if choice != "AUTO":
        return choice == "EMBEDDED"
    return (settings.engine == C.DEFAULT_ENGINE and settings.mode in embedded.MODES
            and (settings.mode == "lipsync") == bool(uses_recording(settings)) and embedded.shipped())


def use_embedded(prefs, request: dict, with_recording: bool) -> bool:
    """Whether the embedded engine makes this take (see the 'Takes from' preference)."""
    choice = getattr(prefs, "takes_from", "AUTO")
    if choice == "SERVER":
        return False
    fits = (request["engine"] == C.DEFAULT_ENGINE and request["mode"] in embedded.MODES
            and (request["mode"] == "lipsync") == bool(with_recording))
    if choice == "AUTO":
        return fits and embedded.shipped()
    if not fits:
        raise UserError(f"The embedded engine says typed lines and lip-syncs recordings with the {C.DEFAULT_ENGINE} "
                        f"engine; for "
                        f"{request['mode']} with {request['engine']}, set 'Takes from' to Backend server in the "
                        "add-on's preferences.")
    if embedded.engine_root() is None:
        raise UserError("This install has no embedded engine: install the extension zip made for your platform, "
                        "or set 'Takes from' to Backend server in the add-on's preferences.")
    return True


def embedded_work(job, request, root, path, recording=None) -> dict:
    """Worker thread: the take made by the embedded engine (a child process of Blender's Python)."""
    try:
        return embedded.make_take(job, request, root, path)
    finally:
        if recording is not None:
            recording.discard()


def backend_work(job, url, token, request, root, recording=None, preview=None) -> dict:
    """Worker thread: the take made by the backend server, downloaded into `root` (and previewed live
    while it is made when `preview` is given)."""
    try:
        with Client(url, token) as client:
            started = _submit(job, client, request, recording)
            job.remote_id = started["job_id"]

            lost = []  # why the live stream stopped, kept in every later message so the panel keeps saying it

            def on_update(status):
                fraction = float(status.get("progress") or 0.0)
                message = status.get("message") or status.get("state") or ""
                job.report(0.1 + 0.8 * fraction, f"{lost[0]}; {message}" if lost else message)

            final = live_stream(job, client, preview, lost) if preview is not None else None
            if final is None:  # no preview, or its stream was lost: the job is followed as always
                final = client.wait(job.remote_id, on_update, should_cancel=lambda: job.cancel_requested)
            if final["state"] == C.CANCELLED:
                raise jobs.Cancelled()
            if final["state"] == C.FAILED:
                raise BackendError(job_error(final))
            take_id = str(final.get("take_id") or "")
            if not C.is_take_id(take_id):  # it names a folder on this disk
                raise BackendError(f"The backend finished the job with an unusable take id {take_id!r}; "
                                   "update the add-on and the backend to the same version.")
            job.check()
            job.report(0.92, "Downloading the take")
            folder = Path(root) / take_id
            take = client.fetch_take(take_id, folder)
            return {"take": take, "folder": str(folder), "take_id": take_id}
    finally:
        if recording is not None:
            recording.discard()


def live_stream(job, client, preview, lost: list):
    """Worker thread: the job's take stream fed to the live preview; the job's final status, or None
    when the stream was lost (the preview stops, the reason goes into `lost`, and the job is polled
    instead)."""
    from ...remote.stream import StreamLost, stream_job

    progress, message = 0.0, "Live preview"
    try:
        for event in stream_job(client, job.remote_id):
            if job.cancel_requested:
                try:
                    client.cancel(job.remote_id)
                except BackendError:
                    pass  # the job may have ended meanwhile; nothing is keyed either way
                raise jobs.Cancelled()
            preview.feed(event)
            if event.kind == C.STREAM_END:
                return event.status
            if event.kind == C.STREAM_PROGRESS:
                progress = float(event.status.get("progress") or progress)
                message = str(event.status.get("message") or message)
            job.report(0.1 + 0.8 * progress, message)  # each report makes the pump tick the preview
    except StreamLost as exc:
        preview.drop()
        lost.append(f"Live preview stopped ({exc})")
        job.report(0.1 + 0.8 * progress, f"{lost[0]}; waiting for the take as usual")
    return None


def _submit(job, client, request, recording) -> dict:
    if recording is None:
        job.report(0.02, "Sending the line to the backend")
        return client.submit_take(**request)
    job.report(0.01, f"Uploading {recording.label}")
    shown = [0]

    def uploaded(sent, total):
        percent = int(100 * sent / max(total, 1))
        if percent >= shown[0] + 5 or sent == total:  # a message per 5%, not per chunk
            shown[0] = percent
            job.report(0.01 + 0.07 * sent / max(total, 1),
                       f"Uploading {recording.name} ({sent / 2**20:.1f} of {total / 2**20:.1f} MB)")

    try:
        return client.submit_take(audio=recording.path, audio_filename=recording.name, on_upload=uploaded,
                                  should_cancel=lambda: job.cancel_requested, **request)
    except UploadCancelled:
        raise jobs.Cancelled() from None
    except ApiError as exc:
        if exc.code in (C.E_BAD_AUDIO, C.E_TOO_LARGE):
            raise ApiError(f"The backend could not use {recording.label}: {exc}", exc.code, exc.status) from None
        raise


def job_error(status: dict) -> str:
    """The message of a job the backend failed."""
    error = status.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "the backend failed the take")
    return str(error or status.get("message") or "The backend failed the take; check its console.")


def land_take(result: dict, scene_name: str, object_name: str, start_frame: float, strip_name: str = "",
              identity=None, layered: bool = False):
    """Main thread: key a finished take on the head it was made for, if that head is still the one
    (`layered`: as NLA layers, blender.layers)."""
    scene = bpy.data.scenes.get(scene_name)
    head = bpy.data.objects.get(object_name)
    if scene is None or head is None:
        missing = f"scene '{scene_name}'" if scene is None else f"object '{object_name}'"
        raise UserError(f"The {missing} is gone (was another file opened?). The take is saved in "
                        f"{result['folder']}: key it with 'Key Take From Disk'.")
    if identity is not None and session_ids(scene, head) != tuple(identity):
        raise UserError(f"Another file was opened while the take was made, so '{object_name}' there was left "
                        f"alone. The take is saved in {result['folder']}: key it with 'Key Take From Disk'.")
    try:
        item = apply_take(scene, head, result["take"], start_frame, folder=result["folder"],
                          take_id=result["take_id"], strip_name=strip_name, layered=layered)
    except ExOmniError as exc:  # the take is made and downloaded: say where, so it is not lost
        raise UserError(f"{str(exc).rstrip('.')}. The take itself is saved in {result['folder']}; "
                        "key it from there with 'Key Take From Disk'.") from None
    undo_push("Ex-Omni take")
    return item


class EXOMNI_OT_generate(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.generate"
    bl_label = "Generate"
    bl_description = "Make a take of the line, then key it on the head with its audio strip"
    kind = KIND

    def run(self, context):
        start_generate(context)
        self.report({"INFO"}, "Generating the take...")


class EXOMNI_OT_cancel(bpy.types.Operator):
    bl_idname = "exomni.cancel"
    bl_label = "Cancel"
    bl_description = "Stop the take being generated (nothing is keyed)"

    def execute(self, context):
        live.stop_all()  # sound and motion stop now; the job stops as soon as its worker notices
        if not jobs.cancel(KIND):
            self.report({"INFO"}, "Nothing to cancel")
            return {"CANCELLED"}
        job = jobs.latest(KIND)
        if job is not None:
            job.message = "Cancelling..."
        return {"FINISHED"}


class EXOMNI_OT_change_mood(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.change_mood"
    bl_label = "Change Mood"
    bl_description = ("Key the selected take's expression layer again with the panel's mood and intensity; "
                      "its mouth, eyes and head layers stay as they are")
    bl_options = {"REGISTER", "UNDO"}
    kind = KIND

    def run(self, context):
        from ...blender import layers
        from ...blender.character import change_mood
        from ..takes.operators import selected_take

        settings = context.scene.exomni
        item = selected_take(context)
        head = bpy.data.objects.get(item.object_name)
        action = bpy.data.actions.get(item.action_name)
        if head is None or action is None:
            raise UserError(f"'{item.name}' is no longer on its head (its object or Action is gone); "
                            "generate it again.")
        if action.get(layers.TAKE_KEY) is None:
            raise UserError(f"'{item.name}' was keyed as one Action, not as layers; turn on Layers and "
                            "generate it again.")
        changed = change_mood(head, action, settings.mood, float(settings.intensity))
        self.report({"INFO"}, f"'{item.name}' is now {settings.mood}"
                              + (f" at {settings.intensity:.0%}" if settings.mood != "neutral" else "")
                              + (f" on {', '.join(changed)}" if len(changed) > 1 else ""))


class EXOMNI_OT_add_demo_head(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.add_demo_head"
    bl_label = "Add Demo Head"
    bl_description = "Add a procedural head with all 52 ARKit shape keys, to try takes without a rig"
    bl_options = {"REGISTER", "UNDO"}
    kind = KIND

    def run(self, context):
        from ...blender.head import create_head
        head = create_head("ExOmniHead")
        context.scene.exomni.target = head
        context.view_layer.objects.active = head


class EXOMNI_OT_toggle_part(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.toggle_part"
    bl_label = "Key This Part"
    bl_description = ("Key this mesh or bone of the character with every take, or leave it out (remembered "
                      "with the character in the .blend)")
    bl_options = {"REGISTER", "UNDO"}

    object_name: bpy.props.StringProperty()
    bone: bpy.props.StringProperty()

    def run(self, context):
        from ...blender.character import find_character, is_left_out, set_left_out

        obj = bpy.data.objects.get(self.object_name)
        if obj is None:
            raise UserError(f"'{self.object_name}' is no longer in the file; select the head again.")
        part = next((p for p in find_character(obj).keyable()
                     if p.object_name == self.object_name and p.bone == self.bone), None)
        if part is None:
            raise UserError(f"'{self.bone or self.object_name}' is not a part a take moves.")
        set_left_out(part, not is_left_out(part))


CLASSES = (EXOMNI_OT_generate, EXOMNI_OT_cancel, EXOMNI_OT_change_mood, EXOMNI_OT_add_demo_head,
           EXOMNI_OT_toggle_part)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
