"""The Dialogue panel in the real bpy, against the real backend on 127.0.0.1 (`exomni serve` in a child
process). The bpy module has no event loop, so the tests drive the add-on's job runner with `jobs.wait()`.
"""

import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.core import contract as C  # noqa: E402

pytestmark = pytest.mark.blender

SCENE = """INT. GARAGE - DAY

BRICK
This is everybody we've ever put away.

STEEL
(shouting)
So much for retirement!

BRICK ^
So much!
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real backend in its own process (the dialogue planner is one of its routes)."""
    from backend.server.launcher import LocalServer

    root = tmp_path_factory.mktemp("dialogue-server")
    with LocalServer(root / "store", log_path=root / "server.log") as backend:
        yield backend.url


@pytest.fixture
def backend_url(server):
    return server


@pytest.fixture
def addon(addon):
    """The shared add-on fixture (tests/conftest.py), against this module's server; yields the scene."""
    from exomni_blender.ui import dialogue as dialogue_ui

    own = not hasattr(bpy.types.Scene, "exomni_dialogue")  # until the add-on registers the panel itself
    if own:
        dialogue_ui.register()
    yield bpy.context.scene
    if own:
        dialogue_ui.unregister()


def _build(timeout=120):
    from exomni_blender.ui import jobs

    assert bpy.ops.exomni.dialogue_build() == {"FINISHED"}
    job = jobs.latest("dialogue")
    return jobs.wait(job, timeout=timeout)


def _dialogue_strips(obj):
    ad = obj.data.shape_keys.animation_data
    return [s for t in ad.nla_tracks if t.name.startswith("ExOmni dialogue mouth") and not t.mute for s in t.strips]


def test_panel_builds_a_text_datablock_into_the_scene_and_reuses_takes(addon):
    from exomni_blender.blender import compat
    from exomni_blender.ui import jobs
    from exomni_blender.blender.head import create_head

    scene = addon
    create_head("Brick")
    create_head("Steel").location.x = 0.3
    text = bpy.data.texts.new("garage.fountain")
    text.write(SCENE)
    settings = scene.exomni_dialogue
    settings.source, settings.text, settings.gap = "TEXT", text, 0.25
    scene.frame_current = 40
    job = _build()
    assert job.state == jobs.DONE, job.message
    assert "3 lines keyed" in job.message and "3 takes made" in job.message

    brick, steel = bpy.data.objects["Brick"], bpy.data.objects["Steel"]
    b_strips, s_strips = _dialogue_strips(brick), _dialogue_strips(steel)
    assert [s.name for s in b_strips] == ["001 BRICK: This is everybody we've", "003 BRICK: So much!"]
    assert [s.name for s in s_strips] == ["002 STEEL: So much for retirement!"]
    first, shout, dual = b_strips[0], s_strips[0], b_strips[1]
    sounds = {s.name: s for s in compat.sequencer_all_strips(scene) if s.type == "SOUND"}
    assert first.frame_start == 40  # from the playhead
    first_end = max(first.frame_end + 1, sounds[first.name].frame_final_end)  # the curves or the audio
    # The layout keeps the audio's last, partly filled frame; Blender may round the strip's length down.
    assert 0 <= shout.frame_start - (first_end + round(0.25 * scene.render.fps)) <= 1
    assert dual.frame_start == shout.frame_start  # dual dialogue, asked for
    assert {n: s.frame_final_start for n, s in sounds.items()} == {s.name: s.frame_start for s in b_strips + s_strips}
    assert sounds[shout.name].volume > 1.0  # (shouting)
    assert sounds[first.name].channel != sounds[shout.name].channel
    markers = {m.name: m.frame for m in scene.timeline_markers}
    assert markers["BRICK: This is everybody we've ever"] == 40 and markers["INT. GARAGE - DAY"] == 40
    assert scene.frame_end >= shout.frame_end

    # Again, unchanged: every take comes from the cache, the earlier dialogue stays (muted).
    job = _build()
    assert job.state == jobs.DONE, job.message
    assert "0 takes made, 3 reused" in job.message
    muted = [t for t in brick.data.shape_keys.animation_data.nla_tracks if t.mute]
    assert muted and len(_dialogue_strips(brick)) == 2


def test_uncast_characters_are_reported_and_nothing_is_keyed(addon):
    from exomni_blender.ui import jobs
    from exomni_blender.blender.head import create_head

    scene = addon
    create_head("Brick")
    text = bpy.data.texts.new("scene.fountain")
    text.write(SCENE)
    settings = scene.exomni_dialogue
    settings.text, settings.create_heads = text, "NO"
    job = _build()
    assert job.state == jobs.FAILED
    assert "STEEL" in job.message and "Cast field" in job.message
    assert bpy.data.objects["Brick"].data.shape_keys.animation_data is None


def test_bad_input_is_refused_before_anything_starts(addon):
    from exomni_blender.ui import jobs

    settings = addon.exomni_dialogue
    settings.source = "FILE"
    settings.filepath = "//missing.fountain"
    with pytest.raises(RuntimeError, match="No script"):  # the operator's error report
        bpy.ops.exomni.dialogue_build()
    assert "No script" in jobs.latest("dialogue").message and not jobs.busy("dialogue")
    settings.source, settings.cast = "TEXT", "BRICK"
    settings.text = bpy.data.texts.new("x")
    settings.text.write("BRICK\nHi.\n")
    with pytest.raises(RuntimeError, match="NAME=Object"):
        bpy.ops.exomni.dialogue_build()
    assert not jobs.busy("dialogue")


def test_every_button_and_icon_the_dialogue_panel_draws_exists(addon):
    import re
    from pathlib import Path

    import exomni_blender

    ui = Path(exomni_blender.__file__).parent / "ui"
    source = "\n".join(p.read_text() for p in sorted(ui.rglob("*.py")) if "dialogue" in p.relative_to(ui).as_posix())
    buttons = set(re.findall(r'operator\("exomni\.(\w+)"', source))
    icons = set(re.findall(r'icon="(\w+)"', source)) | set(re.findall(r'"(ERROR|INFO|CHECKMARK)"', source))
    valid = set(bpy.types.UILayout.bl_rna.functions["prop"].parameters["icon"].enum_items.keys())
    assert buttons == {"dialogue_build", "dialogue_cancel"}
    assert all(hasattr(bpy.ops.exomni, name) and getattr(bpy.ops.exomni, name).poll() is not None for name in buttons)
    assert icons and icons <= valid, icons - valid
    assert bpy.types.EXOMNI_PT_dialogue.bl_parent_id == "EXOMNI_PT_main"
