"""Retarget presets, the name matcher, curves through each preset, and detection (pure logic, no bpy)."""

import random
import tomllib

import numpy as np
import pytest

from exomni_blender.core.arkit import ARKIT_52, INDEX
from exomni_blender.core.retarget import (EXACT, FOLDED, STRIPPED, Preset, PresetError, RigNames, Target, detect,
                                     detect_preset, dumps_toml, find_preset, load_preset, load_presets, name_key,
                                     propose_preset, save_user_preset)
from test_retarget_rig_names import (ARKIT, CHARACTER_CREATOR, DAZ_GENESIS, FAMILIES, METAHUMAN, READY_PLAYER_ME,
                                     RPM_EXTRAS, RPM_VISEMES, UNRELATED, VRM, VROID)

FULL_FACE_FAMILIES = ("arkit", "character_creator", "daz_genesis", "metahuman", "ready_player_me")


@pytest.fixture(scope="module")
def presets():
    return {p.id: p for p in load_presets(include_user=False)}


def pose(**channels):
    """One frame of ARKit weights with the given channels set."""
    w = np.zeros((1, 52), np.float32)
    for name, value in channels.items():
        w[0, INDEX[name]] = value
    return w


def random_take(frames=40, seed=0):
    return np.random.default_rng(seed).random((frames, 52)).astype(np.float32)


# -- the shipped presets ---------------------------------------------------------------------------

def test_every_builtin_preset_loads_with_its_documented_families(presets):
    assert set(presets) >= {"arkit", "character_creator", "vroid", "vrm", "ready_player_me", "daz_genesis",
                            "metahuman"}
    for p in presets.values():
        assert p.name and p.signature and not p.user
        assert all(t.key and t.mix for t in p.entries)


@pytest.mark.parametrize("family", FULL_FACE_FAMILIES)
def test_full_face_presets_land_every_channel_on_their_complete_rig(presets, family):
    report = presets[family].coverage(FAMILIES[family])
    assert report.unmapped_channels == [], report.summary()
    assert report.channel_coverage == 1.0


def test_viseme_only_families_land_the_mouth_eyes_and_brows(presets):
    for family in ("vroid", "vrm"):
        landed = set(presets[family].coverage(FAMILIES[family]).channels_landed)
        assert {"jawOpen", "mouthFunnel", "mouthPucker", "eyeBlinkLeft", "eyeBlinkRight"} <= landed, family


def test_find_preset_by_id_name_alias_or_file(presets, tmp_path):
    all_presets = list(presets.values())
    assert find_preset("character_creator", all_presets).id == "character_creator"
    assert find_preset("cc4", all_presets).id == "character_creator"
    assert find_preset("ready player me", all_presets).id == "ready_player_me"
    with pytest.raises(PresetError, match="available: .*arkit"):
        find_preset("no_such_rig", all_presets)
    path = tmp_path / "mine.toml"
    path.write_text('name = "Mine"\n[[target]]\nkey = "Open"\nfrom = "jawOpen"\n')
    assert find_preset(str(path)).name == "Mine"


# -- the preset format -----------------------------------------------------------------------------

def parse(text: str) -> Preset:
    return Preset.from_dict(tomllib.loads(text), id="t")


def test_side_placeholders_expand_one_entry_into_both_sides():
    p = parse('name = "x"\n[[target]]\nkey = "Eye_{S}_Look_{O}"\nfrom = "eyeLookIn{Side}"\n'
              '[[target]]\nkeys = ["Pucker_Up_{S}", "Pucker_Down_{S}"]\nfrom = "mouthPucker"\n')
    mapping = {t.key: t.mix for t in p.entries}
    assert mapping["Eye_L_Look_R"] == (("eyeLookInLeft", 1.0),)
    assert mapping["Eye_R_Look_L"] == (("eyeLookInRight", 1.0),)
    assert {k for k in mapping if k.startswith("Pucker")} == {"Pucker_Up_L", "Pucker_Up_R", "Pucker_Down_L",
                                                               "Pucker_Down_R"}


