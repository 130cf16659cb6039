"""Benchmarks for `exomni bench NAME`: each module has a docstring (first line = help),
optional `add_arguments(parser)` and `run(args) -> int`, and prints its numbers."""
