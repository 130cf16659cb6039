"""Retargeting ARKit-52 curves onto a rig's own shape keys, through presets (one TOML file per rig family).

Pure logic: no bpy at module level, so the backend's `exomni retarget` uses the same code as the add-on.
The preset format is documented in the repository's presets/README.md. In short, a preset lists targets;
each target writes one rig key from one ARKit channel or a weighted mix of channels, with a response
curve, gain, offset and clamp:

    x = clip(sum or max of weight * channel, 0, 1) -> x = curve(x) -> y = clip(gain * x + offset, clamp)

Names are matched loosely (case, separators, camelCase, side tokens Left/Right, _L/_R, .L/.R, L_/R_,
namespace prefixes shared by most of the rig's keys such as "CC_Base_Body." or "Head_"), so one preset
entry serves every spelling of the same key. Detection ranks every preset on a rig's key names and
never picks silently: ties and low coverage come back with the result, and `detect(...).reason` says
why nothing was chosen.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arkit import ARKIT_52, INDEX
from .errors import ExOmniError

PRESET_SUFFIX = ".toml"
USER_PRESET_FOLDER = "exomni_presets"  # under Blender's user config folder
PRESETS_ENV = "EXOMNI_PRESETS"  # extra preset folders, os.pathsep-separated

# Detection thresholds (scores are in [0, 1]; see `detect`).
ACCEPT_SCORE = 0.3  # below this no preset is chosen
CONFIDENT_COVERAGE = 0.6  # a chosen preset with less key coverage than this carries a warning
TIE_MARGIN = 0.03  # two presets closer than this are a tie
MIN_MATCHED_KEYS = 3  # a preset needs at least this many of its keys on the rig

CURVES = ("linear", "smoothstep", "gamma")
COMBINES = ("sum", "max")


class PresetError(ExOmniError, ValueError):
    """A preset file or mapping that cannot be used; the message says what to fix."""


# -- name matching ------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s_.\-:|/\\,;]+")
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")
_SIDE_WORDS = {"l": "L", "left": "L", "r": "R", "right": "R"}
_QUADRANTS = {"ul", "ur", "dl", "dr"}  # MetaHuman's upper/lower + side suffixes (mouthFunnelUL)


@dataclass(frozen=True)
class NameKey:
    """A name reduced to what matters for matching: its words (lower case) and its side (L, R or '')."""

    words: tuple
    side: str = ""

    def __str__(self) -> str:
        return " ".join(self.words) + (f" [{self.side}]" if self.side else "")


def name_words(name: str) -> list:
    """The words of a name, lower case: separators and camelCase split, counters at either end dropped."""
    words = []
    for piece in _SEPARATORS.split(str(name)):
        if not piece:
            continue
        found = _WORDS.findall(piece) if piece.isascii() else []
        if not found or sum(map(len, found)) < len(piece) // 2:
            words.append(piece.lower())  # non-Latin names stay whole
            continue
        for word in found:
            if word.isupper() and word.lower() in _QUADRANTS:
                words.extend([word[0].lower(), word[1].lower()])  # side becomes its own word
            else:
                words.append(word.lower())
    # Version counters and suffixes such as "A01_" or "_div2" do not name the shape.
    while len(words) > 1 and any(c.isdigit() for c in words[-1]):
        words.pop()
    while len(words) > 1 and any(c.isdigit() for c in words[0]):
        words.pop(0)
    return words


def fold_words(words) -> NameKey:
    """NameKey of a word list: a side word at either end becomes the side."""
    words = list(words)
    side = ""
    if len(words) > 1 and words[-1] in _SIDE_WORDS:
        side = _SIDE_WORDS[words.pop()]
    elif len(words) > 1 and words[0] in _SIDE_WORDS:
        side = _SIDE_WORDS[words.pop(0)]
    return NameKey(tuple(words), side)


def name_key(name: str) -> NameKey:
    """How a name is compared: `name_key("Mouth_Smile.L") == name_key("mouthSmileLeft")`."""
    return fold_words(name_words(name))


# Quality of a match, used for ranking: exact spelling, same words and side, same letters when the
# rig's names lost their word boundaries ("mouthsmileleft"), same after a namespace prefix.
EXACT, FOLDED, SQUASHED, STRIPPED = 1.0, 0.98, 0.95, 0.9


def _squashed_forms(key: NameKey) -> tuple:
    """Spellings of a wanted name with word boundaries gone, side word in any of its places."""
    joined = "".join(key.words)
    if not key.side:
        return (joined,)
    letter, word = key.side.lower(), {"L": "left", "R": "right"}[key.side]
    return (joined + letter, joined + word, letter + joined, word + joined)


class RigNames:
    """A rig's shape-key names indexed for loose lookup. The reference key (Basis) is left out by the caller."""

    def __init__(self, names):
        self.names = list(dict.fromkeys(str(n) for n in names if n))
        self._exact = {n: n for n in self.names}
        self._lower = {}
        for n in self.names:
            self._lower.setdefault(n.lower(), []).append(n)
        word_lists = {n: name_words(n) for n in self.names}
        self.namespaces = self._find_namespaces(word_lists)
        self._folded, self._squashed, self._stripped = {}, {}, {}
        for n, words in word_lists.items():
            self._folded.setdefault(fold_words(words), []).append(n)
            self._squashed.setdefault("".join(words), []).append(n)
            for prefix in self.namespaces:
                if len(words) > len(prefix) and tuple(words[:len(prefix)]) == prefix:
                    rest = words[len(prefix):]
                    for table, key in ((self._stripped, fold_words(rest)), (self._stripped, "".join(rest))):
                        if n not in table.setdefault(key, []):
                            table[key].append(n)

    def _find_namespaces(self, word_lists) -> list:
        """Leading word runs (up to 6 words) that at least half of the names (and 3 or more) start with."""
        counts = {}
        for words in word_lists.values():
            for k in range(1, min(6, len(words) - 1) + 1):
                prefix = tuple(words[:k])
                counts[prefix] = counts.get(prefix, 0) + 1
        need = max(3, math.ceil(0.5 * len(self.names)))
        found = [p for p, c in counts.items() if c >= need]
        return sorted(found, key=len)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name) -> bool:
        return name in self._exact

    def lookup(self, name: str):
        """(rig name, quality, other candidates) for a wanted name, or (None, 0.0, []) when absent."""
        if name in self._exact:
            return name, EXACT, []
        same = self._lower.get(name.lower())
        if same:
            return same[0], EXACT, same[1:]
        key = name_key(name)
        hits = self._folded.get(key)
        if hits:
            return hits[0], FOLDED, hits[1:]
        squashed = _squashed_forms(key)
        for table, keys, quality in ((self._squashed, squashed, SQUASHED),
                                     (self._stripped, (key, *squashed), STRIPPED)):
            for k in keys:
                hits = table.get(k)
                if hits:
                    return hits[0], quality, hits[1:]
        return None, 0.0, []


