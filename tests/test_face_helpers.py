"""The shared face helpers: the lip gap and intensity scaling, one definition used by the engine,
the exchange formats and the dialogue path."""

import numpy as np

from exomni_blender.core import face
from exomni_blender.core.arkit import ARKIT_52, INDEX


def _frame(**channels):
    w = np.zeros((1, len(ARKIT_52)), np.float32)
    for name, value in channels.items():
        w[0, INDEX[name]] = value
    return w


def test_lip_gap_follows_the_jaw_the_lips_and_the_tuck():
    assert face.lip_gap(_frame())[0] == 0.0
    open_jaw = face.lip_gap(_frame(jawOpen=0.4))[0]
    assert open_jaw > face.LIPS_TOUCH
    # mouthClose holds the lips together against an open jaw (a closed-mouth jaw drop).
    assert face.lips_closed(_frame(jawOpen=0.3, mouthClose=0.3))[0]
    # Lowering the lower lip opens the gap further; a lower lip tucked under the teeth closes it.
    assert face.lip_gap(_frame(jawOpen=0.4, mouthLowerDownLeft=0.5, mouthLowerDownRight=0.5))[0] > open_jaw
    assert face.lip_gap(_frame(jawOpen=0.1, mouthRollLower=0.6))[0] < face.lip_gap(_frame(jawOpen=0.1))[0]


def test_engine_and_exchange_use_the_one_lip_gap():
    from backend.engines.phonetic import visemes
    from exomni_blender.core.exchange import rhubarb

    assert visemes.lip_gap is face.lip_gap and visemes.lips_closed is face.lips_closed
    assert rhubarb.lip_gap is face.lip_gap


def test_intensity_scales_expression_but_not_blinks():
    w = _frame(jawOpen=0.4, eyeBlinkLeft=0.8, browInnerUp=0.7)
    louder = face.scale_intensity(w, 1.5)
    assert louder[0, INDEX["jawOpen"]] == np.float32(0.6)
    assert louder[0, INDEX["browInnerUp"]] == 1.0  # clipped to the channel's range
    assert louder[0, INDEX["eyeBlinkLeft"]] == np.float32(0.8)
    softer = face.scale_intensity(w, 0.5)
    assert softer[0, INDEX["jawOpen"]] == np.float32(0.2) and softer.dtype == np.float32
    assert np.array_equal(face.scale_intensity(w, 1.0), w)
