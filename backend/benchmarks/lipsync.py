"""lipsync: seconds to lip-sync a minute of speech (target under 10 s) and the alignment error.

Two parts. eSpeak NG (the phonetic engine's synthesizer) speaks screenplay dialogue for about a
minute; its phoneme and word events are the exact timeline. The recording then goes through the
`lipsync` mode as a WAV file, once with its transcript (forced alignment) and once without (word
recognition, then forced alignment), and the numbers are: seconds to make each take, times faster
than real time, and the mean phone-boundary and word-boundary errors against eSpeak's timeline.

Then real speech (tests/data/aligned_speech: recordings with independent Montreal Forced Aligner
alignments), each recording and a 6-minute one joined from them, aligned three ways side by side:
with the transcript, without it (recognised words), and with the phone recogniser alone (the
earlier way without a transcript).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 10.0
ALIGNED_SPEECH = Path(__file__).resolve().parents[2] / "tests" / "data" / "aligned_speech"
FALLBACK_LINES = (
    "Hey steel, I'm brick, and I think this is a great day to go and do stuff.",
    "Does a bear crap in the woods?",
    "They're coming out of the woodwork! No, everybody we've put away!",
    "Peter Piper picked a peck of pickled peppers, but the paper bag broke.",
    "We were away a year ago; nobody noticed, which was, frankly, a relief.",
    "Move the big blue box before the mob from the embassy shows up with their lawyers.",
)


def add_arguments(parser):
    parser.add_argument("--seconds", type=float, default=60.0, help="length of speech to lip-sync (default 60)")
    parser.add_argument("--script", default=None,
                        help="a Fountain/CSV/JSON script whose dialogue is spoken (default: the shared sample)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the curves (default 30)")
    parser.add_argument("--long-repeats", type=int, default=7,
                        help="times each real recording is repeated in the long one (default 7: 6 minutes)")


def dialogue_lines(script: str | None = None) -> list[str]:
    """Spoken lines of the screenplay sample (or the given script), else a few built-in lines."""
    from backend.dialogue.script import load_script

    candidates = [Path(script)] if script else [
        Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "brick_and_steel.fountain"]
    for path in candidates:
        if path.is_file():
            lines = [ln.text.replace("...", ",") for ln in load_script(path).lines if ln.text.strip()]
            if lines:
                return lines
    return list(FALLBACK_LINES)


def aligned_recordings(folder: Path = ALIGNED_SPEECH) -> list[dict]:
    """Real recordings with their transcript and independent word and phone alignments (16 kHz)."""
    from backend.audio_input import load_recording
    from backend.engines.phonetic.textgrid import reference_phones, reference_words

    out = []
    for grid in sorted(Path(folder).glob("*.TextGrid")):
        audio = next((p for p in grid.parent.glob(grid.stem + ".*") if p.suffix in (".flac", ".wav")), None)
        lab = grid.with_suffix(".lab")
        if audio is None or not lab.is_file():
            continue
        out.append({"name": grid.stem, "samples": load_recording(audio).analysis(),
                    "text": lab.read_text(encoding="utf-8").strip(),
                    "words": reference_words(grid), "phones": reference_phones(grid)})
    return out


OTHER_LANGUAGES = ALIGNED_SPEECH.parent / "aligned_speech_other"
# Reference bilabials in the other languages' phone labels (pinyin initials, Julius phones).
BILABIAL_LABELS = {"b", "p", "m", "by", "py", "my"}
# Julius's phones of the Japanese sample grouped into the words its transcript (ja_sample.txt) spaces.
_JA_WORDS = (2, 2, 2, 5, 2)


def other_language_recordings(folder: Path = OTHER_LANGUAGES) -> list[dict]:
    """Real recordings in other languages with independent alignments (tests/data/README.md):
    [{name, language, samples, text, words [(text, start, end)], bilabials [(start, end)]}].
    Mandarin: a charsiu TextGrid (a word per character, pinyin phones); Japanese: a Julius phone
    label file, its words the phones grouped as the spaced transcript has them."""
    from backend.audio_input import load_recording
    from backend.engines.phonetic.textgrid import read_tiers

    out = []
    for audio in sorted(Path(folder).glob("*.wav")):
        language, text = audio.stem.split("_", 1)[0], audio.with_suffix(".txt").read_text(encoding="utf-8").strip()
        if audio.with_suffix(".TextGrid").is_file():
            tiers = read_tiers(audio.with_suffix(".TextGrid"))
            words = [w for w in tiers["words"] if w[2] != "[SIL]"]
            phones = [p for p in tiers["phones"] if p[2] != "[SIL]"]
        else:
            rows = [line.split() for line in audio.with_suffix(".lab").read_text(encoding="utf-8").splitlines()]
            phones = [(float(a), float(b), ph) for a, b, ph in rows if not ph.startswith("sil")]
            words, k = [], 0
            for label, n in zip(text.split(), _JA_WORDS):
                words.append((phones[k][0], phones[k + n - 1][1], label))
                k += n
        out.append({"name": audio.stem, "language": language, "samples": load_recording(audio).analysis(),
                    "text": text, "words": words,
                    "bilabials": [(a, b) for a, b, ph in phones if ph.rstrip("012345") in BILABIAL_LABELS]})
    return out


def other_language_errors(rec: dict, result) -> dict:
    """Word start/end error against the reference (words paired in order by their text), and the
    reference bilabials whose middle falls in one of the alignment's p/b/m phones (30 ms slack)."""
    from backend.engines.phonetic import align as pa

    reference = [pa.Word(t, a, b) for a, b, t in rec["words"]]
    w = pa.word_boundary_error(reference, result.words)
    closed = sum(1 for a, b in rec["bilabials"]
                 if any(q.symbol[:1] in "pbm" and q.start <= (a + b) / 2 <= q.end + 0.03 for q in result.phones))
    return {"words": w, "bilabials": len(rec["bilabials"]), "closed": closed}


