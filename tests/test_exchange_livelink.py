"""Live Link Face CSV: the app's layout, round trips through a take, frame rates from timecodes, bad files."""

import csv

import numpy as np
import pytest

from exomni_blender.core.arkit import ARKIT_52, INDEX
from exomni_blender.core.exchange import (LIVELINK_BLENDSHAPES, LIVELINK_HEADER, LIVELINK_ROTATIONS, ExchangeFormatError,
                                     format_timecode, parse_timecode, read_livelink_csv, write_livelink_csv)
from exomni_blender.core.take import Take, TakeFormatError, encode_wav


def random_take(frames=75, fps=30.0, seed=1) -> Take:
    rng = np.random.default_rng(seed)
    return Take(fps=fps, weights=rng.uniform(0, 1, (frames, 52)).astype(np.float32), text="line")


def app_csv(path, fps, seconds, start="14:03:52:00", drop=(), names=LIVELINK_BLENDSHAPES, seed=0, subframes=False):
    """A CSV laid out as the app writes it: frame numbers counted at `fps` within each second, with
    the sub-frame digits the app adds when `subframes`."""
    rng = np.random.default_rng(seed)
    h, m, s, f = (int(x) for x in start.split(":"))
    first = h * 3600 + m * 60 + s
    n = int(round(seconds * fps))
    values = rng.uniform(0, 1, (n, len(names)))
    rows = [["Timecode", "BlendShapeCount", *names, *LIVELINK_ROTATIONS]]
    for i in range(n):
        if i in drop:
            continue
        whole, frame = divmod(f + i, int(fps))
        t = (first + whole) % 86400
        sub = (i * 37) % 1000 if subframes else 0
        tc = f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}:{frame:02d}.{sub:03d}"
        rows.append([tc, "61", *(f"{v:.8f}" for v in values[i]), *(f"{0.01 * i:.6f}" for _ in LIVELINK_ROTATIONS)])
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return values


def test_a_take_written_as_csv_has_the_apps_exact_layout(tmp_path):
    take = random_take(frames=40)
    path = write_livelink_csv(take, tmp_path / "line.csv")
    rows = list(csv.reader(path.open()))
    assert tuple(rows[0]) == LIVELINK_HEADER and len(rows[0]) == 63
    assert rows[0][2:4] == ["EyeBlinkLeft", "EyeLookDownLeft"]
    assert rows[0][53:56] == ["TongueOut", "HeadYaw", "HeadPitch"]
    assert all(name[0].isupper() for name in rows[0])
    assert len(rows) == 1 + take.frames and all(len(r) == 63 and r[1] == "61" for r in rows[1:])
    assert rows[1][0] == "00:00:00:00.000" and rows[31][0] == "00:00:01:00.000" and rows[40][0] == "00:00:01:09.000"
    col = rows[0].index("JawOpen")
    assert float(rows[5][col]) == pytest.approx(take.weights[4, INDEX["jawOpen"]], abs=1e-8)
    assert all(float(v) == 0.0 for r in rows[1:] for v in r[54:])  # no head or eye motion in a take


@pytest.mark.parametrize("fps", [30.0, 60.0, 24.0])
def test_take_to_csv_to_take_keeps_the_curves_and_the_rate(tmp_path, fps):
    take = random_take(frames=int(2.5 * fps), fps=fps)
    back = read_livelink_csv(write_livelink_csv(take, tmp_path / "line.csv"))
    assert back.fps == fps and back.frames == take.frames
    np.testing.assert_allclose(back.weights, take.weights, atol=1e-7)
    assert back.meta["livelink"]["fps_from"] == "timecode" and back.meta["livelink"]["missing_channels"] == []


@pytest.mark.parametrize("fps", [30, 60])
def test_the_recording_rate_is_inferred_from_the_apps_timecodes(tmp_path, fps):
    app_csv(tmp_path / "take.csv", fps, seconds=2.0, subframes=True)
    take = read_livelink_csv(tmp_path / "take.csv")
    assert take.fps == fps and abs(take.frames - 2 * fps) <= 1
    rot = take.meta["livelink"]["rotations"]
    assert set(rot) == set(LIVELINK_ROTATIONS) and len(rot["HeadYaw"]) == take.frames


def test_the_apps_rows_become_frames_at_its_rate(tmp_path):
    values = app_csv(tmp_path / "take.csv", 60, seconds=1.5, start="23:59:59:30")  # over midnight, too
    take = read_livelink_csv(tmp_path / "take.csv")
    order = [INDEX[n[0].lower() + n[1:]] for n in LIVELINK_BLENDSHAPES]
    assert take.fps == 60 and take.frames == len(values)
    np.testing.assert_allclose(take.weights[:, order], values, atol=1e-7)
    assert take.meta["livelink"]["start_timecode"] == "23:59:59:30.000"


def test_a_short_60_fps_clip_is_told_from_30_by_its_frame_numbers(tmp_path):
    app_csv(tmp_path / "short.csv", 60, seconds=0.5, start="10:00:00:05")  # frames 5..34 in one second
    assert read_livelink_csv(tmp_path / "short.csv").fps == 60
    app_csv(tmp_path / "short30.csv", 30, seconds=0.5, start="10:00:00:02")
    assert read_livelink_csv(tmp_path / "short30.csv").fps == 30


