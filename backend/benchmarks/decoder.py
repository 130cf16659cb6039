"""Audio decoder (units -> 22.05 kHz audio): real-time factor offline and streamed, latency to the first chunk.

Random weights: the fixture-size model by default (CPU), or the released widths with --released-size
(meant for `--device cuda`), or a real decoder folder with --decoder DIR. The real-time factor is compute
time / audio duration (below 1: faster than real time). Streaming is timed with every unit available at
once, so the first-chunk latency is the decoder's own share.
"""

from __future__ import annotations

import statistics
import time


def add_arguments(parser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--released-size", action="store_true",
                        help="the released glm-4-voice-decoder widths (random weights) instead of the fixture size")
    parser.add_argument("--decoder", metavar="DIR", help="time a real glm-4-voice-decoder folder instead")
    parser.add_argument("--units", type=int, default=250, help="utterance length in units, 12.5 per second (250)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the median is shown")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args) -> int:
    import numpy as np
    import torch

    from backend.models.audio_decoder import load_decoder, random_decoder, released_config, tiny_config
    from backend.models.audio_decoder.streaming import StreamSettings, resolve

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.units < 1:
        print("--units must be at least 1")
        return 2
    if args.decoder:
        decoder = load_decoder(args.decoder, device=args.device)
        label = f"decoder folder {args.decoder}"
    else:
        config = released_config() if args.released_size else tiny_config()
        decoder = random_decoder(config, seed=args.seed, device=args.device)
        label = "released size, random weights" if args.released_size else "fixture size, random weights"
    n_params = sum(p.numel() for m in (decoder.flow, decoder.hift) for p in m.parameters())
    rng = np.random.default_rng(args.seed)
    units = rng.integers(0, decoder.config.flow.vocab_size, args.units).tolist()
    seconds = decoder.audio_samples(len(units)) / decoder.sample_rate
    settings = StreamSettings()
    s = resolve(decoder, settings)
    device = decoder.device
    print(f"audio decoder: {label}, {n_params / 1e6:.1f} M parameters, device {device}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"utterance: {len(units)} units = {decoder.mel_frames(len(units))} mel frames = {seconds:.2f} s of audio")
    print(f"streaming: first chunk {s.first_chunk_units} units, then {s.chunk_units}, history {s.history_units} "
          f"units, mel overlap {s.mel_overlap_frames} frames, vocoder context {s.vocoder_context_frames} frames")

    decoder.decode(units[: min(len(units), 30)], seed=args.seed)  # warm-up (allocations, kernels)

    flow_t, voc_t, offline_t = [], [], []
    for _ in range(args.repeats):
        _sync(device)
        t0 = time.perf_counter()
        mel = decoder.units_to_mel(units, seed=args.seed)
        _sync(device)
        t1 = time.perf_counter()
        audio = decoder.mel_to_audio(mel, seed=args.seed).cpu().numpy()
        t2 = time.perf_counter()
        flow_t.append(t1 - t0)
        voc_t.append(t2 - t1)
        offline_t.append(t2 - t0)
    assert len(audio) == decoder.audio_samples(len(units))

    first_t, stream_t, n_chunks = [], [], 0
    for _ in range(args.repeats):
        _sync(device)
        t0 = time.perf_counter()
        first = None
        chunks = []
        for chunk in decoder.stream([units], seed=args.seed, settings=settings):
            if first is None:
                first = time.perf_counter() - t0
            chunks.append(chunk)
        stream_t.append(time.perf_counter() - t0)
        first_t.append(first)
        n_chunks = len(chunks)
    streamed = np.concatenate(chunks)
    first_audio = len(chunks[0]) / decoder.sample_rate

    med = statistics.median
    print(f"offline   : {med(offline_t) * 1e3:9.1f} ms  RTF {med(offline_t) / seconds:.4f}  "
          f"(flow {med(flow_t) * 1e3:.1f} ms, vocoder {med(voc_t) * 1e3:.1f} ms)")
    print(f"streaming : {med(stream_t) * 1e3:9.1f} ms  RTF {med(stream_t) / seconds:.4f}  "
          f"({n_chunks} chunks, {med(stream_t) / med(offline_t):.2f}x offline)")
    print(f"first chunk latency: {med(first_t) * 1e3:.1f} ms for {first_audio:.2f} s of audio "
          f"(offline needs {med(offline_t) * 1e3:.1f} ms before any audio)")
    same = len(streamed) == len(audio)
    print(f"streamed length equals offline length: {same}")
    return 0 if same else 1
