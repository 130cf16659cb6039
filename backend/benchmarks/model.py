"""Ex-Omni model: load time, time to first unit, units per second, blendshape time per second of speech, peak memory.

Runs the model's own pipeline (no server) for `say` and `chat` takes and prints, per mode, the median
over `--repeat` takes after one warm-up take, first without audio:
- time to first unit: from the request to the first speech unit (chat: the reply is written first);
- units per second: speech-generator decode steps per second;
- blendshape generator seconds per second of speech (speech = units / 12.5 Hz);
- the LLM's share (say: the teacher-forced pass; chat: reply tokens per second);
- peak memory: this process's peak CPU resident set, and on CUDA torch's peak allocated memory.

With an audio decoder (`--decoder DIR`, or a random one: `--tiny-decoder`, `--released-decoder`), the
same takes run again with audio, streamed (decoded while the units are generated, as the engine does)
and offline (decoded after the last unit), side by side with the same seeds and so the same units:
time to first audio (from the request), the take's total with audio, and the decoder's seconds.

The model is one of:
- `--checkpoint DIR`: a checkpoint folder in the released layout (the real one, or a tiny one);
- nothing: a tiny random checkpoint made in a temporary folder (CPU-friendly; tests use it);
- `--released-size`: a random model with the released model's sizes (see models/exomni/released.py),
  built directly on the device, e.g. `exomni bench model --released-size --device cuda`. It is refused
  when the device lacks the memory for it.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field

LINE = ("Good morning, everyone! Today we are going to talk about how faces move when people speak, "
        "and why timing matters so much.")
PROMPT = "Tell me something nice about the sea."
UNIT_RATE = 12.5
MIB = 2**20


def add_arguments(parser):
    parser.add_argument("--checkpoint", metavar="DIR", default=None,
                        help="Ex-Omni checkpoint folder (default: a tiny random one made in a temporary folder)")
    parser.add_argument("--released-size", action="store_true",
                        help="a random model with the released sizes, built in memory on the device")
    parser.add_argument("--llm", default=None, metavar="SIZE",
                        help="with --released-size: the Qwen3 size of the LLM (0.6B, 1.7B, 4B, 8B, 14B; "
                             "default: the size assumed for the release)")
    parser.add_argument("--device", default="auto", help="cuda, cuda:1, cpu or auto (default: cuda if present)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="weights' dtype (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--repeat", type=int, default=3, help="takes per mode; the median counts (default 3)")
    parser.add_argument("--line", default=LINE, help="the line spoken in say mode")
    parser.add_argument("--prompt", default=PROMPT, help="the prompt answered in chat mode")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="chat reply length limit (default 32)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the released sampling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stream", action="store_true",
                        help="also the streamed take through the exomni engine (say): request -> first audio chunk, "
                             "request -> first face frame, real-time factor, chunk jitter")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    audio = parser.add_mutually_exclusive_group()
    audio.add_argument("--decoder", metavar="DIR", default=None,
                       help="audio decoder folder (glm-4-voice-decoder: flow.pt, hift.pt): also time the audio, "
                            "streamed and offline")
    audio.add_argument("--tiny-decoder", action="store_true",
                       help="the same with a random audio decoder of the test fixtures' widths")
    audio.add_argument("--released-decoder", action="store_true",
                       help="the same with a random audio decoder of the released widths")


# -- measurement -------------------------------------------------------------------------------------
class StepClock:
    """The pipeline's step callback: when each stage's steps started."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.marks: list[tuple[str, int, float]] = []

    def __call__(self, stage: str, step: int, total: int) -> None:
        self.marks.append((stage, step, time.perf_counter()))

    def first(self, stage: str, step: int | None = None) -> float | None:
        for s, i, t in self.marks:
            if s == stage and (step is None or i == step):
                return t
        return None

    def count(self, stage: str) -> int:
        return sum(1 for s, _, _ in self.marks if s == stage)


