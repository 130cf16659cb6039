"""Lengths, unit-to-frame mapping, time grid and randomness of the decoder (tiny random weights)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.models.audio_decoder import random_decoder, tiny_config  # noqa: E402
from backend.models.audio_decoder.flow import (block_causal_mask, mel_frame_count,  # noqa: E402
                                               nearest_source_index, steady_source_index)
from backend.models.audio_decoder.flow_matching import time_schedule  # noqa: E402


@pytest.fixture(scope="module")
def decoder():
    return random_decoder(tiny_config(), seed=1)


def test_mel_frames_use_float32_arithmetic():
    assert mel_frame_count(24, 12.5, 22050, 256) == 165
    assert mel_frame_count(3392, 12.5, 22050, 256) == 23372  # exact arithmetic would give 23373
    for n in (1, 13, 64, 1000, 5000):
        assert mel_frame_count(n, 12.5, 22050, 256) == int(np.float32(np.float32(n) / np.float32(12.5)
                                                                      * np.float32(22050)) / np.float32(256))


def test_nearest_upsampling_index_uses_float32_arithmetic():
    index = nearest_source_index(24, 165)
    assert index[55] == 7 and index[110] == 15  # exact arithmetic would give 8 and 16
    assert index[0] == 0 and index[-1] == 23
    assert bool((index[1:] >= index[:-1]).all()) and set(index.tolist()) == set(range(24))


def test_streaming_index_is_the_nominal_rate_and_ignores_what_follows():
    # 64 units are exactly 441 frames: the nominal rate and the reference's stretch agree there
    assert torch.equal(steady_source_index(0, 441, 0, 64, 12.5, 22050, 256), nearest_source_index(64, 441))
    whole = steady_source_index(0, 882, 0, 128, 12.5, 22050, 256)
    part = steady_source_index(300, 200, 40, 88, 12.5, 22050, 256)
    assert torch.equal(part, (whole[300:500] - 40).clamp(min=0))


def test_block_causal_mask():
    allowed = block_causal_mask(25, 10)
    assert allowed[3, 9] and not allowed[3, 10]  # the rest of its own block, nothing beyond
    assert allowed[14, 0] and allowed[14, 19] and not allowed[14, 20]
    assert allowed[20:, 20:].all() and not allowed[9, 10:].any()  # a partial last block sees itself whole


def test_cosine_time_grid(decoder):
    steps = decoder.flow.decoder.step_times()
    expected = [1 - math.cos(math.pi / 2 * k / 10) for k in range(10)]
    np.testing.assert_allclose(steps.numpy(), expected, atol=1e-6)
    assert time_schedule(10)[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("n_units", [1, 7, 24, 50])
def test_audio_length_is_mel_frames_times_hop(decoder, n_units):
    units = list(range(5, 5 + n_units))
    mel = decoder.units_to_mel(units, seed=0)
    assert mel.shape == (1, 80, decoder.mel_frames(n_units))
    audio, sr = decoder.decode(units, seed=0)
    assert sr == 22050 and audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == decoder.mel_frames(n_units) * 256
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 0.99


def test_deterministic_mode_and_seeds(decoder):
    units = [3, 14, 15, 92, 65, 35, 89, 79]
    zero_a, _ = decoder.decode(units, deterministic=True)
    zero_b, _ = decoder.decode(units, deterministic=True, seed=123)  # the seed is not used
    np.testing.assert_array_equal(zero_a, zero_b)
    mel = decoder.units_to_mel(units, deterministic=True)
    np.testing.assert_array_equal(mel, decoder.units_to_mel(units, noise=torch.zeros_like(mel)))

    seeded_a, _ = decoder.decode(units, seed=4)
    seeded_b, _ = decoder.decode(units, seed=4)
    other, _ = decoder.decode(units, seed=5)
    np.testing.assert_array_equal(seeded_a, seeded_b)
    assert np.abs(seeded_a - other).max() > 1e-3
    assert np.abs(seeded_a - zero_a).max() > 1e-3


def test_units_accept_lists_arrays_and_tensors(decoder):
    units = [1, 2, 3, 4, 5, 6]
    ref, _ = decoder.decode(units, deterministic=True)
    for form in (np.array(units), torch.tensor(units), torch.tensor([units])):
        got, _ = decoder.decode(form, deterministic=True)
        np.testing.assert_array_equal(got, ref)
    with pytest.raises(ValueError, match="one utterance at a time"):
        decoder.decode(torch.tensor([units, units]))
