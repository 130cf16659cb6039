"""Which engines a server or command offers, and how they are found by name."""

from __future__ import annotations

import importlib

from exomni_blender.core import contract as C

from exomni_blender.core.request import EngineSpec, TakeRequest, validate

from .base import Availability, Engine, EngineError


class UnavailableEngine(Engine):
    """Stands in for an engine that could not even be imported; says why and what to do."""

    def __init__(self, name: str, modes, reason: str):
        self.name, self.modes, self._reason = name, tuple(modes), reason
        self.description = f"{name} (not installed)"

    def availability(self) -> Availability:
        return Availability(False, self._reason)


class EngineRegistry:
    def __init__(self, engines):
        self._engines = {e.name: e for e in engines}

    def names(self) -> list[str]:
        return list(self._engines)

    def get(self, name: str, mode: str | None = None) -> Engine:
        """The engine by name, checked for the mode (EngineError otherwise); see check_available()."""
        engine = self._engines.get(name)
        if engine is None:
            raise EngineError(f"unknown engine {name!r}; available engines: {', '.join(self._engines)}",
                              C.E_UNKNOWN_ENGINE)
        if mode is not None and mode not in engine.modes:
            raise EngineError(f"engine {name!r} has no mode {mode!r}; its modes: {', '.join(engine.modes)}",
                              C.E_UNKNOWN_MODE)
        return engine

    def check_available(self, name: str) -> None:
        a = self._engines[name].availability()
        if not a.available:
            raise EngineError(f"engine {name!r} is not available: {a.reason}", C.E_ENGINE_UNAVAILABLE)

    def describe(self) -> list[dict]:
        return [e.describe() for e in self._engines.values()]

    def specs(self) -> dict:
        """name -> EngineSpec: what each engine can make, for the request validator."""
        specs = {}
        for e in self._engines.values():
            voices = e.voices() if hasattr(e, "voices") else None
            variants = e.variants() if hasattr(e, "variants") else None
            specs[e.name] = EngineSpec(name=e.name, modes=tuple(e.modes), voices=voices, variants=variants)
        return specs

    def validate(self, fields, has_audio: bool = False) -> TakeRequest:
        """The one take-request validator (exomni_blender.core.request) with these engines' modes and voices."""
        return validate(fields, has_audio=has_audio, engines=self.specs())


def default_registry(exomni_checkpoint: str | None = None, exomni_decoder: str | None = None,
                     device: str | None = None, exomni_speech_encoder: str | None = None,
                     exomni_speech_generator: str | None = None) -> EngineRegistry:
    """The phonetic engine, always; the Ex-Omni engine, available when its checkpoint is there."""
    from .phonetic.engine import PhoneticEngine

    engines: list[Engine] = [PhoneticEngine()]
    try:
        module = importlib.import_module("backend.engines.exomni")
        engines.append(module.ExomniEngine(checkpoint=exomni_checkpoint, decoder=exomni_decoder, device=device,
                                           speech_encoder=exomni_speech_encoder,
                                           speech_generator=exomni_speech_generator))
    except ImportError as exc:
        engines.append(UnavailableEngine("exomni", ("say", "chat"),
                                         f"the model's libraries are not installed ({exc.name or exc}); "
                                         "install them with: pip install -e '.[model]'"))
    return EngineRegistry(engines)