@dataclass
class TakeTiming:
    units: int
    speech_seconds: float
    first_unit_s: float | None
    units_per_s: float | None
    blendshape_s_per_speech_s: float | None
    llm_s: float
    text_tokens_per_s: float | None
    total_s: float


def measure(clock: StepClock, end: float, units: list[int], mode: str) -> TakeTiming:
    t_units = clock.first("units")
    t_second = clock.first("units", 1)
    t_faces = clock.first("blendshapes")
    spoken = sum(1 for u in units if u > 0)
    speech = spoken / UNIT_RATE
    decode_end = t_faces if t_faces is not None else end
    steps = clock.count("units")
    first_unit = None
    if units and t_units is not None:
        first_unit = (t_second if t_second is not None else decode_end) - clock.t0
    llm_start = clock.first("text") if mode == "chat" else clock.t0
    llm_end = t_units if t_units is not None else end
    text_rate = None
    if mode == "chat" and llm_start is not None and llm_end > llm_start:
        text_rate = clock.count("text") / (llm_end - llm_start)
    return TakeTiming(
        units=len(units), speech_seconds=speech, first_unit_s=first_unit,
        units_per_s=steps / (decode_end - t_units) if t_units is not None and decode_end > t_units else None,
        blendshape_s_per_speech_s=(end - t_faces) / speech if t_faces is not None and speech > 0 else None,
        llm_s=llm_end - clock.t0, text_tokens_per_s=text_rate, total_s=end - clock.t0,
    )


def peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB on Linux


@dataclass
class ModeResult:
    takes: list = field(default_factory=list)
    cuda_peak: int | None = None

    def median(self, name: str):
        values = [getattr(t, name) for t in self.takes if getattr(t, name) is not None]
        return statistics.median(values) if values else None


# -- the model -------------------------------------------------------------------------------------
def _dtype(name: str, device):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def _load(args, device, dtype):
    """(LoadedExomni, description, seconds spent making a tiny checkpoint or None, temporary folder)."""
    import tempfile
    from pathlib import Path

    from backend.models.exomni.loading import load_exomni

    if args.released_size:
        from backend.models.exomni import released

        llm = args.llm or released.RELEASED_LLM
        config = released.released_config(llm)
        need = released.memory_need(config, device, dtype)
        where = "GPU" if device.type == "cuda" else "CPU"
        if not need.fits:
            hint = ("run it on a GPU: --device cuda (bfloat16)" if device.type != "cuda"
                    else "use a GPU with more memory, or a smaller --llm")
            raise MemoryError(f"the released-size model ({need.parameters / 1e9:.2f} B parameters, Qwen3-{llm} LLM) "
                              f"needs about {need.need_bytes / 2**30:.1f} GiB of {where} memory in "
                              f"{str(dtype).replace('torch.', '')} and {need.free_bytes / 2**30:.1f} GiB is free; {hint}")
        tmp = tempfile.TemporaryDirectory(prefix="exomni-bench-")
        loaded = released.random_released(device, dtype, llm, seed=args.seed, tokenizer_folder=tmp.name,
                                          config=config)
        what = (f"random model of the released sizes ({need.parameters / 1e9:.2f} B parameters, Qwen3-{llm} LLM, "
                f"Whisper large-v3 encoder, Qwen3-0.6B speech generator), built in memory")
        return loaded, what, None, tmp
    if args.checkpoint:
        loaded = load_exomni(args.checkpoint, device, dtype)
        return loaded, f"checkpoint {args.checkpoint}", None, None
    from backend.models.exomni.tiny import make_tiny_checkpoint

    tmp = tempfile.TemporaryDirectory(prefix="exomni-bench-")
    t0 = time.perf_counter()
    folder = make_tiny_checkpoint(Path(tmp.name) / "tiny", seed=args.seed)
    made = time.perf_counter() - t0
    loaded = load_exomni(folder, device, dtype)
    return loaded, "tiny random checkpoint (made in a temporary folder)", made, tmp