def joined(recordings: list[dict], repeats: int) -> dict:
    """One long recording: each recording `repeats` times in a row (one room change, as in a session
    recorded on two days), with the transcripts and reference timelines shifted to match."""
    import numpy as np

    from backend.engines.phonetic.align import SAMPLE_RATE, Word
    from exomni_blender.core.take import Phoneme

    parts, text, words, phones, t = [], [], [], [], 0.0
    for rec in recordings:
        for _ in range(repeats):
            parts.append(rec["samples"])
            text.append(rec["text"])
            words += [Word(w.text, w.start + t, w.end + t) for w in rec["words"]]
            phones += [Phoneme(p.symbol, p.start + t, p.end + t) for p in rec["phones"]]
            t += rec["samples"].size / SAMPLE_RATE
    return {"name": f"joined x{repeats}", "samples": np.concatenate(parts), "text": " ".join(text),
            "words": words, "phones": phones}


def speech_of_length(seconds: float, lines: list[str]):
    """One eSpeak synthesis of enough dialogue lines (repeated if need be) to last `seconds`."""
    from backend.engines.phonetic import espeak

    count = 1
    while True:
        text = " ".join(lines[i % len(lines)] for i in range(count))
        speech = espeak.synthesize(text)
        if speech.duration >= seconds:
            return text, speech
        # add about as many lines as the missing seconds need, at the rate seen so far
        count += max(1, int((seconds - speech.duration) / (speech.duration / count)))


