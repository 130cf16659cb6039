"""Phone timelines from a recording, with pocketsphinx and the English model its wheel ships.

With a transcript the words are force-aligned (a word pass, then a phone pass that starts from the
word pass's own segmentation: each stretch of audio is decoded twice); without one, words are
recognised with the English language model and then force-aligned the same way. Long recordings
go through in stretches cut in pauses, and in parts aligned at once by helper processes, one per
core (align_parts). Timelines come out in IPA, the symbols the phonetic engine's viseme model
speaks, so a recording drives the same mouth as synthesized speech. Comparing two timelines (for
tests and the benchmark) lives here too, because it needs the same IPA <-> ARPAbet mapping."""

from __future__ import annotations

import atexit
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from exomni_blender.core import contract as C
from exomni_blender.core.request import is_english
from exomni_blender.core.take import Phoneme

from ..base import EngineError

FRAME_RATE = 100  # pocketsphinx frames per second (10 ms)
SAMPLE_RATE = 16000
CHUNK_SECONDS = 20.0  # longest stretch of audio decoded at once
HELD_BACK = 2  # words a stretch gives back to the next one (see _forward)
# A long transcript whose last words are not in the recording keeps the words it placed; when more
# than this share is missing the transcript is not what was said, and phones are recognised instead.
MAX_UNPLACED = 0.05
# Per-frame acoustic score of the aligned speech, relative to the best-scoring model state in each
# frame (0 is a perfect fit). Correct transcripts of eSpeak lines score -10 to -36, other lines'
# transcripts -34 to -90: below this the transcript probably is not what was said.
MISMATCH_SCORE = -45.0
DITHER = 3e-4  # noise floor added for analysis only, about -70 dB below the normalised peak

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
    # other languages' sounds (as eSpeak NG writes them) -> the nearest English model phones
    "ʁ": ["R"], "ʀ": ["R"], "ɻ": ["R"], "ç": ["HH"], "χ": ["HH"], "β": ["B"], "ɣ": ["G"], "ɲ": ["N", "Y"],
    "ʎ": ["L", "Y"], "ø": ["ER"], "œ": ["ER"], "ɵ": ["ER"], "ʏ": ["UH"], "ɯ": ["UW"], "ɤ": ["AH"], "ɕ": ["SH"],
    "ʑ": ["ZH"], "ʂ": ["SH"], "ʐ": ["ZH"], "ɸ": ["F"], "ɴ": ["N"], "ä": ["AA"],
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
    processes: int = 1  # processes whose work the result holds (this one and helpers that succeeded)


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


# Chinese is written without spaces: each Han character is a syllable, and the unit words are
# aligned by (otherwise a whole phrase would be one "word", its inner timing unchecked).
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SYLLABLE_LANGUAGES = ("cmn", "yue", "zh", "hak", "nan")


def transcript_words(text: str, language: str = "en") -> list[str]:
    """The words of a transcript as the dictionary spells them (lowercase, straight apostrophes);
    in Chinese, each Han character is a word of its own."""
    text = re.sub(r"\[\[.*?\]\]|\(.*?\)|\[.*?\]", " ", text)  # notes, parentheticals, stage directions
    if language.split("-")[0] in _SYLLABLE_LANGUAGES:
        text = _HAN.sub(lambda m: f" {m.group(0)} ", text)
    return [t.lower().replace("’", "'") for t in _TOKEN.findall(text)]


# -- decoders ---------------------------------------------------------------------------------

_lock = threading.Lock()  # pocketsphinx's model loading is not safe from several threads at once


class _Decoders:
    """The pocketsphinx decoders of one alignment or recognition, each made on first use.

    Decoders are not shared between takes: a decoder carries state from one utterance into the next
    (its cepstral mean, its last alignment search, the words it learned), so a shared one made a
    take's word times depend on the take decoded before it (one word 20 ms apart), and grew with
    every unknown word. Making them costs 0.07 s (aligner, phone recogniser) and 0.2 s (word LM)
    per take; within a take the chunks go through the same decoders, in order.
    """

    def __init__(self):
        self._made: dict = {}

    def __call__(self, kind: str):
        if kind not in self._made:
            self._made[kind] = _make_decoder(kind)
        return self._made[kind]


