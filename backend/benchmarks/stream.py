"""stream: the take stream through a real server on 127.0.0.1, per engine: first audio, first face frame, RTF, jitter.

For each engine (phonetic; exomni on a tiny random checkpoint from `make_tiny_checkpoint` with a random
audio decoder of the fixture widths, or the folders given) a server starts on a free loopback port; each
take is requested and its stream (GET /v1/jobs/{id}/stream) read from the moment of the request. Printed,
as medians over the takes: request -> first audio chunk, request -> first face frame (as the client
receives them), the real-time factor (request -> end of stream, over the take's audio length) and
the chunk jitter (standard deviation of the gaps between audio chunks as received). CI-sized by default.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

LINE = "Streaming takes let the head speak while the rest of the line is still being made."


def add_arguments(parser):
    parser.add_argument("--takes", type=int, default=3, help="takes per engine (default 3)")
    parser.add_argument("--engines", default="phonetic,exomni", help="comma-separated (default phonetic,exomni)")
    parser.add_argument("--checkpoint", default=None, help="exomni checkpoint folder (default: a tiny random one)")
    parser.add_argument("--decoder", default=None, help="audio decoder folder (default: a random tiny one)")
    parser.add_argument("--device", default="cpu", help="exomni device (default cpu)")
    parser.add_argument("--line", default=LINE)


def _events(response):
    """(name, data, arrival time) of each server-sent event."""
    name, lines = "", []
    for raw in response.iter_lines(chunk_size=None):
        line = raw.decode("utf-8")
        if not line:
            if name and lines:
                yield name, json.loads("\n".join(lines)), time.perf_counter()
            name, lines = "", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            lines.append(line[5:].lstrip())


def measure(url: str, body: dict) -> dict:
    import requests

    from exomni_blender.core import contract as C

    headers = {C.CLIENT_HEADER: "exomni-bench"}
    t0 = time.perf_counter()
    job = requests.post(url + C.TAKES, json=body, headers=headers, timeout=30)
    job.raise_for_status()
    first_audio = first_face = None
    audio_at, samples, rate = [], 0, 1
    with requests.get(url + C.job_stream_path(job.json()["job_id"]), headers=headers, stream=True,
                      timeout=(3, 600)) as response:
        response.raise_for_status()
        for name, data, at in _events(response):
            if name == C.STREAM_AUDIO:
                first_audio = first_audio if first_audio is not None else at - t0
                audio_at.append(at)
                samples, rate = data["start"] + data["count"], data["sample_rate"]
            elif name == C.STREAM_FRAMES and first_face is None:
                first_face = at - t0
            elif name == C.STREAM_END:
                if data["state"] != C.DONE:
                    raise RuntimeError(f"the take failed: {data.get('error')}")
                end = at - t0
                break
    gaps = [b - a for a, b in zip(audio_at, audio_at[1:])]
    return {"first_audio_s": first_audio if first_audio is not None else float("nan"),
            "first_face_s": first_face if first_face is not None else float("nan"),
            "rtf": end / (samples / rate) if samples else float("nan"),
            "jitter_s": statistics.pstdev(gaps) if len(gaps) > 1 else 0.0,
            "audio_chunks": len(audio_at), "audio_s": samples / rate}


def _wait_ready(url: str, engine: str, timeout: float = 300.0) -> None:
    import requests

    from exomni_blender.core import contract as C

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = {e["name"]: e for e in requests.get(url + C.ENGINES, timeout=30).json()["engines"]}[engine]
        if info.get("available") and info.get("state", "ready") == "ready":
            return
        if info.get("state") == "failed":
            raise RuntimeError(info.get("reason"))
        time.sleep(0.2)
    raise RuntimeError(f"engine {engine} did not get ready")


def run(args) -> int:
    from backend.server.launcher import LocalServer

    rows = {}
    with tempfile.TemporaryDirectory(prefix="exomni-bench-stream-") as tmp:
        tmp = Path(tmp)
        for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
            extra = []
            if engine == "exomni":
                try:
                    import torch  # noqa: F401
                except ImportError:
                    print("exomni: skipped (needs the model's libraries: pip install 'exomni-blender[model]')")
                    continue
                checkpoint, decoder = args.checkpoint, args.decoder
                if checkpoint is None:
                    from backend.models.exomni.tiny import make_tiny_checkpoint

                    checkpoint = make_tiny_checkpoint(tmp / "tiny")
                if decoder is None:
                    from backend.models.audio_decoder import random_decoder, tiny_config

                    decoder = random_decoder(tiny_config(), seed=0).save(tmp / "decoder")
                extra = ["--exomni-checkpoint", str(checkpoint), "--exomni-decoder", str(decoder),
                         "--device", args.device]
            with LocalServer(tmp / f"store-{engine}", extra_args=extra, log_path=tmp / f"{engine}.log",
                             startup_timeout=300) as server:
                _wait_ready(server.url, engine)
                body = {"engine": engine, "mode": "say", "text": args.line, "fps": 30}
                measure(server.url, {**body, "seed": 999})  # warm-up
                takes = [measure(server.url, {**body, "seed": i}) for i in range(args.takes)]
            rows[engine] = {k: statistics.median(t[k] for t in takes) for k in takes[0]}
    if not rows:
        return 1
    names = list(rows)
    print(f"take stream through the real server on 127.0.0.1 (medians of {args.takes} takes; exomni: "
          f"{'given' if args.checkpoint else 'tiny random'} checkpoint, {args.device})")
    print(f"{'':<42s}" + "".join(f"{n:>12s}" for n in names))
    for label, key, fmt in (("request -> first audio chunk (s)", "first_audio_s", ".3f"),
                            ("request -> first face frame (s)", "first_face_s", ".3f"),
                            ("real-time factor (stream s / audio s)", "rtf", ".3f"),
                            ("audio chunk jitter (s, std of gaps)", "jitter_s", ".4f"),
                            ("audio chunks per take", "audio_chunks", ".0f"),
                            ("audio per take (s)", "audio_s", ".2f")):
        print(f"{label:<42s}" + "".join(f"{format(rows[n][key], fmt):>12s}" for n in names))
    return 0
