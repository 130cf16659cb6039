"""The template face whose 52 shapes are carried over: its mesh, skin, shapes and landmarks.

Any head with the 52 ARKit shapes, eyeballs and closed or cut lips can serve; the add-on uses the
procedural demo head (its arrays come from the blender layer, which builds it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arkit import ARKIT_52
from .landmarks import Eyeball, Landmarks, detect
from .mesh import Mesh

NONE, LIP_UPPER, LIP_LOWER, LID_UPPER_L, LID_LOWER_L, LID_UPPER_R, LID_LOWER_R = range(7)
OPPOSITE = {LIP_UPPER: LIP_LOWER, LIP_LOWER: LIP_UPPER, LID_UPPER_L: LID_LOWER_L,
            LID_LOWER_L: LID_UPPER_L, LID_UPPER_R: LID_LOWER_R, LID_LOWER_R: LID_UPPER_R}


@dataclass
class Template:
    mesh: Mesh
    skin: np.ndarray          # [n] bool: the vertices whose motion is carried over
    deltas: np.ndarray        # [52, n, 3] displacements, in ARKIT_52 order
    landmarks: Landmarks
    labels: np.ndarray        # [n] which side of the lips / lids a vertex is on (NONE elsewhere)

    @classmethod
    def from_head(cls, points, faces, keys, skin, eyeballs) -> "Template":
        """`keys`: 52 shape-key positions in ARKIT_52 order; `eyeballs`: (centre, radius) twice."""
        points = np.asarray(points, float)
        mesh = Mesh.from_faces(points, faces)
        deltas = np.stack([np.asarray(k, float) - points for k in keys])
        skin = np.asarray(skin, bool)
        idx = {n: i for i, n in enumerate(ARKIT_52)}
        mag = np.linalg.norm(deltas, axis=2)
        # The mouth from the shapes: the corners are where mouthStretch pulls most, the lip line
        # at the front of the middle.
        corners = [int(np.argmax(np.where(skin, mag[idx[f"mouthStretch{s}"]], 0))) for s in ("Left", "Right")]
        cz = points[corners, 2].mean()
        mid = skin & (np.abs(points[:, 0]) < 0.002) & (np.abs(points[:, 2] - cz) < 0.0015)
        front = np.nonzero(mid)[0][np.argmin(points[mid, 1])]
        mouth = {"mouthL": points[corners[0]], "mouthR": points[corners[1]],
                 "lipUpper": points[front], "lipLower": points[front]}
        eyes = [Eyeball(np.asarray(c, float), float(r)) for c, r in eyeballs]
        landmarks = detect(mesh, skin, eyes, rotation=np.eye(3), mouth=mouth)
        labels = np.full(len(points), NONE)
        jaw = mag[idx["jawOpen"]]
        labels[skin] = np.where(jaw[skin] > 0.5 * jaw[skin].max(), LIP_LOWER, LIP_UPPER)
        for side, up_label, lo_label in (("Left", LID_UPPER_L, LID_LOWER_L), ("Right", LID_UPPER_R, LID_LOWER_R)):
            dz = deltas[idx[f"eyeBlink{side}"], :, 2]
            big = np.abs(dz).max()
            labels[skin & (dz < -0.05 * big)] = up_label
            labels[skin & (dz > 0.05 * big)] = lo_label
        return cls(mesh, skin, deltas, landmarks, labels)
