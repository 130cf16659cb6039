"""A procedural talking head with all 52 ARKit shape keys, so anyone can try a take without a rig.

`create_head()` builds one mesh object with numpy alone (no operators, so it works headless):
skin with a jaw, lips, nose, brows, cheeks and ears, eyelids over two eyeballs, a mouth cavity
with teeth and a tongue. The eyeballs, teeth and tongue are islands of the same mesh, so shape
keys move them too (gaze is visible with shape keys alone).

Conventions: real-world scale in metres, the face looks toward -Y, Z is up, the eyes are at
z = 0 and the origin is inside the head. ARKit "Left" is the subject's left, which is +X.

How it is made: the skin is a grid of rays cast from a vertical axis inside the head onto a
smooth signed-distance sculpture (skull, jaw, cheekbones, nose, lips, ears, neck, eye sockets);
the mouth and the eyes are slits cut along grid rows. The eyelids are opened by rotating them
about the eyeball centres, and every shape key is a displacement of the rest shape over weight
fields (jaw, lips, mouth corners, lids, brows, cheeks).
"""

from __future__ import annotations

import numpy as np

from ...core.arkit import ARKIT_52
from .build import _build
from .landmarks import (  # noqa: F401  (the head's landmarks and parts, for code that fits shapes to it)
    EYE_RADIUS, EYE_X, EYE_Y, EYE_Z, MATERIALS, MOUTH_Z, M_LASHES, M_LIPS, M_MOUTH, M_SKIN)

# -- Blender -------------------------------------------------------------------------------------

def create_head(name="ExOmniHead"):
    """Add the procedural head to the current scene and return the object.

    One mesh object (real-world size, face toward -Y, eyes at z = 0) with smooth shading,
    simple materials (skin, lips, brows, lashes, mouth, teeth, tongue, eye white, iris, pupil;
    each also sets its viewport colour, so Workbench renders it) and a shape key per ARKit-52
    channel, named exactly as `arkit.ARKIT_52`, after the "Basis" key.
    """
    import bpy

    from .. import compat

    rest, faces, materials, keys = _build()
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(rest.tolist(), [], faces)
    for mat in _materials():
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", np.asarray(materials, np.int32))
    compat.shade_smooth(mesh)
    mesh.update()

    obj = bpy.data.objects.new(name, mesh)
    collection = bpy.context.collection or bpy.context.scene.collection
    collection.objects.link(obj)
    compat.add_shape_key(obj, "Basis")
    for key_name, positions in zip(ARKIT_52, keys):
        block = compat.add_shape_key(obj, key_name)
        block.data.foreach_set("co", positions.ravel())
        block.slider_min, block.slider_max = 0.0, 1.0
    mesh.shape_keys.name = f"{name} ARKit"
    obj["exomni_head"] = 1
    return obj


def _materials():
    import bpy

    from .. import compat

    out = []
    for name, rgba, roughness in MATERIALS:
        mat = bpy.data.materials.get(name)
        if mat is None:
            mat = bpy.data.materials.new(name)
            mat.diffuse_color = rgba
            mat.roughness = roughness
            tree = compat.material_node_tree(mat)
            if tree is not None:
                bsdf = next((n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
                if bsdf is None:
                    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
                    output = next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL"), None) \
                        or tree.nodes.new("ShaderNodeOutputMaterial")
                    tree.links.new(bsdf.outputs[0], output.inputs[0])
                bsdf.inputs["Base Color"].default_value = rgba
                bsdf.inputs["Roughness"].default_value = roughness
        out.append(mat)
    return out
