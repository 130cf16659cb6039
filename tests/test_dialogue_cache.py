"""The one dialogue take cache (core/take_cache.py) that `exomni batch` and the Dialogue panel share,
its one cache-or-make step (get_or_make),
and the umask of what it and the atomic writer write."""

import os
import stat

import numpy as np
import pytest

from exomni_blender.core.arkit import ARKIT_52, INDEX
from exomni_blender.core.files import atomic_write, atomic_write_all
from exomni_blender.core.take import Take
from exomni_blender.core.take_cache import META_KEYS, CacheKeyError, TakeCache, finish, line_meta

KEY = "0123456789abcdef0123"


def _take(fps=30.0, frames=12):
    w = np.full((frames, len(ARKIT_52)), 0.4, np.float32)
    audio = np.sin(np.linspace(0, 60, 4000)).astype(np.float32) * 0.3
    return Take(fps=fps, weights=w, audio=audio, sample_rate=16000, text="Are they cold?", engine="phonetic")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_put_then_get_gives_the_take_back(tmp_path):
    cache = TakeCache(tmp_path / "takes")
    assert cache.get(KEY) is None and not cache.has(KEY)
    folder = cache.put(KEY, _take())
    assert folder == tmp_path / "takes" / KEY and cache.has(KEY)
    again = cache.get(KEY)
    assert again.text == "Are they cold?" and again.weights.shape == (12, len(ARKIT_52))
    assert not [p for p in (tmp_path / "takes").iterdir() if p.name != KEY]  # no staging left behind


def test_a_damaged_entry_is_a_miss_and_is_replaced(tmp_path):
    cache = TakeCache(tmp_path)
    cache.put(KEY, _take())
    (tmp_path / KEY / "take.json").write_text("{not json")
    assert cache.get(KEY) is None
    cache.put(KEY, _take(frames=20))
    assert cache.get(KEY).frames == 20


@pytest.mark.parametrize("key", ["../etc", "ABCDEF0123", "abc", "", None, "0123456789abcdef0123/x"])
def test_keys_that_are_not_content_hashes_are_refused(tmp_path, key):
    with pytest.raises(CacheKeyError, match="cache key"):
        TakeCache(tmp_path).path(key)


def test_finish_resamples_and_scales_expression_but_not_blinks():
    take = finish(_take(fps=30.0, frames=31), fps=24.0, intensity=1.5, meta={"line": 3})
    assert take.fps == 24.0 and take.frames == 25
    assert np.allclose(take.weights[:, INDEX["jawOpen"]], 0.6)
    assert np.allclose(take.weights[:, INDEX["eyeBlinkLeft"]], 0.4)
    assert take.meta["line"] == 3
    same = _take()
    assert np.array_equal(finish(same).weights, _take().weights)


def test_atomic_files_honour_the_umask(tmp_path, umask_022):
    atomic_write(tmp_path / "one.json", b"{}")
    atomic_write_all({tmp_path / "a.wav": b"RIFF", tmp_path / "b.json": b"[]"})
    TakeCache(tmp_path / "cache").put(KEY, _take())
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 6
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    os.umask(0o077)  # a stricter umask is honoured too
    atomic_write(tmp_path / "private.json", b"{}")
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600


def test_a_failed_write_leaves_neither_temp_file_nor_a_half_set(tmp_path):
    atomic_write(tmp_path / "a.json", b"old")

    with pytest.raises(TypeError):
        atomic_write_all({tmp_path / "a.json": b"new", tmp_path / "b.json": 12345})
    assert (tmp_path / "a.json").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def _meta(**over):
    return {**line_meta(character="BRICK", line=1, voice="en-us", seed=3, delivery={"intensity": 1.0}), **over}


def test_get_or_make_makes_once_then_reads_the_cache(tmp_path):
    cache, calls = TakeCache(tmp_path), []

    def make():
        calls.append(1)
        return _take(fps=30.0, frames=31)

    take, cached = cache.get_or_make(KEY, make, _meta(), fps=24.0, intensity=1.5)
    assert not cached and len(calls) == 1 and take.fps == 24.0 and take.frames == 25
    assert np.allclose(take.weights[:, INDEX["jawOpen"]], 0.6)  # finished before it is stored
    again, cached = cache.get_or_make(KEY, make, _meta(), fps=24.0, intensity=1.5)
    assert cached and len(calls) == 1 and np.array_equal(again.weights, take.weights)
    assert set(again.meta) >= set(META_KEYS) and again.meta["hash"] == KEY and again.meta["character"] == "BRICK"


def test_get_or_make_remakes_a_damaged_entry_and_stores_nothing_when_make_fails(tmp_path):
    cache = TakeCache(tmp_path)
    cache.put(KEY, _take())
    (tmp_path / KEY / "take.json").write_text("{not json")
    take, cached = cache.get_or_make(KEY, lambda: _take(frames=20), _meta())
    assert not cached and cache.get(KEY).frames == 20

    other = "fedcba9876543210fedc"

    def broken():
        raise RuntimeError("the engine fell over")

    with pytest.raises(RuntimeError, match="fell over"):
        cache.get_or_make(other, broken, _meta())
    assert not cache.has(other) and not list(tmp_path.glob(".*.part"))


def test_get_or_make_refuses_meta_without_the_shared_schema(tmp_path):
    made = []
    with pytest.raises(ValueError, match="voice, seed, delivery"):
        TakeCache(tmp_path).get_or_make(KEY, lambda: made.append(1) or _take(), {"character": "BRICK", "line": 1})
    assert not made and not TakeCache(tmp_path).has(KEY)
