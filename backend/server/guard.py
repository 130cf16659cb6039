"""The gate every request passes before any endpoint: what makes a server on 127.0.0.1 browser-safe.

Every web page the animator opens can send requests to 127.0.0.1, so this ASGI middleware refuses:
- a `Host` that is neither a loopback name nor one the server was started for (DNS rebinding);
- any cross-origin request, and every CORS preflight, unless its origin was allowed with a flag;
- a POST that a page could send without a preflight (text/plain, a plain HTML form, a multipart
  FormData without the client header): it needs `Content-Type: application/json` or `X-ExOmni-Client`;
- a missing or wrong token (when the server has one; `/v1/health` stays open and says only "ok");
- a body over its cap, counted while it streams in, whatever Content-Length says;
- a body that stops arriving (`body_timeout` seconds without a piece) or trickles in (slower on average
  than MIN_BODY_RATE): 408 and the connection closed. The request line and headers have their own
  deadline, and idle connections theirs, in the HTTP protocol (`connections.py`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import re
from urllib.parse import urlsplit

from exomni_blender.core import contract as C
from exomni_blender.core.errors import ExOmniError

from ..settings import is_loopback

MULTIPART_SLACK = 1_000_000  # form fields and part headers around the recording
STATE_CHANGING = (b"POST", b"PUT", b"PATCH", b"DELETE")


class BodyTooLarge(ExOmniError):
    code, status = C.E_TOO_LARGE, 413


class BodyTooSlow(ExOmniError):
    code, status = C.E_TIMEOUT, 408


BODY_TIMEOUT = 30.0  # seconds without a piece of the body before the request is given up
MIN_BODY_RATE = 256 * 1024  # bytes/s a whole body must average (past its first BODY_TIMEOUT seconds)


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")


async def send_error(send, code: str, message: str, headers=()) -> None:
    body = error_body(code, message)
    await send({"type": "http.response.start", "status": C.STATUS[code],
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


MAX_SCRIPT_BODY = 8 * 1024 * 1024  # a dialogue script (2 million characters) in its JSON envelope


def body_cap(content_type: str, path: str = "") -> int:
    if content_type.startswith("multipart/"):
        return C.MAX_AUDIO_BYTES + MULTIPART_SLACK
    return MAX_SCRIPT_BODY if path == C.DIALOGUE_PLAN else C.MAX_JSON_BYTES


_NAME = re.compile(r"([a-z0-9_-]+(?:\.[a-z0-9_-]+)*)(?::([0-9]{1,5}))?")
_BRACKETED = re.compile(r"\[([0-9a-f:.]+)\](?::([0-9]{1,5}))?")


def split_host(host: str):
    """A Host header (or an origin's host[:port]) parsed whole: (name, port or None), or None when it is
    not exactly a name, an IPv4 address or a bracketed IPv6 address with an optional port.
    "127.0.0.1:8765" -> ("127.0.0.1", 8765), "[::1]:80" -> ("::1", 80), "[::1].evil.com" -> None."""
    host = (host or "").strip().lower()
    match = _BRACKETED.fullmatch(host)
    if match:
        try:
            name = str(ipaddress.IPv6Address(match.group(1)))
        except ValueError:
            return None
    else:
        match = _NAME.fullmatch(host)
        if not match:
            return None
        name = match.group(1)
    port = int(match.group(2)) if match.group(2) else None
    return (name, port) if port is None or 0 < port < 65536 else None


def host_name(host: str) -> str:
    """The name in a Host header, without its port ("" when the header is malformed)."""
    parsed = split_host(host)
    return parsed[0] if parsed else ""


def _exact_name(name: str) -> str:
    """A name as the guard compares it: lower case, IPv6 without brackets and in its short form."""
    name = name.strip().lower().strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def token_matches(header: bytes | None, token: bytes) -> bool:
    """`Bearer <token>`, the scheme in any case; the token compared as bytes (any UTF-8 works)."""
    if not header:
        return False
    scheme, _, sent = header.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(sent.strip(), token)


class Guard:
    def __init__(self, app, *, token: str | None, bound_host: str, allow_hosts=(), allow_origins=(),
                 body_timeout: float = BODY_TIMEOUT):
        self.app = app
        self.body_timeout = body_timeout
        self.token = token.encode("utf-8") if token else None
        self.bound_host = _exact_name(bound_host)
        self.allow_hosts = {_exact_name(h) for h in allow_hosts}
        self.allow_origins = {o.rstrip("/").lower() for o in allow_origins}

    # -- the checks -------------------------------------------------------------------------------
    def host_allowed(self, host: str) -> bool:
        """Whether a Host header names this server: a loopback address or `localhost`, a name given
        with --allow-host, or the address it is bound to, each compared whole (never by prefix)."""
        name = host_name(host)
        if name and (is_loopback(name) or name in self.allow_hosts):
            return True
        if name and self.bound_host not in ("", "0.0.0.0", "::") and name == self.bound_host:
            return True
        # Bound to every address with a token: the token, not the name, keeps strangers out.
        return self.token is not None and self.bound_host in ("0.0.0.0", "::")

    def origin_allowed(self, origin: str, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.allow_origins or "*" in self.allow_origins:
            return True
        # The server's own pages (/docs) are same-origin: the origin's scheme, name and port parsed and
        # compared with the Host header's.
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path or parts.query or parts.fragment \
                or "@" in parts.netloc:
            return False
        theirs, ours = split_host(parts.netloc), split_host(host)
        if not theirs or not ours:
            return False
        default = 443 if parts.scheme == "https" else 80
        return theirs[0] == ours[0] and (theirs[1] or default) == (ours[1] or default)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            return await self._websocket(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.host_allowed(host):
            return await send_error(send, C.E_FORBIDDEN, (
                f"requests for host {host[:100]!r} are refused: this server answers only to 127.0.0.1 or "
                "localhost (a web page may not reach it under another name); start it with --allow-host NAME "
                "to add one"))
        origin = headers.get(b"origin", b"").decode("latin-1")
        cors = []
        if origin:
            if not self.origin_allowed(origin, host):
                return await send_error(send, C.E_FORBIDDEN, (
                    f"requests from the web page at {origin[:100]} are refused; to let a web tool use this "
                    "server, start it with --allow-origin ORIGIN"))
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        method = scope["method"].encode() if isinstance(scope["method"], str) else scope["method"]
        if method == b"OPTIONS":
            if not cors:
                return await send_error(send, C.E_FORBIDDEN, "CORS preflight refused: no web origin is allowed "
                                                             "(start the server with --allow-origin ORIGIN)")
            allowed_headers = f"authorization, content-type, {C.CLIENT_HEADER.lower()}".encode()
            await send({"type": "http.response.start", "status": 204, "headers": [
                *cors, (b"access-control-allow-methods", b"GET, POST, DELETE"),
                (b"access-control-allow-headers", allowed_headers), (b"access-control-max-age", b"600")]})
            return await send({"type": "http.response.body", "body": b""})

        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if method == b"POST" and C.CLIENT_HEADER.lower().encode() not in headers \
                and content_type.split(";")[0].strip() != "application/json":
            return await send_error(send, C.E_UNSUPPORTED_MEDIA, (
                "send JSON with 'Content-Type: application/json', or a multipart upload with the header "
                f"'{C.CLIENT_HEADER}: <your tool>' (what the add-on and `exomni` send); other posts could "
                "come from any web page and are refused"))

        if self.token is not None and scope["path"] != C.HEALTH and not token_matches(headers.get(b"authorization"),
                                                                                      self.token):
            return await send_error(send, C.E_UNAUTHORIZED, (
                "missing or wrong token: set the token the server was started with in the add-on preferences "
                "(sent as 'Authorization: Bearer <token>')"))

        if method in STATE_CHANGING:
            cap = body_cap(content_type, scope["path"])
            declared = headers.get(b"content-length")
            if declared is not None:
                try:
                    size = int(declared)
                except ValueError:
                    size = cap + 1
                if size > cap:
                    return await send_error(send, C.E_TOO_LARGE, too_large_message(cap))
            receive = _capped(receive, cap)
            receive, send = _timed(receive, send, self.body_timeout, cap if declared is None else min(size, cap))

        if cors:
            async def send_with_cors(message):
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", ()), *cors]}
                await send(message)
            return await self.app(scope, receive, send_with_cors)
        return await self.app(scope, receive, send)


    async def _websocket(self, scope, receive, send):
        """A page may open a WebSocket to any origin: the same Host, Origin and token rules, or closed."""
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin", b"").decode("latin-1")
        ok = self.host_allowed(host) and (not origin or self.origin_allowed(origin, host))
        if ok and self.token is not None:
            ok = token_matches(headers.get(b"authorization"), self.token)
        if not ok:
            await receive()  # websocket.connect
            return await send({"type": "websocket.close", "code": 1008})
        return await self.app(scope, receive, send)


def _headers(scope) -> dict:
    headers = {}
    for key, value in scope.get("headers", ()):
        headers.setdefault(key.lower(), value)
    return headers


def too_large_message(cap: int) -> str:
    if cap <= MAX_SCRIPT_BODY:
        return (f"the request body is over {cap // 1024} KB; a JSON request is small (a recording goes as the "
                "multipart file field 'audio')")
    return f"the upload is over the {C.MAX_AUDIO_BYTES // 2**20} MB limit; trim or compress the recording"


def _capped(receive, cap: int):
    """The request body, refused (BodyTooLarge) as soon as more than `cap` bytes have arrived."""
    seen = 0

    async def capped():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise BodyTooLarge(too_large_message(cap))
        return message

    return capped


def _timed(receive, send, idle: float, size: int):
    """The request body, given up (BodyTooSlow) when no piece comes for `idle` seconds or the whole has
    taken longer than `idle` plus its `size` (declared, else the cap) at MIN_BODY_RATE; the answer then closes the connection.
    Once the body is complete, `receive` (a wait for the client to go) is no longer timed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + idle + size / MIN_BODY_RATE
    state = {"done": False, "slow": False, "seen": 0}

    async def timed_receive():
        if state["done"]:
            return await receive()
        started = loop.time()
        wait = min(idle, max(0.0, deadline - started))
        try:
            message = await asyncio.wait_for(receive(), wait)
        except asyncio.TimeoutError:
            state["slow"] = True
            if loop.time() >= deadline:
                raise BodyTooSlow(f"the request body came too slowly (under {MIN_BODY_RATE // 1024} KB/s on "
                                  "average); send it again") from None
            raise BodyTooSlow(f"the request body stopped arriving ({idle:g} s without data after "
                              f"{state['seen']} bytes); send it again, whole") from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            state["done"] = True
        else:
            state["seen"] += len(message.get("body", b""))
        return message

    async def closing_send(message):
        if state["slow"] and message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        await send(message)

    return timed_receive, closing_send