def test_both_placeholder_averages_the_two_sides():
    p = parse('name = "x"\n[[target]]\nkey = "smile"\nmix = { "mouthSmile{Both}" = 1.0 }\n')
    curves, _ = p.targets(["smile"], pose(mouthSmileLeft=0.8, mouthSmileRight=0.2))
    assert curves["smile"][0] == pytest.approx(0.5)


@pytest.mark.parametrize("text, message", [
    ('name = "x"\n[[target]]\nkey = "k"\nfrom = "jawOpn"\n', "did you mean 'jawOpen'"),
    ('name = "x"\n[[target]]\nkey = "k"\nfrom = "jawOpen"\ngian = 2\n', "did you mean 'gain'"),
    ('name = "x"\n[[target]]\nkey = "k"\nkeys = ["a"]\nfrom = "jawOpen"\n', "exactly one of key"),
    ('name = "x"\n[[target]]\nkey = "k"\n', "exactly one of from"),
    ('name = "x"\n[[target]]\nkey = "k"\nfrom = "mouthSmile{Side}"\n', "need one in the key"),
    ('name = "x"\n[[target]]\nkey = "k"\nfrom = "jawOpen"\n[[target]]\nkey = "k"\nfrom = "jawLeft"\n',
     "merge them"),
    ('name = "x"\n[[target]]\nkey = "k"\nfrom = "jawOpen"\nclamp = [1, 0]\n', "clamp low"),
    ('name = "x"\n[[target]]\nkey = "k"\nfrom = "jawOpen"\ncurve = "cubic"\n', "curve must be one of"),
    ('name = "x"\n[[target]]\nkey = "k"\nfrom = "jawOpen"\ngamma = 0\n', "gamma must be above 0"),
    ('[[target]]\nkey = "k"\nfrom = "jawOpen"\n', "needs name"),
    ('name = "x"\n', "no targets"),
])
def test_bad_presets_say_what_to_fix(text, message):
    with pytest.raises(PresetError, match=message):
        parse(text)


def test_broken_preset_file_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = [unclosed\n")
    with pytest.raises(PresetError, match="broken.toml: not valid TOML"):
        load_preset(path)


def test_gain_offset_clamp_and_response_curves_follow_the_documented_order():
    # x = clip(mix, 0, 1) -> curve -> y = clip(gain * x + offset, clamp)
    p = Preset("x", [
        Target("plain", (("jawOpen", 1.0),), gain=0.5, offset=0.1),
        Target("clamped", (("jawOpen", 1.0),), gain=2.0, clamp=(0.0, 0.6)),
        Target("gamma", (("jawOpen", 1.0),), curve="gamma", gamma=2.0),
        Target("smooth", (("jawOpen", 1.0),), curve="smoothstep"),
        Target("inverse", (("jawOpen", 1.0),), gain=-1.0, offset=1.0),
        Target("mix", (("jawOpen", 0.5), ("mouthFunnel", -1.0))),
        Target("peak", (("jawOpen", 0.5), ("mouthFunnel", 1.0)), combine="max"),
    ])
    for jaw, funnel in ((0.0, 0.0), (0.3, 0.1), (0.8, 0.2), (1.0, 1.0)):
        c, _ = p.targets(None, pose(jawOpen=jaw, mouthFunnel=funnel))
        assert c["plain"][0] == pytest.approx(0.5 * jaw + 0.1)
        assert c["clamped"][0] == pytest.approx(min(0.6, 2 * jaw))
        assert c["gamma"][0] == pytest.approx(jaw ** 2)
        assert c["smooth"][0] == pytest.approx(jaw * jaw * (3 - 2 * jaw))
        assert c["inverse"][0] == pytest.approx(1 - jaw)
        assert c["mix"][0] == pytest.approx(max(0.0, 0.5 * jaw - funnel))
        assert c["peak"][0] == pytest.approx(max(0.5 * jaw, funnel))


def test_toml_round_trip_keeps_every_target_and_curve(presets, tmp_path):
    take = random_take()
    for p in presets.values():
        again = Preset.from_dict(tomllib.loads(p.to_toml()), id=p.id)
        assert [t.key for t in again.entries] == [t.key for t in p.entries]
        a, _ = p.targets(None, take)
        b, _ = again.targets(None, take)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=1e-6)


