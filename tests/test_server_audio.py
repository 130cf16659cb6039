"""Recordings over HTTP on the real server: multipart and base64 uploads, bad files refused clearly."""

import base64
import io
import json

import numpy as np
import pytest
import requests
import soundfile as sf

from exomni_blender.core import contract as C
from exomni_blender.core.take import decode_wav

LINE = "Please bring the blue box back home."
CLIENT = {C.CLIENT_HEADER: "tests"}  # a multipart post needs it (a web page could not send it)


@pytest.fixture(scope="module")
def recording():
    from backend.engines.phonetic import espeak

    speech = espeak.synthesize(LINE, voice="en-gb")
    buf = io.BytesIO()
    sf.write(buf, np.stack([speech.audio, speech.audio], 1), speech.sample_rate, format="FLAC")  # stereo FLAC
    return buf.getvalue(), speech


def test_multipart_lipsync_keeps_the_recording(live_server, recording, wait_job):
    data, speech = recording
    r = requests.post(live_server + C.TAKES, files={"audio": ("line.flac", data, "audio/flac")},
                      data={"engine": "phonetic", "mode": "lipsync", "text": LINE, "fps": "25"}, headers=CLIENT,
                      timeout=30)
    assert r.status_code == 202, r.text
    job = wait_job(live_server, r.json()["job_id"])
    assert job["state"] == C.DONE, job
    info = requests.get(live_server + C.take_path(job["take_id"]), timeout=5).json()
    assert info["mode"] == "lipsync" and info["fps"] == 25 and info["phonemes"]
    audio, sr = decode_wav(requests.get(live_server + C.take_path(job["take_id"], "audio.wav"), timeout=5).content)
    assert sr == speech.sample_rate and abs(audio.size - speech.audio.size) <= 1
    assert np.abs(audio - speech.audio).max() < 2e-3  # the recording itself, not a resynthesis


def test_base64_clip_in_json(live_server, recording, wait_job):
    data, _ = recording
    body = {"mode": "lipsync", "text": LINE, "audio_base64": base64.b64encode(data).decode(), "audio_filename": "x.flac"}
    r = requests.post(live_server + C.TAKES, json=body, timeout=30)
    assert r.status_code == 202, r.text
    assert wait_job(live_server, r.json()["job_id"])["state"] == C.DONE


@pytest.mark.parametrize("name,payload,needle", [
    ("empty.wav", b"", "empty"),
    ("notes.wav", b"these are my notes, not audio\n" * 20, "notes.wav"),
    ("cut.wav", None, "truncated"),
])
def test_bad_recordings_are_refused_and_the_server_keeps_serving(live_server, recording, name, payload, needle):
    if payload is None:  # a WAV whose data chunk ends early
        buf = io.BytesIO()
        sf.write(buf, recording[1].audio, recording[1].sample_rate, format="WAV", subtype="PCM_16")
        payload = buf.getvalue()[: len(buf.getvalue()) // 3]
    r = requests.post(live_server + C.TAKES, files={"audio": (name, payload)},
                      data={"mode": "lipsync", "text": LINE}, headers=CLIENT, timeout=30)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == C.E_BAD_AUDIO and needle in err["message"]
    assert requests.get(live_server + C.HEALTH, timeout=5).ok


def test_lipsync_without_a_recording_says_how_to_send_one(live_server):
    r = requests.post(live_server + C.TAKES, json={"mode": "lipsync", "text": LINE}, timeout=5)
    assert r.status_code == 422 and "multipart" in r.json()["error"]["message"]


def test_request_json_field_in_multipart(live_server, recording, wait_job):
    data, _ = recording
    r = requests.post(live_server + C.TAKES, files={"audio": ("a.flac", data)},
                      data={"request": json.dumps({"mode": "lipsync", "seed": 4})}, headers=CLIENT, timeout=30)
    assert r.status_code == 202, r.text  # no transcript: phones are recognised
    assert wait_job(live_server, r.json()["job_id"])["state"] == C.DONE


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="reads the server's peak memory")
def test_a_long_recording_with_no_duration_is_refused_without_decoding_it_whole(tmp_path):
    """What a browser's recorder writes: Opus in WebM with no duration in the container. Twenty minutes
    of it is under 1 MB; the HTTP process must not decode it all to find it is over the limit."""
    import subprocess

    from backend.audio_input import ffmpeg_exe
    from backend.server.launcher import LocalServer

    webm = tmp_path / "long.webm"
    with open(webm, "wb") as out:  # written to a pipe, the container cannot go back to note its duration
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                        "sine=frequency=220:sample_rate=16000:duration=1200", "-c:a", "libopus", "-b:a", "6k",
                        "-ac", "1", "-f", "webm", "pipe:1"], stdout=out, check=True, timeout=120)
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(webm)], capture_output=True, text=True).stderr
    assert "Duration: N/A" in probe
    with LocalServer(tmp_path / "store", log_path=tmp_path / "server.log") as server:
        before = _peak_rss_mb(server.process.pid)
        r = requests.post(server.url + C.TAKES, files={"audio": ("line.webm", webm.read_bytes(), "audio/webm")},
                          data={"mode": "lipsync"}, headers=CLIENT, timeout=60)
        after = _peak_rss_mb(server.process.pid)
    assert r.status_code == 413 and r.json()["error"]["code"] == C.E_TOO_LARGE, r.text
    assert "limit of 600 s" in r.json()["error"]["message"]
    # Twenty minutes at 48 kHz is 230 MB as float32; the check counts samples and keeps none.
    assert after - before < 60, f"the HTTP process grew from {before:.0f} to {after:.0f} MB"
