"""Forced alignment and phone recognition against timelines known exactly.

eSpeak NG (the phonetic engine's synthesizer) speaks lines nobody tuned the aligner for: the
screenplay sample's dialogue and sentences of our own at several speaking rates. Its phoneme and
word events are the ground truth. eSpeak writes IPA and pocketsphinx ARPAbet, so boundaries are
compared on phones paired by an edit-distance alignment of the two sequences (both mapped to
ARPAbet), and words by an edit alignment of their text; see phonetic.align.match_phones.
"""

from __future__ import annotations

import numpy as np
import pytest

from backend.audio_input import resample
from backend.engines.phonetic import align as pa
from backend.engines.phonetic.lipsync import letter_to_sound
from exomni_blender.core.take import Phoneme

PHONE_LIMIT = 0.050  # mean phone-boundary error, seconds
WORD_LIMIT = 0.100  # mean word-boundary error, seconds
OWN_SENTENCES = (
    "My grandmother's recipe needs 42 grams of butter and a pinch of nutmeg.",
    "Please fetch the yellow umbrella from the garage before the thunderstorm arrives.",
    "Jonathan whispered that the old lighthouse keeper never locked the door.",
    "Seven quick zebras jumped over the fence while Xylophonia watched, amused.",
)


def _speech(text: str, rate: float = 1.0):
    from backend.engines.phonetic import espeak

    s = espeak.synthesize(text, rate=rate)
    return s, resample(s.audio, s.sample_rate, pa.SAMPLE_RATE)


def _words(synthesis):
    return [pa.Word(w.text, w.start, w.end) for w in synthesis.words]


def _check_forced(text: str, rate: float = 1.0):
    s, x = _speech(text, rate)
    result = pa.align(x, text, letter_to_sound)
    assert result.method == "forced", result.warning
    phones = pa.phone_boundary_error(s.phonemes, result.phones)
    words = pa.word_boundary_error(_words(s), result.words)
    return result, phones, words


# -- pure logic -----------------------------------------------------------------------------------

def test_every_arpabet_phone_survives_the_ipa_round_trip():
    for phone, ipa in pa.ARPABET_TO_IPA.items():
        assert pa.ipa_to_arpabet(ipa) == [phone], (phone, ipa)
    assert pa.arpabet_to_ipa("AH0") == "ə" and pa.arpabet_to_ipa("ey1") == "eɪ"


def test_espeak_symbols_map_to_arpabet():
    assert pa.ipa_to_arpabet("ˈɛɹ") == ["EH", "R"]
    assert pa.ipa_to_arpabet("tʃ") == ["CH"]
    assert pa.ipa_to_arpabet("ˌaɪ") == ["AY"]
    assert pa.ipa_to_arpabet("fˈɔːɹɾi tˈuː") == ["F", "AO", "R", "T", "IY", "T", "UW"]
    assert pa.ipa_to_arpabet("ɐ") == ["AH"] and pa.ipa_to_arpabet("ɚ") == ["ER"]
    assert pa.ipa_to_arpabet("") == []


def test_transcript_words_follow_the_dictionary_spelling():
    assert pa.transcript_words("Hey Steel, I’m BRICK! (beat) 42 [[note]]") == ["hey", "steel", "i'm", "brick", "42"]


def test_phone_error_measures_a_known_shift_across_phone_sets():
    ref = [Phoneme("h", 0.10, 0.15), Phoneme("ə", 0.15, 0.20), Phoneme("l", 0.20, 0.28), Phoneme("ˈoʊ", 0.28, 0.45),
           Phoneme("ð", 0.60, 0.65), Phoneme("ˈɛɹ", 0.65, 0.90)]
    # The same line as an aligner writes it (ARPAbet mapped to IPA), 30 ms late, with the schwa
    # missed, an extra phone inserted, and eSpeak's "ɛɹ" as two phones.
    hyp = [Phoneme("h", 0.13, 0.23), Phoneme("l", 0.23, 0.31), Phoneme("oʊ", 0.31, 0.48), Phoneme("k", 0.48, 0.55),
           Phoneme("ð", 0.63, 0.68), Phoneme("ɛ", 0.68, 0.80), Phoneme("ɹ", 0.80, 0.93)]
    err = pa.phone_boundary_error(ref, hyp)
    assert err["matched"] == 5 and err["reference"] == 6
    assert err["mean"] == pytest.approx(0.03, abs=1e-9)


