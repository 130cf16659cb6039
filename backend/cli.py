"""The `exomni` command line. Each subcommand lives in its own module under backend/commands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from exomni_blender.core.errors import ExOmniError

from . import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exomni", description="Ex-Omni talking-head takes: engines, server and tools.")
    parser.add_argument("--version", action="version", version=f"exomni {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers, not subcommands
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ExOmniError as exc:  # written for a person: shown as it is
        from .commands._common import fail

        return fail(str(exc), 1)
    except OSError as exc:  # a path that cannot be read or written: say which, not a traceback
        from .commands._common import fail

        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}; check the path and that it may be read or written", 1)


if __name__ == "__main__":
    sys.exit(main())
