"""The Generate panel's settings against the take request's one declaration, in the real bpy: every panel
field is a property with the declared default and range, and the panel's request carries each one as
set. (The other entry points: test_request_declaration.py.)"""

import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.core import request as R  # noqa: E402

pytestmark = pytest.mark.blender


def test_every_panel_field_is_a_property_with_the_declared_default_and_range(registered_scene):
    props = registered_scene.exomni.bl_rna.properties
    for name in R.PANEL_FIELDS:
        spec = R.SPECS[name]
        assert name in props, f"the panel has no setting for the request field {name}"
        prop = props[name]
        if spec.kind in (int, float):
            assert (prop.hard_min, prop.hard_max) == pytest.approx((spec.low, spec.high)), name
            assert prop.default == pytest.approx(spec.default), name
        elif spec.kind is bool:
            assert prop.default is spec.default, name
        elif spec.choices:  # enums whose items come from a callback show their default on a fresh scene
            assert getattr(registered_scene.exomni, name) == spec.default, name


def test_the_panels_request_carries_every_panel_field_as_set(registered_scene):
    from exomni_blender.ui.generate.operators import take_request

    settings = registered_scene.exomni
    chosen = {"text": "Bob bought a pink balloon.", "voice": "en-gb", "language": "es", "seed": 77, "rate": 1.25, "pitch": 0.75,
              "mouth_only": True, "mood": "sad", "intensity": 0.5, "head_motion": 1.5}
    assert set(chosen) | {"engine", "mode"} == set(R.PANEL_FIELDS), "a new panel field needs a value here"
    for name, value in chosen.items():
        setattr(settings, name, value)
    registered_scene.render.fps, registered_scene.render.fps_base = 25, 1.0
    body = take_request(bpy.context)
    assert set(body) == set(R.FIELDS)
    for name, value in chosen.items():
        assert body[name] == pytest.approx(value) if isinstance(value, float) else body[name] == value, name
    assert body["fps"] == 25.0 and body["engine"] == "phonetic" and body["mode"] == "say"