def key_names_of(obj_or_names) -> list:
    """Shape-key names of a Blender object, mesh or Key (reference key left out), or a list of names."""
    if obj_or_names is None:
        return []
    if isinstance(obj_or_names, RigNames):
        return list(obj_or_names.names)
    if isinstance(obj_or_names, (str, bytes)):
        raise TypeError("expected an object with shape keys or a list of key names, not a single string")
    if hasattr(obj_or_names, "type") and hasattr(obj_or_names, "data"):  # an Object (an armature has no keys)
        key = getattr(obj_or_names.data, "shape_keys", None)
    elif hasattr(obj_or_names, "shape_keys"):  # a Mesh
        key = obj_or_names.shape_keys
    else:  # a Key, or plain names
        key = obj_or_names
    if key is None:
        return []
    blocks = getattr(key, "key_blocks", None)
    if blocks is not None:
        reference = getattr(key, "reference_key", None)
        ref_name = reference.name if reference is not None else None
        return [kb.name for kb in blocks if kb.name != ref_name]
    names = [str(n) for n in obj_or_names]
    return [n for n in names if n.lower() != "basis"]


def _rig(obj_or_names):
    if obj_or_names is None:
        return None
    if isinstance(obj_or_names, RigNames):
        return obj_or_names
    return RigNames(key_names_of(obj_or_names))


