"""The engine interface: a take request in, a Take out, progress reported along the way."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable, Optional

from exomni_blender.contract import TAKE_REQUEST_DEFAULTS
from exomni_blender.take import Take


class Cancelled(Exception):
    """Raised inside an engine when its job was cancelled; nothing is stored."""


class EngineError(Exception):
    """A request the engine cannot serve; `code` is a contract error code, the message says what to do."""

    def __init__(self, message: str, code: str = "bad_request", status: int = 400):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class TakeRequest:
    engine: str = TAKE_REQUEST_DEFAULTS["engine"]
    mode: str = TAKE_REQUEST_DEFAULTS["mode"]
    text: str = ""
    fps: float = TAKE_REQUEST_DEFAULTS["fps"]
    voice: Optional[str] = None
    seed: int = 0
    rate: float = 1.0
    pitch: float = 1.0
    mouth_only: bool = False
    audio_path: Optional[str] = None  # a recording (lipsync, spoken prompt), already on local disk
    options: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "TakeRequest":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Progress:
    """Reports progress (0..1 with a message) and carries cancellation into the engine."""

    def __init__(self, report: Callable[[float, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None):
        self._report = report
        self._cancelled = cancelled

    def __call__(self, fraction: float, message: str = "") -> None:
        self.check()
        if self._report:
            self._report(max(0.0, min(1.0, float(fraction))), message)

    def check(self) -> None:
        if self._cancelled and self._cancelled():
            raise Cancelled()


@dataclass
class Availability:
    available: bool
    reason: str = ""  # why not, and what to do


class Engine:
    """Base class of every engine. Subclasses set `name`, `modes`, `description`."""

    name: str = ""
    modes: tuple = ()
    description: str = ""

    def availability(self) -> Availability:
        return Availability(True)

    def make_take(self, request: TakeRequest, progress: Progress) -> Take:
        raise NotImplementedError

    def describe(self) -> dict:
        a = self.availability()
        return {"name": self.name, "description": self.description, "modes": list(self.modes),
                "available": a.available, "reason": a.reason}