def _decoder(args, loaded):
    """(AudioDecoder or None, description)."""
    if not (args.decoder or args.tiny_decoder or args.released_decoder):
        return None, ""
    from backend.models import audio_decoder

    if args.decoder:
        return audio_decoder.load_decoder(args.decoder, loaded.device), f"audio decoder {args.decoder}"
    vocab = loaded.config.speech_generator.unit_vocab_size
    if args.tiny_decoder:
        config, what = audio_decoder.tiny_config(max(300, vocab)), "fixture widths"
    else:
        config, what = audio_decoder.released_config(), "released widths"
        if vocab > config.flow.vocab_size:
            raise ValueError(f"the model speaks {vocab} units, the released decoder knows {config.flow.vocab_size}")
    decoder = audio_decoder.random_decoder(config, seed=args.seed, device=loaded.device)
    return decoder, f"random audio decoder of the {what}"


@dataclass
class AudioTiming:
    first_audio_s: float
    total_s: float
    decoder_s: float
    audio_s: float


def _take(pipeline, mode: str, args, sampling, seed: int, decoder=None, stream: bool = False):
    """TakeTiming, or AudioTiming when a decoder is given."""
    import torch

    from backend.engines.exomni import TakeAudio

    text_sampling, unit_sampling, max_new_tokens = sampling
    device = pipeline.loaded.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    generator = torch.Generator().manual_seed(seed)
    clock = StepClock()
    audio = TakeAudio(decoder, seed, stream=stream) if decoder is not None else None
    on_unit = audio.push if audio is not None and audio.streaming else None
    if mode == "say":
        performance = pipeline.say(args.line, unit_sampling, generator, clock, on_unit=on_unit)
    else:
        performance = pipeline.chat(args.prompt, text_sampling, unit_sampling, max_new_tokens, generator,
                                    on_step=clock, on_unit=on_unit)
    if audio is None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return measure(clock, time.perf_counter(), performance.units, mode)
    samples, sample_rate = audio.finish(performance.units)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    end = time.perf_counter()
    # the first chunk's numpy copy waited for the device, so its time is when it existed
    first = audio.first_audio_at if samples.size and audio.first_audio_at is not None else end
    return AudioTiming(first - clock.t0, end - clock.t0, audio.decode_seconds, samples.size / sample_rate)


# -- the report -------------------------------------------------------------------------------------
def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _row(label: str, say, chat, fmt: str) -> str:
    return f"{label:<44s}{_cell(say, fmt):>12s}{_cell(chat, fmt):>12s}"


def _print_audio(results: dict, what: str) -> None:
    print()
    print(f"audio: {what}; streamed = decoded while the units are generated, offline = after the last unit")
    heads = [f"{mode} {'stream' if stream else 'offline'}" for mode in ("say", "chat") for stream in (True, False)]
    print(f"{'metric':<44s}" + "".join(f"{h:>14s}" for h in heads))
    rows = [("time to first audio (s)", "first_audio_s", ".4f"), ("take total with audio (s)", "total_s", ".4f"),
            ("decoder time (s)", "decoder_s", ".4f"), ("audio per take (s)", "audio_s", ".2f")]
    for label, attr, fmt in rows:
        cells = [results[mode, stream].median(attr) for mode in ("say", "chat") for stream in (True, False)]
        print(f"{label:<44s}" + "".join(f"{_cell(c, fmt):>14s}" for c in cells))
    ratios = []
    for mode in ("say", "chat"):
        streamed, offline = results[mode, True].median("first_audio_s"), results[mode, False].median("first_audio_s")
        ratios.append(offline / streamed if streamed and offline else None)
    # under each mode's "stream" column
    print(f"{'first audio, offline / streamed (x)':<44s}{_cell(ratios[0], '.2f'):>14s}{'':>14s}"
          f"{_cell(ratios[1], '.2f'):>14s}")


