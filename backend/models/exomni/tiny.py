"""A small random Ex-Omni checkpoint in the released layout, for tests and for anyone without the weights.

The folder looks like Tencent/Ex-Omni in this project's own layout: `config.json` (model_type
`llava_her_qwen3`, the type the reference code registers; the published config says `qwen3`, which
loads the same) whose
`pretrain_speech_encoder_weights` / `pretrain_speech_generator_weights` name sub-folders holding a
Whisper and a Qwen3 config, weights in several safetensors shards with their index (including the
Whisper decoder and the inner text head that the released files carry and the loader ignores), and a
real byte-level BPE tokenizer in Qwen's format, trained here on a few sentences, with the special
tokens the chat template needs.

Random weights say random things. Three edits make the tiny model behave like a trained one where
tests look: one residual channel is held constant (its embedding entry fixed, nothing writes to
it), and the output heads read it to keep special and unused text tokens, unit 0 and the ids above
EOS out of reach, and to make EOS likely once it is allowed, so replies are readable text and unit
decoding stops soon after its minimum length.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .prompting import END_OF_TEXT, IM_END, IM_START, SPEECH_TOKEN

SHARDS = 3
_CORPUS = """\
Hello there, how are you today? I am fine, thank you, and you?
The quick brown fox jumps over the lazy dog. A talking head speaks every line you type.
Take one: the animator types a line and the model says it with a face that moves.
Good morning! What a lovely day it is. Please say that again, a little slower this time.
We are testing the speech generator and the blendshape generator on a tiny random model.
Numbers like 1, 2, 3 and 42 appear too; so do questions, answers and short replies.
She sells sea shells by the sea shore. Peter Piper picked a peck of pickled peppers.
"""
_QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

TEXT_DIMS = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=8)
GENERATOR_DIMS = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=8)
UNIT_VOCAB = 64
MEL_BINS, WHISPER_POSITIONS = 128, 50  # 100 mel frames = 1 s of audio


def build_tokenizer(folder: Path, vocab_size: int = 400):
    """Train a byte-level BPE like Qwen's on the built-in sentences; save it in Qwen's file format."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in (END_OF_TEXT, IM_START, IM_END)])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=END_OF_TEXT,
                                      model_max_length=4096, clean_up_tokenization_spaces=False)
    wrapped.save_pretrained(str(folder))
    tok.model.save(str(folder))  # vocab.json + merges.txt, as Qwen ships them
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.update(tokenizer_class="Qwen2Tokenizer", errors="replace", split_special_tokens=False)
    config_path.write_text(json.dumps(config, indent=2))
    return wrapped


def tiny_configs(vocab_size: int, special_ids: dict) -> tuple[dict, dict, dict]:
    """(config.json, Whisper config, speech generator Qwen3 config) as dicts."""
    from transformers import Qwen3Config, WhisperConfig

    whisper = WhisperConfig(
        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=MEL_BINS, max_source_positions=WHISPER_POSITIONS,
        max_target_positions=16, vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1,
    ).to_dict()
    generator = Qwen3Config(vocab_size=vocab_size, tie_word_embeddings=True, max_position_embeddings=4096,
                            sliding_window=None,
                            rope_theta=1000000.0, rms_norm_eps=1e-6, **GENERATOR_DIMS).to_dict()
    text = Qwen3Config(vocab_size=vocab_size, tie_word_embeddings=False, max_position_embeddings=4096,
                       sliding_window=None,
                       rope_theta=1000000.0, rms_norm_eps=1e-6, bos_token_id=special_ids[END_OF_TEXT],
                       eos_token_id=special_ids[IM_END], pad_token_id=special_ids[END_OF_TEXT],
                       **TEXT_DIMS).to_dict()
    text.update(
        model_type="llava_her_qwen3", architectures=["LlavaHerQwen3ForCausalLM"], torch_dtype="float32",
        pretrain_speech_encoder_weights="speech_encoder", pretrain_speech_generator_weights="speech_generator",
        speech_encoder_type="whisper", speech_encoder_ds_rate=5, speech_encoder_hidden_size=whisper["d_model"],
        speech_projector_type="linear", speech_projector_hidden_dim=32,
        speech_generator_type="ar", unit_vocab_size=UNIT_VOCAB, ctc_decoder_config="(1,32,2,64)",
        ctc_upsample_factor=4, speech_generator_dim=GENERATOR_DIMS["hidden_size"],
        speech_generator_tqgf_dim_head=8, speech_generator_tqgf_heads=4,
        bs_decoder_dimension=32, nhead=2, num_bs_decoder_layers=1, dropout_rate=0.0, out_dim=52,
        speech_vocab_size=UNIT_VOCAB, speech_embed_dim=16, speech_gen_hidden_size=GENERATOR_DIMS["hidden_size"],
        period=30, bs_tqgf_depth=1, bs_tqgf_dim_head=8, bs_tqgf_heads=4,
    )
    return text, whisper, generator


