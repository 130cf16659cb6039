"""Configurations of the Ex-Omni parts, read from the released model config.

The released `config.json` is one flat dict: the Qwen3 LLM's fields plus the speech and blendshape
fields. The published checkpoint is tagged model_type `qwen3` (the reference code registers its own
`llava_her_qwen3` too, and reads the config through transformers' AutoConfig, so either works); what
makes it Ex-Omni is its `architectures` entry or its speech and blendshape fields. Two parts take their architecture from sub-configs that the main
config names by reference: the Whisper encoder (`pretrain_speech_encoder_weights`) and the speech
generator's inner Qwen3 decoder (`pretrain_speech_generator_weights`). Field names below are the
released ones; defaults are the constants the reference hard-codes when a field is absent
(`speech_generator_dim` 1024, TQGF 16 x 256, projector width 2048, ...).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

MODEL_TYPE = "llava_her_qwen3"  # the type the reference code registers; the published config says qwen3
ARCHITECTURE = "LlavaHerQwen3ForCausalLM"
# Fields only an Ex-Omni config has; any two of them identify one that lacks the architectures entry.
EXOMNI_FIELDS = ("unit_vocab_size", "bs_decoder_dimension", "speech_generator_type", "speech_vocab_size",
                 "pretrain_speech_encoder_weights", "pretrain_speech_generator_weights")
IGNORE_INDEX = -100
SPEECH_PLACEHOLDER_ID = -300  # what the <speech> token id becomes in the LLM input
UNIT_RATE_HZ = 12.5
BLENDSHAPE_FPS = 30
NUM_BLENDSHAPES = 52


def known_model_types() -> set[str]:
    """model_type values transformers' AutoConfig reads, plus the one the reference registers."""
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    except ImportError:  # no transformers: the loader needs it anyway, so only the release's own tags
        return {MODEL_TYPE, "qwen3"}
    return set(CONFIG_MAPPING_NAMES) | {MODEL_TYPE}


def exomni_identity(cfg: Mapping[str, Any]) -> tuple[str | None, str]:
    """(how the config is recognised as Ex-Omni, or None; why not / what it is) as the reference's loader
    would take it: the model_type must be one AutoConfig reads, and the architectures entry or the
    speech/blendshape fields must say Ex-Omni."""
    model_type = cfg.get("model_type")
    if model_type is not None and model_type not in known_model_types():
        return None, (f"its model_type {model_type!r} is not one transformers' AutoConfig reads, so the "
                      f"official loader would refuse it too")
    architectures = [str(a) for a in (cfg.get("architectures") or [])]
    if ARCHITECTURE in architectures:
        return f"architectures {ARCHITECTURE}", ""
    present = [k for k in EXOMNI_FIELDS if k in cfg]
    if len(present) >= 2:
        return f"its speech/blendshape fields ({', '.join(present[:3])})", ""
    what = f"architectures {architectures}" if architectures else "no architectures entry"
    return None, (f"it has {what} and none of the speech/blendshape fields "
                  f"({', '.join(EXOMNI_FIELDS[:3])}, ...)")


def _or_default(cfg: Mapping, key: str, default):
    """The reference reads several fields as `getattr(config, key, None) or default`."""
    value = cfg.get(key)
    return value if value else default


def qwen3_config(fields: Mapping[str, Any]):
    """A transformers Qwen3Config from a dict that may carry many unrelated fields."""
    from transformers import Qwen3Config

    accepted = set(inspect.signature(Qwen3Config.__init__).parameters) - {"self", "kwargs"}
    accepted |= {"bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype"}
    config = Qwen3Config(**{k: v for k, v in fields.items() if k in accepted})
    if not config.use_sliding_window:
        config.sliding_window = None  # unused then; transformers would warn about it on every build
    config._attn_implementation = "sdpa"
    return config


def whisper_config(fields: Mapping[str, Any]):
    from transformers import WhisperConfig

    config = WhisperConfig(**{k: v for k, v in fields.items() if k not in ("model_type", "architectures",
                                                                          "transformers_version")})
    config._attn_implementation = "sdpa"
    return config


@dataclass
class BlendshapeGeneratorConfig:
    decoder_dim: int  # bs_decoder_dimension (D)
    num_heads: int  # nhead
    num_layers: int  # num_bs_decoder_layers
    unit_vocab_size: int  # speech_vocab_size
    unit_embed_dim: int  # speech_embed_dim
    speech_hidden_size: int  # speech_gen_hidden_size: width of the speech generator's states
    out_dim: int = NUM_BLENDSHAPES
    period: int = 30
    tqgf_depth: int = 2
    tqgf_dim_head: int = 64
    tqgf_heads: int = 8
    dropout: float = 0.0

    @classmethod
    def from_model_config(cls, cfg: Mapping[str, Any], speech_hidden_size: int | None = None):
        return cls(
            decoder_dim=int(cfg["bs_decoder_dimension"]),
            num_heads=int(cfg["nhead"]),
            num_layers=int(cfg["num_bs_decoder_layers"]),
            unit_vocab_size=int(cfg["speech_vocab_size"]),
            unit_embed_dim=int(cfg["speech_embed_dim"]),
            speech_hidden_size=int(cfg.get("speech_gen_hidden_size") or speech_hidden_size),
            out_dim=int(cfg.get("out_dim", NUM_BLENDSHAPES)),
            period=int(cfg.get("period", 30)),
            tqgf_depth=int(_or_default(cfg, "bs_tqgf_depth", 2)),
            tqgf_dim_head=int(_or_default(cfg, "bs_tqgf_dim_head", 64)),
            tqgf_heads=int(_or_default(cfg, "bs_tqgf_heads", 8)),
            dropout=float(cfg.get("dropout_rate", 0.0) or 0.0),
        )