def stream_figures(engine, text: str, seed: int, repeat: int) -> dict:
    """Medians over `repeat` say takes of the engine's incremental output (TakePieces): seconds from the
    request to the first audio chunk and to the first face frame, the real-time factor (take time /
    audio length) and the chunk jitter (standard deviation of the time between audio chunks, s)."""
    import statistics
    import time as clock

    from backend.engines.base import Progress, TakeRequest

    rows = {"first_audio_s": [], "first_face_s": [], "rtf": [], "jitter_s": [], "audio_chunks": [], "face_chunks": []}
    for i in range(repeat):
        pieces = []
        t0 = clock.perf_counter()
        take = engine.make_take(TakeRequest(engine="exomni", mode="say", text=text, seed=seed + i), Progress(),
                                pieces.append)
        total = clock.perf_counter() - t0
        audio = [p.elapsed for p in pieces if p.audio.size]
        face = [p.elapsed for p in pieces if p.frames.shape[0]]
        gaps = [b - a for a, b in zip(audio, audio[1:])]
        rows["first_audio_s"].append(audio[0] if audio else float("nan"))
        rows["first_face_s"].append(face[0] if face else float("nan"))
        rows["rtf"].append(total / take.duration if take.duration else float("nan"))
        rows["jitter_s"].append(statistics.pstdev(gaps) if len(gaps) > 1 else 0.0)
        rows["audio_chunks"].append(len(audio))
        rows["face_chunks"].append(len(face))
    return {k: statistics.median(v) for k, v in rows.items()}


def _print_stream(args, loaded) -> None:
    import tempfile
    from pathlib import Path

    from backend.engines.exomni import ExomniEngine
    from backend.models import audio_decoder

    with tempfile.TemporaryDirectory(prefix="exomni-bench-stream-") as tmp:
        decoder = args.decoder or audio_decoder.random_decoder(audio_decoder.tiny_config(), seed=args.seed).save(
            Path(tmp) / "decoder")
        folder = Path(loaded.info.folder)
        if not (folder / "config.json").is_file():  # the temporary tiny checkpoint is gone by now: the same again
            from backend.models.exomni.tiny import make_tiny_checkpoint

            folder = make_tiny_checkpoint(Path(tmp) / "tiny", seed=args.seed)
        engine = ExomniEngine(checkpoint=str(folder), decoder=str(decoder), device=str(loaded.device))
        engine.load()
        figures = stream_figures(engine, args.line, args.seed, args.repeat)
    print()
    print(f"streamed take (exomni engine, say; audio decoder {'given' if args.decoder else 'random, fixture widths'})")
    for label, key, fmt in (("request -> first audio chunk (s)", "first_audio_s", ".4f"),
                            ("request -> first face frame (s)", "first_face_s", ".4f"),
                            ("real-time factor (take s / audio s)", "rtf", ".3f"),
                            ("audio chunk jitter (s, std of gaps)", "jitter_s", ".4f"),
                            ("audio chunks per take", "audio_chunks", ".0f"),
                            ("face chunks per take", "face_chunks", ".0f")):
        print(f"{label:<44s}{format(figures[key], fmt):>12s}")


