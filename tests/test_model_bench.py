"""`exomni bench model` on the tiny checkpoint, and the released-size model's configuration."""

from __future__ import annotations

import math
import re

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.cli import main  # noqa: E402
from backend.models.exomni import released  # noqa: E402
from backend.models.exomni.tiny import END_OF_TEXT, IM_END, tiny_configs  # noqa: E402

NUMBER = r"(-?\d+(?:\.\d+)?)"


def _value(text: str, label: str, columns: int = 1) -> list[float]:
    match = re.search(rf"^{re.escape(label)}\s+" + r"\s+".join([NUMBER] * columns) + r"\s*$", text, re.M)
    assert match, f"no line {label!r} with {columns} number(s) in:\n{text}"
    return [float(g) for g in match.groups()]


def test_bench_model_on_a_tiny_checkpoint_prints_positive_numbers(capsys):
    status = main(["bench", "model", "--repeat", "1", "--max-new-tokens", "8", "--line", "Hello there, how are you?"])
    out = capsys.readouterr().out
    assert status == 0, out
    for label in ("making the tiny checkpoint (s)", "load (s)", "peak CPU RSS after load (MiB)", "peak CPU RSS (MiB)"):
        assert _value(out, label)[0] > 0
    for label in ("time to first unit (s)", "units per second", "blendshape s per s of speech",
                  "LLM s (say: one pass; chat: the reply)", "units per take", "speech per take (s)"):
        say, chat = _value(out, label, 2)
        assert say > 0 and chat > 0, label
    reply = re.search(rf"^reply tokens per second\s+-\s+{NUMBER}\s*$", out, re.M)  # chat only
    assert reply and float(reply.group(1)) > 0
    say_units, _ = _value(out, "units per take", 2)
    say_speech, _ = _value(out, "speech per take (s)", 2)
    assert say_speech == pytest.approx(say_units / 12.5, abs=0.01)  # the tiny model never emits unit 0


def test_bench_model_refuses_clearly(capsys):
    assert main(["bench", "model", "--checkpoint", "x", "--released-size"]) == 2
    assert "either --checkpoint DIR or --released-size" in capsys.readouterr().err
    assert main(["bench", "model", "--llm", "8B"]) == 2
    assert "add --released-size" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["bench", "model", "--device", "cuda"]) == 2
        assert "CUDA was requested" in capsys.readouterr().err


def test_released_sizes_build_and_count():
    config = released.released_config()
    assert config.text.hidden_size == 4096 and config.text.num_hidden_layers == 36
    assert config.speech_encoder.whisper.d_model == 1280 and config.speech_encoder.num_mel_bins == 128
    assert config.speech_encoder.mel_frames == 3000
    assert config.speech_generator.dim == config.speech_generator.decoder.hidden_size == 1024
    assert config.speech_generator.unit_vocab_size == 16384
    assert config.blendshape_generator.speech_hidden_size == 1024
    count = released.parameter_count(config)
    assert 9.0e9 < count < 10.0e9  # Qwen3-8B (8.2 B) + Whisper encoder (0.64 B) + speech generator (0.66 B) + faces
    smaller = released.parameter_count(released.released_config("0.6B"))
    assert smaller < count - 7e9  # a tied 0.6B LLM in place of the untied 8B one
    with pytest.raises(ValueError, match="unknown Qwen3 size"):
        released.released_config_dicts("3B")


def test_released_size_is_refused_without_the_memory(capsys, monkeypatch):
    import backend.models.exomni.loading as loading

    monkeypatch.setattr(loading, "free_memory_bytes", lambda device: 8 * 2**30)
    need = released.memory_need(released.released_config(), torch.device("cpu"), torch.float32)
    assert not need.fits and need.need_bytes > 36 * 2**30  # 9.5 B parameters in float32
    assert main(["bench", "model", "--released-size", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "GiB of CPU memory" in err and "8.0 GiB is free" in err and "--device cuda" in err


def test_random_model_is_built_on_the_device_in_its_dtype():
    text, whisper, generator = tiny_configs(448, {END_OF_TEXT: 400, IM_END: 402})
    from backend.models.exomni.configuration import ExomniConfig

    config = ExomniConfig.from_dicts(text, whisper, generator)
    loaded = released.random_released("cpu", torch.bfloat16, config=config)
    tensors = list(loaded.model.parameters())
    assert all(t.dtype == torch.bfloat16 and t.device.type == "cpu" for t in tensors)
    assert torch.get_default_dtype() == torch.float32  # restored after the build
    rotary = dict(loaded.model.named_buffers())["model.rotary_emb.inv_freq"]
    assert rotary.dtype == torch.float32 and torch.isfinite(rotary).all()
    from backend.models.exomni.pipeline import ExomniPipeline

    performance = ExomniPipeline(loaded).say("Hello there, how are you today?")
    assert performance.units
    assert performance.blendshapes.shape == (math.floor(len(performance.units) * (1 / 12.5) * 30), 52)
    assert performance.unit_stop == "eos"  # steered like the tiny model: stops soon after its minimum


def test_bench_model_stream_prints_first_audio_and_face_before_the_take_ends(capsys):
    import argparse

    from backend.benchmarks import model as bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--repeat", "1", "--max-new-tokens", "4", "--stream", "--device", "cpu",
                              "--line", "Good morning, everyone! Today we talk about how faces move."])
    assert bench.run(args) == 0
    out = capsys.readouterr().out
    first_audio = _value(out, "request -> first audio chunk (s)")[0]
    first_face = _value(out, "request -> first face frame (s)")[0]
    rtf = _value(out, "real-time factor (take s / audio s)")[0]
    assert 0 < first_face and 0 < first_audio and rtf > 0 and _value(out, "audio chunk jitter (s, std of gaps)")[0] >= 0
    assert _value(out, "audio chunks per take")[0] >= 2 and _value(out, "face chunks per take")[0] >= 2
