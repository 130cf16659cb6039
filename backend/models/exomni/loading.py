"""Loading the released Ex-Omni checkpoint folder.

The folder (Tencent/Ex-Omni) holds `config.json` (published with model_type `qwen3`; the reference
code also registers `llava_her_qwen3`, and either is accepted, see configuration.exomni_identity), the
weights as sharded `*.safetensors` listed by `model.safetensors.index.json`, and Qwen's tokenizer files.
Two parts take their architecture from configs that `config.json` names by reference:
`pretrain_speech_encoder_weights` (a Whisper model) and `pretrain_speech_generator_weights` (a Qwen3
model). Normally only their config files are read and all weights come from the Ex-Omni folder; when
the checkpoint stores no `speech_encoder.*` tensors, the reference keeps the pretrained Whisper encoder
it built from that folder, and so does this loader (the Whisper weights must then be downloaded too).

The speech parts may be stored under `model.`, `model.model.` or no prefix at all, as the reference's
loader accepts (`speech_encoder.`, `speech_projector.`, `speech_generator.`, `blendshape_generator.`).

Every stored tensor is either loaded, or ignored on purpose with the reason (the Whisper decoder the
reference builds but never runs; the speech generator's inner text head). Every expected tensor is
either loaded or derived with the reason (the doubly registered rotation table; a tied LM head).
Anything else is reported, and loading fails with a message that says what to do.

The model is built without memory (meta device), and each shard's tensors are assigned in place:
bf16 with SDPA attention on CUDA, float32 on CPU.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator
from exomni_blender.core.errors import ExOmniError
from exomni_blender.core.settings import Settings

CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
GENERATION_CONFIG = "generation_config.json"
ENCODER_ENV = "EXOMNI_SPEECH_ENCODER"
GENERATOR_ENV = "EXOMNI_SPEECH_GENERATOR"

SPEECH_PARTS = ("speech_encoder", "speech_projector", "speech_generator", "blendshape_generator")
# Stored names may carry one more `model.`, or none, before a speech part (the reference loader accepts all three).
_NAME_ALIASES = [(re.compile(rf"^(?:model\.model\.|)({'|'.join(SPEECH_PARTS)})\."), r"model.\1.")]
IGNORED_ON_PURPOSE = [
    (re.compile(r"^model\.speech_encoder\.model\.decoder\."),
     "the Whisper decoder: the reference builds a full WhisperModel but only its encoder runs"),
    (re.compile(r"^model\.speech_generator\.llm\.model\.lm_head\.weight$"),
     "the speech generator's inner text head (tied to its embeddings; units come from llm_decoder)"),
    (re.compile(r"^model\.speech_encoder\.proj_out\.weight$"),
     "the pretrained Whisper model's text head (its decoder is not used either)"),
]
DERIVED_WHEN_MISSING = [
    (re.compile(r"(^|\.)rope\.inv_freq$"),
     "the blendshape rotation's inv_freq, a pure function of bs_decoder_dimension (stored once or twice)"),
]


class CheckpointError(ExOmniError):
    """A checkpoint folder that cannot be used; the message says what is wrong and what to do."""


# -- the folder ----------------------------------------------------------------------------------
@dataclass
class CheckpointInfo:
    folder: Path
    config: dict
    shards: list[Path]
    weight_bytes: int
    stored_dtype: str

    @property
    def bytes_per_weight(self) -> int:
        return {"float32": 4, "float16": 2, "bfloat16": 2}.get(self.stored_dtype, 2)


def inspect_checkpoint(folder) -> CheckpointInfo:
    """Check the folder without loading anything; raise CheckpointError saying what is missing."""
    if folder is None or str(folder) == "":
        raise CheckpointError("no Ex-Omni checkpoint given: download Tencent/Ex-Omni and pass its folder "
                              "(--exomni-checkpoint DIR or EXOMNI_CHECKPOINT), or make a small random one "
                              "with `exomni make-tiny-checkpoint DIR`")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist; pass the folder you downloaded "
                              f"Tencent/Ex-Omni into")
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise CheckpointError(f"{folder} has no {CONFIG}; is it the Ex-Omni checkpoint folder?")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{config_path} cannot be read as JSON ({exc}); download it again") from exc
    from .configuration import exomni_identity

    identity, why_not = exomni_identity(config)
    if identity is None:
        raise CheckpointError(f"{config_path}: this is not an Ex-Omni checkpoint ({why_not}); pass the folder "
                              f"you downloaded Tencent/Ex-Omni into")
    shards = _shard_files(folder)
    if not (folder / "tokenizer.json").is_file() and not ((folder / "vocab.json").is_file()
                                                          and (folder / "merges.txt").is_file()):
        raise CheckpointError(f"{folder} has no tokenizer (tokenizer.json, or vocab.json + merges.txt); "
                              f"the download is incomplete")
    return CheckpointInfo(folder, config, shards, sum(p.stat().st_size for p in shards),
                          str(config.get("torch_dtype") or "bfloat16"))


def _shard_files(folder: Path) -> list[Path]:
    index_path = folder / INDEX
    if index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{index_path} is not a safetensors index ({exc}); download it again") from exc
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise CheckpointError(f"{folder} lacks {len(missing)} of its {len(names)} weight shards "
                                  f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); the download "
                                  f"is partial: download the missing files")
        return [folder / n for n in names]
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise CheckpointError(f"{folder} has no *.safetensors weights; download the checkpoint's weight files")
    return shards


def resolve_reference(reference: str | None, checkpoint: Path, override=None, env_var: str = "",
                      what: str = "", field_name: str = "", subfolder: str = "",
                      files: tuple = (CONFIG,)) -> Path:
    """A local folder for a model named in config.json; tried in order: the override (the argument,
    else the setting `env_var` names, from the one settings reader), the reference as a path (absolute, or relative to the checkpoint), a sub-folder of the
    checkpoint (the reference's last name, or `subfolder`), the Hugging Face cache (offline)."""
    if not override and env_var:
        override = getattr(Settings.from_env(strict=False), env_var.removeprefix("EXOMNI_").lower())
    if override:
        path = Path(override).expanduser()
        if not (path / CONFIG).is_file():
            raise CheckpointError(f"{path} (given for the {what}) has no {CONFIG}")
        return path
    candidates = []
    if reference:
        ref = Path(reference).expanduser()
        candidates += [ref, checkpoint / ref, checkpoint / ref.name]
    if subfolder:
        candidates.append(checkpoint / subfolder)
    for path in candidates:
        try:
            if (path / CONFIG).is_file():
                return path
        except OSError:
            continue
    cached = _hub_cache_folder(reference) if reference else None
    if cached is not None:
        return cached
    name = Path(reference).name if reference else subfolder
    where = checkpoint / name
    if reference and _looks_like_hub_id(reference):
        how = f"download them, e.g. `huggingface-cli download {reference} {' '.join(files)} --local-dir {where}`"
    else:
        how = f"copy the config files of that model into {where}"
    raise CheckpointError(
        f"config.json names the {what} as {reference!r} ({field_name}) and no local copy was found. Only its "
        f"config files are needed (the weights are in the Ex-Omni checkpoint): {how}, or point {env_var} at a "
        f"folder that holds them")


def _looks_like_hub_id(reference: str) -> bool:
    return reference.count("/") == 1 and not reference.startswith((".", "/", "~")) and "\\" not in reference


def _hub_cache_folder(repo_id: str) -> Path | None:
    if not _looks_like_hub_id(repo_id):
        return None
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=["*.json"]))
    except Exception:  # not cached, no hub library, or a malformed name: not found
        return None
    return path if (path / CONFIG).is_file() else None


