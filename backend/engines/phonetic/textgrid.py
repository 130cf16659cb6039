"""Praat TextGrid files (the format forced aligners such as MFA write) read as word and phone timelines.

Used to measure this engine's alignments against independent ones. Both TextGrid layouts, the
long one (`xmin = 0.5`) and the short one (bare values), reduce to the same stream of values once
the keys and item indices are dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

from exomni_blender.core.take import Phoneme

from .align import ARPABET_TO_IPA, Word, arpabet_to_ipa, ipa_to_arpabet

_VALUE = re.compile(r'"((?:[^"]|"")*)"|(<exists>|<absent>)|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')
_INDEX = re.compile(r"\[\s*\d+\s*\]")
SILENCES = {"", "sil", "sp", "spn", "<eps>", "<unk>"}


class TextGridError(ValueError):
    pass


def read_tiers(path) -> dict[str, list[tuple[float, float, str]]]:
    """Interval tiers by name: (start s, end s, label) per interval, labels as written."""
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    values = []
    for m in _VALUE.finditer(_INDEX.sub(" ", text)):
        if m.group(1) is not None:
            values.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            values.append(m.group(2))
        else:
            values.append(float(m.group(3)))
    if values[:2] != ["ooTextFile", "TextGrid"]:
        raise TextGridError(f"{Path(path).name} is not a Praat TextGrid (no 'ooTextFile' / 'TextGrid' header)")
    try:
        pos, tiers = 4, {}
        if values[pos] == "<absent>":
            return tiers
        count, pos = int(values[pos + 1]), pos + 2
        for _ in range(count):
            kind, name, n = values[pos], values[pos + 1], int(values[pos + 4])
            pos += 5
            if kind == "IntervalTier":
                tiers[name] = [(float(values[pos + 3 * k]), float(values[pos + 3 * k + 1]), str(values[pos + 3 * k + 2]))
                               for k in range(n)]
                pos += 3 * n
            else:  # a point tier: time and mark
                pos += 2 * n
    except (IndexError, TypeError, ValueError):
        raise TextGridError(f"{Path(path).name} is a damaged TextGrid (its tier sizes do not match its "
                            "values)") from None
    return tiers


def reference_words(path, tier: str = "words") -> list[Word]:
    """The spoken words of a TextGrid's word tier (empty intervals are pauses)."""
    return [Word(label.lower(), a, b) for a, b, label in _tier(path, tier) if label.strip().lower() not in SILENCES]


def reference_phones(path, tier: str = "phones") -> list[Phoneme]:
    """The phones of a TextGrid's phone tier, in IPA; ARPAbet (with stress digits) or IPA labels."""
    out = []
    for a, b, label in _tier(path, tier):
        label = label.strip()
        if label.lower() in SILENCES:
            continue
        base = re.sub(r"\d", "", label.upper())
        symbol = arpabet_to_ipa(base) if base in ARPABET_TO_IPA else label
        if ipa_to_arpabet(symbol):  # a label neither alphabet knows (noise, laughter) is no phone
            out.append(Phoneme(symbol, a, b))
    return out


def _tier(path, name: str):
    tiers = read_tiers(path)
    if name not in tiers:
        raise TextGridError(f"{Path(path).name} has no interval tier named {name!r} (it has {sorted(tiers)})")
    return tiers[name]
