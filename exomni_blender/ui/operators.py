"""The add-on's operators: Generate, Cancel, start/stop/check the backend, key takes from disk.

Network work runs in `jobs` on worker threads; Blender data changes only in the jobs' finish
callbacks, which run on the main thread. Keying, audio and the demo head come from `keying`,
`timeline` and `head`, imported where used so this module loads without them.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty

from ..blender import compat
from ..core import contract as C
from ..core.errors import ExOmniError
from ..core.request import EngineSpec, RequestError, validate
from . import jobs
from . import preferences
from . import props
from ..remote.client import ApiError, BackendError, Client, UploadCancelled, online_access_allowed, online_access_message
from .jobs import UserError
from . import ADDON_PACKAGE
from ..core.take import BLENDSHAPES_JSON, TAKE_JSON, Take

TAKES_FOLDER = "ExOmniTakes"


# -- helpers the panel and scripts share --------------------------------------------------------

def target_object(context):
    """The head a take goes on: the panel's choice, else the active object when it has shape keys."""
    settings = context.scene.exomni
    if settings.target is not None:
        return settings.target
    view_layer = getattr(context, "view_layer", None)
    active = view_layer.objects.active if view_layer is not None else None
    return active if props.is_head(active) else None


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def takes_root() -> Path:
    """Where downloaded take folders go: beside the saved .blend, else the extension's user folder."""
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//")) / TAKES_FOLDER
    if ADDON_PACKAGE.startswith("bl_ext."):
        try:
            return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path="takes", create=True))
        except (ValueError, RuntimeError, OSError):
            pass
    return Path(tempfile.gettempdir()) / "exomni_takes"


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
    fields = {"engine": engine, "mode": mode, "text": settings.text, "fps": scene_fps(scene),
              "voice": settings.voice.strip() or None, "seed": int(settings.seed), "rate": float(settings.rate),
              "pitch": float(settings.pitch), "mouth_only": bool(settings.mouth_only)}
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


# -- recordings: what lip sync animates, what a spoken prompt says --------------------------------

@dataclass
class Recording:
    """A recording ready to upload, resolved on the main thread (the worker must not touch bpy data)."""

    path: str  # the file sent
    name: str  # the name the backend sees: its messages use it, its extension picks the decoder
    label: str  # how messages here name it
    temporary: bool = False  # a packed sound written out for the upload, removed after it
    strip_name: str = ""  # the sound strip it plays in, when it came from one
    sound_start: float = 0.0  # the frame where that strip plays the sound's first sample

    def discard(self) -> None:
        if self.temporary:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def uses_recording(settings) -> bool:
    return settings.mode == "lipsync" or (settings.mode == "chat" and settings.voice_prompt)


def active_sound_strip(scene):
    """(the sound strip to use, "") or (None, why there is none): the active strip when it is a sound,
    else the one selected sound strip."""
    se = compat.sequence_editor(scene, create=False)
    active = getattr(se, "active_strip", None) if se is not None else None
    if active is not None and active.type == "SOUND":
        return active, ""
    selected = [s for s in compat.sequencer_all_strips(scene) if s.type == "SOUND" and s.select]
    if len(selected) == 1:
        return selected[0], ""
    if selected:
        return None, (f"{len(selected)} sound strips are selected: click the one to use in the Video Sequencer "
                      "so it is the active strip.")
    if not any(s.type == "SOUND" for s in compat.sequencer_all_strips(scene)):
        return None, ("The scene has no sound strip: add the recording in the Video Sequencer (Add > Sound), "
                      "or set Recording to File and pick it.")
    return None, "No sound strip is selected: select the recording's strip in the Video Sequencer."


def recording_for(context):
    """The recording the panel's settings name, checked before anything is sent (None when the mode
    needs none). A packed sound is written to a temporary file: `Recording.discard()` removes it."""
    scene = context.scene
    settings = scene.exomni
    if not uses_recording(settings):
        return None
    needs = "Lip sync needs a recording" if settings.mode == "lipsync" else "A spoken prompt needs a recording"
    source = settings.audio_source
    if source == "STRIP":
        strip, problem = active_sound_strip(scene)
        if strip is None:
            raise UserError(f"{needs}. {problem}")
        what = f"The sound strip '{strip.name}'"
        if strip.sound is None:
            raise UserError(f"{what} has no sound; pick its file again in the strip's properties.")
        recording = _sound_recording(strip.sound, what)
        recording.strip_name = strip.name
        # A take made from the whole file starts where the strip plays its first sample (a trimmed
        # or split strip's visible start lies later).
        recording.sound_start = compat.sound_start_frame(strip, scene_fps(scene))
        return recording
    if source == "SOUND":
        if settings.sound is None:
            raise UserError(f"{needs}: pick a Sound under Recording in the panel, or set Recording to Strip or File.")
        return _sound_recording(settings.sound, f"The sound '{settings.sound.name}'")
    if not settings.audio_file.strip():
        raise UserError(f"{needs}: pick the audio file under Recording in the panel "
                        "(or set Recording to Strip and select its sound strip).")
    return _file_recording(bpy.path.abspath(settings.audio_file), "The audio file", settings.audio_file)