def test_dumps_toml_quotes_odd_keys_and_strings():
    text = dumps_toml({"name": 'A "quoted" name', "target": [{"key": "Mouth.Smile L", "mix": {"a b": 1.0}}]})
    data = tomllib.loads(text)
    assert data["name"] == 'A "quoted" name'
    assert data["target"][0]["mix"] == {"a b": 1.0}
    odd = 'back\\slash, tab\t, pasted\r\nline, bell\x07, del\x7f'  # TOML forbids raw control characters
    assert tomllib.loads(dumps_toml({"description": odd}))["description"] == odd


# -- the name matcher --------------------------------------------------------------------------------

@pytest.mark.parametrize("spellings", [
    ["mouthSmileLeft", "Mouth_Smile_L", "mouth_smile.L", "L_MouthSmile", "MOUTH-SMILE-LEFT", "mouthSmile_L",
     "A38_Mouth_Smile_Left", "Left Mouth Smile"],
    ["jawOpen", "Jaw_Open", "jaw.open", "JAW_OPEN", "JawOpen"],
    ["facs_bs_MouthSmileLeft_div2", "facs_bs_MouthSmile_L", "facs.bs.mouth.smile.L"],
    ["CTRL_expressions_mouthFunnelUL", "CTRL_expressions_mouthFunnel_U_L"],
])
def test_spellings_of_one_name_match(spellings):
    assert len({name_key(s) for s in spellings}) == 1, [str(name_key(s)) for s in spellings]


def test_sides_stay_apart():
    assert name_key("Mouth_Smile_L") != name_key("Mouth_Smile_R")
    assert name_key("Eye_L_Look_L") != name_key("Eye_L_Look_R") != name_key("Eye_R_Look_L")
    assert name_key("eyeBlinkLeft") != name_key("eyeBlink")


def test_rig_lookup_prefers_exact_spelling_and_strips_shared_prefixes():
    rig = RigNames(["Mouth_Smile_L", "mouth_smile_l", "Head_Eye_Blink_L", "Head_Eye_Blink_R", "Head_Jaw_Open",
                    "Head_Brow_Drop_L"])
    assert rig.lookup("Mouth_Smile_L")[:2] == ("Mouth_Smile_L", EXACT)
    assert rig.lookup("mouthSmileLeft")[1] == FOLDED
    assert rig.lookup("mouthSmileLeft")[2]  # the look-alike is reported
    assert rig.lookup("eyeBlinkRight")[:2] == ("Head_Eye_Blink_R", STRIPPED)
    assert rig.lookup("tongueOut")[0] is None


def test_rig_names_from_unsplittable_lower_case_still_match():
    rig = RigNames(["ctrl_expressions_mouthcornerpulll", "eyeblinkleft", "jawopen"])
    assert rig.lookup("CTRL_expressions_mouthCornerPullL")[0] == "ctrl_expressions_mouthcornerpulll"
    assert rig.lookup("eyeBlinkLeft")[0] == "eyeblinkleft"
    assert rig.lookup("eyeBlinkRight")[0] is None


# -- curves through each preset ------------------------------------------------------------------------

def test_arkit_preset_passes_channels_through_whatever_the_spelling(presets):
    take = random_take()
    rig = ["Head_" + n[0].upper() + n[1:].replace("Left", "_L").replace("Right", "_R") for n in ARKIT_52]
    curves, report = presets["arkit"].targets(rig, take)
    assert len(curves) == 52 and report.unmapped_channels == []
    for channel, key in zip(ARKIT_52, rig):
        np.testing.assert_array_equal(curves[key], take[:, INDEX[channel]])


