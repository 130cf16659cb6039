"""The embedded engine's entry point: one take per process, run by the Blender add-on with Blender's own
Python, so nothing of the backend is ever imported into Blender's process.

    python -m backend.embedded REQUEST.json OUT_DIR

The extension ships this module with the phonetic engine (`engine/` in the zip) and the engine's
dependencies as wheels. The request is the POST /v1/takes body; it is checked by the one request
validator. The process speaks one JSON object per line on stdout:

    {"progress": 0.5, "message": "animating the face"}     while it works
    {"done": "OUT_DIR", "frames": N, "modules": {...}}     the take is saved in OUT_DIR
    {"error": "...", "code": "bad_request"}                a refusal written for a person (exit 1)

Anything else is a bug: its traceback goes to stderr (exit 2). Cancelling is ending the process; the
take is written to a sibling folder and renamed into OUT_DIR only when whole.
"""

from __future__ import annotations

import json
import shutil
import sys
import traceback
from pathlib import Path

from exomni_blender.core.errors import ExOmniError
from exomni_blender.core.request import EngineSpec, validate

# The modes the embedded engine serves. Lip sync reads WAV, FLAC and OGG with the bundled soundfile
# and resamples with the bundled soxr; other formats need the ffmpeg program on the PATH.
MODES = ("say", "lipsync")
# Where the engine, the core and eSpeak NG were loaded from (the add-on's tests check they are its own).
REPORTED_MODULES = ("backend", "exomni_blender", "espeakng_loader")


def _say(**message) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def make(request_path: Path, out_dir: Path) -> dict:
    from .engines.base import Progress
    from .engines.phonetic.engine import PhoneticEngine

    engine = PhoneticEngine()
    available = engine.availability()
    if not available.available:
        raise ExOmniError(f"The embedded engine cannot run: {available.reason}")
    try:
        fields = json.loads(request_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExOmniError(f"The take request {request_path} could not be read ({exc}).") from None
    if not isinstance(fields, dict):
        raise ExOmniError(f"The take request {request_path} is not a JSON object.")
    audio_path = fields.pop("audio_path", None)  # lip sync: the recording on this disk (not a request field)
    if audio_path is not None and not (isinstance(audio_path, str) and Path(audio_path).is_file()):
        raise ExOmniError(f"The recording {audio_path!r} of the take request is not a file.")
    spec = EngineSpec(name=engine.name, modes=MODES, voices=engine.voices())
    request = validate(fields, has_audio=audio_path is not None, engines={engine.name: spec})
    request.audio_path = audio_path
    take = engine.make_take(request, Progress(lambda fraction, message: _say(progress=fraction, message=message)))
    partial = out_dir.with_name(f".{out_dir.name}.part")
    if partial.exists():
        shutil.rmtree(partial)
    take.save(partial)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.replace(out_dir)
    modules = {name: getattr(sys.modules.get(name), "__file__", None) for name in REPORTED_MODULES}
    return {"done": str(out_dir), "frames": int(take.frames), "modules": modules}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        _say(error="usage: python -m backend.embedded REQUEST.json OUT_DIR", code="bad_request")
        return 1
    try:
        _say(**make(Path(argv[0]), Path(argv[1])))
    except ExOmniError as exc:
        _say(error=str(exc), code=getattr(exc, "code", "bad_request"))
        return 1
    except Exception as exc:  # a bug: the add-on shows it as one and points at the console
        traceback.print_exc()
        _say(error=f"{type(exc).__name__}: {exc}", code="internal", bug=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
