"""The add-on's client uploading recordings to the real backend: streamed from disk, refused clearly."""

import io
import tracemalloc

import numpy as np
import pytest
import requests
import soundfile as sf

from exomni_blender.core import contract as C
from exomni_blender.remote.client import ApiError, Client, MultipartUpload, UploadCancelled


# Blender's online-access switch is off by default in the bpy module; the client honours it.
pytestmark = pytest.mark.usefixtures("online_access")


@pytest.fixture(scope="module")
def line_flac(tmp_path_factory):
    from backend.engines.phonetic import espeak
    speech = espeak.synthesize("Bob bought a big blue bag.", voice="en-us")
    path = tmp_path_factory.mktemp("rec") / "bob line.flac"
    sf.write(path, speech.audio, speech.sample_rate)
    return path


def test_the_multipart_body_is_what_a_form_upload_is(tmp_path):
    """Parsed by the same multipart parser the server uses, the stream gives back the fields and file."""
    from starlette.datastructures import Headers
    from starlette.formparsers import MultiPartParser
    import asyncio

    payload = bytes(range(256)) * 1000
    path = tmp_path / "x.wav"
    path.write_bytes(payload)
    body = MultipartUpload({"request": '{"mode": "lipsync"}'}, "audio", path, 'say "hi".wav', chunk=4096)
    data = b"".join(body)
    assert len(data) == len(body)

    async def parse():
        async def stream():
            for i in range(0, len(data), 1000):
                yield data[i:i + 1000]
        form = await MultiPartParser(Headers({"content-type": body.content_type}), stream()).parse()
        return form["request"], form["audio"].filename, await form["audio"].read()

    request, filename, content = asyncio.run(parse())
    assert request == '{"mode": "lipsync"}' and content == payload and filename == "say %22hi%22.wav"


def test_lipsync_upload_makes_a_take_and_reports_its_progress(live_server, line_flac):
    seen = []
    with Client(live_server) as client:
        job = client.submit_take(audio=line_flac, mode="lipsync", text="Bob bought a big blue bag.", fps=24.0,
                                 on_upload=lambda sent, total: seen.append((sent, total)))
        final = client.wait(job["job_id"])
    assert final["state"] == C.DONE, final
    assert seen and seen[-1][0] == seen[-1][1] and all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))
    assert seen[-1][1] > line_flac.stat().st_size  # the file plus the form around it


def test_a_large_recording_is_streamed_not_read_into_memory(live_server, tmp_path):
    rate, seconds = 44100, 100
    noise = np.random.default_rng(0).uniform(-0.2, 0.2, (rate * seconds, 2)).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, noise, rate, subtype="PCM_16")
    size = path.stat().st_size
    assert size > 15 * 2**20
    del noise
    tracemalloc.start()
    try:
        with Client(live_server) as client, pytest.raises(ApiError) as err:
            # phonetic has no chat mode: the server reads the whole upload, then refuses the request.
            client.submit_take(audio=path, engine="phonetic", mode="chat")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.code == C.E_UNKNOWN_MODE
    print(f"uploaded {size / 2**20:.1f} MB with a peak of {peak / 2**20:.2f} MB of Python memory")
    assert peak < size / 8


def test_an_oversized_upload_is_refused_by_its_length_before_it_is_read(live_server, tmp_path):
    path = tmp_path / "huge.wav"
    with open(path, "wb") as fh:  # sparse: no disk space used
        fh.truncate(C.MAX_AUDIO_BYTES + 2_000_000)
    with Client(live_server) as client, pytest.raises(ApiError) as err:
        client.submit_take(audio=path, mode="lipsync")
    assert err.value.code == C.E_TOO_LARGE and err.value.status == 413 and "MB" in str(err.value)
    assert requests.get(live_server + C.HEALTH, timeout=5).ok


def test_bad_audio_comes_back_with_the_servers_message_and_cancel_stops_an_upload(live_server, tmp_path, line_flac):
    cut = tmp_path / "cut.wav"
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000, np.float32) + 0.1, 16000, format="WAV")
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with Client(live_server) as client:
        with pytest.raises(ApiError) as err:
            client.submit_take(audio=cut, mode="lipsync")
        assert err.value.code == C.E_BAD_AUDIO and "cut.wav" in str(err.value) and "truncated" in str(err.value)
        with pytest.raises(UploadCancelled):
            client.submit_take(audio=line_flac, mode="lipsync", should_cancel=lambda: True)
        assert client.health()  # the connection and the server are fine afterwards
