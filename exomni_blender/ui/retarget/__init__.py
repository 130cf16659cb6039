"""The retarget preset editor in the sidebar: detect the rig's family, edit the map, preview, save.

Saved presets go to Blender's user config folder (exomni_presets), never inside the extension, and
replace a built-in preset of the same name. The editor registers on its own too (a top-level panel
then), which `register()` here does.
"""

from .preview import apply_weights_at  # noqa: F401  (scripts preview one frame through a preset)

_PARTS = ("props", "operators", "panel")


def _parts():
    import importlib
    return [importlib.import_module(f"{__name__}.{name}") for name in _PARTS]


def register():
    for part in _parts():
        part.register()


def unregister():
    from .preview import unregister_preview

    unregister_preview()
    for part in reversed(_parts()):
        part.unregister()
