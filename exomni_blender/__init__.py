"""Ex-Omni Talking Heads: ARKit-52 facial animation and speech takes for Blender.

Installed as a Blender extension (metadata in the repository's addon_manifest.toml), and also a
plain Python package, in four layers:

- `core/`: the take, the ARKit-52 names, the HTTP contract and take request, face helpers, exchange
  formats, retargeting. No bpy, no network; the backend imports the extension only through it.
- `remote/`: the HTTP client and the backend launcher. Network, no bpy.
- `blender/`: everything that writes Blender data (keying, timeline, heads, scenes), through `compat`.
- `ui/`: properties, operators and panels per feature; the only layer that registers classes.

Nothing here imports bpy at module level; Blender's parts load in register().
"""


def register():
    from . import ui
    ui.register()


def unregister():
    from . import ui
    ui.unregister()
