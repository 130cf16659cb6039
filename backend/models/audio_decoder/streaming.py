"""Chunked decoding: audio comes out while units are still arriving, and sounds like offline decoding.

Flow: each chunk re-runs the flow over a window of recent units (the new ones plus `history_units`
before them). The window starts on an encoder block boundary (the block-causal encoder then sees what it
sees offline) and on a frame the estimator's down-sampling grid shares with offline decoding; frames map
to units at the nominal 12.5 Hz rate, the same for every window; the ODE's starting noise is addressed by
mel frame. Its last `mel_overlap_frames` frames are held back: the next chunk computes them again, with
more context, and the two versions are cross-faded. What streaming cannot see is the rest of the
utterance, which the flow's GroupNorm statistics and attention span offline; hence "close", not equal.

Vocoder: HiFT is convolutional apart from the running sine phase. Each step vocodes the finalised mel
with `vocoder_context_frames` of mel on either side and keeps only the middle, reuses the source
samples it already made for the left context (the source cache) and continues the harmonic phase from
where the last chunk ended, so streamed audio equals offline audio of the same mel: no seam at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch


@dataclass
class StreamSettings:
    first_chunk_units: int = 20  # units of the first flow run (1.6 s of speech)
    chunk_units: int = 30  # units of each later run
    history_units: int = 60  # earlier units each run sees again (more: closer to offline, slower)
    mel_overlap_frames: int = 24  # frames recomputed by the next chunk and cross-faded
    vocoder_context_frames: int = 0  # mel frames on each side of a vocoded stretch; 0: HiFT's reach

    def resolved(self, block: int, frames_per_unit: float, vocoder_reach: int, frame_grid: int = 1) -> "StreamSettings":
        """Chunk and history sizes rounded up to whole encoder blocks, the overlap kept below a chunk."""

        def blocks(n, default):
            n = n or default
            return max(block, int(math.ceil(n / block)) * block)

        first = blocks(self.first_chunk_units, 2 * block)
        chunk = blocks(self.chunk_units, 3 * block)
        overlap = max(0, min(int(self.mel_overlap_frames), int(min(first, chunk) * frames_per_unit) - 1))
        # the window must reach back over the held-back frames
        history = blocks(max(self.history_units, int(math.ceil((overlap + frame_grid) / frames_per_unit)) + 1), block)
        context = int(self.vocoder_context_frames) or vocoder_reach
        return StreamSettings(first, chunk, history, overlap, context)


def crossfade_weights(n: int) -> torch.Tensor:
    """Rising weights of the new version, strictly inside (0, 1), summing to one with the old one's."""
    x = (torch.arange(n, dtype=torch.float32) + 1) / (n + 1)
    return torch.sin(0.5 * math.pi * x) ** 2


