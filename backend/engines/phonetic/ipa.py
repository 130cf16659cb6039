"""IPA symbols as articulatory targets: what the jaw, lips and tongue tip aim for on each sound.

A phoneme symbol (as eSpeak NG writes it: "ˈaɪ", "tʃ", "ɑːɹ", "n̩") is split into sounds; each
sound gets a target per articulator and a dominance per articulator, i.e. how strongly it
insists on that target when its neighbours want something else (a /p/ insists on closed lips,
a /k/ does not care about the lips at all, so the lips of "coo" are rounded through the /k/).
Vowels are placed by their features (height, backness, rounding) so any IPA vowel works.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

# Articulators, in the order of the target/dominance vectors.
JAW, CLOSE, PRESS, PUCKER, FUNNEL, SPREAD, TUCK, LOWER, UPPER, TONGUE = range(10)
ARTICULATORS = ("jaw", "close", "press", "pucker", "funnel", "spread", "tuck", "lower", "upper", "tongue")
N_ART = len(ARTICULATORS)

STRESS_MARKS = "ˈˌ"
_LENGTH_MARKS = "ːˑ"
_TIES = "\u0361\u035c\u203f"

# Vowels: (height 0 close .. 1 open, backness 0 front .. 1 back, rounded)
VOWELS = {
    "i": (0.0, 0.0, 0), "y": (0.0, 0.0, 1), "ɨ": (0.0, 0.5, 0), "ʉ": (0.0, 0.5, 1), "ɯ": (0.0, 1.0, 0),
    "u": (0.0, 1.0, 1), "ɪ": (0.17, 0.15, 0), "ʏ": (0.17, 0.15, 1), "ʊ": (0.17, 0.85, 1), "ᵻ": (0.15, 0.4, 0),
    "ᵿ": (0.15, 0.6, 1), "e": (0.33, 0.0, 0), "ø": (0.33, 0.0, 1), "ɘ": (0.33, 0.5, 0), "ɵ": (0.33, 0.5, 1),
    "ɤ": (0.33, 1.0, 0), "o": (0.33, 1.0, 1), "ə": (0.5, 0.5, 0), "ɚ": (0.5, 0.5, 0), "ɛ": (0.67, 0.0, 0),
    "œ": (0.67, 0.0, 1), "ɜ": (0.67, 0.5, 0), "ɝ": (0.6, 0.5, 0), "ɞ": (0.67, 0.5, 1), "ʌ": (0.67, 1.0, 0),
    "ɔ": (0.67, 1.0, 1), "æ": (0.83, 0.0, 0), "ɐ": (0.8, 0.5, 0), "a": (1.0, 0.0, 0), "ɶ": (1.0, 0.0, 1),
    "ä": (1.0, 0.5, 0), "ɑ": (1.0, 1.0, 0), "ɒ": (1.0, 1.0, 1),
}
RHOTIC_VOWELS = {"ɚ", "ɝ"}
JAW_CLOSE_VOWEL, JAW_SPAN, JAW_ROUNDED = 0.15, 0.25, 0.6  # jaw target: close vowel, more for open, x rounded
REDUCED_VOWELS = {"ə", "ᵻ", "ᵿ", "ɐ", "ɚ", "ɨ"}

# Consonant classes, each a dict articulator -> (target, dominance); unnamed articulators get
# _DONT_CARE, a weak pull to neutral that lets the neighbours shape them.
_DONT_CARE = (0.0, 0.12)
_CLASSES = {
    # lips sealed: dominance high enough that the seal holds in fast speech
    "bilabial": dict(jaw=(0.04, 0.5), close=(1.0, 40.0), press=(0.45, 30.0), pucker=(0.0, 0.05), funnel=(0.0, 2.0),
                     spread=(0.0, 0.15), tuck=(0.0, 5.0), lower=(0.0, 30.0), upper=(0.0, 30.0), tongue=(0.0, 2.0)),
    "bilabial_fricative": dict(jaw=(0.05, 0.8), close=(0.75, 10.0), press=(0.1, 3.0), pucker=(0.0, 0.2),
                               funnel=(0.0, 1.0), tuck=(0.0, 3.0), lower=(0.0, 8.0), upper=(0.0, 8.0)),
    # lower lip tucked under the upper teeth
    "labiodental": dict(jaw=(0.05, 1.5), close=(0.0, 3.0), press=(0.0, 2.0), pucker=(0.0, 0.6), funnel=(0.0, 1.5),
                        spread=(0.1, 0.3), tuck=(1.0, 30.0), lower=(0.0, 15.0), upper=(0.12, 4.0), tongue=(0.0, 2.0)),
    # tongue tip between the teeth
    "dental": dict(jaw=(0.09, 1.5), close=(0.0, 4.0), press=(0.0, 2.0), pucker=(0.0, 0.3), funnel=(0.0, 0.6),
                   spread=(0.15, 0.4), tuck=(0.0, 3.0), lower=(0.06, 2.0), upper=(0.04, 1.0), tongue=(0.32, 12.0)),
    "alveolar": dict(jaw=(0.07, 0.8), close=(0.0, 1.5), press=(0.0, 1.0), pucker=(0.0, 0.1), funnel=(0.0, 0.15),
                     spread=(0.08, 0.15), tuck=(0.0, 1.0), lower=(0.03, 0.4), upper=(0.02, 0.4), tongue=(0.0, 3.0)),
    # teeth nearly together, lips slightly apart and spread
    "sibilant": dict(jaw=(0.035, 5.0), close=(0.0, 3.0), press=(0.0, 1.5), pucker=(0.0, 0.15), funnel=(0.0, 0.25),
                     spread=(0.22, 0.6), tuck=(0.0, 2.0), lower=(0.08, 1.2), upper=(0.06, 1.2), tongue=(0.0, 3.0)),
    # lips flared forward
    "postalveolar": dict(jaw=(0.05, 2.5), close=(0.0, 4.0), press=(0.0, 2.0), pucker=(0.28, 4.0), funnel=(0.55, 8.0),
                         spread=(0.0, 3.0), tuck=(0.0, 2.0), lower=(0.08, 2.0), upper=(0.12, 2.0), tongue=(0.0, 3.0)),
    "retroflex_sibilant": dict(jaw=(0.05, 2.5), close=(0.0, 4.0), press=(0.0, 2.0), pucker=(0.1, 2.0),
                               funnel=(0.35, 4.0), spread=(0.0, 1.5), lower=(0.07, 1.5), upper=(0.08, 1.5)),
    "alveolopalatal": dict(jaw=(0.04, 2.5), close=(0.0, 3.0), press=(0.0, 1.5), pucker=(0.0, 0.5), funnel=(0.1, 1.0),
                           spread=(0.3, 1.0), lower=(0.06, 1.0), upper=(0.06, 1.0), tongue=(0.0, 2.0)),
    "lateral": dict(jaw=(0.13, 0.5), close=(0.0, 1.0), press=(0.0, 0.5), pucker=(0.0, 0.08), funnel=(0.0, 0.1),
                    spread=(0.05, 0.1), tuck=(0.0, 0.8), lower=(0.04, 0.2), upper=(0.0, 0.2), tongue=(0.0, 1.0)),
    # English r: lips rounded and slightly protruded
    "rhotic": dict(jaw=(0.1, 0.7), close=(0.0, 1.5), press=(0.0, 1.0), pucker=(0.3, 2.5), funnel=(0.35, 2.5),
                   spread=(0.0, 1.5), tuck=(0.0, 1.0), lower=(0.03, 0.5), upper=(0.03, 0.5), tongue=(0.0, 1.0)),
    "trill": dict(jaw=(0.1, 0.6), close=(0.0, 1.2), press=(0.0, 0.6), tongue=(0.0, 1.0)),
    "palatal": dict(jaw=(0.06, 1.0), close=(0.0, 1.5), press=(0.0, 1.0), pucker=(0.0, 0.3), funnel=(0.0, 0.4),
                    spread=(0.38, 1.2), tuck=(0.0, 1.0), lower=(0.03, 0.5), upper=(0.02, 0.5), tongue=(0.0, 1.0)),
    "labiovelar": dict(jaw=(0.06, 1.5), close=(0.0, 3.0), press=(0.0, 2.0), pucker=(0.85, 12.0), funnel=(0.25, 4.0),
                       spread=(0.0, 6.0), tuck=(0.0, 2.0), lower=(0.0, 3.0), upper=(0.0, 3.0), tongue=(0.0, 1.0)),
    "labiopalatal": dict(jaw=(0.05, 1.5), close=(0.0, 3.0), press=(0.0, 2.0), pucker=(0.65, 8.0), funnel=(0.2, 3.0),
                         spread=(0.0, 4.0), tuck=(0.0, 2.0), lower=(0.0, 2.0), upper=(0.0, 2.0)),
    "velar": dict(jaw=(0.13, 0.6), close=(0.0, 1.2), press=(0.0, 0.6), pucker=(0.0, 0.08), funnel=(0.0, 0.08),
                  spread=(0.05, 0.1), tuck=(0.0, 0.8), lower=(0.03, 0.2), upper=(0.02, 0.2), tongue=(0.0, 1.0)),
    # no oral target: the mouth is already shaped for the next vowel
    "glottal": dict(jaw=(0.2, 0.08), close=(0.0, 0.3), press=(0.0, 0.3), pucker=(0.0, 0.03), funnel=(0.0, 0.03),
                    spread=(0.0, 0.03), tuck=(0.0, 0.3), lower=(0.0, 0.05), upper=(0.0, 0.05), tongue=(0.0, 0.5)),
}
_CONSONANTS = {
    **dict.fromkeys(["p", "b", "m", "ʙ"], "bilabial"),
    **dict.fromkeys(["ɸ", "β"], "bilabial_fricative"),
    **dict.fromkeys(["f", "v", "ʋ", "ɱ", "pf"], "labiodental"),
    **dict.fromkeys(["θ", "ð"], "dental"),
    **dict.fromkeys(["t", "d", "n", "ʈ", "ɖ", "ɳ", "ɗ"], "alveolar"),
    **dict.fromkeys(["s", "z", "ts", "dz"], "sibilant"),
    **dict.fromkeys(["ʃ", "ʒ", "tʃ", "dʒ"], "postalveolar"),
    **dict.fromkeys(["ʂ", "ʐ", "ʈʂ", "ɖʐ"], "retroflex_sibilant"),
    **dict.fromkeys(["ɕ", "ʑ", "tɕ", "dʑ"], "alveolopalatal"),
    **dict.fromkeys(["l", "ɫ", "ɬ", "ɮ", "ɭ", "ʎ", "ʟ", "tɬ"], "lateral"),
    **dict.fromkeys(["ɹ", "ɻ"], "rhotic"),
    **dict.fromkeys(["r", "ɾ", "ɽ", "ʀ"], "trill"),
    **dict.fromkeys(["j", "c", "ɟ", "ɲ", "ç", "ʝ"], "palatal"),
    **dict.fromkeys(["w", "ʍ"], "labiovelar"),
    **dict.fromkeys(["ɥ"], "labiopalatal"),
    **dict.fromkeys(["k", "g", "ɡ", "ŋ", "x", "ɣ", "ɰ", "q", "ɢ", "ɴ", "χ", "ʁ", "kx"], "velar"),
    **dict.fromkeys(["h", "ɦ", "ʔ", "ħ", "ʕ", "ʜ", "ʢ"], "glottal"),
}
_MULTI = sorted((k for k in _CONSONANTS if len(k) > 1), key=len, reverse=True)
# Secondary articulations written as modifier letters.
_LABIALISED, _PALATALISED = "ʷ", "ʲ"
_IGNORED_MODIFIERS = set("ʰˠˤⁿˡʼ˞ʱᵝ") | set("-.()|‖˥˦˧˨˩0123456789")  # and eSpeak's markers

# Articulators the lip seal / lip tuck depend on; these sounds hold for at least one frame.
LIP_CRITICAL = {"bilabial", "labiodental"}


@dataclass(frozen=True)
class Sound:
    """One articulatory segment: its targets and dominances per articulator."""

    name: str  # the IPA letter(s) it came from
    kind: str  # "vowel" or a consonant class
    target: tuple
    dominance: tuple

    @property
    def lip_critical(self) -> bool:
        return self.kind in LIP_CRITICAL


def split_stress(symbol: str) -> tuple[str, int]:
    """(symbol without stress marks, 2 for primary ˈ, 1 for secondary ˌ, 0 for none)."""
    stress = 2 if "ˈ" in symbol else 1 if "ˌ" in symbol else 0
    return "".join(c for c in symbol if c not in STRESS_MARKS), stress


def _clean(symbol: str) -> tuple[str, bool, bool, bool]:
    """(letters only, long, labialised, palatalised): marks and diacritics removed."""
    long = any(c in _LENGTH_MARKS for c in symbol)
    lab = _LABIALISED in symbol
    pal = _PALATALISED in symbol
    out = []
    for c in unicodedata.normalize("NFD", symbol):
        if c in STRESS_MARKS or c in _LENGTH_MARKS or c in _TIES or c in _IGNORED_MODIFIERS:
            continue
        if c in (_LABIALISED, _PALATALISED) or unicodedata.combining(c):
            continue
        out.append(c)
    text = unicodedata.normalize("NFC", "".join(out))
    return text, long, lab, pal


def _letters(text: str) -> list[str]:
    """Greedy split into known letters, affricates first ("tʃ" stays one sound)."""
    out, i = [], 0
    while i < len(text):
        for m in _MULTI:
            if text.startswith(m, i):
                out.append(m)
                i += len(m)
                break
        else:
            out.append(text[i])
            i += 1
    return out


def _interp(h: float, ys) -> float:
    return float(np.interp(h, (0.0, 0.17, 0.33, 0.67, 1.0), ys))


def vowel_sound(letter: str, stress: int = 0, long: bool = False) -> Sound:
    h, b, r = VOWELS[letter]
    t = [0.0] * N_ART
    d = [0.0] * N_ART
    # Every syllable's vowel opens the jaw (even a close one: the jaw cycles with the syllables), open
    # vowels most; rounded vowels less, the rounded lips doing part of the work. Beside NeuroSync's
    # curves (exomni bench peers) this agreed better than a wider span from close to open vowels.
    t[JAW] = (JAW_CLOSE_VOWEL + JAW_SPAN * h) * (JAW_ROUNDED if r else 1.0)
    d[JAW] = 1.0
    d[CLOSE], d[PRESS], d[TUCK], d[TONGUE] = 1.0, 1.0, 1.0, 0.5
    if r:
        t[PUCKER] = _interp(h, (0.72, 0.55, 0.36, 0.15, 0.06))
        # an "oo" both protrudes and rounds the lips: funnel as well as pucker, not pucker alone
        t[FUNNEL] = _interp(h, (0.45, 0.45, 0.5, 0.42, 0.3))
        d[PUCKER] = d[FUNNEL] = 2.0
        d[SPREAD] = 1.2
    else:  # spread front vowels resist rounding more than back ones
        d[PUCKER] = d[FUNNEL] = 1.2 - 0.6 * b
        t[SPREAD] = (1.0 - 0.75 * b) * (0.62 * (1.0 - h) + 0.08)
        d[SPREAD] = 1.0
    t[LOWER] = (1.0 - 0.6 * r) * max(0.0, h - 0.3) * 0.45
    t[UPPER] = (1.0 - r) * max(0.0, h - 0.45) * 0.3 * (1.0 - 0.5 * b)
    d[LOWER] = d[UPPER] = 0.8
    if letter in RHOTIC_VOWELS:  # r-coloured: the lips round a little
        t[FUNNEL], t[PUCKER], d[FUNNEL], d[PUCKER] = 0.28, 0.15, 1.2, 1.2
        t[SPREAD] *= 0.3
    if stress == 2:
        t[JAW] *= 1.12
        t[LOWER] *= 1.15
        t[UPPER] *= 1.15
        d[JAW] *= 1.25
    elif stress == 0 and letter in REDUCED_VOWELS:
        t[JAW] *= 0.85
        d[JAW] *= 0.7
    if long:
        d[JAW] *= 1.1
    return Sound(letter, "vowel", tuple(t), tuple(d))


def consonant_sound(letter: str, kind: str, labialised: bool = False, palatalised: bool = False) -> Sound:
    spec = _CLASSES[kind]
    t = [0.0] * N_ART
    d = [0.0] * N_ART
    for i, name in enumerate(ARTICULATORS):
        t[i], d[i] = spec.get(name, _DONT_CARE)
    if kind == "bilabial":  # more lip pressure before a burst than in a nasal
        t[PRESS] = {"p": 0.4, "b": 0.32}.get(letter, 0.22)
    if labialised:
        t[PUCKER], d[PUCKER] = max(t[PUCKER], 0.4), max(d[PUCKER], 3.0)
    if palatalised:
        t[SPREAD], d[SPREAD] = max(t[SPREAD], 0.2), max(d[SPREAD], 0.8)
    return Sound(letter, kind, tuple(t), tuple(d))


_UNKNOWN = Sound("?", "vowel", (0.22, 0, 0, 0, 0, 0.1, 0, 0.04, 0.02, 0), (0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.5, 0.3, 0.3, 0.3))


def sounds(symbol: str) -> list[tuple[float, Sound]]:
    """The sounds of one phoneme symbol with the share of its duration each takes.

    "ˈaɪ" -> a then ɪ (the nucleus longer than the glide), "tʃ" -> one sound, "ɑːɹ" -> ɑ then ɹ.
    Unknown letters become a weak, neutral mid vowel so nothing fails on an unexpected symbol.
    """
    _, stress = split_stress(symbol)
    text, long, lab, pal = _clean(symbol)
    found: list[Sound] = []
    for letter in _letters(text):
        if letter in VOWELS:
            found.append(vowel_sound(letter, stress if not found or found[-1].kind != "vowel" else 0, long))
        elif letter in _CONSONANTS:
            found.append(consonant_sound(letter, _CONSONANTS[letter], lab, pal))
        elif letter.strip():
            found.append(_UNKNOWN)
    if not found:
        return []
    shares = np.array([1.6] + [1.0] + [0.85] * max(0, len(found) - 2))[:len(found)]
    shares = shares / shares.sum()
    return list(zip(shares.tolist(), found))


def is_vowel(symbol: str) -> bool:
    """Whether the symbol's first sound is a vowel (the syllable nucleus)."""
    s = sounds(symbol)
    return bool(s) and s[0][1].kind == "vowel"
