"""Speech input: the Whisper encoder and the frame-concatenating projector into the LLM's width.

The encoder is transformers' WhisperEncoder, run on exactly 2·max_source_positions log-mel frames
(3000 for the released encoder) without an attention mask, as the reference runs it. The projector
drops the trailing (T mod k) encoder frames, concatenates k consecutive frames and maps them through
Linear -> ReLU -> Linear. Of each row, max((frames + 1) // 2, 1) // k positions are kept.
Attribute names follow the released checkpoint: `model.speech_encoder.model.encoder.*` (the holder
is a full WhisperModel in the reference; its decoder never runs and is not built here) and
`model.speech_projector.linear1/linear2`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from .configuration import SpeechEncoderConfig


class SpeechEncoder(nn.Module):
    def __init__(self, config: SpeechEncoderConfig):
        super().__init__()
        self.config = config
        self.model = nn.Module()
        self.model.encoder = WhisperEncoder(config.whisper)

    @property
    def encoder(self):
        return self.model.encoder

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, 2·max_source_positions] -> [B, max_source_positions, d_model]."""
        expected = self.config.mel_frames
        if mel.shape[-1] != expected or mel.shape[-2] != self.config.num_mel_bins:
            raise ValueError(f"the speech encoder takes [B, {self.config.num_mel_bins}, {expected}] log-mel "
                             f"features (pad shorter audio as the Whisper feature extractor does), "
                             f"got {list(mel.shape)}")
        param = self.encoder.conv1.weight
        return self.encoder(mel.to(device=param.device, dtype=param.dtype)).last_hidden_state

    @staticmethod
    def output_lengths(mel_lengths: torch.Tensor) -> torch.Tensor:
        return ((mel_lengths.view(-1) + 1) // 2).clamp(min=1)


class SpeechProjector(nn.Module):
    def __init__(self, config: SpeechEncoderConfig):
        super().__init__()
        self.k = config.downsample
        width = config.whisper.d_model * self.k
        self.linear1 = nn.Linear(width, config.projector_hidden)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(config.projector_hidden, config.llm_hidden_size)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, T, d_model] -> [B, T // k, hidden_size], k consecutive frames concatenated frame-major."""
        b, t, d = frames.shape
        t -= t % self.k
        stacked = frames[:, :t].reshape(b, t // self.k, d * self.k)
        return self.linear2(self.relu(self.linear1(stacked)))
