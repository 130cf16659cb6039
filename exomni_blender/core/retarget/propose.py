"""A first map for a rig nobody wrote a preset for, for the user to check and save."""

from __future__ import annotations

import dataclasses

from ..arkit import ARKIT_52
from .detect import detect
from .errors import PresetError
from .names import RigNames, key_names_of, name_key, short_list
from .preset import Preset, Target, slug

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


def _similarity(channel_concepts: frozenset, name_concepts: frozenset) -> float:
    if channel_concepts <= name_concepts:
        # Every word of the channel is there; extra words (a family prefix such as "Fcl_EYE") cost a
        # little each.
        return max(0.0, 1.0 - 0.15 * len(name_concepts - channel_concepts))
    return len(channel_concepts & name_concepts) / len(channel_concepts | name_concepts)


def _family_targets(detection, rig: RigNames) -> tuple:
    """(targets, used rig keys): the detected family's own targets, written to the rig's spelling."""
    targets, used = [], set()
    if detection.preset is not None:
        for t, rig_key in detection.preset.targets_for(rig):
            if rig_key not in used:
                targets.append(dataclasses.replace(t, key=rig_key, aliases=()))
                used.add(rig_key)
    return targets, used


def _similar_pairs(channels, rig: RigNames, used: set, min_similarity: float) -> list:
    """(similarity, channel, rig key) for every same-side pair at least `min_similarity` alike."""
    scored = []
    for ch in channels:
        ck = name_key(ch)
        cc = _concepts(ck.words)
        for n in rig.names:
            if n in used:
                continue
            nk = name_key(n)
            if nk.side != ck.side:
                continue
            sim = _similarity(cc, _concepts(nk.words))
            if sim >= min_similarity:
                scored.append((sim, ch, n))
    return scored


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
    targets, used = _family_targets(detection, rig)
    if detection.preset is not None:
        notes.append(f"Started from {detection.preset.name}.")
    landed = {c for t in targets for c in t.driving_channels}
    scored = _similar_pairs([c for c in ARKIT_52 if c not in landed], rig, used, min_similarity)
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
        notes.append(f"No key found for {len(missing)} channels: {short_list(missing)}.")
    preset = Preset(name or "My rig", targets, id=slug(name or "my_rig"), user=True,
                    description="Proposed from the rig's shape-key names; check before use.")
    return preset, notes
