"""Phone timelines from a recording, with pocketsphinx and the English model its wheel ships.

With a transcript the words are force-aligned (a word pass, then a phone pass over the words it
found); without one, phones are recognised with the English phone language model. Timelines come
out in IPA, the symbols the phonetic engine's viseme model speaks, so a recording drives the same
mouth as synthesized speech. Comparing two timelines (for tests and the benchmark) lives here too,
because it needs the same IPA <-> ARPAbet mapping.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from exomni_blender.core import contract as C
from exomni_blender.core.take import Phoneme

from ..base import EngineError

FRAME_RATE = 100  # pocketsphinx frames per second (10 ms)
SAMPLE_RATE = 16000
CHUNK_SECONDS = 30.0
# Per-frame acoustic score of the aligned speech, relative to the best-scoring model state in each
# frame (0 is a perfect fit). Correct transcripts of eSpeak lines score -10 to -36, other lines'
# transcripts -34 to -90: below this the transcript probably is not what was said.
MISMATCH_SCORE = -45.0
DITHER = 3e-4  # noise floor added for analysis only, about -70 dB below the normalised peak  # phone passes run on chunks cut in pauses: memory grows with frames x states

# CMU / pocketsphinx phones (stress-free) -> IPA as eSpeak NG writes American English.
ARPABET_TO_IPA = {
    "AA": "ɑ", "AE": "æ", "AH": "ə", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "B": "b", "CH": "tʃ", "D": "d",
    "DH": "ð", "EH": "ɛ", "ER": "ɚ", "EY": "eɪ", "F": "f", "G": "ɡ", "HH": "h", "IH": "ɪ", "IY": "i",
    "JH": "dʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "OW": "oʊ", "OY": "ɔɪ", "P": "p",
    "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t", "TH": "θ", "UH": "ʊ", "UW": "u", "V": "v", "W": "w",
    "Y": "j", "Z": "z", "ZH": "ʒ",
}

# IPA (as eSpeak and other tools write it) -> ARPAbet; longest match first, so diphthongs and
# affricates win over their parts. Symbols with no English counterpart go to the nearest phone.
_IPA_TO_ARPABET = {
    "aɪ": ["AY"], "aʊ": ["AW"], "eɪ": ["EY"], "oʊ": ["OW"], "əʊ": ["OW"], "ɔɪ": ["OY"], "tʃ": ["CH"],
    "dʒ": ["JH"], "ɝ": ["ER"], "ɚ": ["ER"], "ɜ": ["ER"], "ɑ": ["AA"], "ɒ": ["AA"], "a": ["AA"],
    "æ": ["AE"], "ʌ": ["AH"], "ə": ["AH"], "ɐ": ["AH"], "ɔ": ["AO"], "o": ["OW"], "ɛ": ["EH"],
    "e": ["EH"], "ɪ": ["IH"], "ᵻ": ["IH"], "ɨ": ["IH"], "i": ["IY"], "ʊ": ["UH"], "u": ["UW"],
    "ʉ": ["UW"], "y": ["UW"], "b": ["B"], "d": ["D"], "ð": ["DH"], "f": ["F"], "ɡ": ["G"], "g": ["G"],
    "h": ["HH"], "ɦ": ["HH"], "j": ["Y"], "k": ["K"], "x": ["K"], "l": ["L"], "ɫ": ["L"], "m": ["M"],
    "n": ["N"], "ŋ": ["NG"], "p": ["P"], "ɹ": ["R"], "r": ["R"], "ɾ": ["T"], "ʔ": ["T"], "s": ["S"],
    "ʃ": ["SH"], "t": ["T"], "θ": ["TH"], "v": ["V"], "w": ["W"], "ʍ": ["W"], "z": ["Z"], "ʒ": ["ZH"],
}
_IPA_KEYS = sorted(_IPA_TO_ARPABET, key=len, reverse=True)
_IPA_IGNORED = "ˈˌːˑ.‿|-_ \u0329\u032f\u0361\u02de"  # stress, length, syllabic, tie bars, r-colour hooks


@dataclass
class Word:
    text: str
    start: float  # seconds
    end: float

    def to_json(self) -> dict:
        return {"text": self.text, "start": round(self.start, 5), "end": round(self.end, 5)}


@dataclass
class PhoneAlignment:
    phones: list[Phoneme]  # IPA symbols, pauses left out (gaps between phones)
    words: list[Word] = field(default_factory=list)
    method: str = "forced"  # "forced" (transcript) or "recognized" (no transcript)
    skipped: list[str] = field(default_factory=list)  # transcript words that could not be pronounced
    warning: str = ""
    score: Optional[float] = None  # forced alignment's per-frame acoustic fit (see MISMATCH_SCORE)


# -- IPA <-> ARPAbet --------------------------------------------------------------------------

def arpabet_to_ipa(phone: str) -> str:
    return ARPABET_TO_IPA[re.sub(r"\d", "", phone.upper())]


def ipa_to_arpabet(symbols: str) -> list[str]:
    """ARPAbet phones for an IPA string (stress and length marks ignored, unknown symbols dropped)."""
    text = "".join(ch for ch in unicodedata.normalize("NFD", symbols) if ch not in _IPA_IGNORED)
    text = unicodedata.normalize("NFC", text)
    out, i = [], 0
    while i < len(text):
        for key in _IPA_KEYS:
            if text.startswith(key, i):
                out.extend(_IPA_TO_ARPABET[key])
                i += len(key)
                break
        else:
            i += 1
    return out


# -- the transcript ---------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def transcript_words(text: str) -> list[str]:
    """The words of a transcript as the dictionary spells them (lowercase, straight apostrophes)."""
    text = re.sub(r"\[\[.*?\]\]|\(.*?\)|\[.*?\]", " ", text)  # notes, parentheticals, stage directions
    return [t.lower().replace("’", "'") for t in _TOKEN.findall(text)]


# -- decoders ---------------------------------------------------------------------------------

_lock = threading.Lock()
_decoders: dict = {}


def _decoder(kind: str):
    """One cached decoder per kind (loading the model costs a tenth of a second)."""
    import pocketsphinx

    if kind not in _decoders:
        if kind == "align":
            # bestpath off: with it the word pass may end early on a fake final silence. Wide beams:
            # the default ones lose the only path through the transcript on synthetic voices.
            _decoders[kind] = pocketsphinx.Decoder(lm=None, loglevel="FATAL", bestpath=False,
                                                   beam=1e-120, wbeam=1e-100, pbeam=1e-120)
        else:
            _decoders[kind] = pocketsphinx.Decoder(
                allphone=pocketsphinx.get_model_path("en-us/en-us-phone.lm.bin"), loglevel="FATAL",
                bestpath=False, lw=1.0)  # a light LM weight: more phones found (measured on espeak speech)
    return _decoders[kind]


def _pcm(samples16k: np.ndarray) -> bytes:
    """16-bit PCM for the decoder: peak-normalised, with a faint fixed noise floor (dither).

    Digital silence (exact zeros, as synthesizers and noise gates write in stop closures and
    pauses) gives log-energies far below anything the acoustic model was trained on, and whole
    words then align to silence. Noise 70 dB below the peak removes that without touching speech.
    """
    x = np.asarray(samples16k, np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = x * (0.9 / peak)  # a quiet recording keeps its detail in 16-bit
    x = x + DITHER * np.random.default_rng(0).standard_normal(x.size).astype(np.float32)
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


# -- alignment --------------------------------------------------------------------------------

LetterToSound = Callable[[str], str]  # word -> IPA


def align(samples16k: np.ndarray, text: str = "", letter_to_sound: Optional[LetterToSound] = None,
          progress: Optional[Callable[[float, str], None]] = None) -> PhoneAlignment:
    """Phone (and, with a transcript, word) timeline of 16 kHz mono speech."""
    report = progress or (lambda f, m="": None)
    words = transcript_words(text or "")
    if not words:
        report(0.1, "recognising phones (no transcript)")
        return recognize_phones(samples16k)
    return force_align(samples16k, words, letter_to_sound, report)


def recognize_phones(samples16k: np.ndarray) -> PhoneAlignment:
    with _lock:
        return _recognize(_pcm(samples16k))


def force_align(samples16k: np.ndarray, words: Sequence[str], letter_to_sound: Optional[LetterToSound] = None,
                progress: Optional[Callable[[float, str], None]] = None) -> PhoneAlignment:
    report = progress or (lambda f, m="": None)
    pcm = _pcm(samples16k)
    with _lock:
        d = _decoder("align")
        usable, skipped = _pronounceable(d, words, letter_to_sound)
        if not usable:
            result = _recognize(pcm)
            result.skipped = list(words)
            result.warning = ("no word of the transcript could be pronounced; the phones were recognised "
                              "from the audio instead")
            return result
        report(0.2, "aligning words")
        segs = _word_pass(d, pcm, usable)
        aligned = [s for s in segs if not _is_filler(s[0])]
        if len(aligned) < len(usable):
            # The transcript does not fit the recording (other words, or a different take).
            result = _recognize(pcm)
            result.skipped = skipped
            result.warning = (f"the transcript did not match the recording (only {len(aligned)} of "
                              f"{len(usable)} words could be placed); phones were recognised from the audio "
                              "instead: check the text is exactly what is said")
            return result
        report(0.5, "aligning phones")
        phones, word_list, fit = [], [], [0.0, 0]
        chunks = _chunks(segs)
        for i, (first, last) in enumerate(chunks):
            chunk_words = [s for s in segs[first:last] if not _is_filler(s[0])]
            if len(chunks) == 1:  # the word pass just ran on exactly this audio
                p, w = _phone_pass(d, pcm, None, 0, chunk_words, fit)
            else:
                a, b = segs[first][1], segs[last - 1][2]
                p, w = _phone_pass(d, pcm[a * 320:b * 320], [s[0] for s in chunk_words], a, chunk_words, fit)
            phones.extend(p)
            word_list.extend(w)
            report(0.5 + 0.5 * (i + 1) / len(chunks), "aligning phones")
    score = fit[0] / fit[1] if fit[1] else None
    warning = ""
    if score is not None and score < MISMATCH_SCORE:
        warning = ("the recording fits its transcript poorly (alignment score "
                   f"{score:.0f}); check the text is exactly what is said, or leave it empty")
    return PhoneAlignment(phones=phones, words=word_list, method="forced", skipped=skipped,
                          warning=warning, score=score)


def _recognize(pcm: bytes) -> PhoneAlignment:
    d = _decoder("allphone")
    d.start_utt()
    d.process_raw(pcm, full_utt=True)
    d.end_utt()
    segs = [(s.word, s.start_frame, s.end_frame + 1) for s in d.seg()]
    phones = [Phoneme(ARPABET_TO_IPA[name], a / FRAME_RATE, b / FRAME_RATE)
              for name, a, b in segs if name in ARPABET_TO_IPA]
    return PhoneAlignment(phones=phones, method="recognized")


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "["))  # <sil>, <s>, </s>, [NOISE], ...


def _base_word(word: str) -> str:
    return re.sub(r"\(\d+\)$", "", word)


def _pronounceable(d, words: Sequence[str], letter_to_sound: Optional[LetterToSound]):
    """Words the dictionary knows, adding unknown ones through letter-to-sound; the rest are skipped."""
    usable, skipped = [], []
    for word in words:
        if d.lookup_word(word) is None:
            phones = ipa_to_arpabet(letter_to_sound(word)) if letter_to_sound else []
            try:
                if not phones:
                    raise RuntimeError("no pronunciation")
                d.add_word(word, " ".join(phones), True)
            except RuntimeError:
                skipped.append(word)
                continue
        usable.append(word)
    return usable, skipped


def _word_pass(d, pcm: bytes, words: Sequence[str]):
    try:
        d.set_align_text(" ".join(words))
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
    except RuntimeError as exc:
        raise EngineError(f"the aligner could not process this recording with its transcript ({exc}); "
                          "check the transcript, or leave it empty to recognise the phones instead",
                          C.E_BAD_REQUEST) from None
    if d.hyp() is None:  # no path through the whole transcript
        return []
    # (word, first frame, end frame exclusive)
    return [(s.word, s.start_frame, s.end_frame + 1) for s in d.seg() if s.word not in ("<s>", "</s>")]


def _chunks(segs) -> list[tuple[int, int]]:
    """Index ranges of word segments, cut inside pauses so each chunk stays near CHUNK_SECONDS."""
    limit = int(CHUNK_SECONDS * FRAME_RATE)
    out, first = [], 0
    for i, (word, a, b) in enumerate(segs):
        if _is_filler(word) and segs[first][1] + limit <= b and i > first:
            out.append((first, i + 1))
            first = i + 1
    if first < len(segs):
        out.append((first, len(segs)))
    return [c for c in out if any(not _is_filler(s[0]) for s in segs[c[0]:c[1]])]


def _phone_pass(d, pcm: bytes, words: Optional[Sequence[str]], offset: int, word_segs, fit: list):
    """Phones of one chunk (16-bit PCM, starting at frame `offset`): the word pass again on the chunk
    unless `words` is None (it just ran on this audio), then the phone pass over its result.
    `fit` accumulates [acoustic score, frames] of the speech phones."""
    try:
        if words is not None:
            d.set_align_text(" ".join(_base_word(w) for w in words))
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
        d.set_alignment()
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        alignment = d.get_alignment()
    except RuntimeError:
        alignment = None
    if alignment is None:  # the phone pass failed (a word squeezed too short): spread phones evenly
        return _even_phones(d, word_segs)
    phones, words_out = [], []
    for word in alignment:
        name = _base_word(word.name)
        if _is_filler(word.name):
            continue
        start, end = (offset + word.start) / FRAME_RATE, (offset + word.start + word.duration) / FRAME_RATE
        words_out.append(Word(name, start, end))
        for ph in word:
            if ph.name in ARPABET_TO_IPA:
                fit[0] += ph.score
                fit[1] += ph.duration
                phones.append(Phoneme(ARPABET_TO_IPA[ph.name], (offset + ph.start) / FRAME_RATE,
                                      (offset + ph.start + ph.duration) / FRAME_RATE))
    return phones, words_out


def _even_phones(d, word_segs):
    phones, words = [], []
    for word, a, b in word_segs:
        pron = (d.lookup_word(word) or "").split()
        start, end = a / FRAME_RATE, b / FRAME_RATE
        words.append(Word(_base_word(word), start, end))
        step = (end - start) / max(1, len(pron))
        for k, ph in enumerate(pron):
            if ph in ARPABET_TO_IPA:
                phones.append(Phoneme(ARPABET_TO_IPA[ph], start + k * step, start + (k + 1) * step))
    return phones, words


# -- measuring a timeline against a known one -------------------------------------------------

# Phones that differ between an espeak pronunciation and the dictionary's without a different mouth:
# reduced vowels, and flapped or glottal t/d.
_EQUIVALENT = [{"AH", "IH", "ER", "UH"}, {"T", "D"}, {"AA", "AO"}, {"IY", "IH"}]


def _same(a: str, b: str) -> bool:
    return a == b or any(a in g and b in g for g in _EQUIVALENT)


def _units(phones: Sequence[Phoneme]):
    """(ARPAbet phone, start or None) per unit: a multi-phone symbol only knows its first start."""
    out = []
    for p in phones:
        for k, unit in enumerate(ipa_to_arpabet(p.symbol)):
            out.append((unit, p.start if k == 0 else None))
    return out


def _pair(a: Sequence, b: Sequence, cost: Callable[[object, object], float]) -> list[tuple[int, int]]:
    """Index pairs (i, j) that a minimum-cost edit alignment of `a` and `b` substitutes (cost < 1)."""
    n, m = len(a), len(b)
    table = np.zeros((n + 1, m + 1), np.float32)
    table[:, 0] = np.arange(n + 1)
    table[0, :] = np.arange(m + 1)
    sub = np.ones((n, m), np.float32)
    for i in range(n):
        for j in range(m):
            sub[i, j] = cost(a[i], b[j])
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            table[i, j] = min(table[i - 1, j - 1] + sub[i - 1, j - 1], table[i - 1, j] + 1.0, table[i, j - 1] + 1.0)
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if table[i, j] == table[i - 1, j - 1] + sub[i - 1, j - 1]:
            if sub[i - 1, j - 1] < 1.0:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i, j] == table[i - 1, j] + 1.0:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def match_phones(reference: Sequence[Phoneme], hypothesis: Sequence[Phoneme]) -> list[tuple[float, float]]:
    """(reference start, hypothesis start) of phones paired by an edit-distance alignment.

    The two timelines need not use the same phone set: both go to ARPAbet, the sequences are
    aligned with the Levenshtein recurrence, and only pairs that mean the same mouth shape (equal,
    or both reduced vowels, or t/d) and whose reference start is known are returned.
    """
    ref, hyp = _units(reference), _units(hypothesis)
    cost = lambda r, h: 0.0 if r[0] == h[0] else (0.5 if _same(r[0], h[0]) else 1.0)  # noqa: E731
    return [(ref[i][1], hyp[j][1]) for i, j in _pair(ref, hyp, cost)
            if ref[i][1] is not None and hyp[j][1] is not None]


def phone_boundary_error(reference: Sequence[Phoneme], hypothesis: Sequence[Phoneme]) -> dict:
    """Mean absolute start-time error (s) of matched phones, and how many of the reference matched."""
    pairs = match_phones(reference, hypothesis)
    known = sum(1 for u in _units(reference) if u[1] is not None)
    return _summary([abs(r - h) for r, h in pairs], len(pairs), known)


def _word_key(text: str) -> str:
    return re.sub(r"[^a-z0-9']", "", text.lower().replace("’", "'"))


def word_boundary_error(reference: Sequence, hypothesis: Sequence) -> dict:
    """Mean absolute error (s) of word starts and ends; words paired by an edit alignment of their text.

    Texts count as the same word when one is a prefix of the other (a synthesizer may report
    "I" for "I'm"); two different texts in the same place of both sequences still pair, at a
    cost, so a garbled word label does not unpair the words around it.
    """
    def cost(r, h):
        a, b = _word_key(r.text), _word_key(h.text)
        return 0.0 if a and b and (a.startswith(b) or b.startswith(a)) else 0.6

    pairs = _pair(list(reference), list(hypothesis), cost)
    errors = [abs(getattr(reference[i], edge) - getattr(hypothesis[j], edge))
              for i, j in pairs for edge in ("start", "end")]
    return _summary(errors, len(pairs), len(reference))


def _summary(errors: list[float], matched: int, total: int) -> dict:
    e = np.asarray(errors, np.float64)
    return {"mean": float(e.mean()) if e.size else float("nan"),
            "median": float(np.median(e)) if e.size else float("nan"),
            "max": float(e.max()) if e.size else float("nan"),
            "matched": matched, "reference": total}
