"""What a downloaded checkpoint will do when loaded, found without loading a weight.

Reads config.json (and how it is recognised as Ex-Omni), the safetensors headers (names, shapes,
dtypes), the tokenizer files, the Whisper and Qwen3 folders config.json names, and optionally the audio
decoder's folder. The model is built on the meta device (no memory) and every stored name is matched
against it with the loader's own rules, so "will load" here means the loader agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .loading import (CONFIG, DERIVED_WHEN_MISSING, IGNORED_ON_PURPOSE, CheckpointError, _reason, build_config,
                      canonical_name, inspect_checkpoint, missing_whisper_weights_message, read_safetensors_header,
                      resolve_sub_models, stored_tensors, stores_speech_encoder, whisper_weight_files)

BF16_WORKING_ROOM = 1.1, 1.5 * 2**30  # x weights + bytes: activations, KV caches, allocator slack


@dataclass
class CheckReport:
    folder: Path
    lines: list = field(default_factory=list)  # (status, text): status is "ok", "note" or "problem"
    parameters: int = 0
    bf16_bytes: int = 0

    @property
    def loadable(self) -> bool:
        return not any(status == "problem" for status, _ in self.lines)

    def add(self, status: str, text: str) -> None:
        self.lines.append((status, text))

    def render(self) -> str:
        out = [f"checkpoint {self.folder}"]
        out += [f"  {status:8s}{text}" for status, text in self.lines]
        out.append(f"verdict: {'will load' if self.loadable else 'will NOT load (see problems above)'}")
        return "\n".join(out)


def check_checkpoint(folder, decoder=None, speech_encoder=None, speech_generator=None) -> CheckReport:
    report = CheckReport(Path(folder) if folder else Path("."))
    try:
        info = inspect_checkpoint(folder)
    except CheckpointError as exc:
        report.add("problem", str(exc))
        return report
    from .configuration import exomni_identity

    identity, _ = exomni_identity(info.config)
    report.add("ok", f"config.json: model_type {info.config.get('model_type')!r}, recognised as Ex-Omni by {identity}")
    report.add("ok", "tokenizer files present")
    try:
        stored = stored_tensors(info)
    except CheckpointError as exc:
        report.add("problem", str(exc))
        return report
    dtypes = sorted({dtype for dtype, _ in stored.values()})
    report.add("ok", f"{len(info.shards)} weight file(s), {len(stored)} tensors, {info.weight_bytes / 2**30:.2f} GiB "
                     f"stored as {', '.join(dtypes)}")
    try:
        encoder_dir, generator_dir = resolve_sub_models(info, speech_encoder, speech_generator)
        config, _ = build_config(info, speech_encoder, speech_generator)
    except CheckpointError as exc:
        report.add("problem", str(exc))
        return report
    report.add("ok", f"speech generator's Qwen3 config: {generator_dir / CONFIG}")
    names = dict(stored)
    if stores_speech_encoder(stored):
        report.add("ok", f"Whisper encoder: weights in the checkpoint; its configs from {encoder_dir}")
    else:
        files = whisper_weight_files(encoder_dir)
        if not files:
            report.add("problem", missing_whisper_weights_message(info.config.get("pretrain_speech_encoder_weights"),
                                                                  encoder_dir))
        else:
            report.add("note", f"the checkpoint stores no speech_encoder.* weights: the pretrained Whisper encoder "
                               f"in {encoder_dir} is loaded instead ({', '.join(f.name for f in files)})")
            for path in files:
                if path.suffix == ".safetensors":
                    for name, value in read_safetensors_header(path).items():
                        local = name[len("model."):] if name.startswith("model.") else name
                        prefix = "model.speech_encoder." + ("" if local.startswith("proj_out.") else "model.")
                        names[prefix + local] = value
    _match(report, config, names, stored_encoder=stores_speech_encoder(stored) or bool(whisper_weight_files(encoder_dir))
           and all(f.suffix == ".safetensors" for f in whisper_weight_files(encoder_dir)))
    if decoder:
        _check_decoder(report, Path(decoder))
    else:
        report.add("note", "audio decoder not checked (give --decoder DIR, the glm-4-voice-decoder folder); "
                           "without it takes carry no audio")
    return report


def _match(report: CheckReport, config, names: dict, stored_encoder: bool) -> None:
    import torch

    from .modeling import ExomniForCausalLM

    with torch.device("meta"):
        model = ExomniForCausalLM(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict(keep_vars=True).items()}
    seen, unique = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            unique += p.numel()
    report.parameters = unique
    factor, room = BF16_WORKING_ROOM
    report.bf16_bytes = int(unique * 2 * factor + room)
    loaded, ignored, unexpected, mismatched, found = 0, 0, [], [], set()
    for stored_name, (_, shape) in names.items():
        name = canonical_name(stored_name)
        if _reason(IGNORED_ON_PURPOSE, name):
            ignored += 1
            continue
        if name not in expected:
            unexpected.append(stored_name)
        elif tuple(shape) != expected[name]:
            mismatched.append(f"{stored_name}: stored {list(shape)} vs model {list(expected[name])}")
            found.add(name)  # there, but the wrong size: reported once, as a mismatch
        else:
            loaded += 1
            found.add(name)
    missing, derived = [], 0
    for name in expected:
        if name in found:
            continue
        if _reason(DERIVED_WHEN_MISSING, name) or (name == "lm_head.weight" and config.text.tie_word_embeddings):
            derived += 1
        elif name.startswith("model.speech_encoder.") and not stored_encoder:
            continue  # reported above (a .bin, or no weights at all)
        else:
            missing.append(name)
    report.add("ok" if loaded else "problem",
               f"{loaded} tensors will load; {ignored} stored ones are ignored on purpose (Whisper decoder, inner "
               f"text heads); {derived} are derived (rotation tables, tied heads)")
    for label, items, why in (
            ("missing", missing, "the model needs them and no file has them: the download is incomplete or "
                                 "config.json does not match the weights"),
            ("unexpected", unexpected, "stored but not part of the model config.json describes"),
            ("shape mismatch", mismatched, "config.json and the weights disagree on a size")):
        if items:
            report.add("problem", f"{len(items)} {label} ({why}): {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}")
    report.add("ok", f"{unique:,} parameters ({unique / 1e9:.2f} B); about {report.bf16_bytes / 2**30:.1f} GiB of GPU memory "
                     f"at bf16 (weights x{factor} + {room / 2**30:.1f} GiB working room), "
                     f"{unique * 4 * factor / 2**30 + room / 2**30:.1f} GiB in float32 on CPU")


def _check_decoder(report: CheckReport, folder: Path) -> None:
    from ..audio_decoder.checkpoint import FLOW_FILES, HIFT_FILES

    if not folder.is_dir():
        report.add("problem", f"audio decoder folder {folder} does not exist; download glm-4-voice-decoder "
                              f"(flow.pt, hift.pt) into it")
        return
    for part, candidates in (("flow", FLOW_FILES), ("HiFT vocoder", HIFT_FILES)):
        present = [folder / n for n in candidates if (folder / n).is_file()]
        if present:
            report.add("ok", f"audio decoder {part}: {present[0].name} ({present[0].stat().st_size / 2**20:.1f} MiB)")
        else:
            report.add("problem", f"audio decoder {part}: none of {', '.join(candidates)} in {folder}; download "
                                  f"it from the glm-4-voice-decoder release (takes would carry no audio)")
