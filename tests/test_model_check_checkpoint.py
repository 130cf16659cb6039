"""`exomni check-checkpoint DIR`: a downloaded checkpoint inspected without loading a weight."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from backend.commands import check_checkpoint as command  # noqa: E402
from backend.models.exomni.inspection import check_checkpoint  # noqa: E402
from backend.models.exomni.loading import load_exomni  # noqa: E402
from backend.models.exomni.tiny import make_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("check")
    return {name: make_tiny_checkpoint(root / name, seed=0, layout=name)
            for name in ("project", "published", "pretrained-whisper")}


def _run(*argv) -> int:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["check-checkpoint", *map(str, argv)])
    return args.func(args)


def _texts(report, status):
    return [text for s, text in report.lines if s == status]


@pytest.mark.parametrize("layout", ["project", "published", "pretrained-whisper"])
def test_each_layout_is_reported_loadable_as_the_loader_finds_it(layouts, layout, capsys):
    report = check_checkpoint(layouts[layout])
    loaded = load_exomni(layouts[layout], device="cpu")
    assert report.loadable and loaded.report.ok
    assert any(f"{loaded.report.loaded} tensors will load" in t for t in _texts(report, "ok"))
    unique = len({id(p) for p in loaded.model.parameters()})
    assert unique and report.parameters == sum(p.numel() for p in {id(p): p for p in loaded.model.parameters()}.values())
    assert report.bf16_bytes > report.parameters * 2
    model_type = "llava_her_qwen3" if layout == "project" else "qwen3"
    assert any(f"model_type {model_type!r}" in t for t in _texts(report, "ok"))
    pretrained = [t for t in _texts(report, "note") if "stores no speech_encoder" in t]
    assert bool(pretrained) == (layout == "pretrained-whisper")
    assert _run(layouts[layout]) == 0
    assert "verdict: will load" in capsys.readouterr().out


def test_missing_whisper_weights_are_a_problem_naming_the_folder(layouts, tmp_path, capsys):
    folder = shutil.copytree(layouts["pretrained-whisper"], tmp_path / "no_whisper")
    (folder / "speech_encoder" / "model.safetensors").unlink()
    report = check_checkpoint(folder)
    assert not report.loadable
    problem = " ".join(_texts(report, "problem"))
    assert "stores no speech_encoder" in problem and str(folder / "speech_encoder") in problem
    assert _run(folder) == 1
    assert "will NOT load" in capsys.readouterr().out


def test_missing_and_mismatched_tensors_are_named(layouts, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(layouts["published"], tmp_path / "broken")
    shard = folder / "model-00003-of-00003.safetensors"
    tensors = load_file(str(shard))
    dropped = next(k for k in tensors if k.startswith("blendshape_generator.out_head"))
    tensors.pop(dropped)
    widened = next(k for k in tensors if k.endswith(".weight") and tensors[k].dim() == 2 and k != dropped)
    tensors[widened] = torch.zeros(tensors[widened].shape[0], tensors[widened].shape[1] + 1)
    save_file(tensors, str(shard))
    report = check_checkpoint(folder)
    problem = " ".join(_texts(report, "problem"))
    assert not report.loadable
    assert "1 missing" in problem and dropped.replace("blendshape_generator", "model.blendshape_generator") in problem
    assert "1 shape mismatch" in problem and widened in problem


def test_not_an_exomni_folder_and_the_decoder_folder(layouts, tmp_path):
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "config.json").write_text(json.dumps({"model_type": "qwen3",
                                                              "architectures": ["Qwen3ForCausalLM"]}))
    report = check_checkpoint(tmp_path / "llm")
    assert not report.loadable and "not an Ex-Omni checkpoint" in _texts(report, "problem")[0]
    decoder = tmp_path / "decoder"
    decoder.mkdir()
    (decoder / "flow.pt").write_bytes(b"x" * 1024)
    report = check_checkpoint(layouts["project"], decoder=decoder)
    assert not report.loadable
    assert any("flow.pt" in t for t in _texts(report, "ok"))
    assert any("hift.pt" in t and "glm-4-voice-decoder" in t for t in _texts(report, "problem"))
