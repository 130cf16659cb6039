"""The add-on's user interface, the only layer that registers Blender classes.

One folder per feature, each with its properties, operators and panel: `generate/` (the main panel:
a line or a recording into a take), `takes/` (the takes made in the scene), `retarget/` (the preset
editor), `dialogue/` (a screenplay into a scene). Shared by all: `common` (the one way operators
report errors, the sidebar tab, the head, where takes go), `jobs` (work off the main thread, applied
on it), `preferences` and `connection` (the backend server).
"""

# The add-on's own package ("exomni_blender", or "bl_ext.<repo>.exomni_blender" as an extension):
# preferences are stored under it.
ADDON_PACKAGE = __package__.rpartition(".")[0]

# In registration order: a property group before the groups that hold it, a panel before its sub-panels.
_MODULES = ("takes.props", "generate.props", "preferences", "connection", "generate.operators", "takes.operators",
            "generate.panel", "takes.panel", "retarget", "dialogue", "make_shapes")


def _modules():
    import importlib
    return [importlib.import_module(f"{__name__}.{name}") for name in _MODULES]


def _online_access() -> bool:
    import bpy
    return bool(getattr(bpy.app, "online_access", True))


def _offline_message() -> str:
    import bpy
    if getattr(bpy.app, "online_access_override", False):
        return ("Blender was started offline (--offline-mode), so the add-on cannot reach the Ex-Omni backend, "
                "even on this machine. Restart Blender without --offline-mode.")
    return ("Online access is off in Blender, so the add-on cannot reach the Ex-Omni backend, even on this "
            "machine. Turn on Preferences > System > Network > Allow Online Access.")


def register():
    from ..remote import client
    client.set_network_gate(_online_access, _offline_message)  # the backend client honours Blender's switch
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
    from ..remote import launcher
    from . import jobs, live
    live.stop_all()
    jobs.shutdown()
    launcher.stop()
    for module in reversed(_modules()):
        module.unregister()
    from ..remote import client
    client.reset_network_gate()
