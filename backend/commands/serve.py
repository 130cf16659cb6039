"""`exomni serve`: the HTTP backend the Blender add-on talks to."""

from exomni_blender.core import contract as C

from ._common import add_engine_options, default_store, fail, make_registry


def register(sub):
    p = sub.add_parser("serve", help="run the HTTP backend (bound to 127.0.0.1 by default)")
    p.add_argument("--host", default=C.DEFAULT_HOST, help=f"address to bind (default {C.DEFAULT_HOST}; "
                   "use 0.0.0.0 only on a trusted network, with --token)")
    p.add_argument("--port", type=int, default=C.DEFAULT_PORT, help=f"port (default {C.DEFAULT_PORT})")
    p.add_argument("--store", default=None, help=f"take store folder (default {default_store()})")
    p.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' on every request")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-preload", action="store_true",
                   help="load the Ex-Omni model on its first take instead of in the background at start")
    add_engine_options(p)
    p.set_defaults(func=run)


def preload_models(registry) -> None:
    """Start loading every engine that has a model configured, off the request path.

    While one loads, /v1/engines shows its state and progress, and takes for it get a 503 that says
    to try again in a moment; the other engines serve as usual.
    """
    for name in registry.names():
        engine = registry.get(name)
        if getattr(engine, "checkpoint", None) and callable(getattr(engine, "preload", None)):
            engine.preload()


def check_can_listen(host: str, port: int) -> None:
    """Bind host:port as uvicorn will (OSError when taken or not this machine's address)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a closing socket is no obstacle
        s.bind((host, port))


def run(args) -> int:
    import errno

    import uvicorn

    from ..server.app import create_app

    if not 1 <= args.port <= 65535:
        return fail(f"--port must be from 1 to 65535, got {args.port}")
    try:
        check_can_listen(args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return fail(f"port {args.port} on {args.host} is already in use (another exomni serve?); "
                        "stop that server or pick another port with --port")
        return fail(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
                    f"use an address of this machine with --host, such as {C.DEFAULT_HOST}")
    store = args.store or default_store()
    registry = make_registry(args)
    if not args.no_preload:
        preload_models(registry)
    app = create_app(store, registry, token=args.token)
    print(f"exomni: serving on http://{args.host}:{args.port}{C.API_PREFIX} (takes in {store})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