def _make_decoder(kind: str):
    import pocketsphinx

    if kind == "align":
        # bestpath off: with it the word pass may end early on a fake final silence. Wide beams:
        # the default ones lose the only path through the transcript on synthetic voices. Silence
        # as the only filler: the model's noise fillers, tried at every grammar state, cost 10-18 %
        # of the time and placed no word or phone differently on the real recordings.
        return pocketsphinx.Decoder(lm=None, loglevel="FATAL", bestpath=False, fdict=_silence_fillers(),
                                    beam=1e-120, wbeam=1e-100, pbeam=1e-120)
    if kind == "words":
        # The English word LM. The default search (fwdflat and bestpath passes, no HMM cap) runs
        # near real time; one pass with 3000 HMMs a frame and phone lookahead is 4x faster and
        # recognised as many words on the aligner test recordings (measured: exomni bench lipsync).
        return pocketsphinx.Decoder(loglevel="FATAL", fwdflat=False, bestpath=False, maxhmmpf=3000, pl_window=10)
    return pocketsphinx.Decoder(allphone=pocketsphinx.get_model_path("en-us/en-us-phone.lm.bin"),
                                loglevel="FATAL", bestpath=False,
                                lw=1.0)  # a light LM weight: more phones found (measured on espeak speech)


_fillers_file: list = []


def _silence_fillers() -> str:
    """A filler dictionary with silence alone, written once per process (removed at exit)."""
    if not _fillers_file:
        fd, path = tempfile.mkstemp(prefix="exomni-fillers-", suffix=".dict")
        with os.fdopen(fd, "w") as f:
            f.write("<s> SIL\n</s> SIL\n<sil> SIL\n")
        atexit.register(lambda: os.path.exists(path) and os.remove(path))
        _fillers_file.append(path)
    return _fillers_file[0]


def _run(d, pcm: bytes) -> None:
    """One utterance, from the decoder's initial cepstral mean (not the mean of the chunk before)."""
    d.set_cmn(d.config["cmninit"])
    d.start_utt()
    d.process_raw(pcm, full_utt=True)
    d.end_utt()


