"""The layers, stated as folder rules, checked on every file's imports (and, for bpy, at run time).

- core: neither bpy nor the network (no requests, sockets or HTTP), nor any other layer;
- remote: the core only, and the network; no bpy;
- blender: the core and bpy; no network, no ui;
- ui: any layer of the extension; the only place that registers classes;
- the backend: never bpy, and of the extension only the core;
- the extension never imports the backend.

And the tangles a folder rule cannot see:

- no import circles, inside the extension or inside the backend, counting the imports made inside
  functions: a lazy import hides a circle from Python at import time, not from the design;
- the HTTP service (`backend.server`) is imported only by itself and by the command line, the one
  place that starts it: `backend/cli.py`, `backend/commands/` and `backend/benchmarks/` (the
  modules of `exomni bench`, which only commands/bench.py loads). The engine worker, the engines,
  jobs, the store and every other backend module run without it;
- the backend reaches the Blender layer only through `backend/blender_process.py`: a string naming
  an `exomni_blender.blender` module (`python -m exomni_blender.blender.x`, `import_module(...)`)
  is an import of that layer, and only that launcher may hold one. Docstrings are prose and do not
  count.

Each of these rules is a function of source text or of a module graph, tested below on small made-up
examples of the tangle it must find, so a rule that stopped finding it fails here.
"""

import ast
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import backend

REPO = Path(__file__).resolve().parents[1]
EXT = REPO / "exomni_blender"
NETWORK = {"requests", "socket", "http", "urllib.request", "urllib3", "httpx", "ssl", "subprocess"}
BLENDER = {"bpy", "mathutils", "bmesh", "aud", "gpu", "bpy_extras"}


def imports_of(path: Path):
    """(absolute module names, extension layers reached by relative imports) of one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.relative_to(EXT).parts[:-1]  # the package path inside exomni_blender
    absolute, layers = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            absolute.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                absolute.add(node.module or "")
                continue
            base = list(here[:len(here) - (node.level - 1)]) if node.level > 1 else list(here)
            parts = base + (node.module.split(".") if node.module else [])
            if parts:
                layers.add(parts[0])
            else:  # "from .. import x": x is a layer
                layers.update(a.name for a in node.names)
    return absolute, layers


def _top(names):
    return {n.split(".")[0] for n in names} | set(names)


def files_of(layer):
    return sorted((EXT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer, allowed_layers, forbidden", [
    ("core", {"core"}, BLENDER | NETWORK),
    ("remote", {"core", "remote"}, BLENDER),
    ("blender", {"core", "blender"}, NETWORK - {"subprocess"}),
])
def test_layer_imports(layer, allowed_layers, forbidden):
    files = files_of(layer)
    assert files, f"no files in {layer}/"
    for path in files:
        absolute, layers = imports_of(path)
        bad = _top(absolute) & forbidden
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}, which the {layer} layer must not"
        assert layers <= allowed_layers, f"{path.relative_to(REPO)} reaches {sorted(layers - allowed_layers)}"
        assert "exomni_blender" not in _top(absolute), f"{path.relative_to(REPO)}: use relative imports inside the extension"
        text = path.read_text(encoding="utf-8")
        assert "sys.modules.get(\"bpy\")" not in text, f"{path.relative_to(REPO)} reaches Blender through sys.modules"


def test_only_the_ui_registers_classes():
    for path in EXT.rglob("*.py"):
        if path.relative_to(EXT).parts[0] in ("ui",) or path == EXT / "__init__.py":
            continue
        text = path.read_text(encoding="utf-8")
        for call in ("register_class(", "register_classes_factory(", "bpy.types.Scene."):
            assert call not in text, f"{path.relative_to(REPO)} calls {call}: registration belongs to ui/"


def test_the_core_imports_without_bpy_or_network():
    names = [m.name for m in pkgutil.walk_packages([str(EXT / "core")], "exomni_blender.core.")]
    assert len(names) >= 8
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(BLENDER | {'requests', 'fastapi'})!r})\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]


def test_no_backend_module_imports_bpy():
    names = [m.name for m in pkgutil.walk_packages(backend.__path__, "backend.")]
    assert len(names) > 30
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "bad = sorted(m for m in sys.modules if m == 'bpy' or m.startswith('bpy.'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]


# The one backend launcher lives in remote/; the CLI's local server builds on it (issue 10).
LAUNCHER_USERS = {("backend/server/launcher.py", "exomni_blender.remote.launcher")}


def test_the_backend_imports_only_the_extensions_core():
    for path in (REPO / "backend").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for m in mods:
                if m == "exomni_blender" or m.startswith("exomni_blender."):
                    if (path.relative_to(REPO).as_posix(), m) in LAUNCHER_USERS:
                        continue
                    assert m.startswith("exomni_blender.core"), f"{path.relative_to(REPO)} imports {m}"


def test_no_extension_file_imports_the_backend():
    for path in EXT.rglob("*.py"):
        absolute, _ = imports_of(path)
        assert "backend" not in _top(absolute), f"{path.relative_to(REPO)} imports the backend"


# -- tangles: import circles, the HTTP service, module-path strings -----------------------------------

def module_of(rel: str) -> tuple:
    """(dotted module name, is a package) of a file path relative to the repository ("a/b/c.py")."""
    parts = rel[:-len(".py")].split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def import_statements(source: str, module: str, is_package: bool) -> list:
    """Every import in one file's source as (absolute base, imported names, line, lazy): `import a.b`
    gives ("a.b", ()), `from x import n` gives (x made absolute, ("n",)). Lazy: inside a function."""
    package = module if is_package else module.rpartition(".")[0]
    found = []

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, (), child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".") if package else []
                    parts = parts[:len(parts) - (child.level - 1)] if child.level > 1 else parts
                    base = ".".join(parts + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                found.append((base, tuple(a.name for a in child.names), child.lineno, lazy))
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def import_graph(files: dict) -> dict:
    """{module: {imported module: (line, lazy)}} over the given files ({relative path: source}), with
    only the modules among them. `from p import n` reaches the module p.n when there is one, else p;
    `import a.b.c` reaches a.b.c (or the nearest package above it that is among the files). A module
    importing itself is left out."""
    modules = {rel: module_of(rel) for rel in files}
    names = {name for name, _ in modules.values()}

    def nearest(name):
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for rel, (module, is_package) in modules.items():
        edges = graph.setdefault(module, {})
        for base, imported, line, lazy in import_statements(files[rel], module, is_package):
            targets = [f"{base}.{n}" if f"{base}.{n}" in names else nearest(base) for n in imported] or [nearest(base)]
            for target in targets:
                if target is None or target == module:
                    continue
                if target not in edges or (edges[target][1] and not lazy):  # a module-level import wins
                    edges[target] = (line, lazy)
    return graph


def import_cycles(graph: dict) -> list:
    """The circles of an import graph: one list of modules per strongly connected group of two or more
    (Tarjan), sorted, each group given as one shortest circle through its first module."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def connect(v):  # recursive Tarjan; the graphs here are a few hundred modules deep at most
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10000))
    try:
        for v in sorted(graph):
            if v not in index:
                connect(v)
    finally:
        sys.setrecursionlimit(limit)

    circles = []
    for group in groups:
        start = min(group)
        paths, seen, queue = {start: [start]}, {start}, [start]
        while queue:  # breadth first inside the group, back to the start
            v = queue.pop(0)
            for w in sorted(graph.get(v, {})):
                if w == start:
                    circles.append(paths[v] + [start])
                    queue = []
                    break
                if w in group and w not in seen:
                    seen.add(w)
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return sorted(circles)