def test_character_creator_spreads_and_crosses_sides(presets):
    take = random_take()
    curves, report = presets["character_creator"].targets(CHARACTER_CREATOR, take)
    col = lambda c: take[:, INDEX[c]]  # noqa: E731
    np.testing.assert_array_equal(curves["Mouth_Smile_L"], col("mouthSmileLeft"))
    np.testing.assert_array_equal(curves["Eye_L_Look_R"], col("eyeLookInLeft"))  # left eye looking in
    np.testing.assert_array_equal(curves["Eye_R_Look_R"], col("eyeLookOutRight"))
    for key in ("Brow_Raise_Inner_L", "Brow_Raise_Inner_R"):
        np.testing.assert_array_equal(curves[key], col("browInnerUp"))
    for key in ("Mouth_Pucker_Up_L", "Mouth_Pucker_Up_R", "Mouth_Pucker_Down_L", "Mouth_Pucker_Down_R"):
        np.testing.assert_array_equal(curves[key], col("mouthPucker"))
    # Visemes are fallbacks, so the mouth is not driven twice; the tongue (on another mesh in CC's
    # export) is the one channel without an expression key, so its viseme stands in.
    assert [k for k in curves if k.startswith("V_")] == ["V_Tongue_Out"]
    assert report.fallbacks_used == ["V_Tongue_Out"] and report.unmapped_channels == []


def test_character_creator_visemes_stand_in_when_expression_keys_are_absent(presets):
    visemes_only = [n for n in CHARACTER_CREATOR if n.startswith("V_")] + ["Eye_Blink_L", "Eye_Blink_R"]
    curves, report = presets["character_creator"].targets(visemes_only, pose(jawOpen=1.0))
    assert curves["V_Open"][0] > 0.8 and curves["V_Explosive"][0] == 0
    curves, _ = presets["character_creator"].targets(visemes_only, pose(mouthPressLeft=1, mouthPressRight=1,
                                                                         mouthClose=1))
    assert curves["V_Explosive"][0] == 1.0 and curves["V_Open"][0] == 0
    assert "V_Open" in report.fallbacks_used


def test_vroid_vowels_mix_from_the_mouth_channels(presets):
    vroid = presets["vroid"]
    open_jaw, _ = vroid.targets(VROID, pose(jawOpen=0.8))
    assert open_jaw["Fcl_MTH_A"][0] == pytest.approx(0.8)
    assert open_jaw["Fcl_MTH_U"][0] == 0
    pucker, _ = vroid.targets(VROID, pose(mouthPucker=1.0))
    assert pucker["Fcl_MTH_U"][0] == 1.0 and pucker["Fcl_MTH_A"][0] == 0  # the pucker closes the A
    funnel, _ = vroid.targets(VROID, pose(mouthFunnel=0.9, jawOpen=0.2))
    assert max(funnel, key=lambda k: funnel[k][0] if k.startswith("Fcl_MTH_") else -1) == "Fcl_MTH_O"
    blink, _ = vroid.targets(VROID, pose(eyeBlinkLeft=1.0))
    assert blink["Fcl_EYE_Close_L"][0] == 1.0 and blink["Fcl_EYE_Close_R"][0] == 0
    assert "Fcl_EYE_Close" not in blink  # per-eye keys exist, so the both-eyes key stays put


def test_vrm_expressions_and_vrm0_aliases(presets):
    vrm = presets["vrm"]
    curves, _ = vrm.targets(VRM, pose(jawOpen=1.0, eyeBlinkRight=0.7, eyeLookOutLeft=1.0, eyeLookInRight=1.0))
    assert curves["aa"][0] == pytest.approx(1.0)
    assert curves["blinkRight"][0] == pytest.approx(0.7) and curves["blinkLeft"][0] == 0
    assert curves["lookLeft"][0] == pytest.approx(1.0) and curves["lookRight"][0] == 0
    vrm0 = ["A", "I", "U", "E", "O", "Blink", "Blink_L", "Blink_R", "Joy", "Angry", "Sorrow", "Fun"]
    curves, report = vrm.targets(vrm0, pose(mouthPucker=1.0, eyeBlinkLeft=1.0))
    assert curves["U"][0] == 1.0 and curves["Blink_L"][0] == 1.0
    assert report.renamed["ou"] == "U"