def _pcm(samples16k: np.ndarray) -> bytes:
    """16-bit PCM for the decoder: peak-normalised, with a faint fixed noise floor (dither).

    Digital silence (exact zeros, as synthesizers and noise gates write in stop closures and
    pauses) gives log-energies far below anything the acoustic model was trained on, and whole
    words then align to silence. Noise 70 dB below the peak removes that without touching speech.
    """
    x = np.asarray(samples16k, np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    x = x * np.float32(32767.0 * 0.9 / peak) if peak > 0 else x * np.float32(32767.0)  # a quiet recording keeps its detail
    # The noise repeats every 4 s: as good a floor, and a long recording's costs no time (0.7 s an hour).
    noise = np.random.default_rng(0).standard_normal(min(x.size, 1 << 16), dtype=np.float32)
    noise *= np.float32(DITHER * 32767.0)
    for i in range(0, x.size, noise.size):
        x[i:i + noise.size] += noise[:x.size - i]
    np.rint(x, out=x)
    np.clip(x, -32767, 32767, out=x)
    return x.astype("<i2").tobytes()


# -- cutting a long recording -----------------------------------------------------------------

def speech_chunks(samples16k: np.ndarray, seconds: Optional[float] = None) -> list[tuple[int, int]]:
    """Frame ranges (10 ms frames, end exclusive) that cover the recording, each at most `seconds`
    (CHUNK_SECONDS) long and cut in a pause (see `_cut`).

    The decoders' beams, and the phone pass's memory (frames x states), are sized for a sentence or
    a paragraph, not a chapter: a long recording is decoded one chunk at a time.
    """
    return _chunks(_levels(samples16k), (0, _frames(samples16k)), _limit(seconds))


def _chunks(levels: np.ndarray, span: tuple[int, int], limit: int) -> list[tuple[int, int]]:
    chunks, (start, total) = [], span
    while total - start > limit:
        end = _cut(levels, start, limit)
        chunks.append((start, end))
        start = end
    chunks.append((start, total))
    return chunks


def _limit(seconds: Optional[float]) -> int:
    return max(2, int((CHUNK_SECONDS if seconds is None else seconds) * FRAME_RATE))


def _frames(samples16k: np.ndarray) -> int:
    return -(-np.asarray(samples16k).size // (SAMPLE_RATE // FRAME_RATE))


def _levels(samples16k: np.ndarray) -> np.ndarray:
    """Log energy per 10 ms frame, averaged over 300 ms, so a pause shows as a valley."""
    x = np.asarray(samples16k, np.float32)
    hop = SAMPLE_RATE // FRAME_RATE
    n = x.size // hop
    frames = x[:n * hop].reshape(n, hop)
    level = np.log10(np.einsum("ij,ij->i", frames, frames) / hop + 1e-12)
    width = max(1, min(30, n))
    return np.convolve(level, np.ones(width) / width, mode="same")


def _cut(levels: np.ndarray, start: int, limit: int) -> int:
    """The quietest frame in the last 40 % of the `limit` frames after `start`."""
    lo, hi = start + int(0.6 * limit), min(start + limit, levels.size)
    return lo + int(np.argmin(levels[lo:hi])) if hi > lo else start + limit


def _piece(pcm: bytes, chunk: tuple[int, int]) -> bytes:
    bytes_per_frame = 2 * SAMPLE_RATE // FRAME_RATE
    return pcm[chunk[0] * bytes_per_frame:chunk[1] * bytes_per_frame]


def _minutes(frames: int) -> str:
    seconds = int(frames / FRAME_RATE)
    return f"{seconds // 60}:{seconds % 60:02d}"


# -- alignment --------------------------------------------------------------------------------

LetterToSound = Callable[[str], str]  # word -> IPA
Report = Callable[..., None]  # (fraction 0..1, message); may raise to cancel between chunks


def align(samples16k: np.ndarray, text: str = "", letter_to_sound: Optional[LetterToSound] = None,
          progress: Optional[Report] = None, language: str = "en", processes: Optional[int] = None) -> PhoneAlignment:
    """Phone and word timeline of 16 kHz mono speech: forced alignment of the transcript, or without
    one, words recognised with the English language model and then force-aligned.

    In another language the transcript's words are read by eSpeak NG in that language (the
    `letter_to_sound(word, language)` given) and their phones mapped onto the nearest English ones,
    which the English acoustic model then places; without a transcript the phones are recognised
    with the phone recogniser (the English word model knows no other language's words).
    `processes`: the most processes to use (default: a core each, see `part_spans`)."""
    words = transcript_words(text or "", language)
    if not is_english(language):
        if not words:
            return recognize_phones(samples16k)
        lts = (lambda w: letter_to_sound(w, language)) if letter_to_sound else None  # noqa: E731
        return force_align(samples16k, words, lts, progress, language=language, processes=processes)
    if not words:
        return recognize_words(samples16k, progress, processes)
    return force_align(samples16k, words, letter_to_sound, progress, processes=processes)


def recognize_phones(samples16k: np.ndarray) -> PhoneAlignment:
    """Phones recognised with the phone language model alone (no words): the fallback, and the
    baseline that word recognition is measured against."""
    pcm = _pcm(samples16k)
    with _lock:
        decoders = _Decoders()
        phones = []
        for chunk in speech_chunks(samples16k):
            phones.extend(_recognize(decoders, _piece(pcm, chunk), chunk[0]).phones)
    return PhoneAlignment(phones=phones, method="recognized")


def recognize_words(samples16k: np.ndarray, progress: Optional[Report] = None,
                    processes: Optional[int] = None) -> PhoneAlignment:
    """No transcript: each chunk's words are recognised with the word LM, then force-aligned on that
    chunk, so the phones are the dictionary's pronunciations of real words placed by the acoustic
    model (a chunk where that fails gets recognised phones). More phones found, and closer, than
    the phone recogniser gives (see `exomni bench lipsync`). Chunks stand alone, so even a short
    recording is cut in parts recognised at once, one per core (see `part_spans`)."""
    report = progress or (lambda f, m="": None)
    pcm = _pcm(samples16k)
    levels, total = _levels(samples16k), _frames(samples16k)
    audio = _Audio(pcm, levels)
    groups = [_chunks(levels, span, _limit(None)) for span in part_spans(levels, total, RECOGNITION_PART_SECONDS, processes)]
    fit = [0.0, 0]
    with _lock:
        from . import align_parts

        helpers = [align_parts.Helper(run_part, {"kind": "recognize", "audio": audio.part(g[0][0], g[-1][1]),
                                       "chunks": g}) for g in groups[1:]]
        try:
            share = groups[0][-1][1]
            processes = 1
            phones, word_list = _recognized_chunks(_Decoders(), audio, groups[0], fit, lambda a: report(
                a / share, f"recognising words, {_minutes(a * len(groups))} of {_minutes(total)}"))
            for helper, group in zip(helpers, groups[1:]):
                done = align_parts.wait(helper, lambda: report(1.0, "recognising words, the last parts"))
                if done is None:  # the helper failed: its chunks are done here
                    done = {"fit": [0.0, 0]}
                    done["phones"], done["words"] = _recognized_chunks(_Decoders(), audio, group, done["fit"])
                else:
                    processes += 1
                phones.extend(done["phones"])
                word_list.extend(done["words"])
                fit[0] += done["fit"][0]
                fit[1] += done["fit"][1]
        finally:
            for helper in helpers:
                helper.stop()
    report(1.0, "recognised")
    return PhoneAlignment(phones=phones, words=word_list, method="recognized",
                          score=fit[0] / fit[1] if fit[1] else None, processes=processes)


def _recognized_chunks(decoders: _Decoders, audio: "_Audio", chunks, fit: list, report=lambda a: None):
    phones, word_list = [], []
    for a, b in chunks:
        report(a)
        piece = audio.piece(a, b)
        recognizer = decoders("words")
        words = _recognized_words(recognizer, piece)
        p = w = None
        if words:  # the phone pass starts from the recogniser's own segmentation: two passes in all
            segs = [(s.word, s.start_frame, s.end_frame + 1) for s in recognizer.seg()]
            p, w = _phone_pass(recognizer, piece, a, _shifted(segs, a), fit, strict=True)
            recognizer.activate_search()  # back to the word LM for the next chunk
        if not w:
            p, w = _recognize(decoders, piece, a).phones, []
        phones.extend(p)
        word_list.extend(w)
    return phones, word_list


def force_align(samples16k: np.ndarray, words: Sequence[str], letter_to_sound: Optional[LetterToSound] = None,
                progress: Optional[Report] = None, language: str = "en",
                processes: Optional[int] = None) -> PhoneAlignment:
    """The transcript's words and phones placed in the recording, one stretch at a time (see
    `_forward`). A long recording is cut in pauses into parts that are aligned at once, one helper
    process per core (see `_aligned_in_parts`). Progress is reported (and cancellation checked, by
    `progress`) before each stretch."""
    report = progress or (lambda f, m="": None)
    pcm = _pcm(samples16k)
    levels, total = _levels(samples16k), _frames(samples16k)
    with _lock:
        decoders = _Decoders()
        d = decoders("align")
        usable, skipped = _pronounceable(d, words, letter_to_sound, "" if is_english(language) else language)
        if not usable:
            result = _recognize_all(decoders, pcm, speech_chunks(samples16k))
            result.skipped = list(words)
            result.warning = ("no word of the transcript could be pronounced; the phones were recognised "
                              "from the audio instead")
            return result
        fit = [0.0, 0]
        audio = _Audio(pcm, levels)
        spans = part_spans(levels, total, processes=processes)
        processes = 1
        if len(spans) > 1:
            phones, word_list, placed, processes = _aligned_in_parts(d, audio, spans, usable, fit, report)
        else:
            phones, word_list, _, placed = _forward(d, audio, (0, total), usable, fit, lambda at, stop: report(
                at / total, f"aligning words, {_minutes(at)} of {_minutes(total)}"))
        unplaced = len(usable) - placed
        if unplaced > MAX_UNPLACED * len(usable):
            # The transcript does not fit the recording (other words, or a different take).
            result = _recognize_all(decoders, pcm, speech_chunks(samples16k))
            result.skipped = skipped
            result.warning = (f"the transcript did not match the recording (only {placed} of "
                              f"{len(usable)} words could be placed); phones were recognised from the audio "
                              "instead: check the text is exactly what is said")
            return result
    report(1.0, "aligned")
    score = fit[0] / fit[1] if fit[1] else None
    warning = ""
    if unplaced:
        last = "the last word" if unplaced == 1 else f"the last {unplaced} words"
        warning = (f"{last} of the transcript ({' '.join(_spoken(w) for w in usable[placed:placed + 6])}) "
                   "could not be placed in the recording; check that the text ends where the recording does")
    elif score is not None and score < MISMATCH_SCORE and is_english(language):  # mapped phones fit worse
        warning = ("the recording fits its transcript poorly (alignment score "
                   f"{score:.0f}); check the text is exactly what is said, or leave it empty")
    return PhoneAlignment(phones=phones, words=word_list, method="forced", skipped=skipped,
                          warning=warning, score=score, processes=processes)


class _Audio:
    """The decoders' input from frame `origin` on: 16-bit PCM and the pause levels (`_levels`)."""

    def __init__(self, pcm: bytes, levels: np.ndarray, origin: int = 0):
        self.pcm, self.levels, self.origin = pcm, levels, origin

    def piece(self, a: int, b: int) -> bytes:
        return _piece(self.pcm, (a - self.origin, b - self.origin))

    def cut(self, start: int, limit: int) -> int:
        return self.origin + _cut(self.levels, start - self.origin, limit)

    def part(self, a: int, b: int) -> "_Audio":
        return _Audio(self.piece(a, b), self.levels[a - self.origin:b - self.origin], a)


def _forward(d, audio: _Audio, span: tuple[int, int], words: Sequence[str], fit: list, report: Callable,
             placed: int = 0, entries: Optional[dict] = None, last: bool = True):
    """Words from `words[placed]` on, placed in the frames `span`, one stretch at a time.

    A stretch of up to CHUNK_SECONDS, cut in a pause, is decoded with a grammar that accepts any
    prefix of the words still to place: it takes the words spoken in it. Its last HELD_BACK words
    are given back (at a stretch's end a word may be squeezed in, or half heard), and the next
    stretch starts in the gap before them. Each stretch's words are then aligned to phones there.
    The `last` part's last stretch takes every word left (words that do not fit there stay
    unplaced); another part's keeps the words its audio holds, since the next part begins in a pause.
    `entries` ({word index: weight}): the part may begin at any of these words, and its first
    stretch finds which. `report(frame, stop)` runs before each stretch. Returns (phones, words,
    index of the first word placed, index after the last).
    """
    start, stop = span
    limit = _limit(None)
    phones, word_list, first = [], [], placed
    while placed < len(words):
        report(start, stop)
        final = stop - start <= limit
        rest = words[placed:]
        if final and last and entries is None:
            piece = audio.piece(start, stop)
            segs = _word_pass(d, piece, rest)
            if sum(1 for s in segs if not _is_filler(s[0])) == len(rest):
                p, w = _phone_pass(d, piece, start, _shifted(segs, start), fit)
                placed += len(rest)
            else:  # not every word fits: place those that do, the rest stay unplaced
                spoken = _prefix_pass(d, piece, rest)
                p, w = _phone_pass(d, piece, start, _shifted(spoken, start), fit) if spoken else ([], [])
                placed += len(spoken)
            phones.extend(p)
            word_list.extend(w)
            break
        end = stop if final else audio.cut(start, limit)
        piece = audio.piece(start, end)
        capacity = int(7 * (end - start) / FRAME_RATE) + 10  # a stretch holds at most ~7 words a second
        if entries is not None:
            lo = min(entries)
            begin, spoken = _entry_pass(d, piece, words[lo:max(entries) + capacity],
                                        {i - lo: weight for i, weight in entries.items()})
            if spoken:  # found where the part begins (else the next stretch looks again)
                first = placed = lo + begin
                entries = None
        else:
            spoken = _prefix_pass(d, piece, rest[:capacity])
        keep = spoken if final or len(spoken) <= 2 * HELD_BACK else spoken[:-HELD_BACK]
        cut = end if len(keep) == len(spoken) else start + (keep[-1][2] + spoken[len(keep)][1]) // 2
        if keep:  # phones of every word the stretch holds, from its own segmentation; the kept ones stay
            p, w = _phone_pass(d, piece, start, _shifted(spoken, start), fit, upto=len(keep))
            phones.extend(p)
            word_list.extend(w)
        placed += len(keep)
        start = cut
        if final:
            break
    return phones, word_list, first, placed


# -- a long recording in parts, aligned at once -----------------------------------------------

PART_SECONDS = 45.0  # the shortest part worth a helper process (starting one costs about 0.2 s)
# Recognition costs 5x alignment a second and its parts need no search for their place: shorter ones pay.
RECOGNITION_PART_SECONDS = 8.0
MAX_PARTS = 8


def _cores() -> int:
    """Processes one alignment may use: a core each, at most EXOMNI_ALIGN_PROCESSES when set."""
    from exomni_blender.core.settings import Settings

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    most = Settings.from_env(strict=False).align_processes
    return max(1, min(cores, most) if most else cores)


def part_spans(levels: np.ndarray, total: int, least: Optional[float] = None,
               processes: Optional[int] = None) -> list[tuple[int, int]]:
    """Frame spans of the parts a recording is aligned in: one per core (or per process allowed),
    none shorter than `least` seconds (PART_SECONDS), each cut at the quietest frame within 2 % of
    the recording around its even share."""
    count = min(processes or _cores(), MAX_PARTS, int(total / ((least or PART_SECONDS) * FRAME_RATE)))
    bounds = [0]
    for k in range(1, max(1, count)):
        target, reach = k * total // count, max(1, total // 50)
        lo, hi = max(bounds[-1] + 1, target - reach), min(total - 1, target + reach, levels.size)
        bounds.append(lo + int(np.argmin(levels[lo:hi])) if hi > lo else target)
    bounds.append(total)
    return list(zip(bounds[:-1], bounds[1:]))


def _entries(span: tuple[int, int], total: int, count: int) -> dict[int, float]:
    """Where in a transcript of `count` words a part beginning at frame `span[0]` of `total` may
    begin, with weights: around its share of the recording's time. (Its share of the loud frames
    guessed worse: a quieter second speaker was heard as pauses.)"""
    guess, spread = span[0] / total * count, max(8.0, 0.05 * count)
    lo, hi = max(0, int(guess - 3 * spread)), min(count - 1, int(guess + 3 * spread) + 1)
    return {i: float(np.exp(-0.5 * ((i - guess) / spread) ** 2)) + 1e-3 for i in range(lo, hi)}


def _aligned_in_parts(d, audio: _Audio, spans, words: Sequence[str], fit: list, report: Report):
    """`_forward` over each part at once: the first in this process, the others in helper processes
    that each find where in the transcript their part begins. A part is kept when it begins where the
    one before it ended; otherwise (a helper guessed wrong, or failed) this process goes on from
    there itself, so the result never depends on the guess."""
    from . import align_parts

    total = spans[-1][1]
    pronunciations = {w: d.lookup_word(w) for w in set(words)}
    helpers = [align_parts.Helper(run_part, {"kind": "align", "audio": audio.part(a, b), "span": (a, b),
                                   "words": list(words), "pronunciations": pronunciations,
                                   "entries": _entries((a, b), total, len(words)),
                                   "last": k == len(spans) - 1})
               for k, (a, b) in enumerate(spans[1:], 1)]
    share, processes = spans[0][1] - spans[0][0], 1
    try:
        phones, word_list, _, placed = _forward(
            d, audio, spans[0], words, fit, lambda at, stop: report(
                0.95 * at / share, f"aligning words, {len(spans)} parts at once"), last=False)
        for k, helper in enumerate(helpers, 1):
            done = align_parts.wait(helper, lambda: report(0.95, "aligning words, the last parts"))
            if done is not None and done["first"] == placed:
                phones.extend(done["phones"])
                word_list.extend(done["words"])
                placed = done["placed"]
                fit[0] += done["fit"][0]
                fit[1] += done["fit"][1]
                processes += 1
                continue
            rest = (spans[k][0], total)  # progress goes on from where it stood, not back
            p, w, _, placed = _forward(d, audio, rest, words, fit, lambda at, stop: report(
                0.95 + 0.05 * (at - rest[0]) / (total - rest[0]), f"aligning words, {_minutes(at)} of "
                f"{_minutes(total)}"), placed=placed)
            phones.extend(p)
            word_list.extend(w)
            break
    finally:
        for helper in helpers:
            helper.stop()
    return phones, word_list, placed, processes


def run_part(job: dict) -> dict:
    """A helper process's share of the work (see align_parts): one part of a recording."""
    decoders = _Decoders()
    fit = [0.0, 0]
    if job["kind"] == "align":
        d = decoders("align")
        for word, pronunciation in job["pronunciations"].items():
            if pronunciation and d.lookup_word(word) != pronunciation:
                d.add_word(word, pronunciation, False)
        phones, words, first, placed = _forward(d, job["audio"], job["span"], job["words"], fit,
                                                lambda at, stop: None, entries=job["entries"],
                                                last=job["last"])
        return {"phones": phones, "words": words, "first": first, "placed": placed, "fit": fit}
    phones, words = _recognized_chunks(decoders, job["audio"], job["chunks"], fit)
    return {"phones": phones, "words": words, "fit": fit}


def _recognize_all(decoders: _Decoders, pcm: bytes, chunks) -> PhoneAlignment:
    phones = []
    for chunk in chunks:
        phones.extend(_recognize(decoders, _piece(pcm, chunk), chunk[0]).phones)
    return PhoneAlignment(phones=phones, method="recognized")


def _recognize(decoders: _Decoders, pcm: bytes, offset: int = 0) -> PhoneAlignment:
    d = decoders("allphone")
    _run(d, pcm)
    segs = [(s.word, offset + s.start_frame, offset + s.end_frame + 1) for s in d.seg()]
    phones = [Phoneme(ARPABET_TO_IPA[name], a / FRAME_RATE, b / FRAME_RATE)
              for name, a, b in segs if name in ARPABET_TO_IPA]
    return PhoneAlignment(phones=phones, method="recognized")


def _recognized_words(d, pcm: bytes) -> list[str]:
    _run(d, pcm)
    return [_base_word(s.word) for s in d.seg() if not _is_filler(s.word)]


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "["))  # <sil>, <s>, </s>, [NOISE], ...


