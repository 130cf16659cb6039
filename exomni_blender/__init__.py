"""Ex-Omni Talking Heads: ARKit-52 facial animation and speech takes for Blender.

Installed as a Blender extension (metadata in the repository's addon_manifest.toml), and also a
plain Python package: the backend imports `exomni_blender.take`, `.arkit` and `.contract`, so
nothing here may import bpy at module level. Blender's parts load in register().
"""

_UI_MODULES = ("props", "preferences", "operators", "panel", "retarget_ui", "dialogue_ui")


def _modules():
    import importlib
    return [importlib.import_module(f"{__name__}.{name}") for name in _UI_MODULES]


def register():
    registered = []
    try:
        for module in _modules():
            module.register()
            registered.append(module)
    except Exception:
        for module in reversed(registered):  # leave Blender as it was
            module.unregister()
        raise


def unregister():
    from . import backend_process, jobs
    jobs.shutdown()
    backend_process.stop()
    for module in reversed(_modules()):
        module.unregister()
