"""moods and head motion: per-mood channel means against neutral, closures and rests kept, head nods on stress.

Makes phonetic takes of lines nobody tuned the moods on, once per mood, and prints:
- for each mood, the mean weight of the channels people read it from, against the same lines
  spoken neutrally (the rise is what the mood adds);
- lips closed at p/b/m and the mouth at rest in pauses, per mood (they must not change). Rest is
  the quality measure (every mouth channel low over the pause's middle) on the channels that
  articulate: a smile or a frown held through a pause is the mood, not speech, so the mood's own
  channels are left out of it (and reported in the first columns);
- head motion of the neutral takes: how many rotation peaks fall on a stressed syllable against
  what chance gives for peaks at random times, the largest angle (limit +-10 degrees) and the
  largest step between frames.
"""

from __future__ import annotations

LINES = (
    "The ferry leaves at nine, so pack your bags tonight and meet me by the harbour.",
    "Nobody told me the museum would be closed on a public holiday.",
    "If the bridge is out, we will have to drive all the way around the lake.",
    "My brother built that boat with his own hands, plank by plank, over two summers.",
    "Please bring the maps, a compass, and something warm to wear when the sun goes down.",
    "I checked the numbers twice, and the budget still does not balance.",
)
# The channels a reader of faces looks at for each mood (the FACS prototypes of core/face.py).
READ_FROM = {
    "happy": ("mouthSmileLeft", "mouthSmileRight", "cheekSquintLeft", "cheekSquintRight"),
    "sad": ("browInnerUp", "mouthFrownLeft", "mouthFrownRight"),
    "angry": ("browDownLeft", "browDownRight", "noseSneerLeft", "noseSneerRight"),
    "surprised": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "eyeWideLeft", "eyeWideRight"),
    "afraid": ("browInnerUp", "eyeWideLeft", "eyeWideRight", "mouthStretchLeft", "mouthStretchRight"),
    "disgusted": ("noseSneerLeft", "noseSneerRight", "browDownLeft", "browDownRight"),
}
PEAK_WINDOW = 0.12  # seconds: a head peak this close to a stressed vowel counts as on it


def add_arguments(parser):
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the curves (default 30)")
    parser.add_argument("--intensity", type=float, default=1.0, help="mood intensity 0..1 (default 1)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per line (default 3)")


def run(args) -> int:
    import numpy as np

    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic import espeak, quality
    from backend.engines.phonetic.engine import PhoneticEngine
    from exomni_blender.core import face
    from exomni_blender.core.arkit import INDEX

    ok, reason = espeak.is_available()
    if not ok:
        print(f"the phonetic engine is not available: {reason}")
        return 1
    engine = PhoneticEngine()
    takes = {}
    for mood in face.MOOD_NAMES:
        takes[mood] = [engine.make_take(TakeRequest(text=line, fps=args.fps, seed=seed, mood=mood,
                                                    intensity=args.intensity), Progress())
                       for line in LINES for seed in range(args.seeds)]

    def mean_of(mood, channels):
        return float(np.mean([t.weights[:, [INDEX[c] for c in channels]].mean() for t in takes[mood]]))

    def articulation(weights, mood):
        w = weights.copy()
        w[:, [INDEX[c] for c in face.MOODS[mood]]] = 0.0
        return w

    def closures(mood):
        c = [x for t in takes[mood] for x in quality.bilabial_closures(t.phonemes, t.weights, t.fps)]
        r = [x for t in takes[mood]
             for x in quality.pause_rest(t.phonemes, articulation(t.weights, mood), t.fps, t.duration)]
        return sum(x[3] for x in c), len(c), sum(x[2] <= quality.REST_LEVEL for x in r), len(r)

    print(f"{len(LINES)} lines x {args.seeds} seeds per mood, intensity {args.intensity:g}, {args.fps:g} fps")
    print(f"{'mood':10s} {'read from':52s} {'neutral':>8s} {'mood':>7s} {'rise':>7s} {'p/b/m closed':>13s} "
          f"{'rest':>8s}")
    c0, n0, r0, m0 = closures("neutral")
    print(f"{'neutral':10s} {'':52s} {'':>8s} {'':>7s} {'':>7s} {f'{c0}/{n0}':>13s} {f'{r0}/{m0}':>8s}")
    failed = False
    for mood, channels in READ_FROM.items():
        base, moody = mean_of("neutral", channels), mean_of(mood, channels)
        c, n, r, m = closures(mood)
        failed |= moody <= base or c / max(n, 1) < c0 / max(n0, 1) - 1e-9 or r / max(m, 1) < r0 / max(m0, 1) - 1e-9
        print(f"{mood:10s} {', '.join(channels)[:52]:52s} {base:8.3f} {moody:7.3f} {moody - base:+7.3f} "
              f"{f'{c}/{n}':>13s} {f'{r}/{m}':>8s}")

    on, peaks, chance, biggest, step = 0, 0, 0.0, 0.0, 0.0
    for take in takes["neutral"]:
        rotation = face.head_rotation(take.meta, take.frames)
        stressed = [p.start for p in take.phonemes if p.symbol.startswith("ˈ")]
        angle = np.linalg.norm(rotation, axis=1)
        found = [i for i in range(1, len(angle) - 1) if angle[i] > angle[i - 1] and angle[i] >= angle[i + 1]
                 and angle[i] > 0.5]
        times = np.array(found) / take.fps
        on += sum(any(abs(t - s) <= PEAK_WINDOW for s in stressed) for t in times)
        peaks += len(times)
        # chance: the share of the take covered by the windows around stressed vowels
        grid = np.arange(take.frames) / take.fps
        covered = np.mean([any(abs(t - s) <= PEAK_WINDOW for s in stressed) for t in grid])
        chance += covered * len(times)
        biggest = max(biggest, float(np.abs(rotation).max()))
        step = max(step, float(np.abs(np.diff(rotation, axis=0)).max()))
    print()
    print(f"head: {on}/{peaks} rotation peaks on a stressed syllable (+-{1000 * PEAK_WINDOW:.0f} ms) "
          f"= {100 * on / max(peaks, 1):.0f}%, chance {100 * chance / max(peaks, 1):.0f}%; "
          f"largest angle {biggest:.2f} deg (limit {face.HEAD_LIMIT_DEG:g}); largest step between frames "
          f"{step:.2f} deg ({step * args.fps:.0f} deg/s)")
    failed |= on <= chance or biggest > face.HEAD_LIMIT_DEG
    return 1 if failed else 0
