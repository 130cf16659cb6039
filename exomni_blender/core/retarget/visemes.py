"""Viseme curves from a take's phoneme timeline, for rigs whose mouth is a set of visemes.

A viseme rig (Ready Player Me / Oculus 15, Character Creator's B_M_P ... W_OO) cannot be driven well by
mixing ARKit curves: every viseme is a blend of several channels, so many open at once and none closes
fully. When the take knows its phonemes, each sound picks its viseme instead and coarticulation
blends neighbours, as an animator keys visemes:

- every sound pulls its viseme with a dominance that is flat over the sound and decays away from it
  (earlier ahead of the sound than after it); the value of a viseme at a frame is its share of the
  summed dominance, so the visemes at a frame add up to 1;
- lip closures (p, b, m) and lip-teeth contacts (f, v) dominate their neighbours, so the lips close
  even in fast speech; sounds that barely use the lips (k, g, h) let the neighbours' shapes through;
- only the strongest MAX_ACTIVE visemes of a frame are kept, so a few are active at a time.

Phoneme symbols are IPA as eSpeak NG and the aligner write them ("ˈaɪ", "tʃ", "ɑːɹ"); ARPAbet
("AA1", "CH") is read as well.
"""

from __future__ import annotations

import unicodedata

import numpy as np

# The Oculus / Ready Player Me viseme classes; the other sets are written in these.
VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")
MAX_ACTIVE = 3  # visemes kept at a frame
GAP_FOR_REST = 0.06  # a pause at least this long (s) rests the mouth (sil)

# The rig key names of each viseme set, by class (two classes may share a key: the larger wins).
VISEME_SETS = {
    "oculus": {c: f"viseme_{c}" for c in VISEMES},
    "character_creator": {"PP": "B_M_P", "FF": "F_V", "TH": "TH", "DD": "T_L_D_N", "nn": "T_L_D_N",
                          "kk": "K_G_H_NG", "CH": "Ch_J", "SS": "S_Z", "RR": "R", "aa": "Ah", "E": "AE",
                          "I": "IH", "O": "Oh", "U": "W_OO"},
}

# Dominance of each class over its neighbours, and how fast it decays ahead of / after its sound (1/s).
_DOMINANCE = {"sil": 1.0, "PP": 12.0, "FF": 8.0, "TH": 3.0, "DD": 0.8, "kk": 0.4, "CH": 3.0, "SS": 2.0,
              "nn": 0.8, "RR": 2.0, "aa": 1.5, "E": 1.5, "I": 1.5, "O": 2.0, "U": 2.5, None: 0.15}
_DECAY_AHEAD, _DECAY_AFTER = 22.0, 30.0
_FAST_DECAY = {"PP": 45.0, "FF": 40.0}  # a closure holds its own sound, not its neighbours'
_SHAPE = 1.5
_NEIGHBOURS = 8  # sounds on each side that can still matter at a frame
_FLOOR = 1e-6