def _base_word(word: str) -> str:
    return re.sub(r"\(\d+\)$", "", word)


def _spoken(word: str) -> str:
    """The word as the transcript spells it: no pronunciation number, no language prefix."""
    return _base_word(word).split("|")[-1]


def _shifted(segs, offset: int):
    return [(w, a + offset, b + offset) for w, a, b in segs]


def _pronounceable(d, words: Sequence[str], letter_to_sound: Optional[LetterToSound], language: str = ""):
    """Words the dictionary knows, adding unknown ones through letter-to-sound; the rest are skipped.

    Words of another language are all added through letter-to-sound, under "<language>|<word>" so
    they never take an English word's pronunciation (and come out without the prefix)."""
    usable, skipped = [], []
    for text in words:
        word = f"{language}|{text}" if language else text
        if d.lookup_word(word) is None:
            phones = ipa_to_arpabet(letter_to_sound(text)) if letter_to_sound else []
            try:
                if not phones:
                    raise RuntimeError("no pronunciation")
                d.add_word(word, " ".join(phones), True)
            except RuntimeError:
                skipped.append(text)
                continue
        usable.append(word)
    return usable, skipped


def _decode(d, pcm: bytes) -> None:
    try:
        _run(d, pcm)
    except RuntimeError as exc:
        raise EngineError(f"the aligner could not process this recording with its transcript ({exc}); "
                          "check the transcript, or leave it empty to recognise the phones instead",
                          C.E_BAD_REQUEST) from None