def test_reduced_vowels_and_flaps_count_as_the_same_mouth():
    ref = [Phoneme("ɐ", 0.0, 0.1), Phoneme("ɾ", 0.1, 0.2)]
    hyp = [Phoneme("ɪ", 0.02, 0.1), Phoneme("d", 0.12, 0.2)]
    assert pa.phone_boundary_error(ref, hyp)["matched"] == 2
    assert pa.phone_boundary_error(ref, [Phoneme("m", 0.0, 0.1), Phoneme("s", 0.1, 0.2)])["matched"] == 0


def test_word_error_pairs_words_by_text():
    ref = [pa.Word("I", 0.0, 0.2), pa.Word("think", 0.2, 0.5), pa.Word("so", 0.6, 0.9)]
    hyp = [pa.Word("i'm", 0.05, 0.25), pa.Word("so", 0.65, 0.95)]
    err = pa.word_boundary_error(ref, hyp)
    assert err["matched"] == 2 and err["mean"] == pytest.approx(0.05)


def test_chunks_are_cut_in_pauses():
    rate = pa.SAMPLE_RATE
    x = 0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * rate) / rate).astype(np.float32)
    x[int(3.2 * rate):int(3.6 * rate)] = 0.0  # the only pause in the stretch where a cut may fall
    x[int(7.0 * rate):int(7.4 * rate)] = 0.0
    chunks = pa.speech_chunks(x, seconds=4.0)
    assert chunks[0][0] == 0 and chunks[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))  # no gap, no overlap
    assert all(b - a <= 400 for a, b in chunks)
    assert 320 <= chunks[0][1] <= 360 and 700 <= chunks[1][1] <= 740
    assert pa.speech_chunks(x[:rate], seconds=4.0) == [(0, 100)]


# -- real speech, real pocketsphinx ---------------------------------------------------------------

def test_forced_alignment_on_screenplay_dialogue(samples_dir):
    from backend.dialogue.script import load_script

    lines = list(dict.fromkeys(ln.text for ln in load_script(samples_dir / "brick_and_steel.fountain").lines
                               if len(ln.text.split()) >= 2))
    assert len(lines) >= 10
    all_phones, all_words = [], []
    for text in lines:
        _, phones, words = _check_forced(text)
        assert phones["mean"] < PHONE_LIMIT, (text, phones)
        assert phones["matched"] >= 0.9 * phones["reference"], (text, phones)
        assert words["mean"] < WORD_LIMIT, (text, words)
        assert words["matched"] >= 0.9 * words["reference"], (text, words)
        all_phones.append(phones["mean"])
        all_words.append(words["mean"])
    assert np.mean(all_phones) < PHONE_LIMIT and np.mean(all_words) < WORD_LIMIT


@pytest.mark.parametrize("rate", [0.8, 1.0, 1.5])
def test_forced_alignment_on_our_sentences_at_several_rates(rate):
    for text in OWN_SENTENCES:
        result, phones, words = _check_forced(text, rate)
        assert phones["mean"] < PHONE_LIMIT, (text, rate, phones)
        assert phones["matched"] >= 0.9 * phones["reference"], (text, rate, phones)
        assert words["mean"] < WORD_LIMIT, (text, rate, words)
        assert result.skipped == []
        assert result.score is not None and result.score > pa.MISMATCH_SCORE and not result.warning


def test_unknown_words_are_pronounced_by_letter_to_sound():
    result, phones, _ = _check_forced("Xylophonia met Qorvath at 42 Brindlewick Lane.")
    assert result.skipped == []
    names = [w.text for w in result.words]
    assert {"xylophonia", "qorvath", "42", "brindlewick"} <= set(names)
    assert phones["mean"] < PHONE_LIMIT