def test_ready_player_me_visemes_only_when_arkit_keys_are_missing(presets):
    rpm = presets["ready_player_me"]
    curves, report = rpm.targets(READY_PLAYER_ME, random_take())
    assert set(curves) == set(ARKIT_52) and report.fallbacks_used == []
    visemes_only = RPM_VISEMES + RPM_EXTRAS
    rest, report = rpm.targets(visemes_only, pose())
    assert rest["viseme_sil"][0] == 1.0 and rest["viseme_aa"][0] == 0
    wide, _ = rpm.targets(visemes_only, pose(jawOpen=0.9))
    assert wide["viseme_aa"][0] > 0.8 and wide["viseme_sil"][0] < 0.2 and wide["mouthOpen"][0] == pytest.approx(0.9)
    closed, _ = rpm.targets(visemes_only, pose(mouthPressLeft=1, mouthPressRight=1, mouthClose=1))
    assert closed["viseme_PP"][0] == 1.0
    assert set(report.fallbacks_used) == set(visemes_only)


def test_daz_uses_an_alias_when_the_main_spelling_is_absent(presets):
    rig = [n for n in DAZ_GENESIS if n != "facs_jnt_EyeBlinkLeft"] + ["facs_bs_EyeBlinkLeft_div2"]
    curves, report = presets["daz_genesis"].targets(rig, pose(eyeBlinkLeft=0.6))
    assert curves["facs_bs_EyeBlinkLeft_div2"][0] == pytest.approx(0.6)
    assert report.renamed["facs_jnt_EyeBlinkLeft"] == "facs_bs_EyeBlinkLeft_div2"


def test_metahuman_spreads_lips_and_crosses_gaze(presets):
    mh = presets["metahuman"]
    take = random_take()
    curves, _ = mh.targets(METAHUMAN, take)
    col = lambda c: take[:, INDEX[c]]  # noqa: E731
    p = "CTRL_expressions_"
    for half in "UD":
        for side in "LR":
            np.testing.assert_array_equal(curves[f"{p}mouthFunnel{half}{side}"], col("mouthFunnel"))
    np.testing.assert_array_equal(curves[f"{p}eyeLookRightL"], col("eyeLookInLeft"))
    np.testing.assert_array_equal(curves[f"{p}eyeLookLeftL"], col("eyeLookOutLeft"))
    np.testing.assert_allclose(curves[f"{p}browLateralR"], 0.5 * col("browDownRight"), atol=1e-6)


def test_report_lists_what_did_not_land_and_what_the_rig_lacks(presets):
    rig = ["Eye_Blink_L", "Eye_Blink_R", "Jaw_Open", "Mouth_Smile_L", "Mouth_Smile_R", "V_Explosive"]
    take = np.zeros((10, 52), np.float32)
    take[:, INDEX["jawOpen"]] = 0.5
    take[:, INDEX["tongueOut"]] = 0.3
    curves, report = presets["character_creator"].targets(rig, take)
    assert set(curves) == {"Eye_Blink_L", "Eye_Blink_R", "Jaw_Open", "Mouth_Smile_L", "Mouth_Smile_R", "V_Explosive"}
    assert report.fallbacks_used == ["V_Explosive"]  # no Mouth_Press/Close keys: the viseme stands in
    assert "tongueOut" in report.unmapped_channels and "jawOpen" not in report.unmapped_channels
    assert report.lost_motion == ["tongueOut"]  # the only unmapped channel that moves
    assert "Tongue_Out" in report.missing_keys and "Jaw_Open" not in report.missing_keys
    assert report.get("missing") == report.unmapped_channels  # how keying reads reports
    assert report["mapped"]["jawOpen"] == ["Jaw_Open"]
    assert any("tongueOut" in line for line in report.lines())


