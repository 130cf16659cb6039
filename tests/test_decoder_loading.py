"""Loading the decoder from flow.pt / hift.pt state dicts in the released key layout (weight_g/weight_v)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.models.audio_decoder import (DecoderConfig, load_decoder, random_decoder,  # noqa: E402
                                          released_config, tiny_config)
from backend.models.audio_decoder.checkpoint import CheckpointError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path:
    from conftest import shared_dir

    return shared_dir() / "fixtures" / "exomni"


@pytest.fixture(scope="module")
def fixture_folder() -> Path:
    folder = fixtures_dir() / "audio_decoder"
    if not (folder / "outputs.safetensors").is_file():
        pytest.skip(f"audio_decoder parity fixture not found at {folder} (set EXOMNI_SHARED)")
    return folder


def test_flow_pt_and_hift_pt_from_the_fixture_weights(fixture_folder, tmp_path):
    from safetensors.torch import load_file

    hift_state = load_file(str(fixture_folder / "hift_weights.safetensors"))
    assert any(k.endswith(".weight_g") for k in hift_state) and any(k.endswith(".weight_v") for k in hift_state)
    torch.save(load_file(str(fixture_folder / "flow_weights.safetensors")), tmp_path / "flow.pt")
    torch.save(hift_state, tmp_path / "hift.pt")
    shutil.copy(fixture_folder / "config.json", tmp_path / "config.json")

    decoder = load_decoder(tmp_path)
    inputs = load_file(str(fixture_folder / "inputs.safetensors"))
    outputs = load_file(str(fixture_folder / "outputs.safetensors"))
    mel = decoder.units_to_mel(inputs["flow.tokens"], noise=inputs["flow.noise_seed42"])
    assert torch.allclose(mel, outputs["flow.mel_seed42"], atol=1e-3, rtol=0)
    wave = decoder.mel_to_audio(mel, deterministic=True)
    assert torch.allclose(wave, outputs["chain.waveform"][0], atol=1e-3, rtol=0)


def _other_widths() -> DecoderConfig:
    cfg = tiny_config(vocab_size=50).to_dict()
    cfg["flow"]["encoder"]["attention_heads"] = 4
    cfg["flow"]["decoder"]["estimator"]["channels"] = [16, 32]
    cfg["hift"]["base_channels"] = 24
    return DecoderConfig.from_dict(cfg)


def test_save_writes_the_released_layout_and_loads_back(tmp_path):
    decoder = random_decoder(_other_widths(), seed=3)
    decoder.save(tmp_path)
    flow_state = torch.load(tmp_path / "flow.pt", weights_only=True)
    hift_state = torch.load(tmp_path / "hift.pt", weights_only=True)
    for key in ("input_embedding.weight", "spk_embed_affine_layer.bias", "encoder.embed.out.1.weight",
                "encoder.encoders.0.self_attn.pos_bias_u", "length_regulator.model.12.weight",
                "decoder.estimator.time_mlp.linear_1.weight", "decoder.estimator.down_blocks.0.2.conv.weight",
                "decoder.estimator.up_blocks.0.2.conv.weight", "decoder.estimator.final_proj.bias"):
        assert key in flow_state, key
    for key in ("conv_pre.weight_g", "conv_pre.weight_v", "ups.1.weight_g", "resblocks.5.convs2.2.weight_v",
                "source_resblocks.1.activations1.0.alpha", "source_downs.0.weight", "conv_post.weight_g",
                "f0_predictor.condnet.8.weight_v", "f0_predictor.classifier.weight", "m_source.l_linear.weight"):
        assert key in hift_state, key
    assert not any(k.endswith("ups.0.weight") or k == "conv_pre.weight" for k in hift_state)
    # transposed convs keep one norm per input channel (dimension 0 of their weight)
    assert hift_state["ups.0.weight_g"].shape == (24, 1, 1)

    units = np.random.default_rng(0).integers(0, 50, 15)
    want, sr = decoder.decode(units, deterministic=True)
    loaded = load_decoder(tmp_path)
    got, sr2 = loaded.decode(units, deterministic=True)
    assert sr == sr2 == 22050
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_weight_norm_pairs_are_folded_as_g_times_unit_v(tmp_path):
    decoder = random_decoder(tiny_config(vocab_size=40), seed=4)
    decoder.save(tmp_path)
    units = list(range(1, 12))
    want, _ = decoder.decode(units, deterministic=True)

    hift_state = torch.load(tmp_path / "hift.pt", weights_only=True)
    scale = torch.rand(hift_state["conv_post.weight_v"].shape[0], 1, 1) + 0.5
    hift_state["conv_post.weight_v"] = hift_state["conv_post.weight_v"] * scale  # direction unchanged
    torch.save(hift_state, tmp_path / "hift.pt")
    same, _ = load_decoder(tmp_path).decode(units, deterministic=True)
    np.testing.assert_allclose(same, want, atol=1e-5, rtol=0)

    hift_state["conv_post.weight_g"] = hift_state["conv_post.weight_g"] * 1.5  # norm changed
    torch.save(hift_state, tmp_path / "hift.pt")
    changed, _ = load_decoder(tmp_path).decode(units, deterministic=True)
    assert np.abs(changed - want).max() > 1e-3


def test_released_configuration_is_the_default(fixture_folder):
    official = json.loads((fixture_folder / "config.json").read_text())["official_values_replaced"]
    cfg = released_config()
    f, e, est, h = cfg.flow, cfg.flow.encoder, cfg.flow.estimator, cfg.hift
    ours = {"flow.input_size": f.input_size, "flow.output_size": f.output_size, "flow.vocab_size": f.vocab_size,
            "encoder.output_size": e.output_size, "encoder.attention_heads": e.attention_heads,
            "encoder.linear_units": e.linear_units, "encoder.num_blocks": e.num_blocks,
            "encoder.block_size": e.block_size, "estimator.channels": list(est.channels),
            "estimator.attention_head_dim": est.attention_head_dim, "estimator.n_blocks": est.n_blocks,
            "estimator.num_mid_blocks": est.num_mid_blocks, "estimator.num_heads": est.num_heads,
            "hift.base_channels": h.base_channels, "f0_predictor.cond_channels": h.f0_predictor.cond_channels}
    assert ours == official
    assert (cfg.sample_rate, cfg.hop_length, f.spk_embed_dim, f.n_timesteps) == (22050, 256, 192, 10)


def test_a_folder_without_config_is_read_as_the_released_size(tmp_path):
    random_decoder(tiny_config(), seed=0).save(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="shape mismatches.*config.json"):
        load_decoder(tmp_path)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="glm-4-voice-decoder"):
        load_decoder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="flow.pt"):
        load_decoder(tmp_path)
    decoder = random_decoder(tiny_config(vocab_size=20), seed=0)
    with pytest.raises(ValueError, match="outside this decoder's vocabulary of 20"):
        decoder.decode([1, 2, 20])
    with pytest.raises(ValueError, match="no speech units"):
        decoder.decode([])
    with pytest.raises(TypeError, match="integer ids"):
        decoder.decode([0.5, 1.5])
    decoder.save(tmp_path / "dec")
    state = torch.load(tmp_path / "dec" / "hift.pt", weights_only=True)
    del state["conv_pre.weight_g"]
    torch.save(state, tmp_path / "dec" / "hift.pt")
    with pytest.raises(CheckpointError, match="conv_pre"):
        load_decoder(tmp_path / "dec")
