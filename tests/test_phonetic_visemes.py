"""The viseme model and face layers on hand-made phoneme timelines (pure logic, no eSpeak)."""

import numpy as np
import pytest

from exomni_blender.core import face
from exomni_blender.core.arkit import ARKIT_52, INDEX, MOUTH_CHANNELS
from exomni_blender.core.take import Phoneme
from backend.engines.phonetic import expression, ipa, quality, visemes
from backend.engines.phonetic.curves import curves_from_phonemes

MOUTH = [INDEX[n] for n in MOUTH_CHANNELS]
FACE = [i for i, n in enumerate(ARKIT_52) if n not in MOUTH_CHANNELS]


def timeline(spec, start=0.3, pause_after=0.4):
    """[(symbol, ms), ...] laid end to end; "_" is a pause."""
    out, t = [], start
    for symbol, ms in spec:
        if symbol != "_":
            out.append((symbol, t, t + ms / 1000.0))
        t += ms / 1000.0
    return out, t + pause_after


def at(weights, fps, t, name):
    return float(weights[int(round(t * fps)), INDEX[name]])


def mid(p):
    return 0.5 * (p[1] + p[2])


def test_output_shape_range_and_frame_times():
    ph, dur = timeline([("h", 60), ("ˈɛ", 120), ("l", 60), ("oʊ", 200)])
    for fps in (24, 30, 59.94, 120):
        w = curves_from_phonemes(ph, dur, fps)
        assert w.dtype == np.float32 and w.shape == (int(round(dur * fps)), 52)
        assert w.min() >= 0 and w.max() <= 1


def test_curves_are_sampled_from_the_continuous_model_not_resampled():
    """60 fps curves taken every other frame are the 30 fps curves (no sound here shorter than a frame)."""
    ph, dur = timeline([("m", 80), ("ˈaɪ", 180), ("f", 90), ("ɑː", 150), ("ð", 70), ("ɚ", 120)])
    w30 = curves_from_phonemes(ph, dur, 30, mouth_only=True)
    w60 = curves_from_phonemes(ph, dur, 60, mouth_only=True)
    n = min(w30.shape[0], w60[::2].shape[0])
    assert np.allclose(w30[:n], w60[::2][:n], atol=1e-6)


@pytest.mark.parametrize("fps", [24, 30, 60])
@pytest.mark.parametrize("ms", [20, 35, 60, 100])
@pytest.mark.parametrize("consonant", ["p", "b", "m"])
def test_lips_close_on_bilabials_even_when_fast(fps, ms, consonant):
    ph, dur = timeline([("ˈɑː", 150), (consonant, ms), ("æ", 140)])
    w = curves_from_phonemes(ph, dur, fps, mouth_only=True)
    closures = quality.bilabial_closures(ph, w, fps)
    assert len(closures) == 1 and closures[0][3], closures
    # ...and open wide on the vowels either side
    gap = visemes.lip_gap(w)
    assert gap[int(round(mid(ph[0]) * fps))] > 0.3 and gap[int(round(mid(ph[2]) * fps))] > 0.3


def test_bilabial_closure_uses_mouth_close_against_an_open_jaw():
    ph, dur = timeline([("ˈɑː", 120), ("b", 60), ("ɑː", 120)])
    w = curves_from_phonemes(ph, dur, 60, mouth_only=True)
    t = mid(ph[1])
    assert at(w, 60, t, "jawOpen") > 0.1  # the jaw stays partly open between open vowels
    assert at(w, 60, t, "mouthClose") > 0.9 * at(w, 60, t, "jawOpen")
    assert at(w, 60, t, "mouthPressLeft") > 0.15


def test_labiodentals_tuck_the_lower_lip():
    ph, dur = timeline([("ˈɑː", 150), ("f", 90), ("ɑː", 150), ("v", 90), ("ɑː", 150)])
    w = curves_from_phonemes(ph, dur, 30, mouth_only=True)
    for p in (ph[1], ph[3]):
        assert at(w, 30, mid(p), "mouthRollLower") > 0.4
        assert at(w, 30, mid(p), "mouthLowerDownLeft") < 0.05
        assert at(w, 30, mid(p), "mouthUpperUpLeft") > 0.1
    assert at(w, 30, mid(ph[0]), "mouthRollLower") < 0.05


