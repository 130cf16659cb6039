"""Head motion through Live Link Face CSV: a generated take's head rotation is written as HeadPitch,
HeadYaw and HeadRoll and reads back equal."""

import numpy as np

from backend.engines.base import Progress, TakeRequest
from backend.engines.phonetic.engine import PhoneticEngine
from exomni_blender.core import face
from exomni_blender.core.exchange.livelink import HEAD_COLUMNS, read_livelink_csv, write_livelink_csv


def test_head_rotation_round_trips_through_live_link_face_csv(tmp_path):
    take = PhoneticEngine().make_take(TakeRequest(text="Pass the pepper, please, Bob.", seed=4), Progress())
    head = face.head_rotation(take.meta, take.frames)
    assert np.abs(head).max() > 1.0
    path = write_livelink_csv(take, tmp_path / "line.csv")
    rows = [line.split(",") for line in path.read_text().splitlines()]
    column = {name: rows[0].index(name) for name in HEAD_COLUMNS}
    written = np.array([[float(r[column[n]]) for n in HEAD_COLUMNS] for r in rows[1:]])
    order = list(HEAD_COLUMNS.values())
    assert np.allclose(np.degrees(written), head[:, order], atol=1e-3)

    back = read_livelink_csv(path, fps=take.fps, audio=False)
    assert back.frames == take.frames
    assert np.allclose(face.head_rotation(back.meta), head, atol=1e-3)
    # read back and written again, the file is the same
    again = write_livelink_csv(back, tmp_path / "again.csv")
    assert again.read_text().splitlines()[1:] == path.read_text().splitlines()[1:]


def test_a_still_head_writes_zero_columns_and_reads_back_without_head_motion(tmp_path):
    take = PhoneticEngine().make_take(TakeRequest(text="Pass the pepper.", head_motion=0.0), Progress())
    path = write_livelink_csv(take, tmp_path / "still.csv")
    back = read_livelink_csv(path, fps=take.fps, audio=False)
    assert face.HEAD_ROTATION not in back.meta
