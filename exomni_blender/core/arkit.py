"""The ARKit-52 blendshape channels: the one list every part of the product uses.

Canonical order is Apple's ARFaceAnchor order as exported by Live Link Face and by
Ex-Omni's blendshape head (alphabetical, browDownLeft ... tongueOut).
"""

ARKIT_52 = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
assert len(ARKIT_52) == 52 and len(set(ARKIT_52)) == 52

INDEX = {name: i for i, name in enumerate(ARKIT_52)}

# Channels an animator usually means by "the mouth" (mouth-only takes, plots, sync checks).
MOUTH_CHANNELS = tuple(n for n in ARKIT_52 if n.startswith(("jaw", "mouth", "cheekPuff", "tongue")))


def index(name: str) -> int:
    """Index of an ARKit channel, accepting any case (Live Link Face writes PascalCase)."""
    try:
        return INDEX[name]
    except KeyError:
        pass
    lowered = {n.lower(): i for n, i in INDEX.items()}
    try:
        return lowered[name.lower()]
    except KeyError:
        raise KeyError(f"{name!r} is not an ARKit-52 channel name") from None

# Audio2Face's own 46-pose names (its default blendshape solve) onto ARKit channels, with a
# gain. Poses that have no left/right split in A2F drive both sides.
A2F_POSES = {
    "browLowerL": [("browDownLeft", 1.0)], "browLowerR": [("browDownRight", 1.0)],
    "innerBrowRaiserL": [("browInnerUp", 1.0)], "innerBrowRaiserR": [("browInnerUp", 1.0)],
    "outerBrowRaiserL": [("browOuterUpLeft", 1.0)], "outerBrowRaiserR": [("browOuterUpRight", 1.0)],
    "eyesLookLeft": [("eyeLookOutLeft", 1.0), ("eyeLookInRight", 1.0)],
    "eyesLookRight": [("eyeLookInLeft", 1.0), ("eyeLookOutRight", 1.0)],
    "eyesLookUp": [("eyeLookUpLeft", 1.0), ("eyeLookUpRight", 1.0)],
    "eyesLookDown": [("eyeLookDownLeft", 1.0), ("eyeLookDownRight", 1.0)],
    "eyesCloseL": [("eyeBlinkLeft", 1.0)], "eyesCloseR": [("eyeBlinkRight", 1.0)],
    "eyesUpperLidRaiserL": [("eyeWideLeft", 1.0)], "eyesUpperLidRaiserR": [("eyeWideRight", 1.0)],
    "squintL": [("eyeSquintLeft", 1.0)], "squintR": [("eyeSquintRight", 1.0)],
    "cheekRaiserL": [("cheekSquintLeft", 1.0)], "cheekRaiserR": [("cheekSquintRight", 1.0)],
    "cheekPuffL": [("cheekPuff", 1.0)], "cheekPuffR": [("cheekPuff", 1.0)],
    "noseWrinklerL": [("noseSneerLeft", 1.0)], "noseWrinklerR": [("noseSneerRight", 1.0)],
    "jawDrop": [("jawOpen", 1.0)], "jawDropLipTowards": [("mouthClose", 1.0)],
    "jawThrust": [("jawForward", 1.0)], "jawSlideLeft": [("jawLeft", 1.0)], "jawSlideRight": [("jawRight", 1.0)],
    "mouthSlideLeft": [("mouthLeft", 1.0)], "mouthSlideRight": [("mouthRight", 1.0)],
    "dimplerL": [("mouthDimpleLeft", 1.0)], "dimplerR": [("mouthDimpleRight", 1.0)],
    "lipCornerPullerL": [("mouthSmileLeft", 1.0)], "lipCornerPullerR": [("mouthSmileRight", 1.0)],
    "lipCornerDepressorL": [("mouthFrownLeft", 1.0)], "lipCornerDepressorR": [("mouthFrownRight", 1.0)],
    "lipStretcherL": [("mouthStretchLeft", 1.0)], "lipStretcherR": [("mouthStretchRight", 1.0)],
    "upperLipRaiserL": [("mouthUpperUpLeft", 1.0)], "upperLipRaiserR": [("mouthUpperUpRight", 1.0)],
    "lowerLipDepressorL": [("mouthLowerDownLeft", 1.0)], "lowerLipDepressorR": [("mouthLowerDownRight", 1.0)],
    "chinRaiser": [("mouthShrugLower", 1.0)], "lipPressor": [("mouthPressLeft", 1.0), ("mouthPressRight", 1.0)],
    "pucker": [("mouthPucker", 1.0)], "funneler": [("mouthFunnel", 1.0)],
    "lipSuck": [("mouthRollLower", 1.0), ("mouthRollUpper", 1.0)],
}
