"""The HTTP API on a real server on 127.0.0.1: takes end to end, errors, cancel, persistence."""

import pytest
import requests

from exomni_blender.core import contract as C
from exomni_blender.core.request import TEXT_LIMIT
from exomni_blender.core.take import decode_wav


@pytest.fixture
def make_take(wait_job):
    """make_take(url, **fields): ask for a take of a fixed line and wait for its job; returns the job."""
    def make(url, **fields):
        r = requests.post(url + C.TAKES, json={"text": "Bob may buy five blue boats.", **fields}, timeout=10)
        assert r.status_code == 202, r.text
        assert r.json()["state"] in (C.QUEUED, C.RUNNING)
        return wait_job(url, r.json()["job_id"])

    return make


def test_health_and_engines(live_server):
    assert requests.get(live_server + C.HEALTH, timeout=5).json() == {"status": "ok"}  # up, and nothing more
    engines = {e["name"]: e for e in requests.get(live_server + C.ENGINES, timeout=5).json()["engines"]}
    assert engines["phonetic"]["available"] is True and "say" in engines["phonetic"]["modes"]
    assert "exomni" in engines
    if not engines["exomni"]["available"]:
        assert engines["exomni"]["reason"]  # says why and what to do


def test_take_end_to_end_at_requested_fps(live_server, make_take):
    job = make_take(live_server, fps=24, seed=3)
    assert job["state"] == C.DONE and job["progress"] == 1.0 and job["take_id"]
    tid = job["take_id"]
    info = requests.get(live_server + C.take_path(tid), timeout=5).json()
    assert info["engine"] == "phonetic" and info["fps"] == 24 and info["phonemes"]
    a2f = requests.get(live_server + C.take_path(tid, "blendshapes.json"), timeout=5).json()
    assert a2f["exportFps"] == 24 and a2f["numFrames"] == info["frames"] == len(a2f["weightMat"])
    wav = requests.get(live_server + C.take_path(tid, "audio.wav"), timeout=5)
    audio, sr = decode_wav(wav.content)
    assert sr == info["sample_rate"] and abs(audio.size / sr - info["duration"]) < 1e-3
    # curves are produced at the requested rate: frames cover the audio at 24 fps
    assert abs(info["frames"] - info["duration"] * 24) <= 2


@pytest.mark.parametrize("body,code", [
    ({"text": ""}, C.E_EMPTY_TEXT),
    ({"text": "   "}, C.E_EMPTY_TEXT),
    ({"text": "x" * (TEXT_LIMIT + 1)}, C.E_TEXT_TOO_LONG),
    ({"text": "hi", "engine": "nope"}, C.E_UNKNOWN_ENGINE),
    ({"text": "hi", "mode": "sing"}, C.E_UNKNOWN_MODE),
    ({"text": "hi", "fps": 0}, C.E_BAD_REQUEST),
    ({"text": "hi", "seed": -1}, C.E_BAD_REQUEST),
    ({"text": "hi", "colour": "red"}, C.E_BAD_REQUEST),
    ({"text": "hi", "mouth_only": "false"}, C.E_BAD_REQUEST),
    ({"text": "hi", "audio_base64": "UklGRg==", "audio_filename": ["a.wav"]}, C.E_BAD_REQUEST),
    ([1, 2, 3], C.E_BAD_REQUEST),
])
def test_bad_requests_get_clear_errors(live_server, body, code):
    r = requests.post(live_server + C.TAKES, json=body, timeout=5)
    assert r.status_code == C.STATUS[code], r.text  # one status per error code, whichever layer refused
    err = r.json()["error"]
    assert err["code"] == code and len(err["message"]) > 10


def test_malformed_json_unknown_ids_and_server_keeps_serving(live_server):
    r = requests.post(live_server + C.TAKES, data=b"{text: oops", headers={"content-type": "application/json"}, timeout=5)
    assert r.status_code == 400 and r.json()["error"]["code"] == C.E_MALFORMED_JSON
    for path in (C.job_path("nope"), C.take_path("nope"), C.take_path("../../etc", "audio.wav"), "/v1/nothing"):
        r = requests.get(live_server + path, timeout=5)
        expected = C.E_UNKNOWN_JOB if path == C.job_path("nope") else C.E_NOT_FOUND
        assert r.status_code == 404 and r.json()["error"]["code"] == expected, path
    assert requests.delete(live_server + C.job_path("nope"), timeout=5).status_code == 404
    assert requests.get(live_server + C.HEALTH, timeout=5).json()["status"] == "ok"


