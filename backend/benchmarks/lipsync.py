"""lipsync: seconds to lip-sync a minute of speech (target under 10 s) and the alignment error.

eSpeak NG (the phonetic engine's synthesizer) speaks screenplay dialogue for about a minute; its
phoneme and word events are the exact timeline. The recording then goes through the `lipsync`
mode as a WAV file, once with its transcript (forced alignment) and once without (phone
recognition), and the numbers are: seconds to make each take, times faster than real time,
and the mean phone-boundary and word-boundary errors against eSpeak's timeline.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 10.0
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
    verdict = "meets" if worst < TARGET_SECONDS else "misses"
    print(f"slowest mode per 60 s of speech: {worst:.2f} s wall clock ({verdict} the {TARGET_SECONDS:g} s target); "
          "the CPU column is the time this process computed, the wall clock includes waiting for the cores")
    return 0
