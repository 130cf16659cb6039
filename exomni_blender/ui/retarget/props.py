"""The retarget editor's settings (`Scene.exomni_retarget`): one preset held as rows, one row per target
key (its ARKit channel or mix, a gain, an offset, a clamp, a response curve).

No `from __future__ import annotations` here: Blender reads the property annotations as objects.
"""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from ...blender import compat
from ...core import retarget
from ...core.arkit import ARKIT_52

_CHANNEL_ITEMS = [(c, c, f"ARKit channel {c}") for c in ARKIT_52]
_CURVE_ITEMS = [("linear", "Linear", "No shaping"), ("smoothstep", "Smoothstep", "Soft start and end"),
                ("gamma", "Gamma", "x to the power gamma: above 1 keeps small values small")]
_COMBINE_ITEMS = [("sum", "Sum", "Weighted sum of the channels"), ("max", "Max", "Largest weighted channel")]
# Blender keeps only pointers to enum item strings: the list must outlive the callback's return.
_preset_items = []


def _preset_enum_items(self, context):
    _preset_items[:] = []
    for i, p in enumerate(sorted(retarget.load_presets(), key=lambda p: p.name.lower())):
        tag = " (user)" if p.user else ""
        _preset_items.append((p.id, p.name + tag, p.description or p.name, "USER" if p.user else "PRESET", i))
    if not _preset_items:
        _preset_items.append(("", "(no presets)", "No preset files were found", "ERROR", 0))
    return _preset_items


# -- properties ---------------------------------------------------------------------------------

class ExOmniRetargetTerm(bpy.types.PropertyGroup):
    channel: EnumProperty(name="Channel", items=_CHANNEL_ITEMS, description="ARKit channel feeding the key")
    weight: FloatProperty(name="Weight", default=1.0, soft_min=-2.0, soft_max=2.0,
                          description="How much of the channel goes into the mix (negative: subtracts)")


def _on_edit(self, context):
    if getattr(context.scene, "exomni_retarget", None) is not None and context.scene.exomni_retarget.preview:
        from .preview import apply_preview

        apply_preview(context.scene)


class ExOmniRetargetRow(bpy.types.PropertyGroup):
    """One target key of the edited preset."""

    enabled: BoolProperty(name="On", default=True, update=_on_edit, description="Write this key")
    key: StringProperty(name="Key", update=_on_edit, description="The rig's shape key this row writes")
    aliases: StringProperty(name="Aliases", description="Other spellings of the key, comma-separated")
    terms: CollectionProperty(type=ExOmniRetargetTerm)
    gain: FloatProperty(name="Gain", default=1.0, soft_min=0.0, soft_max=2.0, update=_on_edit)
    offset: FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0, update=_on_edit)
    clamp_min: FloatProperty(name="Min", default=0.0, update=_on_edit)
    clamp_max: FloatProperty(name="Max", default=1.0, update=_on_edit)
    curve: EnumProperty(name="Curve", items=_CURVE_ITEMS, default="linear", update=_on_edit)
    gamma: FloatProperty(name="Gamma", default=1.0, min=0.05, soft_max=4.0, update=_on_edit)
    combine: EnumProperty(name="Combine", items=_COMBINE_ITEMS, default="sum", update=_on_edit)
    fallback: BoolProperty(name="Fallback", default=False, update=_on_edit,
                           description="Only used when the channels it mixes land on no other key of this rig")
    status: StringProperty(name="Status", description="Whether the key was found on the head at the last check")

    def source_label(self) -> str:
        if len(self.terms) == 1 and abs(self.terms[0].weight - 1.0) < 1e-6:
            return self.terms[0].channel
        return " + ".join(f"{t.weight:g}*{t.channel}" for t in self.terms) or "(no channel)"


class ExOmniRetargetSettings(bpy.types.PropertyGroup):
    preset: EnumProperty(name="Preset", items=_preset_enum_items, description="A built-in or saved preset")
    name: StringProperty(name="Name", default="My rig", description="Name to save the edited preset under")
    description: StringProperty(name="Description")
    signature: StringProperty(name="Signature", description="Key names that identify the family (comma-separated)")
    rows: CollectionProperty(type=ExOmniRetargetRow)
    rows_index: IntProperty(name="Row", default=0)
    preview: BoolProperty(name="Preview while scrubbing", default=False,
                          update=lambda self, context: _preview_switched(),
                          description="Show the take through the edited map when the frame changes (keys nothing)")
    preview_take: StringProperty(name="Take", subtype="DIR_PATH", options=compat.path_options(),
                                 description="Take folder to preview (empty: the take selected in the takes list)")
    preview_start: IntProperty(name="Start", default=1, description="Frame the previewed take starts at")
    report: StringProperty(name="Report", description="The last detection or coverage report")


def _preview_switched():
    from .preview import update_preview_handler

    update_preview_handler()


CLASSES = (ExOmniRetargetTerm, ExOmniRetargetRow, ExOmniRetargetSettings)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.exomni_retarget = PointerProperty(type=ExOmniRetargetSettings)


def unregister():
    del bpy.types.Scene.exomni_retarget
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
    _preset_items.clear()