_IPA_CONSONANTS = {
    "p": "PP", "b": "PP", "m": "PP", "ɱ": "FF", "f": "FF", "v": "FF", "θ": "TH", "ð": "TH",
    "t": "DD", "d": "DD", "ɾ": "DD", "ʈ": "DD", "ɖ": "DD", "k": "kk", "g": "kk", "ɡ": "kk", "ŋ": "kk", "x": "kk",
    "ɣ": "kk", "q": "kk", "c": "kk", "ɟ": "kk", "ʃ": "CH", "ʒ": "CH", "ɕ": "CH", "ʑ": "CH", "ʂ": "CH", "ʐ": "CH",
    "s": "SS", "z": "SS", "n": "nn", "l": "nn", "ɫ": "nn", "ɲ": "nn", "ɳ": "nn", "ʎ": "nn", "ɬ": "SS",
    "ɹ": "RR", "r": "RR", "ɻ": "RR", "ʁ": "RR", "ʀ": "RR", "j": "I", "w": "U", "ɥ": "U", "ʍ": "U",
    "h": None, "ɦ": None, "ʔ": None,
}
_IPA_VOWELS = {
    "a": "aa", "ɑ": "aa", "æ": "aa", "ʌ": "aa", "ɐ": "aa", "ä": "aa", "ɒ": "O", "ɶ": "aa",
    "e": "E", "ɛ": "E", "ə": "E", "ɚ": "RR", "ɝ": "RR", "ɜ": "E", "ɘ": "E", "œ": "E", "ø": "E", "ɞ": "E",
    "i": "I", "ɪ": "I", "y": "I", "ɨ": "I", "ʏ": "I", "ᵻ": "I", "ɯ": "I",
    "o": "O", "ɔ": "O", "ɤ": "O", "ɵ": "O", "u": "U", "ʊ": "U", "ʉ": "U", "ᵿ": "U",
}
_ARPABET = {
    "AA": ["aa"], "AE": ["aa"], "AH": ["aa"], "AO": ["O"], "AW": ["aa", "U"], "AY": ["aa", "I"], "EH": ["E"],
    "ER": ["RR"], "EY": ["E", "I"], "IH": ["I"], "IY": ["I"], "OW": ["O", "U"], "OY": ["O", "I"], "UH": ["U"],
    "UW": ["U"], "B": ["PP"], "P": ["PP"], "M": ["PP"], "F": ["FF"], "V": ["FF"], "TH": ["TH"], "DH": ["TH"],
    "T": ["DD"], "D": ["DD"], "K": ["kk"], "G": ["kk"], "NG": ["kk"], "CH": ["CH"], "JH": ["CH"], "SH": ["CH"],
    "ZH": ["CH"], "S": ["SS"], "Z": ["SS"], "N": ["nn"], "L": ["nn"], "R": ["RR"], "Y": ["I"], "W": ["U"],
    "HH": [None], "SIL": ["sil"], "SP": ["sil"],
}
_SILENCE = {"", "_", "sil", "sp", "spn", "pau", "#", "SIL", "SP"}


def phoneme_visemes(symbol: str) -> list:
    """The viseme classes of one phoneme symbol, in order (a diphthong has two; h, ʔ have None)."""
    text = str(symbol).strip()
    if text in _SILENCE:
        return ["sil"]
    arpabet = text.rstrip("012").upper()
    if text.isascii() and text.upper() == text and arpabet in _ARPABET:
        return list(_ARPABET[arpabet])
    classes = []
    for ch in unicodedata.normalize("NFD", text):
        if ch in _IPA_VOWELS:
            found = _IPA_VOWELS[ch]
        elif ch in _IPA_CONSONANTS:
            found = _IPA_CONSONANTS[ch]
        else:
            continue  # stress, length, tie bars and other diacritics do not change the viseme
        if not classes or classes[-1] != found:
            classes.append(found)
    if not classes:
        return [None]
    if len(classes) > 2:  # "tʃ" or an affricate + vowel: keep the sound's two most telling parts
        classes = [classes[0], classes[-1]]
    if len(classes) == 2 and classes[0] in ("DD", "kk") and classes[1] in ("CH", "SS"):
        classes = [classes[1]]  # an affricate looks like its fricative
    return classes


def _segments(phonemes, fps: float) -> list:
    """(start, end, class) per sound, pauses as 'sil'; a lip closure lasts at least one frame."""
    hold = 1.0 / fps + 1e-3
    out, previous_end = [], None
    for p in sorted(phonemes, key=lambda p: _timing(p)[1]):
        symbol, start, end = _timing(p)
        if end <= start:
            continue
        if previous_end is None or start - previous_end >= GAP_FOR_REST:
            out.append((start - 1.0 if previous_end is None else previous_end, start, "sil"))
        classes = phoneme_visemes(symbol)
        step = (end - start) / len(classes)
        for k, cls in enumerate(classes):
            s, e = start + k * step, start + (k + 1) * step
            if cls in ("PP", "FF") and e - s < hold:
                mid = 0.5 * (s + e)
                s, e = mid - 0.5 * hold, mid + 0.5 * hold
            out.append((s, e, cls))
        previous_end = end if previous_end is None else max(previous_end, end)
    if previous_end is not None:
        out.append((previous_end, previous_end + 1.0, "sil"))
    return out


