"""phonetic engine: how many times faster than real time it makes takes, per stage, and its lip-sync measures.

Makes takes of several lines (screenplay dialogue and a few tongue twisters) through the engine
itself, then prints, per line and in total: seconds of speech, seconds to make it, the ratio, the
time of each stage (eSpeak synthesis, mouth, face layers), and the sync measures (best lag of mouth
opening against the audio envelope, p/b/m closures, mouth at rest in pauses).
"""

from __future__ import annotations

import time

LINES = (
    "Hey steel, I'm brick, and I think this is a great day to go and do stuff.",
    "Does a bear crap in the woods?",
    "And then there's a long beat. Longer than is funny. Long enough to be depressing.",
    "Peter Piper picked a peck of pickled peppers, but the paper bag broke.",
    "We were away a year ago; nobody noticed, which was, frankly, a relief.",
    "She sells seashells by the seashore while a few fish swim above the bubbling foam.",
    "Move the big blue box before the mob from the embassy shows up with their lawyers.",
    "I'd rather fire a thousand bullets in the air than watch television all afternoon!",
)
TARGET = 20.0


def add_arguments(parser):
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the curves (default 30)")
    parser.add_argument("--repeat", type=int, default=3, help="takes per line; the median time counts (default 3)")
    parser.add_argument("--voice", default="en-us", help="eSpeak NG voice (default en-us)")
    parser.add_argument("--rate", type=float, default=1.0, help="speaking-rate multiplier (default 1.0)")


def run(args) -> int:
    import numpy as np

    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic import espeak, quality
    from backend.engines.phonetic.engine import PhoneticEngine

    engine = PhoneticEngine()
    ok, reason = espeak.is_available()
    if not ok:
        print(f"the phonetic engine is not available: {reason}")
        return 1
    espeak.synthesize("warm up", voice=args.voice)  # loads the library and the voice once

    print(f"phonetic engine, voice {args.voice}, rate {args.rate:g}, {args.fps:g} fps, median of {args.repeat}, "
          f"wall-clock seconds")
    print(f"{'line':44s} {'speech s':>8s} {'make s':>7s} {'x real':>7s} {'synth':>6s} {'mouth':>6s} "
          f"{'face':>6s} {'lag':>5s} {'p/b/m':>6s} {'rest':>5s}")
    total_speech = total_make = 0.0
    slowest = float("inf")
    stages = {"synthesize": 0.0, "mouth": 0.0, "expression": 0.0}
    closures, rests = [], []
    envelopes, openings = [], []
    for seed, line in enumerate(LINES):
        runs = []
        for _ in range(max(1, args.repeat)):
            request = TakeRequest(text=line, fps=args.fps, voice=args.voice, seed=seed, rate=args.rate)
            t0 = time.perf_counter()
            take = engine.make_take(request, Progress())
            runs.append((time.perf_counter() - t0, take))
        runs.sort(key=lambda r: r[0])
        elapsed, take = runs[len(runs) // 2]
        slowest = min(slowest, take.duration / runs[-1][0])
        total_speech += take.duration
        total_make += elapsed
        for k in stages:
            stages[k] += take.timings.get(k, 0.0)
        env = quality.audio_envelope(take.audio, take.sample_rate, take.fps, take.frames)
        opening = quality.mouth_opening(take.weights)
        lag = quality.best_lag(env, opening)
        envelopes += [env, np.zeros(int(take.fps))]
        openings += [opening, np.zeros(int(take.fps))]
        c = quality.bilabial_closures(take.phonemes, take.weights, take.fps)
        r = quality.pause_rest(take.phonemes, take.weights, take.fps, take.duration)
        closures += c
        rests += r
        closed = f"{sum(x[3] for x in c)}/{len(c)}"
        resting = f"{sum(x[2] <= quality.REST_LEVEL for x in r)}/{len(r)}"
        print(f"{line[:44]:44s} {take.duration:8.2f} {elapsed:7.4f} {take.duration / elapsed:7.1f} "
              f"{take.timings['synthesize']:6.4f} {take.timings['mouth']:6.4f} {take.timings['expression']:6.4f} "
              f"{lag.refined:5.2f} {closed:>6s} {resting:>5s}")
    ratio = total_speech / total_make
    pooled = quality.best_lag(np.concatenate(envelopes), np.concatenate(openings))
    print()
    print(f"speech {total_speech:.2f} s made in {total_make:.3f} s: {ratio:.1f}x faster than real time "
          f"(target {TARGET:g}x: {'met' if ratio >= TARGET else 'NOT met'}); slowest single take {slowest:.1f}x")
    print("stages: " + ", ".join(f"{k} {v:.3f} s ({100 * v / total_make:.0f}%)" for k, v in stages.items()))
    print(f"sync: best lag of mouth opening vs audio envelope over all lines {pooled.frames:+d} frames "
          f"({pooled.refined:+.2f} refined, {1000 * pooled.refined / args.fps:+.0f} ms; negative = mouth leads), "
          f"correlation {pooled.correlation:.2f}")
    n_closed = sum(x[3] for x in closures)
    print(f"lips closed at {n_closed}/{len(closures)} p/b/m ({100 * n_closed / max(1, len(closures)):.0f}%)")
    n_rest = sum(x[2] <= quality.REST_LEVEL for x in rests)
    print(f"mouth at rest in {n_rest}/{len(rests)} pauses of {quality.REST_PAUSE:g} s or more")
    return 0 if ratio >= TARGET else 1