def test_vowels_set_jaw_rounding_and_spread():
    def shape(v):
        ph, dur = timeline([(v, 250)])
        w = curves_from_phonemes(ph, dur, 30, mouth_only=True)
        return {n: at(w, 30, mid(ph[0]), n) for n in ("jawOpen", "mouthPucker", "mouthFunnel", "mouthStretchLeft")}

    a, e, i, u, o = shape("ˈɑː"), shape("ˈɛ"), shape("ˈiː"), shape("ˈuː"), shape("ˈɔː")
    assert a["jawOpen"] > e["jawOpen"] > i["jawOpen"]  # the jaw follows vowel openness
    assert u["mouthPucker"] > 0.4 and u["mouthStretchLeft"] < 0.02  # close rounded: pucker
    assert o["mouthFunnel"] > o["mouthPucker"] and o["mouthFunnel"] > 0.25  # open rounded: funnel
    assert i["mouthStretchLeft"] > 0.2 and i["mouthPucker"] < 0.02  # spread
    assert a["mouthPucker"] < 0.02


def test_consonant_shapes():
    ph, dur = timeline([("ˈɑː", 150), ("θ", 90), ("ɑː", 150), ("ʃ", 110), ("ɑː", 150), ("w", 90), ("ɑː", 150),
                        ("s", 100), ("ɑː", 150)])
    w = curves_from_phonemes(ph, dur, 60, mouth_only=True)
    assert at(w, 60, mid(ph[1]), "tongueOut") > 0.2 and at(w, 60, mid(ph[0]), "tongueOut") < 0.02
    assert at(w, 60, mid(ph[3]), "mouthFunnel") > 0.35
    assert at(w, 60, mid(ph[5]), "mouthPucker") > 0.6
    assert at(w, 60, mid(ph[7]), "jawOpen") < 0.12  # sibilants bring the teeth together
    assert at(w, 60, mid(ph[7]), "jawOpen") < 0.4 * at(w, 60, mid(ph[8]), "jawOpen")


def test_rounding_is_anticipated_through_consonants():
    """In "stew" the lips round during s and t, ahead of the vowel; in "steep" they do not."""
    fps = 100
    stew, dur = timeline([("ə", 150), ("s", 90), ("t", 60), ("ˈuː", 200)])
    steep, _ = timeline([("ə", 150), ("s", 90), ("t", 60), ("ˈiː", 200)])
    w_u = curves_from_phonemes(stew, dur, fps, mouth_only=True)
    w_i = curves_from_phonemes(steep, dur, fps, mouth_only=True)
    onset = stew[3][1]
    before = onset - 0.08
    assert at(w_u, fps, before, "mouthPucker") > 0.2
    assert at(w_i, fps, before, "mouthPucker") < 0.02
    # the movement toward the vowel starts 60-200 ms ahead of its sound
    pucker = w_u[:, INDEX["mouthPucker"]]
    target = at(w_u, fps, mid(stew[3]), "mouthPucker")
    start = np.argmax(pucker > 0.1 * target) / fps
    assert 0.06 <= onset - start <= 0.25


def test_jaw_moves_ahead_of_the_sound():
    fps = 100
    ph, dur = timeline([("ˈɑː", 200), ("t", 70), ("ɑː", 200)])
    w = curves_from_phonemes(ph, dur, fps, mouth_only=True)
    jaw = w[:, INDEX["jawOpen"]]
    # closing for /t/ begins before the /t/ and reopening before the vowel sound returns
    t_start, t_end = ph[1][1], ph[1][2]
    assert jaw[int((t_start - 0.04) * fps)] < jaw[int((t_start - 0.1) * fps)] - 0.02
    low = int(np.argmin(jaw[int(t_start * fps) - 10:int(t_end * fps) + 10])) + int(t_start * fps) - 10
    assert low / fps < t_end


def test_mouth_rests_in_long_pauses_and_only_dips_in_short_ones():
    fps = 60
    ph, dur = timeline([("ˈɑː", 200), ("_", 400), ("ˈɑː", 200), ("_", 50), ("ɑː", 200)])
    w = curves_from_phonemes(ph, dur, fps, mouth_only=True)
    rests = quality.pause_rest(ph, w, fps, dur)
    assert [round(r[1] - r[0], 2) for r in rests] == [0.4, 0.4]  # the long pause and the end
    assert all(r[2] <= quality.REST_LEVEL for r in rests)
    # across the 50 ms gap the jaw stays well open
    assert at(w, fps, 0.5 * (ph[1][2] + ph[2][1]), "jawOpen") > 0.25
    # before the first sound the face is at rest too
    assert np.abs(w[0, MOUTH]).max() <= quality.REST_LEVEL