def _timing(p) -> tuple:
    if isinstance(p, (tuple, list)):
        return str(p[0]), float(p[1]), float(p[2])
    return str(p.symbol), float(p.start), float(p.end)


def viseme_curves(phonemes, frames: int, fps: float) -> dict:
    """{viseme class: float32 curve [frames]} from a phoneme timeline (Phoneme objects or (symbol, start, end)).

    At each frame the classes add up to at most 1 and at most MAX_ACTIVE are above zero; before,
    between (pauses of GAP_FOR_REST or more) and after the sounds the mouth rests on 'sil'.
    """
    frames = int(frames)
    if frames <= 0 or not fps > 0:
        raise ValueError(f"viseme curves need frames > 0 and fps > 0, got {frames} frames at {fps} fps")
    times = np.arange(frames, dtype=np.float64) / float(fps)
    segments = _segments(phonemes, fps)
    curves = np.zeros((frames, len(VISEMES)), np.float64)
    if not segments:
        curves[:, VISEMES.index("sil")] = 1.0
        return _as_dict(curves)
    starts = np.array([s for s, _, _ in segments])
    ends = np.array([e for _, e, _ in segments])
    dominance = np.array([_DOMINANCE[c] for _, _, c in segments])
    column = np.array([VISEMES.index(c) if c is not None else -1 for _, _, c in segments])
    ahead_rate = np.array([_FAST_DECAY.get(c, _DECAY_AHEAD) for _, _, c in segments])
    after_rate = np.array([_FAST_DECAY.get(c, _DECAY_AFTER) for _, _, c in segments])
    # Each frame looks at the sounds around it only: a window of neighbours by start time.
    centre = np.searchsorted(starts, times)
    idx = np.clip(centre[:, None] + np.arange(-_NEIGHBOURS, _NEIGHBOURS)[None, :], 0, len(segments) - 1)
    ahead = np.clip(starts[idx] - times[:, None], 0.0, None) * ahead_rate[idx]
    after = np.clip(times[:, None] - ends[idx], 0.0, None) * after_rate[idx]
    pull = dominance[idx] * np.exp(-np.minimum(ahead ** _SHAPE + after ** _SHAPE, 50.0))
    pull = _without_repeats(idx, pull)
    total = pull.sum(axis=1) + _FLOOR
    for k in range(idx.shape[1]):
        cols = column[idx[:, k]]
        shaped = cols >= 0  # sounds with no mouth shape of their own (h, ʔ) only dilute their neighbours
        np.add.at(curves, (np.nonzero(shaped)[0], cols[shaped]), pull[shaped, k] / total[shaped])
    return _as_dict(_keep_strongest(curves))


def _without_repeats(idx: np.ndarray, pull: np.ndarray) -> np.ndarray:
    """Zero the pull of a sound counted twice in a frame's window (windows clip at the timeline's ends)."""
    out = pull.copy()
    for k in range(1, idx.shape[1]):
        out[:, k] = np.where((idx[:, :k] == idx[:, k:k + 1]).any(axis=1), 0.0, out[:, k])
    return out


def _keep_strongest(curves: np.ndarray) -> np.ndarray:
    """Only the MAX_ACTIVE strongest visemes of each frame, scaled back to the frame's total."""
    if curves.shape[1] <= MAX_ACTIVE:
        return curves
    order = np.argsort(-curves, axis=1)
    kept = np.zeros_like(curves)
    rows = np.arange(curves.shape[0])[:, None]
    top = order[:, :MAX_ACTIVE]
    kept[rows, top] = curves[rows, top]
    before, after = curves.sum(axis=1, keepdims=True), kept.sum(axis=1, keepdims=True)
    return kept * np.where(after > 0, before / np.maximum(after, _FLOOR), 0.0)


def _as_dict(curves: np.ndarray) -> dict:
    return {c: np.clip(curves[:, i], 0.0, 1.0).astype(np.float32) for i, c in enumerate(VISEMES)}
