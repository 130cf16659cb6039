"""What the panel shows for recordings, drawn in the real bpy into a layout that writes down its rows.

The bpy module has no window to draw into, so the panel's draw() gets a recorder in place of its
UILayout; everything else (scene, strips, sounds, the add-on's properties) is real.
"""

import wave

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import exomni_blender  # noqa: E402

pytestmark = pytest.mark.blender


class Recorder:
    """Stands in for bpy.types.UILayout: every label and property drawn lands in one shared list."""

    def __init__(self, drawn=None):
        self.drawn = [] if drawn is None else drawn

    def _child(self, *args, **kwargs):
        return Recorder(self.drawn)

    row = column = box = split = _child

    def label(self, text="", icon="NONE", **kwargs):
        self.drawn.append(("label", text))

    def prop(self, data, name, **kwargs):
        self.drawn.append(("prop", name))

    def operator(self, name, **kwargs):
        self.drawn.append(("operator", name))

    def progress(self, **kwargs):
        self.drawn.append(("progress", kwargs.get("text", "")))

    def separator(self, **kwargs):
        pass

    def labels(self) -> str:
        return "\n".join(text for kind, text in self.drawn if kind == "label")

    def props(self) -> set:
        return {name for kind, name in self.drawn if kind == "prop"}


def draw_panel() -> Recorder:
    layout = Recorder()
    bpy.types.EXOMNI_PT_main.draw(type("Panel", (), {"layout": layout})(), bpy.context)
    return layout


@pytest.fixture
def registered(tmp_path):
    bpy.ops.wm.read_homefile(use_empty=True)
    exomni_blender.register()
    scene = bpy.context.scene
    scene.render.fps = 24
    yield scene
    exomni_blender.unregister()


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "take_one.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes((9000 * np.sin(np.arange(24000) / 7.0)).astype(np.int16).tobytes())
    return path


def test_say_mode_has_no_recording_and_the_usual_start_frame(registered):
    layout = draw_panel()
    assert "audio_source" not in layout.props() and "voice_prompt" not in layout.props()
    assert {"text", "voice", "rate", "use_playhead"} <= layout.props()


def test_lipsync_from_a_strip_names_it_and_keys_where_its_sound_starts(registered, wav):
    from exomni_blender.blender.compat import new_sound_strip
    scene = registered
    settings = scene.exomni
    settings.mode = "lipsync"
    settings.audio_source = "STRIP"

    layout = draw_panel()
    assert "The scene has no sound strip" in layout.labels()
    assert "use_playhead" in layout.props()  # nothing to line up with yet

    strip = new_sound_strip(scene, "Take one", str(wav), 2, 40)
    strip.frame_offset_start = 5  # trimmed: the sound still starts at 40
    scene.sequence_editor.active_strip = strip
    layout = draw_panel()
    labels = layout.labels()
    assert "Take one" in labels and "Keyed from frame 40, where the strip's sound starts" in labels
    assert "Transcript (optional" in labels
    assert "use_playhead" not in layout.props() and "voice" not in layout.props() and "rate" not in layout.props()

    wav.unlink()  # the strip's file is moved away
    assert "Its file is missing" in draw_panel().labels()


def test_file_and_sound_sources_show_their_pickers(registered, wav):
    settings = registered.exomni
    settings.mode = "lipsync"
    settings.audio_source = "FILE"
    layout = draw_panel()
    assert "audio_file" in layout.props() and "use_playhead" in layout.props()
    settings.audio_source = "SOUND"
    settings.sound = bpy.data.sounds.load(str(wav))
    layout = draw_panel()
    assert "sound" in layout.props() and "Its file is missing" not in layout.labels()


def test_chat_offers_a_spoken_prompt(registered):
    from exomni_blender.ui.generate import props
    props.set_engines([{"name": "exomni", "modes": ["say", "chat"], "available": True}])
    settings = registered.exomni
    settings.engine = "exomni"
    settings.mode = "chat"
    layout = draw_panel()
    assert "voice_prompt" in layout.props() and "audio_source" not in layout.props()
    settings.voice_prompt = True
    layout = draw_panel()
    assert "audio_source" in layout.props() and "Text with the spoken prompt (optional)" in layout.labels()


def test_a_mode_the_engine_lost_is_pointed_out(registered):
    from exomni_blender.ui.generate import props
    settings = registered.exomni
    settings.mode = "lipsync"
    props.set_engines([{"name": "phonetic", "modes": ["say"], "available": True}])
    layout = draw_panel()
    assert "Pick a mode this engine offers" in layout.labels() and "audio_source" not in layout.props()


@pytest.mark.parametrize("head, suffix", [
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", ".wav"),
    (b"fLaC\x00\x00\x00\x22", ".flac"),
    (b"OggS\x00\x02", ".ogg"),
    (b"FORM\x00\x00\x10\x00AIFFCOMM", ".aiff"),
    (b"\x00\x00\x00\x20ftypM4A \x00\x00", ".m4a"),
    (b"ID3\x04\x00\x00", ".mp3"),
    (b"\xff\xfb\x90\x64", ".mp3"),
])
def test_a_packed_sound_without_a_file_name_gets_the_extension_of_its_format(head, suffix):
    from exomni_blender.ui.generate.recording import sniff_audio_suffix
    assert sniff_audio_suffix(head) == suffix
