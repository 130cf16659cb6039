"""Live preview: a take heard and seen in the viewport while the backend is still making it.

The worker thread reads the take stream (`remote.stream`) and `feed`s each event here; everything
that touches Blender happens on the main thread in `tick`, called by the jobs pump (each streamed
event reports progress) and by this module's own timer between events. Audio chunks are played with
`aud` as they arrive, each scheduled at its place on one clock; the shape keys show the frame that
clock is at, so the face follows what is heard. Nothing is keyed here: when the take ends, Generate
keys and places it as every take (`land_take`), and the preview plays out its sound. `stop()` (Cancel,
a failure, a lost stream) silences it and puts the shape keys back at once.
"""

import threading
import time

import bpy
import numpy as np

from ..core import contract as C
from ..core.arkit import ARKIT_52
from ..core.audio_codec import from_pcm16
from ..remote.stream import StreamedTake

LEAD_S = 0.15  # the first chunk plays this long after it arrives, so the next one can follow seamlessly
TICK_S = 1.0 / 60.0

_previews: list = []  # the previews running (main thread)


class LivePreview:
    def __init__(self, head_name: str):
        self.head_name = head_name
        self._lock = threading.Lock()
        self._take = StreamedTake()
        self._unplayed: list = []  # (start sample, int16 samples, rate) not handed to the audio device yet
        self._clock = None  # time.monotonic() at which sample 0 (or frame 0) plays
        self._handles: list = []
        self._device = None
        self._saved: dict = {}  # shape key -> its value before the preview
        self.ended = False  # the stream ended: play out, then stop
        self.stopped = False
        self.applied_frames = 0  # frames shown so far (for the panel and the tests)
        self.sound_error = ""
        self.lost = False  # set by the worker when the stream broke: the next tick stops the preview
        self._targets = None  # [(mesh name, [(shape key, ARKit frame -> value)])], found on the first frame

    # -- worker thread -----------------------------------------------------------------------------
    def feed(self, event) -> None:
        with self._lock:
            self._take.add(event)
            if event.kind == C.STREAM_AUDIO:
                self._unplayed.append((event.start, event.data, int(event.rate)))
            elif event.kind == C.STREAM_END:
                self.ended = True

    def drop(self) -> None:
        """The stream broke: the preview stops on the main thread's next tick."""
        self.lost = True

    # -- main thread ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._targets = _character_targets(self.head_name)  # before the first frame: it must show at once
        _previews.append(self)
        if not bpy.app.timers.is_registered(_tick_all):
            bpy.app.timers.register(_tick_all, first_interval=TICK_S)

    def tick(self, now: float | None = None) -> bool:
        """Play what arrived, show the frame the clock is at. False once the preview is over."""
        if self.lost:
            self.stop()
        if self.stopped:
            return False
        now = time.monotonic() if now is None else now
        with self._lock:
            unplayed, self._unplayed = self._unplayed, []
            frames, fps = self._take.frames, self._take.fps
            samples, rate = self._take.pcm.size, self._take.sample_rate
        if self._clock is None and (unplayed or (frames.shape[0] and not samples)):
            self._clock = now + LEAD_S
        for start, pcm, chunk_rate in unplayed:
            due = self._clock + start / chunk_rate
            if due < now:  # the chunk came late: the clock (and so the face) waits for the sound
                self._clock += now - due
                due = now
            self._play(pcm, chunk_rate, due - now)
        if self._clock is None or not frames.shape[0]:
            return True
        index = int((now - self._clock) * fps)
        duration = max(frames.shape[0] / fps, samples / rate if rate else 0.0)
        if self.ended and now - self._clock >= duration:
            self.stop()
            return False
        self._show(frames[min(max(index, 0), frames.shape[0] - 1)])
        return True

    def stop(self) -> None:
        """Silence the sound and put the shape keys back, now."""
        if self.stopped:
            return
        self.stopped = True
        for handle in self._handles:
            try:
                handle.stop()
            except Exception:  # a handle that already ended
                pass
        self._handles.clear()
        self._device = None  # closes the audio device: an open one keeps Blender's audio thread alive at exit
        for (obj_name, key_name), value in self._saved.items():
            obj = bpy.data.objects.get(obj_name)
            keys = getattr(getattr(obj, "data", None), "shape_keys", None)
            block = keys.key_blocks.get(key_name) if keys is not None else None
            if block is not None:
                block.value = value
        self._saved.clear()
        scene = bpy.context.scene
        if scene is not None:  # an Action keyed meanwhile takes the keys over
            scene.frame_set(scene.frame_current)
        if self in _previews:
            _previews.remove(self)
        if not _previews and bpy.app.timers.is_registered(_tick_all):
            bpy.app.timers.unregister(_tick_all)  # a timer left behind keeps the bpy module from exiting

    def _show(self, weights: np.ndarray) -> None:
        if self._targets is None:
            self._targets = _character_targets(self.head_name)
        frame = np.asarray(weights, np.float32)[None, :]
        for obj_name, targets in self._targets:
            obj = bpy.data.objects.get(obj_name)
            keys = getattr(getattr(obj, "data", None), "shape_keys", None)
            if keys is None:
                continue
            for key_name, value_of in targets:
                block = keys.key_blocks.get(key_name)
                if block is None:
                    continue
                self._saved.setdefault((obj_name, key_name), block.value)
                block.value = float(value_of(frame))
            obj.data.update_tag()
        self.applied_frames += 1

    def _play(self, pcm: np.ndarray, rate: int, delay: float) -> None:
        if self.sound_error:
            return
        try:
            import aud

            if self._device is None:
                self._device = aud.Device()
            sound = aud.Sound.buffer(from_pcm16(pcm).reshape(-1, 1), float(rate))
            self._handles.append(self._device.play(sound.delay(max(0.0, delay)) if delay > 0 else sound))
        except Exception as exc:  # no audio device: the face still moves
            self.sound_error = f"live sound is off ({exc})"


