"""`exomni batch` and the Dialogue panel share one cache-or-make step (TakeCache.get_or_make): a take
made through one path is a cached take to the other, with the same meta. The real planner plans the
script for both; the takes come from a stand-in engine (batch) and a stand-in backend (panel)."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from backend.dialogue import batch  # noqa: E402
from backend.dialogue.plan import plan_script  # noqa: E402
from backend.dialogue.service import parse_script, plan_dialogue  # noqa: E402
from backend.engines.registry import default_registry  # noqa: E402
from exomni_blender.core.arkit import ARKIT_52  # noqa: E402
from exomni_blender.core.take import Take  # noqa: E402
from exomni_blender.core.take_cache import META_KEYS  # noqa: E402

SCRIPT = """INT. GARAGE - DAY

BRICK
Are they cold?

STEEL
(shouting)
Does a bear crap in the woods?

BRICK
Are they cold?
"""
FPS = 24.0


def _take(request_text, fps):
    frames = 10 + len(request_text)
    w = np.full((frames, len(ARKIT_52)), 0.3, np.float32)
    audio = np.sin(np.linspace(0, 40, 8000)).astype(np.float32) * 0.2
    return Take(fps=fps, weights=w, audio=audio, sample_rate=16000, text=request_text, engine="phonetic")


class StandInEngine:
    name = "phonetic"

    def __init__(self):
        self.made = []

    def make_take(self, request, progress):
        self.made.append(request.text)
        progress(1.0, "done")
        return _take(request.text, request.fps)


class NoEngine:
    name = "phonetic"

    def make_take(self, request, progress):
        raise AssertionError(f"made {request.text!r} again; it is in the cache")


class StandInJob:
    remote_id = None
    cancel_requested = False

    def report(self, fraction, message=""):
        pass

    def check(self):
        pass


class StandInClient:
    """The backend as the panel sees it: the real planner, takes from a stand-in engine."""
    made: list = []
    allow_takes = True

    def __init__(self, url, token):
        self.registry = default_registry()
        self.requests = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def plan_dialogue(self, body):
        return plan_dialogue(body, self.registry)

    def submit_take(self, **request):
        assert self.allow_takes, f"asked the backend for {request['text']!r}; it is in the cache"
        job_id = f"job{len(self.requests)}"
        self.requests[job_id] = request
        return {"job_id": job_id}

    def wait(self, job_id, should_cancel=None):
        return {"state": "done", "take_id": "0123456789abcdef0123456789abcdef", "job": job_id}

    def fetch_take(self, take_id, folder):
        request = list(self.requests.values())[-1]
        StandInClient.made.append(request["text"])
        return _take(request["text"], request["fps"])


def _batch(root, engine):
    registry = default_registry()
    script = parse_script(SCRIPT, "fountain", "garage.fountain")
    plan = plan_script(script, [], registry, engine="phonetic", fps=FPS, create_heads=True,
                       scene_name="the new scene")
    takes, stats = batch.make_takes(plan.lines, engine, root, FPS)
    return plan, takes, stats


def _panel(root, monkeypatch, allow_takes):
    from exomni_blender.ui.dialogue import work

    monkeypatch.setattr(work, "Client", StandInClient)
    monkeypatch.setattr(StandInClient, "allow_takes", allow_takes)
    monkeypatch.setattr(StandInClient, "made", [])
    body = {"script": SCRIPT, "format": "fountain", "name": "garage.fountain", "engine": "phonetic", "fps": FPS,
            "seed": 0, "objects": [], "cast": {}, "scene": "Scene", "create_heads": True}
    return work.make_takes(StandInJob(), "http://127.0.0.1:1", "", body, str(root))


def _metas(folders):
    return [Take.load(f).meta for f in folders]


def test_a_take_made_by_exomni_batch_is_cached_for_the_panel(tmp_path, monkeypatch):
    engine = StandInEngine()
    plan, _, stats = _batch(tmp_path, engine)
    assert len(stats.misses) == 2 and len(stats.hits) == 1  # the repeated line is made once
    result = _panel(tmp_path, monkeypatch, allow_takes=False)
    assert result["made"] == 0 and result["reused"] == 3
    lines = result["plan"]["lines"]
    assert [l["take"] for l in lines] == [p.take_dir for p in plan.lines]
    for meta, p in zip(_metas(l["take"] for l in lines), plan.lines):
        assert set(meta) >= set(META_KEYS)
        assert meta["hash"] == p.hash and meta["voice"] == p.voice and meta["seed"] == p.seed
        assert meta["delivery"]["intensity"] == p.delivery.intensity


def test_a_take_made_by_the_panel_is_cached_for_exomni_batch(tmp_path, monkeypatch):
    result = _panel(tmp_path, monkeypatch, allow_takes=True)
    assert result["made"] == 2 and result["reused"] == 1 and len(StandInClient.made) == 2
    panel_metas = _metas(l["take"] for l in result["plan"]["lines"])
    plan, takes, stats = _batch(tmp_path, NoEngine())
    assert stats.misses == [] and len(stats.hits) == 3 and all(p.cached for p in plan.lines)
    # The one schema: the same facts whichever path made the take.
    assert panel_metas == [takes[p.hash].meta for p in plan.lines]
    shout = next(p for p in plan.lines if p.line.parentheticals)
    assert takes[shout.hash].meta["delivery"]["intensity"] == shout.delivery.intensity > 1.0