@dataclass
class SpeechGeneratorConfig:
    llm_hidden_size: int  # hidden_size of the LLM whose states it consumes
    unit_vocab_size: int  # V; EOS = V, the head has V + 3 outputs
    decoder: Any  # transformers Qwen3Config of the inner decoder
    dim: int = 1024  # speech_generator_dim; the reference hard-codes 1024
    tqgf_dim_head: int = 256
    tqgf_heads: int = 16
    tqgf_depth: int = 2
    states_per_token: int = 4  # each LLM state is lifted into 4 positions
    min_units_per_token: int = 2
    max_units_per_token: int = 20

    @classmethod
    def from_model_config(cls, cfg: Mapping[str, Any], decoder_fields: Mapping[str, Any]):
        decoder = qwen3_config(decoder_fields)
        dim = int(cfg.get("speech_generator_dim") or 1024)
        if decoder.hidden_size != dim:
            raise ValueError(
                f"the speech generator's inner Qwen3 has hidden_size {decoder.hidden_size} but the speech "
                f"generator works at width {dim} (speech_generator_dim); they must be equal. Is "
                f"pretrain_speech_generator_weights pointing at the right model (Qwen3-0.6B for the release)?")
        return cls(
            llm_hidden_size=int(cfg["hidden_size"]),
            unit_vocab_size=int(cfg["unit_vocab_size"]),
            decoder=decoder,
            dim=dim,
            tqgf_dim_head=int(cfg.get("speech_generator_tqgf_dim_head") or 256),
            tqgf_heads=int(cfg.get("speech_generator_tqgf_heads") or 16),
        )

    @property
    def eos_id(self) -> int:
        return self.unit_vocab_size


@dataclass
class SpeechEncoderConfig:
    whisper: Any  # transformers WhisperConfig
    llm_hidden_size: int
    downsample: int = 5  # speech_encoder_ds_rate: encoder frames concatenated per LLM position
    projector_hidden: int = 2048  # speech_projector_hidden_dim; the reference hard-codes 2048
    projector_type: str = "linear"

    @classmethod
    def from_model_config(cls, cfg: Mapping[str, Any], whisper_fields: Mapping[str, Any]):
        ptype = cfg.get("speech_projector_type", "linear")
        if ptype != "linear":
            raise ValueError(f"speech_projector_type {ptype!r} is not supported (only 'linear', as released)")
        return cls(
            whisper=whisper_config(whisper_fields),
            llm_hidden_size=int(cfg["hidden_size"]),
            downsample=int(cfg.get("speech_encoder_ds_rate", 5)),
            projector_hidden=int(cfg.get("speech_projector_hidden_dim") or 2048),
        )

    @property
    def mel_frames(self) -> int:
        """Whisper takes exactly this many mel frames (3000 for the released encoder)."""
        return 2 * int(self.whisper.max_source_positions)

    @property
    def num_mel_bins(self) -> int:
        return int(self.whisper.num_mel_bins)


@dataclass
class ExomniConfig:
    text: Any  # transformers Qwen3Config of the LLM
    speech_encoder: SpeechEncoderConfig
    speech_generator: SpeechGeneratorConfig
    blendshape_generator: BlendshapeGeneratorConfig
    raw: dict = field(default_factory=dict)

    @classmethod
    def from_dicts(cls, model_config: Mapping[str, Any], whisper_fields: Mapping[str, Any],
                   speech_generator_fields: Mapping[str, Any]) -> "ExomniConfig":
        identity, why_not = exomni_identity(model_config)
        if identity is None:
            raise ValueError(f"config.json is not an Ex-Omni config: {why_not}")
        missing = [k for k in ("hidden_size", "vocab_size", "unit_vocab_size", "bs_decoder_dimension")
                   if k not in model_config]
        if missing:
            raise ValueError(f"config.json lacks {', '.join(missing)}; is this the Ex-Omni checkpoint's config?")
        generator = SpeechGeneratorConfig.from_model_config(model_config, speech_generator_fields)
        return cls(
            text=qwen3_config(model_config),
            speech_encoder=SpeechEncoderConfig.from_model_config(model_config, whisper_fields),
            speech_generator=generator,
            blendshape_generator=BlendshapeGeneratorConfig.from_model_config(model_config, generator.dim),
            raw=dict(model_config),
        )
