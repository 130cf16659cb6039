"""Render settings shared by the headless scene builders (demo_scene, dialogue_scene): a quick
Workbench look and an MP4 whose audio Blender's own FFmpeg output muxes in."""

from __future__ import annotations

from . import compat


def workbench_look(scene) -> None:
    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL"
    shading.show_specular_highlight = True
    # FXAA instead of the default 8 samples: about seven times faster per frame, fine for previews.
    scene.display.render_aa = "FXAA"


def mp4_output(scene) -> None:
    """H.264 video with mono AAC audio; the output path is used as given, without a frame-range suffix."""
    compat.use_video_output(scene.render.image_settings)
    ff = scene.render.ffmpeg
    ff.format = "MPEG4"
    ff.codec = "H264"
    ff.constant_rate_factor = "MEDIUM"
    ff.audio_codec = "AAC"
    ff.audio_channels = "MONO"
    ff.audio_bitrate = 128
    ff.audio_mixrate = 48000
    scene.render.use_file_extension = False
