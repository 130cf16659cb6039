"""The take stream's client side: a job's audio and frames as the server makes them (no bpy here).

`stream_job(client, job_id)` reads GET contract.JOB_STREAM (server-sent events) and yields
`StreamEvent`s: audio as float32 samples, frames as float32 [k, 52], progress, then the end.
`StreamedTake` gathers them, in order, into the audio and weights the take will have. A stream that
stays silent past `stall_s` (the server says something every STREAM_KEEPALIVE_S) raises StreamLost:
the caller falls back to polling the job.
"""

import base64
import json
from dataclasses import dataclass, field

import numpy as np
import requests

from ..core import contract as C
from ..core.audio_codec import from_pcm16
from .client import BackendError, Client

STALL_S = 4 * C.STREAM_KEEPALIVE_S


class StreamLost(BackendError):
    """The stream broke or went silent; the job itself may still be running."""

    code = "stream_lost"


@dataclass
class StreamEvent:
    kind: str  # contract.STREAM_AUDIO, STREAM_FRAMES, STREAM_PROGRESS or STREAM_END
    start: int = 0  # first sample or frame
    rate: float = 0.0  # sample rate or fps
    data: np.ndarray = None  # float32 samples, or float32 [k, channels] frames
    elapsed: float = 0.0  # seconds since the engine began the take
    status: dict = field(default_factory=dict)  # progress or the final job status


def decode(name: str, data: dict) -> StreamEvent:
    if name == C.STREAM_AUDIO:
        pcm = np.frombuffer(base64.b64decode(data["pcm16"]), "<i2")
        return StreamEvent(name, int(data["start"]), float(data["sample_rate"]), pcm.copy(),
                           float(data.get("elapsed", 0.0)))
    if name == C.STREAM_FRAMES:
        rows = np.frombuffer(base64.b64decode(data["f32"]), "<f4").reshape(int(data["count"]), int(data["channels"]))
        return StreamEvent(name, int(data["start"]), float(data["fps"]), rows.astype(np.float32),
                           float(data.get("elapsed", 0.0)))
    return StreamEvent(name, status=data)


def stream_job(client: Client, job_id: str, stall_s: float = STALL_S):
    """Yield the job's StreamEvents until its STREAM_END (the last one yielded). Raises StreamLost."""
    response = client._request("GET", C.job_stream_path(job_id), headers={"Accept": "text/event-stream"},
                               stream=True, timeout=(client.timeout[0], stall_s))
    name, lines = "", []
    try:
        for raw in response.iter_lines(chunk_size=None, decode_unicode=False):
            line = raw.decode("utf-8")
            if not line:  # the blank line ends an event
                if name and lines:
                    event = decode(name, json.loads("\n".join(lines)))
                    yield event
                    if event.kind == C.STREAM_END:
                        return
                name, lines = "", []
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                lines.append(line[5:].lstrip())
    except (requests.exceptions.RequestException, ValueError, KeyError) as exc:
        raise StreamLost(f"the live stream from {client.base_url} broke ({type(exc).__name__})") from None
    finally:
        response.close()
    raise StreamLost(f"the live stream from {client.base_url} ended before the take did")


class StreamedTake:
    """The take so far: PCM samples (int16, as audio.wav stores them) and frames, both contiguous."""

    def __init__(self):
        self.pcm = np.zeros(0, np.int16)
        self.sample_rate = 0
        self.frames = np.zeros((0, 0), np.float32)
        self.fps = 0.0
        self.first_audio_elapsed = None
        self.first_frame_elapsed = None

    def add(self, event: StreamEvent) -> None:
        if event.kind == C.STREAM_AUDIO:
            if event.start > self.pcm.size:
                raise StreamLost(f"audio jumped from sample {self.pcm.size} to {event.start}")
            self.pcm = np.concatenate([self.pcm[:event.start], event.data])  # a lower start replaces
            self.sample_rate = int(event.rate)
            if self.first_audio_elapsed is None:
                self.first_audio_elapsed = event.elapsed
        elif event.kind == C.STREAM_FRAMES:
            have = self.frames.shape[0]
            if event.start > have:
                raise StreamLost(f"frames jumped from {have} to {event.start}")
            kept = self.frames[:event.start] if have else np.zeros((0, event.data.shape[1]), np.float32)
            self.frames = np.concatenate([kept, event.data])
            self.fps = event.rate
            if self.first_frame_elapsed is None:
                self.first_frame_elapsed = event.elapsed

    @property
    def audio(self) -> np.ndarray:
        """float32 samples, as `take.decode_wav` reads the stored audio.wav."""
        return from_pcm16(self.pcm)
