"""The job queue's states, cancel and upload cleanup (pure logic, with an engine the test steers), and
uploads left nowhere by the real server."""

import io
import threading
import time

import numpy as np
import pytest
import requests
import soundfile as sf

from backend.engines.base import Engine, TakeRequest
from backend.engines.phonetic import espeak
from backend.engines.registry import EngineRegistry
from backend.jobs import JobQueue
from backend.server.launcher import LocalServer
from backend.store import TakeStore
from exomni_blender.core import contract as C
from exomni_blender.core.take import Take


class SteeredEngine(Engine):
    """Reports progress until the test lets it finish; `started` is set once a take is running."""

    name, modes = "steered", ("say",)

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def make_take(self, request, progress):
        self.started.set()
        while not self.release.wait(0.01):
            progress(0.5, "working")
        if request.text == "break":
            raise RuntimeError("engine bug")
        return Take(fps=request.fps, weights=np.zeros((3, 52), np.float32), text=request.text, engine=self.name)


@pytest.fixture
def queue(tmp_path):
    engine = SteeredEngine()
    jobs = JobQueue(EngineRegistry([engine]), TakeStore(tmp_path / "store"))
    yield jobs, engine
    engine.release.set()
    jobs.shutdown()


def _wait(job, timeout=10):
    deadline = time.monotonic() + timeout
    while job.state not in C.FINISHED_STATES:
        assert time.monotonic() < deadline, job.to_json()
        time.sleep(0.01)
    return job


def _upload(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"recording")
    return path


def test_cancel_while_running_stores_nothing_and_removes_the_upload(queue, tmp_path):
    jobs, engine = queue
    upload = _upload(tmp_path, "a.wav")
    job = jobs.submit(TakeRequest(engine="steered", text="hello"), cleanup=[upload])
    assert engine.started.wait(10) and job.state == C.RUNNING
    assert jobs.cancel(job.job_id).message == "cancelling"
    _wait(job)
    assert job.state == C.CANCELLED and job.take_id is None and job.finished is not None
    assert not upload.exists() and jobs.store.list() == []


def test_done_and_failed_jobs_remove_their_uploads(queue, tmp_path):
    jobs, engine = queue
    engine.release.set()
    good, bad = _upload(tmp_path, "good.wav"), _upload(tmp_path, "bad.wav")
    done = _wait(jobs.submit(TakeRequest(engine="steered", text="hello"), cleanup=[good]))
    failed = _wait(jobs.submit(TakeRequest(engine="steered", text="break"), cleanup=[bad]))
    assert done.state == C.DONE and done.progress == 1.0 and jobs.store.list() == [done.take_id]
    assert failed.state == C.FAILED and failed.error["code"] == C.E_INTERNAL and "engine bug" in failed.error["message"]
    assert not good.exists() and not bad.exists()
    # the worker survived the engine's bug
    assert _wait(jobs.submit(TakeRequest(engine="steered", text="again"))).state == C.DONE


def test_shutdown_cancels_queued_jobs_and_removes_their_uploads(queue, tmp_path):
    jobs, engine = queue
    running = jobs.submit(TakeRequest(engine="steered", text="first"), cleanup=[_upload(tmp_path, "1.wav")])
    assert engine.started.wait(10)
    waiting = [jobs.submit(TakeRequest(engine="steered", text=f"line {i}"), cleanup=[_upload(tmp_path, f"q{i}.wav")])
               for i in range(3)]
    jobs.shutdown()
    assert [j.state for j in waiting] == [C.CANCELLED] * 3
    assert _wait(running).state == C.CANCELLED  # asked to stop, and it did
    assert not list(tmp_path.glob("*.wav")) and jobs.store.list() == []


def test_only_the_newest_finished_jobs_are_kept(queue, monkeypatch):
    import backend.jobs

    jobs, engine = queue
    monkeypatch.setattr(backend.jobs, "MAX_FINISHED_JOBS", 3)
    first = jobs.submit(TakeRequest(engine="steered", text="runs long"))
    assert engine.started.wait(10)
    waiting = [jobs.submit(TakeRequest(engine="steered", text=f"line {i}")) for i in range(4)]
    assert all(jobs.get(j.job_id) for j in [first, *waiting])  # the oldest still runs: nothing is forgotten
    engine.release.set()
    for job in [first, *waiting]:
        _wait(job)
    last = _wait(jobs.submit(TakeRequest(engine="steered", text="last")))
    kept = [j for j in [first, *waiting, last] if jobs.get(j.job_id)]
    assert kept == [*waiting[-2:], last]


def test_the_real_server_leaves_no_upload_behind(tmp_path, monkeypatch, wait_job):

    uploads = tmp_path / "tmp"
    uploads.mkdir()
    monkeypatch.setenv("TMPDIR", str(uploads))  # the server's temp folder, to look into
    speech = espeak.synthesize("Bring the blue box back.")
    buf = io.BytesIO()
    sf.write(buf, speech.audio, speech.sample_rate, format="FLAC")
    with LocalServer(tmp_path / "store", log_path=tmp_path / "server.log") as server:
        ok = requests.post(server.url + C.TAKES, files={"audio": ("line.flac", buf.getvalue())},
                           data={"mode": "lipsync", "text": "Bring the blue box back."}, timeout=30)
        refused = requests.post(server.url + C.TAKES, files={"audio": ("notes.wav", b"just some notes\n" * 50)},
                                data={"mode": "lipsync"}, timeout=30)
        malformed = requests.post(server.url + C.TAKES, files={"audio": ("line.flac", buf.getvalue())},
                                  data={"request": "[1, 2]", "text": "hi"}, timeout=30)
        assert ok.status_code == 202 and refused.status_code == 422
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == C.E_MALFORMED_JSON
        assert wait_job(server.url, ok.json()["job_id"])["state"] == C.DONE
        assert list(uploads.glob("exomni-upload-*")) == []