def _hold_channel(qwen3_model, channel: int, value: float, embeddings=()):
    """Nothing writes residual channel `channel`; the given embedding tables set it to `value`."""
    for layer in qwen3_model.layers:
        layer.self_attn.o_proj.weight.data[channel] = 0.0
        layer.mlp.down_proj.weight.data[channel] = 0.0
    qwen3_model.norm.weight.data[channel] = 1.0
    for table in embeddings:
        table.data[:, channel] = value


def _readable(piece: str) -> bool:
    return bool(piece) and piece.isprintable() and "\ufffd" not in piece


def _steer(model, tokenizer, channel: int = 0):
    steer_text(model, tokenizer, channel)
    steer_units(model, channel)


def steer_text(model, tokenizer, channel: int = 0):
    """Keep special, unreadable and unused text ids out of the LLM's reach (the head must be untied)."""
    text_cfg = model.config.text
    width = text_cfg.hidden_size
    _hold_channel(model.model, channel, 1.0, [model.model.embed_tokens.weight])
    # The held channel reaches the final norm's output at about sqrt(width).
    specials = {tokenizer.convert_tokens_to_ids(t) for t in (END_OF_TEXT, IM_START, IM_END, SPEECH_TOKEN)}
    unreadable = {i for i in range(len(tokenizer)) if not _readable(tokenizer.decode([i]))}
    blocked = sorted(set(range(len(tokenizer), text_cfg.vocab_size)) | specials | unreadable)
    model.lm_head.weight.data[:, channel] = 0.0
    model.lm_head.weight.data[blocked, channel] = -30.0 / math.sqrt(width)


def steer_units(model, channel: int = 0):
    """Keep unit 0 and the ids above EOS out of reach, and make EOS likely once it is allowed."""
    gen = model.model.speech_generator
    d, eos = gen.config.dim, gen.config.eos_id
    held = 4.0
    _hold_channel(gen.decoder, channel, held, [gen.speech_embedding.weight])
    gen.llm_embedding.weight.data[:, channel] = held
    rms = math.sqrt((held ** 2 + (d - 1)) / d)  # the other channels of the unit embeddings are ~N(0, 1)
    reach = held / rms
    gen.llm_decoder.bias.data.zero_()
    gen.llm_decoder.weight.data[:, channel] = 0.0
    gen.llm_decoder.weight.data[eos, channel] = 4.0 / reach
    gen.llm_decoder.weight.data[[0, eos + 1, eos + 2], channel] = -30.0 / reach


LAYOUTS = {
    "project": "model_type llava_her_qwen3, every speech part under model.",
    "published": "model_type qwen3, the speech parts under bare prefixes (speech_encoder., ...)",
    "pretrained-whisper": "as published, but no speech_encoder.* stored: the Whisper weights sit in the "
                          "referenced speech_encoder folder, as a Hugging Face Whisper model",
}
SPEECH_PREFIXES = ("model.speech_encoder.", "model.speech_projector.", "model.speech_generator.",
                   "model.blendshape_generator.")


