"""Numerical parity of the Ex-Omni parts with the reference fixtures (shared/fixtures/exomni)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.parity import find_fixtures, run_parity  # noqa: E402

from conftest import shared_dir  # noqa: E402

FIXTURES = shared_dir() / "fixtures" / "exomni"
MODEL_KINDS = ("blendshape_generator", "speech_generator", "speech_encoder_projector", "end_to_end")


@pytest.fixture(scope="module")
def fixtures() -> Path:
    if not (FIXTURES / "blendshape_generator").is_dir():
        pytest.skip(f"parity fixtures not found at {FIXTURES} (set EXOMNI_SHARED to the folder holding fixtures/exomni)")
    return FIXTURES


def _run(root) -> tuple[bool, list[str]]:
    lines: list[str] = []
    return run_parity(root, out=lines.append), lines


def test_public_fixtures_pass(fixtures):
    """Every output of the model's four fixtures within tolerance (the audio decoder has its own tests)."""
    from safetensors import safe_open

    for kind in MODEL_KINDS:
        ok, lines = _run(fixtures / kind)
        failing = [line for line in lines if not line.endswith("  ok")]
        assert ok and lines and not failing, "\n".join(failing or lines)
        with safe_open(str(fixtures / kind / "outputs.safetensors"), "pt") as f:
            for key in f.keys():  # every recorded output gets its own line
                assert any(line.startswith(f"{kind}/{key}  ") for line in lines), f"{kind}/{key} not compared"


def test_audio_decoder_is_delegated(fixtures, tmp_path):
    """The audio decoder's fixture goes to its own package, or is reported as skipped without it."""
    if not (fixtures / "audio_decoder").is_dir():
        pytest.skip("no audio_decoder fixture")
    (tmp_path / "audio_decoder").mkdir()
    (tmp_path / "audio_decoder" / "config.json").write_text("{}")
    lines: list[str] = []
    try:
        import backend.models.audio_decoder.parity  # noqa: F401
    except ModuleNotFoundError:
        assert run_parity(tmp_path, out=lines.append) and lines == ["audio_decoder: skipped (decoder not installed)"]
    else:  # an empty fixture folder is an error of that fixture, reported as a failure
        assert not run_parity(tmp_path, out=lines.append) and "FAIL" in lines[0]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


def test_a_perturbed_weight_fails(fixtures, tmp_path):
    """A fixture whose layer-norm bias is off by 1e-2 must fail, and the command must exit 1."""
    from safetensors.torch import load_file, save_file

    from backend.cli import main

    folder = _copy(fixtures / "blendshape_generator", tmp_path / "broken" / "blendshape_generator")
    weights = load_file(str(folder / "weights.safetensors"))
    weights["model.blendshape_generator.tqgf.norm.bias"] += 1e-2
    save_file(weights, str(folder / "weights.safetensors"))
    ok, lines = _run(tmp_path / "broken")
    assert not ok
    assert any(line.startswith("blendshape_generator/a_all_positive.blendshapes") and line.endswith("FAIL")
               for line in lines)
    assert main(["parity", str(tmp_path / "broken")]) == 1


def test_an_unknown_weight_is_reported(fixtures, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _copy(fixtures / "speech_generator", tmp_path / "extra" / "speech_generator")
    weights = load_file(str(folder / "weights.safetensors"))
    weights["model.speech_generator.not_a_weight"] = torch.zeros(3)
    save_file(weights, str(folder / "weights.safetensors"))
    ok, lines = _run(tmp_path / "extra")
    assert not ok
    assert any("weights" in line and "not_a_weight" in line and "FAIL" in line for line in lines)


def test_dimensions_come_from_each_fixture(tmp_path):
    """A blendshape fixture of other sizes (written here) is found in a nested folder and run at its sizes."""
    from safetensors.torch import save_file

    from backend.models.exomni.blendshape_generator import BlendshapeGenerator
    from backend.models.exomni.configuration import BlendshapeGeneratorConfig

    config = {"bs_decoder_dimension": 24, "nhead": 3, "num_bs_decoder_layers": 1, "dropout_rate": 0.0,
              "out_dim": 52, "speech_vocab_size": 40, "speech_embed_dim": 8, "speech_gen_hidden_size": 20,
              "period": 25, "bs_tqgf_depth": 1, "bs_tqgf_dim_head": 4, "bs_tqgf_heads": 3}
    torch.manual_seed(3)
    module = BlendshapeGenerator(BlendshapeGeneratorConfig.from_model_config(config)).eval()
    folder = tmp_path / "other_seed" / "blendshape_generator"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file({f"model.blendshape_generator.{k}": v.clone().contiguous() for k, v in module.state_dict().items()},
              str(folder / "weights.safetensors"))
    units = torch.randint(1, 40, (1, 9))
    hidden = torch.randn(1, 10, 20)
    with torch.no_grad():
        out = module(hidden, units)
    save_file({"x.speech_gen_hidden_states": hidden, "x.speech_tokens": units}, str(folder / "inputs.safetensors"))
    save_file({"x.blendshapes": out.blendshapes, "x.target_frames": torch.tensor([out.target_frames])},
              str(folder / "outputs.safetensors"))
    assert [k for k, _ in find_fixtures(tmp_path)] == ["blendshape_generator"]
    ok, lines = _run(tmp_path)
    assert ok, "\n".join(lines)
    assert lines[0].startswith("other_seed/blendshape_generator/x.blendshapes")
    assert out.target_frames == 21  # floor(9 / 12.5 * 30)


def test_empty_folder_is_a_failure(tmp_path):
    ok, lines = _run(tmp_path)
    assert not ok and "no fixture folders" in lines[0]