def test_words_nobody_can_pronounce_are_skipped_and_the_rest_aligned():
    text = "Does a bear crap in the woods?"
    s, x = _speech(text)
    result = pa.align(x, text + " zzqx", letter_to_sound=lambda word: "")
    assert result.method == "forced" and result.skipped == ["zzqx"]
    assert [w.text for w in result.words] == ["does", "a", "bear", "crap", "in", "the", "woods"]
    assert pa.phone_boundary_error(s.phonemes, result.phones)["mean"] < PHONE_LIMIT


def test_a_transcript_of_another_line_is_flagged():
    _, x = _speech("Does a bear crap in the woods?")
    result = pa.align(x, "I am a lucky cheese lover who really likes cheese.", letter_to_sound)
    assert result.warning and "transcript" in result.warning


def test_long_recordings_are_aligned_in_chunks(monkeypatch):
    text = ("Then let's retire them. Permanently. This is everybody we've ever put away. "
            "So much for retirement! We found Brick and Steel!")
    s, x = _speech(text)
    whole = pa.align(x, text, letter_to_sound)
    monkeypatch.setattr(pa, "CHUNK_SECONDS", 3.0)
    assert len(pa.speech_chunks(x)) >= 3
    reports = []
    segs_chunked = pa.align(x, text, letter_to_sound, progress=lambda f, m="": reports.append(f))
    assert [w.text for w in segs_chunked.words] == [w.text for w in whole.words]
    assert len(reports) >= 4 and reports == sorted(reports)  # progress moves through the stretches
    err = pa.phone_boundary_error(s.phonemes, segs_chunked.phones)
    assert err["mean"] < PHONE_LIMIT and err["matched"] >= 0.9 * err["reference"]
    starts = [p.start for p in segs_chunked.phones]
    assert starts == sorted(starts)


def test_recognition_without_transcript():
    s, x = _speech("Everyone's coming after you mate! Scorpio, the boy band, Sparrow.")
    result = pa.align(x, "")
    assert result.method == "recognized" and result.words  # recognised words, force-aligned
    assert len(result.phones) >= 0.6 * len(s.phonemes)
    # The phones cover the speech, not the silence around it.
    assert abs(result.phones[0].start - s.phonemes[0].start) < 0.15
    assert abs(result.phones[-1].end - s.phonemes[-1].end) < 0.15
    err = pa.phone_boundary_error(s.phonemes, result.phones)
    assert err["matched"] >= 0.4 * err["reference"]
    assert err["mean"] < PHONE_LIMIT


def test_phone_only_recognition():
    s, x = _speech("Everyone's coming after you mate! Scorpio, the boy band, Sparrow.")
    result = pa.recognize_phones(x)
    assert result.method == "recognized" and result.words == []
    err = pa.phone_boundary_error(s.phonemes, result.phones)
    assert err["matched"] >= 0.4 * err["reference"] and err["mean"] < PHONE_LIMIT


@pytest.mark.parametrize("with_transcript", [True, False])
def test_a_recording_aligns_the_same_whatever_was_aligned_before(with_transcript):
    """One server process aligns take after take: a take's times must not depend on the one before.
    (Shared decoders once carried their cepstral mean and last search into the next take, and a real
    recording's word moved by 20 ms after a synthetic line had been aligned.)"""
    import soundfile as sf
    from pathlib import Path

    recording = Path(__file__).parent / "data" / "aligned_speech" / "acoustic_corpus.flac"
    samples, rate = sf.read(recording, dtype="float32")
    assert rate == pa.SAMPLE_RATE
    text = recording.with_suffix(".lab").read_text(encoding="utf-8") if with_transcript else ""

    def aligned():
        result = pa.align(samples, text, letter_to_sound)
        return [(w.text, w.start, w.end) for w in result.words], [(p.symbol, p.start, p.end) for p in result.phones]

    first = aligned()
    line = "Bob bought a pink balloon."
    pa.align(_speech(line)[1], line, letter_to_sound)
    pa.align(_speech(line)[1], "", letter_to_sound)
    assert aligned() == first
