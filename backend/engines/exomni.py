"""The `exomni` engine: the full Ex-Omni model speaks a line (say) or answers a prompt (chat).

The checkpoint folder comes from the constructor or EXOMNI_CHECKPOINT, the audio decoder's folder
(glm-4-voice-decoder: flow.pt, hift.pt) from the constructor or EXOMNI_DECODER, the device from the
constructor or EXOMNI_DEVICE ("auto": CUDA when present). Nothing heavy happens at construction: the
model loads once, on the first take (in the job's worker, with progress) or via `preload()` (what
`exomni serve` does at start). While it loads, the engine reports itself unavailable with the load's
progress ("loading ... try again in a moment", a 503 for requests) rather than holding requests:
the job queue has one worker, and a take waiting minutes for weights would hold up every other
engine's takes behind it. `describe()` adds `state` (ready, loading, not loaded, failed,
unavailable) and, while loading, `progress` (0..1) and `message`.

Frames follow the model: the blendshape generator gives floor(K / 12.5 x 30) frames at 30 fps for K
units (ids above 0), clipped to [0, 1] and resampled to the requested rate. Audio comes from the
audio decoder when it is installed and its folder is given; otherwise the take says so in its note.
The audio is streamed: each unit goes to the decoder as the speech generator keeps it, and audio chunks
come out while the rest of the units are still being generated (progress says how many seconds are
ready; `timings["first_audio"]` says when the first were). The option `stream_audio: false` decodes
offline once every unit exists instead; both give audio of the same length.

The model animates the mouth and the face around it; it has no mood instruction and hardly moves
the eyes. So, unless `mouth_only`, the take gets the eyes of the shared generator (blinks at the
pauses its mouth makes, saccades, lids following the gaze: `core.face.speech_eyes`, seeded by the
request, as the phonetic engine's) and the requested mood as a layer (`core.face.with_mood`; the
take's meta records mood and intensity, so the Blender side keys it as the expression layer and can
swap it). The voice stays the model's own. Both are computed from what is known a short while past
each frame (FaceLayers): the last few tenths of a second of frames wait until more come, so a frame
once streamed is never changed.

The face is streamed too (option `stream_face`, default true): the blendshape generator runs on the
units decoded so far, every few units, so the first frames exist long before the last unit (see
models/exomni/face_stream.py for how close that is to animating the whole utterance at once, and
why it is not equal). `stream_face: false` animates the whole utterance once at the end.

Incremental output, for a streaming endpoint: `make_take(request, progress, on_piece)` calls
`on_piece(piece)` with `TakePiece`s in the order they are made, from the thread that makes the take:

- an audio piece: `audio` (float32 mono at `sample_rate`) whose first sample is sample `audio_start`
  of the take's audio; each one starts where the previous one ended (no gap, no overlap);
- a face piece: `frames` (float32 [k, 52], ARKit order, at the take's `fps`, clipped, mouth-only or
  the eyes and mood applied: exactly the rows of the finished take's weights) whose first row is frame `frame_start`; contiguous
  in the same way;
- the last piece has `final` true (and may carry the last audio and frames).
`elapsed` is the seconds since the take began. The pieces' frames and audio, concatenated, are the
finished take's weights and audio byte for byte, whether or not anyone listens (the take is built
from them), so a streamed take and a non-streamed take with the same request are the same. One
exception: if the streaming audio decoder fails part-way, the take falls back to offline decoding,
and the final piece carries the whole audio again with `audio_start` 0: a client replaces what it had.
An exception raised by `on_piece` stops the take (Cancelled from it cancels the take).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from exomni_blender.core import face as face_model  # `face` is the streamed face in make_take
from exomni_blender.core.arkit import ARKIT_52, MOUTH_CHANNELS
from exomni_blender.core.contract import E_BAD_AUDIO, E_BAD_REQUEST, E_EMPTY_TEXT, E_ENGINE_UNAVAILABLE, E_UNKNOWN_MODE
from exomni_blender.core.request import option_value, validate_options
from exomni_blender.core.settings import Settings
from exomni_blender.core.take import Take, resample_curves

from .base import Availability, Cancelled, Engine, EngineError, Progress, TakeRequest

MODEL_FPS = 30.0
UNIT_RATE = 12.5
log = logging.getLogger("exomni.engine")


@dataclass
class TakePiece:
    """One increment of a take being made (see the module docstring)."""

    audio: np.ndarray  # float32 mono samples (may be empty)
    audio_start: int  # index in the take's audio of audio[0]
    sample_rate: int
    frames: np.ndarray  # float32 [k, 52] at `fps` (k may be 0)
    frame_start: int  # index in the take's weights of frames[0]
    fps: float
    elapsed: float  # seconds since the take began
    final: bool = False


PieceCallback = Callable[[TakePiece], None]


class TakeStream:
    """Turns the model's raw 30 fps frames and the decoder's audio into in-order TakePieces.

    Frames are clipped to [0, 1], resampled to the take's rate exactly as `resample_curves` does on
    the whole curve (an output frame is published once the 30 fps frames on both sides of it exist, so
    its value never changes), and masked to the mouth when asked."""

    def __init__(self, fps: float, mouth_only: bool, on_piece: PieceCallback | None, t_start: float,
                 sample_rate: int = 22050, layers: "FaceLayers | None" = None):
        self.fps = float(fps)
        self.mask = np.array([name in MOUTH_CHANNELS for name in ARKIT_52], np.float32) if mouth_only else None
        self.layers = layers
        self.on_piece = on_piece
        self.t_start = t_start
        self.sample_rate = int(sample_rate)
        self.raw30: list[np.ndarray] = []
        self.model_frames = 0
        self.frames: list[np.ndarray] = []
        self.frame_count = 0  # frames sent
        self.resampled = 0  # frames made at the take's rate (some may wait in `layers`)
        self.audio_count = 0
        self.first_face_at: float | None = None
        self.first_audio_at: float | None = None

    def _send(self, audio=None, frames=None, audio_start=None, final=False):
        piece = TakePiece(np.zeros(0, np.float32) if audio is None else audio,
                          self.audio_count if audio_start is None else audio_start, self.sample_rate,
                          np.zeros((0, len(ARKIT_52)), np.float32) if frames is None else frames,
                          self.frame_count, self.fps, time.perf_counter() - self.t_start, final)
        if frames is not None and frames.shape[0]:
            self.frames.append(frames)
            self.frame_count += frames.shape[0]
            if self.first_face_at is None:
                self.first_face_at = piece.elapsed
        if audio is not None and audio.size:
            self.audio_count = piece.audio_start + audio.size
            if self.first_audio_at is None:
                self.first_audio_at = piece.elapsed
        if self.on_piece is not None:
            self.on_piece(piece)

    def add_audio(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.float32).reshape(-1)
        if samples.size:
            self._send(audio=samples)

    def add_frames(self, raw, last: bool = False) -> None:
        """Raw model frames [k, 52] at 30 fps (a torch tensor or an array), in order; `last`: no more follow."""
        raw = np.asarray(raw.detach().float().cpu().numpy() if hasattr(raw, "detach") else raw, np.float32)
        self.raw30.append(np.clip(raw, 0.0, 1.0).astype(np.float32))
        self.model_frames += raw.shape[0]
        self._publish(final=last)

    def _publish(self, final: bool) -> None:
        if not self.raw30:
            return
        curve = np.concatenate(self.raw30) if len(self.raw30) > 1 else self.raw30[0]
        self.raw30 = [curve]
        if abs(self.fps - MODEL_FPS) < 1e-9:
            out = curve[self.resampled:]
        elif final:
            out = resample_curves(curve, MODEL_FPS, self.fps)[self.resampled:]
        else:  # the frames whose two 30 fps neighbours exist and that the final length will keep
            n = curve.shape[0]
            t_src = np.arange(n) / float(MODEL_FPS)
            keep = min(int(np.ceil((n - 1) * self.fps / MODEL_FPS)) + 1, max(1, int(round(n / MODEL_FPS * self.fps))))
            t_dst = np.arange(self.resampled, max(keep, self.resampled)) / float(self.fps)
            t_dst = t_dst[t_dst < t_src[-1]]
            out = np.stack([np.interp(t_dst, t_src, curve[:, c]) for c in range(curve.shape[1])],
                           axis=1).astype(np.float32) if t_dst.size else curve[:0]
        self.resampled += out.shape[0]
        if self.mask is not None:
            out = out * self.mask[None, :]
        if self.layers is not None:
            out = self.layers.add(out, final)
        if out.shape[0]:
            self._send(frames=np.ascontiguousarray(out, dtype=np.float32))

    def finish_face(self) -> np.ndarray:
        """Publish the last frames; the take's weights (every published frame)."""
        self._publish(final=True)
        return np.concatenate(self.frames) if self.frames else np.zeros((0, len(ARKIT_52)), np.float32)

    def finish_audio(self, audio: np.ndarray, sample_rate: int, restart: bool = False) -> None:
        """The final piece with the audio not sent yet; all of it again (from 0) after a `restart`."""
        self.sample_rate = int(sample_rate)
        audio = np.asarray(audio, np.float32).reshape(-1)
        if restart or self.audio_count > audio.size:
            self.audio_count = 0
        self._send(audio=audio[self.audio_count:], audio_start=self.audio_count, final=True)