# -- targets and presets ----------------------------------------------------------------------------

_SIDE_FIELDS = {
    "L": {"Side": "Left", "side": "left", "S": "L", "s": "l", "OtherSide": "Right", "O": "R", "o": "r"},
    "R": {"Side": "Right", "side": "right", "S": "R", "s": "r", "OtherSide": "Left", "O": "L", "o": "l"},
}
_PLACEHOLDER = re.compile(r"\{(Side|side|S|s|OtherSide|O|o)\}")
_BOTH = "{Both}"


def _has_side(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text))


def _fill(text: str, side: str) -> str:
    return _PLACEHOLDER.sub(lambda m: _SIDE_FIELDS[side][m.group(1)], text)


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


_TARGET_FIELDS = {"key", "keys", "aliases", "from", "mix", "gain", "offset", "clamp", "curve", "gamma",
                  "combine", "fallback"}
_PRESET_FIELDS = {"name", "description", "family", "aliases", "signature", "identity", "target", "format_version"}


def _channel(name: str, where: str) -> str:
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
            names = [(_fill(raw, side) if side else raw, w)]
        for name, weight_part in names:
            ch = _channel(name, where)
            out[ch] = out.get(ch, 0.0) + weight_part
    if not out:
        raise PresetError(f"{where}: the mix is empty; give at least one channel")
    return tuple(out.items())


def _parse_target(raw: dict, number: int, source: str) -> list:
    where = f"{source}, target #{number}"
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
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
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
    gain = _number(raw.get("gain", 1.0), "gain", where)
    offset = _number(raw.get("offset", 0.0), "offset", where)
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

    texts = keys + aliases + [k for k in mix_spec]
    sided = any(_has_side(k) for k in keys + aliases)
    if not sided and any(_has_side(t) for t in texts):
        raise PresetError(f"{where}: side placeholders in from/mix need one in the key too "
                          "(e.g. key = \"Mouth_Smile_{S}\", from = \"mouthSmile{Side}\")")
    out = []
    for side in ("L", "R") if sided else ("",):
        mix = _expand_mix(mix_spec, side, where)
        for k in keys:
            out.append(Target(
                key=_fill(k, side) if side else k,
                mix=mix,
                aliases=tuple(_fill(a, side) if side else a for a in aliases),
                gain=gain, offset=offset, clamp=clamp, curve=curve, gamma=gamma, combine=combine,
                fallback=fallback))
    return out


@dataclass
class Resolution:
    """Where a preset's targets land on one rig."""

    found: dict  # target index -> (rig key, quality)
    missing: list  # target indices whose key is not on the rig
    active: list  # target indices that will be written (found, and fallbacks only where needed)
    ambiguous: dict  # preset key -> other rig keys that matched as well


