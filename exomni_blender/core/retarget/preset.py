"""The preset model: targets that write rig keys from ARKit channels, read from and written to TOML.

The format is documented in the repository's presets/README.md. In short, a preset lists targets;
each target writes one rig key from one ARKit channel or a weighted mix of channels, with a response
curve, gain, offset and clamp:

    x = clip(sum or max of weight * channel, 0, 1) -> x = curve(x) -> y = clip(gain * x + offset, clamp)

Every field is validated on reading, and the message says what to fix.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import numpy as np

from ..arkit import ARKIT_52, INDEX
from . import apply
from .errors import PresetError
from .toml_writer import dumps_toml

CURVES = ("linear", "smoothstep", "gamma")
COMBINES = ("sum", "max")


def slug(text: str) -> str:
    """A file-safe id for a preset name."""
    s = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    return s or "preset"


# -- side placeholders: one entry written for both sides --------------------------------------------

_SIDE_FIELDS = {
    "L": {"Side": "Left", "side": "left", "S": "L", "s": "l", "OtherSide": "Right", "O": "R", "o": "r"},
    "R": {"Side": "Right", "side": "right", "S": "R", "s": "r", "OtherSide": "Left", "O": "L", "o": "l"},
}
_PLACEHOLDER = re.compile(r"\{(Side|side|S|s|OtherSide|O|o)\}")
_BOTH = "{Both}"


def _has_side(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text))


def _fill(text: str, side: str) -> str:
    return _PLACEHOLDER.sub(lambda m: _SIDE_FIELDS[side][m.group(1)], text) if side else text


# -- targets ----------------------------------------------------------------------------------------

@dataclass
class Target:
    """One rig key written from ARKit channels. Several targets may share a mix (one-to-many)."""

    key: str
    mix: tuple  # ((channel name, weight), ...)
    aliases: tuple = ()
    gain: float = 1.0
    offset: float = 0.0
    clamp: tuple = (0.0, 1.0)
    curve: str = "linear"
    gamma: float = 1.0
    combine: str = "sum"
    fallback: bool = False

    @property
    def channels(self) -> tuple:
        return tuple(c for c, _ in self.mix)

    @property
    def driving_channels(self) -> tuple:
        """Channels that raise this key (positive weight)."""
        return tuple(c for c, w in self.mix if w > 0)

    def describe_source(self) -> str:
        if len(self.mix) == 1 and self.mix[0][1] == 1.0:
            return self.mix[0][0]
        joiner = " | " if self.combine == "max" else " + "
        return joiner.join(f"{w:g}*{c}" for c, w in self.mix)

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        """This key's curve from [frames, 52] ARKit weights (float32 [frames])."""
        cols = np.fromiter((INDEX[c] for c, _ in self.mix), dtype=np.intp, count=len(self.mix))
        ws = np.asarray([w for _, w in self.mix], dtype=np.float32)
        terms = weights[:, cols] * ws
        x = terms.max(axis=1) if self.combine == "max" else terms.sum(axis=1)
        x = np.clip(x, 0.0, 1.0)
        if self.curve == "smoothstep":
            x = x * x * (3.0 - 2.0 * x)
        elif self.curve == "gamma":
            x = np.power(x, self.gamma)
        y = self.gain * x + self.offset
        return np.clip(y, self.clamp[0], self.clamp[1]).astype(np.float32)

    def to_dict(self) -> dict:
        d = {"key": self.key}
        if self.aliases:
            d["aliases"] = list(self.aliases)
        if len(self.mix) == 1 and self.mix[0][1] == 1.0:
            d["from"] = self.mix[0][0]
        else:
            d["mix"] = {c: w for c, w in self.mix}
        if self.combine != "sum":
            d["combine"] = self.combine
        if self.gain != 1.0:
            d["gain"] = self.gain
        if self.offset != 0.0:
            d["offset"] = self.offset
        if tuple(self.clamp) != (0.0, 1.0):
            d["clamp"] = list(self.clamp)
        if self.curve != "linear":
            d["curve"] = self.curve
        if self.curve == "gamma":
            d["gamma"] = self.gamma
        if self.fallback:
            d["fallback"] = True
        return d


# -- reading targets --------------------------------------------------------------------------------

_TARGET_FIELDS = {"key", "keys", "aliases", "from", "mix", "gain", "offset", "clamp", "curve", "gamma",
                  "combine", "fallback"}
_PRESET_FIELDS = {"name", "description", "family", "aliases", "signature", "identity", "target", "format_version"}


def channel_named(name: str, where: str) -> str:
    """The ARKit channel a preset names (any case), or an error suggesting the nearest one."""
    if name in INDEX:
        return name
    lowered = {n.lower(): n for n in ARKIT_52}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, ARKIT_52, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise PresetError(f"{where}: {name!r} is not an ARKit-52 channel{hint}")


def _number(value, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PresetError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)


def _names_list(value, problem: str, where: str) -> list:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PresetError(f"{where}: {problem}")
    return value