def run(args) -> int:
    import soundfile as sf

    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.lipsync import lipsync_take
    from backend.engines.phonetic.align import Word, phone_boundary_error, word_boundary_error

    text, speech = speech_of_length(args.seconds, dialogue_lines(args.script))
    reference_words = [Word(w.text, w.start, w.end) for w in speech.words]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        sf.write(str(path), speech.audio, speech.sample_rate, subtype="PCM_16")
        print(f"lipsync of {speech.duration:.1f} s of eSpeak NG speech ({len(speech.phonemes)} phonemes, "
              f"{len(reference_words)} words), {args.fps:g} fps, 16-bit WAV")
        print(f"{'mode':12s} {'seconds':>8s} {'cpu s':>6s} {'x real':>7s} {'load':>6s} {'align':>6s} {'curves':>6s} "
              f"{'phone err ms':>12s} {'median':>7s} {'matched':>9s} {'word err ms':>11s} {'words':>9s}")
        # One short take first, so imports and model loading (once per server) are not timed.
        warm = Path(tmp) / "warm.wav"
        sf.write(str(warm), speech.audio[: speech.sample_rate * 2], speech.sample_rate, subtype="PCM_16")
        for transcript in ("warm up", ""):
            lipsync_take(TakeRequest(engine="phonetic", mode="lipsync", text=transcript, audio_path=str(warm)),
                         Progress())
        worst = 0.0
        for mode, transcript in (("transcript", text), ("no text", "")):
            request = TakeRequest(engine="phonetic", mode="lipsync", text=transcript, fps=args.fps,
                                  audio_path=str(path))
            t0, c0 = time.perf_counter(), time.process_time()
            take = lipsync_take(request, Progress())
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            worst = max(worst, elapsed * 60.0 / speech.duration)
            phones = phone_boundary_error(speech.phonemes, take.phonemes)
            words = word_boundary_error(reference_words, [Word(**w) for w in take.meta["words"]])
            word_ms = f"{words['mean'] * 1000:11.1f}" if words["matched"] else f"{'-':>11s}"
            print(f"{mode:12s} {elapsed:8.2f} {cpu:6.2f} {speech.duration / elapsed:7.1f} {take.timings['load']:6.2f} "
                  f"{take.timings['align']:6.2f} {take.timings['curves']:6.2f} {phones['mean'] * 1000:12.1f} "
                  f"{phones['median'] * 1000:7.1f} {phones['matched']:4d}/{phones['reference']:<4d} "
                  f"{word_ms} {words['matched']:4d}/{words['reference']:<4d}")
        # The earlier way without a transcript, for comparison: the phone recogniser alone.
        from backend.audio_input import load_recording
        from backend.engines.phonetic.align import recognize_phones

        analysis = load_recording(path).analysis()
        t0, c0 = time.perf_counter(), time.process_time()
        phones = phone_boundary_error(speech.phonemes, recognize_phones(analysis).phones)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{'phones only':12s} {elapsed:8.2f} {cpu:6.2f} {speech.duration / elapsed:7.1f} {'-':>6s} "
              f"{elapsed:6.2f} {'-':>6s} {phones['mean'] * 1000:12.1f} {phones['median'] * 1000:7.1f} "
              f"{phones['matched']:4d}/{phones['reference']:<4d} {'-':>11s}")
    verdict = "meets" if worst < TARGET_SECONDS else "misses"
    print(f"slowest lipsync mode per 60 s of speech: {worst:.2f} s wall clock ({verdict} the {TARGET_SECONDS:g} s target); "
          "the CPU column is the time this process computed, the wall clock includes waiting for the cores")
    real_speech(args.long_repeats)
    return 0


