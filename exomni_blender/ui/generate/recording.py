"""The recording a take animates (lip sync) or is asked with (a spoken prompt): resolved on the main
thread from a sound strip, a Sound or a file, and checked before anything is sent."""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy

from ...blender import compat
from ...core import contract as C
from ...core.audio_codec import audio_suffix
from ..common import UserError, scene_fps

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
    return audio_suffix(head, default=".wav")
