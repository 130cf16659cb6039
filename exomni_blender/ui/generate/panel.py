"""The main sidebar panel (3D view, N panel, "Ex-Omni" tab): the head, the engine and mode, the line or
recording, the options, Generate with its progress and Cancel."""

import os

import bpy

from ...blender.compat import sound_start_frame
from ...remote.client import online_access_message
from .. import jobs, preferences
from ..common import MAIN_PANEL, SidebarPanel, draw_message, job_icon, scene_fps, target_object, text_width
from ..preferences import draw_status
from . import props
from .operators import takes_inside
from .recording import active_sound_strip, uses_recording


def _draw_recording(layout, context, width: int):
    """The recording's source and what it resolves to. Returns the frame a lip-sync take from the
    active sound strip is keyed at (None when the take starts at the panel's start frame)."""
    scene = context.scene
    settings = scene.exomni
    box = layout.box().column()
    box.label(text="Recording", icon="SOUND")
    box.row().prop(settings, "audio_source", expand=True)
    if settings.audio_source == "FILE":
        box.prop(settings, "audio_file", text="")
        return None
    if settings.audio_source == "SOUND":
        box.prop(settings, "sound", text="")
        sound = settings.sound
    else:
        strip, problem = active_sound_strip(scene)
        if strip is None:
            draw_message(box, problem, "ERROR", width)
            return None
        box.label(text=strip.name, icon="SEQUENCE")
        sound = strip.sound
    if sound is not None and sound.packed_file is None:
        path = bpy.path.abspath(sound.filepath, library=sound.library)
        if not os.path.isfile(path):
            draw_message(box, f"Its file is missing: {sound.filepath}", "ERROR", width)
    if settings.audio_source == "STRIP" and settings.mode == "lipsync":
        return sound_start_frame(strip, scene_fps(scene))
    return None


def draw_parts(layout, head) -> None:
    """The character's parts a take keys, each a toggle: "Keyed: Head, Teeth, EyeLeft ...". """
    from ...blender.character import find_character, is_left_out

    try:
        parts = find_character(head).keyable()
    except Exception as exc:  # a half-built rig must not break the panel's drawing
        layout.label(text=f"Cannot read the character: {exc}"[:80], icon="ERROR")
        return
    if len(parts) < 2:
        return
    box = layout.box()
    box.label(text="Keyed:", icon="GROUP")
    flow = box.grid_flow(columns=2, even_columns=True, align=True)
    for part in parts:
        out = is_left_out(part)
        op = flow.operator("exomni.toggle_part", text=part.label, icon="CHECKBOX_DEHLT" if out else "CHECKBOX_HLT",
                           depress=not out)
        op.object_name, op.bone = part.object_name, part.bone


class EXOMNI_PT_main(SidebarPanel, bpy.types.Panel):
    bl_idname = MAIN_PANEL
    bl_label = "Ex-Omni Talking Heads"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        settings = scene.exomni
        width = text_width(context)

        inside = takes_inside(preferences.get(context), settings)
        if not inside and not bpy.app.online_access:
            draw_message(layout, online_access_message(), "ERROR", width)

        col = layout.column()
        col.prop(settings, "target")
        head = target_object(context)
        if settings.target is None:
            if head is not None:
                col.label(text=f"Using the active object: {head.name}", icon="INFO")
            else:
                col.label(text="No head: select a mesh with shape keys", icon="ERROR")
                col.operator("exomni.add_demo_head", icon="MONKEY")
        if head is not None:
            draw_parts(col, head)

        row = col.row(align=True)
        row.prop(settings, "engine")
        row.operator("exomni.refresh_engines", text="", icon="FILE_REFRESH")
        info = props.engine_info(settings.engine)
        if info is not None and not info.get("available", True):
            draw_message(col, f"{settings.engine}: {info.get('reason') or 'unavailable'}", "ERROR", width)
        col.prop(settings, "mode")
        mode = settings.mode
        if not mode:  # the engine list changed and this engine lacks the mode chosen before
            col.label(text="Pick a mode this engine offers", icon="ERROR")
        if mode == "chat":
            col.prop(settings, "voice_prompt")
        sound_start = _draw_recording(col, context, width) if uses_recording(settings) else None
        if mode == "lipsync":
            col.label(text="Transcript (optional, helps the alignment):")
        elif mode == "chat" and settings.voice_prompt:
            col.label(text="Text with the spoken prompt (optional):")
        col.prop(settings, "text", text="")

        opts = col.column(align=True)
        if mode != "lipsync":  # a recording has its own voice and pace
            opts.prop(settings, "voice")
        row = opts.row(align=True)
        row.prop(settings, "seed")
        if mode != "lipsync":
            row.prop(settings, "rate")
        opts.prop(settings, "mouth_only")
        face = opts.column(align=True)
        face.enabled = not settings.mouth_only
        row = face.row(align=True)
        row.prop(settings, "mood", text="")
        row.prop(settings, "intensity")
        face.prop(settings, "head_motion")
        row = opts.row(align=True)
        row.prop(settings, "layered")
        if settings.takes:
            row.operator("exomni.change_mood")
        opts.prop(settings, "live")

        if sound_start is not None:
            col.label(text=f"Keyed from frame {sound_start:g}, where the strip's sound starts", icon="KEYFRAME")
        else:
            row = col.row(align=True)
            row.prop(settings, "use_playhead")
            sub = row.row(align=True)
            if settings.use_playhead:
                sub.label(text=f"Frame {scene.frame_current}")
            else:
                sub.prop(settings, "start_frame", text="Frame")
        col.label(text=f"{scene_fps(scene):g} fps (the scene's frame rate)", icon="TIME")
        col.label(text="Made inside Blender (embedded engine)" if inside else "Made by the backend server",
                  icon="BLENDER" if inside else "URL")

        job = jobs.latest("generate")
        if job is not None and not job.finished:
            col.progress(factor=job.progress, type="BAR", text=f"{job.progress:.0%} {job.message}"[:width])
            col.operator("exomni.cancel", icon="CANCEL")
        else:
            big = col.row()
            big.scale_y = 1.5
            big.operator("exomni.generate", icon="PLAY")
            if job is not None:
                draw_message(col, job.message, job_icon(job), width)

        backend = jobs.latest("backend")
        if backend is not None and (backend.state == jobs.FAILED or not backend.finished):
            draw_status(col, context, width)


CLASSES = (EXOMNI_PT_main,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
