"""Real rigs nobody here made: a Character Creator 4 Standard export, a Ready Player Me head (ARKit and
visemes) and viseme-only avatars, driven by a real eSpeak NG take (its audio, phonemes and curves)."""

from pathlib import Path

import numpy as np
import pytest

from exomni_blender.core import retarget
from exomni_blender.core.arkit import ARKIT_52, INDEX
from exomni_blender.core.retarget import VISEMES, phoneme_visemes, rig_weights, viseme_curves
from exomni_blender.core.take import Take

RIGS = Path(__file__).parent / "data" / "rigs"
LINE = "Bob bought a pink balloon. My mom made maple biscuits by the pool."
MOUTH = [c for c in ARKIT_52 if c.startswith(("mouth", "jaw"))]


def rig_keys(name: str) -> list:
    return [line.strip() for line in (RIGS / name).read_text().splitlines()
            if line.strip() and not line.startswith("#")]


CC4_STANDARD = rig_keys("cc4_standard_keys.txt")
RPM_HEAD = rig_keys("rpm_wolf3d_head_keys.txt")
RPM_VISEMES_ONLY = [k for k in RPM_HEAD if k.startswith("viseme_")]  # an avatar exported with visemes only
CC4_VISEMES_ONLY = CC4_STANDARD[-15:]


@pytest.fixture(scope="module")
def presets():
    return retarget.load_presets(include_user=False)


@pytest.fixture(scope="module", params=[1.0, 1.6], ids=["normal rate", "fast"])
def spoken(request):
    """A take as the phonetic engine makes it: eSpeak NG phonemes and coarticulated ARKit mouth curves."""
    espeak = pytest.importorskip("backend.engines.phonetic.espeak")
    from backend.engines.phonetic.visemes import mouth_curves

    synthesis = espeak.synthesize(LINE, rate=request.param)
    phonemes = [(p.symbol, p.start, p.end) for p in synthesis.phonemes]
    weights = mouth_curves(phonemes, synthesis.duration, 30.0)
    return Take(fps=30.0, weights=weights, text=LINE, phonemes=[dict(symbol=s, start=a, end=b) for s, a, b in phonemes])


def closed_share(curve: np.ndarray, take: Take) -> float:
    """Share of the take's p, b and m where the curve reaches 0.7 (frames inside the sound, else the nearest)."""
    closures = [p for p in take.phonemes if phoneme_visemes(p.symbol) == ["PP"]]
    assert len(closures) >= 10, "the line must have p, b and m to check"
    closed = 0
    for p in closures:
        frames = list(range(int(np.ceil(p.start * take.fps)), int(np.floor(p.end * take.fps)) + 1))
        frames = frames or [int(round(0.5 * (p.start + p.end) * take.fps))]
        closed += max(curve[min(f, len(curve) - 1)] for f in frames) >= 0.7
    return closed / len(closures)


# -- Character Creator 4 Standard profile -----------------------------------------------------------

def test_a_cc4_standard_export_is_character_creator_and_every_moving_mouth_channel_lands(presets, spoken):
    detection = retarget.detect(CC4_STANDARD, presets)
    assert detection.preset.id == "character_creator", detection.lines()
    curves, report = rig_weights(spoken, detection.preset, CC4_STANDARD)
    moving = [c for c in MOUTH if spoken.weights[:, INDEX[c]].max() > 1e-3]
    assert {"mouthFunnel", "mouthPucker", "mouthRollLower"} <= set(moving)
    assert not set(report.lost_motion) & set(moving), report.summary()
    for key, channel in (("Mouth_Funnel", "mouthFunnel"), ("Mouth_Pucker", "mouthPucker"),
                         ("Mouth_Roll_In_Lower", "mouthRollLower"), ("Mouth_Roll_In_Upper", "mouthRollUpper")):
        np.testing.assert_allclose(curves[key], spoken.weights[:, INDEX[channel]], atol=1e-6)
    # The head has expression keys, so its visemes are not driven as well (the mouth would move twice).
    assert "B_M_P" not in curves and "W_OO" not in curves