def test_mouth_only_leaves_the_rest_of_the_face_at_zero():
    ph, dur = timeline([("h", 60), ("ˈɛ", 120), ("l", 60), ("oʊ", 200), ("_", 300)] * 8)
    full = curves_from_phonemes(ph, dur, 30, seed=2)
    mouth = curves_from_phonemes(ph, dur, 30, seed=2, mouth_only=True)
    assert np.all(mouth[:, FACE] == 0)
    assert np.array_equal(full[:, MOUTH], mouth[:, MOUTH])
    assert full[:, INDEX["eyeBlinkLeft"]].max() > 0.8  # a blink in 7 seconds
    assert full[:, INDEX["browInnerUp"]].max() > 0.1  # a stressed vowel raised the brows


def test_same_seed_same_curves_other_seed_other_face():
    ph, dur = timeline([("h", 60), ("ˈɛ", 120), ("l", 60), ("oʊ", 200), ("_", 300)] * 8)
    a = curves_from_phonemes(ph, dur, 30, seed=11)
    b = curves_from_phonemes(ph, dur, 30, seed=11)
    c = curves_from_phonemes(ph, dur, 30, seed=12)
    assert np.array_equal(a, b)
    assert not np.array_equal(a[:, FACE], c[:, FACE])
    # the mouth differs only by the face's slight left/right imbalance
    assert np.abs(a[:, MOUTH] - c[:, MOUTH]).max() < 0.1


def test_input_forms_are_equivalent():
    ph, dur = timeline([("ˈɑː", 150), ("b", 60), ("ɑː", 150)])
    as_tuples = curves_from_phonemes(ph, dur, 30, seed=1)
    as_objects = curves_from_phonemes([Phoneme(*p) for p in reversed(ph)], dur, 30, seed=1)
    as_dicts = curves_from_phonemes([{"symbol": s, "start": a, "end": b} for s, a, b in ph], dur, 30, seed=1)
    assert np.array_equal(as_tuples, as_objects) and np.array_equal(as_tuples, as_dicts)


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="fps"):
        curves_from_phonemes([], 1.0, 0)
    with pytest.raises(ValueError, match="end"):
        curves_from_phonemes([("a", 0.5, 0.2)], 1.0, 30)
    with pytest.raises(ValueError, match="one per phoneme"):
        curves_from_phonemes([("a", 0.1, 0.2)], 1.0, 30, emphasis=[1, 0])


def test_no_phonemes_or_unknown_symbols():
    w = curves_from_phonemes([], 2.0, 30, mouth_only=True)
    assert w.shape == (60, 52) and not w.any()
    w = curves_from_phonemes([("ʘ", 0.2, 0.4), ("ǃ", 0.4, 0.5), ("a̰ˤ", 0.5, 0.7)], 1.0, 30)
    assert np.isfinite(w).all() and w[:, INDEX["jawOpen"]].max() > 0.1


def test_ipa_parsing():
    assert [s.name for _, s in ipa.sounds("ˈaɪɚ")] == ["a", "ɪ", "ɚ"]
    assert [s.kind for _, s in ipa.sounds("tʃ")] == ["postalveolar"]
    shares = [share for share, _ in ipa.sounds("ˈɑːɹ")]
    assert abs(sum(shares) - 1) < 1e-9 and shares[0] > shares[1]
    assert ipa.split_stress("ˌoʊ") == ("oʊ", 1)
    assert ipa.sounds("n̩")[0][1].kind == "alveolar"
    assert ipa.sounds("kʷ")[0][1].target[ipa.PUCKER] > 0.3  # labialised


# -- face layers ---------------------------------------------------------------------------------

def _sentences(n=12, seed=0):
    """A long made-up timeline: sentences of stressed and unstressed syllables with pauses."""
    rng = np.random.default_rng(seed)
    ph, t = [], 0.2
    for _ in range(n):
        for k in range(rng.integers(6, 14)):
            ph.append(("t", t, t + 0.06))
            v = "ˈæ" if k % 3 == 0 else "ə"
            ph.append((v, t + 0.06, t + 0.06 + (0.16 if k % 3 == 0 else 0.08)))
            t = ph[-1][2]
        t += 0.35
    return ph, t + 0.3


