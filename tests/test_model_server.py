"""The `exomni` engine behind the real HTTP server, on a tiny checkpoint; and without one."""

from __future__ import annotations

import math
import time

import pytest
import requests

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # two server processes start (about half a minute)

from backend.server.launcher import LocalServer  # noqa: E402
from exomni_blender.core import contract as C  # noqa: E402


def _engines(url) -> dict:
    return {e["name"]: e for e in requests.get(url + C.ENGINES, timeout=30).json()["engines"]}


def _engine_when(url, predicate, timeout=60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exomni = _engines(url)["exomni"]
        if predicate(exomni):
            return exomni
        time.sleep(0.1)
    raise AssertionError(f"the exomni engine never reached the expected state: {exomni}")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from backend.models.exomni.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("exomni_tiny") / "ckpt")


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("exomni_server")
    with LocalServer(root / "store", extra_args=["--exomni-checkpoint", str(tiny_checkpoint), "--device", "cpu"],
                     log_path=root / "server.log", startup_timeout=120) as server:
        yield server.url


def test_the_model_loads_at_start_before_any_take(served):
    # No take has been asked for yet (this test runs first): only the start-up preload can load it.
    exomni = _engine_when(served, lambda e: e["state"] in ("ready", "failed"))
    assert exomni["state"] == "ready" and exomni["available"] is True, exomni
    assert requests.get(served + C.TAKES, timeout=10).json()["takes"] == []


def test_say_and_chat_through_the_server(served, wait_job):
    assert _engines(served)["exomni"]["available"] is True
    for body in ({"mode": "say", "text": "Good morning, everyone!", "fps": 30},
                 {"mode": "chat", "text": "How are you?", "fps": 30, "options": {"max_new_tokens": 8}}):
        r = requests.post(served + C.TAKES, json={"engine": "exomni", "seed": 7, **body}, timeout=30)
        assert r.status_code == 202, r.text
        job = wait_job(served, r.json()["job_id"], timeout=180)
        assert job["state"] == C.DONE, job
        info = requests.get(served + C.take_path(job["take_id"]), timeout=10).json()
        assert info["engine"] == "exomni" and info["mode"] == body["mode"] and info["units"]
        k = sum(1 for u in info["units"] if u > 0)
        assert info["frames"] == math.floor(k / 12.5 * 30) == info["meta"]["model_frames"]
        a2f = requests.get(served + C.take_path(job["take_id"], "blendshapes.json"), timeout=10).json()
        assert a2f["numFrames"] == info["frames"] and a2f["exportFps"] == 30
        if body["mode"] == "chat":
            assert info["meta"]["reply"] and info["text"] == info["meta"]["reply"]
        else:
            assert info["text"] == body["text"]


def test_without_checkpoint_exomni_is_refused_and_phonetic_serves(tmp_path, monkeypatch, wait_job):
    monkeypatch.delenv("EXOMNI_CHECKPOINT", raising=False)
    with LocalServer(tmp_path / "store", log_path=tmp_path / "server.log") as server:
        exomni = _engines(server.url)["exomni"]
        assert exomni["available"] is False and "make-tiny-checkpoint" in exomni["reason"]
        r = requests.post(server.url + C.TAKES, json={"engine": "exomni", "text": "Hello."}, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == C.E_ENGINE_UNAVAILABLE
        r = requests.post(server.url + C.TAKES, json={"engine": "phonetic", "text": "Hello."}, timeout=30)
        assert r.status_code == 202 and wait_job(server.url, r.json()["job_id"], timeout=180)["state"] == C.DONE


def _break_by_removing_a_shard(folder):
    sorted(folder.glob("*.safetensors"))[-1].unlink()
    return ["--device", "cpu"], "lacks 1 of its 3 weight shards"


def _break_by_truncating_a_shard(folder):
    shard = sorted(folder.glob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:1000])
    return ["--device", "cpu"], "cannot be read"


def _ask_for_absent_cuda(folder):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    return ["--device", "cuda"], "CUDA was requested but this machine has no usable CUDA device"


@pytest.mark.parametrize("breakage", [_break_by_removing_a_shard, _break_by_truncating_a_shard, _ask_for_absent_cuda],
                         ids=["missing shard", "truncated shard", "no cuda"])
def test_a_broken_setup_is_reported_and_phonetic_keeps_serving(tmp_path, tiny_checkpoint, breakage, wait_job):
    import shutil

    folder = shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")
    extra, expected = breakage(folder)
    with LocalServer(tmp_path / "store", extra_args=["--exomni-checkpoint", str(folder), *extra],
                     log_path=tmp_path / "server.log", startup_timeout=120) as server:
        # A truncated shard passes the folder check; the preload at start finds it.
        exomni = _engine_when(server.url, lambda e: e["state"] in ("failed", "unavailable", "ready"))
        assert exomni["available"] is False and expected in exomni["reason"], exomni
        r = requests.post(server.url + C.TAKES, json={"engine": "exomni", "text": "Hello."}, timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == C.E_ENGINE_UNAVAILABLE
        assert expected in r.json()["error"]["message"]
        r = requests.post(server.url + C.TAKES, json={"engine": "phonetic", "text": "Hello."}, timeout=30)
        assert r.status_code == 202 and wait_job(server.url, r.json()["job_id"], timeout=180)["state"] == C.DONE
        assert requests.get(server.url + C.HEALTH, timeout=10).ok