def make_tiny_checkpoint(folder, seed: int = 0, layout: str = "project") -> Path:
    """Write the tiny checkpoint into `folder` (created if needed) and return its path.

    `layout` (see LAYOUTS) changes only how the same weights are named and where they are stored, so
    every layout of one seed makes the same takes."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    import torch
    from safetensors.torch import save_file
    from transformers import WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperDecoder

    from .configuration import ExomniConfig, whisper_config
    from .modeling import ExomniForCausalLM
    from .prompting import prepare_tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(folder)
    special = {t: tokenizer.convert_tokens_to_ids(t) for t in (END_OF_TEXT, IM_START, IM_END)}
    vocab = int(math.ceil((len(tokenizer) + 1) / 64) * 64)  # room for <speech>, padded as Qwen pads
    text, whisper, generator = tiny_configs(vocab, special)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ExomniForCausalLM(ExomniConfig.from_dicts(text, whisper, generator)).eval()
        _steer(model, prepare_tokenizer(tokenizer), channel=0)
        whisper_decoder = WhisperDecoder(whisper_config(whisper))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # What the released files also carry: the unused Whisper decoder and the inner text head.
    state.update({f"model.speech_encoder.model.decoder.{k}": v.detach().clone().contiguous()
                  for k, v in whisper_decoder.state_dict().items()})
    state["model.speech_generator.llm.model.lm_head.weight"] = \
        state["model.speech_generator.llm.model.model.embed_tokens.weight"].clone()
    whisper_state = {}
    if layout != "project":
        text["model_type"] = "qwen3"
        state = {(k[len("model."):] if k.startswith(SPEECH_PREFIXES) else k): v for k, v in state.items()}
    if layout == "pretrained-whisper":
        # Hugging Face's WhisperForConditionalGeneration names: model.encoder.*, model.decoder.*, proj_out.
        whisper_state = {f"model.{k[len('speech_encoder.model.'):]}": state.pop(k)
                         for k in [k for k in state if k.startswith("speech_encoder.model.")]}
        whisper_state["proj_out.weight"] = whisper_state["model.decoder.embed_tokens.weight"].clone()

    names = list(state)
    per_shard = math.ceil(len(names) / SHARDS)
    weight_map, total = {}, 0
    for i in range(SHARDS):
        shard_name = f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors"
        part = {k: state[k] for k in names[i * per_shard:(i + 1) * per_shard]}
        save_file(part, str(folder / shard_name), metadata={"format": "pt"})
        weight_map.update({k: shard_name for k in part})
        total += sum(t.numel() * t.element_size() for t in part.values())
    _write_json(folder / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})
    _write_json(folder / "config.json", text)
    _write_json(folder / "generation_config.json", {
        "bos_token_id": special[END_OF_TEXT], "eos_token_id": [special[IM_END], special[END_OF_TEXT]],
        "pad_token_id": special[END_OF_TEXT], "do_sample": True, "temperature": 0.2, "top_k": 50, "top_p": 1.0,
    })
    (folder / "speech_encoder").mkdir(exist_ok=True)
    _write_json(folder / "speech_encoder" / "config.json", whisper)
    if whisper_state:
        save_file(whisper_state, str(folder / "speech_encoder" / "model.safetensors"), metadata={"format": "pt"})
    WhisperFeatureExtractor(feature_size=MEL_BINS, chunk_length=2 * WHISPER_POSITIONS // 100).save_pretrained(
        str(folder / "speech_encoder"))
    (folder / "speech_generator").mkdir(exist_ok=True)
    _write_json(folder / "speech_generator" / "config.json", generator)
    return folder


def _write_json(path: Path, data: dict):
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
