"""The face streamed while the units are decoded: the exomni engine's pieces (audio and frames) arrive in
order, early, without gaps or overlaps, add up to the stored take, and stay within the documented
tolerance of animating the whole utterance at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.engines.base import EngineError, Progress, TakeRequest  # noqa: E402
from backend.engines.exomni import ExomniEngine, FaceLayers, TakeStream  # noqa: E402
from backend.models.audio_decoder import random_decoder, tiny_config  # noqa: E402
from backend.models.exomni.face_stream import FACE_STREAM_TOLERANCE, FaceStream  # noqa: E402
from backend.models.exomni.tiny import make_tiny_checkpoint  # noqa: E402
from exomni_blender.core.arkit import ARKIT_52, MOUTH_CHANNELS  # noqa: E402
from exomni_blender.core.take import resample_curves  # noqa: E402

LINE = "Good morning, everyone! Today we are going to talk about how faces move when people speak."
LINES = ["Hello there, how are you today?", "The quick brown fox jumps over the lazy dog.",
         "She sells sea shells by the sea shore.", "Please say that again, a little slower this time."]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("face_stream")
    checkpoint = make_tiny_checkpoint(root / "ckpt", seed=0)
    decoder = random_decoder(tiny_config(), seed=0).save(root / "decoder")
    return ExomniEngine(checkpoint=str(checkpoint), decoder=str(decoder), device="cpu")


def _take(engine, on_piece=None, text=LINE, seed=3, fps=30.0, mouth_only=False, **options):
    request = TakeRequest(engine="exomni", mode="say", text=text, fps=fps, seed=seed, mouth_only=mouth_only,
                          options=options)
    return engine.make_take(request, Progress(), on_piece)


def _received(engine, **kwargs):
    """The take and every piece, each with the number of speech-generator steps run when it arrived."""
    steps, pieces = [0], []
    head = engine.load().model.model.speech_generator.llm_decoder
    hook = head.register_forward_hook(lambda *_: steps.__setitem__(0, steps[0] + 1))
    try:
        take = _take(engine, lambda piece: pieces.append((piece, steps[0])), **kwargs)
    finally:
        hook.remove()
    return take, pieces, steps[0]


@pytest.mark.parametrize("fps, mouth_only", [(30.0, False), (24.0, True)])
def test_pieces_are_in_order_and_add_up_to_the_stored_take(engine, fps, mouth_only):
    take, pieces, _ = _received(engine, fps=fps, mouth_only=mouth_only)
    frames = [p for p, _ in pieces if p.frames.shape[0]]
    audio = [p for p, _ in pieces if p.audio.size]
    assert len(frames) >= 3 and len(audio) >= 3  # several chunks of each, not one at the end
    assert [p.final for p, _ in pieces] == [False] * (len(pieces) - 1) + [True]
    assert [p.elapsed for p, _ in pieces] == sorted(p.elapsed for p, _ in pieces)
    at = 0
    for piece in frames:  # no gap, no overlap
        assert piece.frame_start == at and piece.fps == fps and piece.frames.dtype == np.float32
        at += piece.frames.shape[0]
    at = 0
    for piece in audio:
        assert piece.audio_start == at and piece.sample_rate == take.sample_rate
        at += piece.audio.size
    assert np.array_equal(np.concatenate([p.frames for p in frames]), take.weights)
    assert np.array_equal(np.concatenate([p.audio for p in audio]), take.audio)
    if mouth_only:
        others = [i for i, name in enumerate(ARKIT_52) if name not in MOUTH_CHANNELS]
        assert not take.weights[:, others].any() and take.weights.any()
    assert take.meta["face"] == "streamed"
    assert 0 < take.timings["first_face"] < take.timings["total"]


MODEL_OWN = [i for i, name in enumerate(ARKIT_52) if not name.startswith(("eyeBlink", "eyeSquint", "eyeLook"))]


def test_resampled_pieces_are_what_resampling_the_whole_curve_gives(engine):
    # mouth only: the eyes are drawn at each rate, not resampled
    at30, _, _ = _received(engine, seed=5, mouth_only=True)
    at24, _, _ = _received(engine, seed=5, fps=24.0, mouth_only=True)
    assert at24.units == at30.units
    assert np.array_equal(at24.weights, resample_curves(at30.weights, 30.0, 24.0))


def test_a_listener_changes_nothing(engine):
    heard, _, _ = _received(engine, seed=7)
    silent = _take(engine, seed=7)
    assert heard.units == silent.units
    assert np.array_equal(heard.weights, silent.weights) and np.array_equal(heard.audio, silent.audio)


def test_first_face_before_the_last_unit_and_first_audio_before_half_the_reply(engine):
    take, pieces, total_steps = _received(engine)
    assert total_steps >= len(take.units) > 40
    first_face = next(steps for p, steps in pieces if p.frames.shape[0])
    first_audio = next(steps for p, steps in pieces if p.audio.size)
    assert first_face < len(take.units), (first_face, len(take.units))
    assert first_audio < total_steps / 2, (first_audio, total_steps)
    # and most of the face is out before the last unit
    before_end = sum(p.frames.shape[0] for p, steps in pieces if steps < total_steps and not p.final)
    assert before_end > take.frames / 2


def test_whole_utterance_option_gives_one_face_piece_and_the_model_output(engine):
    take, pieces, _ = _received(engine, stream_face=False)
    frames = [p for p, _ in pieces if p.frames.shape[0]]
    assert len(frames) == 1 and frames[0].frame_start == 0 and take.meta["face"] == "whole utterance"
    from backend.models.exomni.sampling import UnitSampling

    performance = engine.load().say(LINE, UnitSampling(), generator=torch.Generator().manual_seed(3))
    assert performance.units == take.units
    # the model's frames with the eyes added (exomni.FaceLayers), exactly
    model = np.clip(np.asarray(performance.blendshapes, np.float32), 0, 1)
    layered = FaceLayers(30.0, 3, "neutral", 1.0).layered(model)
    assert np.array_equal(take.weights, layered)
    with pytest.raises(EngineError, match="stream_face must be true or false"):
        _take(engine, stream_face="no")


def test_streamed_face_is_within_the_documented_tolerance_of_the_whole(engine):
    worst, means = [], []
    for text in LINES:
        for seed in (1, 2):
            streamed = _take(engine, text=text, seed=seed, stream_audio=False)
            whole = _take(engine, text=text, seed=seed, stream_audio=False, stream_face=False)
            assert streamed.units == whole.units and streamed.weights.shape == whole.weights.shape
            # the model's own channels: the eyes added on top follow each one's pauses
            diff = np.abs(streamed.weights - whole.weights)[:, MODEL_OWN]
            worst.append(diff.max())
            means.append(diff.mean())
    assert max(worst) <= FACE_STREAM_TOLERANCE["max"], worst
    assert np.mean(means) <= FACE_STREAM_TOLERANCE["mean"], means
    assert max(worst) > 0  # streaming really runs on prefixes (equal results would mean it did not)


def test_face_stream_publishes_settled_frames_only():
    calls = []

    class Recorder:
        config = type("C", (), {"out_dim": 52})

        def predict(self, states, ids):
            calls.append(ids.shape[1])
            frames = int(ids.shape[1] * 2.4)
            return torch.arange(frames, dtype=torch.float32)[None, :, None].expand(1, frames, 52)

    published = []
    stream = FaceStream(Recorder(), on_frames=published.append, chunk_units=5, lookahead_units=2)
    units, states = [], []
    for i in range(12):
        units.append(7)
        states.append(torch.zeros(1, 1, 4))
        stream.update(units, states)
    assert calls == [5, 10]
    assert [p.shape[0] for p in published] == [7, 12]  # frames of 3 units, then of 8
    whole = stream.finish(units, torch.zeros(1, 13, 4))
    assert calls == [5, 10, 12] and whole.shape == (28, 52)
    assert torch.equal(whole[:, 0], torch.arange(28, dtype=torch.float32))


def test_take_stream_alone_resamples_incrementally():
    rng = np.random.default_rng(0)
    curve = rng.random((53, 52)).astype(np.float32)
    sent = []
    stream = TakeStream(25.0, False, sent.append, 0.0)
    for start in range(0, 53, 7):
        stream.add_frames(curve[start:start + 7])
    weights = stream.finish_face()
    assert np.array_equal(weights, resample_curves(curve, 30.0, 25.0))
    assert [p.frame_start for p in sent] == list(np.cumsum([0] + [p.frames.shape[0] for p in sent])[:-1])
    assert len(sent) > 3
