"""eSpeak NG through ctypes: real synthesis, phoneme times from its own events, voices, threads."""

import threading

import numpy as np
import pytest

from backend.engines.base import Cancelled
from backend.engines.phonetic import espeak
from backend.engines.phonetic.ipa import split_stress

LINE = "Whoever moved my umbrella owes me a proper apology, and a coffee."


def _rms(audio, sr, t0, t1):
    x = audio[int(round(t0 * sr)):int(round(t1 * sr))]
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


def test_audio_is_float32_mono_at_the_synthesizers_rate():
    s = espeak.synthesize(LINE)
    assert s.sample_rate == espeak.sample_rate() == 22050
    assert s.audio.dtype == np.float32 and s.audio.ndim == 1
    assert 2.0 < s.duration < 8.0
    assert 0.05 < float(np.abs(s.audio).max()) <= 1.0


def test_phoneme_times_are_monotonic_and_cover_the_speech():
    s = espeak.synthesize(LINE)
    ph = s.phonemes
    assert len(ph) > 30 and all(p.symbol for p in ph)
    for a, b in zip(ph, ph[1:]):
        assert a.start < a.end <= b.start + 1e-9
    assert ph[0].start >= 0 and ph[-1].end <= s.duration + 1e-9
    # Nearly all the sound lies inside phoneme spans; what is outside is the silence of pauses.
    inside = np.zeros(s.audio.size, bool)
    for p in ph:
        inside[int(round(p.start * s.sample_rate)):int(round(p.end * s.sample_rate))] = True
    energy = s.audio.astype(np.float64) ** 2
    assert energy[inside].sum() >= 0.999 * energy.sum()
    # Every gap between phonemes is a pause: silent.
    gaps = [(a.end, b.start) for a, b in zip(ph, ph[1:]) if b.start - a.end > 1e-4]
    gaps.append((ph[-1].end, s.duration))
    assert len(gaps) >= 2  # the comma and the end of the line
    for g0, g1 in gaps:
        assert _rms(s.audio, s.sample_rate, g0, g1) < 1e-3, (g0, g1)


def test_phoneme_spans_hold_their_sound():
    s = espeak.synthesize(LINE)
    level = float(np.sqrt(np.mean(s.audio.astype(np.float64) ** 2)))
    vowels = [p for p in s.phonemes if split_stress(p.symbol)[0][0] in "aeiouɑɔəɛɪʊʌæɐɜᵻɚ"]
    assert len(vowels) > 10
    loud = [p for p in vowels if _rms(s.audio, s.sample_rate, p.start, p.end) > 0.5 * level]
    assert len(loud) >= 0.9 * len(vowels)
    # Speech starts where the first phoneme does (within a few milliseconds).
    first_sound = np.argmax(np.abs(s.audio) > 1e-3) / s.sample_rate
    assert abs(first_sound - s.phonemes[0].start) < 0.015


def test_phonemes_are_espeaks_own_transcription():
    """The event names are the phonemes eSpeak's translator gives the text, in order."""
    s = espeak.synthesize("Peter bought a proper coffee pot.")
    heard = "".join(split_stress(p.symbol)[0] for p in s.phonemes)
    written = "".join(split_stress(c)[0] for c in espeak.phonemize("Peter bought a proper coffee pot.") if c != " ")
    assert heard == written
    # Stress marks stay on the vowels they belong to.
    assert any(p.symbol.startswith("ˈ") for p in s.phonemes)


def test_rate_changes_the_event_times_not_just_the_audio():
    slow = espeak.synthesize(LINE, rate=0.7)
    fast = espeak.synthesize(LINE, rate=1.8)
    assert [p.symbol for p in slow.phonemes] == [p.symbol for p in fast.phonemes]
    speech = lambda s: s.phonemes[-1].end - s.phonemes[0].start
    assert speech(slow) > 1.8 * speech(fast)
    assert abs(fast.phonemes[-1].end - fast.duration) < 0.5


def test_words_and_sentences_come_from_events():
    s = espeak.synthesize("Bring the map back. Monday works.")
    assert [w.text for w in s.words][:2] == ["Bring", "the"]
    assert len(s.sentence_starts) == 2 and s.sentence_starts[1] > s.words[2].start
    for w in s.words:
        assert w.start < w.end


def test_same_seed_same_audio():
    a = espeak.synthesize(LINE, seed=7)
    b = espeak.synthesize(LINE, seed=7)
    assert np.array_equal(a.audio, b.audio)
    assert [(p.symbol, p.start, p.end) for p in a.phonemes] == [(p.symbol, p.start, p.end) for p in b.phonemes]


def test_voices_are_listed_and_resolved():
    voices = espeak.available_voices()
    assert {"en-us", "en-gb", "de", "fr-fr"} <= set(voices)
    assert "f3" in espeak.available_variants()
    # en-gb is not a voice file name; it must still resolve (eSpeak's own lookup by name fails on it).
    assert espeak.resolve_voice("en-gb")[0] == "en-gb"
    assert espeak.resolve_voice("EN-US+F3") == ("en-us+f3", espeak.resolve_voice("en-us")[1] + "+f3")
    gb = espeak.synthesize("tomato", voice="en-gb")
    us = espeak.synthesize("tomato", voice="en-us")
    assert [p.symbol for p in gb.phonemes] != [p.symbol for p in us.phonemes]
    female = espeak.synthesize("tomato", voice="en-us+f3")
    assert not np.array_equal(female.audio[: us.audio.size], us.audio[: female.audio.size])


