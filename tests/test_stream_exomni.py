"""The take stream of the exomni engine (tiny random checkpoint and decoder) through the real server:
pieces in order, equal to the stored take, a late client gets everything, and the face and the audio
come out while the line is still being made."""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # a server loads the tiny model (about half a minute)

from backend.server.launcher import LocalServer  # noqa: E402
from exomni_blender.core import contract as C  # noqa: E402
from exomni_blender.remote.client import Client  # noqa: E402
from exomni_blender.remote.stream import StreamedTake, stream_job  # noqa: E402

from test_stream_server import _receive, _same_as_stored  # noqa: E402

LINE = "Streaming speech and a face together, long enough for several chunks of both."


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from backend.models.audio_decoder import random_decoder, tiny_config
    from backend.models.exomni.tiny import make_tiny_checkpoint

    root = tmp_path_factory.mktemp("exomni_stream")
    checkpoint = make_tiny_checkpoint(root / "ckpt")
    decoder = random_decoder(tiny_config(), seed=0).save(root / "decoder")
    with LocalServer(root / "store", extra_args=["--exomni-checkpoint", str(checkpoint), "--exomni-decoder",
                                                 str(decoder), "--device", "cpu"],
                     log_path=root / "server.log", startup_timeout=120) as server:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            engines = {e["name"]: e for e in requests.get(server.url + C.ENGINES, timeout=30).json()["engines"]}
            if engines["exomni"].get("state") in ("ready", "failed"):
                break
            time.sleep(0.2)
        assert engines["exomni"]["available"], engines["exomni"]
        yield server.url


def _submit(url, **extra):
    body = {"engine": "exomni", "mode": "say", "text": LINE, "fps": 24, "seed": 5, **extra}
    r = requests.post(url + C.TAKES, json=body, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def test_streamed_exomni_take_is_the_stored_take_and_comes_early(served, tmp_path):
    job_id = _submit(served)
    got, events = _receive(served, job_id)
    end = events[-1].status
    assert end["state"] == C.DONE, end
    _same_as_stored(got, served, end["take_id"], tmp_path)
    pieces = [e for e in events if e.kind in (C.STREAM_AUDIO, C.STREAM_FRAMES)]
    assert sum(e.kind == C.STREAM_AUDIO for e in pieces) >= 2 and sum(e.kind == C.STREAM_FRAMES for e in pieces) >= 2
    # The units are still being made while the engine reports "speaking": the first frames arrive before
    # its last such report, so before the last unit; the first audio before half the take's time.
    order = [e.kind if e.kind != C.STREAM_PROGRESS else e.status.get("message") for e in events]
    last_speaking = max(i for i, what in enumerate(order) if what == "speaking")
    assert order.index(C.STREAM_FRAMES) < last_speaking, order
    info = requests.get(served + C.take_path(end["take_id"]), timeout=10).json()
    assert got.first_audio_elapsed < info["timings"]["total"] / 2, (got.first_audio_elapsed, info["timings"])
    assert got.first_frame_elapsed < got.first_audio_elapsed + info["timings"]["total"] / 2


def test_a_late_client_gets_what_was_made_then_the_rest(served, tmp_path):
    job_id = _submit(served, seed=9)
    with Client(served) as client:
        early = StreamedTake()
        for event in stream_job(client, job_id):  # the first client leaves after its first frames
            early.add(event)
            if early.frames.shape[0]:
                break
    late, events = _receive(served, job_id)  # joins mid-way (or after the end): everything, from 0
    assert events[-1].status["state"] == C.DONE
    assert np.array_equal(late.frames[:early.frames.shape[0]], early.frames)
    _same_as_stored(late, served, events[-1].status["take_id"], tmp_path)


def test_streamed_and_unstreamed_takes_are_the_same(served, tmp_path):
    first = _submit(served, seed=11)
    streamed, events = _receive(served, first)
    second = _submit(served, seed=11)  # nobody listens to this one
    end = time.monotonic() + 120
    while time.monotonic() < end:
        job = requests.get(served + C.job_path(second), timeout=10).json()
        if job["state"] in C.FINISHED_STATES:
            break
        time.sleep(0.05)
    assert job["state"] == C.DONE and job["take_id"] != events[-1].status["take_id"]
    _same_as_stored(streamed, served, job["take_id"], tmp_path)
