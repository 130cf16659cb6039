"""The API's request and response shapes, for OpenAPI (/openapi.json, and /docs when asked for).

They describe; they do not validate requests: the one take-request validator is
`exomni_blender.core.request.validate`. The take request's shapes are made from its declaration
(`TakeRequest`'s field specs and `OPTIONS`), so they cannot drift from what the validator checks.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from exomni_blender.core import contract as C
from exomni_blender.core import request as R


def _field(spec: R.Spec, *, form: bool = False):
    """(annotation, pydantic Field) for one declared field or option; form fields all start unset."""
    kind = Literal[spec.choices] if spec.choices else spec.kind
    limits: dict = {}
    if spec.kind in (int, float) and spec.low is not None:
        limits = {"gt" if spec.low_open else "ge": spec.low, "le": spec.high}
    elif spec.kind is str and spec.high is not None:
        limits = {"max_length": spec.high}
    described = spec.help + (f"; {spec.describe()}" if spec.describe() and not spec.choices else "")
    if spec.engines:
        described += f" (engine: {', '.join(spec.engines)})"
    if spec.kind is dict:
        return EngineOptions, Field(default_factory=dict, description=described)
    if form or spec.default is None:
        return Optional[kind], Field(None, description=described, **limits)
    return kind, Field(spec.default, description=described, **limits)


# Engine options as OpenAPI shows them: each one optional, unknown names refused.
EngineOptions = create_model("EngineOptions", __config__=ConfigDict(extra="forbid"),
                             **{name: _field(spec, form=True) for name, spec in R.OPTIONS.items()})

# POST /v1/takes as JSON (a recording goes as multipart, or base64 in `audio_base64`).
TakeRequestBody = create_model(
    "TakeRequestBody", __config__=ConfigDict(extra="forbid"),
    **{name: _field(spec) for name, spec in R.SPECS.items()},
    audio_base64=(Optional[str], Field(None, description=f"a short recording, base64 (the whole body stays under "
                                                         f"{C.MAX_JSON_BYTES // 1024} KB)")),
    audio_filename=(Optional[str], Field(None, examples=["line.wav"])))

# POST /v1/takes as multipart/form-data (send the X-ExOmni-Client header with it): the recording, and the
# other fields either one by one or as one JSON object in `request`.
TakeUpload = create_model(
    "TakeUpload",
    audio=(bytes, Field(..., json_schema_extra={"format": "binary"}, description="the recording")),
    request=(Optional[str], Field(None, description='the other fields as one JSON object, e.g. {"mode": "lipsync"}')),
    **{name: _field(spec, form=True) for name, spec in R.SPECS.items() if spec.kind is not dict})


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
