"""Where the parts of the procedural head are (metres), how it is resolved, and its materials."""

# -- landmarks (metres) -------------------------------------------------------------------------
AXIS_Y = 0.01                    # the vertical axis the skin rays start from
EYE_X, EYE_Y, EYE_Z = 0.032, -0.0615, 0.002
EYE_RADIUS = 0.0125
LID_RADIUS = EYE_RADIUS + 0.0012
EYE_HALF_WIDTH = 0.0135          # half the lid slit, at the slit row
IRIS_RADIUS, PUPIL_RADIUS = 0.0058, 0.0025
MOUTH_Z = -0.064                 # the lip line
MOUTH_HALF_WIDTH = 0.024
HINGE_Y, HINGE_Z = -0.004, -0.014  # jaw hinge axis (parallel to X)
JAW_GLIDE = 0.011                # the jaw slides forward as it opens wide, as the condyles do
NECK_BOTTOM = -0.18

JAW_OPEN_DEGREES = 21.0
LID_UP_DEGREES, LID_DOWN_DEGREES = 34.0, 14.0   # how far the lids are opened at rest
GAZE_DEGREES = (25.0, 30.0)                      # up/down, in/out

# Grid resolution: columns around the head, rows over the crown, the mid-face band and the
# lower face; denser where the face is.
N_COLUMNS, ROWS_UPPER, ROWS_MIDDLE, ROWS_LOWER = 144, 44, 34, 40
LIP_ROWS_UPPER, LIP_ROWS_LOWER = 5, 6  # rows of lip between the lip line and each border

SKIN, BAG, EYE_LEFT, EYE_RIGHT, TEETH_UPPER, TEETH_LOWER, TONGUE, BROW, HAIR = range(9)

MATERIALS = (  # name, RGBA (also the Workbench viewport colour), roughness
    ("ExOmni Skin", (0.86, 0.55, 0.42, 1.0), 0.55),
    ("ExOmni Lips", (0.66, 0.25, 0.23, 1.0), 0.45),
    ("ExOmni Brows", (0.16, 0.09, 0.05, 1.0), 0.8),
    ("ExOmni Lashes", (0.06, 0.04, 0.03, 1.0), 0.8),
    ("ExOmni Mouth", (0.13, 0.03, 0.03, 1.0), 0.6),
    ("ExOmni Teeth", (0.93, 0.91, 0.84, 1.0), 0.3),
    ("ExOmni Tongue", (0.72, 0.30, 0.32, 1.0), 0.4),
    ("ExOmni Eye White", (0.95, 0.94, 0.92, 1.0), 0.15),
    ("ExOmni Iris", (0.16, 0.36, 0.52, 1.0), 0.15),
    ("ExOmni Pupil", (0.01, 0.01, 0.01, 1.0), 0.1),
    ("ExOmni Hair", (0.10, 0.06, 0.04, 1.0), 0.5),
)
M_SKIN, M_LIPS, M_BROWS, M_LASHES, M_MOUTH, M_TEETH, M_TONGUE, M_SCLERA, M_IRIS, M_PUPIL, M_HAIR = range(11)