class FaceLayers:
    """The eyes and the mood on the model's frames, without changing a frame once it is sent.

    The model animates the mouth and the face around it but has no eyes of their own to speak of and
    no mood instruction. Its frames get the shared eye generator (`core.face.speech_eyes`: blinks at
    the pauses its mouth makes, saccades, lids following the gaze; seeded by the request) and the
    requested mood as a layer (`core.face.with_mood`). Both depend on little of the future: a frame's
    eyes on the next EYES_LOOKAHEAD seconds, its mood on whether the take ends within MOOD_EASE
    seconds (the mood eases out at the end). So the last HOLD seconds of frames known are held back
    until more come or the take ends, and every frame sent is the frame the whole take gets:
    `add` over any split of the frames returns, concatenated, `layered(all frames)`."""

    def __init__(self, fps: float, seed: int, mood: str, intensity: float):
        self.fps = float(fps)
        self.seed = int(seed)
        self.mood = face_model.check_mood(mood)
        self.intensity = float(intensity)
        self.arousal = face_model.mood_arousal(mood, intensity)
        # one frame to spare beyond the longest look ahead, against rounding at the boundary
        self.hold = int(np.ceil(max(face_model.EYES_LOOKAHEAD, face_model.MOOD_EASE) * self.fps)) + 1
        self.neutral: list[np.ndarray] = []
        self.count = 0
        self.sent = 0

    def layered(self, neutral: np.ndarray) -> np.ndarray:
        """The take's frames from the model's: eyes added, then the mood's layer (as the phonetic engine)."""
        neutral = np.asarray(neutral, np.float32)
        if not neutral.shape[0]:
            return neutral
        eyes = face_model.speech_eyes(neutral, self.fps, self.seed, self.arousal)
        with_eyes = np.clip(neutral + eyes, 0.0, 1.0).astype(np.float32)
        return face_model.with_mood(with_eyes, self.fps, self.mood, self.intensity)

    def add(self, frames: np.ndarray, final: bool) -> np.ndarray:
        """The model's next frames in; out, the layered frames now final (all the rest when `final`)."""
        if frames.shape[0]:
            self.neutral.append(np.asarray(frames, np.float32))
            self.count += frames.shape[0]
        ready = self.count if final else self.count - self.hold
        if not final and self.mood != "neutral" and self.count - 1 < 2 * self.hold:
            ready = 0  # a take shorter than two eases has a shorter ease: wait until it is longer
        if ready <= self.sent:
            return np.zeros((0, len(ARKIT_52)), np.float32)
        known = np.concatenate(self.neutral) if len(self.neutral) > 1 else self.neutral[0]
        self.neutral = [known]
        out = self.layered(known)[self.sent:ready]
        self.sent = ready
        return out


