"""Shape-key names as the rig families publish them, for building test heads (and checks of the lists).

These lists are written from each family's own naming (exports, bridges, SDK docs), independently of
the preset files, so detection tests do not just read the presets back. Other retarget tests import
them from here.
"""

import re
from pathlib import Path

from exomni_blender.core.arkit import ARKIT_52


def _lr(*stems, fmt="{}_{}"):
    return [fmt.format(s, side) for s in stems for side in ("L", "R")]


ARKIT = list(ARKIT_52)

# Reallusion CC3+/CC4 Extended facial profile on CC_Base_Body (tongue morphs live on another mesh).
CHARACTER_CREATOR = (
    _lr("Brow_Raise_Inner", "Brow_Raise_Outer", "Brow_Drop", "Brow_Compress",
        "Eye_Blink", "Eye_Squint", "Eye_Wide", "Ear_Up", "Nose_Sneer", "Nose_Nostril_Raise",
        "Nose_Nostril_Dilate", "Nose_Crease", "Nose_Nostril_Down", "Nose_Nostril_In",
        "Cheek_Raise", "Cheek_Suck", "Cheek_Puff", "Mouth_Smile", "Mouth_Smile_Sharp", "Mouth_Frown",
        "Mouth_Stretch", "Mouth_Dimple", "Mouth_Press", "Mouth_Tighten", "Mouth_Blow",
        "Mouth_Pucker_Up", "Mouth_Pucker_Down", "Mouth_Funnel_Up", "Mouth_Funnel_Down",
        "Mouth_Roll_In_Upper", "Mouth_Roll_In_Lower", "Mouth_Roll_Out_Upper", "Mouth_Roll_Out_Lower",
        "Mouth_Push_Upper", "Mouth_Push_Lower", "Mouth_Pull_Upper", "Mouth_Pull_Lower",
        "Mouth_Up_Upper", "Mouth_Down_Lower")
    + ["Eye_L_Look_L", "Eye_R_Look_L", "Eye_L_Look_R", "Eye_R_Look_R", "Eye_L_Look_Up", "Eye_R_Look_Up",
       "Eye_L_Look_Down", "Eye_R_Look_Down", "Nose_Tip_L", "Nose_Tip_R", "Nose_Tip_Up", "Nose_Tip_Down",
       "Mouth_Up", "Mouth_Down", "Mouth_L", "Mouth_R", "Mouth_Chin_Up", "Mouth_Close", "Mouth_Contract",
       "Mouth_Shrug_Upper", "Mouth_Shrug_Lower", "Jaw_Open", "Jaw_Forward", "Jaw_Backward", "Jaw_L", "Jaw_R",
       "Jaw_Up",
       "V_Open", "V_Explosive", "V_Dental_Lip", "V_Tight_O", "V_Tight", "V_Wide", "V_Affricate", "V_Lip_Open",
       "V_Tongue_up", "V_Tongue_Raise", "V_Tongue_Out", "V_Tongue_Narrow", "V_Tongue_Lower", "V_Tongue_Curl_U",
       "V_Tongue_Curl_D"]
)

# VRoid Studio face mesh (as imported from its VRM export).
VROID = (
    ["Fcl_ALL_Neutral", "Fcl_ALL_Angry", "Fcl_ALL_Fun", "Fcl_ALL_Joy", "Fcl_ALL_Sorrow", "Fcl_ALL_Surprised",
     "Fcl_BRW_Angry", "Fcl_BRW_Fun", "Fcl_BRW_Joy", "Fcl_BRW_Sorrow", "Fcl_BRW_Surprised",
     "Fcl_EYE_Natural", "Fcl_EYE_Angry", "Fcl_EYE_Close", "Fcl_EYE_Close_R", "Fcl_EYE_Close_L", "Fcl_EYE_Fun",
     "Fcl_EYE_Joy", "Fcl_EYE_Joy_R", "Fcl_EYE_Joy_L", "Fcl_EYE_Sorrow", "Fcl_EYE_Surprised", "Fcl_EYE_Spread",
     "Fcl_EYE_Iris_Hide", "Fcl_EYE_Highlight_Hide",
     "Fcl_MTH_Close", "Fcl_MTH_Up", "Fcl_MTH_Down", "Fcl_MTH_Angry", "Fcl_MTH_Small", "Fcl_MTH_Large",
     "Fcl_MTH_Neutral", "Fcl_MTH_Fun", "Fcl_MTH_Joy", "Fcl_MTH_Sorrow", "Fcl_MTH_Surprised", "Fcl_MTH_SkinFung",
     "Fcl_MTH_SkinFung_R", "Fcl_MTH_SkinFung_L", "Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O",
     "Fcl_HA_Hide", "Fcl_HA_Fung1", "Fcl_HA_Fung1_Low", "Fcl_HA_Fung1_Up", "Fcl_HA_Fung2", "Fcl_HA_Fung2_Low",
     "Fcl_HA_Fung2_Up", "Fcl_HA_Fung3", "Fcl_HA_Fung3_Up", "Fcl_HA_Fung3_Low", "Fcl_HA_Short", "Fcl_HA_Short_Up",
     "Fcl_HA_Short_Low"]
)

