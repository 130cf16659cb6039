"""A take's audio on the scene's timeline: a WAV file and a sound strip at the take's first frame.

The audio is written beside the saved .blend in `//exomni_audio/`, so the file stays portable
with its folder; in an unsaved file (or when that folder cannot be written) it goes through a
temporary WAV that is packed into the .blend, so nothing points at a file that will vanish.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile

import bpy

from . import compat
from ..core.files import atomic_write
from ..core.take import encode_wav
from ..core.errors import ExOmniError

AUDIO_FOLDER = "exomni_audio"
STRIP_PREFIX = "ExOmni: "
MAX_CHANNEL = 128


class TimelineError(ExOmniError, ValueError):
    """Audio that cannot be placed on the timeline; the message says what to do."""


def add_audio_strip(scene, take, start_frame, channel=None, name=None):
    """Place the take's audio as a sound strip on `scene`'s sequencer, starting at `start_frame`.

    The WAV goes to `//exomni_audio/<take>.wav` beside the saved .blend, or, when the .blend has
    never been saved or that folder cannot be written, into the .blend itself (packed). The strip lands on `channel`, or on the
    lowest channel that is free over the strip's frames; the sequence editor is created when the
    scene has none. The scene's end frame grows to the strip's last frame (it never shrinks).
    Returns the sound strip; its length matches the audio to within one frame.
    """
    if scene is None:
        raise TimelineError("no scene given; pass bpy.context.scene")
    audio = getattr(take, "audio", None)
    if audio is None or len(audio) == 0:
        raise TimelineError("the take has no audio to place; make it with an engine that speaks, "
                            "or key only its animation")
    if take.sample_rate <= 0:
        raise TimelineError(f"the take's sample rate is {take.sample_rate}; it must be positive")
    if not getattr(bpy.app.build_options, "audaspace", True):
        raise TimelineError(f"this Blender ({bpy.app.version_string}) was built without audio support, so it "
                            "cannot hold sound strips; use a Blender build with audio (any official release)")

    start = int(round(start_frame))
    fps = scene.render.fps / scene.render.fps_base
    length = max(1, int(math.ceil(len(audio) / float(take.sample_rate) * fps)))
    if channel is None:
        channel = free_channel(scene, start, start + length)
    elif not 1 <= int(channel) <= MAX_CHANNEL:
        raise TimelineError(f"channel {channel} is out of range; use 1 to {MAX_CHANNEL}")

    wav = encode_wav(take.audio, take.sample_rate)
    stem = _file_stem(take, wav)
    strip_name = name or _strip_name(take)
    path = None
    if bpy.data.filepath:
        folder = os.path.join(os.path.dirname(bpy.path.abspath(bpy.data.filepath)), AUDIO_FOLDER)
        path = os.path.join(folder, stem + ".wav")
        try:
            os.makedirs(folder, exist_ok=True)
            atomic_write(path, wav)
        except OSError as exc:  # e.g. a .blend opened from a read-only share: keep the audio in the file
            print(f"Ex-Omni: cannot write {path} ({exc.strerror or exc}); packing the audio into the .blend")
            path = None
    if path is not None:
        strip = compat.new_sound_strip(scene, strip_name, path, channel, start)
        strip.sound.filepath = bpy.path.relpath(path)
    else:
        with tempfile.TemporaryDirectory(prefix="exomni_") as tmp:
            path = os.path.join(tmp, stem + ".wav")
            atomic_write(path, wav)
            strip = compat.new_sound_strip(scene, strip_name, path, channel, start)
            strip.sound.pack()
        # Where "File > External Data > Unpack" writes it once the .blend is saved.
        strip.sound.filepath = f"//{AUDIO_FOLDER}/{stem}.wav"

    if hasattr(strip, "show_waveform"):
        strip.show_waveform = True
    if strip.frame_final_end - 1 > scene.frame_end:
        scene.frame_end = strip.frame_final_end - 1
    return strip


def free_channel(scene, frame_start: int, frame_end: int) -> int:
    """The lowest sequencer channel with no strip over [frame_start, frame_end)."""
    strips = compat.sequencer_strips(scene, create=False)
    busy = set()
    for strip in strips or ():
        if strip.frame_final_start < frame_end and frame_start < strip.frame_final_end:
            busy.add(strip.channel)
    for channel in range(1, MAX_CHANNEL + 1):
        if channel not in busy:
            return channel
    raise TimelineError(f"all {MAX_CHANNEL} sequencer channels are busy at frames {frame_start}-{frame_end}; "
                        "pick another start frame")


def _file_stem(take, wav: bytes) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", str(getattr(take, "text", "") or "")).strip("_").lower()
    words = "_".join(words.split("_")[:6])[:40] or "take"
    # The same audio always maps to the same file; different takes never overwrite each other.
    return f"{words}_{hashlib.sha1(wav).hexdigest()[:8]}"


def _strip_name(take) -> str:
    words = " ".join(str(getattr(take, "text", "") or "").split())
    if len(words) > 40:
        words = words[:40].rsplit(" ", 1)[0] + "..."
    return STRIP_PREFIX + (words or "take audio")


