"""The job queue: engines in a worker process, cancel within a second whatever the engine does, uploads
removed, a bounded queue and history, and accepted jobs that survive a crash (with an engine the test
steers through files, since it runs in another process)."""

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf

from backend.engines.base import Engine, TakeRequest
from backend.engines.phonetic import espeak
from backend.engines.registry import EngineRegistry
from backend.jobs import JobQueue, QueueFull
from backend.server.launcher import LocalServer
from backend.settings import Settings
from backend.store import TakeStore
from exomni_blender.core import contract as C
from exomni_blender.core.request import RequestError
from exomni_blender.core.take import Take


class SteeredEngine(Engine):
    """Works until the file `release` exists. Text "busy" never looks at cancel (a stuck native call),
    "break" raises, "crash" ends its process, "crash once" ends it on its first run only."""

    name, modes = "steered", ("say",)

    def __init__(self, folder: Path):
        self.release, self.started = folder / "release", folder / "started"

    def make_take(self, request, progress):
        self.started.write_text(request.text)
        if request.text == "publish":  # incremental output, as a streaming engine hands it out
            for i in range(3):
                progress.publish({"piece": i})
        while not self.release.exists():
            if request.text != "busy":
                progress(0.5, "working")
            time.sleep(0.01)
        if request.text == "break":
            raise RuntimeError("engine bug")
        if request.text == "crash":
            os._exit(3)
        crashed_before = self.release.with_name("crashed")
        if request.text == "crash once" and not crashed_before.exists():
            crashed_before.touch()
            os._exit(4)
        progress(1.0, "finishing")
        return Take(fps=request.fps, weights=np.zeros((3, 52), np.float32), text=request.text, engine=self.name)


def _queue(tmp_path, **settings):
    engine = SteeredEngine(tmp_path)
    return JobQueue(EngineRegistry([engine]), TakeStore(tmp_path / "store"), Settings(**settings)), engine


@pytest.fixture
def queue(tmp_path):
    jobs, engine = _queue(tmp_path)
    yield jobs, engine
    engine.release.touch()
    jobs.shutdown()


def _wait(jobs, job_id, states=C.FINISHED_STATES, timeout=20):
    deadline = time.monotonic() + timeout
    while (job := jobs.get(job_id)).state not in states:
        assert time.monotonic() < deadline, job.to_json()
        time.sleep(0.01)
    return job


def _started(engine, timeout=20):
    deadline = time.monotonic() + timeout
    while not engine.started.exists():
        assert time.monotonic() < deadline, "the engine never started"
        time.sleep(0.01)


def _upload(jobs, job_id):
    path = jobs.upload_path(job_id, ".wav")
    path.write_bytes(b"recording")
    return path


def test_cancel_stops_an_engine_that_never_looks_within_a_second(queue):
    jobs, engine = queue
    job = jobs.submit(TakeRequest(engine="steered", text="busy"), job_id="0" * 8 + "aaaaaaaa")
    upload = _upload(jobs, job.job_id)
    job.upload = str(upload)
    _started(engine)
    assert jobs.get(job.job_id).state == C.RUNNING
    t0 = time.monotonic()
    jobs.cancel(job.job_id)
    done = _wait(jobs, job.job_id)
    assert time.monotonic() - t0 < 1.0
    assert done.state == C.CANCELLED and done.take_id is None and not upload.parent.exists()
    engine.release.touch()  # the next job runs on a fresh worker
    engine.started.unlink()
    assert _wait(jobs, jobs.submit(TakeRequest(engine="steered", text="again")).job_id).state == C.DONE
    assert len(jobs.store.list()) == 1


def test_failures_and_crashes_end_their_job_with_a_reason_and_the_next_job_runs(queue):
    jobs, engine = queue
    engine.release.touch()
    failed = _wait(jobs, jobs.submit(TakeRequest(engine="steered", text="break")).job_id)
    assert failed.state == C.FAILED and failed.error["code"] == C.E_INTERNAL and "engine bug" in failed.error["message"]
    crashed = _wait(jobs, jobs.submit(TakeRequest(engine="steered", text="crash")).job_id)
    assert crashed.state == C.FAILED and "stopped 2 times" in crashed.error["message"]
    assert crashed.attempts == 2  # run once more after the first death, as after a server's, then given up
    survived = _wait(jobs, jobs.submit(TakeRequest(engine="steered", text="crash once")).job_id)
    assert survived.state == C.DONE and survived.attempts == 1 and survived.take_id in jobs.store.list()
    done = _wait(jobs, jobs.submit(TakeRequest(engine="steered", text="fine")).job_id)
    assert done.state == C.DONE and done.to_json()["progress"] == 1.0 and done.take_id in jobs.store.list()
    assert len(jobs.store.list()) == 2


def test_running_never_reports_done_progress_without_a_take(queue):
    jobs, engine = queue
    job = jobs.submit(TakeRequest(engine="steered", text="hello"))
    _started(engine)
    seen = []
    for _ in range(20):
        seen.append(jobs.get(job.job_id).to_json())
        time.sleep(0.01)
    engine.release.touch()
    seen.append(_wait(jobs, job.job_id).to_json())
    assert all(s["progress"] < 1.0 for s in seen if s["state"] == C.RUNNING)
    assert seen[-1]["progress"] == 1.0 and seen[-1]["take_id"]