class FlowStream:
    """Units in, finalised mel frames out (in order, each frame once)."""

    def __init__(self, decoder, settings: StreamSettings, deterministic: bool, seed: int):
        self.decoder = decoder
        self.s = settings
        self.deterministic = deterministic
        self.seed = seed
        self.block = decoder.config.flow.encoder.block_size
        self.frame_grid = 2 ** (len(decoder.config.flow.estimator.channels) - 1)
        self.units: list[int] = []
        self.done = 0  # units whose frames have been computed
        self.emitted = 0  # mel frames finalised
        self.tail: torch.Tensor | None = None  # held-back frames [emitted, emitted + overlap)

    def push(self, units) -> Iterator[torch.Tensor]:
        """Adds units; yields each new piece as soon as its flow run is done."""
        self.units.extend(int(u) for u in units)
        while True:
            size = self.s.first_chunk_units if self.done == 0 else self.s.chunk_units
            if len(self.units) - self.done <= size:  # keep at least one unit for finish()
                return
            yield self._run(self.done + size, final=False)

    def finish(self) -> Iterator[torch.Tensor]:
        if self.units and (self.done < len(self.units) or self.tail is not None):
            yield self._run(len(self.units), final=True)

    def _run(self, stop_unit: int, final: bool) -> torch.Tensor:
        d = self.decoder
        start_unit = max(0, (self.done - self.s.history_units) // self.block * self.block)
        # the estimator halves the frame rate at each level: start on offline's grid of the coarsest one
        grid = self.frame_grid
        f0, f1 = -(-d.mel_frames(start_unit) // grid) * grid, d.mel_frames(stop_unit)
        if f0 > self.emitted:
            raise RuntimeError("streaming window starts after the held-back frames: raise history_units")
        # a last window that spans the whole utterance is offline decoding: map frames as it does
        whole = final and start_unit == 0
        mel = d.units_to_mel(self.units[start_unit:stop_unit], deterministic=self.deterministic, seed=self.seed,
                             n_frames=f1 - f0, first_frame=f0, first_unit=None if whole else start_unit)[0]
        begin = self.emitted
        end = f1 if final else max(begin, f1 - self.s.mel_overlap_frames)
        piece = mel[:, begin - f0:end - f0].clone()
        if self.tail is not None and self.tail.size(-1):
            n = min(self.tail.size(-1), piece.size(-1))
            w = crossfade_weights(self.tail.size(-1))[:n].to(piece)
            piece[:, :n] = self.tail[:, :n] * (1 - w) + piece[:, :n] * w
        self.tail = None if final else mel[:, end - f0:f1 - f0].clone()
        self.emitted = end
        self.done = stop_unit
        return piece


class VocoderStream:
    """Finalised mel frames in, audio out: exactly what offline HiFT makes of the same mel."""

    def __init__(self, decoder, context: int, deterministic: bool, seed: int):
        self.d = decoder
        self.hift = decoder.hift
        self.context = context
        self.deterministic = deterministic
        self.seed = seed
        self.spf = decoder.hop_length
        h = decoder.config.hift.nb_harmonics
        self.mel = torch.zeros(1, decoder.n_mels, 0, device=decoder.device)
        self.base = 0  # global frame of self.mel[..., 0]
        self.done = 0  # frames vocoded
        self.source_cache = torch.zeros(1, 1, 0, device=decoder.device)  # source of frames [base, done)
        self.phase = torch.zeros(1, h + 1, dtype=torch.float64, device=decoder.device)  # cycles at `done`

    @torch.inference_mode()
    def push(self, mel: torch.Tensor | None, final: bool = False) -> np.ndarray:
        if mel is not None and mel.size(-1):
            self.mel = torch.cat([self.mel, mel.to(self.mel).unsqueeze(0) if mel.dim() == 2 else mel.to(self.mel)],
                                 dim=-1)
        total = self.base + self.mel.size(-1)
        target = total if final else total - self.context
        if target <= self.done:
            return np.zeros(0, dtype=np.float32)
        spf = self.spf
        left = self.done - self.base  # frames of left context in the buffer (their source is cached)
        window = self.mel
        f0 = self.hift.f0_predictor(window)[:, left:]
        n_now = target - self.done
        phases, noise = self.d.source_randomness(self.done * spf, total * spf, self.deterministic, self.seed)
        noise_now, noise_later = (None, None) if noise is None else (noise[..., :n_now * spf], noise[..., n_now * spf:])
        source_now, phase_at_target = self.hift.source(f0[:, :n_now], phases, noise_now, self.phase)
        source_later, _ = self.hift.source(f0[:, n_now:], phases, noise_later, phase_at_target)
        source = torch.cat([self.source_cache, source_now, source_later], dim=-1)
        wave = self.hift.generate(window, source)[0]
        audio = wave[left * spf:(left + n_now) * spf]

        # keep `context` frames of mel and source before the new `done` for the next window
        self.done = target
        keep_from = max(self.base, self.done - self.context)
        cut = keep_from - self.base
        self.source_cache = torch.cat([self.source_cache, source_now], dim=-1)[..., cut * spf:]
        self.mel = self.mel[..., cut:]
        self.base = keep_from
        self.phase = phase_at_target
        return audio.float().cpu().numpy()


def resolve(decoder, settings: StreamSettings) -> StreamSettings:
    f = decoder.config.flow
    frames_per_unit = decoder.sample_rate / decoder.hop_length / f.input_frame_rate
    return settings.resolved(f.encoder.block_size, frames_per_unit, decoder.hift.context_frames(),
                             2 ** (len(f.estimator.channels) - 1))


def stream_mel(decoder, unit_chunks: Iterable, settings: StreamSettings, deterministic: bool = False,
               seed: int = 0) -> Iterator[torch.Tensor]:
    """Unit chunks in, finalised mel pieces [n_mels, frames] out."""
    flow = FlowStream(decoder, resolve(decoder, settings), deterministic, seed)
    for chunk in unit_chunks:
        yield from flow.push(decoder.unit_tensor(chunk)[0].tolist())
    yield from flow.finish()


def stream_decode(decoder, unit_chunks: Iterable, settings: StreamSettings, deterministic: bool = False,
                  seed: int = 0) -> Iterator[np.ndarray]:
    """Unit chunks in, float32 audio chunks out."""
    vocoder = VocoderStream(decoder, resolve(decoder, settings).vocoder_context_frames, deterministic, seed)
    for mel in stream_mel(decoder, unit_chunks, settings, deterministic, seed):
        audio = vocoder.push(mel)
        if audio.size:
            yield audio
    audio = vocoder.push(None, final=True)
    if audio.size:
        yield audio