def read_safetensors_header(path: Path) -> dict:
    """{name: (dtype, shape)} from a safetensors file's header, without reading any tensor."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= 100 * 2**20:
                raise ValueError(f"header length {size} is not plausible")
            header = json.loads(f.read(size))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"the weights in {path} cannot be read ({exc}); download them again") from exc
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items() if k != "__metadata__"}


def stored_tensors(info: CheckpointInfo) -> dict:
    """{stored name: (dtype, shape)} over every shard, from the headers only."""
    out = {}
    for shard in info.shards:
        out.update(read_safetensors_header(shard))
    return out


def stores_speech_encoder(names: Iterable[str]) -> bool:
    """Whether the checkpoint carries the Whisper encoder's weights itself (else the pretrained ones are used)."""
    return any(canonical_name(n).startswith("model.speech_encoder.model.encoder.") for n in names)


WHISPER_WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin")


def whisper_weight_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face Whisper folder (sharded safetensors, one file, or a .bin)."""
    index = folder / WHISPER_WEIGHT_FILES[0]
    if index.is_file():
        names = sorted(set(read_json(index).get("weight_map", {}).values()))
        return [folder / n for n in names if (folder / n).is_file()] if names else []
    for name in WHISPER_WEIGHT_FILES[1:]:
        if (folder / name).is_file():
            return [folder / name]
    return []


def whisper_shards(folder: Path) -> Iterator[tuple[Path, dict]]:
    """The pretrained Whisper weights under the names the Ex-Omni model gives them (`model.speech_encoder.*`).

    Hugging Face stores WhisperForConditionalGeneration as `model.encoder.*` / `model.decoder.*` /
    `proj_out.*`, and WhisperModel as `encoder.*` / `decoder.*`."""
    import torch

    for path in whisper_weight_files(folder):
        if path.suffix == ".bin":
            tensors = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            from safetensors.torch import load_file

            tensors = load_file(str(path))
        renamed = {}
        for name, tensor in tensors.items():
            local = name[len("model."):] if name.startswith("model.") else name
            renamed[f"model.speech_encoder.{'model.' if not local.startswith('proj_out.') else ''}{local}"] = tensor
        yield path, renamed


def missing_whisper_weights_message(reference: str | None, folder: Path) -> str:
    how = (f"`huggingface-cli download {reference} model.safetensors --local-dir {folder}`"
           if reference and _looks_like_hub_id(reference) else f"copy the Whisper model's weights into {folder}")
    return (f"the checkpoint stores no speech_encoder.* weights, so (as the official loader does) the pretrained "
            f"Whisper encoder named by pretrain_speech_encoder_weights ({reference!r}) is used, but {folder} has "
            f"only its configs and no weights ({', '.join(WHISPER_WEIGHT_FILES[1:])}): download them, e.g. {how}")


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} cannot be read as JSON ({exc})") from exc


# -- weights ---------------------------------------------------------------------------------------
@dataclass
class WeightReport:
    loaded: int = 0
    ignored: dict = field(default_factory=dict)  # reason -> [stored names]
    derived: dict = field(default_factory=dict)  # reason -> [expected names]
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)  # "name: stored [..] vs model [..]"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        lines = [f"{self.loaded} tensors loaded"]
        lines += [f"{len(names)} ignored on purpose: {why}" for why, names in self.ignored.items()]
        lines += [f"{len(names)} derived: {why}" for why, names in self.derived.items()]
        for label, names in (("missing", self.missing), ("unexpected", self.unexpected),
                             ("shape mismatch", self.mismatched)):
            if names:
                lines.append(f"{len(names)} {label}: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}")
        return "; ".join(lines)


def canonical_name(name: str) -> str:
    for pattern, replacement in _NAME_ALIASES:
        name = pattern.sub(replacement, name)
    return name


def _reason(rules, name: str) -> str | None:
    for pattern, why in rules:
        if pattern.search(name):
            return why
    return None


def iter_safetensors(paths: Iterable[Path]) -> Iterator[tuple[Path, dict]]:
    """(path, {name: tensor}) per file, one file in memory at a time."""
    from safetensors.torch import load_file

    for path in paths:
        yield path, load_file(str(path))


def load_weights(module, shards: Iterable[tuple[object, dict]], prefix: str = "", device=None, dtype=None,
                 assign: bool = False, report: WeightReport | None = None) -> WeightReport:
    """Load released-name tensors into `module` (whose own names are the released ones minus `prefix`).

    Tensors outside `prefix` are not this module's and are skipped silently; within it each one is
    loaded, ignored on purpose or reported. With `assign`, tensors replace the module's (meta) ones.
    """
    report = report or WeightReport()
    expected = {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict(keep_vars=True).items()}
    seen = set()
    for _, tensors in shards:
        batch = {}
        for stored, tensor in tensors.items():
            name = canonical_name(stored)
            if not name.startswith(prefix):
                continue
            why = _reason(IGNORED_ON_PURPOSE, name)
            if why:
                report.ignored.setdefault(why, []).append(stored)
                continue
            local = name[len(prefix):]
            if local not in expected:
                report.unexpected.append(stored)
                continue
            shape, target_dtype = expected[local]
            if tuple(tensor.shape) != shape:
                report.mismatched.append(f"{stored}: stored {list(tensor.shape)} vs model {list(shape)}")
                continue
            # A fresh, aligned copy: tensors that are views into a file's buffer can pick other CPU
            # kernels, so one layout of the same weights would give slightly different takes than another.
            batch[local] = tensor.to(device=device if device is not None else tensor.device,
                                     dtype=(dtype or target_dtype) if tensor.is_floating_point() else tensor.dtype,
                                     copy=True)
        if batch:
            module.load_state_dict(batch, strict=False, assign=assign)
            seen.update(batch)
            report.loaded += len(batch)
        del batch
    for local in expected:
        if local in seen:
            continue
        why = _reason(DERIVED_WHEN_MISSING, local)
        if why:
            report.derived.setdefault(why, []).append(prefix + local)
        elif local == "lm_head.weight" and getattr(getattr(module, "config", None), "text", None) is not None \
                and module.config.text.tie_word_embeddings:
            report.derived.setdefault("the LM head, tied to the input embeddings", []).append(prefix + local)
        else:
            report.missing.append(prefix + local)
    return report


def materialize(model, device) -> None:
    """After assigning weights into a meta-built model: recompute what is not stored (rotary tables,
    the blendshape rotation's inv_freq when absent), retie the LM head, and check nothing is left empty."""
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RotaryEmbedding

    from .blendshape_generator import PeriodicRotation

    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, Qwen3RotaryEmbedding) and child.inv_freq.is_meta:
                setattr(module, child_name, Qwen3RotaryEmbedding(child.config, device=device))
    for module in model.modules():
        if isinstance(module, PeriodicRotation) and module.inv_freq.is_meta:
            module.inv_freq = module._inv_freq(device)
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    empty = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if empty:
        raise CheckpointError(f"{len(empty)} tensors of the model were not in the checkpoint "
                              f"({', '.join(empty[:5])}); the checkpoint does not match its config.json")


