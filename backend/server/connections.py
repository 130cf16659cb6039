"""Connections that cannot be held open for free: the HTTP protocol `exomni serve` runs uvicorn with.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that sends
nothing at all, nor one that sends half a request line or header and then waits: each kept a file
descriptor forever, and some thousands of them left the server unable to accept anything. Here:
- a request's line and headers must arrive within `header_timeout` seconds of the connection opening
  (or of the previous response), however slowly the bytes trickle in; otherwise it is closed;
- an idle keep-alive connection is closed after uvicorn's `timeout_keep_alive`;
- at most `max_connections` are open: past that the oldest connection with no request in progress is
  closed for the new one (so a flood of idle sockets never locks a real client out), and the new one
  is closed only when every connection is busy. The first time the limit is reached is logged, once,
  and again only after the count has fallen back below it.
The body of a request has its own timeout, in the guard (`guard.Guard`, `body_timeout`).
"""

from __future__ import annotations

import functools
import logging
import resource

log = logging.getLogger("exomni.server")

HEADER_TIMEOUT = 10.0  # seconds for a request line and its headers
KEEP_ALIVE_TIMEOUT = 5.0  # seconds an idle keep-alive connection is kept
BODY_TIMEOUT = 30.0  # seconds the guard waits for the next piece of a request body
MAX_CONNECTIONS = 1000
MAX_HEADER_BYTES = 64 * 1024  # h11's incomplete-event limit: a request line and headers past it get 400
FD_RESERVE = 128  # descriptors left for the store, the jobs database, logs and the worker's pipes


def fd_budget(wanted: int) -> int:
    """The connections this process can hold: `wanted`, with the soft descriptor limit raised toward it
    (up to the hard limit) and the limit capped below what is left after FD_RESERVE."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = wanted + FD_RESERVE
        if soft != resource.RLIM_INFINITY and soft < need:
            target = need if hard == resource.RLIM_INFINITY else min(need, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    except (ValueError, OSError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


class _Limits:
    """What one server's connections share: the limit and whether reaching it was logged."""

    def __init__(self, header_timeout: float, max_connections: int):
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.at_limit = False
        self.shed = 0


def protocol_class(header_timeout: float = HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS):
    """An H11Protocol subclass with these limits, for `uvicorn.Config(http=...)`."""
    return type("GuardedH11Protocol", (_guarded_protocol(),), {"limits": _Limits(header_timeout, max_connections)})


@functools.cache
def _guarded_protocol():
    from uvicorn.protocols.http.h11_impl import H11Protocol  # only `exomni serve` needs uvicorn

    class GuardedH11Protocol(H11Protocol):
        limits = _Limits(HEADER_TIMEOUT, MAX_CONNECTIONS)

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._opened = self.loop.time()
            self._request_timer = None
            self._arm_request_timer()
            if len(self.connections) > self.limits.max_connections:
                self._make_room()
            elif self.limits.at_limit and len(self.connections) < self.limits.max_connections * 0.9:
                log.warning("connections back under the limit (%d open; %d closed to make room)",
                            len(self.connections), self.limits.shed)
                self.limits.at_limit, self.limits.shed = False, 0

        def connection_lost(self, exc) -> None:
            self._cancel_request_timer()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_request_timer()

        # -- the request-line-and-headers deadline ---------------------------------------------------
        def _arm_request_timer(self) -> None:
            self._cancel_request_timer()
            self._request_timer = self.loop.call_later(self.limits.header_timeout, self._request_too_slow)

        def _cancel_request_timer(self) -> None:
            timer = getattr(self, "_request_timer", None)
            if timer is not None:
                timer.cancel()
                self._request_timer = None

        def _busy(self) -> bool:
            """A request is being answered (its headers arrived), or the connection became a WebSocket."""
            if self.transport is not None and self.transport.get_protocol() is not self:
                return True
            return self.cycle is not None and not self.cycle.response_complete

        def _request_too_slow(self) -> None:
            self._request_timer = None
            if not self._busy() and not self.transport.is_closing():
                self.transport.close()

        # -- the connection limit -------------------------------------------------------------------------
        def _make_room(self) -> None:
            idle = [c for c in self.connections if hasattr(c, "_opened") and c is not self
                    and not c._busy() and not c.transport.is_closing()]
            victim = min(idle, key=lambda c: c._opened) if idle else self
            victim.transport.close()
            self.limits.shed += 1
            if not self.limits.at_limit:
                self.limits.at_limit = True
                log.warning("%d connections open, the limit (--max-connections): closing the oldest idle "
                            "connection for each new one until fewer are open (logged once)",
                            self.limits.max_connections)

    return GuardedH11Protocol