class ExomniEngine(Engine):
    name = "exomni"
    modes = ("say", "chat")
    description = ("Ex-Omni: an LLM that speaks and animates a face together (speech units at 12.5 Hz, "
                   "ARKit-52 at 30 fps); needs the Tencent/Ex-Omni checkpoint")

    def __init__(self, checkpoint=None, decoder=None, device=None, speech_encoder=None, speech_generator=None):
        env = Settings.from_env(strict=False)  # what the caller leaves out, the environment gives
        self.checkpoint = checkpoint or env.checkpoint
        self.decoder_folder = decoder or env.decoder
        self.device = device or env.device or "auto"
        self.speech_encoder = speech_encoder
        self.speech_generator = speech_generator
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._pipeline = None
        self._decoder = None
        self._decoder_note = ""
        self._load_error = ""
        self._load_seconds = 0.0
        self._loading = False
        self._progress = (0.0, "")
        self._preload_thread = None

    # -- availability ---------------------------------------------------------------------------
    def availability(self) -> Availability:
        if self._pipeline is not None:
            return Availability(True)
        if self._load_error:
            return Availability(False, self._load_error)
        if self._loading:
            fraction, message = self._progress
            return Availability(False, f"the Ex-Omni model is loading ({fraction:.0%}"
                                       f"{': ' + message if message else ''}); try again in a moment")
        return self._check_setup()

    def describe(self) -> dict:
        out = super().describe()
        if self._pipeline is not None:
            out["state"] = "ready"
        elif self._load_error:
            out["state"] = "failed"
        elif self._loading:
            fraction, message = self._progress
            out.update(state="loading", progress=round(fraction, 3), message=message)
        else:
            out["state"] = "not loaded" if out["available"] else "unavailable"
        return out

    def _check_setup(self) -> Availability:
        """Libraries, checkpoint folder, device and memory, without loading anything."""
        for package in ("torch", "transformers", "safetensors"):
            if importlib.util.find_spec(package) is None:
                return Availability(False, f"{package} is not installed; install the model extras: "
                                           f"pip install 'exomni-blender[model]'")
        from ..models.exomni.loading import (CheckpointError, estimate_memory_bytes, free_memory_bytes,
                                             inspect_checkpoint, pick_device, resolve_sub_models)

        try:
            info = inspect_checkpoint(self.checkpoint)
            device = pick_device(self.device)
            resolve_sub_models(info, self.speech_encoder, self.speech_generator)
        except CheckpointError as exc:
            return Availability(False, str(exc))
        except (RuntimeError, ValueError) as exc:  # e.g. a malformed device name
            return Availability(False, f"device {self.device!r} cannot be used ({exc}); use cuda, cpu or auto")
        need, free = estimate_memory_bytes(info, device), free_memory_bytes(device)
        if free is not None and need > free:
            where = "GPU" if device.type == "cuda" else "system"
            return Availability(False, f"the model needs about {need / 2**30:.1f} GiB of {where} memory and "
                                       f"{free / 2**30:.1f} GiB is free; close other programs, use a larger "
                                       f"GPU, or pick another device")
        return Availability(True)

    # -- loading ---------------------------------------------------------------------------------
    def preload(self) -> threading.Thread:
        """Start loading in the background (e.g. when the server starts); progress and errors show in
        availability() and describe(). Calling it again returns the thread already started."""
        with self._load_lock:
            if self._preload_thread is not None:
                return self._preload_thread
            if self._pipeline is None and not self._load_error:
                setup = self._check_setup()
                if not setup.available:  # a setup that cannot load never shows as loading, even briefly
                    self._load_error = setup.reason
                else:
                    self._loading = True  # at once, so no request slips in before the thread takes the lock
                    self._progress = (0.0, "checking the checkpoint and the device")
            self._preload_thread = threading.Thread(target=self._try_load, name="exomni-load", daemon=True)
            self._preload_thread.start()
            return self._preload_thread

    def _try_load(self):
        try:
            self.load()
        except EngineError as exc:
            log.warning("the Ex-Omni model did not load: %s", exc)

    def load(self, progress=None):
        """Load the model (once; concurrent callers wait for the first). Raises EngineError (503)."""
        outer = progress or (lambda fraction, message: None)

        def report(fraction, message):
            self._progress = (fraction, message)
            outer(fraction, message)

        with self._load_lock:
            if self._pipeline is not None:
                self._loading = False
                return self._pipeline
            if self._load_error:
                self._loading = False
                raise EngineError(self._load_error, E_ENGINE_UNAVAILABLE)
            self._loading = True
            try:
                available = self._check_setup()
                if not available.available:
                    raise EngineError(available.reason, E_ENGINE_UNAVAILABLE)
                return self._load_now(report)
            finally:
                self._loading = False

    def _load_now(self, report):
        from ..models.exomni.loading import CheckpointError, load_exomni
        from ..models.exomni.pipeline import ExomniPipeline

        t0 = time.perf_counter()
        report(0.0, "loading the Ex-Omni model")
        try:
            loaded = load_exomni(self.checkpoint, self.device, speech_encoder=self.speech_encoder,
                                 speech_generator=self.speech_generator,
                                 progress=lambda f, m: report(0.9 * f, m))
        except CheckpointError as exc:
            self._load_error = f"{exc} (then restart the backend)"
            raise EngineError(self._load_error, E_ENGINE_UNAVAILABLE) from exc
        except MemoryError as exc:
            self._load_error = "ran out of memory while loading the model; use a machine with more memory"
            raise EngineError(self._load_error, E_ENGINE_UNAVAILABLE) from exc
        except Cancelled:  # the take that triggered the load was cancelled; a later one loads again
            raise
        except Exception as exc:  # e.g. CUDA out of memory, a driver error: keep serving the other engines
            log.exception("loading the Ex-Omni model failed")
            self._load_error = (f"loading the model failed ({type(exc).__name__}: {exc}); see the backend's log, "
                                f"fix the cause, then restart the backend")
            raise EngineError(self._load_error, E_ENGINE_UNAVAILABLE) from exc
        report(0.92, "loading the audio decoder")
        self._decoder, self._decoder_note = self._load_decoder(loaded.device)
        self._load_seconds = time.perf_counter() - t0
        self._pipeline = ExomniPipeline(loaded)
        report(1.0, "model ready")
        return self._pipeline

    def _load_decoder(self, device):
        """(decoder or None, note saying why there is no audio)."""
        if not self.decoder_folder:
            return None, (f"no audio: the audio decoder's folder (glm-4-voice-decoder with flow.pt and hift.pt) "
                          f"was not given; set EXOMNI_DECODER or --exomni-decoder to hear the speech")
        try:
            module = importlib.import_module("backend.models.audio_decoder")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("backend.models.audio_decoder"):
                return None, "no audio: the audio decoder is not installed in this backend"
            raise
        try:
            return module.load_decoder(self.decoder_folder, device), ""
        except Exception as exc:  # a bad decoder folder must not cost the animation
            return None, f"no audio: the audio decoder in {self.decoder_folder} could not be loaded ({exc})"

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    # -- takes -------------------------------------------------------------------------------------
    def make_take(self, request: TakeRequest, progress: Progress, on_piece: PieceCallback | None = None) -> Take:
        """The take; `on_piece` receives it piece by piece while it is made (see the module docstring)."""
        if request.mode not in self.modes:
            raise EngineError(f"the exomni engine has no mode {request.mode!r}; use one of {', '.join(self.modes)}",
                              E_UNKNOWN_MODE)
        text = (request.text or "").strip()
        if not text and not (request.mode == "chat" and request.audio_path):
            raise EngineError("type a line to say" if request.mode == "say" else "type (or speak) a prompt",
                              E_EMPTY_TEXT)
        available = self.availability()
        if not available.available:
            raise EngineError(available.reason, E_ENGINE_UNAVAILABLE)
        options = validate_options(request.options or {})
        text_sampling, unit_sampling, max_new_tokens = sampling_from_options(options)
        stream_audio, stream_face = option_value(options, "stream_audio"), option_value(options, "stream_face")
        t_start = time.perf_counter()
        was_loaded = self.loaded
        progress(0.0, "loading the Ex-Omni model" if not was_loaded else "starting")
        pipeline = self.load(lambda f, m: progress(0.3 * f, m))
        load_seconds = 0.0 if was_loaded else self._load_seconds
        text_sampling, unit_sampling, max_new_tokens = sampling_from_options(request.options,
                                                                             pipeline.loaded.generation)

        import torch

        from ..models.exomni.speech_input import SpeechInputError

        generator = torch.Generator().manual_seed(int(request.seed))
        on_step = StepReporter(progress)
        layers = None if request.mouth_only else FaceLayers(request.fps, request.seed, request.mood,
                                                            request.intensity)
        stream = TakeStream(request.fps, request.mouth_only, on_piece, t_start,
                            int(getattr(self._decoder, "sample_rate", 22050)), layers)
        take_audio = None
        if self._decoder is not None:
            take_audio = TakeAudio(self._decoder, int(request.seed), stream=stream_audio,
                                   on_audio=lambda seconds: progress(on_step.fraction,
                                                                     f"speaking; {seconds:.1f} s of audio ready"),
                                   on_samples=stream.add_audio)
        on_unit = take_audio.push if take_audio is not None and take_audio.streaming else None
        face = None
        if stream_face:
            from ..models.exomni.face_stream import FaceStream

            face = FaceStream(pipeline.model.model.blendshape_generator, on_frames=stream.add_frames)
        with self._run_lock:
            progress.check()
            try:
                if request.mode == "say":
                    performance = pipeline.say(text, unit_sampling, generator, on_step, on_unit=on_unit, face=face)
                else:
                    performance = pipeline.chat(text, text_sampling, unit_sampling, max_new_tokens, generator,
                                                speech_path=request.audio_path or None, on_step=on_step,
                                                on_unit=on_unit, face=face)
            except ValueError as exc:  # the text or the recording cannot be performed
                code = E_BAD_AUDIO if isinstance(exc, SpeechInputError) else E_BAD_REQUEST
                raise EngineError(str(exc), code) from exc
        if performance.blendshapes.shape[0] == 0:
            what = "line" if request.mode == "say" else "reply"
            raise EngineError(f"the model produced no speech for this {what}"
                              f"{' (' + repr(performance.text) + ')' if request.mode == 'chat' else ''}; "
                              f"try another seed or a longer text", E_BAD_REQUEST, 422)

        if face is None:  # the whole utterance at once: the take's frames go out in one piece
            stream.add_frames(performance.blendshapes, last=True)
        weights = stream.finish_face()

        if take_audio is None:
            progress(0.9, "finishing")
        elif take_audio.streaming:
            progress(0.9, f"finishing the audio; {take_audio.ready_seconds:.1f} s ready")
        else:
            progress(0.9, "decoding audio")
        audio, sample_rate, note = np.zeros(0, np.float32), 22050, self._decoder_note
        if take_audio is not None:
            try:
                with self._run_lock:
                    audio, sample_rate = take_audio.finish(performance.units)
            except Exception as exc:  # keep the animation even when the vocoder fails
                audio, note = np.zeros(0, np.float32), f"no audio: the audio decoder failed ({exc})"
        stream.finish_audio(audio, sample_rate, restart=take_audio is not None and take_audio.stream_error is not None)
        timings = {k: round(v, 4) for k, v in performance.timings.items()}
        if take_audio is not None:
            timings["audio"] = round(take_audio.decode_seconds, 4)
            if take_audio.first_audio_at is not None and audio.size:
                timings["first_audio"] = round(take_audio.first_audio_at - t_start, 4)
        if load_seconds:
            timings["load"] = round(load_seconds, 4)
        if stream.first_face_at is not None:
            timings["first_face"] = round(stream.first_face_at, 4)
        timings["total"] = round(time.perf_counter() - t_start, 4)

        loaded = pipeline.loaded
        meta = {
            "seed": int(request.seed), "model_fps": MODEL_FPS, "model_frames": int(stream.model_frames),
            "face": "streamed" if face is not None else "whole utterance",
            "device": str(loaded.device), "dtype": str(loaded.dtype).replace("torch.", ""),
            "sampling": _describe(text_sampling, unit_sampling, max_new_tokens, request.mode),
            "unit_stop": performance.unit_stop,
        }
        if take_audio is not None and audio.size:
            meta["audio_decoding"] = "streamed" if take_audio.streamed else "offline"
        if request.mode == "chat":
            meta.update(prompt=text, reply=performance.text, text_stop=performance.text_stop)
            if request.audio_path:
                meta["spoken_prompt"] = True
        meta.update(_head_motion(weights, request))
        ignored = [k for k, v in (("voice", request.voice), ("rate", request.rate != 1.0),
                                  ("pitch", request.pitch != 1.0)) if v]
        if ignored:
            meta["ignored"] = f"the exomni engine speaks with the model's own voice; ignored: {', '.join(ignored)}"
        if request.mood != "neutral" and not request.mouth_only:
            meta["mood_layer"] = ("the model has no mood instruction: the mood is a layer on its face "
                                  "(the voice is the model's own)")
        if performance.prompt_dropped:
            meta["prompt_truncated"] = (f"the prompt was cut by {performance.prompt_dropped} positions to the "
                                        f"model's tokenizer_model_max_length ({pipeline.max_prompt_positions})")
        if note:
            meta["note"] = note
        progress(1.0, "done")
        return Take(fps=float(request.fps), weights=weights, audio=audio, sample_rate=int(sample_rate),
                    text=performance.text, engine=self.name, mode=request.mode, units=list(performance.units),
                    unit_rate=UNIT_RATE, timings=timings, meta=meta)