# -- the whole model ---------------------------------------------------------------------------------
@dataclass
class LoadedExomni:
    model: object  # ExomniForCausalLM, eval mode
    tokenizer: object
    config: object  # ExomniConfig
    device: object  # torch.device
    dtype: object  # torch.dtype
    eos_ids: list
    report: WeightReport
    info: CheckpointInfo
    speech_encoder_folder: Path
    load_seconds: float = 0.0
    generation: dict = field(default_factory=dict)  # generation_config.json (sampling defaults, stop tokens)
    speech_encoder_source: str = "checkpoint"  # or "pretrained Whisper in <folder>"


def pick_device(device=None):
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("CUDA was requested but this machine has no usable CUDA device "
                              "(or torch was built without CUDA); use device cpu")
    return device


def default_dtype(device):
    import torch

    return torch.bfloat16 if device.type == "cuda" else torch.float32


def resolve_sub_models(info: CheckpointInfo, speech_encoder=None, speech_generator=None) -> tuple[Path, Path]:
    """Folders holding the configs of the Whisper encoder and of the speech generator's decoder
    (filesystem only: cheap enough for an availability check)."""
    encoder_dir = resolve_reference(info.config.get("pretrain_speech_encoder_weights"), info.folder,
                                    speech_encoder, ENCODER_ENV, "speech encoder (Whisper)",
                                    "pretrain_speech_encoder_weights", "speech_encoder",
                                    (CONFIG, "preprocessor_config.json", "model.safetensors"))
    generator_dir = resolve_reference(info.config.get("pretrain_speech_generator_weights"), info.folder,
                                      speech_generator, GENERATOR_ENV, "speech generator's Qwen3 decoder",
                                      "pretrain_speech_generator_weights", "speech_generator")
    read_json(encoder_dir / CONFIG)
    read_json(generator_dir / CONFIG)
    return encoder_dir, generator_dir