def real_speech(repeats: int) -> None:
    """Real recordings against their independent alignments: transcript, recognised words, phones only."""
    from backend.engines.phonetic import align as pa
    from backend.engines.phonetic.lipsync import letter_to_sound

    recordings = aligned_recordings()
    if not recordings:
        print(f"\nno real recordings found in {ALIGNED_SPEECH} (a source checkout has them): skipped")
        return
    ways = (("transcript", lambda r: pa.align(r["samples"], r["text"], letter_to_sound)),
            ("no text", lambda r: pa.align(r["samples"], "")),
            ("phones only", lambda r: pa.recognize_phones(r["samples"])))
    print("\nreal speech against Montreal Forced Aligner alignments (tests/data/aligned_speech)")
    print(f"{'recording':18s} {'length':>7s} {'way':12s} {'s/min':>6s} {'word err ms':>11s} {'words':>9s} "
          f"{'phone err ms':>12s} {'phones':>9s}")
    totals = {}
    for rec in recordings + [joined(recordings, repeats)]:
        seconds = rec["samples"].size / pa.SAMPLE_RATE
        for way, run in ways:
            t0 = time.perf_counter()
            result = run(rec)
            elapsed = time.perf_counter() - t0
            w = pa.word_boundary_error(rec["words"], result.words)
            p = pa.phone_boundary_error(rec["phones"], result.phones)
            if not rec["name"].startswith("joined"):
                acc = totals.setdefault(way, [0.0, 0, 0.0, 0, 0])
                acc[0] += (w["mean"] * w["matched"]) if w["matched"] else 0.0
                acc[1] += w["matched"]
                acc[2] += (p["mean"] * p["matched"]) if p["matched"] else 0.0
                acc[3] += p["matched"]
                acc[4] += p["reference"]
            word_ms = f"{w['mean'] * 1000:11.1f}" if w["matched"] else f"{'-':>11s}"
            print(f"{rec['name']:18s} {seconds:6.1f}s {way:12s} {elapsed * 60 / seconds:6.2f} {word_ms} "
                  f"{w['matched']:4d}/{w['reference']:<4d} {p['mean'] * 1000:12.1f} {p['matched']:4d}/{p['reference']:<4d}")
    others = other_language_recordings()
    if others:
        print("\nreal speech in other languages, with transcript (tests/data/aligned_speech_other; "
              "reference: charsiu for Mandarin, Julius for Japanese)")
        for rec in others:
            t0 = time.perf_counter()
            result = pa.align(rec["samples"], rec["text"], letter_to_sound, language=rec["language"])
            e = other_language_errors(rec, result)
            seconds = rec["samples"].size / pa.SAMPLE_RATE
            print(f"{rec['name']:18s} {rec['language']:4s} {seconds:5.1f}s  {(time.perf_counter() - t0) * 60 / seconds:5.2f} "
                  f"s/min  word error {e['words']['mean'] * 1000:5.1f} ms ({e['words']['matched']}/"
                  f"{e['words']['reference']} words)  bilabials closed {e['closed']}/{e['bilabials']}")
    long = joined(recordings, repeats)
    seconds = long["samples"].size / pa.SAMPLE_RATE
    single = one_pass_seconds(long["samples"], long["text"])
    spans = pa.part_spans(pa._levels(long["samples"]), pa._frames(long["samples"]))
    t0 = time.perf_counter()
    pa.align(long["samples"], long["text"], letter_to_sound)
    parts = time.perf_counter() - t0
    t0 = time.perf_counter()
    pa.align(long["samples"], long["text"], letter_to_sound, processes=1)
    alone = time.perf_counter() - t0
    print(f"{long['name']} ({seconds:.0f} s) with transcript, wall clock: {parts:.2f} s in {len(spans)} parts at once "
          f"(**{parts / seconds:.4f}x real time**), {alone:.2f} s in one process ({alone / seconds:.4f}x); "
          f"one pocketsphinx pass over it: {single:.2f} s ({single / seconds:.4f}x); ratios to that pass "
          f"{parts / single:.2f} and {alone / single:.2f}")
    for way, (wsum, wn, psum, pn, pref) in totals.items():
        word_ms = f"{wsum / wn * 1000:.1f} ms" if wn else "-"
        print(f"all short recordings, {way}: word error {word_ms}, phone error {psum / max(pn, 1) * 1000:.1f} ms, "
              f"{pn}/{pref} phones matched")


def one_pass_seconds(samples, text: str) -> float:
    """Seconds of a single pocketsphinx decoding of the recording with its words (the grammar pass
    alone, in the same stretches, one process): the floor the aligner's time is measured against."""
    from backend.engines.phonetic import align as pa
    from backend.engines.phonetic.lipsync import letter_to_sound

    d = pa._Decoders()("align")
    words, _ = pa._pronounceable(d, pa.transcript_words(text), letter_to_sound)
    pcm = pa._pcm(samples)
    placed, t0 = 0, time.perf_counter()
    for a, b in pa.speech_chunks(samples):
        rest = words[placed:placed + int(7 * (b - a) / pa.FRAME_RATE) + 10]
        if rest:
            placed += len(pa._prefix_pass(d, pa._piece(pcm, (a, b)), rest))
    return time.perf_counter() - t0