def test_unknown_voice_is_refused_at_submit(live_server):
    """A request the server accepts is one the engine can make: the voice is checked before the 202."""
    r = requests.post(live_server + C.TAKES, json={"text": "Hello.", "voice": "klingon-xx"}, timeout=10)
    assert r.status_code == 422 and "klingon-xx" in r.json()["error"]["message"]
    assert "en-us" in r.json()["error"]["message"]
    for fields in ({"rate": 3.0}, {"pitch": 3.0}, {"options": {"lead_in": 99}}, {"options": {"speed": 2}}):
        r = requests.post(live_server + C.TAKES, json={"text": "Hello.", **fields}, timeout=10)
        assert r.status_code == 422, (fields, r.text)
    assert requests.get(live_server + C.HEALTH, timeout=5).ok


def test_cancel(live_server, wait_job):
    long_line = "This is a long line that keeps going. " * 40
    ids = [requests.post(live_server + C.TAKES, json={"text": long_line}, timeout=5).json()["job_id"] for _ in range(3)]
    # the last one is still queued behind the others: cancelling it must stop it before it runs
    r = requests.delete(live_server + C.job_path(ids[-1]), timeout=5)
    assert r.status_code == 200
    states = [wait_job(live_server, i)["state"] for i in ids]
    assert states[-1] == C.CANCELLED
    assert wait_job(live_server, ids[-1])["take_id"] is None


def test_token_is_required_when_set(tmp_path):
    from backend.server.launcher import LocalServer

    with LocalServer(tmp_path / "store", token="s3cret") as server:
        assert requests.get(server.url + C.HEALTH, timeout=5).ok
        r = requests.get(server.url + C.ENGINES, timeout=5)
        assert r.status_code == 401 and r.json()["error"]["code"] == C.E_UNAUTHORIZED
        r = requests.get(server.url + C.ENGINES, headers={"Authorization": "Bearer s3cret"}, timeout=5)
        assert r.ok


def test_finished_takes_survive_a_restart(tmp_path, make_take):
    from backend.server.launcher import LocalServer

    with LocalServer(tmp_path / "store") as server:
        tid = make_take(server.url)["take_id"]
        before = requests.get(server.url + C.take_path(tid, "blendshapes.json"), timeout=5).content
    assert not list((tmp_path / "store").glob(".staging-*"))
    with LocalServer(tmp_path / "store") as server:
        assert tid in requests.get(server.url + C.TAKES, timeout=5).json()["takes"]
        assert requests.get(server.url + C.take_path(tid, "blendshapes.json"), timeout=5).content == before


def test_retention_keeps_the_newest_takes(tmp_path, make_take):
    from backend.server.launcher import LocalServer

    with LocalServer(tmp_path / "store", extra_args=["--keep-takes", "2"]) as server:
        made = [make_take(server.url, seed=i)["take_id"] for i in range(3)]
        assert requests.get(server.url + C.TAKES, timeout=5).json()["takes"] == sorted(made[1:])  # the oldest went


def test_settings_come_from_the_environment_and_bad_values_say_which():
    from backend.settings import Settings
    from exomni_blender.core.errors import UserError

    s = Settings.from_env({"EXOMNI_PORT": "9000", "EXOMNI_KEEP_TAKES": "5", "EXOMNI_TOKEN": "",
                           "EXOMNI_ALLOW_ORIGINS": "http://a.example, http://b.example", "EXOMNI_STORE": "/x/takes"})
    assert (s.port, s.keep_takes, s.token, str(s.store)) == (9000, 5, "", "/x/takes")
    assert s.allow_origins == ("http://a.example", "http://b.example")
    with pytest.raises(UserError, match="EXOMNI_MAX_QUEUED"):
        Settings.from_env({"EXOMNI_MAX_QUEUED": "lots"})
    assert Settings.from_env({"EXOMNI_MAX_QUEUED": "lots"}, strict=False).max_queued == Settings().max_queued