def build_config(info: CheckpointInfo, speech_encoder=None, speech_generator=None):
    """The ExomniConfig of a checkpoint folder, with its two referenced sub-configs resolved."""
    from .configuration import ExomniConfig

    encoder_dir, generator_dir = resolve_sub_models(info, speech_encoder, speech_generator)
    try:
        config = ExomniConfig.from_dicts(info.config, read_json(encoder_dir / CONFIG),
                                         read_json(generator_dir / CONFIG))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the configs of {info.folder} do not describe an Ex-Omni model: {exc}") from exc
    return config, encoder_dir


def load_exomni(folder, device=None, dtype=None, speech_encoder=None, speech_generator=None,
                progress: Callable[[float, str], None] | None = None) -> LoadedExomni:
    """Load the checkpoint folder for inference. Raises CheckpointError with what to do on any problem."""
    import torch

    from .modeling import ExomniForCausalLM

    say = progress or (lambda fraction, message: None)
    t0 = time.perf_counter()
    info = inspect_checkpoint(folder)
    device = pick_device(device)
    dtype = dtype or default_dtype(device)
    say(0.02, "reading the configs")
    config, encoder_dir = build_config(info, speech_encoder, speech_generator)
    tokenizer = load_tokenizer(info.folder)
    pretrained_whisper = not stores_speech_encoder(stored_tensors(info))
    whisper_files = whisper_weight_files(encoder_dir) if pretrained_whisper else []
    if pretrained_whisper and not whisper_files:
        raise CheckpointError(missing_whisper_weights_message(info.config.get("pretrain_speech_encoder_weights"),
                                                              encoder_dir))
    with torch.device("meta"):
        model = ExomniForCausalLM(config)
    report = WeightReport()
    total = len(info.shards) + len(whisper_files)

    def shards():
        sources = [iter_safetensors(info.shards)] + ([whisper_shards(encoder_dir)] if pretrained_whisper else [])
        i = 0
        for source in sources:
            for path, tensors in source:
                say(0.05 + 0.9 * i / total, f"loading weights {i + 1}/{total} ({path.name})")
                i += 1
                yield path, tensors

    try:
        load_weights(model, shards(), device=device, dtype=dtype, assign=True, report=report)
    except Exception as exc:  # a corrupt shard: safetensors says which
        raise CheckpointError(f"the weights of {info.folder} cannot be read ({exc}); download them again") from exc
    if not report.ok:
        raise CheckpointError(f"the weights of {info.folder} do not match its config: {report.summary()}")
    materialize(model, device)
    model.eval()
    generation = read_json(info.folder / GENERATION_CONFIG) if (info.folder / GENERATION_CONFIG).is_file() else {}
    from .prompting import stop_ids

    eos_ids = stop_ids(tokenizer, generation.get("eos_token_id"), info.config.get("eos_token_id"))
    say(1.0, "model loaded")
    return LoadedExomni(model, tokenizer, config, device, dtype, eos_ids, report, info, encoder_dir,
                        time.perf_counter() - t0, generation,
                        f"pretrained Whisper in {encoder_dir}" if pretrained_whisper else "checkpoint")


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    from .prompting import prepare_tokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # transformers raises many kinds here
        raise CheckpointError(f"the tokenizer in {folder} cannot be loaded ({exc}); download the tokenizer "
                              f"files again (tokenizer.json, tokenizer_config.json, vocab.json, merges.txt)") from exc
    try:
        return prepare_tokenizer(tokenizer)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc


# -- memory ------------------------------------------------------------------------------------------
def estimate_memory_bytes(info: CheckpointInfo, device) -> int:
    """Memory the loaded model needs on `device`: its weights at the device's dtype plus working room
    (activations, KV caches, the audio decoder's share)."""
    target = 2 if getattr(device, "type", str(device)) == "cuda" else 4
    weights = info.weight_bytes * target / info.bytes_per_weight
    return int(weights * 1.15 + 512 * 2**20)


def free_memory_bytes(device) -> int | None:
    """Free memory where the model would live, or None when it cannot be told."""
    if getattr(device, "type", str(device)) == "cuda":
        try:
            import torch

            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:  # no driver, or a device that cannot be queried
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