@dataclass
class RetargetReport:
    """What landed where: channels with no target on the rig and preset keys missing from it."""

    preset: str
    landed: dict = field(default_factory=dict)  # rig key -> source description
    channel_keys: dict = field(default_factory=dict)  # ARKit channel -> rig keys it raises
    channels_landed: list = field(default_factory=list)
    unmapped_channels: list = field(default_factory=list)  # ARKit channels that drive nothing on this rig
    missing_keys: list = field(default_factory=list)  # preset keys not found on the rig
    fallbacks_used: list = field(default_factory=list)
    renamed: dict = field(default_factory=dict)  # preset key -> rig key, where the spelling differs
    ambiguous: dict = field(default_factory=dict)  # preset key -> other rig keys it also matched
    shared_keys: list = field(default_factory=list)  # rig keys two targets reached (the larger value wins)
    lost_motion: list = field(default_factory=list)  # unmapped channels that move in this take
    key_coverage: float = 0.0  # share of the preset's (non-fallback) keys found on the rig

    @property
    def channel_coverage(self) -> float:
        return len(self.channels_landed) / len(ARKIT_52)

    def lines(self) -> list:
        out = [f"{self.preset}: {len(self.landed)} keys driven, {len(self.channels_landed)}/52 channels land, "
               f"{self.key_coverage:.0%} of the preset's keys on the rig"]
        if self.lost_motion:
            out.append(f"Moving channels with no key on this rig: {_short_list(self.lost_motion)}")
        if self.unmapped_channels:
            out.append(f"Channels with no target: {_short_list(self.unmapped_channels)}")
        if self.missing_keys:
            out.append(f"Preset keys missing on the rig: {_short_list(self.missing_keys)}")
        if self.fallbacks_used:
            out.append(f"Fallback keys used: {_short_list(self.fallbacks_used)}")
        if self.ambiguous:
            out.append("Several rig keys fit: " + "; ".join(f"{k} -> {v}" for k, v in list(self.ambiguous.items())[:4]))
        if self.shared_keys:
            out.append(f"Keys reached by two targets (larger value kept): {_short_list(self.shared_keys)}")
        return out

    def summary(self) -> str:
        return "\n".join(self.lines())

    # keying.key_take reads reports as mappings, like its identity map's {"missing", "mapped", "unused"}.
    def get(self, name: str, default=None):
        views = {"missing": self.unmapped_channels, "mapped": self.channel_keys, "unused": self.missing_keys}
        if name in views:
            return views[name]
        return getattr(self, name, default)

    def __getitem__(self, name: str):
        value = self.get(name, KeyError)
        if value is KeyError:
            raise KeyError(name)
        return value

    def to_json(self) -> dict:
        return {"preset": self.preset, "landed": dict(self.landed), "channel_keys": dict(self.channel_keys),
                "channels_landed": list(self.channels_landed),
                "unmapped_channels": list(self.unmapped_channels), "missing_keys": list(self.missing_keys),
                "fallbacks_used": list(self.fallbacks_used), "renamed": dict(self.renamed),
                "ambiguous": {k: list(v) for k, v in self.ambiguous.items()}, "shared_keys": list(self.shared_keys),
                "lost_motion": list(self.lost_motion), "key_coverage": round(self.key_coverage, 4),
                "channel_coverage": round(self.channel_coverage, 4)}


