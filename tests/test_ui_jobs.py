"""The add-on's job runner: work on threads, results applied only by pump() on the calling thread."""

import threading
import time

import pytest

from exomni_blender.ui import jobs
from exomni_blender.remote.client import BackendUnreachable


@pytest.fixture(autouse=True)
def clean_runner():
    jobs.shutdown()
    yield
    jobs.shutdown()


def _worker_of(job):
    """The thread running `job`'s work (named after the job by jobs.start)."""
    return next(t for t in threading.enumerate() if t.name == f"exomni-{job.kind}-{job.id}")


def test_result_and_progress_are_applied_on_the_pumping_thread():
    seen = []
    reported, release = threading.Event(), threading.Event()

    def work(job):
        job.report(0.5, "half way")
        reported.set()
        release.wait(5)
        return threading.get_ident()

    def on_progress(job):
        seen.append(("progress", threading.get_ident(), job.progress, job.message))

    def on_finish(job):
        seen.append(("finish", threading.get_ident(), job.state, job.result))

    job = jobs.start("t", work, "working", on_finish=on_finish, on_progress=on_progress)
    assert reported.wait(5)
    # The worker has reported: nothing of it shows until the main thread pumps.
    assert seen == [] and job.progress == 0.0 and job.message == "working"
    assert jobs.busy("t") and not job.finished
    assert jobs.pump() == 1
    assert seen == [("progress", threading.get_ident(), 0.5, "half way")]
    assert job.progress == 0.5 and job.message == "half way"
    worker = _worker_of(job)
    release.set()
    worker.join(5)
    assert not job.finished and len(seen) == 1  # finished work waits for the pump too
    assert jobs.pump() == 1
    kind, thread, state, worker_thread = seen[-1]
    assert (kind, thread, state) == ("finish", threading.get_ident(), jobs.DONE)
    assert worker_thread == worker.ident != threading.get_ident()
    assert job.progress == 1.0 and not jobs.busy("t") and jobs.latest("t") is job


def test_errors_become_messages_not_exceptions():
    job = jobs.wait(jobs.start("t", lambda job: (_ for _ in ()).throw(
        BackendUnreachable("Cannot reach the backend. Start it."))), timeout=5)
    assert job.state == jobs.FAILED and job.error == "Cannot reach the backend. Start it."

    job = jobs.wait(jobs.start("t", lambda job: 1 / 0), timeout=5)
    assert job.state == jobs.FAILED and job.error.startswith("ZeroDivisionError")


def test_a_failing_finish_callback_marks_the_job_failed_and_does_not_escape():
    def broken(job):
        raise RuntimeError("could not key")

    job = jobs.wait(jobs.start("t", lambda job: 42, on_finish=broken), timeout=5)
    assert job.state == jobs.FAILED and "could not key" in job.error


def test_cancel_reaches_the_work_and_wins_over_a_late_result():
    started = threading.Event()

    def cooperative(job):
        started.set()
        while True:
            job.check()
            time.sleep(0.01)

    job = jobs.start("c", cooperative)
    assert started.wait(5)
    assert jobs.cancel("c") == 1
    assert jobs.wait(job, timeout=5).state == jobs.CANCELLED

    finished = []
    gate = threading.Event()
    late = jobs.start("c", lambda job: gate.wait(5) and "made anyway", on_finish=finished.append)
    late.cancel()
    gate.set()
    jobs.wait(late, timeout=5)
    assert late.state == jobs.CANCELLED and late.result is None and finished == [late]


def test_shutdown_drops_results_of_earlier_jobs():
    gate = threading.Event()
    applied = []
    job = jobs.start("s", lambda job: gate.wait(5), on_finish=applied.append)
    worker = _worker_of(job)
    jobs.shutdown()
    gate.set()
    worker.join(5)
    assert not worker.is_alive()  # its result is queued by now: only the shutdown keeps it out
    assert jobs.pump() == 0 and applied == [] and jobs.latest("s") is None and job.cancel_requested
    assert not job.finished  # a job of an earlier registration never lands, not even as cancelled

    # The same, without a shutdown in between, does land: the check above is not vacuous.
    gate = threading.Event()
    kept = jobs.start("s", lambda job: gate.wait(5) and "kept", on_finish=applied.append)
    worker = _worker_of(kept)
    gate.set()
    worker.join(5)
    assert jobs.pump() == 1 and applied == [kept] and kept.result == "kept"


def test_record_shows_a_failure_found_before_any_work():
    job = jobs.fail("generate", "Type a line for the head to say.")
    assert jobs.latest("generate") is job and job.finished and job.error == job.message
    assert not jobs.busy("generate")


def test_the_timer_survives_an_error_while_pumping(monkeypatch):
    # Blender unregisters a timer whose function raises: every running job would then stall.
    gate = threading.Event()
    job = jobs.start("timer", lambda job: gate.wait(5) and "done")

    def broken_redraw():
        raise RuntimeError("no window to redraw")

    monkeypatch.setattr(jobs, "_redraw", broken_redraw)
    job.report(0.5, "half")
    deadline = time.monotonic() + 5
    while job.progress == 0.0 and time.monotonic() < deadline:
        assert jobs._tick() == jobs.TICK_SECONDS  # still running: the timer asks to be called again
        time.sleep(0.01)
    assert job.progress == 0.5
    gate.set()
    while not job.finished and time.monotonic() < deadline:
        jobs._tick()
        time.sleep(0.01)
    assert job.state == jobs.DONE and job.result == "done"
