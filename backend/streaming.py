"""Take pieces as events of the take stream (contract.JOB_STREAM): the one encoder of its events.

The engine worker turns each piece an engine makes into event payloads (`make_take_streamed`,
`piece_events`); the HTTP endpoint (backend.server.stream) reads whatever a finished job left in the
store the same way (`stored_take_events`), so a client gets the same bytes whichever way a piece
reached it: the audio as the 16-bit samples audio.wav holds, the frames as the rounded values
blendshapes.json holds. Nothing here knows HTTP: the endpoint frames these payloads as server-sent
events, and the worker imports this module, never the server.
"""

from __future__ import annotations

import base64
import inspect
import time
import wave
from pathlib import Path

import numpy as np

from exomni_blender.core import contract as C
from exomni_blender.core.audio_codec import WavFormatError, to_pcm16, wav_pcm16  # noqa: F401 (wav_pcm16: read from here too)


def pcm16(samples: np.ndarray) -> bytes:
    """The bytes `take.encode_wav` stores for these samples (the one PCM16 codec's)."""
    return to_pcm16(samples)


def stored_frames(frames: np.ndarray) -> bytes:
    """float32 little-endian rows holding the values the Audio2Face JSON stores."""
    rounded = np.round(np.asarray(frames, np.float32).astype(np.float64), C.STREAM_DECIMALS)
    return rounded.astype("<f4").tobytes()


def audio_event(samples: np.ndarray, start: int, sample_rate: int, elapsed: float = 0.0) -> tuple:
    return pcm_event(pcm16(np.asarray(samples, np.float32).reshape(-1)), start, sample_rate, elapsed)


def pcm_event(pcm: bytes, start: int, sample_rate: int, elapsed: float = 0.0) -> tuple:
    return C.STREAM_AUDIO, {"start": int(start), "sample_rate": int(sample_rate), "count": len(pcm) // 2,
                            "elapsed": round(float(elapsed), 4), "pcm16": base64.b64encode(pcm).decode("ascii")}


def frames_event(frames: np.ndarray, start: int, fps: float, elapsed: float = 0.0) -> tuple:
    frames = np.asarray(frames, np.float32)
    return C.STREAM_FRAMES, {"start": int(start), "fps": float(fps), "count": int(frames.shape[0]),
                             "channels": int(frames.shape[1]), "elapsed": round(float(elapsed), 4),
                             "f32": base64.b64encode(stored_frames(frames)).decode("ascii")}


def piece_events(piece) -> list:
    """The events of one engine piece (backend.engines.exomni.TakePiece, or anything with its fields)."""
    events = []
    if piece.audio.size:
        events.append(audio_event(piece.audio, piece.audio_start, piece.sample_rate, piece.elapsed))
    if piece.frames.shape[0]:
        events.append(frames_event(piece.frames, piece.frame_start, piece.fps, piece.elapsed))
    return events


REPLAY_SECONDS = 0.5  # a replayed event carries this much of the take: memory per client stays small


def stored_take_events(folder, audio_from: int = 0, frames_from: int = 0):
    """The events of a stored take folder from sample `audio_from` and frame `frames_from` on (what a
    client lacks), in pieces of REPLAY_SECONDS, audio and frames in time order. The audio goes as
    audio.wav's own bytes (decoding and encoding again could differ), read piece by piece.

    The files are opened here, before the first event is asked for: a caller that holds the store's
    reading lock only for this call may let retention delete the folder meanwhile (an open file stays
    readable), and a client that stalls never holds the lock."""
    from exomni_blender.core.exchange.a2f import read_a2f
    from exomni_blender.core.take import AUDIO_WAV, BLENDSHAPES_JSON

    folder = Path(folder)
    fps, weights = read_a2f(folder / BLENDSHAPES_JSON)
    wav = _open_take_wav(folder / AUDIO_WAV)
    return _replay(wav, audio_from, weights, frames_from, fps)


def _open_take_wav(path: Path):
    if not path.is_file():
        return None
    reader = wave.open(str(path), "rb")
    if (reader.getnchannels(), reader.getsampwidth(), reader.getcomptype()) != (1, 2, "NONE"):
        reader.close()
        raise WavFormatError(f"{path.name}: a take's audio is mono 16-bit PCM")
    return reader


def _replay(wav, audio_from: int, weights: np.ndarray, frames_from: int, fps: float):
    try:
        rate = wav.getframerate() if wav is not None else 0
        samples = wav.getnframes() if wav is not None else 0
        audio_at, frames_at = audio_from, frames_from
        if wav is not None and audio_at < samples:
            wav.setpos(audio_at)
        step_s, step_f = max(1, int(rate * REPLAY_SECONDS)), max(1, int(round(fps * REPLAY_SECONDS)))
        while audio_at < samples or frames_at < weights.shape[0]:
            # Whichever lags in time goes next, so a late client sees sound and face advance together.
            audio_due = audio_at < samples and (frames_at >= weights.shape[0] or audio_at / rate <= frames_at / fps)
            if audio_due:
                pcm = wav.readframes(step_s)
                if not pcm:
                    samples = audio_at  # a file shorter than its header says: stop there
                    continue
                yield pcm_event(pcm, audio_at, rate)
                audio_at += len(pcm) // 2
            else:
                yield frames_event(weights[frames_at:frames_at + step_f], frames_at, fps)
                frames_at += step_f
    finally:
        if wav is not None:
            wav.close()


def make_take_streamed(engine, request, progress):
    """`engine.make_take`, its output published as stream events through `progress.publish` as it is
    made: piece by piece when the engine streams (an `on_piece` parameter), else the take at once."""
    publish = getattr(progress, "publish", None)
    if publish is None:
        return engine.make_take(request, progress)
    report, started = progress._report, time.perf_counter()

    def report_and_publish(fraction, message):  # progress in the stream too, in order with the pieces
        if report is not None:
            report(fraction, message)
        publish((C.STREAM_PROGRESS, {"progress": round(float(fraction), 4), "message": message,
                                     "elapsed": round(time.perf_counter() - started, 4)}))

    progress._report = report_and_publish
    if "on_piece" in inspect.signature(engine.make_take).parameters:
        def on_piece(piece):
            for event in piece_events(piece):
                publish(event)
        return engine.make_take(request, progress, on_piece=on_piece)
    take = engine.make_take(request, progress)
    progress.check()
    if take.has_audio:
        publish(audio_event(take.audio, 0, take.sample_rate))
    if take.weights.shape[0]:
        publish(frames_event(take.weights, 0, take.fps))
    return take
