"""The API's request and response shapes, for OpenAPI (/openapi.json, and /docs when asked for).

They describe; they do not validate requests: the one take-request validator is
`exomni_blender.core.request.validate`, whose limits the descriptions below are built from.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field

from exomni_blender.core import contract as C
from exomni_blender.core import request as R


class TakeRequestBody(BaseModel):
    """POST /v1/takes as JSON (a recording goes as multipart, or base64 in `audio_base64`)."""

    engine: str = Field(C.DEFAULT_ENGINE, description="an engine from GET /v1/engines")
    mode: Literal["say", "chat", "lipsync"] = "say"
    text: str = Field("", max_length=R.TRANSCRIPT_LIMIT, examples=["Bob bought a pink balloon."],
                      description=f"the line (at most {R.TEXT_LIMIT} characters), a chat prompt, or a lip-sync transcript")
    fps: float = Field(R.DEFAULT_FPS, ge=R.FPS_RANGE[0], le=R.FPS_RANGE[1])
    voice: Optional[str] = Field(None, max_length=R.VOICE_MAX_CHARS, examples=["en-us"])
    seed: int = Field(0, ge=R.SEED_RANGE[0], le=R.SEED_RANGE[1])
    rate: float = Field(1.0, ge=R.RATE_RANGE[0], le=R.RATE_RANGE[1])
    pitch: float = Field(1.0, ge=R.PITCH_RANGE[0], le=R.PITCH_RANGE[1])
    mouth_only: bool = Field(False, description="only the mouth: no blinks, brows, gaze, mood or head motion")
    mood: Literal[R.MOOD_NAMES] = Field("neutral", description="the face's (and where the engine can, the "
                                                                "voice's) mood: " + ", ".join(R.MOOD_NAMES))
    intensity: float = Field(1.0, ge=R.INTENSITY_RANGE[0], le=R.INTENSITY_RANGE[1],
                             description="how strongly the mood shows")
    head_motion: float = Field(1.0, ge=R.HEAD_MOTION_RANGE[0], le=R.HEAD_MOTION_RANGE[1],
                               description="head nods and sway: 1 = natural, 0 = a still head")
    options: dict = Field(default_factory=dict, description="engine options: " + ", ".join(R.OPTIONS))
    audio_base64: Optional[str] = Field(None, description=f"a short recording, base64 (the whole body stays under "
                                                          f"{C.MAX_JSON_BYTES // 1024} KB)")
    audio_filename: Optional[str] = Field(None, examples=["line.wav"])


class TakeUpload(BaseModel):
    """POST /v1/takes as multipart/form-data (send the X-ExOmni-Client header with it)."""

    audio: bytes = Field(..., json_schema_extra={"format": "binary"}, description="the recording")
    request: Optional[str] = Field(None, description='the other fields as one JSON object, e.g. {"mode": "lipsync"}')
    mode: Optional[str] = "lipsync"
    text: Optional[str] = None
    mood: Optional[str] = Field(None, description=", ".join(R.MOOD_NAMES))
    intensity: Optional[float] = Field(None, ge=R.INTENSITY_RANGE[0], le=R.INTENSITY_RANGE[1],
                                       description="a number sent as a form field")
    head_motion: Optional[float] = Field(None, ge=R.HEAD_MOTION_RANGE[0], le=R.HEAD_MOTION_RANGE[1],
                                         description="a number sent as a form field")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]


class EngineInfo(BaseModel, extra="allow"):
    name: str
    description: str = ""
    modes: list[str]
    available: bool
    reason: str = ""


class Engines(BaseModel):
    engines: list[EngineInfo]


class JobStatus(BaseModel):
    job_id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    message: str
    take_id: Optional[str] = None
    error: Optional[ErrorDetail] = None
    engine: Optional[str] = None
    mode: Optional[str] = None
    created: float
    finished: Optional[float] = None


class TakeList(BaseModel):
    takes: list[str]


class TakeInfo(BaseModel, extra="allow"):
    take_id: str
    fps: float
    frames: int


class Deleted(BaseModel):
    take_id: str
    deleted: bool


def errors(*codes: str) -> dict:
    """OpenAPI `responses` for these error codes."""
    out: dict = {}
    for code in codes:
        entry = out.setdefault(C.STATUS[code], {"model": ErrorBody, "description": ""})
        entry["description"] = ", ".join(filter(None, [entry["description"], code]))
    return out


def take_request_body() -> dict:
    """openapi_extra for POST /v1/takes: JSON or multipart, read and checked by the endpoint itself."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": TakeRequestBody.model_json_schema()},
        "multipart/form-data": {"schema": TakeUpload.model_json_schema()},
    }}}
