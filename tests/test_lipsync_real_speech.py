"""Lip sync of real recordings against independent alignments (tests/data/aligned_speech).

Two spontaneous recordings of one speaker (one with a cold, in another room) with word and phone
alignments made by the Montreal Forced Aligner, and a 6-minute recording joined from them with
its whole transcript. Real pocketsphinx, real files, nothing mocked.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from backend.benchmarks.lipsync import ALIGNED_SPEECH, aligned_recordings, joined
from backend.engines.base import Cancelled, Progress, TakeRequest
from backend.engines.phonetic import align as pa
from backend.engines.phonetic.lipsync import letter_to_sound, lipsync_take
from backend.engines.phonetic.textgrid import TextGridError, read_tiers, reference_phones, reference_words
from exomni_blender.core.request import TRANSCRIPT_LIMIT

WORD_LIMIT = 0.030  # mean word-boundary error over all words, seconds (issue 12)
PHONE_LIMIT = 0.030
LONG_WORD_LIMIT = 0.045  # the joined recording: stretches cut inside it add a little


@pytest.fixture(scope="module")
def recordings():
    found = aligned_recordings()
    assert [r["name"] for r in found] == ["acoustic_corpus", "cold_corpus"], ALIGNED_SPEECH
    return found


def _pooled(results):
    """Mean error over every matched boundary of several recordings, and matched / reference."""
    total = sum(r["mean"] * r["matched"] for r in results if r["matched"])
    matched = sum(r["matched"] for r in results)
    return total / max(matched, 1), matched, sum(r["reference"] for r in results)


# -- reading the reference ----------------------------------------------------------------------

def test_textgrids_read_as_words_and_ipa_phones():
    grid = ALIGNED_SPEECH / "acoustic_corpus.TextGrid"
    tiers = read_tiers(grid)
    assert set(tiers) == {"words", "phones"}
    words = reference_words(grid)
    assert [w.text for w in words[:5]] == ["this", "is", "the", "acoustic", "corpus"]
    assert (words[0].start, words[0].end) == (1.05, 1.2)
    phones = reference_phones(grid)
    assert phones[0].symbol == "ð" and phones[0].start == pytest.approx(1.05)  # DH of "this"
    assert all(b.start >= a.start for a, b in zip(phones, phones[1:]))


def test_long_textgrid_layout_reads_the_same(tmp_path):
    path = tmp_path / "long.TextGrid"
    path.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 1.4\n'
                    'tiers? <exists>\nsize = 1\nitem []:\n    item [1]:\n        class = "IntervalTier"\n'
                    '        name = "words"\n        xmin = 0\n        xmax = 1.4\n        intervals: size = 3\n'
                    '        intervals [1]:\n            xmin = 0\n            xmax = 0.55\n            text = "montreal"\n'
                    '        intervals [2]:\n            xmin = 0.55\n            xmax = 0.91\n            text = ""\n'
                    '        intervals [3]:\n            xmin = 0.91\n            xmax = 1.4\n            text = "aligner"\n',
                    encoding="utf-8")
    assert [(w.text, w.start, w.end) for w in reference_words(path)] == [("montreal", 0.0, 0.55),
                                                                      ("aligner", 0.91, 1.4)]
    with pytest.raises(TextGridError, match="no interval tier named 'phones'"):
        reference_phones(path)
    (tmp_path / "bad.TextGrid").write_text("just words", encoding="utf-8")
    with pytest.raises(TextGridError, match="not a Praat TextGrid"):
        read_tiers(tmp_path / "bad.TextGrid")


# -- forced alignment -----------------------------------------------------------------------------

def test_forced_alignment_of_real_speech_within_30_ms(recordings):
    words, phones = [], []
    for rec in recordings:
        result = pa.align(rec["samples"], rec["text"], letter_to_sound)
        assert result.method == "forced" and not result.warning, (rec["name"], result.warning)
        words.append(pa.word_boundary_error(rec["words"], result.words))
        phones.append(pa.phone_boundary_error(rec["phones"], result.phones))
        assert words[-1]["matched"] >= 0.95 * words[-1]["reference"], (rec["name"], words[-1])
        assert words[-1]["mean"] < 0.045, (rec["name"], words[-1])  # the speaker with a cold too
    word_mean, _, _ = _pooled(words)
    phone_mean, matched, reference = _pooled(phones)
    assert word_mean <= WORD_LIMIT, word_mean
    assert phone_mean <= PHONE_LIMIT and matched >= 0.95 * reference, (phone_mean, matched, reference)


def test_words_past_the_end_of_the_recording_are_reported_and_the_rest_kept(recordings):
    rec = recordings[0]
    result = pa.align(rec["samples"], rec["text"] + " goodbye everyone", letter_to_sound)
    assert result.method == "forced"
    assert "could not be placed" in result.warning and "everyone" in result.warning
    words = pa.word_boundary_error(rec["words"], result.words)
    assert words["matched"] == words["reference"] and words["mean"] <= WORD_LIMIT


# -- no transcript --------------------------------------------------------------------------------

def test_recognised_words_beat_the_phone_recogniser(recordings):
    """Without a transcript, words recognised with the language model and then force-aligned find
    more of the reference phones, and place them closer, than the phone recogniser alone."""
    words_way, phones_way = [], []
    for rec in recordings:
        by_words = pa.align(rec["samples"], "")
        assert by_words.method == "recognized" and by_words.words
        words_way.append(pa.phone_boundary_error(rec["phones"], by_words.phones))
        phones_way.append(pa.phone_boundary_error(rec["phones"], pa.recognize_phones(rec["samples"]).phones))
    w_mean, w_matched, reference = _pooled(words_way)
    p_mean, p_matched, _ = _pooled(phones_way)
    assert w_matched >= 1.3 * p_matched, (w_matched, p_matched, reference)
    assert w_mean < p_mean, (w_mean, p_mean)
    assert w_matched >= 0.5 * reference


# -- a 6-minute recording with its whole transcript ------------------------------------------------

@pytest.fixture(scope="module")
def six_minutes(recordings, tmp_path_factory):
    rec = joined(recordings, 7)
    path = tmp_path_factory.mktemp("long") / "chapter.wav"
    sf.write(str(path), rec["samples"], pa.SAMPLE_RATE, subtype="PCM_16")
    return rec, path


def test_six_minutes_align_with_their_whole_transcript(six_minutes):
    rec, path = six_minutes
    assert rec["samples"].size / pa.SAMPLE_RATE > 360
    assert TRANSCRIPT_LIMIT >= len(rec["text"]) > 4000
    reports = []
    request = TakeRequest(engine="phonetic", mode="lipsync", text=rec["text"], audio_path=str(path))
    take = lipsync_take(request, Progress(report=lambda f, m: reports.append((f, m))))
    assert take.meta["alignment"] == "forced" and "warning" not in take.meta
    words = pa.word_boundary_error(rec["words"], [pa.Word(**w) for w in take.meta["words"]])
    assert words["matched"] >= 0.98 * words["reference"], words
    assert words["mean"] < LONG_WORD_LIMIT, words
    phones = pa.phone_boundary_error(rec["phones"], take.phonemes)
    assert phones["matched"] >= 0.95 * phones["reference"] and phones["mean"] < LONG_WORD_LIMIT, phones
    # The last word lands near the end, not squeezed or lost.
    assert abs(take.meta["words"][-1]["end"] - rec["words"][-1].end) < 0.1
    # Progress moves through the alignment in steps, not from reading straight to animating.
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions)
    during = [f for f, m in reports if m.startswith("aligning words")]
    assert len(during) >= 10 and max(np.diff(sorted(set(fractions)))) < 0.15, reports


def test_a_long_alignment_is_cancelled_between_stretches(six_minutes):
    rec, path = six_minutes
    reports = []

    def cancelled():
        return sum(1 for _, m in reports if m.startswith("aligning words")) >= 3

    request = TakeRequest(engine="phonetic", mode="lipsync", text=rec["text"], audio_path=str(path))
    with pytest.raises(Cancelled):
        lipsync_take(request, Progress(report=lambda f, m: reports.append((f, m)), cancelled=cancelled))
    assert reports[-1][0] < 0.5  # stopped early, not after the whole recording
    # The aligner is free again at once.
    short = pa.align(rec["samples"][: 5 * pa.SAMPLE_RATE], "")
    assert short.phones


# -- a long recording in parts, aligned at once by helper processes ------------------------------

@pytest.fixture
def helpers(monkeypatch):
    """Every helper process started, kept for the test to look at (real processes, real work)."""
    from backend.engines.phonetic import align_parts

    started = []

    class Watched(align_parts.Helper):
        def __init__(self, function, job):
            super().__init__(function, job)
            self.job = job
            started.append(self)

        def result(self):
            self.answer = super().result()
            return self.answer

    monkeypatch.setattr(align_parts, "Helper", Watched)
    monkeypatch.setattr(pa, "_cores", lambda: 2)  # two parts even on a one-core machine
    return started


def _alone(monkeypatch, samples, text):
    return pa.align(samples, text, letter_to_sound, processes=1)


def test_six_minutes_in_two_parts_place_the_words_as_one_process_does(six_minutes, helpers, monkeypatch):
    rec, _ = six_minutes
    spans = pa.part_spans(pa._levels(rec["samples"]), pa._frames(rec["samples"]))
    assert len(spans) == 2 and abs(spans[0][1] / spans[1][1] - 0.5) < 0.03, spans
    together = pa.align(rec["samples"], rec["text"], letter_to_sound)
    assert len(helpers) == 1 and helpers[0].answer is not None, helpers[0].failed
    assert together.processes == 2
    alone = _alone(monkeypatch, rec["samples"], rec["text"])
    # The helper found where in the transcript its part begins: after the words one process places
    # before the part's first frame.
    assert helpers[0].answer["first"] == sum(1 for w in alone.words if w.end * pa.FRAME_RATE <= spans[1][0])
    assert [w.text for w in together.words] == [w.text for w in alone.words]
    assert not together.warning
    words = pa.word_boundary_error(rec["words"], together.words)
    assert words["matched"] >= 0.98 * words["reference"] and words["mean"] < LONG_WORD_LIMIT, words
    # Only the stretches around the part's edge differ from one process's.
    moved = [abs(a.start - b.start) for a, b in zip(together.words, alone.words)]
    assert np.mean(moved) < 0.01 and sum(m > 0.05 for m in moved) <= 10


def test_a_part_that_begins_elsewhere_is_aligned_again_here(recordings, helpers, monkeypatch):
    """A helper told to look for its part's start in the wrong place (the transcript's first words)
    answers a start that does not follow the part before; this process then aligns that part itself,
    and the result is the same as one process's."""
    rec = joined(recordings, 2)
    monkeypatch.setattr(pa, "PART_SECONDS", 25.0)
    monkeypatch.setattr(pa, "_entries", lambda span, total, count: {i: 1.0 for i in range(0, 6)})
    reports = []
    together = pa.align(rec["samples"], rec["text"], letter_to_sound, progress=lambda f, m="": reports.append(f))
    assert len(helpers) == 1
    assert reports == sorted(reports) and reports[-1] == 1.0  # progress never goes back
    answer = helpers[0].answer
    assert answer is None or answer["first"] < 6  # it could only begin among the first words
    alone = _alone(monkeypatch, rec["samples"], rec["text"])
    assert together.processes == 1 and alone.processes == 1  # the helper's work was not kept
    assert [w.text for w in together.words] == [w.text for w in alone.words]
    # The same words, as close to the reference (from the meeting point on, the stretches are cut
    # where a run starting there cuts them, so a few words sit a frame or more apart).
    errors = [pa.word_boundary_error(rec["words"], r.words) for r in (together, alone)]
    assert errors[0]["matched"] == errors[1]["matched"] and errors[0]["mean"] <= errors[1]["mean"] + 0.005, errors


