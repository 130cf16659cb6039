"""peers: the phonetic engine's mouth beside a neural peer's curves for the same recordings, per channel.

tests/data/peers holds public recordings with the ARKit curves a neural audio-to-face model (NeuroSync)
made from them. Each recording goes through the `lipsync` mode without a transcript (none was
published with them) and, per mouth channel: the correlation at the best shift within +-MAX_SHIFT
frames, that shift (positive: ours comes after the peer), and the amplitude ratio (our 98th
percentile over the peer's). Both at 30 fps. Then the checks that need no peer: p/b/m closures,
rest where a voice-activity check hears silence, with room noise and clicks added to the recording.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np

PEERS = Path(__file__).resolve().parents[2] / "tests" / "data" / "peers"
FPS = 30.0
MAX_SHIFT = 8
# Channels compared: name -> ARKit channels averaged (left and right halves of one movement together).
CHANNELS = {
    "jawOpen": ("jawOpen",),
    "mouthClose": ("mouthClose",),
    "mouthFunnel": ("mouthFunnel",),
    "mouthPucker": ("mouthPucker",),
    "mouthStretch": ("mouthStretchLeft", "mouthStretchRight"),
    "mouthSmile": ("mouthSmileLeft", "mouthSmileRight"),
    "mouthPress": ("mouthPressLeft", "mouthPressRight"),
    "mouthRollLower": ("mouthRollLower",),
    "mouthRollUpper": ("mouthRollUpper",),
    "mouthUpperUp": ("mouthUpperUpLeft", "mouthUpperUpRight"),
    "mouthLowerDown": ("mouthLowerDownLeft", "mouthLowerDownRight"),
}


def add_arguments(parser):
    parser.add_argument("--folder", default=str(PEERS), help="recordings (*.flac/*.wav) with a peer's *.csv beside them")


def peer_recordings(folder: Path = PEERS) -> list[dict]:
    """[{name, audio (path), rate (peer fps), curves {channel: array}}] for each recording with a peer CSV.

    The CSV is Live Link Face's layout cut to the mouth: a Timecode column then one column per ARKit
    channel; rows are frames at 60 fps from time 0."""
    out = []
    for table in sorted(Path(folder).glob("*.csv")):
        audio = next((p for p in table.parent.glob(table.stem + ".*") if p.suffix in (".flac", ".wav")), None)
        if audio is None:
            continue
        with open(table, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        names = rows[0][1:]
        values = np.array([[float(v) for v in r[1:]] for r in rows[1:]], np.float64)
        out.append({"name": table.stem, "audio": audio, "rate": 60.0,
                    "curves": {n: values[:, i] for i, n in enumerate(names)}})
    return out


def resampled(curve: np.ndarray, rate: float, fps: float, frames: int) -> np.ndarray:
    """A curve at `rate` frames per second read at `frames` frames of `fps` (linear interpolation)."""
    return np.interp(np.arange(frames) / fps, np.arange(curve.size) / rate, curve)


def channel(weights_by_name, names) -> np.ndarray:
    return np.mean([weights_by_name(n) for n in names], axis=0)


def compare(ours: np.ndarray, peer: np.ndarray, max_shift: int = MAX_SHIFT) -> dict:
    """Correlation at the best shift (frames; positive: ours later), and the amplitude ratio."""
    n = min(ours.size, peer.size)
    ours, peer = ours[:n], peer[:n]
    best = (-2.0, 0)
    for lag in range(-max_shift, max_shift + 1):
        a = ours[lag:] if lag >= 0 else ours[:n + lag]
        b = peer[:n - lag] if lag >= 0 else peer[-lag:]
        if a.std() < 1e-9 or b.std() < 1e-9:
            r = 0.0
        else:
            r = float(np.corrcoef(a, b)[0, 1])
        if r > best[0]:
            best = (r, lag)
    top_ours, top_peer = np.percentile(ours, 98), np.percentile(peer, 98)
    return {"r": best[0], "shift": best[1], "ratio": float(top_ours / top_peer) if top_peer > 1e-6 else float("nan"),
            "ours": float(top_ours), "peer": float(top_peer)}


def lipsync_weights(audio_path, text: str = "", fps: float = FPS, mouth_only: bool = True):
    """(weights, take) of the lipsync mode for a recording."""
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.lipsync import lipsync_take

    take = lipsync_take(TakeRequest(engine="phonetic", mode="lipsync", text=text, fps=fps, audio_path=str(audio_path),
                                    mouth_only=mouth_only), Progress())
    return np.asarray(take.weights, np.float64), take


def peer_table(recordings: list[dict], fps: float = FPS) -> dict:
    """{channel: [compare() per recording]} for every recording."""
    from exomni_blender.core.arkit import INDEX

    out = {name: [] for name in CHANNELS}
    for rec in recordings:
        weights, _ = lipsync_weights(rec["audio"], fps=fps)
        frames = weights.shape[0]
        for name, parts in CHANNELS.items():
            ours = channel(lambda n: weights[:, INDEX[n]], parts)
            peer = channel(lambda n: resampled(rec["curves"][n], rec["rate"], fps, frames), parts)
            out[name].append(compare(ours, peer))
    return out


def noisy(samples: np.ndarray, rate: int, seed: int = 0, snr_db: float = 30.0, clicks: int = 6) -> np.ndarray:
    """The recording with room noise (pink-ish, `snr_db` below the speech's RMS) and a few sharp clicks
    spread over it, and 1 s of that noise alone in front (a room before anyone speaks)."""
    rng = np.random.default_rng(seed)
    lead = np.zeros(rate, np.float64)
    x = np.concatenate([lead, np.asarray(samples, np.float64)])
    white = rng.standard_normal(x.size)
    pinkish = np.convolve(white, np.ones(8) / 8.0, mode="same")
    speech_rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    noise = pinkish / (pinkish.std() + 1e-12) * speech_rms * 10 ** (-snr_db / 20.0)
    x = x + noise
    at = [int(0.3 * rate)] + sorted(rng.integers(rate, x.size - rate // 10, clicks - 1).tolist())
    for a in at:
        n = int(0.004 * rate)
        x[a:a + n] += 0.5 * np.sign(rng.standard_normal(n)) * np.exp(-np.arange(n) / (0.001 * rate))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def silence_check(weights: np.ndarray, samples: np.ndarray, rate: int, fps: float) -> dict:
    """Highest mouth channel in frames the voice-activity check calls silence, and in the lead-in second."""
    from backend.engines.phonetic import voice
    from exomni_blender.core.arkit import INDEX, MOUTH_CHANNELS

    mouth = weights[:, [INDEX[n] for n in MOUTH_CHANNELS]].max(axis=1)
    active = voice.activity(samples, rate, fps, weights.shape[0])
    quiet = ~voice.widened(active, int(round(0.25 * fps)))
    lead = np.arange(weights.shape[0]) / fps < 0.9
    return {"silent_frames": int(quiet.sum()), "max_in_silence": float(mouth[quiet].max()) if quiet.any() else 0.0,
            "max_in_lead": float(mouth[lead].max())}


def silences(words, duration: float, least: float = 0.5, margin: float = 0.15) -> list[tuple[float, float]]:
    """Stretches of at least `least` seconds without a word ((start, end) pairs from a reference
    alignment), less `margin` at each end where a word is near; the stretch before the first word
    starts at 0."""
    spans, t = [], 0.0
    for a, b in list(words) + [(duration, duration)]:
        if a - t >= least:
            spans.append((t + margin if t > 0 else 0.0, a - margin))
        t = max(t, b)
    return spans


def highest_in(weights: np.ndarray, spans, fps: float) -> float:
    """The highest mouth channel over frames inside any of the spans."""
    from exomni_blender.core.arkit import INDEX, MOUTH_CHANNELS

    mouth = weights[:, [INDEX[n] for n in MOUTH_CHANNELS]].max(axis=1)
    times = np.arange(weights.shape[0]) / fps
    inside = np.zeros(times.size, bool)
    for a, b in spans:
        inside |= (times >= a) & (times <= b)
    return float(mouth[inside].max()) if inside.any() else 0.0


def aligned_silence() -> None:
    """Real recordings with MFA word alignments (the independent reference of where nobody speaks),
    with noise and clicks, through lipsync with their transcripts: the mouth in the reference's pauses
    with the recording heard, and with the same phones alone (as before the voice check)."""
    import soundfile as sf

    from backend.benchmarks.lipsync import aligned_recordings
    from backend.engines.phonetic import curves, quality

    print("\nreal recordings (MFA pauses of 0.5 s or more, less 0.15 s each side; 1 s of noise in front), "
          "lipsync with the transcript:")
    print(f"{'recording':18s} {'noise':>6s} {'pauses':>6s} {'mouth max heard':>15s} {'phones alone':>12s} {'p/b/m closed':>12s}")
    for rec in aligned_recordings():
        rate = 16000
        for snr in (None, 30.0, 20.0):
            x = rec["samples"] if snr is None else noisy(rec["samples"], rate, snr_db=snr)
            shift = 0.0 if snr is None else 1.0
            duration = x.size / rate
            words = [(w.start + shift, w.end + shift) for w in rec["words"]]
            spans = silences(words, duration)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "speech.wav"
                sf.write(str(path), x, rate, subtype="PCM_16")
                weights, take = lipsync_weights(path, text=rec["text"])
            alone = curves.curves_from_phonemes(take.phonemes, duration, FPS, mouth_only=True)
            closures = quality.bilabial_closures(take.phonemes, weights, FPS)
            label = "none" if snr is None else f"{snr:.0f} dB"
            print(f"{rec['name']:18s} {label:>6s} {len(spans):6d} {highest_in(weights, spans, FPS):15.3f} "
                  f"{highest_in(alone, spans, FPS):12.3f} {sum(c[3] for c in closures):>7d}/{len(closures):<4d}")


def run(args) -> int:
    import soundfile as sf

    from backend.engines.phonetic import quality

    recordings = peer_recordings(Path(args.folder))
    if not recordings:
        print(f"no recordings with peer curves in {args.folder}")
        return 1
    print(f"phonetic lipsync (no transcript) vs NeuroSync, {len(recordings)} recordings, {FPS:g} fps, "
          f"shift within +-{MAX_SHIFT} frames (positive: ours later)")
    table = peer_table(recordings)
    print(f"{'channel':16s} " + " ".join(f"{r['name'][:14]:>26s}" for r in recordings) + f" {'mean r':>7s}")
    print(f"{'':16s} " + " ".join(f"{'r':>7s} {'shift':>5s} {'ratio':>5s} {'peak':>5s}" for _ in recordings))
    for name, rows in table.items():
        cells = " ".join(f"{c['r']:7.2f} {c['shift']:5d} {c['ratio']:5.2f} {c['ours']:5.2f}" for c in rows)
        print(f"{name:16s} {cells} {np.mean([c['r'] for c in rows]):7.2f}")
    print("\nwith room noise (30 dB below speech), clicks and 1 s of noise before the speech:")
    print(f"{'recording':24s} {'silent frames':>13s} {'max mouth in silence':>20s} {'max in lead-in':>14s} {'p/b/m closed':>12s}")
    for rec in recordings:
        samples, rate = sf.read(str(rec["audio"]), dtype="float32")
        x = noisy(samples, rate)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "noisy.wav"
            sf.write(str(path), x, rate, subtype="PCM_16")
            weights, take = lipsync_weights(path)
        s = silence_check(weights, x, rate, FPS)
        closures = quality.bilabial_closures(take.phonemes, weights, FPS)
        closed = f"{sum(c[3] for c in closures)}/{len(closures)}"
        print(f"{rec['name']:24s} {s['silent_frames']:13d} {s['max_in_silence']:20.3f} {s['max_in_lead']:14.3f} {closed:>12s}")
    aligned_silence()
    return 0