def run(args) -> int:
    try:
        import torch
    except ImportError:
        print("this benchmark needs the model's libraries: pip install 'exomni-blender[model]'")
        return 1
    from backend.commands._common import fail
    from backend.engines.exomni import sampling_from_options
    from backend.engines.base import EngineError
    from backend.models.exomni.loading import CheckpointError, pick_device
    from backend.models.exomni.pipeline import ExomniPipeline

    if args.checkpoint and args.released_size:
        return fail("give either --checkpoint DIR or --released-size, not both")
    if args.llm and not args.released_size:
        return fail("--llm sets the LLM size of the --released-size model; add --released-size")
    if args.repeat < 1:
        return fail("--repeat must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
    except CheckpointError as exc:
        return fail(str(exc))
    except (RuntimeError, ValueError) as exc:
        return fail(f"device {args.device!r} cannot be used ({exc}); use cuda, cpu or auto")
    dtype = _dtype(args.dtype, device)
    try:
        sampling = sampling_from_options({"greedy": args.greedy, "max_new_tokens": args.max_new_tokens})
    except EngineError as exc:
        return fail(str(exc))

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        loaded, what, made_seconds, tmp = _load(args, device, dtype)
    except (CheckpointError, MemoryError, ValueError) as exc:
        return fail(str(exc))
    load_seconds = loaded.load_seconds
    rss_after_load = peak_rss_bytes()
    cuda_after_load = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    pipeline = ExomniPipeline(loaded)
    try:
        decoder, decoder_what = _decoder(args, loaded)
    except (OSError, RuntimeError, ValueError) as exc:
        if tmp is not None:
            tmp.cleanup()
        return fail(f"the audio decoder could not be loaded: {exc}")

    results, audio_results = {}, {}
    try:
        _take(pipeline, "say", args, sampling, args.seed)  # warm-up: first-call allocations, kernel choice
        for mode in ("say", "chat"):
            result = ModeResult()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for i in range(args.repeat):
                result.takes.append(_take(pipeline, mode, args, sampling, args.seed + i))
            if device.type == "cuda":
                result.cuda_peak = torch.cuda.max_memory_allocated(device)
            results[mode] = result
        if decoder is not None:
            for stream in (True, False):  # warm-up of the decoder's both ways
                _take(pipeline, "say", args, sampling, args.seed, decoder, stream)
            for mode in ("say", "chat"):
                for stream in (True, False):
                    audio_results[mode, stream] = ModeResult(
                        [_take(pipeline, mode, args, sampling, args.seed + i, decoder, stream)
                         for i in range(args.repeat)])
    except ValueError as exc:
        return fail(f"the model could not perform the take: {exc}")
    finally:
        if tmp is not None:
            tmp.cleanup()

    threads = f", {torch.get_num_threads()} torch threads" if device.type == "cpu" else ""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"Ex-Omni model benchmark: {what}")
    print(f"device {device} ({name}), {str(dtype).replace('torch.', '')}{threads}; median of {args.repeat} "
          f"take(s) per mode after one warm-up take; {'greedy' if args.greedy else 'sampled'} decoding; "
          f"wall-clock seconds")
    if made_seconds is not None:
        print(f"{'making the tiny checkpoint (s)':<44s}{made_seconds:12.3f}")
    label = "build in memory (s)" if args.released_size else "load (s)"
    print(f"{label:<44s}{load_seconds:12.3f}")
    print(f"{'peak CPU RSS after load (MiB)':<44s}{rss_after_load / MIB:12.1f}")
    if cuda_after_load is not None:
        print(f"{'peak CUDA memory after load (MiB)':<44s}{cuda_after_load / MIB:12.1f}")
    print()
    say, chat = results["say"], results["chat"]
    print(f"{'metric':<44s}{'say':>12s}{'chat':>12s}")
    rows = [
        ("time to first unit (s)", "first_unit_s", ".4f"),
        ("units per second", "units_per_s", ".1f"),
        ("blendshape s per s of speech", "blendshape_s_per_speech_s", ".5f"),
        ("LLM s (say: one pass; chat: the reply)", "llm_s", ".4f"),
        ("reply tokens per second", "text_tokens_per_s", ".1f"),
        ("units per take", "units", ".0f"),
        ("speech per take (s)", "speech_seconds", ".2f"),
        ("take total (s)", "total_s", ".4f"),
    ]
    for label, attr, fmt in rows:
        print(_row(label, say.median(attr), chat.median(attr), fmt))
    print(f"{'peak CPU RSS (MiB)':<44s}{peak_rss_bytes() / MIB:12.1f}")
    if device.type == "cuda":
        print(_row("peak CUDA memory (MiB)", say.cuda_peak / MIB, chat.cuda_peak / MIB, ".1f"))
    if decoder is not None:
        _print_audio(audio_results, decoder_what)
    if getattr(args, "stream", False):
        if args.released_size:
            print("\n--stream needs a checkpoint folder (the tiny one or --checkpoint DIR); skipped for --released-size")
        else:
            _print_stream(args, loaded)
    missing = [mode for mode, r in results.items() if r.median("first_unit_s") is None]
    if missing:
        print(f"no speech units came out in {' and '.join(missing)}; the numbers above are incomplete")
        return 1
    return 0
