"""Generate's settings, per scene (`Scene.exomni`), and the engines the panel offers.

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import zlib

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from ...blender import compat
from ...core import contract as C
from ...core import request as R
from ..common import is_head
from ..takes.props import ExOmniTakeItem

# The engines the backend last reported (GET /v1/engines). Until a refresh, the embedded default
# with the modes it has in this release.
_FALLBACK_ENGINES = [{"name": C.DEFAULT_ENGINE, "description": "Embedded CPU engine (eSpeak NG + visemes)",
                      "modes": ["say", "lipsync"], "available": True, "reason": ""}]
_engines = list(_FALLBACK_ENGINES)
# Blender keeps only pointers to enum item strings: the tuples must outlive the callback's return.
_engine_items = []
_mode_items = {}

# Modes the panel can drive, each shown only where the engine offers it.
PANEL_MODES = ("say", "chat", "lipsync")
MODE_LABELS = {"say": ("Say", "Speak exactly the line typed"),
               "chat": ("Chat", "The model answers the line (or a spoken prompt); the answer is spoken and animated"),
               "lipsync": ("Lip sync", "Animate a recording: a sound strip, a sound or an audio file")}
MOOD_ITEMS = [(m, m.capitalize(), f"A {m} face" if m != "neutral" else "No mood layer", i)
              for i, m in enumerate(R.SPECS["mood"].choices)]
AUDIO_SOURCES = [
    ("STRIP", "Strip", "The active sound strip in the Sequencer. In lip sync it is reused: the take is keyed "
                       "where the strip's sound starts and no new strip is added", "SEQUENCE", 0),
    ("SOUND", "Sound", "A sound in this .blend file; its take gets a new strip at the start frame", "SOUND", 1),
    ("FILE", "File", "An audio file on disk (WAV, FLAC, OGG, MP3, M4A...); its take gets a new strip at the "
                     "start frame", "FILE_SOUND", 2),
]


def declared(name: str, more: str = "") -> dict:
    """A property's default, range and tooltip from the take request's one declaration."""
    spec = R.SPECS[name]
    out = {"default": spec.default, "description": spec.help[:1].upper() + spec.help[1:] + more}
    if spec.low is not None:
        out.update(min=spec.low, max=spec.high)
    return out


def set_engines(engines: list) -> None:
    """Replace the cached engine list (from GET /v1/engines)."""
    global _engines
    cleaned = [e for e in engines if isinstance(e, dict) and e.get("name")]
    _engines = cleaned or list(_FALLBACK_ENGINES)


def engines() -> list:
    return list(_engines)


def engine_info(name: str):
    return next((e for e in _engines if e.get("name") == name), None)


def _stable_number(name: str) -> int:
    # A fixed number per name keeps the scene's choice when the list is refreshed in another order.
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def _engine_enum_items(self, context):
    _engine_items[:] = []
    for e in _engines:
        name = str(e["name"])
        available = bool(e.get("available", True))
        description = str(e.get("description") or name)
        if not available:
            description += f" (unavailable: {e.get('reason') or 'see the backend'})"
        _engine_items.append((name, name, description, "NONE" if available else "ERROR", _stable_number(name)))
    return _engine_items


def _mode_enum_items(self, context):
    info = engine_info(self.engine) or {}
    modes = tuple(m for m in (info.get("modes") or ["say"]) if m in PANEL_MODES) or ("say",)
    if modes not in _mode_items:
        _mode_items[modes] = [(m, *MODE_LABELS[m], C.MODES.index(m)) for m in modes]
    return _mode_items[modes]


def _is_head(self, obj) -> bool:
    return is_head(obj)


class ExOmniSceneSettings(bpy.types.PropertyGroup):
    target: PointerProperty(
        name="Head", type=bpy.types.Object, poll=_is_head,
        description="The mesh with ARKit shape keys to animate (empty: the active object)")
    engine: bpy.props.EnumProperty(
        name="Engine", items=_engine_enum_items, default=_stable_number(C.DEFAULT_ENGINE),
        description="The backend engine that makes the take (refresh to list the backend's engines)")
    mode: bpy.props.EnumProperty(name="Mode", items=_mode_enum_items, default=C.MODES.index("say"), description="What the engine does with the line")
    text: StringProperty(name="Line", description="What the head says (in chat mode the prompt, in lip sync "
                         "the recording's transcript, which helps the alignment)", maxlen=R.TRANSCRIPT_LIMIT)
    voice_prompt: BoolProperty(name="Spoken prompt", default=False,
                               description="Chat: the prompt is a recording (the line, if any, goes with it)")
    audio_source: EnumProperty(name="Recording", items=AUDIO_SOURCES, default="STRIP",
                               description="Where the recording comes from")
    audio_file: StringProperty(name="Audio file", subtype="FILE_PATH", options=compat.path_options(),
                               description="The recording on disk (WAV, FLAC, OGG, MP3, M4A or AAC)")
    sound: PointerProperty(name="Sound", type=bpy.types.Sound, description="A sound in this .blend file")
    voice: StringProperty(name="Voice", maxlen=R.SPECS["voice"].high,
                          description="Engine voice name, such as en-us (empty: the engine's default)")
    language: StringProperty(name="Language", maxlen=R.SPECS["language"].high, **declared("language"))
    seed: IntProperty(name="Seed", **declared("seed"))
    rate: FloatProperty(name="Rate", **declared("rate"))
    pitch: FloatProperty(name="Pitch", **declared("pitch"))
    mouth_only: BoolProperty(name="Mouth only", **declared("mouth_only"))
    mood: EnumProperty(name="Mood", items=MOOD_ITEMS, default=R.SPECS["mood"].default,
                       description="The face's mood (and the voice's, where the engine can change it)")
    intensity: FloatProperty(name="Intensity", subtype="FACTOR", **declared("intensity"))
    head_motion: FloatProperty(name="Head motion", **declared(
        "head_motion", "; keyed on the head bone or the object's rotation"))
    layered: BoolProperty(name="Layers", default=False,
                          description="Key the take as NLA layers (mouth, eyes, expression, head) that can be "
                                      "muted, scaled or replaced on their own; Change Mood re-keys only the "
                                      "expression layer")
    live: BoolProperty(name="Live", default=False,
                       description="Play the take and move the head while the backend server makes it; "
                                   "it is keyed when it ends")
    use_playhead: BoolProperty(name="At playhead", default=True,
                               description="Start the take at the current frame (off: at the start frame below)")
    start_frame: IntProperty(name="Start frame", default=1, description="Frame the take starts at")
    takes: CollectionProperty(type=ExOmniTakeItem)
    takes_index: IntProperty(name="Take", default=0)

    def resolved_start_frame(self, scene) -> int:
        return int(scene.frame_current if self.use_playhead else self.start_frame)


CLASSES = (ExOmniSceneSettings,)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.exomni = PointerProperty(type=ExOmniSceneSettings)


def unregister():
    del bpy.types.Scene.exomni
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
    _engine_items.clear()
    _mode_items.clear()
    set_engines([])
