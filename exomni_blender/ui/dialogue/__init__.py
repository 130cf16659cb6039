"""Dialogue: a screenplay (a Text datablock or a file: Fountain, CSV or JSON) becomes a dialogue in the
open scene, the same as `exomni batch` makes it headless. It registers on its own too (`register()`)."""

_PARTS = ("props", "operators", "panel")


def _parts():
    import importlib
    return [importlib.import_module(f"{__name__}.{name}") for name in _PARTS]


def register():
    for part in _parts():
        part.register()


def unregister():
    for part in reversed(_parts()):
        if all(getattr(cls, "is_registered", False) for cls in part.CLASSES):
            part.unregister()
