"""Pure parts of dialogue scenes: delivery from parentheticals, casting, cache keys, layout, mixdown."""

import json

import numpy as np
import pytest

from backend.dialogue import cast as castmod
from backend.dialogue import plan as planmod
from backend.dialogue.delivery import apply_to_request, apply_to_take, delivery_for
from backend.dialogue.script import parse_csv, parse_fountain
from backend.engines.base import TakeRequest
from exomni_blender.core.take import Take


# -- delivery ---------------------------------------------------------------------------------------

def test_delivery_from_parentheticals():
    neutral = delivery_for(["beer raised", "in Vietnamese, subtitled"])
    assert neutral.neutral and neutral.cues == ()
    whisper = delivery_for(["whispering"])
    shout = delivery_for(["shouting"])
    assert whisper.whisper and whisper.volume < 0.5 < 1.5 < shout.volume
    assert shout.pitch > 1.0 and shout.intensity > 1.0 > whisper.intensity
    assert delivery_for(["quickly"]).rate > 1.2 and delivery_for(["slowly"]).rate < 0.8
    assert delivery_for(["angry"]).intensity > 1.0 and delivery_for(["softly"]).volume < 1.0
    # "very" strengthens, several cues combine, limits hold.
    assert delivery_for(["very quickly"]).rate > delivery_for(["quickly"]).rate
    both = delivery_for(["angrily", "quickly"])  # the mood's voice is the engine's: no second rate change here
    assert both.rate == delivery_for(["quickly"]).rate and both.intensity > 1.0 and both.mood == "angry"
    assert delivery_for(["screaming, very loud, furious"]).volume <= 2.0


def test_delivery_applies_to_request_and_take():
    req = TakeRequest(text="x", voice="en-gb+m3", rate=1.0, pitch=1.0)
    apply_to_request(req, delivery_for(["whispering"]))
    assert req.voice == "en-gb+whisper"
    req = apply_to_request(TakeRequest(text="x"), delivery_for(["shouting", "quickly"]))
    assert req.rate > 1.3 and req.pitch > 1.1 and req.voice is None

    w = np.full((10, 52), 0.4, np.float32)
    take = Take(fps=30, weights=w.copy())
    apply_to_take(take, delivery_for(["shouting"]))
    assert take.channel("jawOpen")[0] > 0.4 and take.channel("eyeBlinkLeft")[0] == pytest.approx(0.4)
    assert take.meta["delivery"]["intensity"] > 1.0
    take = Take(fps=30, weights=w.copy())
    apply_to_take(take, delivery_for(["whispering"]))
    assert take.channel("jawOpen")[0] < 0.4


# -- cast -------------------------------------------------------------------------------------------

OBJECTS = [{"name": "Brick", "type": "MESH", "shape_keys": 52}, {"name": "steel_head", "type": "MESH", "shape_keys": 52},
           {"name": "HeadC", "type": "MESH", "shape_keys": 52}, {"name": "Camera", "type": "CAMERA", "shape_keys": 0},
           {"name": "Floor", "type": "MESH", "shape_keys": 0}]


def test_cast_by_name_and_table():
    cast = castmod.resolve_cast(["BRICK", "STEEL", "MR. STEEL"], OBJECTS, table={"mr steel": "steel_head"})
    assert [(r.character, r.object, r.create) for r in cast] == [
        ("BRICK", "Brick", False), ("STEEL", "steel_head", False), ("MR. STEEL", "steel_head", False)]
    assert any("share the head" in w for w in cast.warnings)
    # Distinct default voices (one per head) and channels, stable seeds.
    assert cast.role("BRICK").voice != cast.role("STEEL").voice == cast.role("MR. STEEL").voice
    assert [r.channel for r in cast] == [1, 2, 3]
    again = castmod.resolve_cast(["BRICK", "STEEL", "MR. STEEL"], OBJECTS, table={"mr steel": "steel_head"})
    assert [r.seed for r in cast] == [r.seed for r in again]
    assert castmod.resolve_cast(["BRICK"], OBJECTS, base_seed=1).role("BRICK").seed != cast.role("BRICK").seed


