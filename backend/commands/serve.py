"""`exomni serve`: the HTTP backend the Blender add-on talks to."""

from exomni_blender import contract as C

from ._common import add_engine_options, default_store, make_registry


def register(sub):
    p = sub.add_parser("serve", help="run the HTTP backend (bound to 127.0.0.1 by default)")
    p.add_argument("--host", default=C.DEFAULT_HOST, help=f"address to bind (default {C.DEFAULT_HOST}; "
                   "use 0.0.0.0 only on a trusted network, with --token)")
    p.add_argument("--port", type=int, default=C.DEFAULT_PORT, help=f"port (default {C.DEFAULT_PORT})")
    p.add_argument("--store", default=None, help=f"take store folder (default {default_store()})")
    p.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' on every request")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    add_engine_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import uvicorn

    from ..server.app import create_app

    store = args.store or default_store()
    app = create_app(store, make_registry(args), token=args.token)
    print(f"exomni: serving on http://{args.host}:{args.port}{C.API_PREFIX} (takes in {store})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
