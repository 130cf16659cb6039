"""Mood, intensity and head motion over HTTP on the real server: JSON and multipart form fields
(which arrive as strings) reach the engine as numbers, and bad values get the validator's message."""

import io

import numpy as np
import pytest
import requests
import soundfile as sf

from exomni_blender.core import contract as C
from exomni_blender.core import face

LINE = "Please bring the blue box back home."
CLIENT = {C.CLIENT_HEADER: "tests"}


@pytest.fixture(scope="module")
def recording():
    from backend.engines.phonetic import espeak

    speech = espeak.synthesize(LINE, voice="en-us")
    buf = io.BytesIO()
    sf.write(buf, speech.audio, speech.sample_rate, format="WAV")
    return buf.getvalue()


def _take_meta(url, job):
    return requests.get(url + C.take_path(job["take_id"]), timeout=5).json()["meta"]


def test_form_fields_carry_mood_intensity_and_head_motion(live_server, recording, wait_job):
    r = requests.post(live_server + C.TAKES, files={"audio": ("line.wav", recording, "audio/wav")},
                      data={"mode": "lipsync", "text": LINE, "mood": "happy", "intensity": "0.6",
                            "head_motion": "0"}, headers=CLIENT, timeout=30)
    assert r.status_code == 202, r.text
    job = wait_job(live_server, r.json()["job_id"])
    assert job["state"] == C.DONE, job
    meta = _take_meta(live_server, job)
    assert face.mood_of(meta) == ("happy", 0.6) and face.head_rotation(meta) is None


def test_json_head_motion_lands_in_the_take(live_server, wait_job):
    r = requests.post(live_server + C.TAKES, json={"text": LINE, "mood": "angry", "intensity": 0.3,
                                                   "head_motion": 1.5}, timeout=30)
    assert r.status_code == 202, r.text
    meta = _take_meta(live_server, wait_job(live_server, r.json()["job_id"]))
    assert face.mood_of(meta) == ("angry", 0.3)
    assert 0.5 < np.abs(face.head_rotation(meta)).max() <= face.HEAD_LIMIT_DEG


@pytest.mark.parametrize("field, value, stated", [
    ("intensity", "lots", "form field 'intensity' must be a number"),
    ("intensity", "2", "intensity must be a number from 0 to 1"),
    ("head_motion", "3", "head_motion must be a number from 0 to 2"),
    ("mood", "grumpy", "mood must be one of"),
])
def test_bad_form_values_are_refused_with_the_range(live_server, recording, field, value, stated):
    r = requests.post(live_server + C.TAKES, files={"audio": ("line.wav", recording, "audio/wav")},
                      data={"mode": "lipsync", "text": LINE, field: value}, headers=CLIENT, timeout=30)
    assert r.status_code == 422, r.text
    assert stated in r.json()["error"]["message"]


def test_openapi_describes_the_new_fields(live_server):
    schema = requests.get(live_server + "/openapi.json", timeout=5).json()
    body = schema["paths"][C.TAKES]["post"]["requestBody"]["content"]
    fields = body["application/json"]["schema"]["properties"]
    assert fields["mood"]["enum"] == list(face.MOOD_NAMES)
    assert (fields["intensity"]["maximum"], fields["head_motion"]["maximum"]) == (1.0, 2.0)
    assert {"mood", "intensity", "head_motion"} <= set(body["multipart/form-data"]["schema"]["properties"])
