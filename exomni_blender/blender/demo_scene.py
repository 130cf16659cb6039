"""A ready-to-watch scene for one take: the procedural head keyed with it, its audio strip, a
camera, and optionally a rendered preview with the audio muxed in by Blender's own FFmpeg output.

Run headless as `python -m exomni_blender.demo_scene --take DIR --blend OUT.blend [--video OUT.mp4]`
with a Python that has `bpy` (the backend's `exomni demo` does this, since the backend itself
never imports bpy).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import bpy
from mathutils import Vector

from .head import create_head
from .keying import key_take
from .preview_render import mp4_output, workbench_look
from ..core.take import Take
from .timeline import add_audio_strip

START_FRAME = 1


def build_scene(take: Take, blend_path: str, start_frame: int = START_FRAME):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0  # the file is written twice: no .blend1 beside it
    scene = bpy.context.scene
    scene.name = "ExOmni Demo"
    scene.render.fps = int(round(take.fps)) if abs(take.fps - round(take.fps)) < 1e-6 else 30
    scene.render.fps_base = 1.0
    # Saving first lets the audio live beside the .blend instead of being packed into it.
    bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(blend_path))
    head = create_head("ExOmniHead")
    action = key_take(head, take, start_frame=start_frame)
    strip = add_audio_strip(scene, take, start_frame)
    # A fresh scene's default range (1-250) means nothing here: play exactly the take.
    scene.frame_start = start_frame
    scene.frame_end = max(strip.frame_final_end - 1, start_frame + int(round(take.frames * scene.render.fps / take.fps)) - 1)
    scene.frame_current = start_frame
    _add_camera_and_light(scene, head)
    _preview_settings(scene)
    bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(blend_path))
    return head, action, strip


def _add_camera_and_light(scene, head) -> None:
    corners = [head.matrix_world @ Vector(c) for c in head.bound_box]
    lo = Vector((min(c.x for c in corners), min(c.y for c in corners), min(c.z for c in corners)))
    hi = Vector((max(c.x for c in corners), max(c.y for c in corners), max(c.z for c in corners)))
    centre, size = (lo + hi) / 2, max(hi.x - lo.x, hi.z - lo.z)
    cam_data = bpy.data.cameras.new("PreviewCamera")
    cam_data.lens = 50
    cam = bpy.data.objects.new("PreviewCamera", cam_data)
    scene.collection.objects.link(cam)
    # The face looks toward -Y: frame it from the front so the head fills most of the picture
    # (half the sensor width over the focal length is tan of half the field of view).
    half_fov_tan = cam_data.sensor_width / 2.0 / cam_data.lens
    distance = size * 0.62 / half_fov_tan
    cam.location = (centre.x, lo.y - distance, centre.z)
    cam.rotation_euler = (math.radians(90), 0.0, 0.0)
    scene.camera = cam
    light = bpy.data.objects.new("KeyLight", bpy.data.lights.new("KeyLight", "SUN"))
    light.rotation_euler = (math.radians(60), math.radians(-20), math.radians(-30))
    scene.collection.objects.link(light)


def _preview_settings(scene, size: int = 480) -> None:
    workbench_look(scene)
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    mp4_output(scene)


def render_preview(scene, video_path: str) -> str:
    scene.render.filepath = os.path.abspath(video_path)
    bpy.ops.render.render(animation=True)
    return scene.render.filepath


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m exomni_blender.demo_scene")
    p.add_argument("--take", required=True, help="take folder")
    p.add_argument("--blend", required=True, help=".blend file to write")
    p.add_argument("--video", default=None, help="render a preview .mp4 with the audio")
    args = p.parse_args(argv)
    take = Take.load(args.take)
    head, action, strip = build_scene(take, args.blend)
    scene = bpy.context.scene
    print(f"scene: head {head.name} with {len(head.data.shape_keys.key_blocks) - 1} shape keys, "
          f"action {action.name!r}, sound strip at frame {strip.frame_final_start} "
          f"for {strip.frame_final_duration} frames, scene frames {scene.frame_start}-{scene.frame_end}", flush=True)
    if args.video:
        render_preview(scene, args.video)
        print(f"rendered {args.video}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
