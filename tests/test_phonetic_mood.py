"""Mood, intensity and head motion: the request validates them, the phonetic engine performs them with
real eSpeak NG, and a screenplay's parentheticals choose them."""

import numpy as np
import pytest

from backend.engines.base import Progress, TakeRequest
from backend.engines.phonetic import quality
from backend.engines.phonetic.engine import PhoneticEngine
from exomni_blender.core import face
from exomni_blender.core.arkit import INDEX
from exomni_blender.core.request import RequestError, validate

# Lines the moods were not tuned on.
LINES = ("Maybe the parcel arrived while we were out buying bread.",
         "The bus broke down, so Paula walked the last mile in the rain.")


def make(text, **fields):
    return PhoneticEngine().make_take(TakeRequest(text=text, **fields), Progress())


def test_the_request_validates_mood_intensity_and_head_motion():
    checked = validate({"text": "Hello.", "mood": " Angry ", "intensity": 0.25, "head_motion": 0})
    assert (checked.mood, checked.intensity, checked.head_motion) == ("angry", 0.25, 0.0)
    assert validate({"text": "Hello."}).mood == "neutral"
    for bad, words in (({"mood": "glad"}, "mood must be one of neutral, happy"),
                       ({"mood": 3}, "mood must be one of"),
                       ({"intensity": 1.5}, "intensity must be a number from 0 to 1"),
                       ({"intensity": "high"}, "intensity"),
                       ({"head_motion": -1}, "head_motion .* from 0 to 2")):
        with pytest.raises(RequestError, match=words):
            validate({"text": "Hello.", **bad})


@pytest.mark.parametrize("mood", [m for m in face.MOOD_NAMES if m != "neutral"])
def test_each_mood_raises_its_channels_and_keeps_closures_and_rests(mood):
    for seed, line in enumerate(LINES):
        neutral = make(line, seed=seed)
        moody = make(line, seed=seed, mood=mood, intensity=1.0)
        channels = [INDEX[c] for c in face.MOODS[mood]]
        assert moody.weights[:, channels].mean() > neutral.weights[:, channels].mean() + 0.1
        # the lips close on every p/b/m and part no more anywhere than the mouth makes them
        closed = quality.bilabial_closures(moody.phonemes, moody.weights, moody.fps)
        assert closed and all(c[3] for c in closed)
        assert all(c[3] for c in quality.bilabial_closures(neutral.phonemes, neutral.weights, neutral.fps))
        lips = [INDEX[n] for n in ("jawOpen", "mouthClose", "mouthLowerDownLeft", "mouthLowerDownRight",
                                   "mouthUpperUpLeft", "mouthUpperUpRight", "mouthFunnel", "mouthRollLower")]
        assert not set(lips) & set(channels)
        assert moody.meta["mood"] == mood and moody.meta["intensity"] == 1.0


def test_intensity_scales_the_mood_and_the_voice_follows_it():
    line = LINES[0]
    half = make(line, mood="sad", intensity=0.5)
    full = make(line, mood="sad", intensity=1.0)
    neutral = make(line)
    frown = INDEX["mouthFrownLeft"]
    assert 0.3 < half.weights[:, frown].mean() / full.weights[:, frown].mean() < 0.7
    assert full.meta["words_per_minute"] < half.meta["words_per_minute"] < neutral.meta["words_per_minute"]
    assert full.duration > neutral.duration  # sad speaks slower


def test_mouth_only_has_no_mood_and_no_head():
    take = make(LINES[1], mood="happy", mouth_only=True)
    assert take.meta["mood"] == "neutral" and face.HEAD_ROTATION not in take.meta
    assert np.array_equal(take.weights, make(LINES[1], mouth_only=True).weights)  # the voice is unchanged too


