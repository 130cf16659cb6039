"""Subcommands of `exomni`: every module here exposes `register(subparsers)`.

A module adds its parser with `subparsers.add_parser(...)` and sets `func=` to a callable that
takes the parsed args and returns the exit status. Imports of heavy libraries (torch, FastAPI)
belong inside that callable, so `exomni --help` stays fast.
"""