def test_line_counts_join_spellings_of_one_character():
    script = parse_csv("character,line\nBrick,One.\nSTEEL,Two.\nBRICK,Three.\nBrick,Four.\n")
    assert script.line_counts == {"Brick": 2, "STEEL": 1, "BRICK": 1}
    cast = castmod.resolve_cast(script.characters, OBJECTS, line_counts=script.line_counts)
    assert [(r.character, r.lines) for r in cast] == [("Brick", 3), ("STEEL", 1)]


def test_unknown_characters_are_all_reported():
    with pytest.raises(castmod.CastError) as err:
        castmod.resolve_cast(["BRICK", "JACK", "DAN"], OBJECTS, table={"DAN": "Nope"})
    msg = str(err.value)
    assert "JACK" in msg and "DAN" in msg and "'Nope'" in msg and "--cast" in msg and "--create-heads" in msg
    assert "HeadC" in msg  # what could be cast
    with pytest.raises(castmod.CastError, match="without shape keys"):
        castmod.resolve_cast(["BRICK"], OBJECTS, table={"BRICK": "Floor"})


def test_heads_are_created_when_asked_or_when_the_scene_has_none():
    cast = castmod.resolve_cast(["BRICK", "JACK"], OBJECTS, create_heads=True)
    assert [(r.object, r.create) for r in cast] == [("Brick", False), ("Jack", True)]
    cast = castmod.resolve_cast(["MR. STEEL"], [])  # no heads at all: created by default
    assert cast.role("MR. STEEL").object == "Mr. Steel" and cast.role("MR. STEEL").create


def test_cast_arguments_and_sidecar(tmp_path):
    assert castmod.parse_cast_arg("BRICK=HeadA, STEEL = HeadB") == {"BRICK": "HeadA", "STEEL": "HeadB"}
    with pytest.raises(castmod.CastError, match="NAME=VALUE"):
        castmod.parse_cast_arg("BRICK")
    script = tmp_path / "scene.fountain"
    script.write_text("x")
    (tmp_path / "scene.cast.toml").write_text('[cast]\nBRICK = "HeadA"\nSTEEL = { object = "HeadB", voice = "en-gb+f3" }\n')
    assert castmod.sidecar_for(script) == tmp_path / "scene.cast.toml"
    objects, voices = castmod.load_cast_file(castmod.sidecar_for(script))
    assert objects == {"BRICK": "HeadA", "STEEL": "HeadB"} and voices == {"STEEL": "en-gb+f3"}
    (tmp_path / "bad.cast.json").write_text("[1, 2]")
    with pytest.raises(castmod.CastError):
        castmod.load_cast_file(tmp_path / "bad.cast.json")


# -- plan -------------------------------------------------------------------------------------------

def _fake_take(seconds, fps=30.0, sr=16000, level=0.5):
    frames = int(np.ceil(seconds * fps))
    return Take(fps=fps, weights=np.zeros((frames, 52), np.float32), audio=np.full(int(seconds * sr), level, np.float32),
                sample_rate=sr)


def _planned(script, objects=OBJECTS, fps=30.0):
    cast = castmod.resolve_cast(script.characters, objects, create_heads=True)
    return cast, planmod.plan_lines(script, cast, "phonetic", "v1", fps)


SCENE = """INT. ROOM - DAY

BRICK
Hello there.

STEEL
(shouting)
Hi!

BRICK ^
Hi!

STEEL
Bye now.
"""


def test_content_hash_changes_only_with_what_shapes_the_take():
    script = parse_fountain(SCENE)
    _, planned = _planned(script)
    hashes = [p.hash for p in planned]
    assert len(set(hashes)) == 4  # same words "Hi!", but another voice and delivery
    edited = parse_fountain(SCENE.replace("Bye now.", "Bye for now."))
    _, planned2 = _planned(edited)
    assert [a.hash == b.hash for a, b in zip(planned, planned2)] == [True, True, True, False]
    # Engine version, fps and delivery are all part of the key.
    cast = castmod.resolve_cast(script.characters, OBJECTS, create_heads=True)
    assert planmod.plan_lines(script, cast, "phonetic", "v2", 30.0)[0].hash != hashes[0]
    assert planmod.plan_lines(script, cast, "phonetic", "v1", 24.0)[0].hash != hashes[0]
    calm = parse_fountain(SCENE.replace("(shouting)\n", ""))
    assert _planned(calm)[1][1].hash != hashes[1]


