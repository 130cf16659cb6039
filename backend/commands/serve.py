"""`exomni serve`: the HTTP backend the Blender add-on talks to.

Exposure is a decision: on 127.0.0.1 (the default) no token is needed; on any other address the server
needs a token (`--token T`, or `--token generate` for one printed once) or `--allow-open` with its
warning. Defaults come from the EXOMNI_* environment variables (backend/settings.py).
"""

import functools
import secrets
import sys

from exomni_blender.core import contract as C

from ..server import connections
from ..settings import Settings, is_loopback
from ._common import add_engine_options, fail, make_registry

GENERATE = "generate"


def register(sub):
    p = sub.add_parser("serve", help="run the HTTP backend (bound to 127.0.0.1 by default)")
    p.add_argument("--host", default=None, help=f"address to bind (default {C.DEFAULT_HOST}; any other address "
                   "needs --token, and serves every machine that can reach it)")
    p.add_argument("--port", type=int, default=None, help=f"port (default {C.DEFAULT_PORT})")
    p.add_argument("--store", default=None, help="take store folder (default $EXOMNI_STORE or "
                   "~/.local/share/exomni/takes)")
    p.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' on every request "
                   f"(any UTF-8 text; '{GENERATE}' makes one and prints it once; default $EXOMNI_TOKEN)")
    p.add_argument("--allow-open", action="store_true",
                   help="serve a non-loopback --host with no token: anyone who can reach it can make takes")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web origin (e.g. http://localhost:3000) allowed to call the API from a browser")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a Host name accepted besides 127.0.0.1/localhost (e.g. this machine's LAN name)")
    p.add_argument("--docs", action="store_true", help="serve Swagger UI at /docs (it loads scripts from a CDN)")
    p.add_argument("--max-queued", type=int, default=None, help="jobs that may wait; more get 429 (default 32)")
    p.add_argument("--keep-takes", type=int, default=None, help="keep only the newest N takes (default: all)")
    p.add_argument("--keep-bytes", default=None, help="prune the oldest takes past this size, e.g. 20G (default: none)")
    p.add_argument("--max-connections", type=int, default=connections.MAX_CONNECTIONS, metavar="N",
                   help="connections open at once; past it the oldest idle one is closed "
                        f"(default {connections.MAX_CONNECTIONS})")
    p.add_argument("--header-timeout", type=float, default=connections.HEADER_TIMEOUT, metavar="S",
                   help="seconds a request line and its headers may take to arrive "
                        f"(default {connections.HEADER_TIMEOUT:g})")
    p.add_argument("--keep-alive-timeout", type=float, default=connections.KEEP_ALIVE_TIMEOUT, metavar="S",
                   help=f"seconds an idle connection is kept open (default {connections.KEEP_ALIVE_TIMEOUT:g})")
    p.add_argument("--body-timeout", type=float, default=connections.BODY_TIMEOUT, metavar="S",
                   help="seconds without data before a request body is given up with 408 "
                        f"(default {connections.BODY_TIMEOUT:g})")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-preload", action="store_true",
                   help="load the Ex-Omni model on its first take instead of in the background at start")
    add_engine_options(p)
    p.set_defaults(func=run)


def parse_size(text) -> int:
    if text is None:
        return None
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    raw = str(text).strip().upper().removesuffix("B")
    unit = raw[-1:] if raw[-1:] in units and raw[-1:] else ""
    number = raw[: len(raw) - len(unit)]
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"--keep-bytes {text!r} is not a size; use e.g. 500M or 20G") from None
    if value < 0:
        raise ValueError("--keep-bytes must not be negative")
    return int(value)


def decide_settings(args, env_settings: Settings | None = None):
    """The settings and a line to print at start, or ValueError saying what to change."""
    base = env_settings or Settings.from_env()
    s = base.but(host=args.host, port=args.port, store=args.store, token=args.token, max_queued=args.max_queued,
                 keep_takes=args.keep_takes, keep_bytes=parse_size(args.keep_bytes),
                 docs=args.docs or None, allow_open=args.allow_open or None,
                 allow_origins=tuple(args.allow_origin) or None, allow_hosts=tuple(args.allow_host) or None)
    notice = ""
    if s.token is not None and not s.token.strip():
        raise ValueError("--token is empty, which would turn authentication off; give a real token, "
                         f"'--token {GENERATE}', or leave it out on 127.0.0.1")
    if s.token == GENERATE:
        s = s.but(token=secrets.token_urlsafe(24))
        notice = f"exomni: the token is {s.token} (shown once; give it to the add-on's preferences)"
    if not is_loopback(s.host) and s.token is None:
        if not s.allow_open:
            raise ValueError(f"--host {s.host} serves other machines too, so it needs a token: add "
                             f"'--token {GENERATE}' (or --token YOURS); --allow-open serves it to anyone without one")
        notice = (f"exomni: WARNING: serving {s.host} with NO token: anyone who can reach port {s.port} can make "
                  "takes and read every take. Stop it and add --token unless this network is yours alone.")
    if not 1 <= s.port <= 65535:
        raise ValueError(f"--port must be from 1 to 65535, got {s.port}")
    for flag, value in (("--max-queued", s.max_queued), ("--keep-takes", s.keep_takes)):
        if value < 0:
            raise ValueError(f"{flag} must not be negative, got {value}")
    for flag in ("max_connections", "header_timeout", "keep_alive_timeout", "body_timeout"):
        value = getattr(args, flag, None)
        if value is not None and not value > 0:  # NaN too
            raise ValueError(f"--{flag.replace('_', '-')} must be more than 0, got {value}")
    return s, notice


def check_can_listen(host: str, port: int) -> None:
    """Bind host:port as uvicorn will (OSError when taken or not this machine's address)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a closing socket is no obstacle
        s.bind((host, port))


def store_problem(store, exc) -> str:
    """What to do when the take store cannot be opened at start, in words."""
    reason = getattr(exc, "strerror", None) or str(exc)
    if "locked" in str(exc).lower():
        return (f"the jobs database in {store} is locked by another process (another exomni serve on the same "
                "store?); stop it, or give this server its own --store")
    return (f"cannot use the take store {store} ({reason}); make it writable, free space there, or start the "
            "server with --store pointing at another folder")


def run(args) -> int:
    import errno
    import sqlite3

    import uvicorn

    from ..server.app import create_app

    try:
        settings, notice = decide_settings(args)
    except ValueError as exc:
        return fail(str(exc))
    try:
        check_can_listen(settings.host, settings.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return fail(f"port {settings.port} on {settings.host} is already in use (another exomni serve?); "
                        "stop that server or pick another port with --port")
        return fail(f"cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}); "
                    f"use an address of this machine with --host, such as {C.DEFAULT_HOST}")
    settings = settings.but(preload=not args.no_preload)
    registry = make_registry(args)
    try:
        app = create_app(settings=settings, registry=registry,
                         registry_factory=functools.partial(make_registry, args), body_timeout=args.body_timeout)
    except (OSError, sqlite3.Error) as exc:
        return fail(store_problem(settings.store, exc))
    if notice:
        print(notice, file=sys.stderr, flush=True)
    print(f"exomni: serving on http://{settings.host}:{settings.port}{C.API_PREFIX} (takes in {settings.store})",
          flush=True)
    max_connections = connections.fd_budget(args.max_connections)
    protocol = connections.protocol_class(header_timeout=args.header_timeout, max_connections=max_connections)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, http=protocol,
                timeout_keep_alive=args.keep_alive_timeout, h11_max_incomplete_event_size=connections.MAX_HEADER_BYTES)
    return 0

