"""The take store on disk: atomic puts, a replaced take never lost, no staging left after a failure."""

import numpy as np
import pytest

from backend.store import TakeStore
from exomni_blender.core.take import Take


def _take(text: str, frames: int = 4) -> Take:
    return Take(fps=30.0, weights=np.full((frames, 52), 0.25, np.float32), text=text, engine="phonetic")


class BrokenTake(Take):
    """Writes part of its folder, then fails (a full disk, say)."""

    def save(self, folder):
        folder.mkdir(parents=True)
        (folder / "audio.wav").write_bytes(b"RIFF")
        raise OSError(28, "No space left on device")


def test_put_and_replace_under_an_id(tmp_path):
    store = TakeStore(tmp_path)
    assert store.put(_take("first"), "line-1") == "line-1"
    store.put(_take("second", frames=7), "line-1")
    again = store.load("line-1")
    assert again.text == "second" and again.frames == 7
    assert store.list() == ["line-1"] and [p.name for p in tmp_path.iterdir()] == ["line-1"]


def test_a_failed_put_leaves_no_staging_and_keeps_the_old_take(tmp_path):
    store = TakeStore(tmp_path)
    store.put(_take("kept"), "line-1")
    broken = BrokenTake(fps=30.0, weights=np.zeros((2, 52), np.float32))
    with pytest.raises(OSError):
        store.put(broken, "line-1")
    with pytest.raises(OSError):
        store.put(broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line-1"]
    assert store.load("line-1").text == "kept"


def test_ids_are_checked(tmp_path):
    with pytest.raises(ValueError, match="take id"):
        TakeStore(tmp_path).put(_take("x"), "../escape")
    assert TakeStore(tmp_path).path("../escape") is None


def test_a_restart_sweeps_staging_and_restores_a_take_caught_mid_replace(tmp_path):
    store = TakeStore(tmp_path)
    store.put(_take("one"), "a")
    store.put(_take("two"), "b")
    (tmp_path / ".staging-c-123456").mkdir()  # a put that crashed while writing
    (tmp_path / "a").rename(tmp_path / ".old-a-abcdef")  # a replace that crashed between its two renames
    _take("stale").save(tmp_path / ".old-b-abcdef")  # a replace that crashed after both
    store = TakeStore(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert store.load("a").text == "one" and store.load("b").text == "two"
