"""A take and a preset in, the rig's curves out: the one call the keying path makes.

The preset maps the take's ARKit curves onto the rig. When the rig's mouth is a viseme set and the
take has a phoneme timeline, the visemes are keyed from the phonemes instead (see visemes.py), so
the lips close on p, b and m and a few visemes move at a time. Visemes are driven:

- automatically where the preset already drives them, i.e. the rig has no ARKit-style mouth and the
  preset's viseme targets stand in (a viseme-only Ready Player Me or Character Creator head);
- on request (`use_visemes=True`) on a head that has both a full face and visemes;
- never when `use_visemes=False`.

A take without phonemes keeps the preset's curve mixes.
"""

from __future__ import annotations

import numpy as np

from .names import as_rig
from .visemes import VISEME_SETS, viseme_curves

MIN_VISEME_KEYS = 8  # a rig with fewer keys of a viseme set is not driven by it


def viseme_keys(obj_or_key_names) -> dict:
    """{rig key: [viseme classes]} for the viseme set the rig carries best, or {} when it has none."""
    rig = as_rig(obj_or_key_names)
    if rig is None:
        return {}
    best = {}
    for names in VISEME_SETS.values():
        found = {}
        for cls, wanted in names.items():
            key = rig.lookup(wanted)[0]
            if key is not None:
                found.setdefault(key, []).append(cls)
        if len(found) > len(best):
            best = found
    return best if len(best) >= MIN_VISEME_KEYS else {}


def rig_weights(take, preset, key_names=None, use_visemes=None) -> tuple:
    """({rig key: float32 curve [frames]}, report) for a take on a rig through a preset.

    `key_names`: the rig's shape-key names (or an object); None writes the preset's own names.
    `use_visemes`: None drives visemes from phonemes where the preset already drives them, True also
    on a head with a full face, False never. The report says which source drove the visemes.
    """
    curves, report = preset.targets(key_names, take.weights)
    if use_visemes is False or key_names is None or not getattr(take, "phonemes", None):
        return curves, report
    visemes = viseme_keys(key_names)
    driven = set(getattr(report, "fallbacks_used", None) or ())
    chosen = {k: v for k, v in visemes.items() if use_visemes or k in driven}
    if not chosen:
        return curves, report
    frames = int(np.asarray(take.weights).shape[0])
    by_class = viseme_curves(take.phonemes, frames, take.fps)
    for key, classes in chosen.items():
        curve = by_class[classes[0]]
        for cls in classes[1:]:
            curve = np.maximum(curve, by_class[cls])  # two classes on one key: the larger wins
        curves[key] = curve
        if hasattr(report, "landed"):
            report.landed[key] = "phonemes: " + " | ".join(classes)
    if hasattr(report, "source"):
        report.source = "phonemes"
    return curves, report
