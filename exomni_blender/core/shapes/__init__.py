"""The 52 ARKit shapes made on a head that has none: landmarks, fitting, displacement transfer.

Pure numpy; the blender layer reads the mesh and writes the shape keys (blender/make_shapes.py).
"""

from .check import Failure, self_check
from .landmarks import NAMES as LANDMARK_NAMES, Eyeball, LandmarkError, Landmarks, detect, fit_sphere
from .mesh import Mesh, edge_stretch, folded_faces
from .template import Template
from .transfer import MadeShapes, transfer

__all__ = ["LANDMARK_NAMES", "Eyeball", "LandmarkError", "Landmarks", "detect", "fit_sphere", "Mesh",
           "edge_stretch", "folded_faces", "Template", "MadeShapes", "transfer", "Failure", "self_check"]
