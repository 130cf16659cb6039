"""The exomni engine's eyes and mood: the shared eye generator and the mood layer on the model's frames,
computed so that a frame, once streamed, is the frame the whole take gets (tiny random checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest

from exomni_blender.core import face
from exomni_blender.core.arkit import ARKIT_52, INDEX

FPS = 24.0


def _speech(seconds: float, fps: float, seed: int = 0) -> np.ndarray:
    """Model-like frames: the jaw opens and shuts for syllables, with a pause every couple of seconds."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    w = rng.uniform(0.0, 0.08, (t.size, len(ARKIT_52))).astype(np.float32)
    talking = (t % 2.2) < 1.6
    w[:, INDEX["jawOpen"]] = np.where(talking, 0.35 + 0.3 * np.sin(2 * np.pi * 4 * t) ** 2, 0.0)
    w[:, INDEX["mouthClose"]] = 0.0
    return w


SPLITS = {"at once": [], "frame by frame, then in sevens": [1] * 4 + [7] * 40, "uneven": [30, 3, 50, 2, 400],
          "one big piece": [500]}


def _streamed(neutral: np.ndarray, mood: str, chunks: list) -> list:
    """The pieces FaceLayers hands out when the model's frames come in `chunks` (the rest, if any, at the
    end); no chunks: every frame at once with the end."""
    from backend.engines.exomni import FaceLayers

    layers, out, at = FaceLayers(FPS, 11, mood, 0.8), [], 0
    for size in chunks:
        if at >= neutral.shape[0]:
            break
        out.append(layers.add(neutral[at:at + size], False))
        at += size
    out.append(layers.add(neutral[at:], True))
    return out


@pytest.mark.parametrize("mood", ["neutral", "angry"])
def test_layers_streamed_in_any_split_make_one_take_with_eyes_and_mood(mood):
    neutral = _speech(9.0, FPS)
    takes = {}
    for name, chunks in SPLITS.items():
        pieces = _streamed(neutral, mood, chunks)
        if chunks:
            assert any(piece.shape[0] for piece in pieces[:-1]), f"{name}: no frames went out before the end"
        takes[name] = np.concatenate(pieces)
    take = takes["at once"]
    for name, streamed in takes.items():
        assert np.array_equal(streamed, take), f"streamed {name}, the take differs from the take made at once"

    # what the take must be, from the model's frames alone
    assert take.shape == neutral.shape and take.dtype == np.float32
    assert take.min() >= 0.0 and take.max() <= 1.0
    assert np.array_equal(take[:, INDEX["jawOpen"]], neutral[:, INDEX["jawOpen"]])  # the speech is left alone
    blink = take[:, INDEX["eyeBlinkLeft"]]
    blinks = np.flatnonzero((blink[1:] > 0.9) & (blink[:-1] <= 0.9)).size
    assert 2 <= blinks <= 8, blinks  # people blink every few seconds when they talk, not every second
    if mood == "neutral":  # no mood: only the eyes change
        not_eyes = [i for i, n in enumerate(ARKIT_52) if not n.startswith("eye")]
        assert np.array_equal(take[:, not_eyes], neutral[:, not_eyes])
    else:  # anger lowers the brows (FACS AU 4), settling in after the start and gone by the end
        lowered = take[:, INDEX["browDownLeft"]] - neutral[:, INDEX["browDownLeft"]]
        assert lowered[int(FPS):-int(FPS)].min() > 0.3
        assert abs(lowered[0]) < 0.02 and abs(lowered[-1]) < 0.02


def test_speech_eyes_blink_in_pauses_and_look_around():
    neutral = _speech(20.0, FPS, seed=3)
    eyes = face.speech_eyes(neutral, FPS, seed=2)
    blink = eyes[:, INDEX["eyeBlinkLeft"]]
    shut = np.flatnonzero((blink[1:] > 0.9) & (blink[:-1] <= 0.9)) + 1
    assert len(shut) >= 3
    pauses, _ = face.pause_marks(neutral, FPS)
    near_pause = [i for i in shut if any(0 <= i / FPS - p < 0.3 for p in pauses)]
    assert near_pause  # at least one blink is drawn to a pause the mouth made
    look = eyes[:, [INDEX[n] for n in ("eyeLookOutLeft", "eyeLookInLeft", "eyeLookUpLeft", "eyeLookDownLeft")]]
    assert np.abs(np.diff(look, axis=0)).max() > 0.02  # saccades, not only drift
    mouth = [i for i, n in enumerate(ARKIT_52) if not n.startswith("eye")]
    assert not eyes[:, mouth].any()
    assert np.array_equal(eyes, face.speech_eyes(neutral, FPS, seed=2))
    assert not np.array_equal(eyes, face.speech_eyes(neutral, FPS, seed=3))


# -- on the tiny checkpoint -----------------------------------------------------------------------------

LINE = "Streaming speech and a face together, long enough for several chunks of both."


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    pytest.importorskip("torch")
    from backend.engines.exomni import ExomniEngine
    from backend.models.exomni.tiny import make_tiny_checkpoint

    checkpoint = make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)
    return ExomniEngine(checkpoint=str(checkpoint), device="cpu")


def _take(engine, **fields):
    from backend.engines.base import Progress, TakeRequest

    pieces = []
    request = TakeRequest(**{"engine": "exomni", "mode": "say", "text": LINE, "fps": FPS, "seed": 5, **fields})
    take = engine.make_take(request, Progress(lambda f, m: None), on_piece=pieces.append)
    return take, pieces


def test_a_mood_is_a_layer_the_stream_carries_exactly(engine):
    neutral, neutral_pieces = _take(engine)
    happy, pieces = _take(engine, mood="happy", intensity=0.8)
    for take, sent in ((neutral, neutral_pieces), (happy, pieces)):
        frames = [p for p in sent if p.frames.shape[0]]
        assert len(frames) >= 2 and [p.frame_start for p in frames] == list(
            np.cumsum([0] + [p.frames.shape[0] for p in frames[:-1]]))
        assert np.array_equal(np.concatenate([p.frames for p in frames]), take.weights)
    assert happy.meta["mood"] == "happy" and happy.meta["intensity"] == 0.8
    assert "mood" not in happy.meta.get("ignored", "")
    # Same seed, same model frames: the happy take is the neutral one plus the mood's layer, exactly
    # (away from the eyes, whose blink rate the mood raises).
    layer = face.mood_curves(neutral.frames, FPS, "happy", 0.8)
    for name in ("mouthSmileLeft", "mouthSmileRight", "cheekSquintLeft", "mouthDimpleRight"):
        c = INDEX[name]
        assert np.array_equal(happy.weights[:, c], np.clip(neutral.weights[:, c] + layer[:, c], 0, 1))
    smile = [INDEX["mouthSmileLeft"], INDEX["mouthSmileRight"], INDEX["cheekSquintLeft"]]
    assert happy.weights[:, smile].mean() > neutral.weights[:, smile].mean() + 0.2
    mouth = INDEX["jawOpen"]
    assert np.array_equal(happy.weights[:, mouth], neutral.weights[:, mouth])


def test_the_eyes_blink_and_mouth_only_leaves_them_out(engine):
    take, _ = _take(engine, seed=7)
    lid = take.weights[:, INDEX["eyeBlinkLeft"]]
    assert lid.max() > 0.9 and lid.max() - np.median(lid) > 0.4  # a blink shuts the lid, then it opens
    bare, _ = _take(engine, seed=7, mouth_only=True)
    assert not bare.weights[:, INDEX["eyeBlinkLeft"]].any() and bare.meta["mood"] == "neutral"