def _word_pass(d, pcm: bytes, words: Sequence[str]):
    """(word, first frame, end frame exclusive) of every word and pause; [] when the words do not fit."""
    try:
        d.set_align_text(" ".join(_base_word(w) for w in words))
    except RuntimeError as exc:
        raise EngineError(f"the aligner could not use this transcript ({exc}); check the transcript, "
                          "or leave it empty to recognise the phones instead", C.E_BAD_REQUEST) from None
    _decode(d, pcm)
    if d.hyp() is None:  # no path through the whole transcript
        return []
    return [(s.word, s.start_frame, s.end_frame + 1) for s in d.seg() if s.word not in ("<s>", "</s>")]


def _prefix_pass(d, pcm: bytes, words: Sequence[str]):
    """The words (with their frames) of the longest prefix of `words` that this audio holds."""
    n = len(words)
    transitions = [(i, i + 1, 1.0, w) for i, w in enumerate(words)]
    # The chunk may end after any word: each word may also lead to the end. (A word arc, not an empty
    # one: an empty arc shows in the segmentation as "(NULL)", and the phone pass cannot start from it.)
    transitions += [(i, n, 1.0, w) for i, w in enumerate(words[:-1])]
    d.add_fsg("prefix", d.create_fsg("prefix", 0, n, transitions))
    d.activate_search("prefix")
    _decode(d, pcm)
    if d.hyp() is None:
        return []
    spoken = [(s.word, s.start_frame, s.end_frame + 1) for s in d.seg() if not _is_filler(s.word)]
    # The grammar is a chain, so the decoded words are the first len(spoken) of `words`.
    return [(words[i], a, b) for i, (_, a, b) in enumerate(spoken[:n])]