def test_blinks_are_natural():
    ph, dur = _sentences(40)
    ends = [g0 for g0, g1 in expression.pauses(ph, dur) if g1 - g0 >= expression.SENTENCE_PAUSE]
    onsets, doubles, at_end, chance = [], 0, 0, 0.0
    for seed in range(30):
        times = face.blink_onsets(dur, np.random.default_rng(seed), ends)
        gaps = np.diff(times)
        doubles += int(np.sum(gaps < 0.4))
        singles = gaps[gaps >= 0.4]
        onsets.extend(singles.tolist())
        at_end += sum(any(0 <= b - e <= 0.15 for e in ends) for b in times)
        chance += len(times) * len(ends) * 0.15 / dur
    onsets = np.array(onsets)
    assert np.all(onsets >= face.BLINK_REFRACTORY - 1e-9) and np.all(onsets <= 6.0 + 0.4)
    assert 2.0 <= np.median(onsets) <= 4.5
    assert 0 < doubles < 0.3 * len(onsets)
    assert at_end > 3 * chance  # blinks gather at sentence ends


def test_a_blink_closes_both_eyes_for_about_150_ms():
    fps = 120
    times = np.arange(0, 2, 1 / fps)
    lid = face.blink_curve(times, [0.5], fps, np.random.default_rng(0))
    closed = times[lid > 0.5]
    assert lid.max() > 0.9 and 0.06 <= closed[-1] - closed[0] <= 0.16
    assert (times[lid > 0.05][-1] - times[lid > 0.05][0]) < 0.25
    # at 24 fps the closed lid still lands on a frame
    f24 = np.arange(0, 2, 1 / 24)
    for onset in np.linspace(0.5, 0.54, 5):
        assert face.blink_curve(f24, [onset], 24, np.random.default_rng(0)).max() > 0.9


def test_brows_rise_on_stressed_syllables():
    ph, dur = _sentences(20)
    w = curves_from_phonemes(ph, dur, 50, seed=4)
    brow = w[:, INDEX["browInnerUp"]]
    times = np.arange(brow.size) / 50
    stressed = [p for p in ph if p[0].startswith("ˈ")]
    peaks = [i for i in range(1, brow.size - 1) if brow[i] > 0.1 and brow[i] >= brow[i - 1] and brow[i] > brow[i + 1]]
    assert len(peaks) >= 5
    for i in peaks:  # each raise is held over a stressed vowel (it peaks by the vowel's end)
        assert any(p[1] - 0.2 <= times[i] <= p[2] + 0.05 for p in stressed)
    # explicit emphasis moves the raises to the emphasised syllables
    emphasis = [1.0 if (k % 7 == 1) else 0.0 for k in range(len(ph))]
    w2 = curves_from_phonemes(ph, dur, 50, seed=4, emphasis=emphasis)
    chosen = [p for k, p in enumerate(ph) if emphasis[k] and ipa.is_vowel(p[0])]
    b2 = w2[:, INDEX["browInnerUp"]]
    for i in np.flatnonzero(b2 > 0.2):
        assert any(p[1] - 0.3 <= times[i] <= p[2] + 0.4 for p in chosen)


def test_gaze_drifts_and_jumps_a_little():
    ph, dur = _sentences(10)
    w = curves_from_phonemes(ph, dur, 60, seed=9)
    look = w[:, [INDEX[n] for n in ("eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeLookDownLeft")]]
    assert 0.02 < look.max() <= 0.25  # small
    steps = np.abs(np.diff(look, axis=0)).sum(axis=1)
    assert np.sum(steps > 0.01) >= 3  # saccades: quick jumps
    assert np.count_nonzero(steps) > 0.9 * steps.size  # and drift in between
    # both eyes look the same way
    assert np.allclose(w[:, INDEX["eyeLookOutLeft"]], w[:, INDEX["eyeLookInRight"]])


def test_stress_makes_the_eyes_blink_more_often():
    ph, dur = _sentences(40)
    ends = [g0 for g0, g1 in expression.pauses(ph, dur) if g1 - g0 >= expression.SENTENCE_PAUSE]
    calm = sum(len(face.blink_onsets(dur, np.random.default_rng(s), ends, arousal=0.0)) for s in range(20))
    tense = sum(len(face.blink_onsets(dur, np.random.default_rng(s), ends, arousal=1.0)) for s in range(20))
    assert tense > 1.3 * calm


def test_the_upper_lid_follows_the_eyes_down():
    ph, dur = _sentences(20)
    w = curves_from_phonemes(ph, dur, 30, seed=3)
    down = w[:, INDEX["eyeLookDownLeft"]]
    lid = w[:, INDEX["eyeBlinkLeft"]]
    looking_down = down > 0.03
    assert looking_down.any()
    assert np.all(lid[looking_down] >= 0.3 * down[looking_down] - 1e-6)