def _sound_recording(sound, what: str) -> Recording:
    packed = sound.packed_file
    if packed is None:
        return _file_recording(bpy.path.abspath(sound.filepath, library=sound.library), what, sound.filepath)
    if packed.size <= 0:
        raise UserError(f"{what} is packed in the .blend but holds no audio; add the recording again from its file.")
    if packed.size > C.MAX_AUDIO_BYTES:
        raise UserError(_too_large(what, packed.size))
    data = packed.data
    if not data:
        raise UserError(f"{what} is packed in the .blend but holds no audio; add the recording again from its file.")
    name = Path(bpy.path.basename(sound.filepath)).name or sound.name
    suffix = Path(name).suffix.lower() or sniff_audio_suffix(data[:64])
    if not Path(name).suffix:
        name += suffix
    fd, path = tempfile.mkstemp(prefix="exomni-packed-", suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Recording(path=path, name=name, label=f"{what[0].lower()}{what[1:]}", temporary=True)


def _file_recording(path: str, what: str, shown: str) -> Recording:
    p = Path(path)
    try:
        exists = bool(shown.strip()) and p.exists()
    except OSError:
        exists = False
    if not exists:
        where = f" (looked at {p})" if shown.strip() and str(p) != shown else ""
        raise UserError(f"{what}: '{shown}' is missing{where}. Pick the recording again, or find it with "
                        "File > External Data > Find Missing Files.")
    if p.is_dir():
        raise UserError(f"{what}: {p} is a folder; pick the audio file in it.")
    try:
        size = p.stat().st_size
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise UserError(f"{what}: {p.name} cannot be read ({exc.strerror or exc}); check its permissions.") from None
    if size == 0:
        raise UserError(f"{what}: {p.name} is empty (0 bytes); export the recording again.")
    if size > C.MAX_AUDIO_BYTES:
        raise UserError(_too_large(f"{what}: {p.name}", size))
    label = f"{what[0].lower()}{what[1:]}" + ("" if what.startswith("The sound") else f" {p.name}")
    return Recording(path=str(p), name=p.name, label=label)


def _too_large(what: str, size: int) -> str:
    return (f"{what} is {size / 2**20:.1f} MB, over the backend's limit of {C.MAX_AUDIO_BYTES // 2**20} MB; "
            "trim it to the line you need or export it compressed (MP3/M4A).")


def sniff_audio_suffix(head: bytes) -> str:
    """A file extension for audio bytes with no name to go by (the backend picks its decoder by both)."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return ".wav"
    if head[:4] == b"fLaC":
        return ".flac"
    if head[:4] == b"OggS":
        return ".ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return ".aiff"
    if head[4:8] == b"ftyp":
        return ".m4a"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return ".mp3"
    return ".wav"


def check_online() -> None:
    if not online_access_allowed():
        raise UserError(online_access_message())


def start_generate(context) -> "jobs.Job":
    """Validate the panel's settings and start a Generate job. Raises UserError for bad input.

    In lip sync from a sound strip, the take is keyed where the strip plays the recording and the
    strip is reused; otherwise the take starts at the panel's start frame with a new audio strip.
    """
    check_online()
    if jobs.busy("generate"):
        raise UserError("A take is already being generated; wait for it or press Cancel.")
    head = target_object(context)
    if head is None:
        raise UserError("Pick a head with shape keys in the panel (or select one), or press Add Demo Head.")
    request = take_request(context)
    recording = recording_for(context)
    try:
        prefs = preferences.get(context)
        scene = context.scene
        reuse_strip = recording.strip_name if recording is not None and request["mode"] == "lipsync" else ""
        start_frame = recording.sound_start if reuse_strip else scene.exomni.resolved_start_frame(scene)
        work_args = (prefs.backend_url, prefs.token, request, str(takes_root()), recording)
        # Names, not references: the scene or head may be gone (undo, File > Open) when the take lands.
        scene_name, head_name = scene.name, head.name
        identity = _session_ids(scene, head)

        def work(job):
            return _generate_work(job, *work_args)

        def finish(job):
            if job.state == jobs.DONE:
                item = _apply_generated(job.result, scene_name, head_name, start_frame, reuse_strip, identity)
                job.message = f"Keyed '{item.name}' on {item.object_name} at frame {start_frame:g}" + (
                    f", lined up with the sound strip '{reuse_strip}'" if reuse_strip else "")

        what = request["text"] or (recording.label if recording is not None else "")
        return jobs.start("generate", work, label=f"Generating: {what[:40]}", on_finish=finish)
    except BaseException:
        if recording is not None:
            recording.discard()
        raise


def _generate_work(job, url, token, request, root, recording=None):
    try:
        with Client(url, token) as client:
            started = _submit(job, client, request, recording)
            job.remote_id = started["job_id"]

            def on_update(status):
                fraction = float(status.get("progress") or 0.0)
                job.report(0.1 + 0.8 * fraction, status.get("message") or status.get("state") or "")

            final = client.wait(job.remote_id, on_update, should_cancel=lambda: job.cancel_requested)
            if final["state"] == C.CANCELLED:
                raise jobs.Cancelled()
            if final["state"] == C.FAILED:
                raise BackendError(_job_error(final))
            take_id = str(final.get("take_id") or "")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", take_id):  # it names a folder on this disk
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


def _job_error(status: dict) -> str:
    error = status.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "the backend failed the take")
    return str(error or status.get("message") or "The backend failed the take; check its console.")


def _session_ids(*ids) -> tuple:
    # Kept through undo and renames, new for every file opened: tells "the same head" from "a head
    # of the same name in another file" (a rig named alike in every shot).
    return tuple(getattr(i, "session_uid", None) for i in ids)


def _apply_generated(result: dict, scene_name: str, object_name: str, start_frame: float, strip_name: str = "",
                     identity=None):
    scene = bpy.data.scenes.get(scene_name)
    head = bpy.data.objects.get(object_name)
    if scene is None or head is None:
        missing = f"scene '{scene_name}'" if scene is None else f"object '{object_name}'"
        raise UserError(f"The {missing} is gone (was another file opened?). The take is saved in "
                        f"{result['folder']}: key it with 'Key Take From Disk'.")
    if identity is not None and _session_ids(scene, head) != tuple(identity):
        raise UserError(f"Another file was opened while the take was made, so '{object_name}' there was left "
                        f"alone. The take is saved in {result['folder']}: key it with 'Key Take From Disk'.")
    try:
        item = apply_take(scene, head, result["take"], start_frame, folder=result["folder"],
                          take_id=result["take_id"], strip_name=strip_name)
    except ExOmniError as exc:  # the take is made and downloaded: say where, so it is not lost
        raise UserError(f"{str(exc).rstrip('.')}. The take itself is saved in {result['folder']}; "
                        "key it from there with 'Key Take From Disk'.") from None
    _undo_push("Ex-Omni take")
    return item


def apply_take(scene, head, take: Take, start_frame, folder: str = "", take_id: str = "", strip_name: str = ""):
    """Key `take` on `head` from `start_frame` and list it in the scene's takes.

    Its audio gets a new strip at `start_frame`, unless `strip_name` names the sound strip it was
    made from (lip sync): that strip already plays it there, so it is reused, not duplicated.
    """
    from ..blender.timeline import add_audio_strip

    take = take.resampled(scene_fps(scene))
    action = key_head(head, take, start_frame)
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
    item.take_id = take_id
    item.folder = str(folder)
    item.start_frame = int(round(start_frame))
    item.frames = take.frames
    item.object_name = head.name
    item.action_name = action.name if action is not None else ""
    item.mode = take.mode
    item.strip_name = strip_name
    item.preset = str(action.get("exomni_preset", "")) if action is not None else ""
    item.missing = ", ".join(action.get("exomni_missing", [])) if action is not None else ""
    settings.takes_index = len(settings.takes) - 1
    return item


def key_head(head, take: Take, start_frame):
    """Key a take on a shape-key head, or on the jaw bone of a bone-driven face rig."""
    if head.type == "ARMATURE":
        from ..blender.bone_face import key_bone_face

        return key_bone_face(head, take, start_frame=start_frame)
    from ..blender.keying import key_take

    return key_take(head, take, start_frame=start_frame)


def _undo_push(message: str) -> None:
    # Results land from a timer, outside any operator: give them their own undo step.
    try:
        bpy.ops.ed.undo_push(message=message)
    except RuntimeError:
        pass


def take_from_disk(path: str):
    """(Take, folder) from a take folder, one of its files, an Audio2Face JSON, a Live Link Face CSV or
    a Rhubarb Lip Sync JSON (+ a WAV beside it)."""
    from ..core.exchange import load_any

    p = Path(bpy.path.abspath(path)) if path else Path()
    if not str(path).strip() or not p.exists():
        raise UserError(f"Nothing at '{path}'; pick a take folder, an Audio2Face or Rhubarb JSON, or a Live Link "
                        f"Face CSV.")
    if p.is_dir():
        if (p / BLENDSHAPES_JSON).exists():
            return Take.load(p), p
        jsons = sorted(q for q in p.glob("*.json") if q.name != TAKE_JSON)
        if len(jsons) != 1:
            raise UserError(f"{p} is not a take folder (no {BLENDSHAPES_JSON}); pick the Audio2Face JSON file in it.")
        p = jsons[0]
    if p.suffix.lower() == ".wav":
        partner = next((q for q in (p.with_suffix(".json"), p.with_suffix(".csv")) if q.exists()), None)
        if partner is None:
            raise UserError(f"{p.name} is audio only; pick the JSON or CSV file that goes with it.")
        p = partner
    if p.suffix.lower() not in (".csv", ".json"):
        raise UserError(f"{p.name} is not a take: pick a take folder, an Audio2Face or Rhubarb JSON, a Live Link "
                        f"Face CSV, or its WAV.")
    return load_any(p)[0], p.parent


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

    return jobs.start("backend", work, label=label, on_finish=_on_backend_checked)


def _on_backend_checked(job):
    if job.state != jobs.DONE:
        return
    result = job.result
    props.set_engines(result["engines"])
    names = ", ".join(e["name"] + ("" if e.get("available", True) else " (unavailable)") for e in props.engines())
    version = result["health"].get("version") if isinstance(result["health"], dict) else None
    job.message = f"Backend ready at {result['url']}" + (f" (v{version})" if version else "") + f"; engines: {names}"


# -- operators -----------------------------------------------------------------------------------

class _ReportingOperator:
    """Turns the add-on's expected errors into a report instead of a traceback."""

    kind = "generate"

    def execute(self, context):
        try:
            return self.run(context) or {"FINISHED"}
        except ExOmniError as exc:
            jobs.fail(self.kind, str(exc))
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}


