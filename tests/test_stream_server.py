"""The take stream through the real server on 127.0.0.1: in order, contiguous, equal to the stored take,
whole for a late client, guarded like every endpoint; on the phonetic engine and a tiny exomni model."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from backend.streaming import wav_pcm16
from exomni_blender.core import contract as C
from exomni_blender.core.exchange.a2f import read_a2f
from exomni_blender.remote.client import Client
from exomni_blender.remote.stream import StreamedTake, stream_job


def _receive(url, job_id, token=""):
    """Every event of the job's stream, checked to be contiguous; the take they make."""
    got, events = StreamedTake(), []
    with Client(url, token) as client:
        for event in stream_job(client, job_id):
            events.append(event)
            if event.kind == C.STREAM_AUDIO:
                assert event.start == got.pcm.size, "an audio chunk left a gap or overlapped"
            elif event.kind == C.STREAM_FRAMES:
                assert event.start == got.frames.shape[0], "frames left a gap or overlapped"
            got.add(event)
    assert events[-1].kind == C.STREAM_END
    return got, events


def _stored(url, take_id, tmp_path):
    """The stored take's PCM bytes and weights, as downloaded."""
    audio = requests.get(url + C.take_path(take_id, "audio.wav"), timeout=30)
    bs = requests.get(url + C.take_path(take_id, "blendshapes.json"), timeout=30)
    assert audio.status_code == 200 and bs.status_code == 200
    (tmp_path / "bs.json").write_bytes(bs.content)
    rate, pcm = wav_pcm16(audio.content)
    fps, weights = read_a2f(tmp_path / "bs.json")
    return rate, pcm, fps, weights


def _same_as_stored(got, url, take_id, tmp_path):
    rate, pcm, fps, weights = _stored(url, take_id, tmp_path)
    assert got.pcm.astype("<i2").tobytes() == pcm, "the streamed audio is not the stored audio.wav"
    assert got.sample_rate == rate and got.fps == pytest.approx(fps)
    assert np.array_equal(got.frames, weights), "the streamed frames are not the stored blendshapes"


def test_phonetic_take_streams_whole_and_late_clients_get_everything(live_server, wait_job, tmp_path):
    r = requests.post(live_server + C.TAKES, json={"text": "Stream this line, please.", "fps": 24}, timeout=30)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    got, events = _receive(live_server, job_id)
    end = events[-1].status
    assert end["state"] == C.DONE and C.is_take_id(end["take_id"])
    assert got.pcm.size > 22050 // 2 and got.frames.shape[1] == 52
    _same_as_stored(got, live_server, end["take_id"], tmp_path)
    # After the end: the whole take again, from the store.
    late, late_events = _receive(live_server, job_id)
    assert late_events[-1].status["take_id"] == end["take_id"]
    assert np.array_equal(late.pcm, got.pcm) and np.array_equal(late.frames, got.frames)


def test_a_finished_long_take_replays_in_small_pieces_equal_to_the_store(live_server, wait_job, tmp_path):
    """A late client of a long take gets it in pieces of about half a second (each event a few tens of
    KB, never the whole take at once), sound and face advancing together, the same bytes as stored."""
    line = " ".join(["The quick brown fox jumps over the lazy dog near the riverbank."] * 12)
    r = requests.post(live_server + C.TAKES, json={"text": line}, timeout=30)
    job = wait_job(live_server, r.json()["job_id"])
    assert job["state"] == C.DONE
    stream = requests.get(live_server + C.job_stream_path(job["job_id"]), stream=True, timeout=60)
    sizes = [len(line) for line in stream.iter_lines() if line.startswith(b"data:")]
    got, events = _receive(live_server, job["job_id"])
    _same_as_stored(got, live_server, job["take_id"], tmp_path)
    assert got.pcm.size > 40 * 22050 // 2  # a long take: tens of seconds
    audio = [e for e in events if e.kind == C.STREAM_AUDIO]
    frames = [e for e in events if e.kind == C.STREAM_FRAMES]
    assert len(audio) >= 40 and len(frames) >= 40
    assert max(sizes) < 64_000, f"an event of {max(sizes)} bytes: the replay was not cut into pieces"
    # Interleaved: the face never runs more than a piece ahead of the sound, nor the sound of the face.
    order = [(e.start / got.sample_rate if e.kind == C.STREAM_AUDIO else e.start / got.fps) for e in events[:-1]]
    assert max(abs(a - b) for a, b in zip(order, order[1:])) <= 0.6


def test_the_stream_of_an_unknown_job_is_404(live_server):
    r = requests.get(live_server + C.job_stream_path("0123456789abcdef"), timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == C.E_UNKNOWN_JOB


def test_the_stream_obeys_host_origin_and_token(tmp_path):
    from backend.server.launcher import LocalServer

    with LocalServer(tmp_path / "store", token="s3cret", log_path=tmp_path / "server.log") as server:
        r = requests.post(server.url + C.TAKES, json={"text": "Guarded."},
                          headers={"Authorization": "Bearer s3cret"}, timeout=30)
        job_id = r.json()["job_id"]
        path = server.url + C.job_stream_path(job_id)
        assert requests.get(path, timeout=10).status_code == 401
        assert requests.get(path, headers={"Authorization": "Bearer s3cret", "Host": "evil.example"},
                            timeout=10).status_code == 403
        assert requests.get(path, headers={"Authorization": "Bearer s3cret", "Origin": "https://evil.example"},
                            timeout=10).status_code == 403
        got, events = _receive(server.url, job_id, token="s3cret")
        assert events[-1].status["state"] == C.DONE and got.frames.shape[0] > 0
