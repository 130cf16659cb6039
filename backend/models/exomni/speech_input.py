"""A recording as the speech encoder's input: 16 kHz mono audio -> Whisper log-mel features.

The settings come from the speech encoder's `preprocessor_config.json` (the Whisper feature
extractor). As in the released demo, the features always cover the encoder's full window (30 s for
the released encoder; longer audio is cut there) and the whole window counts as valid.
"""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
from exomni_blender.core.errors import ExOmniError

SAMPLE_RATE = 16000


class SpeechInputError(ExOmniError, ValueError):
    """A recording that cannot be used as a spoken prompt; the message says why."""


def read_audio_16k(path) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports unreadable formats in many ways
        raise SpeechInputError(f"cannot read {Path(path).name} as audio ({exc}); use WAV, FLAC or OGG") from exc
    audio = audio.mean(axis=1)
    if audio.size == 0:
        raise SpeechInputError(f"{Path(path).name} holds no audio samples")
    if rate != SAMPLE_RATE:
        g = gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return audio


class SpeechFeatures:
    """Turns recordings into ([1, n_mels, frames] log-mel, [1] valid frames) for ExomniForCausalLM.encode_speech."""

    def __init__(self, encoder_folder, mel_frames: int, mel_bins: int):
        from transformers import WhisperFeatureExtractor

        path = Path(encoder_folder)
        if (path / "preprocessor_config.json").is_file():
            self.extractor = WhisperFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        else:  # Whisper's standard settings, sized to this encoder
            self.extractor = WhisperFeatureExtractor(feature_size=mel_bins, chunk_length=mel_frames // 100)
        if self.extractor.nb_max_frames != mel_frames or self.extractor.feature_size != mel_bins:
            raise SpeechInputError(
                f"the feature extractor in {path} makes {self.extractor.feature_size} x {self.extractor.nb_max_frames} "
                f"mel features but the speech encoder takes {mel_bins} x {mel_frames}; they must come from the same "
                f"Whisper model")

    def __call__(self, path):
        import torch

        audio = read_audio_16k(path)
        features = self.extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np")["input_features"]
        mel = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        return mel, torch.tensor([mel.shape[-1]])
