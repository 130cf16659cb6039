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
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import threading
import time

import numpy as np

from exomni_blender.core.arkit import ARKIT_52, MOUTH_CHANNELS
from exomni_blender.core.contract import E_BAD_AUDIO, E_BAD_REQUEST, E_EMPTY_TEXT, E_ENGINE_UNAVAILABLE, E_UNKNOWN_MODE
from exomni_blender.core.take import Take, resample_curves

from .base import Availability, Cancelled, Engine, EngineError, Progress, TakeRequest

CHECKPOINT_ENV, DECODER_ENV, DEVICE_ENV = "EXOMNI_CHECKPOINT", "EXOMNI_DECODER", "EXOMNI_DEVICE"
MODEL_FPS = 30.0
UNIT_RATE = 12.5
MAX_NEW_TOKENS_LIMIT = 2048
log = logging.getLogger("exomni.engine")


class ExomniEngine(Engine):
    name = "exomni"
    modes = ("say", "chat")
    description = ("Ex-Omni: an LLM that speaks and animates a face together (speech units at 12.5 Hz, "
                   "ARKit-52 at 30 fps); needs the Tencent/Ex-Omni checkpoint")

    def __init__(self, checkpoint=None, decoder=None, device=None, speech_encoder=None, speech_generator=None):
        self.checkpoint = checkpoint or os.environ.get(CHECKPOINT_ENV) or None
        self.decoder_folder = decoder or os.environ.get(DECODER_ENV) or None
        self.device = device or os.environ.get(DEVICE_ENV) or "auto"
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
                          f"was not given; set {DECODER_ENV} or --exomni-decoder to hear the speech")
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
    def make_take(self, request: TakeRequest, progress: Progress) -> Take:
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
        text_sampling, unit_sampling, max_new_tokens = sampling_from_options(request.options)
        stream_audio = stream_audio_option(request.options)
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
        take_audio = None
        if self._decoder is not None:
            take_audio = TakeAudio(self._decoder, int(request.seed), stream=stream_audio,
                                   on_audio=lambda seconds: progress(on_step.fraction,
                                                                     f"speaking; {seconds:.1f} s of audio ready"))
        on_unit = take_audio.push if take_audio is not None and take_audio.streaming else None
        with self._run_lock:
            progress.check()
            try:
                if request.mode == "say":
                    performance = pipeline.say(text, unit_sampling, generator, on_step, on_unit=on_unit)
                else:
                    performance = pipeline.chat(text, text_sampling, unit_sampling, max_new_tokens, generator,
                                                speech_path=request.audio_path or None, on_step=on_step,
                                                on_unit=on_unit)
            except ValueError as exc:  # the text or the recording cannot be performed
                code = E_BAD_AUDIO if isinstance(exc, SpeechInputError) else E_BAD_REQUEST
                raise EngineError(str(exc), code) from exc
        if performance.blendshapes.shape[0] == 0:
            what = "line" if request.mode == "say" else "reply"
            raise EngineError(f"the model produced no speech for this {what}"
                              f"{' (' + repr(performance.text) + ')' if request.mode == 'chat' else ''}; "
                              f"try another seed or a longer text", E_BAD_REQUEST, 422)

        weights30 = np.clip(performance.blendshapes, 0.0, 1.0).astype(np.float32)
        weights = weights30 if abs(request.fps - MODEL_FPS) < 1e-9 else resample_curves(weights30, MODEL_FPS,
                                                                                          request.fps)
        if request.mouth_only:
            keep = np.array([name in MOUTH_CHANNELS for name in ARKIT_52])
            weights = weights * keep[None, :]

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
        timings = {k: round(v, 4) for k, v in performance.timings.items()}
        if take_audio is not None:
            timings["audio"] = round(take_audio.decode_seconds, 4)
            if take_audio.first_audio_at is not None and audio.size:
                timings["first_audio"] = round(take_audio.first_audio_at - t_start, 4)
        if load_seconds:
            timings["load"] = round(load_seconds, 4)
        timings["total"] = round(time.perf_counter() - t_start, 4)

        loaded = pipeline.loaded
        meta = {
            "seed": int(request.seed), "model_fps": MODEL_FPS, "model_frames": int(weights30.shape[0]),
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
        ignored = [k for k, v in (("voice", request.voice), ("rate", request.rate != 1.0),
                                  ("pitch", request.pitch != 1.0)) if v]
        if ignored:
            meta["ignored"] = f"the exomni engine speaks with the model's own voice; ignored: {', '.join(ignored)}"
        if performance.prompt_dropped:
            meta["prompt_truncated"] = (f"the prompt was cut by {performance.prompt_dropped} positions to the "
                                        f"model's tokenizer_model_max_length ({pipeline.max_prompt_positions})")
        if note:
            meta["note"] = note
        progress(1.0, "done")
        return Take(fps=float(request.fps), weights=weights, audio=audio, sample_rate=int(sample_rate),
                    text=performance.text, engine=self.name, mode=request.mode, units=list(performance.units),
                    unit_rate=UNIT_RATE, timings=timings, meta=meta)


class TakeAudio:
    """A take's audio from its units, streamed or offline.

    Streamed: `push` is the speech generator's on_unit callback; each unit goes to the decoder's
    streaming state, and audio comes out as soon as the decoder's first chunk of units exists, then one
    chunk per further chunk of units (see models/audio_decoder/streaming.py), in the generator's own
    thread between its steps. `finish` flushes the rest. The result has the offline length and matches
    offline decoding away from the seams. Offline: `finish` decodes every unit at once. A stream that
    fails part-way falls back to offline decoding in `finish`, so a decoder error never stops the units.
    """

    def __init__(self, decoder, seed: int, stream: bool = True, on_audio=None):
        self.decoder = decoder
        self.seed = int(seed)
        self.on_audio = on_audio  # called with the seconds of audio ready after each streamed chunk
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


def stream_audio_option(options: dict) -> bool:
    """`stream_audio` (default true): decode audio while the units are generated, or offline after them."""
    value = (options or {}).get("stream_audio", True)
    if value is None:
        return True
    if not isinstance(value, bool):
        raise EngineError(f"option stream_audio must be true or false, got {value!r}", E_BAD_REQUEST)
    return value


def sampling_from_options(options: dict, generation: dict | None = None):
    """(TextSampling, UnitSampling, max_new_tokens) from a request's options; EngineError on bad values.

    What the options leave out is the released demo's: temperature 0.2, and top-k, top-p and the
    repetition penalty of the checkpoint's generation_config.json (`generation`)."""
    from ..models.exomni.sampling import TextSampling, UnitSampling

    options = options or {}

    def number(key, kind, default, low, high):
        value = options.get(key, default)
        if value is None:
            return default
        try:
            if isinstance(value, bool):
                raise TypeError
            value = kind(value)
        except (TypeError, ValueError):
            raise EngineError(f"option {key} must be a number, got {value!r}", E_BAD_REQUEST) from None
        if not low <= value <= high:
            raise EngineError(f"option {key} must be between {low} and {high}, got {value}", E_BAD_REQUEST)
        return value

    greedy = options.get("greedy", False)
    if not isinstance(greedy, bool):
        raise EngineError(f"option greedy must be true or false, got {greedy!r}", E_BAD_REQUEST)
    temperature = number("temperature", float, 0.2, 0.0, 10.0)
    top_p = number("top_p", float, None, 0.0, 1.0)
    if top_p is not None and top_p <= 0.0:
        raise EngineError("option top_p must be above 0 (1 turns it off)", E_BAD_REQUEST)
    top_k = number("top_k", int, None, 0, 1_000_000)
    penalty = number("repetition_penalty", float, None, 0.01, 10.0)
    max_new_tokens = number("max_new_tokens", int, 128, 1, MAX_NEW_TOKENS_LIMIT)
    text = TextSampling.from_generation_config(generation, greedy=greedy, temperature=temperature, top_k=top_k,
                                               top_p=top_p, repetition_penalty=penalty)
    return text, UnitSampling(greedy=greedy), max_new_tokens


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