def test_two_targets_reaching_one_rig_key_keep_the_larger_value():
    p = Preset("x", [Target("Mouth_Smile_L", (("mouthSmileLeft", 1.0),)),
                     Target("mouthSmileLeft", (("jawOpen", 1.0),))])
    curves, report = p.targets(["Mouth_Smile_L"], pose(mouthSmileLeft=0.2, jawOpen=0.7))
    assert list(curves) == ["Mouth_Smile_L"] and curves["Mouth_Smile_L"][0] == pytest.approx(0.7)
    assert report.shared_keys == ["Mouth_Smile_L"]


def test_weights_of_the_wrong_shape_are_refused(presets):
    with pytest.raises(PresetError, match=r"\[frames, 52\]"):
        presets["arkit"].targets(ARKIT, np.zeros((5, 51)))


# -- detection -------------------------------------------------------------------------------------------

def _variants(names, seed=0):
    rng = random.Random(seed)
    return {
        "complete": list(names),
        "partial": rng.sample(list(names), len(names) // 2),
        "lower case": [n.lower() for n in names],
        "dotted": [n.replace("_", ".") for n in names],
        "namespaced": ["CC_Base_Body." + n for n in names],
    }


# A Ready Player Me head with every ARKit key is keyed as ARKit (its visemes only when asked); one with
# part of them is still Ready Player Me.
WHOLE_ARKIT_SET_IS_ARKIT = {"ready_player_me": "arkit"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_is_detected_complete_partial_and_respelled(presets, family):
    for variant, rig in _variants(FAMILIES[family]).items():
        detection = detect(rig + ["Basis"], list(presets.values()))
        expected = family if variant == "partial" else WHOLE_ARKIT_SET_IS_ARKIT.get(family, family)
        assert detection.preset is not None, f"{family} {variant}: {detection.reason}"
        assert detection.preset.id == expected, f"{family} {variant}: {detection.reason}"
        assert not any("Ambiguous" in line for line in detection.lines())


def test_plain_arkit_head_is_arkit_not_a_superset_family(presets):
    assert detect_preset(ARKIT, list(presets.values())).id == "arkit"


def test_unrelated_keys_get_none_with_a_reason(presets):
    detection = detect(UNRELATED, list(presets.values()))
    assert detection.preset is None
    assert "No preset fits" in detection.reason and "Fat" in detection.reason
    assert detect([], list(presets.values())).reason.startswith("The object has no shape keys")


def test_a_tie_between_two_presets_is_reported_not_guessed(presets):
    twin = Preset.from_dict(tomllib.loads(presets["vroid"].to_toml()), id="vroid_copy")
    detection = detect(VROID, [presets["vroid"], twin, presets["arkit"]])
    assert detection.preset is None and "Ambiguous" in detection.reason
    assert "vroid" in detection.reason.lower()


def test_a_user_copy_of_a_family_wins_its_tie_with_a_warning(presets, tmp_path):
    mine = Preset.from_dict(tomllib.loads(presets["vroid"].to_toml()), id="my_vroid", user=True)
    detection = detect(VROID, [presets["vroid"], mine])
    assert detection.preset is mine
    assert any("user preset" in w for w in detection.warnings)


def test_low_coverage_is_detected_with_a_warning(presets):
    rig = ["Eye_Blink_L", "Eye_Blink_R", "Jaw_Open", "Mouth_Smile_L", "Mouth_Smile_R", "V_Explosive", "V_Open",
           "Eye_L_Look_L", "Brow_Raise_Inner_L"]
    detection = detect(rig, list(presets.values()))
    assert detection.preset.id == "character_creator"
    assert any(w.startswith("Low coverage") for w in detection.warnings)


@pytest.mark.parametrize("family, rig", [
    ("arkit", ["Head_eyeBlink_L", "Head_eye_blink_R", "Head_JawOpen", "Head_mouth.smile.L", "Head_MouthSmileRight",
               "Head_mouthFunnel", "Head_mouth_pucker", "Head_browInnerUp", "Head_brow_down_L", "Head_BrowDownRight",
               "Head_cheekPuff", "Head_tongueOut", "Head_mouthClose", "Head_Basis_Fix"]),
    ("arkit", ["EyeBlinkLeft", "EyeBlinkRight", "JawOpen", "MouthSmileLeft", "MouthSmileRight", "MouthFunnel",
               "MouthPucker", "MouthClose", "BrowInnerUp", "CheekPuff", "Smile", "Angry", "Fat"]),
    ("character_creator", ["Left_Eye_Blink", "Right_Eye_Blink", "Mouth_Smile_Left", "Mouth_Smile_Right",
                           "Brow_Raise_Inner.L", "Brow_Raise_Inner.R", "jaw_open", "Mouth_Funnel_Up_L",
                           "Mouth_Pucker_Down_R", "Eye_L_Look_L", "V_Explosive", "V_Open", "Cheek_Raise_L"]),
    ("vroid", ["Face.M_F00_000_00_Fcl_MTH_A", "Face.M_F00_000_00_Fcl_MTH_I", "Face.M_F00_000_00_Fcl_MTH_U",
               "Face.M_F00_000_00_Fcl_MTH_E", "Face.M_F00_000_00_Fcl_MTH_O", "Face.M_F00_000_00_Fcl_EYE_Close_L",
               "Face.M_F00_000_00_Fcl_EYE_Close_R", "Face.M_F00_000_00_Fcl_BRW_Angry"]),
    ("daz_genesis", ["Genesis8_1Female__facs_jnt_JawOpen", "Genesis8_1Female__facs_jnt_EyeBlinkLeft",
                     "Genesis8_1Female__facs_jnt_EyeBlinkRight", "Genesis8_1Female__facs_bs_MouthSmile_L",
                     "Genesis8_1Female__facs_bs_MouthSmile_R", "Genesis8_1Female__facs_ctrl_BrowInnerUp",
                     "Genesis8_1Female__facs_bs_MouthFunnel_div2", "Genesis8_1Female__pJCMNeckFwd_35"]),
    ("metahuman", ["ctrl_expressions_jawopen", "ctrl_expressions_eyeblinkl", "ctrl_expressions_eyeblinkr",
                   "ctrl_expressions_mouthcornerpulll", "ctrl_expressions_mouthcornerpullr",
                   "ctrl_expressions_mouthfunnelul", "ctrl_expressions_browraiseinl", "ctrl_expressions_tongueout"]),
    ("ready_player_me", ["Wolf3D_Head." + n for n in RPM_VISEMES] + ["Wolf3D_Head.eyeBlinkLeft"]),
    ("vrm", ["VRM.aa", "VRM.ih", "VRM.ou", "VRM.ee", "VRM.oh", "VRM.Blink_L", "VRM.Blink_R", "VRM.Joy"]),
])
def test_rigs_nobody_tuned_for_are_detected(presets, family, rig):
    detection = detect(rig, list(presets.values()))
    assert detection.preset is not None and detection.preset.id == family, detection.reason


# -- proposing and saving --------------------------------------------------------------------------------

def test_proposal_for_an_unknown_convention_maps_by_meaning(presets):
    rig = ["Blink_Left", "Blink_Right", "JawDrop", "Smile_L", "Smile_R", "Brows_Down_L", "Brows_Down_R", "Pucker",
           "Funnel", "Cheek_Blow", "Hat_Scale"]
    preset, notes = propose_preset(rig, name="Studio rig", presets=list(presets.values()))
    landed = preset.coverage(rig).channel_keys
    assert landed["eyeBlinkLeft"] == ["Blink_Left"] and landed["eyeBlinkRight"] == ["Blink_Right"]
    assert landed["jawOpen"] == ["JawDrop"]
    assert landed["mouthPucker"] == ["Pucker"] and landed["browDownLeft"] == ["Brows_Down_L"]
    assert "Hat_Scale" not in {k for keys in landed.values() for k in keys}
    assert preset.user and any("No key found" in n for n in notes)


def test_proposal_for_a_known_family_starts_from_its_preset(presets):
    preset, notes = propose_preset(CHARACTER_CREATOR, presets=list(presets.values()))
    assert any("Started from Character Creator" in n for n in notes)
    assert preset.coverage(CHARACTER_CREATOR).unmapped_channels == []


def test_saved_user_preset_loads_back_and_replaces_the_builtin(presets, tmp_path):
    edited = Preset.from_dict(tomllib.loads(presets["arkit"].to_toml()), id="arkit", user=True)
    edited.entries[INDEX["jawOpen"]].gain = 0.5
    path = save_user_preset(edited, tmp_path)
    assert path == tmp_path / "arkit.toml"
    loaded = {p.id: p for p in load_presets(extra_dirs=[tmp_path])}
    assert loaded["arkit"].user
    curves, _ = loaded["arkit"].targets(ARKIT, pose(jawOpen=0.8))
    assert curves["jawOpen"][0] == pytest.approx(0.4)


def test_a_broken_user_preset_is_skipped_and_reported(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "Bad"\n[[target]]\nkey = "k"\nfrom = "notAChannel"\n')
    errors = []
    ids = {p.id for p in load_presets(extra_dirs=[tmp_path], errors=errors)}
    assert "bad" not in ids and "arkit" in ids
    assert errors and "notAChannel" in errors[0]


def test_a_preset_from_simple_rows_mixes_rows_that_share_a_key():
    p = Preset.from_mapping("rows", [("jawOpen", "Open", 0.8), ("mouthFunnel", "Open", 0.2),
                                     ("eyeBlinkLeft", "Blink.L", 1.0), ("jawLeft", "", 1.0)])
    curves, report = p.targets(["Open", "Blink.L"], pose(jawOpen=1.0, mouthFunnel=0.5, eyeBlinkLeft=0.3))
    assert curves["Open"][0] == pytest.approx(0.9) and curves["Blink.L"][0] == pytest.approx(0.3)
    assert "jawLeft" in report.unmapped_channels  # a row without a key maps nothing
    with pytest.raises(PresetError, match="not an ARKit-52 channel"):
        Preset.from_mapping("bad", [("jaw_open_wide", "Open", 1.0)])


def test_a_key_with_no_side_lands_on_both_halves_of_a_split_rig(presets):
    """The ICT-FaceKit face (a real export, tests/data/rigs) has browInnerUp and cheekPuff only as
    _L/_R halves: the one ARKit channel drives both, so only tongueOut (which it lacks) is unmapped."""
    from test_retarget_rig_names import _rig_file

    ict = _rig_file("ict_facekit_keys.txt")
    assert "browInnerUp" not in ict and {"browInnerUp_L", "browInnerUp_R", "cheekPuff_L", "cheekPuff_R"} <= set(ict)
    report = presets["arkit"].coverage(ict)
    assert report.unmapped_channels == ["tongueOut"], report.summary()
    assert report.channel_keys["browInnerUp"] == ["browInnerUp_L", "browInnerUp_R"]
    curves, _ = presets["arkit"].targets(ict, pose(browInnerUp=0.6, cheekPuff=0.3))
    assert curves["browInnerUp_L"][0] == curves["browInnerUp_R"][0] == pytest.approx(0.6)
    assert curves["cheekPuff_R"][0] == pytest.approx(0.3) and curves["eyeBlink_L"][0] == 0.0
    # A rig that has the key whole keeps it whole; one half alone is not a split.
    assert presets["arkit"].coverage(ARKIT + ["browInnerUp_L", "browInnerUp_R"]).channel_keys["browInnerUp"] == [
        "browInnerUp"]
    assert "browInnerUp" in presets["arkit"].coverage(["browInnerUp_L", "jawOpen"]).unmapped_channels