class EXOMNI_OT_generate(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.generate"
    bl_label = "Generate"
    bl_description = "Make a take of the line on the backend, then key it on the head with its audio strip"

    def run(self, context):
        start_generate(context)
        self.report({"INFO"}, "Generating the take...")


class EXOMNI_OT_cancel(bpy.types.Operator):
    bl_idname = "exomni.cancel"
    bl_label = "Cancel"
    bl_description = "Stop the take being generated (nothing is keyed)"

    def execute(self, context):
        if not jobs.cancel("generate"):
            self.report({"INFO"}, "Nothing to cancel")
            return {"CANCELLED"}
        job = jobs.latest("generate")
        if job is not None:
            job.message = "Cancelling..."
        return {"FINISHED"}


def _require_backend_idle() -> None:
    if jobs.busy("backend"):
        raise UserError("Already talking to the backend; wait a moment.")


class EXOMNI_OT_refresh_engines(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.refresh_engines"
    bl_label = "Refresh Engines"
    bl_description = "Ask the backend which engines it has and whether it is running"
    kind = "backend"

    def run(self, context):
        _require_backend_idle()
        start_backend_check(context)


class EXOMNI_OT_start_backend(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.start_backend"
    bl_label = "Start Backend"
    bl_description = "Run `exomni serve` (the 'Backend command' preference) for the backend URL, on this machine"
    kind = "backend"

    def run(self, context):
        from ..remote import launcher
        check_online()
        _require_backend_idle()
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
                    launcher.start(argv)
                    health = launcher.wait_until_ready(url, token, should_stop=lambda: job.cancel_requested)
                return {"health": health, "engines": client.engines(), "url": client.base_url}

        jobs.start("backend", work, label="Starting the backend...", on_finish=_on_backend_checked)
        self.report({"INFO"}, "Starting the backend...")


class EXOMNI_OT_stop_backend(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.stop_backend"
    bl_label = "Stop Backend"
    bl_description = "Stop the backend started from this Blender session"
    kind = "backend"

    def run(self, context):
        from ..remote import launcher
        stopped = launcher.stop()
        jobs.record("backend", "Backend stopped" if stopped else "No backend started from this session is running",
                    jobs.CANCELLED)


class EXOMNI_OT_add_demo_head(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.add_demo_head"
    bl_label = "Add Demo Head"
    bl_description = "Add a procedural head with all 52 ARKit shape keys, to try takes without a rig"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        from ..blender.head import create_head
        head = create_head("ExOmniHead")
        context.scene.exomni.target = head
        context.view_layer.objects.active = head


class EXOMNI_OT_key_take_from_disk(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.key_take_from_disk"
    bl_label = "Key Take From Disk"
    bl_description = ("Key a take folder, an Audio2Face or Rhubarb Lip Sync JSON or a Live Link Face CSV (with "
                      "its WAV) on the head at the start frame and add its audio strip")
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Take", subtype="FILE_PATH",
                             description="A take folder, its blendshapes.json, an Audio2Face or Rhubarb JSON, "
                                         "or a Live Link Face CSV")
    filter_glob: StringProperty(default="*.json;*.csv;*.wav", options={"HIDDEN"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def run(self, context):
        head = target_object(context)
        if head is None:
            raise UserError("Pick a head with shape keys in the panel (or select one), or press Add Demo Head.")
        take, folder = take_from_disk(self.filepath)
        scene = context.scene
        start_frame = scene.exomni.resolved_start_frame(scene)
        item = apply_take(scene, head, take, start_frame, folder=str(folder))
        self.report({"INFO"}, f"Keyed '{item.name}' ({take.frames} frames) on {head.name} at frame {start_frame}")


def _selected_take(context):
    settings = context.scene.exomni
    if not 0 <= settings.takes_index < len(settings.takes):
        raise UserError("Select a take in the list first.")
    return settings.takes[settings.takes_index]


class EXOMNI_OT_rekey_take(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.rekey_take"
    bl_label = "Re-key Take"
    bl_description = "Key the selected take again on the head at its start frame, from its folder"
    bl_options = {"REGISTER", "UNDO"}

    audio: BoolProperty(name="Audio strip", default=False, description="Add its audio strip again too")

    def run(self, context):
        from ..blender.timeline import add_audio_strip

        item = _selected_take(context)
        head = target_object(context)
        if head is None:
            raise UserError("Pick a head with shape keys in the panel (or select one).")
        if not item.folder or not os.path.isdir(bpy.path.abspath(item.folder)):
            raise UserError(f"The take's folder '{item.folder}' is gone; generate it again or key it from disk.")
        take = take_from_disk(item.folder)[0].resampled(scene_fps(context.scene))
        action = key_head(head, take, item.start_frame)
        if self.audio and take.has_audio:
            add_audio_strip(context.scene, take, item.start_frame)
        item.object_name, item.action_name = head.name, action.name if action is not None else ""
        self.report({"INFO"}, f"Re-keyed '{item.name}' on {head.name} at frame {item.start_frame}")


class EXOMNI_OT_jump_to_take(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.jump_to_take"
    bl_label = "Jump to Take"
    bl_description = "Move the playhead to the selected take's first frame"

    def run(self, context):
        context.scene.frame_current = _selected_take(context).start_frame


class EXOMNI_OT_remove_take(_ReportingOperator, bpy.types.Operator):
    bl_idname = "exomni.remove_take"
    bl_label = "Remove From List"
    bl_description = "Remove the selected take from this list (its action, audio strip and folder stay)"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        _selected_take(context)
        settings = context.scene.exomni
        settings.takes.remove(settings.takes_index)
        settings.takes_index = min(settings.takes_index, len(settings.takes) - 1)


CLASSES = (EXOMNI_OT_generate, EXOMNI_OT_cancel, EXOMNI_OT_refresh_engines, EXOMNI_OT_start_backend,
           EXOMNI_OT_stop_backend, EXOMNI_OT_add_demo_head, EXOMNI_OT_key_take_from_disk, EXOMNI_OT_rekey_take,
           EXOMNI_OT_jump_to_take, EXOMNI_OT_remove_take)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
