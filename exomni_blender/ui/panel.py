"""The sidebar panel in the 3D view (N panel, "Ex-Omni" tab) and its list of takes."""

import os

import bpy

from . import jobs
from . import props
from .preferences import draw_message, draw_status


def _text_width(context) -> int:
    region = getattr(context, "region", None)
    return max(24, int((region.width if region else 300) / 7.5))


class SidebarPanel:
    """Where the add-on's panels live: their own tab in the 3D viewport's sidebar."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Ex-Omni"


class EXOMNI_UL_takes(bpy.types.UIList):
    """One row per take made in this scene: name, line, start frame."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=item.name, icon="SPEAKER")
        row.label(text=item.text or "(no text)")
        row.label(text=f"@{item.start_frame}")

    def filter_items(self, context, data, propname):
        # Search the line as well as the name.
        items = getattr(data, propname)
        pattern = self.filter_name.lower()
        flags = [self.bitflag_filter_item if not pattern or pattern in (i.name + " " + i.text).lower() else 0
                 for i in items]
        return flags, []


def _draw_recording(layout, context, width: int):
    """The recording's source and what it resolves to. Returns the frame a lip-sync take from the
    active sound strip is keyed at (None when the take starts at the panel's start frame)."""
    from ..blender.compat import sound_start_frame
    from .operators import active_sound_strip, scene_fps

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


class EXOMNI_PT_main(SidebarPanel, bpy.types.Panel):
    bl_idname = "EXOMNI_PT_main"
    bl_label = "Ex-Omni Talking Heads"

    def draw(self, context):
        from .operators import scene_fps, target_object, uses_recording

        layout = self.layout
        scene = context.scene
        settings = scene.exomni
        width = _text_width(context)

        if not bpy.app.online_access:
            from ..remote.client import online_access_message
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

        job = jobs.latest("generate")
        if job is not None and not job.finished:
            col.progress(factor=job.progress, type="BAR", text=f"{job.progress:.0%} {job.message}"[:width])
            col.operator("exomni.cancel", icon="CANCEL")
        else:
            big = col.row()
            big.scale_y = 1.5
            big.operator("exomni.generate", icon="PLAY")
            if job is not None:
                icon = {jobs.DONE: "CHECKMARK", jobs.FAILED: "ERROR"}.get(job.state, "INFO")
                draw_message(col, job.message, icon, width)

        backend = jobs.latest("backend")
        if backend is not None and (backend.state == jobs.FAILED or not backend.finished):
            draw_status(col, context, width)


class EXOMNI_PT_takes(SidebarPanel, bpy.types.Panel):
    bl_idname = "EXOMNI_PT_takes"
    bl_label = "Takes"
    bl_parent_id = "EXOMNI_PT_main"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.exomni
        row = layout.row()
        row.template_list("EXOMNI_UL_takes", "", settings, "takes", settings, "takes_index", rows=3)
        side = row.column(align=True)
        side.operator("exomni.jump_to_take", text="", icon="PLAY_REVERSE")
        side.operator("exomni.rekey_take", text="", icon="KEYINGSET")
        side.operator("exomni.remove_take", text="", icon="REMOVE")
        if 0 <= settings.takes_index < len(settings.takes):
            item = settings.takes[settings.takes_index]
            box = layout.box().column(align=True)
            box.label(text=f"{item.frames} frames from frame {item.start_frame} on {item.object_name}")
            if item.action_name:
                box.label(text=f"Action: {item.action_name}", icon="ACTION")
            if item.engine:
                box.label(text=f"Engine: {item.engine}" + (f" ({item.mode})" if item.mode else ""))
            if item.strip_name:
                box.label(text=f"Lined up with the sound strip {item.strip_name}", icon="SEQUENCE")
            if item.preset:
                box.label(text=f"Retarget preset: {item.preset}", icon="SHAPEKEY_DATA")
            if item.missing:
                count = item.missing.count(",") + 1
                box.label(text=f"{count} channels found no shape key:", icon="ERROR")
                box.label(text=item.missing[:120] + ("..." if len(item.missing) > 120 else ""))
        layout.operator("exomni.key_take_from_disk", icon="IMPORT")


CLASSES = (EXOMNI_UL_takes, EXOMNI_PT_main, EXOMNI_PT_takes)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