def _character_targets(head_name: str) -> list:
    """Every mesh of the head's character the preview moves, as the take will be keyed on it: each
    mesh's keys through the rig family detected for it (ICT's eyeBlink_L, both halves of a split
    browInnerUp), parts the user left out left alone. A viseme rig shows its ARKit-named keys only
    (its visemes come from the take's phonemes, which a live frame does not carry)."""
    from ..blender.character import find_character, is_left_out
    from ..core import retarget

    head = bpy.data.objects.get(head_name)
    if head is None:
        return []
    try:
        meshes = [p.object_name for p in find_character(head).meshes() if not is_left_out(p)] or [head_name]
    except Exception:  # the preview must never fail on a rig it cannot read: the chosen head alone
        meshes = [head_name]
    out = []
    for name in meshes:
        obj = bpy.data.objects.get(name)
        keys = getattr(getattr(obj, "data", None), "shape_keys", None)
        if keys is None:
            continue
        key_names = [b.name for b in keys.key_blocks][1:]
        preset = retarget.detect(key_names).preset
        if preset is not None:
            targets = [(key, lambda w, t=target: t.evaluate(w)[0]) for target, key in preset.targets_for(key_names)]
        else:
            lower = {k.lower(): k for k in key_names}
            targets = [(lower[n.lower()], lambda w, c=c: w[0, c]) for c, n in enumerate(ARKIT_52) if n.lower() in lower]
        out.append((name, targets))
    return out


def stop_all() -> None:
    """Cancel (and unregister): every preview silent and still at once, and no timer left behind."""
    for preview in list(_previews):
        preview.stop()
    if bpy.app.timers.is_registered(_tick_all):
        bpy.app.timers.unregister(_tick_all)


def _tick_all():
    for preview in list(_previews):
        try:
            preview.tick()
        except Exception:  # a timer that raises is dropped by Blender: stop this preview instead
            import traceback

            traceback.print_exc()
            preview.stop()
    return TICK_S if _previews else None