# VRM 1.0 preset expressions.
VRM = ["happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft",
       "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral"]

# Ready Player Me: ARKit, Oculus visemes and the default extras.
RPM_VISEMES = ["viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH",
               "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U"]
RPM_EXTRAS = ["mouthOpen", "mouthSmile", "eyesClosed", "eyesLookUp", "eyesLookDown"]
READY_PLAYER_ME = ARKIT + RPM_VISEMES + RPM_EXTRAS

# Daz Genesis 8.1 ARKit morphs as the Daz bridges export them.
DAZ_GENESIS = [
    "facs_jnt_EyeWideLeft", "facs_jnt_EyeWideRight", "facs_jnt_EyeBlinkLeft", "facs_jnt_EyeBlinkRight",
    "facs_bs_EyeSquintLeft_div2", "facs_bs_EyeSquintRight_div2", "facs_ctrl_EyeLookUpRight", "facs_ctrl_EyeLookUpLeft",
    "facs_ctrl_EyeLookOutRight", "facs_ctrl_EyeLookOutLeft", "facs_ctrl_EyeLookInRight", "facs_ctrl_EyeLookInLeft",
    "facs_ctrl_EyeLookDownRight", "facs_ctrl_EyeLookDownLeft", "facs_bs_NoseSneerRight_div2",
    "facs_bs_NoseSneerLeft_div2", "facs_jnt_JawForward", "facs_jnt_JawLeft", "facs_jnt_JawRight", "facs_jnt_JawOpen",
    "facs_bs_MouthClose_div2", "facs_bs_MouthFunnel_div2", "facs_bs_MouthPucker_div2", "facs_bs_MouthLeft_div2",
    "facs_bs_MouthRight_div2", "facs_bs_MouthSmileLeft_div2", "facs_bs_MouthSmileRight_div2",
    "facs_bs_MouthFrownLeft_div2", "facs_bs_MouthFrownRight_div2", "facs_bs_MouthDimpleLeft_div2",
    "facs_bs_MouthDimpleRight_div2", "facs_bs_MouthStretchLeft_div2", "facs_bs_MouthStretchRight_div2",
    "facs_bs_MouthRollLower_div2", "facs_bs_MouthRollUpper_div2", "facs_bs_MouthShrugLower_div2",
    "facs_bs_MouthShrugUpper_div2", "facs_bs_MouthPressLeft_div2", "facs_bs_MouthPressRight_div2",
    "facs_bs_MouthLowerDownLeft_div2", "facs_bs_MouthLowerDownRight_div2", "facs_bs_MouthUpperUpLeft_div2",
    "facs_bs_MouthUpperUpRight_div2", "facs_bs_BrowDownLeft_div2", "facs_bs_BrowDownRight_div2",
    "facs_ctrl_BrowInnerUp", "facs_bs_BrowOuterUpLeft_div2", "facs_bs_BrowOuterUpRight_div2", "facs_ctrl_CheekPuff",
    "facs_bs_CheekSquintLeft_div2", "facs_bs_CheekSquintRight_div2", "facs_bs_TongueOut",
]