def _head_motion(weights: np.ndarray, request: TakeRequest) -> dict:
    """The take's performance meta: its mood and intensity (the layer FaceLayers added, so the Blender
    side can split it off and swap it) and head nods and tilts from the model's own mouth, by the
    shared head-motion model (`core.face.head_motion`, as the phonetic engine's), seeded by the
    request. The mood's layer never parts the lips, so the mouth it reads is the model's."""
    amount = 0.0 if request.mouth_only else float(request.head_motion)
    mood, intensity = ("neutral", 1.0) if request.mouth_only else (request.mood, request.intensity)
    meta = face_model.performance_meta(mood, intensity, amount)
    if amount > 0 and weights.shape[0]:
        accents, ends = face_model.speech_marks(weights, request.fps)
        rng = np.random.default_rng(np.random.SeedSequence([int(request.seed), 4]))
        rotation = face_model.head_motion(weights.shape[0] / float(request.fps), request.fps, accents, ends, rng, amount)
        meta[face_model.HEAD_ROTATION] = face_model.head_rotation_json(rotation[:weights.shape[0]])
    return meta


class TakeAudio:
    """A take's audio from its units, streamed or offline.

    Streamed: `push` is the speech generator's on_unit callback; each unit goes to the decoder's
    streaming state, and audio comes out as soon as the decoder's first chunk of units exists, then one
    chunk per further chunk of units (see models/audio_decoder/streaming.py), in the generator's own
    thread between its steps. `finish` flushes the rest. The result has the offline length and matches
    offline decoding away from the seams. Offline: `finish` decodes every unit at once. A stream that
    fails part-way falls back to offline decoding in `finish`, so a decoder error never stops the units.
    """

    def __init__(self, decoder, seed: int, stream: bool = True, on_audio=None, on_samples=None):
        self.decoder = decoder
        self.seed = int(seed)
        self.on_audio = on_audio  # called with the seconds of audio ready after each streamed chunk
        self.on_samples = on_samples  # called with each streamed chunk's samples, in order
        self.chunks: list[np.ndarray] = []
        self.ready_samples = 0
        self.first_audio_at: float | None = None  # time.perf_counter() when the first audio existed
        self.decode_seconds = 0.0  # time spent in the decoder
        self.streamed = False  # whether finish() returned the streamed audio
        self.stream_error: Exception | None = None
        self.mel_pieces: list = []  # the streamed mel, kept to compare with offline decoding
        self._flow = self._vocoder = None
        if stream and hasattr(decoder, "config") and hasattr(decoder, "stream"):
            from ..models.audio_decoder.streaming import FlowStream, StreamSettings, VocoderStream, resolve

            settings = resolve(decoder, StreamSettings())
            self._flow = FlowStream(decoder, settings, False, self.seed)
            self._vocoder = VocoderStream(decoder, settings.vocoder_context_frames, False, self.seed)

    @property
    def streaming(self) -> bool:
        return self._flow is not None

    @property
    def ready_seconds(self) -> float:
        return self.ready_samples / float(self.decoder.sample_rate)

    def push(self, unit: int) -> None:
        if self._flow is None:
            return
        t0 = time.perf_counter()
        try:
            pieces = [self._vocode(mel) for mel in self._flow.push([int(unit)])]
        except Exception as exc:  # finish() decodes offline instead; the speech generator goes on
            log.warning("streaming the audio failed, it will be decoded offline: %s", exc)
            self.stream_error, self._flow, self._vocoder = exc, None, None
            self.chunks, self.ready_samples, self.mel_pieces = [], 0, []
            return
        finally:
            self.decode_seconds += time.perf_counter() - t0
        if self._keep(pieces) and self.on_audio is not None:
            self.on_audio(self.ready_seconds)  # outside the try: it may raise Cancelled

    def _vocode(self, mel):
        self.mel_pieces.append(mel)
        return self._vocoder.push(mel)

    def _keep(self, pieces) -> bool:
        pieces = [p for p in pieces if p.size]
        if pieces and self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
        self.chunks += pieces
        self.ready_samples += sum(p.size for p in pieces)
        if self.on_samples is not None:
            for piece in pieces:
                self.on_samples(piece)
        return bool(pieces)

    def finish(self, units) -> tuple[np.ndarray, int]:
        """(mono float32 audio, sample rate) of every unit."""
        t0 = time.perf_counter()
        try:
            if self._flow is not None:
                pieces = [self._vocode(mel) for mel in self._flow.finish()]
                pieces.append(self._vocoder.push(None, final=True))
                self._keep(pieces)
                self._flow = self._vocoder = None
                self.streamed = True
                audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
                return audio.astype(np.float32, copy=False), int(self.decoder.sample_rate)
            audio, sample_rate = _decode(self.decoder, units, self.seed)
            self.first_audio_at = time.perf_counter()
            return np.asarray(audio, dtype=np.float32).reshape(-1), int(sample_rate)
        finally:
            self.decode_seconds += time.perf_counter() - t0


