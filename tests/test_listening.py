"""core.listening alone (numpy only): who looks at whom when, the angles, the reactions' timing."""

import numpy as np
import pytest

from exomni_blender.core import listening as L
from exomni_blender.core.arkit import INDEX

FPS = 24.0


def _turned(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _seats():
    # Three characters around a table, each turned to face its middle (they face their local -Y).
    seats = {}
    for name, deg in (("ANN", 0.0), ("BOB", 120.0), ("CAL", 240.0)):
        a = np.radians(deg)
        pos = np.array([np.sin(a) * 1.2, np.cos(a) * 1.2, 1.6])  # local -Y points at the middle
        seats[name] = L.Seat(head=pos, rotation=_turned(-deg))
    return seats


def _lines():
    return [L.Line("ANN", 0.5, 3.5, "BOB", accents=[(0.8, 1.0), (2.0, 0.9)], phrase_ends=[1.4, 2.9]),
            L.Line("BOB", 4.0, 6.0, "ANN", accents=[(0.5, 1.0)], phrase_ends=[1.8]),
            L.Line("CAL", 6.5, 9.0, "ANN", accents=[(1.0, 0.95)], phrase_ends=[1.1, 2.4])]


def test_look_angles_in_the_characters_frame():
    seat = L.Seat(head=np.zeros(3))
    assert L.look_angles(seat, (0, -1, 0)) == pytest.approx((0.0, 0.0))
    assert L.look_angles(seat, (1, -1, 0))[0] == pytest.approx(45.0)  # +X is the character's left
    assert L.look_angles(seat, (0, -1, 1))[1] == pytest.approx(45.0)
    turned = L.Seat(head=np.zeros(3), rotation=_turned(90))  # now facing +X
    assert L.look_angles(turned, (1, 0, 0)) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_split_look_keeps_the_eyes_in_range_and_eye_weights_invert():
    for yaw, pitch in ((10, -3), (-40, 5), (60, -20)):
        (hy, hp), (ey, ep) = L.split_look(yaw, pitch)
        assert abs(ey) <= L.EYE_SIDE_DEG and abs(hy) <= L.HEAD_LIMIT[0]
        assert hy + ey == pytest.approx(yaw) and hp + ep == pytest.approx(pitch)
        assert abs(hy) >= abs(yaw) * L.HEAD_SHARE[0] - 1e-9
        gy, gp = L.gaze_of(L.eye_weights(ey, ep))
        assert gy[0] == pytest.approx(ey, abs=1e-4) and gp[0] == pytest.approx(ep, abs=1e-4)


def test_addressees_previous_speaker_or_the_name_in_the_parenthetical():
    cast = ["ANN", "BOB", "CAL"]
    got = L.addressees(["ANN", "BOB", "CAL", "ANN"], [[], [], ["to Bob"], []], cast)
    assert got == ["BOB", "ANN", "BOB", "CAL"]
    assert L.addressees(["ANN"], [[]], ["ANN"]) == [None]


def test_listeners_look_at_the_speaker_and_the_speaker_at_the_addressee():
    seats, lines = _seats(), _lines()
    plan = L.plan_listening(lines, seats, 10.0, FPS, seeds={"ANN": 1, "BOB": 2, "CAL": 3})
    for ln in lines:
        span = (plan["ANN"].times >= ln.start + 0.4) & (plan["ANN"].times <= ln.end)
        for who, layer in plan.items():
            target = ln.character if who != ln.character else ln.addressee
            want = np.array(L.look_angles(seats[who], seats[target].head))
            yaw, pitch = L.gaze_of(layer.weights[span])
            total = np.stack([yaw + layer.head[span, 1], pitch - layer.head[span, 0]], axis=1)
            err = np.array([L.angle_between(L.direction(*want), L.direction(*g)) for g in total])
            share = float(np.mean(err < 2.0))
            assert share >= (0.85 if who != ln.character else 0.6), (who, ln.character, share)


def test_nods_near_phrase_ends_none_in_own_lines_and_deterministic():
    seats, lines = _seats(), _lines()
    a = L.plan_listening(lines, seats, 10.0, FPS, seeds=7)
    b = L.plan_listening(lines, seats, 10.0, FPS, seeds=7)
    ends = [ln.start + pe for ln in lines for pe in ln.phrase_ends]
    stresses = [ln.start + t for ln in lines for t, s in ln.accents if s >= L.ACCENT_STRONG]
    total = 0
    for who in seats:
        np.testing.assert_array_equal(a[who].weights, b[who].weights)
        np.testing.assert_array_equal(a[who].head, b[who].head)
        own = [ln for ln in lines if ln.character == who]
        for nod in a[who].nods:
            assert all(not (ln.start - 0.3 <= nod <= ln.end) for ln in own)
            assert min(abs(nod - e) for e in ends + stresses) <= 0.5
            total += 1
        for blink in a[who].blinks:
            assert all(not (ln.start - 0.3 <= blink <= ln.end) for ln in own)
    assert total >= 3


def test_nothing_on_the_mouth_while_speaking_and_a_breath_before():
    seats, lines = _seats(), _lines()
    plan = L.plan_listening(lines, seats, 10.0, FPS, seeds=3)
    for ln in lines:
        layer = plan[ln.character]
        inside = (layer.times >= ln.start) & (layer.times <= ln.end)
        assert layer.weights[inside, INDEX["jawOpen"]].max() == 0.0
        before = (layer.times > ln.start - 0.8) & (layer.times < ln.start)
        if ln.start > 1.0:
            assert layer.weights[before, INDEX["jawOpen"]].max() > 0.02
            assert layer.head[before, 0].min() < -0.5  # the head lifts for the breath


def test_a_cast_entry_switches_listening_off_and_a_wrong_value_is_refused(tmp_path):
    from backend.dialogue import cast as castmod

    good = tmp_path / "good.cast.json"
    good.write_text('{"cast": {"ANN": {"object": "HeadA", "listen": false}, "BOB": "HeadB", "CAL": {"listen": true}}}')
    assert castmod.read_listen_switches(good) == {"ANN": False, "CAL": True}
    assert castmod.read_cast_file(good)[0] == {"ANN": "HeadA", "BOB": "HeadB"}
    bad = tmp_path / "bad.cast.toml"
    bad.write_text('[ANN]\nlisten = "no"\n')
    with pytest.raises(castmod.CastError, match="listen must be true or false"):
        castmod.read_listen_switches(bad)