def test_a_full_queue_answers_busy_with_when_to_retry(tmp_path):
    jobs, engine = _queue(tmp_path, max_queued=2)
    try:
        first = jobs.submit(TakeRequest(engine="steered", text="runs"))
        _started(engine)
        waiting = [jobs.submit(TakeRequest(engine="steered", text=f"line {i}")) for i in range(2)]
        with pytest.raises(QueueFull) as err:
            jobs.submit(TakeRequest(engine="steered", text="one too many"))
        assert err.value.code == C.E_BUSY and err.value.status == 429 and err.value.retry_after >= 1
        jobs.cancel(waiting[0].job_id)
        room = jobs.submit(TakeRequest(engine="steered", text="now there is room"))
        assert room.state == C.QUEUED and jobs.get(waiting[0].job_id).state == C.CANCELLED
        assert jobs.counts() == {"queued": 2, "running": 1}  # the refused request left nothing behind
        engine.release.touch()
        assert _wait(jobs, first.job_id).state == C.DONE  # the busy answer never touched the running job
        assert [_wait(jobs, j.job_id).state for j in (waiting[1], room)] == [C.DONE, C.DONE]
        assert len(jobs.store.list()) == 3
    finally:
        engine.release.touch()
        jobs.shutdown()


def test_history_is_bounded_and_an_aged_out_id_says_so(tmp_path):
    jobs, engine = _queue(tmp_path, keep_jobs=2)
    engine.release.touch()
    ids = [_wait(jobs, jobs.submit(TakeRequest(engine="steered", text=f"l{i}")).job_id).job_id for i in range(4)]
    jobs.shutdown()
    jobs, _ = _queue(tmp_path, keep_jobs=2)  # history is trimmed at start (and every 50 jobs)
    try:
        assert [jobs.get(i).state for i in ids[2:]] == [C.DONE, C.DONE]
        for old in ids[:2]:
            with pytest.raises(RequestError) as err:
                jobs.get(old)
            assert err.value.code == C.E_JOB_EXPIRED and err.value.status == 410 and C.TAKES in str(err.value)
        with pytest.raises(RequestError) as err:
            jobs.get("ffffffff00000000")  # from the future: never accepted
        assert err.value.code == C.E_UNKNOWN_JOB and err.value.status == 404
        with pytest.raises(RequestError) as err:
            jobs.get("00000001" + ids[0][8:])  # dated before every forgotten job, but never issued (issue 20)
        assert err.value.code == C.E_UNKNOWN_JOB and err.value.status == 404
    finally:
        jobs.shutdown()


def test_accepted_jobs_survive_a_crash_and_run_after_the_restart(tmp_path):
    jobs, engine = _queue(tmp_path)
    running = jobs.submit(TakeRequest(engine="steered", text="first"))
    _started(engine)
    waiting = [jobs.submit(TakeRequest(engine="steered", text=f"line {i}")) for i in range(3)]
    upload = _upload(jobs, waiting[0].job_id)
    jobs._table.save(waiting[0].__class__(**{**waiting[0].__dict__, "upload": str(upload)}))
    # a crash: the dispatcher and the worker vanish without a word (no shutdown)
    jobs._stopping = True
    jobs._wake()
    jobs._thread.join(5)
    (tmp_path / "store" / ".uploads" / "orphan").mkdir()  # an upload of a request never accepted
    engine.release.touch()
    again, _ = _queue(tmp_path)
    try:
        for job in [running, *waiting]:
            assert _wait(again, job.job_id).state == C.DONE
        assert len(again.store.list()) == 4
        assert not list((tmp_path / "store" / ".uploads").iterdir())
    finally:
        again.shutdown()


def test_the_real_server_leaves_no_upload_behind(tmp_path, wait_job):
    speech = espeak.synthesize("Bring the blue box back.")
    buf = io.BytesIO()
    sf.write(buf, speech.audio, speech.sample_rate, format="FLAC")
    client = {C.CLIENT_HEADER: "tests"}
    with LocalServer(tmp_path / "store", log_path=tmp_path / "server.log") as server:
        ok = requests.post(server.url + C.TAKES, files={"audio": ("line.flac", buf.getvalue())},
                           data={"mode": "lipsync", "text": "Bring the blue box back."}, headers=client, timeout=30)
        refused = requests.post(server.url + C.TAKES, files={"audio": ("notes.wav", b"just some notes\n" * 50)},
                                data={"mode": "lipsync"}, headers=client, timeout=30)
        malformed = requests.post(server.url + C.TAKES, files={"audio": ("line.flac", buf.getvalue())},
                                  data={"request": "[1, 2]", "text": "hi"}, headers=client, timeout=30)
        assert ok.status_code == 202 and refused.status_code == 422
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == C.E_MALFORMED_JSON
        assert wait_job(server.url, ok.json()["job_id"])["state"] == C.DONE
        assert list((tmp_path / "store" / ".uploads").iterdir()) == []


def test_incremental_output_is_an_event_list_per_job_while_it_runs(queue):
    jobs, engine = queue
    job = jobs.submit(TakeRequest(engine="steered", text="publish"))
    deadline = time.monotonic() + 20
    while len(pieces := [e for e in jobs.events(job.job_id) if isinstance(e, dict) and "piece" in e]) < 3:
        assert time.monotonic() < deadline, jobs.events(job.job_id)
        time.sleep(0.01)
    assert pieces == [{"piece": 0}, {"piece": 1}, {"piece": 2}] and jobs.get(job.job_id).state == C.RUNNING
    engine.release.touch()
    assert _wait(jobs, job.job_id).state == C.DONE