def _expand_mix(spec: dict, side: str, where: str) -> tuple:
    """Mix entries with side placeholders filled; '{Both}' splits the weight over Left and Right."""
    out = {}
    for raw, weight in spec.items():
        w = _number(weight, f"mix weight of {raw!r}", where)
        if _BOTH in raw:
            names = [(raw.replace(_BOTH, "Left"), w / 2), (raw.replace(_BOTH, "Right"), w / 2)]
        else:
            if _has_side(raw) and not side:
                raise PresetError(f"{where}: mix channel {raw!r} has a side placeholder but the target's key "
                                  f"has none; put {{S}} or {{Side}} in the key, or use {{Both}}")
            names = [(_fill(raw, side), w)]
        for name, weight_part in names:
            ch = channel_named(name, where)
            out[ch] = out.get(ch, 0.0) + weight_part
    if not out:
        raise PresetError(f"{where}: the mix is empty; give at least one channel")
    return tuple(out.items())


def _check_target_shape(raw, where: str) -> tuple:
    """(keys, aliases, mix spec) of a [[target]] table whose fields are known and not in conflict."""
    if not isinstance(raw, dict):
        raise PresetError(f"{where}: each [[target]] must be a table")
    unknown = set(raw) - _TARGET_FIELDS
    if unknown:
        close = {u: difflib.get_close_matches(u, sorted(_TARGET_FIELDS), n=1) for u in unknown}
        hints = ", ".join(f"{u!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for u, c in sorted(close.items()))
        raise PresetError(f"{where}: unknown field {hints}; allowed: {', '.join(sorted(_TARGET_FIELDS))}")
    if ("key" in raw) == ("keys" in raw):
        raise PresetError(f"{where}: give exactly one of key = \"Name\" or keys = [\"A\", \"B\"]")
    if ("from" in raw) == ("mix" in raw):
        raise PresetError(f"{where}: give exactly one of from = \"channel\" or mix = {{ channel = weight, ... }}")
    keys = [raw["key"]] if "key" in raw else raw["keys"]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip() for k in keys):
        raise PresetError(f"{where}: key/keys must be non-empty names")
    aliases = _names_list(raw.get("aliases", []), "aliases must be a list of names", where)
    if not all(aliases):
        raise PresetError(f"{where}: aliases must be a list of names")
    if aliases and len(keys) > 1:
        raise PresetError(f"{where}: aliases go with a single key; split keys = [...] into separate targets")
    if "from" in raw:
        if not isinstance(raw["from"], str):
            raise PresetError(f"{where}: from must be one channel name; use mix for several")
        mix_spec = {raw["from"]: 1.0}
    else:
        if not isinstance(raw["mix"], dict):
            raise PresetError(f"{where}: mix must be a table such as {{ jawOpen = 0.8, mouthFunnel = 0.2 }}")
        mix_spec = raw["mix"]
    return keys, aliases, mix_spec


def _response(raw: dict, where: str) -> dict:
    """The response fields of a target (gain, offset, clamp, curve, gamma, combine, fallback), checked."""
    clamp = raw.get("clamp", [0.0, 1.0])
    if not isinstance(clamp, list) or len(clamp) != 2:
        raise PresetError(f"{where}: clamp must be [low, high]")
    clamp = (_number(clamp[0], "clamp low", where), _number(clamp[1], "clamp high", where))
    if clamp[0] > clamp[1]:
        raise PresetError(f"{where}: clamp low {clamp[0]} is above clamp high {clamp[1]}")
    curve = raw.get("curve", "linear")
    if curve not in CURVES:
        raise PresetError(f"{where}: curve must be one of {', '.join(CURVES)}, got {curve!r}")
    gamma = _number(raw.get("gamma", 1.0), "gamma", where)
    if gamma <= 0:
        raise PresetError(f"{where}: gamma must be above 0, got {gamma}")
    combine = raw.get("combine", "sum")
    if combine not in COMBINES:
        raise PresetError(f"{where}: combine must be one of {', '.join(COMBINES)}, got {combine!r}")
    fallback = raw.get("fallback", False)
    if not isinstance(fallback, bool):
        raise PresetError(f"{where}: fallback must be true or false")
    return dict(gain=_number(raw.get("gain", 1.0), "gain", where),
                offset=_number(raw.get("offset", 0.0), "offset", where),
                clamp=clamp, curve=curve, gamma=gamma, combine=combine, fallback=fallback)


def parse_target(raw: dict, number: int, source: str) -> list:
    """The Targets one [[target]] table writes (two when its names carry side placeholders)."""
    where = f"{source}, target #{number}"
    keys, aliases, mix_spec = _check_target_shape(raw, where)
    response = _response(raw, where)
    sided = any(_has_side(k) for k in keys + aliases)
    if not sided and any(_has_side(t) for t in keys + aliases + list(mix_spec)):
        raise PresetError(f"{where}: side placeholders in from/mix need one in the key too "
                          "(e.g. key = \"Mouth_Smile_{S}\", from = \"mouthSmile{Side}\")")
    out = []
    for side in ("L", "R") if sided else ("",):
        mix = _expand_mix(mix_spec, side, where)
        for k in keys:
            out.append(Target(key=_fill(k, side), mix=mix, aliases=tuple(_fill(a, side) for a in aliases),
                              **response))
    return out