def _entry_pass(d, pcm: bytes, words: Sequence[str], entries: dict[int, float]):
    """`_prefix_pass` for audio that may begin at any word in `entries` ({index: weight}): the words
    (with their frames) of the longest stretch of `words[j:]` this audio holds, and that j. The entry
    words get names of their own ("@j|word", the same pronunciation), so the path says where it
    entered even in a transcript that repeats itself; the weights decide between repeats."""
    n, start = len(words), len(words) + 1
    transitions = [(i, i + 1, 1.0, w) for i, w in enumerate(words)]
    transitions += [(i, n, 1.0, w) for i, w in enumerate(words[:-1])]
    total = sum(entries.values())
    for j, weight in entries.items():
        name = f"@{j}|{words[j]}"
        if d.lookup_word(name) is None:
            d.add_word(name, d.lookup_word(words[j]), False)
        transitions.append((start, j + 1, weight / total, name))
    d.add_fsg("entry", d.create_fsg("entry", start, n, transitions))
    d.activate_search("entry")
    _decode(d, pcm)
    if d.hyp() is None:
        return 0, []
    spoken = [(s.word, s.start_frame, s.end_frame + 1) for s in d.seg() if not _is_filler(s.word)]
    if not spoken or not spoken[0][0].startswith("@"):
        return 0, []
    begin = int(spoken[0][0][1:].split("|", 1)[0])
    return begin, [(spoken[0][0], *spoken[0][1:])] + [(words[begin + i], a, b)
                                                       for i, (_, a, b) in enumerate(spoken[1:], 1)]