def test_the_frame_rate_can_be_given_and_wins_over_the_timecodes(tmp_path):
    app_csv(tmp_path / "take.csv", 30, seconds=1.0)
    take = read_livelink_csv(tmp_path / "take.csv", fps=60)
    assert take.fps == 60 and take.meta["livelink"]["fps_from"] == "option"


def test_dropped_rows_are_filled_in_on_a_regular_grid(tmp_path):
    values = app_csv(tmp_path / "take.csv", 30, seconds=2.0, drop={10, 11, 40})
    take = read_livelink_csv(tmp_path / "take.csv")
    assert take.frames == 60 and take.meta["livelink"]["rows"] == 57
    order = [INDEX[n[0].lower() + n[1:]] for n in LIVELINK_BLENDSHAPES]
    np.testing.assert_allclose(take.weights[9, order], values[9], atol=1e-6)
    np.testing.assert_allclose(take.weights[11, order], values[9] + (values[12] - values[9]) * 2 / 3, atol=1e-5)


def test_columns_are_matched_by_name_in_any_case_and_order(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("timecode,BlendshapeCount,jawopen,EYEBLINKLEFT,Extra\n"
                    "00:00:00:00.000,2,0.5,0.25,7\n00:00:00:01.000,2,0.75,0.5,7\n")
    take = read_livelink_csv(path, fps=30)
    assert take.frames == 2
    assert take.weights[1, INDEX["jawOpen"]] == pytest.approx(0.75)
    assert take.weights[0, INDEX["eyeBlinkLeft"]] == pytest.approx(0.25)
    info = take.meta["livelink"]
    assert info["ignored_columns"] == ["Extra"] and len(info["missing_channels"]) == 50


def test_rotations_read_from_the_app_are_written_back(tmp_path):
    app_csv(tmp_path / "take.csv", 60, seconds=1.2)
    take = read_livelink_csv(tmp_path / "take.csv")
    again = read_livelink_csv(write_livelink_csv(take, tmp_path / "again.csv"))
    assert again.meta["livelink"]["rotations"]["RightEyeRoll"] == pytest.approx(
        take.meta["livelink"]["rotations"]["RightEyeRoll"], abs=1e-6)
    assert max(again.meta["livelink"]["rotations"]["HeadYaw"]) > 0.5


def test_the_wav_beside_the_csv_is_the_takes_audio(tmp_path):
    write_livelink_csv(random_take(frames=30), tmp_path / "line.csv")
    (tmp_path / "line.wav").write_bytes(encode_wav(np.full(8000, 0.25, np.float32), 8000))
    take = read_livelink_csv(tmp_path / "line.csv")
    assert take.has_audio and take.sample_rate == 8000 and take.duration == pytest.approx(1.0)
    assert not read_livelink_csv(tmp_path / "line.csv", audio=False).has_audio


def test_timecodes_round_trip_and_carry_into_the_next_second():
    assert parse_timecode("14:03:52:28.207") == (14 * 3600 + 3 * 60 + 52, 28.207)
    assert format_timecode(1.0 - 1e-7, 30) == "00:00:01:00.000"
    assert format_timecode(3661.5, 60) == "01:01:01:30.000"
    whole, frame = parse_timecode(format_timecode(12.345, 24))
    assert whole + frame / 24 == pytest.approx(12.345, abs=1e-3)


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("Frame,Value\n1,2\n", "first column is 'Frame'"),
    ("Timecode,BlendShapeCount,JawOpen\n", "no frames"),
    ("Timecode,BlendShapeCount,Foo,Bar\n00:00:00:00.000,2,1,2\n", "none of its columns"),
    ("Timecode,BlendShapeCount,JawOpen\n00:00:00:00.000,1,0.5\n00:00:00:01.000,1\n", "line 3: 2 values"),
    ("Timecode,BlendShapeCount,JawOpen\n00:00:00:00.000,1,0.5\n00:00:00:01.000,1,abc\n", "line 3: JawOpen is 'abc'"),
    ("Timecode,BlendShapeCount,JawOpen\n00:00:00:00.000,1,nan\n", "line 2: JawOpen is 'nan'"),
    ("Timecode,BlendShapeCount,JawOpen\nnoon,1,0.5\n", "timecode 'noon' is not HH:MM:SS:FF"),
    ("Timecode,BlendShapeCount,JawOpen\n00:00:01:00.000,1,0.5\n00:00:00:05.000,1,0.5\n", "comes before"),
])
def test_malformed_csvs_say_what_is_wrong(tmp_path, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ExchangeFormatError, match=words) as err:
        read_livelink_csv(path)
    assert isinstance(err.value, TakeFormatError) and str(path) in str(err.value)


def test_a_binary_file_is_refused(tmp_path):
    path = tmp_path / "clip.csv"
    path.write_bytes(b"\x00\x01\x02RIFF" * 10)
    with pytest.raises(ExchangeFormatError, match="binary"):
        read_livelink_csv(path)


def test_every_arkit_channel_has_a_column():
    assert {n[0].lower() + n[1:] for n in LIVELINK_BLENDSHAPES} == set(ARKIT_52)
