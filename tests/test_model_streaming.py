"""Streaming audio in the `exomni` engine: audio chunks while the speech generator runs, offline length,
close to offline decoding away from the seams, and `stream_audio: false` = offline decoding exactly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.engines.base import EngineError, Progress, TakeRequest  # noqa: E402
from backend.engines.exomni import ExomniEngine, TakeAudio  # noqa: E402
from backend.models.audio_decoder import StreamSettings, load_decoder, random_decoder, tiny_config  # noqa: E402
from backend.models.audio_decoder.streaming import resolve  # noqa: E402
from backend.models.exomni.tiny import make_tiny_checkpoint  # noqa: E402

# long enough for several decoder chunks: the tiny model speaks about two units per token
LINE = "Good morning, everyone! Today we are going to talk about how faces move when people speak."
SEED = 3


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("streaming")
    checkpoint = make_tiny_checkpoint(root / "ckpt", seed=0)
    decoder = random_decoder(tiny_config(), seed=0).save(root / "decoder")
    return checkpoint, decoder


@pytest.fixture(scope="module")
def engine(folders):
    checkpoint, decoder = folders
    return ExomniEngine(checkpoint=str(checkpoint), decoder=str(decoder), device="cpu")


@pytest.fixture(scope="module")
def decoder(folders):
    return load_decoder(folders[1])


def _take(engine, events=None, **options):
    events = [] if events is None else events
    progress = Progress(lambda f, m: events.append(("progress", f, m)))
    request = TakeRequest(engine="exomni", mode="say", text=LINE, fps=30.0, seed=SEED, options=options)
    return engine.make_take(request, progress)


@pytest.fixture(scope="module")
def streamed(engine):
    """A streamed take and the events around it: progress messages and each speech-generator step."""
    events = []
    unit_head = engine.load().model.model.speech_generator.llm_decoder
    hook = unit_head.register_forward_hook(lambda *_: events.append(("step",)))
    try:
        take = _take(engine, events)
    finally:
        hook.remove()
    return take, events


@pytest.fixture(scope="module")
def offline(engine):
    return _take(engine, stream_audio=False)


def test_streamed_take_has_the_offline_length(streamed, offline, decoder):
    take, _ = streamed
    assert take.meta["audio_decoding"] == "streamed" and offline.meta["audio_decoding"] == "offline"
    assert take.units == offline.units and len(take.units) > 3 * 20  # several decoder chunks
    assert take.audio.dtype == np.float32 and take.sample_rate == decoder.sample_rate == 22050
    assert len(take.audio) == len(offline.audio) == decoder.mel_frames(len(take.units)) * 256
    assert abs(take.duration - take.frames / take.fps) < 0.05  # the curves last as long as the audio


def test_first_audio_is_ready_before_the_last_unit(streamed, offline, decoder):
    take, events = streamed
    steps = [i for i, e in enumerate(events) if e[0] == "step"]
    ready = [i for i, e in enumerate(events) if e[0] == "progress" and "audio ready" in e[2]]
    assert len(steps) >= len(take.units) and len(ready) >= 3
    # the first chunk comes once the decoder's first chunk of units exists; every later unit was
    # generated after it
    first_chunk = resolve(decoder, StreamSettings()).first_chunk_units
    later_steps = sum(1 for i in steps if i > ready[0])
    assert later_steps >= len(take.units) - (first_chunk + 1), (later_steps, len(take.units))
    seconds = [float(events[i][2].split("; ")[1].split(" s ")[0]) for i in ready]
    assert seconds == sorted(seconds) and 0 < seconds[0] < first_chunk / 12.5 < take.duration
    fractions = [e[1] for e in events if e[0] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # the take's timings say so too: offline, the first audio is the whole audio, at the end
    assert 0 < take.timings["first_audio"] < take.timings["total"]
    assert take.timings["first_audio"] < take.timings["total"] - take.timings["speech_and_face"] / 2
    assert offline.timings["first_audio"] == pytest.approx(offline.timings["total"], abs=0.05)


def test_streamed_and_offline_takes_agree_away_from_the_seams(streamed, offline, decoder):
    take, _ = streamed
    # the take's audio is the stream of its units, unit by unit, as the speech generator handed them over
    again = TakeAudio(decoder, SEED, stream=True)
    for unit in take.units:
        again.push(unit)
    audio, _ = again.finish(take.units)
    np.testing.assert_array_equal(take.audio, audio)
    # ... which is the decoder's own stream of those units
    np.testing.assert_array_equal(audio, np.concatenate(list(decoder.stream([[u] for u in take.units], seed=SEED))))

    s = resolve(decoder, StreamSettings())
    seams = [decoder.mel_frames(n) for n in range(s.first_chunk_units, len(take.units), s.chunk_units)]
    mel = torch.cat(again.mel_pieces, dim=-1)
    away = np.ones(mel.shape[-1], bool)
    for f in seams:
        away[max(0, f - 2 * s.mel_overlap_frames - s.vocoder_context_frames):
             f + s.mel_overlap_frames + s.vocoder_context_frames] = False
    assert away.sum() > away.size // 4

    def rel(a, b, keep):
        return float(np.linalg.norm(a[..., keep] - b[..., keep]) / np.linalg.norm(b[..., keep]))

    # the mel, with the decoder's own streaming tolerance: the stream misses only units that have not
    # arrived yet, while another noise seed changes everything
    offline_mel = decoder.units_to_mel(take.units, seed=SEED)[0].numpy()
    other_mel = decoder.units_to_mel(take.units, seed=SEED + 1)[0].numpy()
    agreement, baseline = rel(mel.numpy(), offline_mel, away), rel(other_mel, offline_mel, away)
    assert agreement < 0.1 and agreement < 0.1 * baseline, (agreement, baseline)

    # the audio: the random vocoder's harmonic source dominates it, so another seed changes it less
    samples = np.repeat(away, 256)
    other = decoder.decode(take.units, seed=SEED + 1)[0]
    agreement, baseline = rel(take.audio, offline.audio, samples), rel(other, offline.audio, samples)
    assert agreement < 0.1 and agreement < 0.5 * baseline, (agreement, baseline)


def test_stream_audio_false_is_offline_decoding_exactly(offline, decoder):
    audio, sample_rate = decoder.decode(offline.units, seed=SEED)
    assert sample_rate == offline.sample_rate
    np.testing.assert_array_equal(offline.audio, audio)


def test_stream_audio_option_must_be_a_boolean(engine):
    with pytest.raises(EngineError, match="stream_audio must be true or false"):
        _take(engine, stream_audio="yes")


def test_a_failing_stream_falls_back_to_offline_decoding(decoder):
    units = list(range(1, 30))
    good = TakeAudio(decoder, seed=1, stream=True)
    for u in units:
        good.push(u)
    assert good.streaming and good.chunks and good.first_audio_at is not None
    audio, _ = good.finish(units)
    assert good.streamed and len(audio) == decoder.audio_samples(len(units))

    broken = TakeAudio(decoder, seed=1, stream=True)
    for u in units[:10] + [10_000] + units[10:]:  # an id outside the decoder's vocabulary
        broken.push(u)  # never raises into the speech generator's loop
    assert not broken.streaming and isinstance(broken.stream_error, ValueError) and not broken.chunks
    audio, _ = broken.finish(units)  # the offline decode of the units the take kept
    assert not broken.streamed
    np.testing.assert_array_equal(audio, decoder.decode(units, seed=1)[0])


def test_bench_prints_first_audio_streamed_and_offline_side_by_side(capsys):
    from backend.cli import main

    status = main(["bench", "model", "--tiny-decoder", "--repeat", "1", "--max-new-tokens", "8",
                   "--line", "Hello there, how are you?"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "say stream" in out and "chat offline" in out
    number = r"(\d+(?:\.\d+)?)"
    rows = {}
    for label in ("time to first audio (s)", "take total with audio (s)", "decoder time (s)", "audio per take (s)"):
        match = re.search(rf"^{re.escape(label)}\s+" + r"\s+".join([number] * 4) + r"\s*$", out, re.M)
        assert match, f"no row {label!r} in:\n{out}"
        rows[label] = [float(g) for g in match.groups()]
        assert all(v > 0 for v in rows[label]), (label, rows[label])
    say_stream, say_offline, chat_stream, chat_offline = rows["audio per take (s)"]
    assert say_stream == say_offline and chat_stream == chat_offline  # same seeds, same units, same length
    # offline, the first audio is the whole audio
    first, total = rows["time to first audio (s)"], rows["take total with audio (s)"]
    assert first[1] == pytest.approx(total[1], abs=1e-3) and first[3] == pytest.approx(total[3], abs=1e-3)
    assert re.search(rf"^first audio, offline / streamed \(x\)\s+{number}\s+{number}\s*$", out, re.M)