def test_recognition_in_parts_finds_as_many_phones(recordings, helpers, monkeypatch):
    rec = joined(recordings, 2)
    together = pa.align(rec["samples"], "")
    assert len(helpers) == 1 and helpers[0].answer is not None, helpers[0].failed
    assert together.processes == 2
    assert helpers[0].answer["words"]  # the helper recognised its part's words
    alone = pa.align(rec["samples"], "", processes=1)
    # Chunks are cut within each part, so the words heard near a cut may differ; as many phones are
    # found, as close to the reference.
    found = [pa.phone_boundary_error(rec["phones"], r.phones) for r in (together, alone)]
    assert found[0]["matched"] >= 0.9 * found[1]["matched"], found
    assert found[0]["mean"] <= found[1]["mean"] + 0.010, found
    starts = [p.start for p in together.phones]
    assert starts == sorted(starts)


def test_cancelling_stops_the_helpers(six_minutes, helpers):
    rec, _ = six_minutes
    reports = []

    def report(fraction, message=""):
        reports.append(fraction)
        if len(reports) >= 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        pa.align(rec["samples"], rec["text"], letter_to_sound, progress=report)
    assert len(helpers) == 1
    process = helpers[0]._process
    assert process.poll() is not None and process.returncode != 0  # killed, not finished
    assert not __import__("os").path.exists(helpers[0]._folder)  # its files are gone


def test_a_helper_ends_with_the_process_that_started_it(tmp_path):
    """A caller killed mid-alignment leaves no helper running and no files behind, on any platform
    (the helper watches its stdin, which only the caller holds open)."""
    import subprocess
    import sys
    import time

    caller = subprocess.run(
        [sys.executable, "-c", "import os, time\n"
         "from backend.engines.phonetic import align_parts\n"
         "helper = align_parts.Helper(time.sleep, 120)\n"
         "print(helper._process.pid, helper._folder, flush=True)\n"
         "time.sleep(0.5)\n"
         "os._exit(9)\n"], capture_output=True, text=True, timeout=60, cwd=str(ALIGNED_SPEECH.parents[2]))
    assert caller.returncode == 9, caller.stderr
    pid, folder = caller.stdout.split()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                gone = "\nState:\tZ" in f.read()  # ended, waiting to be reaped
        except FileNotFoundError:
            gone = True
        if gone:
            break
        time.sleep(0.1)
    assert gone, f"helper {pid} outlived its caller"
    assert not __import__("os").path.exists(folder)