def _decode(decoder, units, seed):
    """The decoder's draws follow the take's seed when it takes one, so a seed reproduces the audio too."""
    import inspect

    if "seed" in inspect.signature(decoder.decode).parameters:
        return decoder.decode(list(units), seed=seed)
    return decoder.decode(list(units))


def sampling_from_options(options: dict, generation: dict | None = None):
    """(TextSampling, UnitSampling, max_new_tokens) from a request's options, checked by their one
    declaration (`exomni_blender.core.request.OPTIONS`).

    What the options leave out is the released demo's: temperature 0.2, and top-k, top-p and the
    repetition penalty of the checkpoint's generation_config.json (`generation`)."""
    from ..models.exomni.sampling import TextSampling, UnitSampling

    options = validate_options(options or {})
    greedy = option_value(options, "greedy")
    text = TextSampling.from_generation_config(generation, greedy=greedy,
                                               temperature=option_value(options, "temperature"),
                                               top_k=options.get("top_k"), top_p=options.get("top_p"),
                                               repetition_penalty=options.get("repetition_penalty"))
    return text, UnitSampling(greedy=greedy), option_value(options, "max_new_tokens")


def _describe(text, units, max_new_tokens, mode) -> dict:
    out = {"units": "greedy" if units.greedy else
           f"repetition-aware (top_p {units.top_p}, top_k {units.top_k}, window {units.window})"}
    if mode == "chat":
        out["text"] = ("greedy" if text.greedy else
                       f"temperature {text.temperature}, top_k {text.top_k}, top_p {text.top_p}") + \
            (f", repetition_penalty {text.repetition_penalty}" if text.repetition_penalty != 1.0 else "")
        out["max_new_tokens"] = max_new_tokens
    return out


class StepReporter:
    """Model steps -> progress (which also raises Cancelled when the job was cancelled). `fraction` is
    the last one reported, so that other messages in between (audio ready) keep progress monotonic."""

    SPANS = {"text": (0.3, 0.5, "writing the reply"), "units": (0.5, 0.85, "speaking"),
             "blendshapes": (0.85, 0.9, "animating")}

    def __init__(self, progress: Progress):
        self.progress = progress
        self.fraction = 0.3

    def __call__(self, stage, step, total):
        start, end, message = self.SPANS.get(stage, (0.3, 0.9, stage))
        fraction = start + (end - start) * (step / max(total, 1))
        if fraction - self.fraction >= 0.01 or step == 0:
            self.fraction = fraction
            self.progress(fraction, message)
        else:
            self.progress.check()
