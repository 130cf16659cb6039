"""Reading and writing the decoder's weights in the released key layout.

`flow.pt` and `hift.pt` are plain state dicts. HiFT's weight-normalised layers store weight_g (one norm
per output channel, or per input channel for the transposed convs: always dimension 0 of the weight) and
weight_v; newer torch writes the same pair as parametrizations.weight.original0/original1. Both are folded
into one weight on load, which is what inference uses.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from exomni_blender.core.errors import ExOmniError

FLOW_FILES = ("flow.pt", "flow_weights.safetensors")
HIFT_FILES = ("hift.pt", "hift_weights.safetensors")


class CheckpointError(ExOmniError, ValueError):
    """The weights do not fit the decoder; the message says which keys and what to do."""


def read_state_dict(path: str | Path) -> dict:
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles with code in them, truncated downloads, ...
        raise CheckpointError(f"cannot read {path.name}: {exc}. Download it again from the "
                              "glm-4-voice-decoder release.") from exc
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path.name} is not a state dict of tensors")
    return data


def find_weights(folder: Path, names: tuple) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder} has no {' or '.join(names)}: point to the glm-4-voice-decoder folder "
                            "that holds flow.pt and hift.pt")


def fold_weight_norm(state: dict) -> dict:
    """weight_g/weight_v (or parametrizations.weight.original0/1) -> weight = g * v / ||v||, norm over all
    dimensions but the first."""
    out = {}
    pairs = {}
    for key, value in state.items():
        for g_suffix, v_suffix in ((".weight_g", ".weight_v"),
                                   (".parametrizations.weight.original0", ".parametrizations.weight.original1")):
            if key.endswith(g_suffix) or key.endswith(v_suffix):
                suffix = g_suffix if key.endswith(g_suffix) else v_suffix
                prefix = key[: -len(suffix)]
                pairs.setdefault(prefix, {})["g" if suffix == g_suffix else "v"] = value
                break
        else:
            out[key] = value
    for prefix, pair in pairs.items():
        if set(pair) != {"g", "v"}:
            missing = "weight_g" if "g" not in pair else "weight_v"
            raise CheckpointError(f"{prefix} has half of a weight-norm pair ({missing} is missing)")
        out[prefix + ".weight"] = torch._weight_norm(pair["v"].float(), pair["g"].float(), 0)
    return out


def load_into(module: nn.Module, state: dict, what: str, ignore=()) -> None:
    """Loads `state` strictly, with an error that lists what is missing, unexpected or mis-shaped."""
    state = fold_weight_norm(state)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and not any(k.startswith(p) for p in ignore)]
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        lines = []
        if wrong:
            lines.append("shape mismatches: " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
        if missing:
            lines.append("missing: " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            lines.append("unexpected: " + ", ".join(unexpected[:5]) + (" ..." if len(unexpected) > 5 else ""))
        raise CheckpointError(f"{what} does not match the decoder configuration ({'; '.join(lines)}). "
                              "Use the released glm-4-voice-decoder files, or put the matching config.json "
                              "next to them (or pass config=).")
    # modules built on the meta device take the file's tensors as they are (no wasted initialisation)
    assign = any(t.is_meta for t in own.values())
    module.load_state_dict({k: state[k].to(own[k].dtype).contiguous() for k in own}, strict=True, assign=assign)


def released_state_dict(module: nn.Module, weight_normed=lambda name: False) -> dict:
    """The module's weights in the released layout: layers for which `weight_normed(name)` is true are
    split into weight_g (norm over all dimensions but the first) and weight_v."""
    out = {}
    for name, sub in module.named_modules():
        for pname, param in sub.named_parameters(recurse=False):
            key = f"{name}.{pname}" if name else pname
            if pname == "weight" and weight_normed(name):
                w = param.detach().clone()
                out[key + "_g"] = torch.linalg.vector_norm(w, dim=tuple(range(1, w.dim())), keepdim=True)
                out[key + "_v"] = w
            else:
                out[key] = param.detach().clone()
    return out
