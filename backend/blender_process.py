"""Blender work from the backend: a `python -m exomni_blender.blender.<module>` child process.

The backend never imports bpy (it installs and serves without Blender), so scene building, batch
layout, renders and the keying benchmark run in a child of this same Python, which needs Blender as
a Python module. `command()` checks for it first and says how to get it.
"""

from __future__ import annotations

import importlib.util
import sys

from exomni_blender.core.errors import ExOmniError

BLENDER_PYTHON = "3.11"  # bpy 4.5 LTS from PyPI is built for this Python only


class BlenderMissing(ExOmniError):
    """Blender as a Python module is not installed in this environment."""


def command(module: str, *args: str) -> list[str]:
    """argv for running exomni_blender.blender.<module> with this Python, or BlenderMissing."""
    if importlib.util.find_spec("bpy") is None:
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        how = ("install it with: pip install -e '.[blender]'" if here == BLENDER_PYTHON else
               f"it needs Python {BLENDER_PYTHON} (this is {here}): make the virtual environment with "
               f"python{BLENDER_PYTHON} -m venv .venv, then pip install -e '.[blender]'")
        raise BlenderMissing(f"this needs Blender as a Python module (bpy), which is not installed; {how}")
    return [sys.executable, "-m", f"exomni_blender.blender.{module}", *map(str, args)]
