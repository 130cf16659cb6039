"""The released checkpoint layout: a tiny checkpoint written, inspected and loaded like the real one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.models.exomni import prompting  # noqa: E402
from backend.models.exomni.loading import CheckpointError, inspect_checkpoint, load_exomni  # noqa: E402
from backend.models.exomni.tiny import make_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


@pytest.fixture(scope="module")
def loaded(tiny):
    return load_exomni(tiny, device="cpu")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_layout_is_the_released_one(tiny):
    config = json.loads((tiny / "config.json").read_text())
    assert config["model_type"] == "llava_her_qwen3"
    index = json.loads((tiny / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2 and all((tiny / s).is_file() for s in shards)
    names = set(index["weight_map"])
    for prefix in ("model.embed_tokens.", "model.layers.", "lm_head.", "model.speech_encoder.model.encoder.",
                   "model.speech_encoder.model.decoder.", "model.speech_projector.", "model.speech_generator.llm.model.model.",
                   "model.blendshape_generator."):
        assert any(n.startswith(prefix) for n in names), prefix
    assert (tiny / config["pretrain_speech_encoder_weights"] / "config.json").is_file()
    assert (tiny / config["pretrain_speech_generator_weights"] / "config.json").is_file()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        assert (tiny / name).is_file(), name


def test_every_weight_is_consumed_or_explained(loaded):
    report = loaded.report
    assert report.ok, report.summary()
    assert not report.missing and not report.unexpected and not report.mismatched
    reasons = " ".join(report.ignored)
    assert "Whisper decoder" in reasons and "inner text head" in reasons
    ignored = [n for names in report.ignored.values() for n in names]
    assert all(n.startswith("model.speech_encoder.model.decoder.") or n.endswith("llm.model.lm_head.weight")
               for n in ignored)
    stored = json.loads((loaded.info.folder / "model.safetensors.index.json").read_text())["weight_map"]
    assert report.loaded + len(ignored) == len(stored)
    tensors = list(loaded.model.named_parameters()) + list(loaded.model.named_buffers())
    assert not [n for n, t in tensors if t.is_meta or t.device.type != "cpu" or
                (t.is_floating_point() and t.dtype != torch.float32)]


def test_weights_match_the_files(loaded):
    from safetensors.torch import load_file

    stored = {}
    for shard in loaded.info.shards:
        stored.update(load_file(str(shard)))
    state = loaded.model.state_dict()
    for name in ("model.layers.1.mlp.down_proj.weight", "lm_head.weight",
                 "model.speech_generator.llm.model.model.layers.0.self_attn.q_norm.weight",
                 "model.blendshape_generator.out_head.4.bias", "model.speech_projector.linear2.bias"):
        assert torch.equal(state[name], stored[name]), name


def test_tokenizer_has_speech_token_and_chat_template(loaded):
    tok = loaded.tokenizer
    ids = prompting.prompt_ids(tok, prompting.chat_messages("Hi there", with_speech=True, system="Be brief."))
    assert ids.count(-300) == 1
    text = tok.decode([i for i in ids if i >= 0])
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n\nHi there<|im_end|>\n"
                    "<|im_start|>assistant\n")
    assert tok.convert_tokens_to_ids(prompting.IM_END) in loaded.eos_ids
    assert tok.decode(prompting.reply_ids(tok, "Hello there.")[:-1]) == "Hello there."


def test_same_seed_same_checkpoint(tmp_path):
    a = make_tiny_checkpoint(tmp_path / "a", seed=5)
    b = make_tiny_checkpoint(tmp_path / "b", seed=5)
    c = make_tiny_checkpoint(tmp_path / "c", seed=6)
    shard = "model-00001-of-00003.safetensors"
    assert (a / shard).read_bytes() == (b / shard).read_bytes()
    assert (a / shard).read_bytes() != (c / shard).read_bytes()


def test_no_or_wrong_folder_says_what_to_do(tmp_path):
    with pytest.raises(CheckpointError, match="make-tiny-checkpoint"):
        inspect_checkpoint(None)
    with pytest.raises(CheckpointError, match="does not exist"):
        inspect_checkpoint(tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(CheckpointError, match="not an Ex-Omni checkpoint"):
        inspect_checkpoint(tmp_path / "other")


def test_partial_download_names_missing_shard(tiny, tmp_path):
    folder = _copy(tiny, tmp_path / "partial")
    (folder / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00002-of-00003.safetensors.*partial"):
        inspect_checkpoint(folder)


def test_unresolvable_sub_model_says_what_to_download(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("EXOMNI_SPEECH_ENCODER", raising=False)
    folder = _copy(tiny, tmp_path / "no_whisper")
    config = json.loads((folder / "config.json").read_text())
    config["pretrain_speech_encoder_weights"] = "openai/whisper-large-v3"
    (folder / "config.json").write_text(json.dumps(config))
    moved = tmp_path / "elsewhere"
    shutil.move(str(folder / "speech_encoder"), moved)
    with pytest.raises(CheckpointError) as err:
        load_exomni(folder, device="cpu")
    message = str(err.value)
    assert "openai/whisper-large-v3" in message and "pretrain_speech_encoder_weights" in message
    assert "huggingface-cli download" in message and "EXOMNI_SPEECH_ENCODER" in message
    monkeypatch.setenv("EXOMNI_SPEECH_ENCODER", str(moved))  # the override finds it
    assert load_exomni(folder, device="cpu").report.ok
    shutil.move(str(moved), folder / "whisper-large-v3")  # so does a sub-folder named after the reference
    monkeypatch.delenv("EXOMNI_SPEECH_ENCODER")
    assert load_exomni(folder, device="cpu").speech_encoder_folder.name == "whisper-large-v3"


def _rewrite_shard(folder: Path, edit):
    from safetensors.torch import load_file, save_file

    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    shard = folder / "model-00003-of-00003.safetensors"
    tensors = load_file(str(shard))
    edit(tensors)
    save_file(tensors, str(shard))
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v != shard.name}
    index["weight_map"].update({k: shard.name for k in tensors})
    index_path.write_text(json.dumps(index))


def test_unexpected_and_missing_weights_are_refused(tiny, tmp_path):
    folder = _copy(tiny, tmp_path / "extra")
    _rewrite_shard(folder, lambda t: t.update({"model.blendshape_generator.surprise": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match="unexpected: model.blendshape_generator.surprise"):
        load_exomni(folder, device="cpu")
    folder = _copy(tiny, tmp_path / "missing")
    _rewrite_shard(folder, lambda t: [t.pop(k) for k in list(t) if k.endswith("out_head.4.weight")])
    with pytest.raises(CheckpointError, match="missing: model.blendshape_generator.out_head.4.weight"):
        load_exomni(folder, device="cpu")


def test_rotation_table_stored_once_is_derived(tiny, tmp_path):
    folder = _copy(tiny, tmp_path / "one_inv_freq")
    _rewrite_shard(folder, lambda t: t.pop("model.blendshape_generator.transformer_encoder.rope.inv_freq", None))
    loaded = load_exomni(folder, device="cpu")
    assert loaded.report.ok and any("inv_freq" in why for why in loaded.report.derived)
    assert torch.isfinite(loaded.model.model.blendshape_generator.rope.inv_freq).all()


def test_cuda_requested_without_cuda(tiny):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(CheckpointError, match="CUDA"):
        load_exomni(tiny, device="cuda")


# -- the released checkpoint as published ---------------------------------------------------------------
def _say(loaded, line="Hello there, how are you?", seed=1):
    from backend.models.exomni.pipeline import ExomniPipeline

    return ExomniPipeline(loaded).say(line, generator=torch.Generator().manual_seed(seed))


def test_published_layout_qwen3_and_bare_prefixes_makes_the_same_take(tiny, loaded, tmp_path):
    published = make_tiny_checkpoint(tmp_path / "published", seed=0, layout="published")
    config = json.loads((published / "config.json").read_text())
    names = json.loads((published / "model.safetensors.index.json").read_text())["weight_map"]
    assert config["model_type"] == "qwen3"
    assert any(n.startswith("speech_generator.") for n in names) and any(n.startswith("blendshape_generator.")
                                                                          for n in names)
    assert not any(n.startswith(("model.speech_", "model.blendshape_")) for n in names)
    other = load_exomni(published, device="cpu")
    assert other.report.ok and other.report.loaded == loaded.report.loaded
    a, b = _say(loaded), _say(other)
    assert a.units == b.units and np.array_equal(a.blendshapes, b.blendshapes)


def test_model_model_prefix_is_accepted_too(tiny, tmp_path):
    folder = _copy(tiny, tmp_path / "double")

    def deeper(tensors):
        for k in [k for k in tensors if k.startswith("model.speech_projector.")]:
            tensors["model." + k] = tensors.pop(k)

    _rewrite_shard(folder, deeper)
    assert load_exomni(folder, device="cpu").report.ok


def test_without_stored_speech_encoder_the_referenced_whisper_is_loaded(loaded, tmp_path):
    from safetensors.torch import load_file

    folder = make_tiny_checkpoint(tmp_path / "pretrained", seed=0, layout="pretrained-whisper")
    names = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    assert not any("speech_encoder" in n for n in names)
    other = load_exomni(folder, device="cpu")
    assert other.report.ok and other.speech_encoder_source == f"pretrained Whisper in {folder / 'speech_encoder'}"
    whisper = load_file(str(folder / "speech_encoder" / "model.safetensors"))
    state = other.model.state_dict()
    for name in ("encoder.conv1.weight", "encoder.layers.0.fc2.bias", "encoder.layer_norm.weight"):
        assert torch.equal(state[f"model.speech_encoder.model.{name}"], whisper[f"model.{name}"])
        assert torch.equal(state[f"model.speech_encoder.model.{name}"],
                           loaded.model.state_dict()[f"model.speech_encoder.model.{name}"])
    a, b = _say(loaded), _say(other)
    assert a.units == b.units and np.array_equal(a.blendshapes, b.blendshapes)
    (folder / "speech_encoder" / "model.safetensors").unlink()  # only the configs were downloaded
    with pytest.raises(CheckpointError) as err:
        load_exomni(folder, device="cpu")
    assert "stores no speech_encoder" in str(err.value) and "no weights" in str(err.value)
    assert str(folder / "speech_encoder") in str(err.value)


@pytest.mark.parametrize("edit, accepted", [
    ({"model_type": "qwen3"}, True),
    ({"model_type": "qwen3", "architectures": None}, True),  # known by its speech/blendshape fields
    ({"model_type": "qwen2"}, True),  # any type AutoConfig reads, as the official loader
    ({"model_type": "not_a_model_type"}, False),
])
def test_model_types_the_official_loader_accepts(tiny, tmp_path, edit, accepted):
    folder = _copy(tiny, tmp_path / "typed")
    config = json.loads((folder / "config.json").read_text())
    config.update(edit)
    (folder / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    if accepted:
        assert inspect_checkpoint(folder).config["model_type"] == edit["model_type"]
    else:
        with pytest.raises(CheckpointError, match="not an Ex-Omni checkpoint.*not_a_model_type.*AutoConfig"):
            inspect_checkpoint(folder)


def test_a_qwen3_llm_without_speech_fields_is_refused(tmp_path):
    (tmp_path / "qwen").mkdir()
    (tmp_path / "qwen" / "config.json").write_text(json.dumps({"model_type": "qwen3",
                                                               "architectures": ["Qwen3ForCausalLM"]}))
    with pytest.raises(CheckpointError, match="not an Ex-Omni checkpoint.*Qwen3ForCausalLM"):
        inspect_checkpoint(tmp_path / "qwen")


def test_sampling_and_stop_tokens_come_from_generation_config(tiny, tmp_path):
    from backend.engines.exomni import sampling_from_options

    folder = _copy(tiny, tmp_path / "gen")
    generation = json.loads((folder / "generation_config.json").read_text())
    generation.update(top_k=20, top_p=0.95, repetition_penalty=1.05, temperature=0.6, eos_token_id=[7, 9])
    (folder / "generation_config.json").write_text(json.dumps(generation))
    other = load_exomni(folder, device="cpu")
    assert {7, 9} <= set(other.eos_ids)
    text, _, _ = sampling_from_options({}, other.generation)
    assert (text.top_k, text.top_p, text.repetition_penalty) == (20, 0.95, 1.05)
    assert text.temperature == 0.2  # the demo's, not generation_config's
    text, _, _ = sampling_from_options({"top_k": 3, "repetition_penalty": 1.0}, other.generation)
    assert (text.top_k, text.top_p, text.repetition_penalty) == (3, 0.95, 1.0)  # the request wins


def test_prompt_is_cut_to_tokenizer_model_max_length(tiny, tmp_path):
    from backend.models.exomni import prompting
    from backend.models.exomni.pipeline import ExomniPipeline

    folder = _copy(tiny, tmp_path / "short")
    config = json.loads((folder / "config.json").read_text())
    config["tokenizer_model_max_length"] = 24
    (folder / "config.json").write_text(json.dumps(config))
    pipeline = ExomniPipeline(load_exomni(folder, device="cpu"))
    messages = prompting.chat_messages("Tell me about the quick brown fox.")
    full = len(prompting.prompt_ids(pipeline.tokenizer, messages))
    assert full > 24
    embeds = pipeline._embed(messages)
    assert embeds.shape[1] == 24 and pipeline._dropped == full - 24
    untouched = ExomniPipeline(load_exomni(tiny, device="cpu"))
    assert torch.equal(untouched._embed(messages)[:, :24], embeds)  # the first positions are kept
    performance = pipeline.chat("Tell me about the quick brown fox.", max_new_tokens=4,
                                generator=torch.Generator().manual_seed(0))
    assert performance.prompt_dropped == full - 24


def test_released_sizes_on_meta_every_weight_name_and_shape(tmp_path):
    """At the released sizes (built without memory), every tensor has the name and shape the official
    code gives it: the LLM, the Whisper encoder and the speech generator's decoder against transformers'
    own classes, the speech and face parts against the reference's state-dict names (the fixtures)."""
    import re

    from transformers import Qwen3ForCausalLM, Qwen3Model, WhisperModel

    from backend.models.exomni import released
    from backend.models.exomni.loading import IGNORED_ON_PURPOSE, _reason
    from backend.models.exomni.modeling import ExomniForCausalLM
    from conftest import shared_dir

    config = released.released_config()
    with torch.device("meta"):
        ours = {n: tuple(t.shape) for n, t in ExomniForCausalLM(config).state_dict().items()}
        expected = {n: tuple(t.shape) for n, t in Qwen3ForCausalLM(config.text).state_dict().items()}
        encoder = WhisperModel(config.speech_encoder.whisper).encoder.state_dict()
        expected.update({f"model.speech_encoder.model.encoder.{n}": tuple(t.shape) for n, t in encoder.items()})
        decoder = Qwen3Model(config.speech_generator.decoder).state_dict()
        expected.update({f"model.speech_generator.llm.model.model.{n}": tuple(t.shape) for n, t in decoder.items()})
    for name, shape in expected.items():
        assert ours.get(name) == shape, (name, ours.get(name), shape)
    d, h, v = 512, 4096, 16384
    sizes = {
        "model.speech_projector.linear1.weight": (2048, 1280 * 5), "model.speech_projector.linear2.weight": (h, 2048),
        "model.speech_generator.input_proj.0.weight": (4 * 1024, h), "model.speech_generator.llm_decoder.weight": (v + 3, 1024),
        "model.speech_generator.speech_embedding.weight": (v + 3, 1024),
        "model.speech_generator.tqgf.layers.0.0.to_q.weight": (16 * 256, 1024),
        "model.blendshape_generator.speech_gen_projection.weight": (d, 1024),
        "model.blendshape_generator.speech_token_embedding.weight": (v, 512),
        "model.blendshape_generator.out_head.4.weight": (52, d // 2),
        "model.blendshape_generator.rope.inv_freq": (d // 2,),
    }
    for name, shape in sizes.items():
        assert ours[name] == shape, (name, ours[name], shape)
    params = shared_dir() / "fixtures" / "exomni" / "end_to_end" / "params.json"
    if not params.is_file():
        pytest.skip(f"the reference's names (fixtures) are not at {params}; the shapes above were checked")
    pattern = lambda n: re.sub(r"\.\d+\.", ".N.", re.sub(r"\.\d+\.", ".N.", n))  # noqa: E731
    reference = {pattern(p["name"]) for p in json.loads(params.read_text())
                 if not _reason(IGNORED_ON_PURPOSE, p["name"])}
    assert {pattern(n) for n in ours} == reference
