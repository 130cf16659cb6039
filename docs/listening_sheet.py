"""Makes docs/listening_contact_sheet.png: a directed dialogue scene seen from above and behind, one
frame in the middle of each line, with the listening layer (top row of each scene) and without it
(bottom row). Two heads in a two-shot, then the three heads of tests/test_blender_listening.py.

    .venv/bin/python docs/listening_sheet.py
"""

import math
import sys
import tempfile
from pathlib import Path

import bpy
import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import test_blender_listening as T  # noqa: E402

from exomni_blender.blender.preview_render import workbench_look  # noqa: E402

W, H = 256, 160


def shot(scene, frames, seats, elevation, distance):
    workbench_look(scene)
    scene.world = scene.world or bpy.data.worlds.new("Sheet")
    scene.world.color = (0.55, 0.58, 0.62)
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = W, H, 100
    light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    scene.collection.objects.link(light)
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(cam)
    cam.data.lens = 50
    centre = np.mean([np.array(bpy.data.objects[n].location) for n in seats], axis=0)
    e = math.radians(elevation)  # in front of the table (-Y), above it, looking at its middle
    cam.location = (centre[0], centre[1] - distance * math.cos(e), centre[2] + distance * math.sin(e))
    cam.rotation_euler = (math.radians(90 - elevation), 0.0, 0.0)
    scene.camera = cam
    out = []
    for f in frames:
        scene.frame_set(f)
        path = Path(tempfile.mkdtemp()) / "f.png"
        scene.render.filepath = str(path)
        bpy.ops.render.render(write_still=True)
        img = Image.open(path).convert("RGB")
        out.append(img.resize((W, H)))
    return out


def scene_rows(tmp, seats_deg, lines, radius, elevation, distance):
    rows = []
    for listen in (True, False):
        T.SEATS.clear()
        T.SEATS.update(seats_deg)
        T.LINES[:] = lines
        T.RADIUS = radius
        scene, plan, _ = T.make_scene(tmp / f"{len(seats_deg)}{listen}", listen=listen)
        frames = [ln["start_frame"] + int(ln["frames"] * 0.55) for ln in plan["lines"]]
        labels = [f"{ln['character']} speaks" + ("" if listen else " (no listen)") for ln in plan["lines"]]
        rows.append(list(zip(shot(scene, frames, seats_deg, elevation, distance), labels)))
    return rows


def main():
    tmp = Path(tempfile.mkdtemp())
    seats3, lines3, radius3 = dict(T.SEATS), list(T.LINES), T.RADIUS
    two = scene_rows(tmp, {"ANN": -55.0, "BOB": 55.0},
                     [("ANN", [], "So you found the map in the attic?"),
                      ("BOB", [], "I did. It was wrapped in an old newspaper.")], 0.3, 15, 1.35)
    three = scene_rows(tmp, seats3, lines3, radius3, 50, 2.9)
    rows = two + three
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (cols * W, len(rows) * H), (140, 146, 155))
    draw = ImageDraw.Draw(sheet)
    for y, row in enumerate(rows):
        for x, (img, label) in enumerate(row):
            sheet.paste(img, (x * W, y * H))
            draw.text((x * W + 6, y * H + 4), label, fill=(0, 0, 0))
    sheet.save(REPO / "docs" / "listening_contact_sheet.png", optimize=True)


if __name__ == "__main__":
    main()