@pytest.mark.parametrize("voice", ["xx-nowhere", "en-us+nobody"])
def test_unknown_voice_says_what_to_use(voice):
    with pytest.raises(espeak.VoiceError) as err:
        espeak.synthesize("hello", voice=voice)
    message = str(err.value)
    assert voice in message and "en-us" in message and "f3" in message


@pytest.mark.parametrize("rate,pitch", [(0.1, 1.0), (5.0, 1.0), (1.0, 0.0), (1.0, 3.0), ("fast", 1.0)])
def test_rate_and_pitch_ranges(rate, pitch):
    with pytest.raises(espeak.VoiceError, match="multiplier"):
        espeak.synthesize("hello", rate=rate, pitch=pitch)


def test_pitch_changes_the_voice():
    low = espeak.synthesize("hello there", pitch=0.5)
    high = espeak.synthesize("hello there", pitch=1.8)
    def f0(a, sr):  # crude: zero crossings per second over the loud part
        x = a[np.abs(a) > 0.05 * np.abs(a).max()]
        return np.count_nonzero(np.diff(np.signbit(x))) / (x.size / sr)
    assert f0(high.audio, 22050) > f0(low.audio, 22050)


def test_concurrent_calls_give_the_same_results_as_sequential_ones():
    lines = ["The first line is short.", "A second line, a little longer than the first.",
             "Third: numbers like 42 and 1999.", "Fourth and final, with a question?"]
    expected = [espeak.synthesize(t, seed=1) for t in lines]
    results = [None] * (2 * len(lines))
    errors = []

    def work(i):
        try:
            results[i] = espeak.synthesize(lines[i % len(lines)], seed=1)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, r in enumerate(results):
        e = expected[i % len(lines)]
        assert np.array_equal(r.audio, e.audio)
        assert [(p.symbol, p.start) for p in r.phonemes] == [(p.symbol, p.start) for p in e.phonemes]


def test_cancelling_stops_synthesis():
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        espeak.synthesize(" ".join([LINE] * 5), cancelled=cancelled)
    # the library is usable again afterwards
    assert espeak.synthesize("still here").phonemes


def test_empty_text_is_refused():
    with pytest.raises(ValueError, match="empty"):
        espeak.synthesize("   ")


def test_events_that_are_not_sounds_do_not_become_phonemes():
    # a language switch inside French text ("whisky" is read as English) arrives as "(en)" events
    s = espeak.synthesize("Portez ce vieux whisky au juge blond qui fume.", voice="fr-fr")
    assert s.phonemes and not any("(" in p.symbol for p in s.phonemes)
    # eSpeak links "the air" with a nameless event that carries sound: it stays inside a phoneme
    s = espeak.synthesize("They fired bullets in the air all afternoon.")
    for a, b in zip(s.phonemes, s.phonemes[1:]):
        if b.start > a.end:
            assert _rms(s.audio, s.sample_rate, a.end, b.start) < 1e-3


RESET_CASES = [("Hello there, how are you?", "en-us", 1.0, 1.0, 1), ("Bonjour à tous. Ça va?", "fr-fr", 1.3, 0.8, 2),
               ("Guten Tag! Wie geht's?", "de", 0.7, 1.5, 3), ("tomato, tomato.", "en-us+f3", 1.0, 1.0, 4),
               ("Numbers like 42 and 1999, and 'quotes'.", "en-gb", 1.9, 1.2, 5),
               ("Robots speak in Klatt tones, don't they?", "en-us+klatt", 1.0, 1.0, 11),
               ("Whisper this quietly.", "en-us+whisper", 1.0, 1.0, 12), ("Klatt four here.", "en-us+klatt4", 2.5, 1.9, 13)]


def _spoken(case):
    s = espeak.synthesize(case[0], voice=case[1], rate=case[2], pitch=case[3], seed=case[4])
    return s.audio.tobytes(), [(p.symbol, p.start, p.end) for p in s.phonemes]


def test_one_instance_reset_between_takes_speaks_as_a_fresh_load():
    """Each take starts from the state just after loading, without unloading the library (issue 20)."""
    expected = []
    for case in RESET_CASES:
        with espeak._LOCK:
            espeak._unload()
            espeak._load()
        expected.append(_spoken(case))
    assert espeak._state["snapshot"], "the wave generator's statics were not found in libespeak-ng"
    handle = espeak._state["lib"]._handle
    for order in (range(len(RESET_CASES)), reversed(range(len(RESET_CASES))), [0, 0, 5, 5, 3, 1, 6, 2, 4, 7]):
        for i in order:
            assert _spoken(RESET_CASES[i]) == expected[i], RESET_CASES[i]
        espeak.phonemize("A phonemize call between takes.", voice="de")
    assert espeak._state["lib"]._handle == handle  # never reloaded


def test_many_takes_neither_reload_the_library_nor_grow_the_process():
    def rss_kb():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

    lines = ["Hello there, how are you today?", "Bring the map back. Monday works.", "A second line, longer."]
    for i in range(30):
        espeak.synthesize(lines[i % 3], seed=i)
    handle, before = espeak._state["lib"]._handle, rss_kb()
    for i in range(500):
        espeak.synthesize(lines[i % 3], seed=i)
    grew = rss_kb() - before
    print(f"500 takes: RSS grew {grew} KB")
    assert espeak._state["lib"]._handle == handle and grew < 512