def test_head_motion_nods_on_stress_within_limits_and_smoothly():
    on, peaks, chance = 0, 0, 0.0
    for seed, line in enumerate(LINES * 2):
        take = make(line, seed=seed)
        rotation = face.head_rotation(take.meta, take.frames)
        assert rotation.shape == (take.frames, 3)
        assert np.abs(rotation).max() <= face.HEAD_LIMIT_DEG
        assert np.abs(np.diff(rotation, axis=0)).max() * take.fps < 120.0  # degrees per second
        stressed = [p.start for p in take.phonemes if p.symbol.startswith("ˈ")]
        pitch = rotation[:, 0]
        found = [i / take.fps for i in range(1, len(pitch) - 1)
                 if pitch[i] > pitch[i - 1] and pitch[i] >= pitch[i + 1] and pitch[i] > 0.5]
        on += sum(any(abs(t - s) <= 0.12 for s in stressed) for t in found)
        peaks += len(found)
        grid = np.arange(take.frames) / take.fps
        chance += len(found) * np.mean([any(abs(t - s) <= 0.12 for s in stressed) for t in grid])
    assert peaks >= 8 and on > 1.5 * chance
    still = make(LINES[0], head_motion=0.0)
    assert face.HEAD_ROTATION not in still.meta
    double = face.head_rotation(make(LINES[0], head_motion=2.0).meta)
    single = face.head_rotation(make(LINES[0]).meta)
    assert np.abs(double).max() > 1.5 * np.abs(single).max()


def test_parentheticals_choose_the_mood_and_its_intensity():
    from backend.dialogue.delivery import apply_to_request, delivery_for

    cases = {("angrily",): ("angry", 0.7), ("very happily",): ("happy", 1.0), ("a bit sad",): ("sad", 0.4),
             ("beer raised",): ("neutral", 0.0), ("whispering", "nervously"): ("afraid", 0.7)}
    for parens, expected in cases.items():
        d = delivery_for(parens)
        assert (d.mood, d.mood_intensity) == expected, parens
    request = apply_to_request(TakeRequest(text="Get out."), delivery_for(["angrily"]))
    assert (request.mood, request.intensity) == ("angry", 0.7)
    assert delivery_for(["angrily"]).settings() != delivery_for(["happily"]).settings()  # cached apart
    assert delivery_for([]).settings() == {"pitch": 1.0, "rate": 1.0, "intensity": 1.0, "whisper": False}


def test_a_screenplay_with_angry_and_happy_lines_makes_takes_that_differ_as_expected():
    from backend.dialogue.cast import resolve_cast
    from backend.dialogue.plan import plan_lines
    from backend.dialogue.script import parse_fountain

    script = parse_fountain("INT. KITCHEN - DAY\n\nANNA\n(angrily)\nYou burned the toast again.\n\n"
                            "BEN\n(happily)\nI made you a new batch of pancakes instead.\n")
    cast = resolve_cast(["ANNA", "BEN"], [], create_heads=True)
    planned = plan_lines(script, cast, "phonetic", "test", 30.0)
    takes = [PhoneticEngine().make_take(TakeRequest(**p.request), Progress()) for p in planned]
    angry, happy = takes
    brow_down = [INDEX["browDownLeft"], INDEX["browDownRight"]]
    smile = [INDEX["mouthSmileLeft"], INDEX["mouthSmileRight"]]
    assert angry.weights[:, brow_down].mean() > happy.weights[:, brow_down].mean() + 0.2
    assert happy.weights[:, smile].mean() > angry.weights[:, smile].mean() + 0.2
    assert (angry.meta["mood"], happy.meta["mood"]) == ("angry", "happy")


def test_angrily_changes_the_voice_once_through_the_mood():
    """A parenthetical naming a mood adds no rate or pitch of its own: eSpeak speaks at the request's
    rate and pitch times the mood's voice, exactly, for each mood cue."""
    from backend.dialogue.delivery import apply_to_request, delivery_for
    from backend.engines.phonetic import espeak

    for paren in ("angrily", "very happily", "sadly", "nervously", "furious", "excitedly"):
        delivery = delivery_for([paren])
        assert (delivery.rate, delivery.pitch) == (1.0, 1.0), paren
        request = apply_to_request(TakeRequest(text="Get out of my kitchen.", rate=1.2, pitch=0.9), delivery)
        take = PhoneticEngine().make_take(request, Progress())
        rate, pitch = face.mood_voice(delivery.mood, delivery.mood_intensity)
        wpm, espeak_pitch = espeak.check_rate_pitch(1.2 * rate, 0.9 * pitch)
        assert (take.meta["words_per_minute"], take.meta["espeak_pitch"]) == (wpm, espeak_pitch), paren
    plain = PhoneticEngine().make_take(TakeRequest(text="Get out of my kitchen.", rate=1.2, pitch=0.9), Progress())
    assert take.meta["words_per_minute"] != plain.meta["words_per_minute"]  # the mood did change it, once
