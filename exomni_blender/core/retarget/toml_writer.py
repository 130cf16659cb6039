"""A small TOML writer for preset files (the standard library reads TOML but does not write it)."""

from __future__ import annotations

import math
import re

from .errors import PresetError


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        f = float(v)
        if not math.isfinite(f):
            raise PresetError(f"cannot write {v!r} to a preset")
        return repr(round(f, 6))
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"')
        # TOML strings may hold no control character but tab: write the others as escapes.
        return '"' + re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise PresetError(f"cannot write {type(v).__name__} to a preset")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)


def dumps_toml(data: dict) -> str:
    """TOML text of a table whose lists of tables become [[name]] sections."""
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, items in tables:
        for item in items:
            lines.append("")
            lines.append(f"[[{k}]]")
            lines.extend(f"{_toml_key(ik)} = {_toml_value(iv)}" for ik, iv in item.items())
    return "\n".join(lines) + "\n"