# -- the preset ---------------------------------------------------------------------------------------

class Preset:
    """A rig family's map from ARKit-52 channels to its shape keys."""

    def __init__(self, name: str, targets, *, id: str = "", description: str = "", family: str = "",
                 signature=(), aliases=(), source: str = "", user: bool = False):
        if not name or not str(name).strip():
            raise PresetError(f"{source or 'preset'}: the preset needs a name")
        self.name = str(name)
        self.id = id or slug(self.name)
        self.description = description
        self.family = family or self.id
        self.signature = tuple(signature)
        self.aliases = tuple(aliases)  # other names a user may call the preset by ("cc4")
        self.entries = list(targets)
        self.source = source
        self.user = user
        if not self.entries:
            raise PresetError(f"{source or self.name}: the preset has no targets")
        seen = {}
        for i, t in enumerate(self.entries):
            if t.key in seen:
                raise PresetError(f"{source or self.name}: key {t.key!r} is written by targets #{seen[t.key] + 1} "
                                  f"and #{i + 1}; merge them into one target with a mix")
            seen[t.key] = i

    def __repr__(self) -> str:
        return f"Preset({self.id!r}, {len(self.entries)} targets)"

    # -- building --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, *, id: str = "", source: str = "", user: bool = False) -> "Preset":
        where = source or id or "preset"
        if not isinstance(data, dict):
            raise PresetError(f"{where}: a preset is a table of fields")
        unknown = set(data) - _PRESET_FIELDS
        if unknown:
            raise PresetError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(sorted(_PRESET_FIELDS))}")
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            raise PresetError(f"{where}: the preset needs name = \"...\"")
        signature = _names_list(data.get("signature", []), "signature must be a list of key names", where)
        aliases = _names_list(data.get("aliases", []), "aliases must be a list of names", where)
        raw_targets = data.get("target", [])
        if not isinstance(raw_targets, list):
            raise PresetError(f"{where}: targets are written as [[target]] tables")
        targets = []
        if data.get("identity", False):
            targets = [Target(key=c, mix=((c, 1.0),)) for c in ARKIT_52]
        for n, raw in enumerate(raw_targets, 1):
            for t in parse_target(raw, n, where):
                targets = [old for old in targets if old.key != t.key or not data.get("identity")] + [t]
        return cls(data["name"], targets, id=id, description=str(data.get("description", "")),
                   family=str(data.get("family", "")), signature=signature, aliases=aliases, source=source,
                   user=user)

    @classmethod
    def from_mapping(cls, name: str, rows, **kwargs) -> "Preset":
        """A preset from simple rows (channel, key, gain) or (mix dict, key, gain); rows sharing a key mix."""
        merged = {}
        for row in rows:
            source, key, gain = row[0], row[1], float(row[2]) if len(row) > 2 else 1.0
            if not key:
                continue
            spec = source if isinstance(source, dict) else {source: 1.0}
            entry = merged.setdefault(key, {})
            for ch, w in spec.items():
                ch = channel_named(ch, f"mapping row for {key!r}")
                entry[ch] = entry.get(ch, 0.0) + w * gain
        targets = [Target(key=k, mix=tuple(v.items())) for k, v in merged.items()]
        return cls(name, targets, **kwargs)

    def to_dict(self) -> dict:
        d = {"format_version": 1, "name": self.name}
        if self.description:
            d["description"] = self.description
        if self.family and self.family != self.id:
            d["family"] = self.family
        if self.aliases:
            d["aliases"] = list(self.aliases)
        if self.signature:
            d["signature"] = list(self.signature)
        d["target"] = [t.to_dict() for t in self.entries]
        return d

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    # -- on a rig (see apply.py) ----------------------------------------------------------
    def resolve(self, obj_or_key_names) -> "apply.Resolution":
        """Where this preset's targets land on a rig (an object, its key names, or None for its own names)."""
        return apply.resolve(self, obj_or_key_names)

    def coverage(self, obj_or_key_names) -> "apply.RetargetReport":
        """Which channels land on this rig and which of the preset's keys it lacks (no curves made)."""
        return apply.report_for(self, self.resolve(obj_or_key_names))

    def targets_for(self, obj_or_key_names):
        """(active Target, rig key) pairs on a rig, in preset order."""
        res = self.resolve(obj_or_key_names)
        return [(self.entries[i], key) for i in res.active for key in res.rig_keys(i)]

    def targets(self, key_names, weights):
        """({rig key: float32 curve [frames]}, RetargetReport) for ARKit weights [frames, 52].

        `key_names`: the rig's shape-key names (or an object); None writes the preset's own key names.
        Where two targets reach the same rig key, the larger value is kept and the report says so.
        """
        return apply.rig_curves(self, key_names, weights)
