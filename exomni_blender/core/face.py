"""Face helpers shared by the engines, the exchange formats and the Blender side: one definition each
(how far apart the lips are in a frame of ARKit weights, when the eyes blink, how intensity scales a
performance), so a formula never drifts between two copies."""

from __future__ import annotations

import numpy as np

from .arkit import ARKIT_52, INDEX

# -- lip gap --------------------------------------------------------------------------------------

LIPS_TOUCH = 0.05  # a lip gap at or below this: the lips touch


def jaw_parting(weights: np.ndarray) -> np.ndarray:
    """Per frame, how far the jaw parts the lips: jawOpen less what mouthClose holds together."""
    w = np.asarray(weights, np.float64)
    return np.clip(w[:, INDEX["jawOpen"]] - w[:, INDEX["mouthClose"]], 0.0, None)


def lip_gap(weights: np.ndarray) -> np.ndarray:
    """How far apart the lips are per frame, from ARKit weights [frames, 52] (0 = lips touching).

    The jaw parts the lips unless mouthClose holds them together; lowering the lower lip, raising
    the upper lip and funnelling open them further; a lower lip rolled in under the upper teeth
    (f, v) closes the gap again.
    """
    w = np.asarray(weights, np.float64)
    lower = 0.5 * (w[:, INDEX["mouthLowerDownLeft"]] + w[:, INDEX["mouthLowerDownRight"]])
    upper = 0.5 * (w[:, INDEX["mouthUpperUpLeft"]] + w[:, INDEX["mouthUpperUpRight"]])
    tucked = np.clip(w[:, INDEX["mouthRollLower"]] / 0.5, 0.0, 1.0)
    return (jaw_parting(w) + 0.5 * lower + 0.5 * upper + 0.3 * w[:, INDEX["mouthFunnel"]]) * (1.0 - 0.8 * tucked)


def lips_closed(weights: np.ndarray) -> np.ndarray:
    """Per frame: the lips touch (lip gap at most LIPS_TOUCH)."""
    return lip_gap(weights) <= LIPS_TOUCH


# -- intensity ------------------------------------------------------------------------------------

# Blinking is not louder when shouting: intensity leaves the eyelids alone.
_UNSCALED = np.array([name.startswith("eyeBlink") for name in ARKIT_52])


def scale_intensity(weights: np.ndarray, intensity: float) -> np.ndarray:
    """ARKit-52 weights [frames, 52] scaled around rest (all zeros) by a delivery's intensity."""
    w = np.asarray(weights, np.float32)
    if abs(intensity - 1.0) < 1e-6:
        return w
    scale = np.where(_UNSCALED, 1.0, float(intensity)).astype(np.float32)
    return np.clip(w * scale, 0.0, 1.0).astype(np.float32)