def _phone_pass(d, pcm: bytes, offset: int, word_segs, fit: list, upto: Optional[int] = None,
                strict: bool = False):
    """Phones of one chunk (16-bit PCM, starting at frame `offset`) that the decoder's last pass (a
    word or prefix pass) has just segmented into words: the phone pass runs on that segmentation
    directly, so the audio is decoded twice in all (words, then phones), not three times.
    `upto` keeps only the first words (a stretch gives its last ones back to the next).
    `word_segs` (frames from the recording's start) spread the phones evenly if the phone pass fails.
    `fit` accumulates [acoustic score, frames] of the speech phones. `strict`: no even spreading,
    ([], []) when the phone pass fails."""
    try:
        d.set_alignment()
        _run(d, pcm)
        alignment = d.get_alignment()
    except RuntimeError:
        alignment = None
    if alignment is None and strict:
        return [], []
    if alignment is None:  # the phone pass failed (a word squeezed too short): spread phones evenly
        return _even_phones(d, [s for s in word_segs if not _is_filler(s[0])][:upto])
    phones, words_out = [], []
    for word in alignment:
        name = _spoken(word.name)
        if _is_filler(word.name):
            continue
        if upto is not None and len(words_out) == upto:
            break
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
        pron = (d.lookup_word(_base_word(word)) or "").split()
        start, end = a / FRAME_RATE, b / FRAME_RATE
        words.append(Word(_spoken(word), start, end))
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