def _short_list(items, limit: int = 8) -> str:
    items = list(items)
    text = ", ".join(items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


class Preset:
    """A rig family's map from ARKit-52 channels to its shape keys."""

    def __init__(self, name: str, targets, *, id: str = "", description: str = "", family: str = "",
                 signature=(), aliases=(), source: str = "", user: bool = False):
        if not name or not str(name).strip():
            raise PresetError(f"{source or 'preset'}: the preset needs a name")
        self.name = str(name)
        self.id = id or _slug(self.name)
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
        signature = data.get("signature", [])
        if not isinstance(signature, list) or not all(isinstance(s, str) for s in signature):
            raise PresetError(f"{where}: signature must be a list of key names")
        aliases = data.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise PresetError(f"{where}: aliases must be a list of names")
        raw_targets = data.get("target", [])
        if not isinstance(raw_targets, list):
            raise PresetError(f"{where}: targets are written as [[target]] tables")
        targets = []
        if data.get("identity", False):
            targets = [Target(key=c, mix=((c, 1.0),)) for c in ARKIT_52]
        for n, raw in enumerate(raw_targets, 1):
            for t in _parse_target(raw, n, where):
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
                ch = _channel(ch, f"mapping row for {key!r}")
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

    # -- resolving on a rig ---------------------------------------------------------------
    def resolve(self, obj_or_key_names) -> Resolution:
        rig = _rig(obj_or_key_names)
        found, missing, ambiguous = {}, [], {}
        for i, t in enumerate(self.entries):
            if rig is None:
                found[i] = (t.key, EXACT)
                continue
            hit = None
            for candidate in (t.key, *t.aliases):
                name, quality, others = rig.lookup(candidate)
                if name is not None:
                    hit = (name, quality)
                    if others:
                        ambiguous[t.key] = others
                    break
            if hit is None:
                missing.append(i)
            else:
                found[i] = hit
        covered = set()
        for i in found:
            if not self.entries[i].fallback:
                covered.update(self.entries[i].driving_channels)
        active = []
        for i in found:
            t = self.entries[i]
            if not t.fallback:
                active.append(i)
            elif rig is not None:
                # A fallback stands in only where most of what drives it lands nowhere else.
                total = sum(w for _, w in t.mix if w > 0) or 1.0
                uncovered = sum(w for c, w in t.mix if w > 0 and c not in covered)
                if uncovered / total >= 0.5:
                    active.append(i)
        return Resolution(found, missing, sorted(active), ambiguous)

    def _report(self, res: Resolution, weights=None) -> RetargetReport:
        report = RetargetReport(self.name)
        landed_channels = set()
        for i in res.active:
            t = self.entries[i]
            rig_key = res.found[i][0]
            report.landed[rig_key] = t.describe_source()
            landed_channels.update(t.driving_channels)
            for c in t.driving_channels:
                report.channel_keys.setdefault(c, []).append(rig_key)
            if rig_key != t.key:
                report.renamed[t.key] = rig_key
            if t.fallback:
                report.fallbacks_used.append(rig_key)
        report.channels_landed = [c for c in ARKIT_52 if c in landed_channels]
        report.unmapped_channels = [c for c in ARKIT_52 if c not in landed_channels]
        report.missing_keys = [self.entries[i].key for i in res.missing if not self.entries[i].fallback]
        report.ambiguous = dict(res.ambiguous)
        primary = [i for i, t in enumerate(self.entries) if not t.fallback]
        if primary:
            report.key_coverage = sum(1 for i in primary if i in res.found) / len(primary)
        else:
            report.key_coverage = len(res.found) / len(self.entries)
        if weights is not None and len(weights):
            peaks = np.abs(weights).max(axis=0)
            report.lost_motion = [c for c in report.unmapped_channels if peaks[INDEX[c]] > 1e-3]
        return report

    def coverage(self, obj_or_key_names) -> RetargetReport:
        """Which channels land on this rig and which of the preset's keys it lacks (no curves made)."""
        return self._report(self.resolve(obj_or_key_names))

    def targets_for(self, obj_or_key_names):
        """(active Target, rig key) pairs on a rig, in preset order."""
        res = self.resolve(obj_or_key_names)
        return [(self.entries[i], res.found[i][0]) for i in res.active]

    def targets(self, key_names, weights):
        """({rig key: float32 curve [frames]}, RetargetReport) for ARKit weights [frames, 52].

        `key_names`: the rig's shape-key names (or an object); None writes the preset's own key names.
        Where two targets reach the same rig key, the larger value is kept and the report says so.
        """
        w = np.asarray(weights, dtype=np.float32)
        if w.ndim != 2 or w.shape[1] != len(ARKIT_52):
            raise PresetError(f"weights must be [frames, 52] in ARKit order, got shape {w.shape}")
        res = self.resolve(key_names)
        report = self._report(res, w)
        curves = {}
        for i in res.active:
            rig_key = res.found[i][0]
            curve = self.entries[i].evaluate(w)
            if rig_key in curves:
                curves[rig_key] = np.maximum(curves[rig_key], curve)
                if rig_key not in report.shared_keys:
                    report.shared_keys.append(rig_key)
            else:
                curves[rig_key] = curve
        return curves, report

    def match_score(self, rig: RigNames) -> "Candidate":
        """How well this preset explains a rig's keys (see `detect`)."""
        res = self.resolve(rig)
        primary = [i for i, t in enumerate(self.entries) if not t.fallback]
        fallbacks = [i for i, t in enumerate(self.entries) if t.fallback]

        def weighted(indices):
            return sum(res.found[i][1] for i in indices if i in res.found)

        cov = weighted(primary) / len(primary) if primary else 0.0
        fcov = weighted(fallbacks) / len(fallbacks) if fallbacks else 0.0
        effective = max(cov, 0.9 * fcov)
        precision = weighted(range(len(self.entries))) / len(self.entries)
        claimed = {res.found[i][0] for i in res.found}
        explained = len(claimed) / len(rig) if len(rig) else 0.0
        sig_hits = sum(1 for s in self.signature if rig.lookup(s)[0] is not None)
        if self.signature:
            need = min(3, len(self.signature))
            factor = 0.5 + 0.5 * min(1.0, sig_hits / need)
        else:
            factor = 1.0
        score = factor * (0.55 * effective + 0.15 * precision + 0.3 * explained)
        coverage = cov if cov >= 0.9 * fcov else fcov
        return Candidate(self, round(score, 4), coverage, len(claimed), sig_hits, explained)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    return s or "preset"


# -- detection ----------------------------------------------------------------------------------

@dataclass
class Candidate:
    preset: Preset
    score: float
    coverage: float  # share of the preset's keys found (quality-weighted)
    matched_keys: int  # distinct rig keys the preset reaches
    signature_hits: int
    explained: float  # share of the rig's keys the preset reaches

    def describe(self) -> str:
        return f"{self.preset.name} (score {self.score:.2f}, {self.coverage:.0%} of its keys, {self.matched_keys} rig keys)"


@dataclass
class Detection:
    """The outcome of ranking every preset on a rig: the choice (or None), why, and what to watch."""

    preset: Preset | None
    ranking: list
    reason: str
    warnings: list = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.ranking[0].score if self.ranking and self.preset is not None else 0.0

    def lines(self) -> list:
        return [self.reason, *self.warnings]


def detect(obj_or_key_names, presets=None) -> Detection:
    """Rank presets by how well the rig's shape-key names match and choose the best, or say why not.

    The score mixes the preset's key coverage (quality-weighted: exact spelling > loose spelling >
    behind a namespace prefix), the share of the rig's keys it explains, and whether its signature
    names (what identifies the family) are present. No preset is chosen below ACCEPT_SCORE, with fewer
    than MIN_MATCHED_KEYS keys, or when the runner-up is within TIE_MARGIN (unless the leader is a user
    preset and the runner-up a built-in one: a user's edit of a family wins over the original).
    """
    names = key_names_of(obj_or_key_names)
    presets = load_presets() if presets is None else list(presets)
    if not presets:
        return Detection(None, [], "No retarget presets were found; check the presets folder.")
    if not names:
        return Detection(None, [], "The object has no shape keys to match (a bone-driven face needs "
                                   "exomni_blender.bone_face instead).")
    rig = RigNames(names)
    ranking = sorted((p.match_score(rig) for p in presets), key=lambda c: (-c.score, c.preset.user is False, c.preset.id))
    best = ranking[0]
    if best.score < ACCEPT_SCORE or best.matched_keys < MIN_MATCHED_KEYS:
        sample = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        reason = (f"No preset fits these {len(names)} shape keys ({sample}): the closest, {best.describe()}, "
                  f"is below the {ACCEPT_SCORE:.2f} needed. Pick a preset in the retarget panel or create one "
                  "from this rig.")
        return Detection(None, ranking, reason)
    warnings = []
    if len(ranking) > 1:
        runner = ranking[1]
        if best.score - runner.score < TIE_MARGIN:
            if best.preset.user and not runner.preset.user:
                warnings.append(f"The user preset {best.preset.name} ties with {runner.preset.name}; using the "
                                "user preset.")
            else:
                reason = (f"Ambiguous rig: {best.describe()} and {runner.describe()} fit equally well. "
                          "Choose one in the retarget panel.")
                return Detection(None, ranking, reason)
        elif best.score - runner.score < 2 * TIE_MARGIN:
            warnings.append(f"Close runner-up: {runner.describe()}.")
    if best.coverage < CONFIDENT_COVERAGE:
        warnings.append(f"Low coverage: only {best.coverage:.0%} of {best.preset.name}'s keys are on this rig; "
                        "check the channels with no target.")
    reason = f"Detected {best.describe()}."
    return Detection(best.preset, ranking, reason, warnings)


def detect_preset(obj_or_key_names, presets=None) -> Preset | None:
    """The preset that best fits a rig's shape keys, or None (call `detect` for the reason)."""
    return detect(obj_or_key_names, presets).preset


# -- proposing a preset from a rig's names ------------------------------------------------------

# Words that name the same motion in different rig families (only for proposals, never detection).
_SYNONYMS = {
    "close": "blink", "closed": "blink", "shut": "blink", "widen": "wide", "eyes": "eye", "brows": "brow",
    "drop": "down", "lower": "down", "raise": "up", "raiser": "up", "purse": "pucker", "kiss": "pucker",
    "blow": "puff", "wrinkle": "sneer", "wrinkler": "sneer", "fwd": "forward", "thrust": "forward",
    "depress": "frown", "depressor": "frown", "inner": "in", "outer": "out", "puller": "smile",
    "jaw": "jaw", "lid": "eye",
}


def _concepts(words) -> frozenset:
    words = list(words)
    if "jaw" in words:  # a dropped or lowered jaw is an open one
        words = ["open" if w in ("drop", "lower", "down") else w for w in words]
    return frozenset(_SYNONYMS.get(w, w) for w in words)


def propose_preset(obj_or_key_names, name: str = "", presets=None, min_similarity: float = 0.5) -> tuple:
    """(Preset, notes): a first map for a rig nobody wrote a preset for, for the user to check and save.

    Starts from the detected family's preset when one fits, then fills the remaining channels by name
    similarity (words after synonyms, same side), each rig key used at most once.
    """
    names = key_names_of(obj_or_key_names)
    if not names:
        raise PresetError("the object has no shape keys to build a preset from")
    rig = RigNames(names)
    detection = detect(rig, presets)
    notes = [detection.reason]
    targets, used = [], set()
    if detection.preset is not None:
        for t, rig_key in detection.preset.targets_for(rig):
            if rig_key not in used:  # the family's own target, written to the rig's spelling
                targets.append(dataclasses.replace(t, key=rig_key, aliases=()))
                used.add(rig_key)
        notes.append(f"Started from {detection.preset.name}.")
    landed = {c for t in targets for c in t.driving_channels}
    scored = []
    for ch in ARKIT_52:
        if ch in landed:
            continue
        ck = name_key(ch)
        cc = _concepts(ck.words)
        for n in rig.names:
            if n in used:
                continue
            nk = name_key(n)
            if nk.side != ck.side:
                continue
            nc = _concepts(nk.words)
            if cc <= nc:
                # Every word of the channel is there; extra words (a family prefix such as "Fcl_EYE")
                # cost a little each.
                sim = max(0.0, 1.0 - 0.15 * len(nc - cc))
            else:
                sim = len(cc & nc) / len(cc | nc)
            if sim >= min_similarity:
                scored.append((sim, ch, n))
    taken_channels = set()
    for sim, ch, n in sorted(scored, key=lambda s: (-s[0], ARKIT_52.index(s[1]), s[2])):
        if ch in taken_channels or n in used:
            continue
        targets.append(Target(key=n, mix=((ch, 1.0),)))
        used.add(n)
        taken_channels.add(ch)
    if not targets:
        raise PresetError("none of the rig's shape keys resembles an ARKit channel; map them by hand in the panel")
    missing = [c for c in ARKIT_52 if c not in landed and c not in taken_channels]
    if missing:
        notes.append(f"No key found for {len(missing)} channels: {_short_list(missing)}.")
    preset = Preset(name or "My rig", targets, id=_slug(name or "my_rig"), user=True,
                    description="Proposed from the rig's shape-key names; check before use.")
    return preset, notes


# -- files -----------------------------------------------------------------------------------------

def load_preset(path) -> Preset:
    """Read and validate one preset file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise PresetError(f"{path}: no such preset file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{path}: not valid TOML ({exc})") from None
    return Preset.from_dict(data, id=path.stem, source=str(path), user=not _is_builtin_dir(path.parent))


def builtin_preset_dirs() -> list:
    """Folders holding the shipped presets: inside the package when packaged, else the repository's presets/."""
    package = Path(__file__).resolve().parents[1]  # exomni_blender/
    return [d for d in (package / "presets", package.parent / "presets") if d.is_dir()]


def _is_builtin_dir(folder: Path) -> bool:
    try:
        return any(folder.resolve() == d.resolve() for d in builtin_preset_dirs())
    except OSError:
        return False


def user_preset_dirs() -> list:
    """User preset folders: $EXOMNI_PRESETS, then Blender's user config folders on this machine.

    Every installed Blender version's config folder is searched (and $BLENDER_USER_CONFIG, where Blender
    was told to keep it), so presets saved from the add-on serve every version and `exomni retarget`.
    """
    dirs = [Path(p) for p in os.environ.get(PRESETS_ENV, "").split(os.pathsep) if p]
    if os.environ.get("BLENDER_USER_CONFIG"):
        dirs.append(Path(os.environ["BLENDER_USER_CONFIG"]) / USER_PRESET_FOLDER)
    home = Path.home()
    roots = [home / ".config" / "blender", home / "Library" / "Application Support" / "Blender"]
    if os.environ.get("APPDATA"):
        roots.append(Path(os.environ["APPDATA"]) / "Blender Foundation" / "Blender")
    for root in roots:
        if root.is_dir():
            dirs.extend(sorted(root.glob(f"*/config/{USER_PRESET_FOLDER}")))
    return list(dict.fromkeys(dirs))


_cache = {}  # preset file -> (mtime, Preset): the panel lists presets on every redraw


def load_presets(extra_dirs=(), include_user: bool = True, errors=None) -> list:
    """Every preset: built-in ones, then user folders (a user file with a built-in's id replaces it).

    A broken user file is skipped and its error appended to `errors` (when given) so one bad file does
    not hide the others; a broken built-in is a bug and raises.
    """
    dirs = [(d, True) for d in builtin_preset_dirs()]
    if include_user:
        dirs += [(Path(d), False) for d in (*user_preset_dirs(), *extra_dirs)]
    by_id = {}
    for folder, builtin in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{PRESET_SUFFIX}")):
            try:
                stamp = path.stat().st_mtime_ns
            except OSError:
                continue
            cached = _cache.get(path)
            if cached is not None and cached[0] == stamp:
                preset = cached[1]
            else:
                try:
                    preset = load_preset(path)
                except PresetError as exc:
                    if builtin:
                        raise
                    if errors is not None:
                        errors.append(str(exc))
                    continue
                _cache[path] = (stamp, preset)
            by_id[preset.id] = preset
    return list(by_id.values())


def find_preset(name: str, presets=None, extra_dirs=()) -> Preset:
    """A preset by id, display name or file path; the error lists what exists."""
    if name and (name.endswith(PRESET_SUFFIX) or os.sep in name) and Path(name).is_file():
        return load_preset(name)
    presets = load_presets(extra_dirs) if presets is None else list(presets)
    wanted = str(name).strip().lower()
    for p in presets:
        if wanted in (p.id.lower(), p.name.lower()):
            return p
    for p in presets:
        if wanted in (a.lower() for a in p.aliases):
            return p
    available = ", ".join(sorted(p.id for p in presets)) or "none"
    raise PresetError(f"no preset named {name!r}; available: {available}")


def save_user_preset(preset: Preset, folder) -> Path:
    """Write a preset as TOML into a user preset folder (the add-on passes Blender's user config folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = preset.to_toml()
    Preset.from_dict(tomllib.loads(text), id=preset.id)  # never write what cannot be read back
    path = folder / f"{_slug(preset.id)}{PRESET_SUFFIX}"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    _cache.pop(path, None)
    return path


# -- a small TOML writer for preset files (the stdlib reads TOML but does not write it) -------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        f = float(v)
        if not math.isfinite(f):
            raise PresetError(f"cannot write {v!r} to a preset")
        return repr(round(f, 6))
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"')
        # TOML strings may hold no control character but tab: write the others as escapes.
        return '"' + re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise PresetError(f"cannot write {type(v).__name__} to a preset")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)


def dumps_toml(data: dict) -> str:
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, items in tables:
        for item in items:
            lines.append("")
            lines.append(f"[[{k}]]")
            lines.extend(f"{_toml_key(ik)} = {_toml_value(iv)}" for ik, iv in item.items())
    return "\n".join(lines) + "\n"