# MetaHuman RigLogic expression controls (upper face, mouth, jaw, tongue).
_MH = "CTRL_expressions_"
METAHUMAN = [_MH + n for n in (
    _lr("browDown", "browLateral", "browRaiseIn", "browRaiseOuter", "eyeBlink", "eyeWiden", "eyeSquintInner",
        "eyeCheekRaise", "eyeLookUp", "eyeLookDown", "eyeLookLeft", "eyeLookRight", "noseWrinkle",
        "noseNostrilDilate", "mouthCheekSuck", "mouthCheekBlow", "mouthUpperLipRaise", "mouthLowerLipDepress",
        "mouthCornerPull", "mouthStretch", "mouthDimple", "mouthCornerDepress", "mouthLipsPress",
        "mouthSharpCornerPull", "mouthUpperLipRollIn", "mouthLowerLipRollIn", "mouthUpperLipRollOut",
        "mouthLowerLipRollOut", "mouthCornerUp", "mouthCornerDown", "jawChinCompress", fmt="{}{}")
    + [f"{stem}{half}{side}" for stem in ("mouthLipsPurse", "mouthLipsTowards", "mouthFunnel", "mouthLipsTogether",
                                          "mouthLipsTighten", "mouthLipsPush", "mouthLipsPull", "jawChinRaise")
       for half in "UD" for side in "LR"]
    + ["mouthLeft", "mouthRight", "mouthUp", "mouthDown", "jawOpen", "jawOpenExtreme", "jawLeft", "jawRight", "jawFwd",
       "jawBack", "tongueOut", "tongueIn", "tongueUp", "tongueDown", "tongueLeft", "tongueRight", "tongueWide",
       "tongueNarrow", "tongueRoll", "tongueTipUp", "tongueTipDown"])]

FAMILIES = {
    "arkit": ARKIT,
    "character_creator": CHARACTER_CREATOR,
    "vroid": VROID,
    "vrm": VRM,
    "ready_player_me": READY_PLAYER_ME,
    "daz_genesis": DAZ_GENESIS,
    "metahuman": METAHUMAN,
}

UNRELATED = ["Fat", "Thin", "Muscular", "Old", "Key 1", "Key 2", "Tall", "Belly"]


RIGS = Path(__file__).parent / "data" / "rigs"


def _rig_file(name: str) -> list:
    """Key names of a real rig, in file order (tests/data/rigs; sources in tests/data/README.md)."""
    return [line.strip() for line in (RIGS / name).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def _daz_arkit(name: str) -> str:
    """The ARKit key a Daz bridge morph carries: facs_<bs|jnt|ctrl>_<PascalCase key>[_div2]."""
    match = re.fullmatch(r"facs_(?:bs|jnt|ctrl)_([A-Z][A-Za-z]+?)(?:_div2)?", name)
    assert match, f"{name} is not a Daz bridge morph name"
    return match.group(1)[0].lower() + match.group(1)[1:]


def test_lists_agree_with_real_exports():
    """The hand-written lists against rig files from outside: a key misspelt or left out here would
    let detection tests pass on names no real rig has."""
    for name, names in FAMILIES.items():
        assert len(set(names)) == len(names), f"{name} repeats a key"
    rpm = _rig_file("rpm_wolf3d_head_keys.txt")  # a real Ready Player Me head: 15 visemes, then ARKit
    assert len(rpm) == 67
    assert RPM_VISEMES == rpm[:15]
    assert sorted(ARKIT) == sorted(rpm[15:])
    assert set(READY_PLAYER_ME) - set(RPM_EXTRAS) == set(rpm) and not set(RPM_EXTRAS) & set(rpm)
    # the Daz bridge wraps each of the 52 ARKit keys once
    assert sorted(_daz_arkit(n) for n in DAZ_GENESIS) == sorted(rpm[15:])
    # CC Extended refines CC4 Standard: each Standard expression key is there, or split there into
    # keys named after it (sides, upper and lower halves); the Standard profile's last 15 are visemes
    standard = _rig_file("cc4_standard_keys.txt")
    assert len(standard) == 68
    for key in standard[:-15]:
        split = [k for k in CHARACTER_CREATOR if k.startswith(key + "_")]
        assert key in CHARACTER_CREATOR or len(split) >= 2, f"CC4 Standard key {key} is missing from the Extended list"


def test_lists_follow_their_familys_naming():
    """The families without a file here, by their published naming."""
    assert all(re.fullmatch(r"Fcl_(ALL|BRW|EYE|MTH|HA)_[A-Za-z0-9_]+", n) for n in VROID), VROID
    assert all(n.startswith("CTRL_expressions_") for n in METAHUMAN)
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", n) for n in VRM), VRM  # VRM 1.0 presets are lowerCamelCase
    assert not set(UNRELATED) & {k for names in FAMILIES.values() for k in names}
