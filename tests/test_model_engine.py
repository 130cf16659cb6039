"""The `exomni` engine on a tiny checkpoint: say and chat takes, seeds, options, availability."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.engines.base import Cancelled, EngineError, Progress, TakeRequest  # noqa: E402
from backend.engines.exomni import ExomniEngine  # noqa: E402
from backend.models.exomni.tiny import make_tiny_checkpoint  # noqa: E402
from exomni_blender.core.arkit import ARKIT_52, MOUTH_CHANNELS  # noqa: E402

LINE = "Hello there, how are you today?"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


@pytest.fixture(scope="module")
def engine(tiny):
    e = ExomniEngine(checkpoint=str(tiny), device="cpu")
    assert e.availability().available
    return e


def _take(engine, **fields):
    messages = []
    progress = Progress(lambda f, m: messages.append((f, m)))
    request = TakeRequest(**{"engine": "exomni", "mode": "say", "text": LINE, "fps": 30.0, "seed": 1, **fields})
    take = engine.make_take(request, progress)
    return take, messages


def _frames_for(units) -> int:
    n = sum(1 for u in units if u > 0)
    return math.floor(n * (1 / 12.5) * 30)


def test_say_take_frames_follow_units(engine):
    take, messages = _take(engine)
    assert take.engine == "exomni" and take.mode == "say" and take.text == LINE
    assert len(take.units) > 0 and take.unit_rate == 12.5
    assert take.frames == take.meta["model_frames"] == _frames_for(take.units)
    assert take.frames == math.floor(len(take.units) / 12.5 * 30)  # unit 0 is out of the tiny model's reach
    assert take.fps == 30.0 and take.weights.shape == (take.frames, 52)
    assert take.weights.min() >= 0.0 and take.weights.max() <= 1.0 and take.weights.std() > 0
    assert [f for f, _ in messages] == sorted(f for f, _ in messages) and messages[-1][0] == 1.0


def test_the_first_take_loads_the_model_and_later_ones_reuse_it(tiny):
    engine = ExomniEngine(checkpoint=str(tiny), device="cpu")
    assert not engine.loaded and engine.describe()["state"] == "not loaded"
    first, messages = _take(engine)
    assert engine.loaded and engine.describe()["state"] == "ready"
    assert 0 < first.timings["load"] <= first.timings["total"]
    assert any("loading" in m for _, m in messages)
    second, _ = _take(engine)
    assert "load" not in second.timings
    assert second.units == first.units and np.array_equal(second.weights, first.weights)


def test_say_resampled_to_the_requested_rate(engine):
    at30, _ = _take(engine, seed=4)
    at24, _ = _take(engine, seed=4, fps=24.0)
    assert at24.units == at30.units and at24.fps == 24.0
    assert at24.frames == max(1, round(at30.frames / 30 * 24))
    assert np.allclose(at24.weights[0], at30.weights[0])


def test_chat_take_has_the_reply(engine):
    take, _ = _take(engine, mode="chat", text="What is your name?", options={"max_new_tokens": 10})
    reply = take.meta["reply"]
    assert reply and take.text == reply and take.meta["prompt"] == "What is your name?"
    assert take.meta["text_stop"] in ("eos", "max_new_tokens")
    assert take.frames == _frames_for(take.units) > 0


def test_seed_reproduces_a_take(engine):
    a, _ = _take(engine, mode="chat", text="Tell me something.", seed=11, options={"max_new_tokens": 8})
    b, _ = _take(engine, mode="chat", text="Tell me something.", seed=11, options={"max_new_tokens": 8})
    c, _ = _take(engine, mode="chat", text="Tell me something.", seed=12, options={"max_new_tokens": 8})
    assert a.text == b.text and a.units == b.units and np.array_equal(a.weights, b.weights)
    assert (a.text, a.units) != (c.text, c.units)


def test_greedy_ignores_the_seed(engine):
    a, _ = _take(engine, seed=1, options={"greedy": True})
    b, _ = _take(engine, seed=2, options={"greedy": True})
    assert a.units == b.units and a.meta["sampling"]["units"] == "greedy"


def test_mouth_only_keeps_mouth_channels(engine):
    take, _ = _take(engine, seed=3, mouth_only=True)
    others = [i for i, name in enumerate(ARKIT_52) if name not in MOUTH_CHANNELS]
    assert not take.weights[:, others].any() and take.weights.any()


def test_without_decoder_the_note_says_so(engine):
    take, _ = _take(engine, seed=5)
    assert not take.has_audio
    assert "no audio" in take.meta["note"] and "decoder" in take.meta["note"]


@pytest.mark.parametrize("options, match", [
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"top_p": 0}, "top_p must be a number above 0"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a whole number from 1 to 2048"),
    ({"greedy": "yes"}, "greedy must be true or false"),
])
def test_bad_options_are_refused(engine, options, match):
    with pytest.raises(EngineError, match=match):
        _take(engine, mode="chat", options=options)


def test_bad_requests(engine):
    with pytest.raises(EngineError, match="type a line"):
        _take(engine, text="   ")
    with pytest.raises(EngineError, match="no mode 'lipsync'"):
        _take(engine, mode="lipsync")


def test_cancel_stops_the_take(engine):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3

    request = TakeRequest(engine="exomni", mode="say", text=LINE, seed=1)
    with pytest.raises(Cancelled):
        engine.make_take(request, Progress(lambda f, m: None, cancelled))


def test_spoken_prompt_is_spliced_in(engine, tmp_path):
    import soundfile as sf

    t = np.arange(8000) / 16000.0
    path = tmp_path / "prompt.wav"
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    take, _ = _take(engine, mode="chat", text="", audio_path=str(path), options={"max_new_tokens": 6})
    assert take.meta["spoken_prompt"] and take.meta["reply"] and take.frames > 0
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(EngineError, match="cannot read bad.wav"):
        _take(engine, mode="chat", text="", audio_path=str(tmp_path / "bad.wav"))


def test_audio_from_the_decoder(tiny, tmp_path):
    decoder_pkg = pytest.importorskip("backend.models.audio_decoder")
    folder = decoder_pkg.random_decoder(decoder_pkg.tiny_config(), seed=0).save(tmp_path / "decoder")
    engine = ExomniEngine(checkpoint=str(tiny), decoder=str(folder), device="cpu")
    take, _ = _take(engine, seed=2)
    assert take.has_audio and "note" not in take.meta and "audio" in take.timings
    assert abs(take.duration - len(take.units) / 12.5) < 0.05


def test_unavailable_without_checkpoint(monkeypatch):
    monkeypatch.delenv("EXOMNI_CHECKPOINT", raising=False)
    engine = ExomniEngine()
    a = engine.availability()
    assert not a.available and "EXOMNI_CHECKPOINT" in a.reason and "make-tiny-checkpoint" in a.reason
    assert engine.describe()["available"] is False
    with pytest.raises(EngineError) as err:
        _take(engine)
    assert err.value.status == 503


def test_unavailable_with_a_wrong_folder_or_device(tmp_path, tiny):
    a = ExomniEngine(checkpoint=str(tmp_path)).availability()
    assert not a.available and "config.json" in a.reason
    if not torch.cuda.is_available():
        a = ExomniEngine(checkpoint=str(tiny), device="cuda").availability()
        assert not a.available and "CUDA" in a.reason


def test_checkpoint_from_the_environment(monkeypatch, tiny):
    monkeypatch.setenv("EXOMNI_CHECKPOINT", str(tiny))
    assert ExomniEngine(device="cpu").availability().available


def test_not_enough_memory(monkeypatch, tiny):
    import backend.models.exomni.loading as loading

    monkeypatch.setattr(loading, "free_memory_bytes", lambda device: 1024)
    a = ExomniEngine(checkpoint=str(tiny), device="cpu").availability()
    assert not a.available and "GiB" in a.reason and "memory" in a.reason


def test_preload_reports_loading_then_serves(monkeypatch, tiny):
    import threading

    import backend.models.exomni.loading as loading

    reached, gate = threading.Event(), threading.Event()
    real = loading.load_exomni

    def held_back(*args, progress=None, **kwargs):  # the real loader, held at its first progress report
        progress(0.5, "loading weights 2/3")
        reached.set()
        gate.wait(30)
        return real(*args, progress=progress, **kwargs)

    monkeypatch.setattr(loading, "load_exomni", held_back)
    engine = ExomniEngine(checkpoint=str(tiny), device="cpu")
    assert engine.describe()["state"] == "not loaded"
    thread = engine.preload()
    assert engine.preload() is thread
    try:
        assert reached.wait(30)
        a = engine.availability()
        assert not a.available and "loading (45%: loading weights 2/3)" in a.reason and "try again" in a.reason
        d = engine.describe()
        assert d["state"] == "loading" and d["progress"] == 0.45 and d["available"] is False
        with pytest.raises(EngineError) as err:
            _take(engine)
        assert err.value.status == 503 and "try again in a moment" in str(err.value)
    finally:
        gate.set()
        thread.join(60)
    assert engine.describe()["state"] == "ready" and engine.availability().available
    take, _ = _take(engine)
    assert "load" not in take.timings and take.frames > 0  # loaded before the take, not by it


def test_preload_failure_is_reported(tmp_path, tiny):
    import shutil

    folder = shutil.copytree(tiny, tmp_path / "ckpt")
    shard = sorted(folder.glob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:100])  # an interrupted download
    engine = ExomniEngine(checkpoint=str(folder), device="cpu")
    assert engine.availability().available  # the folder looks complete until the weights are read
    engine.preload().join(60)
    d = engine.describe()
    assert d["state"] == "failed" and d["available"] is False
    assert "cannot be read" in d["reason"]
    assert "download them again" in d["reason"]


def test_sub_model_folders_from_the_command_line(tmp_path, tiny, monkeypatch):
    import json
    import shutil

    from backend.cli import build_parser
    from backend.commands._common import make_registry

    for var in ("EXOMNI_SPEECH_ENCODER", "EXOMNI_SPEECH_GENERATOR"):
        monkeypatch.delenv(var, raising=False)
    folder = shutil.copytree(tiny, tmp_path / "ckpt")
    encoder = shutil.move(str(folder / "speech_encoder"), str(tmp_path / "whisper"))
    generator = shutil.move(str(folder / "speech_generator"), str(tmp_path / "qwen3"))
    config = json.loads((folder / "config.json").read_text())
    config.update(pretrain_speech_encoder_weights="openai/not-here", pretrain_speech_generator_weights="Qwen/not-here")
    (folder / "config.json").write_text(json.dumps(config))

    def engine(*extra):
        args = build_parser().parse_args(["take", "--out", str(tmp_path / "t"), "--exomni-checkpoint", str(folder),
                                          "--device", "cpu", *extra])
        return make_registry(args).get("exomni")

    a = engine().availability()
    assert not a.available and "openai/not-here" in a.reason and "EXOMNI_SPEECH_ENCODER" in a.reason
    a = engine("--exomni-speech-encoder", encoder).availability()
    assert not a.available and "Qwen/not-here" in a.reason and "EXOMNI_SPEECH_GENERATOR" in a.reason
    both = engine("--exomni-speech-encoder", encoder, "--exomni-speech-generator", generator)
    assert both.availability().available
    take, _ = _take(both, seed=6)
    assert take.frames > 0
    monkeypatch.setenv("EXOMNI_SPEECH_ENCODER", encoder)
    monkeypatch.setenv("EXOMNI_SPEECH_GENERATOR", generator)
    assert engine().availability().available  # the defaults come from the environment


def test_head_motion_from_the_models_mouth_and_the_mood_recorded_as_its_layer(engine):
    from exomni_blender.core import face

    take, _ = _take(engine, seed=5, mood="angry", head_motion=1.5)
    rotation = face.head_rotation(take.meta)
    assert rotation is not None and rotation.shape == (take.frames, 3)
    assert 0.0 < np.abs(rotation).max() <= face.HEAD_LIMIT_DEG
    assert face.mood_of(take.meta) == ("angry", 1.0) and "ignored" not in take.meta  # the layer to split off
    again, _ = _take(engine, seed=5, mood="angry", head_motion=1.5)
    assert np.array_equal(face.head_rotation(again.meta), rotation)  # seeded
    for fields in ({"head_motion": 0.0}, {"mouth_only": True}):
        assert face.head_rotation(_take(engine, seed=5, **fields)[0].meta) is None, fields


def test_speech_marks_find_accents_at_the_widest_openings_and_pauses_between_phrases():
    from exomni_blender.core import face
    from exomni_blender.core.arkit import INDEX

    fps = 30.0
    t = np.arange(int(3.0 * fps)) / fps
    jaw = np.zeros_like(t)
    for centre, height in ((0.5, 0.6), (1.0, 0.2), (2.3, 0.5)):  # two phrases, a 0.7 s pause between
        jaw += height * np.clip(1 - np.abs(t - centre) / 0.15, 0, None)
    jaw[(t > 1.2) & (t < 1.9)] = 0.0
    weights = np.zeros((t.size, 52), np.float32)
    weights[:, INDEX["jawOpen"]] = jaw
    accents, ends = face.speech_marks(weights, fps)
    assert [round(a, 1) for a, _ in accents] == [0.5, 2.3]  # 0.2 is below 0.4 of the widest opening
    assert len(ends) == 2 and 1.1 <= ends[0] <= 1.2 and ends[1] > 2.4  # the pause, and the rest after the line
