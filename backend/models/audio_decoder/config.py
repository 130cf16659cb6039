"""Sizes and constants of the GLM-4-Voice decoder: the released values by default, every width settable.

The field names follow the released `cosyvoice` yaml (and the parity fixture's `config.json`, which
mirrors it), so a configuration can be read from either with `DecoderConfig.from_dict`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path


@dataclass
class EncoderConfig:
    """The block conformer over unit embeddings (pre-norm, relative positions, no conv module)."""

    output_size: int = 512
    attention_heads: int = 8
    linear_units: int = 2048
    num_blocks: int = 6
    block_size: int = 10  # units; a unit sees every earlier unit and the rest of its own block
    key_bias: bool = True


@dataclass
class EstimatorConfig:
    """The U-Net-style velocity estimator of the flow matching ODE."""

    channels: tuple = (256, 256)
    attention_head_dim: int = 64
    n_blocks: int = 4
    num_mid_blocks: int = 12
    num_heads: int = 8
    act_fn: str = "gelu"
    norm_groups: int = 8  # GroupNorm groups inside the ResNet blocks (fixed in the reference)


@dataclass
class FlowConfig:
    vocab_size: int = 16384
    input_size: int = 512
    output_size: int = 80  # mel bins
    spk_embed_dim: int = 192
    input_frame_rate: float = 12.5  # units per second
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    regulator_blocks: int = 4  # conv + GroupNorm + Mish stages after the nearest upsampling
    regulator_groups: int = 1
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    n_timesteps: int = 10
    t_scheduler: str = "cosine"
    inference_cfg_rate: float = 0.7
    temperature: float = 1.0


@dataclass
class F0PredictorConfig:
    cond_channels: int = 512
    num_class: int = 1
    num_layers: int = 5  # weight-normed conv k3 + ELU pairs


@dataclass
class HiftConfig:
    in_channels: int = 80
    base_channels: int = 512
    nb_harmonics: int = 8
    sampling_rate: int = 22050
    nsf_alpha: float = 0.1
    nsf_sigma: float = 0.003
    nsf_voiced_threshold: float = 10.0
    upsample_rates: tuple = (8, 8)
    upsample_kernel_sizes: tuple = (16, 16)
    n_fft: int = 16
    hop_len: int = 4
    resblock_kernel_sizes: tuple = (3, 7, 11)
    resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    source_resblock_kernel_sizes: tuple = (7, 11)
    source_resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5))
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99
    f0_predictor: F0PredictorConfig = field(default_factory=F0PredictorConfig)

    @property
    def samples_per_frame(self) -> int:
        return int(math.prod(self.upsample_rates)) * self.hop_len


@dataclass
class DecoderConfig:
    flow: FlowConfig = field(default_factory=FlowConfig)
    hift: HiftConfig = field(default_factory=HiftConfig)

    @property
    def sample_rate(self) -> int:
        return self.hift.sampling_rate

    @property
    def hop_length(self) -> int:
        return self.hift.samples_per_frame

    @property
    def n_mels(self) -> int:
        return self.flow.output_size

    def validate(self) -> "DecoderConfig":
        f, h = self.flow, self.hift
        if f.encoder.output_size % f.encoder.attention_heads:
            raise ValueError(f"encoder output_size {f.encoder.output_size} is not divisible by its "
                             f"{f.encoder.attention_heads} attention heads")
        if f.encoder.output_size % 2:
            raise ValueError("encoder output_size must be even (sinusoidal relative positions)")
        for c in f.estimator.channels:
            if c % f.estimator.norm_groups:
                raise ValueError(f"estimator channel width {c} is not divisible by its "
                                 f"{f.estimator.norm_groups} GroupNorm groups")
        if (4 * f.output_size) % 2:
            raise ValueError("4 x mel bins must be even (sinusoidal time embedding)")
        if h.in_channels != f.output_size:
            raise ValueError(f"HiFT takes {h.in_channels} mel bins but the flow makes {f.output_size}")
        if len(h.upsample_rates) != len(h.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(h.source_resblock_kernel_sizes) != len(h.upsample_rates):
            raise ValueError("one source ResBlock per upsampling stage is needed")
        return self

    # --- reading and writing -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict) -> "DecoderConfig":
        """Reads the fixture / yaml-mirroring layout: {"flow": {..., "encoder": {...}, "length_regulator":
        {...}, "decoder": {"cfm_params": {...}, "estimator": {...}}}, "hift": {..., "istft_params": {...},
        "f0_predictor": {...}}}. Missing entries keep the released values; unknown ones are ignored."""
        flow_d = dict(data.get("flow", {}))
        enc_d = flow_d.get("encoder", {})
        lr_d = flow_d.get("length_regulator", {})
        dec_d = flow_d.get("decoder", {})
        cfm_d = dec_d.get("cfm_params", {})
        est_d = dec_d.get("estimator", {})
        hift_d = dict(data.get("hift", {}))
        istft_d = hift_d.get("istft_params", {})
        f0_d = hift_d.get("f0_predictor", {})

        encoder = _pick(EncoderConfig, enc_d)
        estimator = _pick(EstimatorConfig, est_d)
        flow = _pick(FlowConfig, flow_d, encoder=encoder, estimator=estimator)
        if "sampling_ratios" in lr_d:
            flow = replace(flow, regulator_blocks=len(lr_d["sampling_ratios"]))
        if "groups" in lr_d:
            flow = replace(flow, regulator_groups=int(lr_d["groups"]))
        for key in ("t_scheduler", "inference_cfg_rate"):
            if key in cfm_d:
                flow = replace(flow, **{key: cfm_d[key]})
        if "n_timesteps_used_by_inference" in dec_d:
            flow = replace(flow, n_timesteps=int(dec_d["n_timesteps_used_by_inference"]))
        if "temperature" in dec_d:
            flow = replace(flow, temperature=float(dec_d["temperature"]))

        f0 = _pick(F0PredictorConfig, f0_d)
        hift = _pick(HiftConfig, hift_d, f0_predictor=f0)
        if "n_fft" in istft_d:
            hift = replace(hift, n_fft=int(istft_d["n_fft"]))
        if "hop_len" in istft_d:
            hift = replace(hift, hop_len=int(istft_d["hop_len"]))
        return cls(flow=flow, hift=hift).validate()

    def to_dict(self) -> dict:
        """The layout `from_dict` reads (so a decoder folder can carry its own config.json)."""
        f, h = asdict(self.flow), asdict(self.hift)
        enc, est = f.pop("encoder"), f.pop("estimator")
        flow = {k: v for k, v in f.items() if k not in (
            "regulator_blocks", "regulator_groups", "n_timesteps", "t_scheduler", "inference_cfg_rate", "temperature")}
        flow["encoder"] = enc
        flow["length_regulator"] = {"channels": self.flow.output_size,
                                    "sampling_ratios": [1] * self.flow.regulator_blocks,
                                    "groups": self.flow.regulator_groups}
        flow["decoder"] = {"cfm_params": {"t_scheduler": self.flow.t_scheduler,
                                          "inference_cfg_rate": self.flow.inference_cfg_rate},
                           "n_timesteps_used_by_inference": self.flow.n_timesteps,
                           "temperature": self.flow.temperature,
                           "estimator": est}
        f0 = h.pop("f0_predictor")
        hift = {k: v for k, v in h.items() if k not in ("n_fft", "hop_len")}
        hift["istft_params"] = {"n_fft": self.hift.n_fft, "hop_len": self.hift.hop_len}
        hift["f0_predictor"] = f0
        return json.loads(json.dumps({"sample_rate": self.sample_rate, "flow": flow, "hift": hift}))

    @classmethod
    def from_file(cls, path: str | Path) -> "DecoderConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _pick(klass, data: dict, **overrides):
    """Builds a dataclass from the entries of `data` it knows; lists become tuples (hashable, fixed)."""
    kwargs = {}
    for f in fields(klass):
        if f.name in overrides:
            kwargs[f.name] = overrides[f.name]
        elif f.name in data and not isinstance(data[f.name], dict):
            kwargs[f.name] = _tuples(data[f.name])
    return klass(**kwargs)


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def released_config() -> DecoderConfig:
    """The configuration of the released `glm-4-voice-decoder` (flow.pt + hift.pt)."""
    return DecoderConfig().validate()


def tiny_config(vocab_size: int = 300) -> DecoderConfig:
    """The public parity fixture's widths: small enough for tests and CPU benchmarks, same structure."""
    return DecoderConfig(
        flow=FlowConfig(
            vocab_size=vocab_size, input_size=32,
            encoder=EncoderConfig(output_size=32, attention_heads=2, linear_units=64, num_blocks=2),
            estimator=EstimatorConfig(channels=(32, 32), attention_head_dim=16, n_blocks=1,
                                      num_mid_blocks=2, num_heads=2),
        ),
        hift=HiftConfig(base_channels=32, f0_predictor=F0PredictorConfig(cond_channels=32)),
    ).validate()