def test_layout_in_order_with_gaps_and_only_asked_overlaps():
    script = parse_fountain(SCENE)
    _, planned = _planned(script)
    for p, secs in zip(planned, (1.0, 0.5, 0.7, 1.2)):
        planmod.measure(p, _fake_take(secs), 30.0)
    planmod.layout(planned, 30.0, frame_start=1, gap=0.5, lead_in=0.5)
    starts = [p.start_frame for p in planned]
    assert starts[0] == 16  # 0.5 s lead-in at 30 fps after frame 1
    assert starts[1] == planned[0].end_frame + 1 + 15  # 0.5 s gap
    assert starts[2] == starts[1]  # dual dialogue starts together
    assert starts[3] == max(planned[1].end_frame, planned[2].end_frame) + 1 + 15
    assert planmod.overlaps(planned) == [(1, 2, True)]
    assert planmod.frame_range(planned, 1, 30.0) == (1, planned[3].end_frame + 15)
    # No gap at all still never overlaps (whole-frame layout).
    planmod.layout(planned, 30.0, gap=0.0)
    assert [o for o in planmod.overlaps(planned) if not o[2]] == []


def test_given_start_times_and_plan_json():
    script = parse_csv("character,line,start\nA,One two three.,2\nB,Four.,2.5\nA,Five.,\n")
    cast, planned = _planned(script, objects=[])
    for p in planned:
        planmod.measure(p, _fake_take(1.0, fps=25.0), 25.0)
    planmod.layout(planned, 25.0, frame_start=1, gap=0.2)
    assert [p.start_frame for p in planned] == [51, 63, 63 + 25 + 5]
    assert planmod.overlaps(planned) == [(0, 1, True)]
    first, last = planmod.frame_range(planned, 1, 25.0)
    plan = planmod.to_json(script, cast, planned, fps=25.0, frame_start=first, frame_end=last, engine="phonetic",
                           engine_version="v1", gap=0.2, lead_in=0.5)
    json.dumps(plan)
    assert [l["marker"] for l in plan["lines"]] == ["A: One two three.", "B: Four.", "A: Five."]
    assert len({l["strip"] for l in plan["lines"]}) == 3
    assert plan["lines"][1]["channel"] == 2 and plan["lines"][2]["channel"] == 1


def test_mixdown_places_each_line_at_its_frame_with_its_gain():
    script = parse_fountain(SCENE)
    _, planned = _planned(script)
    takes = {}
    for p, secs in zip(planned, (1.0, 0.5, 0.7, 1.2)):
        t = _fake_take(secs, level=0.25)
        takes[p.hash] = t
        planmod.measure(p, t, 30.0)
    planmod.layout(planned, 30.0, frame_start=1)
    first, last = planmod.frame_range(planned, 1, 30.0)
    audio, sr = planmod.mixdown(planned, takes, 30.0, first, last)
    assert sr == 16000 and audio.size == pytest.approx((last - first + 1) / 30.0 * sr, abs=2)
    at = lambda frame: int(round((frame - first) / 30.0 * sr))  # noqa: E731
    p0, p1, p2, p3 = planned
    assert audio[at(p0.start_frame) - 10] == 0.0 and audio[at(p0.start_frame) + 10] == pytest.approx(0.25)
    # The shouted line is louder; the dual lines add up where both sound.
    assert audio[at(p1.start_frame) + 5] == pytest.approx(min(1.0, 0.25 * p1.delivery.volume + 0.25 * p2.delivery.volume))
    assert audio[at(p3.start_frame) + 10] == pytest.approx(0.25)


