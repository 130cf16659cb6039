"""Render on a farm: a Flamenco Manager job for the dialogue scene.

The job is a `SubmittedJob` of Flamenco's job-submission API (POST /api/v3/jobs) of the stock
"simple-blender-render" type. That type renders image frames (it refuses video formats) and then
makes a silent preview video, so the dialogue's mixed audio is written beside the .blend and named
in the job's metadata ("exomni.audio") for muxing with the frames afterwards.

The workers must see the .blend, its audio and the output folder at the paths given here (shared
storage, or Flamenco's two-way variables, which the Manager applies to these paths on submission).
"""

from __future__ import annotations

import getpass
import json
import platform
import re
from pathlib import Path, PurePosixPath
from exomni_blender.core.errors import ExOmniError

JOB_TYPE = "simple-blender-render"
SUBMIT_PATH = "/api/v3/jobs"
DEFAULT_PRIORITY = 50
_UNSAFE = re.compile(r'[\\/:*?"<>|]+')  # characters no path component may hold on some worker


class FlamencoError(ExOmniError, RuntimeError):
    """The Manager refused the job or could not be reached; the message says what to do."""


def submitter_platform() -> str:
    # Flamenco wants Go's GOOS names: linux, windows, darwin, freebsd ...
    return platform.system().lower() or "linux"


def _as_posix(path) -> str:
    return Path(path).resolve().as_posix() if not isinstance(path, PurePosixPath) else str(path)


def _job_name(text: str) -> str:
    name = re.sub(r"\s+", " ", text).strip()
    return name[:64] or "dialogue"


def build_job(*, name: str, blendfile, frame_start: int, frame_end: int, fps: float, output_root,
              chunk_size: int = 10, priority: int = DEFAULT_PRIORITY, image_format: str = "PNG",
              metadata: dict | None = None) -> dict:
    """A SubmittedJob for Flamenco's simple-blender-render job type."""
    if frame_end < frame_start:
        raise ValueError(f"empty frame range {frame_start}-{frame_end}")
    if not 0 <= priority <= 100:
        raise ValueError(f"Flamenco priorities go from 0 to 100, got {priority}")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1 frame, got {chunk_size}")
    extension = {"PNG": ".png", "JPEG": ".jpg", "OPEN_EXR": ".exr", "TIFF": ".tif"}.get(image_format.upper())
    if extension is None:
        raise ValueError(f"image format {image_format!r} is not one Flamenco renders to frames; use PNG or JPEG")
    job_name = _job_name(name)
    root = _as_posix(output_root).rstrip("/")
    meta = {"user.name": getpass.getuser(), "exomni.kind": "dialogue"}
    meta.update({k: str(v) for k, v in (metadata or {}).items() if v is not None})
    return {
        "name": job_name,
        "type": JOB_TYPE,
        "priority": int(priority),
        "submitter_platform": submitter_platform(),
        "settings": {
            "blendfile": _as_posix(blendfile),
            "frames": f"{int(frame_start)}-{int(frame_end)}",
            "chunk_size": int(chunk_size),
            "render_output_root": root,
            "add_path_components": 0,
            # The form Flamenco's own add-on submits: root/job name/{timestamp}/######
            "render_output_path": f"{root}/{_UNSAFE.sub('_', job_name)}/{{timestamp}}/######",
            "fps": float(fps),
            "format": image_format.upper(),
            "image_file_extension": extension,
            "has_previews": False,
        },
        "metadata": meta,
    }


def write_job(job: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def submit_job(job: dict, manager_url: str, timeout: float = 30.0) -> dict:
    """POST the job to a Flamenco Manager; returns the Manager's Job (with its id)."""
    import requests

    url = manager_url.rstrip("/") + SUBMIT_PATH
    try:
        r = requests.post(url, json=job, timeout=timeout)
    except requests.RequestException as exc:
        raise FlamencoError(f"cannot reach the Flamenco Manager at {manager_url} ({exc.__class__.__name__}); "
                            "check the URL (e.g. http://manager:8080) or write the job with --flamenco-job FILE "
                            "and submit it later") from None
    if r.status_code == 200:
        try:
            return r.json()
        except ValueError:
            raise FlamencoError(f"{url} answered 200 but not with JSON; is {manager_url} a Flamenco Manager?") from None
    try:
        message = r.json().get("message", r.text)
    except ValueError:
        message = r.text[:300]
    hint = " (the Manager has no job type simple-blender-render?)" if r.status_code in (400, 412, 422) else ""
    raise FlamencoError(f"the Flamenco Manager refused the job: HTTP {r.status_code}: {message}{hint}")
