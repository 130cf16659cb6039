"""The phonetic engine's `lipsync` mode: a recording (and optionally its transcript) in, a take out.

The take's audio is the recording itself (its own sample rate, channels mixed to mono); the
phone timeline found in it drives the same viseme model as synthesized speech. A recording of any
length up to the upload limit aligns with its whole transcript: progress moves through it, and a
cancelled job stops at the next stretch (see align.force_align).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from exomni_blender.core import contract as C
from exomni_blender.core.take import Take

from ...audio_input import ANALYSIS_RATE, load_recording
from ..base import EngineError, Progress, TakeRequest
from .align import align

# The acoustic model is American English, so unknown words are spelled out with that voice.
LETTER_TO_SOUND_VOICE = "en-us"


def letter_to_sound(word: str, language: str = "") -> str:
    """IPA for a word the pronunciation dictionary lacks (numbers, names, coinages), from eSpeak NG;
    in another language every word is read this way, by that language's voice."""
    import re

    from . import espeak

    try:
        ipa = espeak.phonemize(word, language or LETTER_TO_SOUND_VOICE)
    except Exception:  # eSpeak missing or the word unspeakable: the aligner skips the word
        return ""
    return re.sub(r"\([a-z-]+\)", "", ipa)  # language-switch markers such as "(en)"


def emphasis_from_loudness(samples: np.ndarray, rate: int, phones) -> list[float]:
    """0..1 per phone for the brows: how much louder (and longer) each vowel is than the line's typical one.

    A recording carries no stress marks, so prominence is measured: level in dB plus a bonus for
    length. The median vowel gets 0, the top tenth 1; consonants 0. It is continuous, so the same
    line in another file format gives nearly the same values.
    """
    from . import ipa

    scores, index = [], []
    for i, p in enumerate(phones):
        if not ipa.is_vowel(p.symbol):
            continue
        a, b = int(p.start * rate), max(int(p.end * rate), int(p.start * rate) + 1)
        segment = samples[a:b]
        if segment.size == 0:
            continue
        level = 10 * np.log10(float(np.mean(segment.astype(np.float64) ** 2)) + 1e-10)
        scores.append(level + 6.0 * np.log2(max(p.end - p.start, 0.02) / 0.08))
        index.append(i)
    out = [0.0] * len(phones)
    if len(scores) >= 2:
        s = np.asarray(scores)
        mid, top = np.percentile(s, 50), np.percentile(s, 90)
        values = np.clip((s - mid) / max(top - mid, 1.0), 0.0, 1.0)
        for i, v in zip(index, values):
            out[i] = float(v)
    elif scores:
        out[index[0]] = 1.0
    return out


def lipsync_take(request: TakeRequest, progress: Progress) -> Take:
    from .curves import performance

    if not request.audio_path:
        raise EngineError("lipsync needs a recording: upload it as the multipart field 'audio' (or "
                          "'audio_base64' in JSON), or pass --audio FILE on the command line",
                          C.E_BAD_AUDIO)
    name = str(request.options.get("audio_filename") or Path(request.audio_path).name)
    timings = {}
    t = time.perf_counter()
    progress(0.02, "reading the recording")
    recording = load_recording(request.audio_path, name=name)
    analysis = recording.analysis()
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(0.1, "aligning" if request.text.strip() else "recognising words")
    result = align(analysis, request.text, letter_to_sound,
                   progress=lambda f, message="": progress(0.1 + 0.75 * f, message), language=request.language)
    timings["align"] = time.perf_counter() - t

    t = time.perf_counter()
    progress(0.9, "animating")
    weights, performed = performance(result.phones, recording.duration, request,
                                     emphasis=emphasis_from_loudness(analysis, ANALYSIS_RATE, result.phones),
                                     heard=(analysis, ANALYSIS_RATE))
    timings["curves"] = time.perf_counter() - t

    meta = {
        "alignment": result.method,
        "language": request.language,
        "alignment_score": None if result.score is None else round(result.score, 2),
        "alignment_processes": result.processes,
        "words": [w.to_json() for w in result.words],
        "source": {"file": name, "format": recording.format, "sample_rate": recording.sample_rate,
                   "channels": recording.channels, "duration": round(recording.duration, 5)},
        "seed": request.seed,
        "mouth_only": request.mouth_only,
        **performed,
    }
    if result.skipped:
        meta["skipped_words"] = result.skipped
    if result.warning:
        meta["warning"] = result.warning
    take = Take(fps=request.fps, weights=weights, audio=recording.samples, sample_rate=recording.sample_rate,
                text=request.text.strip(), engine=request.engine or "phonetic", mode="lipsync",
                phonemes=result.phones, timings=timings, meta=meta)
    progress(1.0, "done")
    return take
