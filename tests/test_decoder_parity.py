"""Parity of the GLM-4-Voice decoder with the reference, on the `audio_decoder` fixture format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.models.audio_decoder import parity, random_decoder  # noqa: E402
from backend.models.audio_decoder.checkpoint import released_state_dict  # noqa: E402
from backend.models.audio_decoder.config import (DecoderConfig, EncoderConfig, EstimatorConfig,  # noqa: E402
                                                 F0PredictorConfig, FlowConfig, HiftConfig)
from backend.models.audio_decoder.hift import is_weight_normed  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path:
    from conftest import shared_dir

    return shared_dir() / "fixtures" / "exomni"


@pytest.fixture(scope="module")
def audio_decoder_fixture() -> Path:
    folder = fixtures_dir() / "audio_decoder"
    if not (folder / "outputs.safetensors").is_file():
        pytest.skip(f"audio_decoder parity fixture not found at {folder} (set EXOMNI_SHARED)")
    return folder


def test_public_fixture_matches_reference(audio_decoder_fixture):
    results = parity.check(audio_decoder_fixture)
    print("\n" + parity.report(results))
    names = {name for name, _, _ in results}
    assert {"flow.mel_seed42", "flow.mel_zero_noise", "hift.f0", "hift.zero_noise.waveform",
            "hift.given_noise.waveform", "chain.waveform", "flow.feat_len",
            "flow.intermediate.lr_nearest_src_index"} <= names
    failed = [(n, e) for n, e, ok in results if not ok]
    assert not failed, f"outputs outside tolerance: {failed}"


def _write_fixture(folder: Path, decoder, n_units: int, seed: int) -> None:
    """A folder in the fixture layout whose outputs are what this decoder computes (for plumbing checks:
    other widths, other seeds, dimensions read from the files)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    cfg = decoder.config
    n_frames = decoder.mel_frames(n_units)
    n_audio = n_frames * decoder.hop_length
    harmonics = cfg.hift.nb_harmonics + 1
    inputs = {
        "flow.tokens": torch.randint(0, cfg.flow.vocab_size, (1, n_units), generator=g),
        "flow.noise_seed42": torch.randn(1, cfg.n_mels, n_frames, generator=g),
        "hift.mel": torch.randn(1, cfg.n_mels, n_frames, generator=g),
        "hift.phase_given": (torch.rand(1, harmonics, 1, generator=g) * 2 - 1) * 3.14159,
        "hift.sine_noise_given": torch.randn(1, harmonics, n_audio, generator=g),
    }
    with torch.inference_mode():
        outputs = parity._compute(decoder, inputs)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    save_file({k: v.contiguous() for k, v in released_state_dict(decoder.flow).items()},
              str(folder / "flow_weights.safetensors"))
    save_file({k: v.contiguous() for k, v in released_state_dict(decoder.hift, is_weight_normed).items()},
              str(folder / "hift_weights.safetensors"))
    save_file(inputs, str(folder / "inputs.safetensors"))
    save_file({k: v.detach().contiguous() for k, v in outputs.items()}, str(folder / "outputs.safetensors"))


def test_check_reads_every_dimension_from_the_fixture(tmp_path):
    other = DecoderConfig(
        flow=FlowConfig(vocab_size=77, input_size=24,
                        encoder=EncoderConfig(output_size=24, attention_heads=3, linear_units=40, num_blocks=3,
                                              block_size=10),
                        estimator=EstimatorConfig(channels=(16, 24), attention_head_dim=8, n_blocks=2,
                                                  num_mid_blocks=1, num_heads=3)),
        hift=HiftConfig(base_channels=16, f0_predictor=F0PredictorConfig(cond_channels=12)))
    folder = tmp_path / "audio_decoder"
    _write_fixture(folder, random_decoder(other, seed=11), n_units=17, seed=5)

    results = parity.check(folder)
    assert results and all(ok for _, _, ok in results), parity.report(results)

    # a single changed weight must show up (the check is not vacuous)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "flow_weights.safetensors"))
    weights["encoder.encoders.1.norm_ff.bias"] = weights["encoder.encoders.1.norm_ff.bias"] + 0.05
    save_file(weights, str(folder / "flow_weights.safetensors"))
    failed = {name for name, _, ok in parity.check(folder) if not ok}
    assert {"flow.mel_seed42", "flow.intermediate.encoder_out"} <= failed
    assert "hift.zero_noise.waveform" not in failed


def test_check_refuses_a_folder_that_is_not_a_fixture(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an audio_decoder fixture"):
        parity.check(tmp_path)
