"""Connections a hostile or broken client holds open (issue 20), against the real server on 127.0.0.1:
idle, half-sent headers, a body that stops or trickles, and hundreds of idle sockets at once."""

import json
import socket
import time

import pytest
import requests

from backend.server.launcher import LocalServer
from exomni_blender.core import contract as C

TIMEOUT = 1.0  # the header, keep-alive and body timeouts the fast server is started with


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    root = tmp_path_factory.mktemp("connections")
    args = ["--header-timeout", str(TIMEOUT), "--keep-alive-timeout", str(TIMEOUT), "--body-timeout", str(TIMEOUT)]
    with LocalServer(root / "store", log_path=root / "server.log", extra_args=args) as s:
        yield s


def _connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _seconds_until_closed(sock, drip: bytes = b"", every: float = 0.25, limit: float = 8.0) -> float:
    """Seconds until the server closes `sock` (recv gives b"" or a reset), sending `drip` every `every` s."""
    t0 = time.monotonic()
    sock.settimeout(every)
    while time.monotonic() - t0 < limit:
        try:
            if not sock.recv(4096):
                return time.monotonic() - t0
        except socket.timeout:
            if drip:
                try:
                    sock.sendall(drip)
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - t0
        except ConnectionResetError:
            return time.monotonic() - t0
    return float("inf")


def _answer(sock) -> tuple:
    """(status, headers, JSON body) of the one answer on `sock`."""
    data = b""
    sock.settimeout(8)
    while b"\r\n\r\n" not in data:
        more = sock.recv(4096)
        assert more, data
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(4096)
    return int(lines[0].split()[1]), headers, json.loads(body) if body else None


def test_a_silent_connection_is_closed_within_the_header_timeout(fast):
    with _connect(fast.port) as sock:
        took = _seconds_until_closed(sock)
    print(f"silent connection closed after {took:.2f} s (timeout {TIMEOUT} s)")
    assert TIMEOUT * 0.8 < took < TIMEOUT + 1.5


def test_half_sent_headers_dripping_a_byte_at_a_time_are_closed_within_the_header_timeout(fast):
    with _connect(fast.port) as sock:
        sock.sendall(f"GET {C.HEALTH} HTTP/1.1\r\nHost: 127.0.0.1:{fast.port}\r\nX-Slow: ".encode())
        took = _seconds_until_closed(sock, drip=b"a", every=0.2)
    print(f"half-sent headers closed after {took:.2f} s (timeout {TIMEOUT} s)")
    assert took < TIMEOUT + 1.5


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(fast):
    with _connect(fast.port) as sock:
        for _ in range(2):  # one connection, two requests: the deadline starts again after each answer
            sock.sendall(f"GET {C.HEALTH} HTTP/1.1\r\nHost: 127.0.0.1:{fast.port}\r\n\r\n".encode())
            assert _answer(sock)[0] == 200
            time.sleep(TIMEOUT * 0.5)
        took = _seconds_until_closed(sock)
    assert took < TIMEOUT + 1.5


@pytest.mark.parametrize("kind", ["stops", "trickles"])
def test_a_body_that_stops_or_trickles_gets_408_and_the_connection_closed(fast, kind):
    body = json.dumps({"text": "x" * 3000}).encode()
    with _connect(fast.port) as sock:
        sock.sendall((f"POST {C.TAKES} HTTP/1.1\r\nHost: 127.0.0.1:{fast.port}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:10])
        t0 = time.monotonic()
        if kind == "trickles":  # a byte every 0.3 s: never idle for the timeout, far under the rate
            sock.settimeout(0.3)
            for i in range(10, 40):
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break
                except socket.timeout:
                    sock.sendall(body[i:i + 1])
        status, headers, answer = _answer(sock)
        took = time.monotonic() - t0
        assert status == 408 and answer["error"]["code"] == C.E_TIMEOUT, answer
        assert "send it again" in answer["error"]["message"] and headers.get("connection") == "close"
        assert _seconds_until_closed(sock, limit=3) < 3
    print(f"a body that {kind}: 408 after {took:.2f} s")
    assert took < TIMEOUT + 2
    assert requests.get(fast.url + C.HEALTH, timeout=5).ok


def test_slow_work_and_a_fast_upload_are_not_cut_by_the_timeouts(fast):
    """A take longer than the header timeout, a stream read across it, a body sent at once."""
    line = "A line long enough that speaking it takes a while, said over and over. " * 20
    r = requests.post(fast.url + C.TAKES, json={"text": line}, timeout=10)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    events = []
    with requests.get(fast.url + C.job_stream_path(job_id), stream=True, timeout=60) as stream:
        for raw in stream.iter_lines():
            if raw.startswith(b"event: "):
                events.append(raw[7:].decode())
    assert events[-1] == C.STREAM_END and C.STREAM_FRAMES in events
    job = requests.get(fast.url + C.job_path(job_id), timeout=5).json()
    assert job["state"] == C.DONE, job


def _open_idle(port, count):
    socks = []
    for _ in range(count):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    return socks


def _still_open(socks) -> int:
    alive = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            alive += sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def test_hundreds_of_idle_sockets_never_stop_health(tmp_path):
    """Past --max-connections the oldest idle connection is closed for the new one, logged once."""
    log = tmp_path / "server.log"
    with LocalServer(tmp_path / "store", log_path=log, extra_args=["--max-connections", "50"]) as s:
        socks = _open_idle(s.port, 300)
        try:
            t0 = time.monotonic()
            for _ in range(5):
                assert requests.get(s.url + C.HEALTH, timeout=5).json() == {"status": "ok"}
            took = time.monotonic() - t0
            time.sleep(0.3)
            alive = _still_open(socks)
            print(f"300 idle sockets, limit 50: {alive} left open; 5 health calls took {took * 1000:.0f} ms")
            assert alive <= 50 and took < 2
        finally:
            for sock in socks:
                sock.close()
        # back under the limit, then over it again: logged once per time the limit is reached
        time.sleep(0.5)
        assert requests.get(s.url + C.ENGINES, timeout=5).ok
    text = log.read_text(errors="replace")
    assert text.count("the limit (--max-connections)") == 1, text[-2000:]


def test_hundreds_of_idle_sockets_under_the_default_limit(fast):
    socks = _open_idle(fast.port, 300)
    try:
        assert requests.get(fast.url + C.HEALTH, timeout=5).ok
        assert requests.post(fast.url + C.TAKES, json={"text": "Still here."}, timeout=5).status_code == 202
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("flag, value", [("--max-connections", "0"), ("--header-timeout", "-1"),
                                         ("--body-timeout", "nan"), ("--max-queued", "-1"),
                                         ("--keep-takes", "-3")])
def test_nonsense_limits_are_refused_at_start(tmp_path, flag, value):
    import subprocess
    import sys

    from backend.server.launcher import free_port

    r = subprocess.run([sys.executable, "-m", "backend.cli", "serve", "--port", str(free_port()),
                        "--store", str(tmp_path / "s"), flag, value], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and flag in r.stderr and "Traceback" not in r.stderr, r.stderr
