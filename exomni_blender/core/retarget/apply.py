"""A preset on one rig: where its targets land, the rig's curves from ARKit weights, and the report.

Only the preset's targets and names are read here (any object with `name` and `entries`), so the
preset model can hand its rig-facing methods to this module without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..arkit import ARKIT_52, INDEX
from .errors import PresetError
from .names import EXACT, as_rig, name_key
from .report import RetargetReport

UNCOVERED_SHARE = 0.5  # a fallback stands in when at least this share of its positive weight lands nowhere else


@dataclass
class Resolution:
    """Where a preset's targets land on one rig."""

    found: dict  # target index -> (rig key, quality)
    missing: list  # target indices whose key is not on the rig
    active: list  # target indices that will be written (found, and fallbacks only where needed)
    ambiguous: dict  # preset key -> other rig keys that matched as well
    # target index -> the right half's rig key, where a key with no side (browInnerUp) exists on the
    # rig only as two halves (browInnerUp_L, browInnerUp_R): found[i] holds the left half, both move
    halves: dict = field(default_factory=dict)

    def rig_keys(self, i) -> tuple:
        """The rig keys target i writes: one, or both halves."""
        return (self.found[i][0], self.halves[i]) if i in self.halves else (self.found[i][0],)


def _find_targets(entries, rig) -> tuple:
    """(found, missing, ambiguous, halves) of each target's key or alias on the rig."""
    found, missing, ambiguous, halves = {}, [], {}, {}
    for i, t in enumerate(entries):
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
            split = split_halves(t.key, rig)
            if split is None:
                missing.append(i)
                continue
            hit, halves[i] = split
        found[i] = hit
    return found, missing, ambiguous, halves


def split_halves(key: str, rig):
    """((left rig key, quality), right rig key) when a key with no side is on the rig only as two
    halves, as face-scan rigs split browInnerUp and cheekPuff; else None."""
    if name_key(key).side:
        return None
    left, q_left, _ = rig.lookup(key + "Left")
    right, q_right, _ = rig.lookup(key + "Right")
    if left is None or right is None or left == right:
        return None
    return (left, min(q_left, q_right)), right


def _active_targets(entries, found, rig) -> list:
    """The found targets to write: every primary one, and fallbacks whose channels land nowhere else."""
    covered = {c for i in found if not entries[i].fallback for c in entries[i].driving_channels}
    active = []
    for i in found:
        t = entries[i]
        if not t.fallback:
            active.append(i)
        elif rig is not None:
            total = sum(w for _, w in t.mix if w > 0) or 1.0
            uncovered = sum(w for c, w in t.mix if w > 0 and c not in covered)
            if uncovered / total >= UNCOVERED_SHARE:
                active.append(i)
    return sorted(active)


def resolve(preset, obj_or_key_names) -> Resolution:
    """Where a preset's targets land on a rig; None for the rig writes the preset's own key names."""
    rig = as_rig(obj_or_key_names)
    found, missing, ambiguous, halves = _find_targets(preset.entries, rig)
    return Resolution(found, missing, _active_targets(preset.entries, found, rig), ambiguous, halves)


def report_for(preset, res: Resolution, weights=None) -> RetargetReport:
    """The report of a resolution; with weights, which unmapped channels move in this take."""
    entries = preset.entries
    report = RetargetReport(preset.name)
    landed_channels = set()
    for i in res.active:
        t = entries[i]
        landed_channels.update(t.driving_channels)
        for rig_key in res.rig_keys(i):
            report.landed[rig_key] = t.describe_source()
            for c in t.driving_channels:
                report.channel_keys.setdefault(c, []).append(rig_key)
            if t.fallback:
                report.fallbacks_used.append(rig_key)
        if res.rig_keys(i) != (t.key,):
            report.renamed[t.key] = " + ".join(res.rig_keys(i))
    report.channels_landed = [c for c in ARKIT_52 if c in landed_channels]
    report.unmapped_channels = [c for c in ARKIT_52 if c not in landed_channels]
    report.missing_keys = [entries[i].key for i in res.missing if not entries[i].fallback]
    report.ambiguous = dict(res.ambiguous)
    primary = [i for i, t in enumerate(entries) if not t.fallback]
    if primary:
        report.key_coverage = sum(1 for i in primary if i in res.found) / len(primary)
    else:
        report.key_coverage = len(res.found) / len(entries)
    if weights is not None and len(weights):
        peaks = np.abs(weights).max(axis=0)
        report.lost_motion = [c for c in report.unmapped_channels if peaks[INDEX[c]] > 1e-3]
    return report


def checked_weights(weights) -> np.ndarray:
    """ARKit weights as float32 [frames, 52], or an error naming the shape received."""
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] != len(ARKIT_52):
        raise PresetError(f"weights must be [frames, 52] in ARKit order, got shape {w.shape}")
    return w


def rig_curves(preset, key_names, weights) -> tuple:
    """({rig key: float32 curve [frames]}, RetargetReport) for ARKit weights [frames, 52].

    Where two targets reach the same rig key, the larger value is kept and the report says so.
    """
    w = checked_weights(weights)
    res = resolve(preset, key_names)
    report = report_for(preset, res, w)
    curves = {}
    for i in res.active:
        curve = preset.entries[i].evaluate(w)
        for rig_key in res.rig_keys(i):
            if rig_key in curves:
                curves[rig_key] = np.maximum(curves[rig_key], curve)
                if rig_key not in report.shared_keys:
                    report.shared_keys.append(rig_key)
            else:
                curves[rig_key] = curve
    return curves, report