def test_cc4_direct_visemes_alone_close_the_lips_from_the_phonemes(presets, spoken):
    preset = retarget.detect(CC4_VISEMES_ONLY, presets).preset
    assert preset.id == "character_creator"
    curves, report = rig_weights(spoken, preset, CC4_VISEMES_ONLY)
    assert report.source == "phonemes"
    assert closed_share(curves["B_M_P"], spoken) >= 0.9


# -- Ready Player Me -------------------------------------------------------------------------------

def test_a_ready_player_me_head_with_arkit_and_visemes_is_arkit_and_its_visemes_wait_to_be_asked(presets, spoken):
    detection = retarget.detect(RPM_HEAD, presets)
    assert detection.preset.id == "arkit" and not detection.warnings, detection.lines()
    curves, report = rig_weights(spoken, detection.preset, RPM_HEAD)
    assert set(curves) == set(ARKIT_52) and report.source == "curves"
    asked, report = rig_weights(spoken, detection.preset, RPM_HEAD, use_visemes=True)
    assert set(asked) == set(ARKIT_52) | set(RPM_VISEMES_ONLY) and report.source == "phonemes"
    assert closed_share(asked["viseme_PP"], spoken) >= 0.9


def test_a_viseme_only_avatar_closes_its_lips_with_few_visemes_at_a_time(presets, spoken):
    preset = retarget.detect(RPM_VISEMES_ONLY, presets).preset
    assert preset.id == "ready_player_me"
    curves, report = rig_weights(spoken, preset, RPM_VISEMES_ONLY)
    assert report.source == "phonemes" and set(curves) == set(RPM_VISEMES_ONLY)
    assert closed_share(curves["viseme_PP"], spoken) >= 0.9
    matrix = np.stack([curves[k] for k in RPM_VISEMES_ONLY], axis=1)
    assert (matrix > 0.1).sum(axis=1).max() <= 3
    # The ARKit mixes, as keyed before, do neither: that is why the phonemes drive the visemes.
    mixed, report = rig_weights(spoken, preset, RPM_VISEMES_ONLY, use_visemes=False)
    assert report.source == "curves"
    assert closed_share(mixed["viseme_PP"], spoken) < 0.5


def test_without_phonemes_the_visemes_come_from_the_curves(presets, spoken):
    preset = retarget.find_preset("ready_player_me", presets)
    bare = Take(fps=spoken.fps, weights=spoken.weights)
    curves, report = rig_weights(bare, preset, RPM_VISEMES_ONLY)
    expected, _ = preset.targets(RPM_VISEMES_ONLY, bare.weights)
    assert report.source == "curves" and set(curves) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(curves[key], expected[key])


# -- the viseme model ------------------------------------------------------------------------------

@pytest.mark.parametrize("symbol, classes", [
    ("b", ["PP"]), ("ˈɑː", ["aa"]), ("tʃ", ["CH"]), ("dʒ", ["CH"]), ("aɪ", ["aa", "I"]), ("ɹ", ["RR"]),
    ("f", ["FF"]), ("ð", ["TH"]), ("h", [None]), ("M", ["PP"]), ("AY1", ["aa", "I"]), ("sil", ["sil"]),
])
def test_phoneme_symbols_pick_their_visemes(symbol, classes):
    assert phoneme_visemes(symbol) == classes


def test_viseme_curves_rest_in_pauses_and_add_up_to_one():
    phonemes = [("m", 0.5, 0.6), ("ˈɑː", 0.6, 0.9), ("p", 1.6, 1.7), ("u", 1.7, 2.0)]
    curves = viseme_curves(phonemes, 90, 30.0)
    matrix = np.stack([curves[c] for c in VISEMES], axis=1)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-3)
    assert curves["sil"][0] > 0.99 and curves["sil"][38] > 0.9 and curves["sil"][89] > 0.99  # before, between, after
    assert curves["PP"][17] > 0.8 and curves["aa"][23] > 0.6 and curves["U"][56] > 0.6
    with pytest.raises(ValueError, match="frames > 0"):
        viseme_curves(phonemes, 0, 30.0)
