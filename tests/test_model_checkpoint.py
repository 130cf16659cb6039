"""The released checkpoint layout: a tiny checkpoint written, inspected and loaded like the real one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
