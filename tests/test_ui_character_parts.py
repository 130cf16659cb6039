"""The Generate panel's Keyed list on a real avatar (tests/data/avatars/ict_head.glb): it shows every part
of the character a take keys, a part can be left out with its toggle, the choice is kept with the
character in the saved .blend, and every path that keys the character (here key_character, which
Generate, Re-key and dialogue scenes call) leaves that part alone.

The panel's draw() gets a recorder in place of its UILayout (the bpy module has no window); the
operator, the scene, the avatar and the keying are real."""

from pathlib import Path
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

import exomni_blender  # noqa: E402
from exomni_blender.blender import character as ch  # noqa: E402

pytestmark = pytest.mark.blender

AVATAR = Path(__file__).resolve().parent / "data" / "avatars" / "ict_head.glb"


class Recorder:
    """Stands in for bpy.types.UILayout: labels and operator buttons land in one shared list."""

    def __init__(self, drawn=None):
        self.drawn = [] if drawn is None else drawn

    def _child(self, *args, **kwargs):
        return Recorder(self.drawn)

    row = column = box = split = grid_flow = _child

    def label(self, text="", icon="NONE", **kwargs):
        self.drawn.append(("label", text))

    def prop(self, data, name, **kwargs):
        self.drawn.append(("prop", name))

    def operator(self, name, text="", icon="NONE", depress=False, **kwargs):
        button = SimpleNamespace(name=name, text=text, depress=depress)
        self.drawn.append(("operator", button))
        return button

    def progress(self, **kwargs):
        pass

    def separator(self, **kwargs):
        pass

    def toggles(self) -> dict:
        return {b.text: b.depress for kind, b in self.drawn if kind == "operator" and b.name == "exomni.toggle_part"}


def keyed_list() -> dict:
    layout = Recorder()
    bpy.types.EXOMNI_PT_main.draw(type("Panel", (), {"layout": layout})(), bpy.context)
    return layout.toggles()


@pytest.fixture
def avatar():
    bpy.ops.wm.read_homefile(use_empty=True)
    exomni_blender.register()
    bpy.context.scene.render.fps = 30
    bpy.ops.import_scene.gltf(filepath=str(AVATAR))
    head = bpy.data.objects["Head"]
    bpy.context.scene.exomni.target = head
    yield head
    exomni_blender.unregister()


@pytest.fixture(scope="module")
def spoken():
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    return PhoneticEngine().make_take(TakeRequest(text="Open the big box by noon.", fps=30), Progress())


def test_the_keyed_list_leaves_a_part_out_and_remembers_it(avatar, spoken, tmp_path):
    parts = {"Head", "GumsTongue", "Teeth", "EyeLeft", "EyeRight"}
    assert keyed_list() == {p: True for p in parts}
    assert bpy.ops.exomni.toggle_part(object_name="Teeth", bone="") == {"FINISHED"}
    assert keyed_list()["Teeth"] is False

    result = ch.key_character(avatar, spoken, start_frame=1)
    assert set(result.keyed) == parts - {"Teeth"} and result.skipped["Teeth"] == ch.LEFT_OUT_NOTE
    teeth = bpy.data.objects["Teeth"]
    assert teeth.data.shape_keys.animation_data is None or teeth.data.shape_keys.animation_data.action is None

    path = tmp_path / "character.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    bpy.context.scene.exomni.target = bpy.data.objects["Head"]
    assert keyed_list()["Teeth"] is False  # kept with the character
    bpy.ops.exomni.toggle_part(object_name="Teeth", bone="")
    again = ch.key_character(bpy.data.objects["Head"], spoken, start_frame=1)
    assert "Teeth" in again.keyed and "Teeth" not in again.skipped


def test_leaving_every_part_out_says_what_to_do(avatar, spoken):
    for part in ch.find_character(avatar).keyable():
        ch.set_left_out(part, True)
    with pytest.raises(ch.CharacterError, match="Keyed list"):
        ch.key_character(avatar, spoken, start_frame=1)


def test_the_live_preview_moves_the_whole_character_and_puts_it_back(avatar):
    """A live frame shows on every mesh the take will key (the gums and teeth open with the head, both
    halves of ICT's split browInnerUp rise), not on a part left out, and stopping puts every key back."""
    import numpy as np

    from exomni_blender.core.arkit import INDEX
    from exomni_blender.ui.live import LivePreview

    ch.set_left_out(next(p for p in ch.find_character(avatar).keyable() if p.label == "EyeRight"), True)
    frame = np.zeros(52, np.float32)
    frame[INDEX["jawOpen"]], frame[INDEX["browInnerUp"]], frame[INDEX["eyeBlinkRight"]] = 0.6, 0.4, 0.9
    preview = LivePreview("Head")
    preview._show(frame)
    value = lambda mesh, key: bpy.data.objects[mesh].data.shape_keys.key_blocks[key].value  # noqa: E731
    assert value("Head", "jawOpen") == value("Teeth", "jawOpen") == value("GumsTongue", "jawOpen") == pytest.approx(0.6)
    assert value("Head", "browInnerUp_L") == value("Head", "browInnerUp_R") == pytest.approx(0.4)
    assert value("EyeLeft", "eyeBlink_R") == pytest.approx(0.9) and value("EyeRight", "eyeBlink_R") == 0.0
    preview.stop()
    assert value("Teeth", "jawOpen") == value("Head", "browInnerUp_R") == value("EyeLeft", "eyeBlink_R") == 0.0


@pytest.mark.parametrize("layered", [False, True])
def test_clear_take_removes_it_from_every_part_of_the_character(avatar, spoken, layered):
    """Clear Take on the takes list removes the selected take's Actions and NLA strips from every mesh it
    was keyed on, puts their shape keys back to rest, and leaves another take of the same head alone."""
    from exomni_blender.ui.takes.operators import apply_take

    scene = bpy.context.scene
    first = apply_take(scene, avatar, spoken, 1, layered=layered).take_id  # read now: adding an item moves
    second_item = apply_take(scene, avatar, spoken, 200, layered=layered)  # the list's items in memory
    second, second_name = second_item.take_id, second_item.name
    assert first and second and first != second
    ours = [a for a in bpy.data.actions if a.get(ch.TAKE_ID) == first]
    assert len({a.get(ch.PART) for a in ours}) == 5  # Head, GumsTongue, Teeth, EyeLeft, EyeRight
    scene.frame_set(5)
    scene.exomni.takes_index = 0
    assert bpy.ops.exomni.clear_take() == {"FINISHED"}
    assert not [a for a in bpy.data.actions if a.get(ch.TAKE_ID) == first]
    assert [a for a in bpy.data.actions if a.get(ch.TAKE_ID) == second]
    assert [t.name for t in scene.exomni.takes] == [second_name]
    for mesh in ("Head", "Teeth", "EyeLeft"):
        keys = bpy.data.objects[mesh].data.shape_keys
        for track in (keys.animation_data.nla_tracks if keys.animation_data else []):
            assert all(s.action is not None and s.action.get(ch.TAKE_ID) != first for s in track.strips)
    if not layered:  # one Action per mesh, the second take's now: the first frames are its rest
        assert bpy.data.objects["Teeth"].data.shape_keys.key_blocks["jawOpen"].value == 0.0
