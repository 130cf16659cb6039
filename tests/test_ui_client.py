"""The add-on's HTTP client against the real backend on 127.0.0.1 (and against no backend at all)."""

import http.server
import threading

import pytest

from backend.server.launcher import LocalServer, free_port
from exomni_blender.core import contract as C
from exomni_blender.core.request import TEXT_LIMIT
from exomni_blender.remote.client import (ApiError, BackendError, BackendUnreachable, Client, OnlineAccessDisabled,
                                   normalize_url)
from exomni_blender.core.take import AUDIO_WAV, BLENDSHAPES_JSON, TAKE_JSON


# Blender's online-access switch is off by default in the bpy module; the client honours it.
pytestmark = pytest.mark.usefixtures("online_access")


def test_health_and_engines(live_server):
    with Client(live_server) as client:
        assert isinstance(client.health(), dict)
        engines = {e["name"]: e for e in client.engines()}
    assert "say" in engines["phonetic"]["modes"] and engines["phonetic"]["available"]


def test_a_take_goes_from_request_to_a_loaded_take_folder(live_server, tmp_path):
    text = "Bob made maps of the moon."
    with Client(live_server) as client:
        job = client.submit_take(text=text, fps=25.0, seed=3)
        assert job["state"] in C.JOB_STATES
        seen = []
        final = client.wait(job["job_id"], on_update=seen.append)
        assert final["state"] == C.DONE and final["take_id"], final
        assert all(0.0 <= s["progress"] <= 1.0 for s in seen)
        take = client.fetch_take(final["take_id"], tmp_path / "take")
    assert {p.name for p in (tmp_path / "take").iterdir()} == {TAKE_JSON, BLENDSHAPES_JSON, AUDIO_WAV}
    assert take.text == text and take.fps == 25.0 and take.has_audio
    assert abs(take.frames - take.duration * 25.0) <= 1.5
    assert take.weights.max() > 0.2  # the mouth moves


@pytest.mark.parametrize("body, code", [
    ({"text": ""}, C.E_EMPTY_TEXT),
    ({"text": "x" * (TEXT_LIMIT + 1)}, C.E_TEXT_TOO_LONG),
    ({"text": "hello", "engine": "no_such_engine"}, C.E_UNKNOWN_ENGINE),
])
def test_error_bodies_become_api_errors_with_the_servers_message(live_server, body, code):
    with Client(live_server) as client, pytest.raises(ApiError) as err:
        client.submit_take(**body)
    assert err.value.code == code and 400 <= err.value.status < 500
    assert len(str(err.value)) > 10


def test_unknown_job_and_local_field_checks(live_server):
    with Client(live_server) as client:
        with pytest.raises(ApiError) as err:
            client.job("no-such-job")
        assert err.value.code == C.E_UNKNOWN_JOB and err.value.status == 404
        with pytest.raises(BackendError, match="Unknown take request field"):
            client.submit_take(text="hello", colour="blue")


def test_no_server_gives_the_clear_message():
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, connect_timeout=1.0) as client, pytest.raises(BackendUnreachable) as err:
        client.health()
    message = str(err.value)
    assert url in message and "add-on preferences" in message and "exomni serve" in message


def test_a_server_that_is_not_the_backend_is_named_as_such():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(f"http://127.0.0.1:{server.server_address[1]}") as client, pytest.raises(ApiError) as err:
            client.health()
        assert "Ex-Omni backend" in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


def test_token_is_sent_and_a_missing_one_is_explained(tmp_path):
    with LocalServer(tmp_path / "store", token="s3cret", log_path=tmp_path / "log") as server:
        with Client(server.url) as client, pytest.raises(ApiError) as err:
            client.engines()
        assert err.value.status == 401 and "token" in str(err.value).lower()
        assert "preferences" in str(err.value)
        with Client(server.url, token="s3cret") as client:
            assert client.engines()


def test_online_access_off_stops_every_call_before_the_network(live_server):
    bpy = pytest.importorskip("bpy")
    import exomni_blender.ui as ui

    ui.register()  # installs Blender's switch as the client's network gate
    try:
        bpy.context.preferences.system.use_online_access = False
        assert not bpy.app.online_access
        with Client(live_server) as client, pytest.raises(OnlineAccessDisabled) as err:
            client.health()
        assert "Allow Online Access" in str(err.value)
        bpy.context.preferences.system.use_online_access = True
        with Client(live_server) as client:
            assert client.health() is not None
    finally:
        ui.unregister()
    bpy.context.preferences.system.use_online_access = False  # unregistered: the gate is gone
    with Client(live_server) as client:
        assert client.health() is not None


@pytest.mark.parametrize("url, expected", [
    ("", C.DEFAULT_URL),
    ("localhost:9000/", "http://localhost:9000"),
    ("https://farm.example:443", "https://farm.example:443"),
])
def test_urls_are_normalized(url, expected):
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://host", "http://", "http://host:notaport"])
def test_bad_urls_say_how_to_fix_them(url):
    with pytest.raises(BackendError, match="preferences|like http"):
        normalize_url(url)


def test_a_take_without_sound_downloads_without_audio(tmp_path):
    """A take with no audio (e.g. the model without its audio decoder) has no audio.wav on the server."""
    import numpy as np

    from backend.store import TakeStore
    from exomni_blender.core.take import Take

    store = tmp_path / "store"
    silent = TakeStore(store).put(Take(fps=30.0, weights=np.full((5, 52), 0.1, np.float32), text="mime",
                                       engine="exomni"))
    (tmp_path / "take").mkdir()
    (tmp_path / "take" / AUDIO_WAV).write_bytes(b"an older take's sound")
    with LocalServer(store, log_path=tmp_path / "log") as server, Client(server.url) as client:
        take = client.fetch_take(silent, tmp_path / "take")
    assert not take.has_audio and take.frames == 5 and take.text == "mime"
    assert not (tmp_path / "take" / AUDIO_WAV).exists()