def describe_circle(graph: dict, circle: list) -> str:
    steps = []
    for a, b in zip(circle, circle[1:]):
        line, lazy = graph[a][b]
        steps.append(f"{a} -> {b} (line {line}{', inside a function' if lazy else ''})")
    return "; ".join(steps)


def server_users_allowed(module: str) -> bool:
    """Who may import backend.server: the service itself and the command line (see the docstring)."""
    return any(module == p or module.startswith(p + ".")
               for p in ("backend.server", "backend.cli", "backend.commands", "backend.benchmarks"))


def server_imports(graph: dict) -> list:
    """(module, server module, line) for every import of backend.server by a module not allowed it."""
    return sorted((module, target, line) for module, edges in graph.items() if not server_users_allowed(module)
                  for target, (line, _) in edges.items()
                  if target == "backend.server" or target.startswith("backend.server."))


BLENDER_MODULE = re.compile(r"\bexomni_blender\.blender\b")


def blender_module_strings(source: str) -> list:
    """(line, text) of every string in the source, docstrings aside, naming an exomni_blender.blender
    module: `"-m", "exomni_blender.blender.x"`, an f-string's literal part, an import_module name."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.add(id(first.value))
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                  and BLENDER_MODULE.search(node.value))


def sources(package: str) -> dict:
    return {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8") for p in sorted((REPO / package).rglob("*.py"))}


# The backend's one way into the Blender layer: it builds `python -m exomni_blender.blender.<module>`.
BLENDER_LAUNCHER = "backend/blender_process.py"
# Other backend files allowed a module-path string of the Blender layer, each with its reason. Empty:
# the dialogue batch (backend/commands/batch.py and its move to backend/dialogue/) already goes
# through blender_process.command and names the Blender modules only in docstrings.
BLENDER_STRINGS_ALLOWED: dict = {}


@pytest.mark.parametrize("package", ["exomni_blender", "backend"])
def test_no_import_circles(package):
    graph = import_graph(sources(package))
    assert len(graph) > 30, f"only {len(graph)} modules found in {package}/"
    circles = import_cycles(graph)
    assert not circles, "import circles:\n" + "\n".join(describe_circle(graph, c) for c in circles)


def test_only_the_command_line_imports_the_http_service():
    graph = import_graph(sources("backend"))
    assert "backend.worker" in graph and "backend.server.app" in graph
    assert not server_imports(graph), server_imports(graph)
    # the rule sees the command line's own imports of the service (they are allowed, not missed)
    assert any(t.startswith("backend.server") for t in graph["backend.commands.serve"])


def test_only_the_blender_launcher_names_blender_modules():
    files = sources("backend")
    assert blender_module_strings(files[BLENDER_LAUNCHER]), "the launcher's module-path string is not seen"
    found = {rel: hits for rel, text in files.items() if rel != BLENDER_LAUNCHER and rel not in BLENDER_STRINGS_ALLOWED
             and (hits := blender_module_strings(text))}
    assert not found, f"run Blender modules through {BLENDER_LAUNCHER} (blender_process.command): {found}"
    stale = [rel for rel in BLENDER_STRINGS_ALLOWED if rel in files and not blender_module_strings(files[rel])]
    assert not stale, f"allowed but no longer needed: {stale}"


# -- the rules themselves, on small examples of each tangle -------------------------------------------

def test_a_circle_is_found():
    graph = import_graph({"pkg/__init__.py": "", "pkg/a.py": "from . import b\n", "pkg/b.py": "from .a import f\n",
                          "pkg/c.py": "from .a import g\n"})
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert "pkg.b -> pkg.a (line 1)" in describe_circle(graph, ["pkg.a", "pkg.b", "pkg.a"])


def test_a_lazy_circle_is_found():
    graph = import_graph({
        "pkg/__init__.py": "",
        "pkg/take.py": "import json\n\nclass Take:\n    def save(self):\n        from .exchange.a2f import write\n",
        "pkg/exchange/__init__.py": "",
        "pkg/exchange/a2f.py": "from ..take import Take\n",
    })
    circles = import_cycles(graph)
    assert circles == [["pkg.exchange.a2f", "pkg.take", "pkg.exchange.a2f"]]
    assert "pkg.take -> pkg.exchange.a2f (line 5, inside a function)" in describe_circle(graph, circles[0])


def test_circles_through_absolute_imports_and_long_ones_are_found():
    graph = import_graph({"backend/__init__.py": "", "backend/a.py": "import backend.b\n",
                          "backend/b.py": "from backend import c\n", "backend/c.py": "def f():\n    import backend.a.x\n"})
    assert import_cycles(graph) == [["backend.a", "backend.b", "backend.c", "backend.a"]]


def test_no_circle_is_made_up():
    """A package that re-exports its modules, modules that import their siblings and outside packages,
    and a module importing from itself form no circle."""
    graph = import_graph({
        "pkg/__init__.py": "from .a import f\nfrom .b import g\nimport numpy as np\n",
        "pkg/a.py": "import os\nfrom .b import g\nfrom pkg.a import f\n",
        "pkg/b.py": "from collections import deque\n",
        "pkg/c.py": "from . import a, b\n",
    })
    assert import_cycles(graph) == []
    assert set(graph["pkg"]) == {"pkg.a", "pkg.b"} and set(graph["pkg.c"]) == {"pkg.a", "pkg.b"}


def test_the_worker_importing_the_http_service_is_found():
    graph = import_graph({
        "backend/__init__.py": "", "backend/server/__init__.py": "", "backend/server/stream_wire.py": "",
        "backend/server/app.py": "from .stream_wire import x\n",
        "backend/worker.py": "from .server.stream_wire import make_take_streamed\n",
        "backend/jobs.py": "def start():\n    from backend.server import app\n",
        "backend/engines/__init__.py": "", "backend/engines/x.py": "import backend.server\n",
        "backend/cli.py": "from .server import app\n",
        "backend/commands/__init__.py": "", "backend/commands/serve.py": "from ..server.app import create_app\n",
        "backend/benchmarks/__init__.py": "", "backend/benchmarks/server.py": "from ..server import app\n",
        "backend/serverless.py": "from . import worker\n",
    })
    assert server_imports(graph) == [("backend.engines.x", "backend.server", 1),
                                     ("backend.jobs", "backend.server.app", 2),
                                     ("backend.worker", "backend.server.stream_wire", 1)]


def test_module_path_strings_of_the_blender_layer_are_found():
    source = '''"""Runs python -m exomni_blender.blender.make_shapes (a docstring: prose)."""
import importlib, sys

def run(module):
    """Starts exomni_blender.blender.<module>."""
    cmd = [sys.executable, "-m", "exomni_blender.blender.make_shapes", "--out", "x.blend"]
    other = [sys.executable, "-m", f"exomni_blender.blender.{module}"]
    importlib.import_module("exomni_blender.blender")
    fine = ["exomni_blender.core.take", "exomni_blender.blender_tools", "-m", "backend.cli"]
    return cmd, other, fine
'''
    assert blender_module_strings(source) == [(6, "exomni_blender.blender.make_shapes"),
                                              (7, "exomni_blender.blender."), (8, "exomni_blender.blender")]
