"""The take store on disk: atomic puts, a replaced take never lost, no staging left after a failure."""

import os
import numpy as np
import pytest

from backend.store import TakeStore
from exomni_blender.core import contract as C
from exomni_blender.core.request import RequestError
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
    for take_id in ("line-1", None):  # a full disk is its own error, naming the store and what to do
        with pytest.raises(RequestError) as err:
            store.put(broken, take_id)
        assert err.value.code == C.E_STORE_FULL and str(tmp_path) in str(err.value) and "retention" in str(err.value)
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


def test_symlinks_odd_names_and_damaged_takes(tmp_path):
    store = TakeStore(tmp_path / "store")
    good = store.put(_take("good"))
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    store.put(_take("linked"), "linked")
    (store.root / "linked" / "audio.wav").unlink(missing_ok=True)
    (store.root / "linked" / "audio.wav").symlink_to(secret)  # a take whose audio points outside
    (store.root / "alias").symlink_to(store.root / good)  # a folder link to a real take
    odd = bytes(store.root) + b"/bad\xff-name"
    import os
    os.mkdir(odd)
    os.makedirs(os.path.join(odd, b"x"))
    store.put(_take("broken"), "broken")
    (store.root / "broken" / "take.json").write_text("{not json")
    assert store.list() == sorted([good, "linked", "broken"])
    assert store.file("linked", "audio.wav") is None and store.path("alias") is None
    with pytest.raises(RequestError) as err:
        store.info("broken")
    assert err.value.code == C.E_TAKE_DAMAGED and "DELETE" in str(err.value)
    assert store.info(good)["text"] == "good"


def test_delete_and_retention_keep_the_newest_and_spare_readers(tmp_path):
    store = TakeStore(tmp_path)
    ids = [store.put(_take(f"t{i}"), f"2026-{i:02d}") for i in range(6)]
    assert store.delete(ids[0]) and not store.delete(ids[0]) and store.list() == ids[1:]
    with store.reading(ids[1]):
        assert store.prune(keep_takes=2) == ids[2:5]  # the oldest, except the one being read
    assert store.list() == [ids[1], ids[5]]
    assert store.prune(keep_bytes=store.size(ids[5])) == [ids[1]] and store.list() == [ids[5]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_retention_keeps_an_index_instead_of_rescanning_the_store(tmp_path):
    """A prune after each take reads only the new take's folder (issue 20: a full rescan per take)."""
    import shutil
    import time

    store = TakeStore(tmp_path)
    ids = [store.put(_take(f"t{i}", frames=2), f"a{i:04d}") for i in range(300)]
    size = store.size(ids[0])
    assert store.prune(keep_takes=300) == []  # builds the index
    scans = []
    real_list = store.list
    store.list = lambda: scans.append(1) or real_list()
    t0 = time.perf_counter()
    for i in range(20):
        new = store.put(_take(f"n{i}", frames=2), f"b{i:04d}")
        assert store.prune(keep_takes=300, protect={new}) == [ids[i]]
    per_take = (time.perf_counter() - t0) / 20
    print(f"store of 300 takes: {per_take * 1000:.2f} ms per take (put and prune)")
    assert not scans
    shutil.rmtree(tmp_path / ids[25])  # removed by hand: forgotten when retention reaches it
    store.put(_take("late", frames=2), "c0000")
    store.added("c0000")
    assert store.prune(keep_takes=295, keep_bytes=301 * size) == ids[20:25]
    assert not scans
    store.list = real_list
    assert len(store.list()) == 295 and ids[25] not in store._sizes
    assert store._total == sum(store.size(i) for i in store.list()) <= 300 * size
    assert store.prune(keep_bytes=store._total - 1) == [ids[26]]  # bytes too, from the running total


def test_the_periodic_rescan_runs_beside_takes_and_loses_none_of_their_changes(tmp_path):
    """Every REINDEX_EVERY prunes the store is read again (takes added or removed by hand), on a thread of
    its own so the jobs thread never waits for it; takes made and pruned meanwhile are not lost."""
    import shutil
    import threading

    from backend import store as store_module

    store = TakeStore(tmp_path)
    ids = [store.put(_take(f"t{i}", frames=2), f"a{i:04d}") for i in range(40)]
    assert store.prune(keep_takes=40) == []  # builds the index
    shutil.copytree(tmp_path / ids[0], tmp_path / "byhand")  # only a rescan can know of it
    os.utime(tmp_path / "byhand" / "take.json", ns=(1, 1))  # the oldest of all
    release, reading = threading.Event(), threading.Event()
    real_list = store.list

    def slow_list():
        found = real_list()
        reading.set()
        assert release.wait(30)
        return found

    store.list = slow_list
    store._prunes = store_module.REINDEX_EVERY - 1
    new = store.put(_take("n0", frames=2), "b0000")
    assert store.prune(keep_takes=40, protect={new}) == [ids[0]]  # returns while the rescan waits
    assert reading.wait(30)
    for i in range(1, 4):  # takes made and pruned while the folders are being read
        new = store.put(_take(f"n{i}", frames=2), f"b{i:04d}")
        assert store.prune(keep_takes=40, protect={new}) == [ids[i]]
    release.set()
    for t in threading.enumerate():
        if t.name == "exomni-store-rescan":
            t.join(30)
    on_disk = set(real_list())
    assert set(store._sizes) == on_disk and "byhand" in on_disk and len(on_disk) == 41
    assert [e[1] for e in store._order] == sorted(on_disk, key=lambda i: store._age_key(i))
    assert store._total == sum(store.size(i) for i in on_disk)
    assert store.prune(keep_takes=40) == ["byhand"]  # the rescan found it, and it is the oldest
