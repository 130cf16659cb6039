"""`exomni bench NAME`: benchmarks that print numbers. One module per benchmark in backend/benchmarks."""

import importlib
import pkgutil

from .. import benchmarks


def register(sub):
    p = sub.add_parser("bench", help="run a benchmark and print its numbers")
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))
    inner = p.add_subparsers(dest="benchmark", metavar="NAME")
    for name in names:
        module = importlib.import_module(f"{benchmarks.__name__}.{name}")
        q = inner.add_parser(name.replace("_", "-"), help=(module.__doc__ or "").strip().splitlines()[0])
        if hasattr(module, "add_arguments"):
            module.add_arguments(q)
        q.set_defaults(func=module.run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
