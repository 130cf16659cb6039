"""The `phonetic` engine: eSpeak NG speaks the line, the viseme model animates it. CPU, no weights."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from exomni_blender.core import contract as C
from exomni_blender.core import face
from exomni_blender.core.take import Take

from exomni_blender.core.request import EngineSpec, bounds, option_value, validate

from ..base import Availability, Cancelled, Engine, EngineError, Progress, TakeRequest
from . import espeak
from .curves import performance


class PhoneticEngine(Engine):
    name = "phonetic"
    modes = ("say", "lipsync")
    description = ("eSpeak NG speech with coarticulated ARKit-52 lip sync, blinks, brows and gaze; "
                   "runs on the CPU with no model weights")

    def availability(self) -> Availability:
        ok, reason = espeak.is_available()
        return Availability(ok, reason)

    def voices(self):
        """The voice names requests may use (None while eSpeak NG is unavailable: nothing to check)."""
        return _voices()

    def variants(self):
        """The "+variant" names requests may use, lowercased (None while eSpeak NG is unavailable)."""
        ok, _ = espeak.is_available()
        return frozenset(v.lower() for v in espeak.available_variants()) if ok else None

    def describe(self) -> dict:
        info = super().describe()
        if info["available"]:
            info["voices"] = espeak.available_voices()
            info["variants"] = espeak.available_variants()
        else:
            info["voices"], info["variants"] = [], []
        info["default_voice"] = espeak.DEFAULT_VOICE
        info["options"] = {"rate": list(bounds("rate")), "pitch": list(bounds("pitch"))}
        return info

    def make_take(self, request: TakeRequest, progress: Progress) -> Take:
        if request.mode == "lipsync":  # a recording in: align it instead of synthesizing
            from .lipsync import lipsync_take

            return lipsync_take(request, progress)
        started = time.perf_counter()
        text, fps, seed = _check(request)
        progress(0.0, "speaking the line with eSpeak NG")
        rate, pitch = _voice_for_mood(request)
        try:
            voice = request.voice or (None if request.language in ("en", "") else request.language)
            speech = espeak.synthesize(text, voice=voice, rate=rate, pitch=pitch,
                                       seed=seed, cancelled=_poller(progress))
        except espeak.VoiceError as exc:
            raise EngineError(str(exc), C.E_BAD_REQUEST) from None
        except espeak.EspeakError as exc:
            raise EngineError(str(exc), C.E_ENGINE_UNAVAILABLE) from None
        synthesized = time.perf_counter()
        if not speech.phonemes:
            raise EngineError(f"eSpeak NG found nothing to say in {text[:60]!r}; give a line with words",
                              C.E_BAD_REQUEST)
        progress(0.5, "animating the face")
        timings = {"synthesize": synthesized - started}
        lead_in, tail = _padding(request)
        speech = _padded(speech, lead_in, tail)
        weights, performed = performance(speech.phonemes, speech.duration, request, timings=timings,
                                         heard=(speech.audio, speech.sample_rate))
        timings["total"] = time.perf_counter() - started
        wpm, pitch_value = espeak.check_rate_pitch(rate, pitch)
        take = Take(
            fps=fps, weights=weights, audio=speech.audio, sample_rate=speech.sample_rate, text=text,
            engine=self.name, mode="say", phonemes=speech.phonemes, timings=timings,
            meta={"voice": speech.voice, "seed": seed, "rate": float(request.rate), "pitch": float(request.pitch),
                  "words_per_minute": wpm, "espeak_pitch": pitch_value, "mouth_only": bool(request.mouth_only),
                  "espeak_ng": espeak.version(), "lead_in": lead_in, "tail": tail,
                  "words": [{"text": w.text, "start": round(w.start, 5), "end": round(w.end, 5)} for w in speech.words],
                  **performed},
        )
        progress(1.0, "done")
        return take


def _check(request: TakeRequest) -> tuple[str, float, int]:
    """The request's text, fps and seed, checked by the one validator, or EngineError saying what to change.

    Requests from the server were checked at submit; this catches those made in-process (CLI, batch)."""
    checked = validate(request.to_json(), has_audio=request.audio_path is not None,
                       engines={PhoneticEngine.name: EngineSpec(PhoneticEngine.name, ("say",), voices=_voices())})
    return checked.text, checked.fps, checked.seed


def _voice_for_mood(request: TakeRequest) -> tuple[float, float]:
    """The request's rate and pitch with its mood's voice on top, kept inside the ranges every engine takes."""
    if request.mouth_only:
        return float(request.rate), float(request.pitch)
    rate, pitch = face.mood_voice(request.mood, request.intensity)
    return (float(np.clip(request.rate * rate, *bounds("rate"))), float(np.clip(request.pitch * pitch, *bounds("pitch"))))


def _voices():
    """Every name eSpeak NG resolves (codes, names, identifiers; lowercased), or None when it is not loaded."""
    ok, _ = espeak.is_available()
    return espeak.accepted_voice_names() if ok else None


def _padding(request: TakeRequest) -> tuple[float, float]:
    """Silence around the line (the options' declared defaults): without it the first frame already holds
    the first sound's shape (a pop from the rest pose), and the lips have no time to anticipate it or to
    settle after it."""
    return float(option_value(request.options, "lead_in")), float(option_value(request.options, "tail"))


def _padded(speech, lead_in: float, tail: float):
    """The synthesized line with silence before and after; every timeline shifted to match."""
    if lead_in == 0 and tail == 0:
        return speech
    before = int(round(lead_in * speech.sample_rate))
    after = int(round(tail * speech.sample_rate))
    shift = before / float(speech.sample_rate)
    audio = np.concatenate([np.zeros(before, np.float32), speech.audio, np.zeros(after, np.float32)])
    return dataclasses.replace(
        speech, audio=audio,
        phonemes=[dataclasses.replace(p, start=p.start + shift, end=p.end + shift) for p in speech.phonemes],
        words=[dataclasses.replace(w, start=w.start + shift, end=w.end + shift) for w in speech.words],
        sentence_starts=[t + shift for t in speech.sentence_starts])


def _poller(progress: Progress):
    """A no-argument check for eSpeak's audio callback, which must not raise."""
    def cancelled() -> bool:
        try:
            progress.check()
        except Cancelled:
            return True
        return False
    return cancelled
