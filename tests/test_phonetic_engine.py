"""The phonetic engine end to end: request in, a complete Take out, bad requests refused clearly."""

import numpy as np
import pytest

from exomni_blender.core import contract as C
from exomni_blender.core.request import TEXT_LIMIT
from exomni_blender.core.arkit import ARKIT_52, INDEX, MOUTH_CHANNELS
from exomni_blender.core.take import Take
from backend.engines.base import Cancelled, EngineError, Progress, TakeRequest
from backend.engines.phonetic.engine import PhoneticEngine

LINE = "Point blank, Brick. We found them, and they are not happy about it."


@pytest.fixture(scope="module")
def engine():
    return PhoneticEngine()


def test_describes_itself_with_voices(engine):
    info = engine.describe()
    assert info["name"] == "phonetic" and info["modes"] == ["say", "lipsync"] and info["available"]
    assert "en-us" in info["voices"] and "en-gb" in info["voices"] and "f3" in info["variants"]
    assert info["default_voice"] == "en-us"


def test_a_take_has_everything(engine, tmp_path):
    reports = []
    take = engine.make_take(TakeRequest(text=LINE, fps=25, seed=5, voice="en-gb", rate=1.1, pitch=0.9),
                            Progress(lambda f, m: reports.append((f, m))))
    assert take.engine == "phonetic" and take.mode == "say" and take.text == LINE
    assert take.fps == 25 and take.frames == int(round(take.duration * 25))
    assert take.weights.shape == (take.frames, 52) and take.names == ARKIT_52
    assert take.sample_rate == 22050 and take.audio.dtype == np.float32 and take.duration > 2
    assert len(take.phonemes) > 30 and take.phonemes[-1].end <= take.duration
    assert {"synthesize", "mouth", "expression", "total"} <= set(take.timings)
    assert all(v >= 0 for v in take.timings.values())
    assert take.meta["voice"] == "en-gb" and take.meta["seed"] == 5
    assert take.meta["rate"] == 1.1 and take.meta["pitch"] == 0.9
    assert [w["text"] for w in take.meta["words"]][:2] == ["Point", "blank"]
    assert reports[0][0] == 0.0 and reports[-1][0] == 1.0
    # the face moves: mouth, blinks or brows somewhere in the take
    assert take.channel("jawOpen").max() > 0.3
    assert take.weights[:, [INDEX[n] for n in ("eyeBlinkLeft", "browInnerUp")]].max() > 0.1
    # and the take survives the round trip through its folder
    back = Take.load(take.save(tmp_path / "take"))
    assert [p.symbol for p in back.phonemes] == [p.symbol for p in take.phonemes]
    assert np.allclose([p.start for p in back.phonemes], [p.start for p in take.phonemes], atol=1e-4)
    assert np.allclose(back.weights, take.weights, atol=1e-5)
    assert back.meta["voice"] == "en-gb" and back.engine == "phonetic"


def test_same_request_same_take(engine):
    a = engine.make_take(TakeRequest(text=LINE, seed=3), Progress())
    b = engine.make_take(TakeRequest(text=LINE, seed=3), Progress())
    c = engine.make_take(TakeRequest(text=LINE, seed=4), Progress())
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)


def test_mouth_only(engine):
    take = engine.make_take(TakeRequest(text=LINE, mouth_only=True), Progress())
    face = [i for i, n in enumerate(ARKIT_52) if n not in MOUTH_CHANNELS]
    assert not take.weights[:, face].any() and take.meta["mouth_only"] is True
    assert take.channel("jawOpen").max() > 0.3


def test_curves_at_the_requested_rate(engine):
    a = engine.make_take(TakeRequest(text="Hello there.", fps=24), Progress())
    b = engine.make_take(TakeRequest(text="Hello there.", fps=60), Progress())
    assert a.frames == int(round(a.duration * 24)) and b.frames == int(round(b.duration * 60))


@pytest.mark.parametrize("fields,code,words", [
    (dict(text="   "), C.E_EMPTY_TEXT, "empty"),
    (dict(text="x" * (TEXT_LIMIT + 1)), C.E_TEXT_TOO_LONG, "split"),
    (dict(text="hi", voice="xx-nowhere"), C.E_BAD_REQUEST, "en-us"),
    (dict(text="hi", voice="en-us+nobody"), C.E_BAD_REQUEST, "f3"),
    (dict(text="hi", rate=10), C.E_BAD_REQUEST, "multiplier"),
    (dict(text="hi", pitch=-1), C.E_BAD_REQUEST, "multiplier"),
    (dict(text="hi", fps=0), C.E_BAD_REQUEST, "fps"),
    (dict(text="hi", fps="fast"), C.E_BAD_REQUEST, "fps"),
    (dict(text="hi", seed=-4), C.E_BAD_REQUEST, "seed"),
    (dict(text="hi", mode="chat"), C.E_UNKNOWN_MODE, "say"),
    (dict(text=" ... , ; "), C.E_BAD_REQUEST, "nothing to say"),
])
def test_bad_requests_are_refused_with_a_clear_error(engine, fields, code, words):
    with pytest.raises(EngineError) as err:
        engine.make_take(TakeRequest(**fields), Progress())
    assert err.value.code == code and err.value.status == C.STATUS[code]
    assert words in str(err.value)


def test_cancelled_job_stops(engine):
    with pytest.raises(Cancelled):
        engine.make_take(TakeRequest(text=LINE), Progress(cancelled=lambda: True))
    # the engine still works afterwards
    assert engine.make_take(TakeRequest(text="Still here."), Progress()).phonemes


def test_the_take_starts_and_ends_at_rest_and_anticipates_the_first_sound(engine):
    take = engine.make_take(TakeRequest(text="Maybe both.", fps=30), Progress())
    mouth = [INDEX[n] for n in MOUTH_CHANNELS]
    first = take.phonemes[0].start
    assert 0.15 <= first <= 0.35  # the default lead-in of silence
    assert np.abs(take.audio[: int(0.15 * take.sample_rate)]).max() == 0.0
    assert take.weights[0, mouth].max() < 0.02 and take.weights[-1, mouth].max() < 0.05
    before = take.weights[int(first * take.fps) - 1, mouth]
    assert before.max() > 0.05  # the lips are already moving toward the first sound
    bare = engine.make_take(TakeRequest(text="Maybe both.", fps=30, options={"lead_in": 0, "tail": 0}), Progress())
    assert bare.phonemes[0].start < 0.1 and bare.duration < take.duration - 0.3
    with pytest.raises(EngineError, match="lead_in"):
        engine.make_take(TakeRequest(text="Maybe both.", options={"lead_in": -1}), Progress())
