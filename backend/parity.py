"""Numerical parity of the Ex-Omni parts against reference fixtures.

A fixture folder (see shared/fixtures/exomni/README.md) holds a part's config, its weights under the
released names, inputs and the reference's recorded outputs. Every folder under the given root named
after a known part is run with the dimensions of its own config, and each recorded output is
compared at the README's tolerances: one line per output, `<fixture>/<output>  max_abs_err=...  ok|FAIL`.
The audio decoder's fixtures are checked by that decoder's own package when it is installed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

KINDS = ("blendshape_generator", "speech_generator", "speech_encoder_projector", "end_to_end", "audio_decoder")
WHISPER_CONFIG = "whisper_config.json"
GENERATOR_CONFIG = "speech_generator_qwen3_config.json"


@dataclass
class Tolerance:
    atol: float
    rtol: float = 0.0


TOLERANCES = {  # float outputs; ids, lengths and masks must match exactly
    "blendshape_generator": Tolerance(2e-4, 1e-4),
    "speech_generator": Tolerance(1e-4),
    "speech_encoder_projector": Tolerance(1e-5),
    "end_to_end": Tolerance(1e-4),
}


@dataclass
class Comparison:
    name: str
    max_abs_err: float
    ok: bool
    note: str = ""


def find_fixtures(root) -> list[tuple[str, Path]]:
    """(kind, folder) for every fixture folder at or under root, in a stable order."""
    root = Path(root)
    found = []
    for folder, _, files in os.walk(root):
        folder = Path(folder)
        if folder.name in KINDS and "config.json" in files:
            found.append((folder.name, folder))
    return sorted(found, key=lambda kf: (str(kf[1].parent), KINDS.index(kf[0])))


def compare(name: str, got, want, tol: Tolerance | None) -> Comparison:
    """tol None = exact (ids, lengths, masks)."""
    import numpy as np

    if got is None:
        return Comparison(name, math.inf, False, "not computed")
    got, want = _numpy(got), _numpy(want)
    if got.shape != want.shape:
        return Comparison(name, math.inf, False, f"shape {list(got.shape)} vs expected {list(want.shape)}")
    if got.size == 0:
        return Comparison(name, 0.0, True)
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    err = float(diff.max())
    if tol is None or want.dtype.kind in "biu":
        return Comparison(name, err, bool(err == 0.0))
    ok = bool(np.all(diff <= tol.atol + tol.rtol * np.abs(want.astype(np.float64))))
    return Comparison(name, err, ok)


def _numpy(x):
    import numpy as np

    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.dtype.is_floating_point:
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def _load(folder: Path, name: str):
    from safetensors.torch import load_file

    return load_file(str(folder / name))


def _config(folder: Path, name: str = "config.json") -> dict:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; a fixture of this kind needs it")
    return json.loads(path.read_text(encoding="utf-8"))


def _released_root(**parts):
    """A module whose state-dict names are the released ones (`model.<part>.*`)."""
    from torch import nn

    root = nn.Module()
    root.model = nn.Module()
    for name, module in parts.items():
        setattr(root.model, name, module)
    return root.eval()


def _load_weights(module, folder: Path) -> Comparison | None:
    from .models.exomni.loading import load_weights

    report = load_weights(module, [(folder, _load(folder, "weights.safetensors"))])
    if not report.ok:
        return Comparison("weights", math.inf, False, report.summary())
    return None


def _case_outputs(outputs: dict, computed: dict, label_tol: Tolerance) -> list[Comparison]:
    """Compare every recorded output key with what was computed under the same key."""
    lines = []
    for key in sorted(outputs):
        want = outputs[key]
        tol = None if not want.dtype.is_floating_point else label_tol
        lines.append(compare(key, computed.get(key), want, tol))
    return lines


# -- the parts --------------------------------------------------------------------------------------
def check_blendshape_generator(folder: Path) -> list[Comparison]:
    import torch

    from .models.exomni.blendshape_generator import BlendshapeGenerator
    from .models.exomni.configuration import BlendshapeGeneratorConfig

    module = BlendshapeGenerator(BlendshapeGeneratorConfig.from_model_config(_config(folder)))
    problem = _load_weights(_released_root(blendshape_generator=module), folder)
    inputs, outputs = _load(folder, "inputs.safetensors"), _load(folder, "outputs.safetensors")
    computed = {}
    for case in sorted({k.split(".", 1)[0] for k in inputs}):
        with torch.no_grad():
            out = module(inputs[f"{case}.speech_gen_hidden_states"], inputs[f"{case}.speech_tokens"],
                         inputs.get(f"{case}.speech_gen_mask"), keep_intermediates=True)
        computed.update({
            f"{case}.blendshapes": out.blendshapes,
            f"{case}.target_frames": torch.tensor([out.target_frames]),
            f"{case}.tgt_len": out.tgt_len,
            f"{case}.key_padding_mask": out.key_padding_mask,
        })
        computed.update({f"{case}.intermediate.{k}": v for k, v in out.intermediates.items()})
    return ([problem] if problem else []) + _case_outputs(outputs, computed, TOLERANCES["blendshape_generator"])


def check_speech_generator(folder: Path) -> list[Comparison]:
    import torch

    from .models.exomni.configuration import SpeechGeneratorConfig
    from .models.exomni.sampling import UnitSampling
    from .models.exomni.speech_generator import SpeechGenerator

    config = SpeechGeneratorConfig.from_model_config(_config(folder), _config(folder, GENERATOR_CONFIG))
    module = SpeechGenerator(config)
    problem = _load_weights(_released_root(speech_generator=module), folder)
    inputs, outputs = _load(folder, "inputs.safetensors"), _load(folder, "outputs.safetensors")
    keep = {}
    hidden, text = inputs["llm_hidden_states"], inputs["text_token_ids"]
    last, logits = module.teacher_forced(hidden, text, inputs["tf_unit_ids"], keep)
    computed = {f"tf.{k}": v for k, v in keep.items()}
    computed.update({"tf.last_hidden": last, "tf.logits": logits})
    decoding = module.generate(hidden, text, UnitSampling(greedy=True), keep_logprobs=True)
    computed.update({
        "greedy.unit_ids": torch.tensor(decoding.units, dtype=torch.long),
        "greedy.hidden_states": decoding.hidden_states,
        "greedy.step_logprobs": decoding.step_logprobs,
        "greedy.step_ignore_eos": torch.tensor(decoding.step_ignore_eos),
        "greedy.step_choice": torch.tensor(decoding.step_choice, dtype=torch.long),
        "greedy.prompt_embeds": decoding.prompt_embeds,
        "greedy.min_max_len": torch.tensor([decoding.min_len, decoding.max_len]),
    })
    return ([problem] if problem else []) + _case_outputs(outputs, computed, TOLERANCES["speech_generator"])


def check_speech_encoder_projector(folder: Path) -> list[Comparison]:
    import torch

    from .models.exomni.configuration import SpeechEncoderConfig
    from .models.exomni.speech_encoder import SpeechEncoder, SpeechProjector

    config = SpeechEncoderConfig.from_model_config(_config(folder), _config(folder, WHISPER_CONFIG))
    encoder, projector = SpeechEncoder(config), SpeechProjector(config)
    problem = _load_weights(_released_root(speech_encoder=encoder, speech_projector=projector), folder)
    inputs, outputs = _load(folder, "inputs.safetensors"), _load(folder, "outputs.safetensors")
    with torch.no_grad():
        frames = encoder(inputs["mel"])
        projected = projector(frames)
    encoder_lengths = SpeechEncoder.output_lengths(inputs["speech_lengths"])
    feature_lengths = encoder_lengths // projector.k
    computed = {
        "encoder_last_hidden_state": frames, "encoder_output_lengths": encoder_lengths,
        "projector_out": projected, "feature_lengths": feature_lengths,
    }
    for b in range(projected.shape[0]):
        computed[f"speech_features.{b}"] = projected[b, : int(feature_lengths[b])]
    return ([problem] if problem else []) + _case_outputs(outputs, computed, TOLERANCES["speech_encoder_projector"])


def check_end_to_end(folder: Path) -> list[Comparison]:
    import torch

    from .models.exomni.configuration import ExomniConfig
    from .models.exomni.loading import load_weights, materialize
    from .models.exomni.modeling import ExomniForCausalLM
    from .models.exomni.sampling import TextSampling, UnitSampling

    model_config = _config(folder)
    config = ExomniConfig.from_dicts(model_config, _config(folder, WHISPER_CONFIG), _config(folder, GENERATOR_CONFIG))
    with torch.device("meta"):  # built and loaded exactly as a released checkpoint is
        model = ExomniForCausalLM(config)
    report = load_weights(model, [(folder, _load(folder, "weights.safetensors"))], device="cpu",
                          dtype=torch.float32, assign=True)
    lines = [] if report.ok else [Comparison("weights", math.inf, False, report.summary())]
    materialize(model, torch.device("cpu"))
    model.eval()
    inputs, outputs = _load(folder, "inputs.safetensors"), _load(folder, "outputs.safetensors")
    eos = model_config.get("eos_token_id")
    eos_ids = eos if isinstance(eos, list) else [eos]
    with torch.no_grad():
        encoder_out = model.model.speech_encoder(inputs["mel"])
        features = model.encode_speech(inputs["mel"], inputs["speech_lengths"])
        merged = model.embed_prompt(inputs["input_ids"], features)
        reply = model.generate_reply(merged, int(inputs["max_new_tokens"].reshape(-1)[0]), eos_ids,
                                     TextSampling(greedy=True), keep=True)
        decoding, blendshapes = model.speak(reply.hidden, reply.token_ids, UnitSampling(greedy=True), keep=True)
    computed = {
        "speech_encoder_out": encoder_out, "merged_inputs_embeds": merged,
        "prompt_logits": reply.prompt_logits, "prompt_last_hidden": reply.prompt_hidden,
        "text_token_ids": torch.tensor([reply.token_ids]), "llm_hidden_for_speech_generator": reply.hidden,
        "text_step_logits": reply.step_logits,
        "unit_ids": torch.tensor(decoding.units, dtype=torch.long),
        "speech_generator_hidden": decoding.hidden_states,
        "speech_generator_step_logprobs": decoding.step_logprobs,
        "blendshapes": blendshapes.unsqueeze(0),
    }
    return lines + _case_outputs(outputs, computed, TOLERANCES["end_to_end"])


def check_audio_decoder(folder: Path) -> list[Comparison] | None:
    """Delegated to the audio decoder's package; None when it is not installed."""
    try:
        module = importlib.import_module("backend.models.audio_decoder.parity")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("backend.models.audio_decoder"):
            return None
        raise
    return [Comparison(str(name), float(err), bool(ok)) for name, err, ok in module.check(folder)]