# -- the planning service (the Dialogue panel's POST /v1/dialogue/plan) ------------------------------

@pytest.fixture(scope="module")
def registry():
    from backend.engines.registry import default_registry

    return default_registry()


def test_service_plans_lines_with_requests(registry):
    from backend.dialogue.service import plan_dialogue, sniff_format

    assert sniff_format(SCENE) == "fountain"
    assert sniff_format("character,line\nA,Hi\n") == "csv" and sniff_format('[{"character": "A"}]') == "json"
    plan = plan_dialogue({"script": SCENE, "objects": OBJECTS, "fps": 24, "create_heads": True}, registry)
    json.dumps(plan)
    assert [l["character"] for l in plan["lines"]] == ["BRICK", "STEEL", "BRICK", "STEEL"]
    shout = plan["lines"][1]
    assert shout["gain"] > 1.0 and shout["intensity"] > 1.0 and shout["request"]["pitch"] > 1.0
    assert shout["request"]["fps"] == 24.0 and shout["request"]["engine"] == "phonetic"
    assert plan["lines"][2]["dual"] and plan["scenes"] == [{"name": "INT. ROOM - DAY", "before_line": 0}]
    assert [l["object"] for l in plan["lines"]][:2] == ["Brick", "steel_head"]


@pytest.mark.parametrize("body,code", [
    ({"script": "   "}, "empty_text"),
    ({"script": "Just action.\n"}, "bad_script"),
    ({"script": SCENE, "objects": OBJECTS[:1], "create_heads": False}, "uncast_characters"),
    ({"script": SCENE, "fps": 0}, "bad_request"),
    ({"script": SCENE, "objects": "Brick"}, "bad_request"),
    ({"script": SCENE, "voices": {"BRICK": "xx-nope"}, "create_heads": True}, "bad_request"),
    ({"script": SCENE, "engine": "nope"}, "unknown_engine"),
    ({"script": SCENE, "mouth_only": "no", "create_heads": True}, "bad_request"),
    ([1, 2], "bad_request"),
])
def test_service_refuses_bad_requests_with_a_code(registry, body, code):
    from backend.dialogue.service import plan_dialogue
    from backend.engines.base import EngineError

    with pytest.raises(EngineError) as err:
        plan_dialogue(body, registry)
    assert err.value.code == code and str(err.value)


def test_a_cast_file_sets_a_default_mood_that_a_parenthetical_overrides(tmp_path):
    from backend.dialogue.plan import plan_lines
    from backend.dialogue.script import parse_fountain

    cast_file = tmp_path / "scene.cast.json"
    cast_file.write_text(json.dumps({"ANNA": {"object": "AnnaHead", "mood": "sad", "intensity": 0.5}, "BEN": "BenHead"}))
    objects, voices, moods = castmod.read_cast_file(cast_file)
    assert moods == {"ANNA": ("sad", 0.5)} and objects == {"ANNA": "AnnaHead", "BEN": "BenHead"}
    script = parse_fountain("INT. HALL - DAY\n\nANNA\nIt rained all week.\n\nANNA\n(happily)\nBut look, the sun!\n\n"
                            "BEN\nGood morning.\n")
    cast = castmod.resolve_cast(script.characters, [], objects, create_heads=True, moods=moods)
    planned = plan_lines(script, cast, "phonetic", "test", 30.0)
    assert [(p.request["mood"], p.request["intensity"]) for p in planned] == [("sad", 0.5), ("happy", 0.7),
                                                                              ("neutral", 1.0)]
    plain = castmod.resolve_cast(script.characters, [], objects, create_heads=True)
    assert plan_lines(script, plain, "phonetic", "test", 30.0)[0].hash != planned[0].hash  # cached apart
    for bad, stated in (({"mood": "grumpy"}, "not one of neutral"), ({"mood": "sad", "intensity": 3}, "from 0 to 1")):
        cast_file.write_text(json.dumps({"ANNA": bad}))
        with pytest.raises(castmod.CastError, match=stated):
            castmod.read_cast_file(cast_file)
