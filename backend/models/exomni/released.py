"""The sizes of the released Ex-Omni model, and a random model of those sizes built in memory.

No one here can download Tencent/Ex-Omni, so the real-size figures (memory, speed) are measured on a
random model with the released dimensions, built directly on the device (nothing written to disk).

Where each size comes from:
- LLM: a Qwen3 causal LM (the published config.json has model_type `qwen3` with the architectures
  entry `LlavaHerQwen3ForCausalLM`, and the chat template is Qwen's ChatML). The public code and model card do not
  state which Qwen3 size; Qwen3-8B is assumed (`--llm` picks another). The Qwen3 dimensions are those
  of the Qwen/Qwen3-* config.json files.
- Speech encoder: Whisper large-v3's encoder. The reference demo feeds 128 mel bins x 3000 frames
  (`mel_size` 128) and falls back to a width of 1280; of the Whisper models only large-v3 (and its
  turbo variant, whose encoder is the same) has 128 mel bins.
- Projector: 5 encoder frames concatenated (`speech_encoder_ds_rate`), hidden width 2048 (hard-coded
  in the reference).
- Speech generator: the inner decoder is Qwen3-0.6B (`pretrain_speech_generator_weights`; the
  reference fixes the generator's width at 1024, which is Qwen3-0.6B's hidden size); TQGF 16 heads x
  256, depth 2 (hard-coded); 16384 speech units at 12.5 Hz (the GLM-4-Voice tokenizer, whose decoder
  config the reference loads as `vocab_16K.yaml`).
- Blendshape generator: TQGF depth 2, 8 heads x 64 and rotation period 30 are the reference's
  defaults; its width, heads, layers and unit-embedding width are not published and are assumed
  here (marked ASSUMED below). It is a small part of the model either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

QWEN3_SIZES = {  # from the Qwen/Qwen3-<size> config.json files
    "0.6B": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, tie_word_embeddings=True),
    "1.7B": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                 num_key_value_heads=8, tie_word_embeddings=True),
    "4B": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
               num_key_value_heads=8, tie_word_embeddings=True),
    "8B": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
               num_key_value_heads=8, tie_word_embeddings=False),
    "14B": dict(hidden_size=5120, intermediate_size=17408, num_hidden_layers=40, num_attention_heads=40,
                num_key_value_heads=8, tie_word_embeddings=False),
}
QWEN3_COMMON = dict(head_dim=128, vocab_size=151936, max_position_embeddings=40960, rope_theta=1000000.0,
                    rms_norm_eps=1e-6, hidden_act="silu", attention_bias=False, use_sliding_window=False,
                    sliding_window=None, bos_token_id=151643, eos_token_id=151645)
RELEASED_LLM = "8B"  # ASSUMED: not stated in the public code or model card
SPEECH_GENERATOR_LLM = "0.6B"

WHISPER_LARGE_V3 = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                        decoder_layers=32, decoder_attention_heads=20, decoder_ffn_dim=5120, num_mel_bins=128,
                        max_source_positions=1500, max_target_positions=448, vocab_size=51866)

UNIT_VOCAB = 16384
SPEECH_FIELDS = dict(
    speech_encoder_type="whisper", speech_encoder_ds_rate=5, speech_projector_type="linear",
    speech_projector_hidden_dim=2048, speech_generator_type="ar", unit_vocab_size=UNIT_VOCAB,
    speech_generator_dim=1024, speech_generator_tqgf_dim_head=256, speech_generator_tqgf_heads=16,
    ctc_decoder_config="(2,1024,16,4096)", ctc_upsample_factor=4,  # parsed by the reference, unused
)
BLENDSHAPE_FIELDS = dict(
    bs_decoder_dimension=512,  # ASSUMED
    nhead=8,  # ASSUMED
    num_bs_decoder_layers=6,  # ASSUMED
    speech_embed_dim=512,  # ASSUMED
    speech_vocab_size=UNIT_VOCAB, out_dim=52, period=30, dropout_rate=0.0,
    bs_tqgf_depth=2, bs_tqgf_dim_head=64, bs_tqgf_heads=8,
)


def released_config_dicts(llm: str = RELEASED_LLM) -> tuple[dict, dict, dict]:
    """(config.json, Whisper config, speech generator Qwen3 config) with the released sizes."""
    from transformers import Qwen3Config, WhisperConfig

    if llm not in QWEN3_SIZES:
        raise ValueError(f"unknown Qwen3 size {llm!r}; use one of {', '.join(QWEN3_SIZES)}")
    whisper = WhisperConfig(**WHISPER_LARGE_V3, pad_token_id=50256, bos_token_id=50257, eos_token_id=50257,
                            decoder_start_token_id=50258).to_dict()
    generator = Qwen3Config(**QWEN3_COMMON, **QWEN3_SIZES[SPEECH_GENERATOR_LLM]).to_dict()
    text = Qwen3Config(**QWEN3_COMMON, **QWEN3_SIZES[llm]).to_dict()
    text.update(model_type="qwen3", architectures=["LlavaHerQwen3ForCausalLM"], torch_dtype="bfloat16",
                pretrain_speech_encoder_weights="openai/whisper-large-v3",
                pretrain_speech_generator_weights="Qwen/Qwen3-0.6B",
                speech_encoder_hidden_size=whisper["d_model"],
                speech_gen_hidden_size=generator["hidden_size"], **SPEECH_FIELDS, **BLENDSHAPE_FIELDS)
    return text, whisper, generator


def released_config(llm: str = RELEASED_LLM):
    from .configuration import ExomniConfig

    return ExomniConfig.from_dicts(*released_config_dicts(llm))


def parameter_count(config) -> int:
    """Parameters of the model a config describes (built without memory)."""
    import torch

    from .modeling import ExomniForCausalLM

    with torch.device("meta"):
        model = ExomniForCausalLM(config)
    seen, total = set(), 0
    for p in model.parameters():  # tied tensors once
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


@dataclass
class MemoryNeed:
    parameters: int
    need_bytes: int
    free_bytes: int | None

    @property
    def fits(self) -> bool:
        return self.free_bytes is None or self.need_bytes <= self.free_bytes


def memory_need(config, device, dtype) -> MemoryNeed:
    """Weights at `dtype` plus working room (activations, KV caches, the allocator's slack)."""
    import torch

    from .loading import free_memory_bytes

    count = parameter_count(config)
    itemsize = torch.empty((), dtype=dtype).element_size()
    need = int(count * itemsize * 1.1 + 1.5 * 2**30)
    return MemoryNeed(count, need, free_memory_bytes(device))


def random_model(config, device, dtype, seed: int = 0):
    """An ExomniForCausalLM with random weights, built directly on `device` in `dtype` (eval mode).

    The weights get the same initialisation as a freshly constructed model (transformers' for the
    Qwen3 parts, torch's defaults elsewhere), made on the device itself.
    """
    import torch

    from .modeling import ExomniForCausalLM

    device = torch.device(device)
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        try:
            torch.set_default_dtype(dtype)
            with device:
                model = ExomniForCausalLM(config)
        finally:
            torch.set_default_dtype(previous)
    return model.eval()


def random_released(device, dtype, llm: str = RELEASED_LLM, seed: int = 0, tokenizer_folder=None,
                    config=None):
    """A LoadedExomni with random weights of the released sizes (or of `config`), ready for the pipeline.

    The tokenizer is the small one of the tiny checkpoint (Qwen's cannot be downloaded here); its
    ids are a subset of Qwen's vocabulary range. The output heads are steered as in the tiny model,
    so replies use readable tokens and unit decoding stops soon after its minimum length, like a
    trained model's, instead of running to its maximum.
    """
    import tempfile
    from pathlib import Path

    import torch

    from .loading import CheckpointInfo, LoadedExomni, WeightReport
    from .prompting import prepare_tokenizer, stop_ids
    from .tiny import build_tokenizer, steer_text, steer_units

    t0 = time.perf_counter()
    config = config or released_config(llm)
    folder = Path(tokenizer_folder or tempfile.mkdtemp(prefix="exomni-released-"))
    tokenizer = prepare_tokenizer(build_tokenizer(folder))
    if len(tokenizer) > config.text.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} ids but the LLM only {config.text.vocab_size}")
    device = torch.device(device)
    model = random_model(config, device, dtype, seed)
    with torch.no_grad():
        if model.lm_head.weight is model.model.embed_tokens.weight:
            # Steering writes the head's column; a tied head would write the embeddings too.
            model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone(), requires_grad=False)
        steer_text(model, tokenizer)
        steer_units(model)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    info = CheckpointInfo(folder, dict(config.raw), [], 0, str(dtype).replace("torch.", ""))
    report = WeightReport()
    return LoadedExomni(model, tokenizer, config, device, dtype, stop_ids(tokenizer), report, info, folder,
                        time.perf_counter() - t0)


__all__ = ["QWEN3_SIZES", "RELEASED_LLM", "released_config_dicts", "released_config", "parameter_count",
           "memory_need", "random_model", "random_released"]