CHECKS: dict[str, Callable[[Path], list[Comparison] | None]] = {
    "blendshape_generator": check_blendshape_generator,
    "speech_generator": check_speech_generator,
    "speech_encoder_projector": check_speech_encoder_projector,
    "end_to_end": check_end_to_end,
    "audio_decoder": check_audio_decoder,
}


def format_line(label: str, c: Comparison) -> str:
    line = f"{label}/{c.name}  max_abs_err={c.max_abs_err:.3g}  {'ok' if c.ok else 'FAIL'}"
    return f"{line}  ({c.note})" if c.note else line


def run_parity(root, out: Callable[[str], None] = print) -> bool:
    """Run every fixture under root; print one line per compared output; True when all pass."""
    root = Path(root)
    if not root.exists():
        out(f"{root}: no such folder; give the folder that holds the fixture folders")
        return False
    fixtures = find_fixtures(root)
    if not fixtures:
        out(f"{root}: no fixture folders found (expected folders named {', '.join(KINDS)})")
        return False
    all_ok = True
    for kind, folder in fixtures:
        label = folder.relative_to(root).as_posix() if folder != root else folder.name
        try:
            results = CHECKS[kind](folder)
        except Exception as exc:  # report and go on with the other fixtures
            out(f"{label}: ERROR {type(exc).__name__}: {exc}  FAIL")
            out("".join(traceback.format_exception(exc)).rstrip())
            all_ok = False
            continue
        if results is None:
            out(f"{label}: skipped (decoder not installed)")
            continue
        for c in results:
            out(format_line(label, c))
            all_ok &= c.ok
    return all_ok
