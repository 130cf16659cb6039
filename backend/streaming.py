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
from pathlib import Path

import numpy as np

from exomni_blender.core import contract as C
from exomni_blender.core.audio_codec import to_pcm16, wav_pcm16  # noqa: F401 (wav_pcm16: read from here too)


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


def stored_take_events(folder, audio_from: int = 0, frames_from: int = 0) -> list:
    """The events of a stored take folder from sample `audio_from` and frame `frames_from` on (what a
    client lacks). The audio goes as audio.wav's own bytes: decoding and encoding again could differ."""
    from exomni_blender.core.exchange.a2f import read_a2f
    from exomni_blender.core.take import AUDIO_WAV, BLENDSHAPES_JSON

    folder = Path(folder)
    events = []
    wav = folder / AUDIO_WAV
    if wav.is_file():
        rate, pcm = wav_pcm16(wav.read_bytes())
        if len(pcm) // 2 > audio_from:
            events.append(pcm_event(pcm[2 * audio_from:], audio_from, rate))
    fps, weights = read_a2f(folder / BLENDSHAPES_JSON)
    if weights.shape[0] > frames_from:
        events.append(frames_event(weights[frames_from:], frames_from, fps))
    return events


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
