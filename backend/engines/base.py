"""The engine interface: a take request in, a Take out, progress reported along the way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from exomni_blender.core.request import RequestError, TakeRequest  # noqa: F401  (engines import it from here)
from exomni_blender.core.take import Take


class Cancelled(Exception):
    """Raised inside an engine when its job was cancelled; nothing is stored."""


# A request an engine cannot serve is a request error like any other: one class, so the server, the CLI
# and the add-on catch the validator's refusals and the engines' alike. `code` fixes the HTTP status.
EngineError = RequestError


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
