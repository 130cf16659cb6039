"""The one place the environment is read: the backend's EXOMNI_* settings and where presets live.

Command-line flags override these (`Settings.but`); `Settings.from_env()` gives the defaults they
override. Both the backend and the add-on (user preset folders) read the environment only through here,
so every variable the product honours is listed in this one class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import contract as C
from .errors import UserError


def default_store(env=None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "exomni" / "takes"


@dataclass(frozen=True)
class Settings:
    host: str = C.DEFAULT_HOST
    port: int = C.DEFAULT_PORT
    store: Path = field(default_factory=default_store)
    token: str | None = None  # None: no token asked; "" is refused, never "no auth"
    allow_open: bool = False  # a non-loopback host without a token, said out loud
    allow_origins: tuple = ()  # web origins allowed to call the API (CORS), e.g. "http://localhost:3000"
    allow_hosts: tuple = ()  # extra Host names accepted (a LAN name for a token-protected server)
    preload: bool = True  # the engine worker starts loading configured models at once
    docs: bool = False  # Swagger UI at /docs (its scripts come from a CDN, so only when asked)
    max_queued: int = 32  # jobs waiting beyond this get 429 with Retry-After
    keep_jobs: int = 1000  # finished jobs remembered ...
    keep_job_days: float = 7.0  # ... and for how long
    keep_takes: int = 0  # the newest N takes kept (0: all)
    keep_bytes: int = 0  # takes pruned, oldest first, past this many bytes (0: no limit)
    checkpoint: str | None = None  # EXOMNI_CHECKPOINT: the released Ex-Omni checkpoint folder
    decoder: str | None = None  # EXOMNI_DECODER: glm-4-voice-decoder (flow.pt, hift.pt)
    device: str | None = None  # EXOMNI_DEVICE: cuda, cuda:1, cpu (none: CUDA when present)
    speech_encoder: str | None = None  # EXOMNI_SPEECH_ENCODER: the Whisper encoder's config folder
    speech_generator: str | None = None  # EXOMNI_SPEECH_GENERATOR: the speech generator's Qwen3 config folder
    presets: tuple = ()  # EXOMNI_PRESETS: extra retarget preset folders (os.pathsep-separated)
    align_processes: int = 0  # EXOMNI_ALIGN_PROCESSES: the most processes one lip-sync alignment uses (0: a core each)
    blender_user_config: str | None = None  # BLENDER_USER_CONFIG: where Blender was told to keep its config
    appdata: str | None = None  # APPDATA (Windows): where Blender keeps its config by default

    @classmethod
    def from_env(cls, env=None, strict: bool = True) -> "Settings":
        """The settings the environment gives; a malformed number is a UserError (with `strict=False`,
        its default: for commands that do not use it, `exomni serve` then says what is wrong)."""
        env = os.environ if env is None else env

        def get(name):
            value = env.get("EXOMNI_" + name)
            return value if value not in (None, "") else None

        def number(name, kind, default):
            raw = get(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                if not strict:
                    return default
                raise UserError(f"EXOMNI_{name}={raw!r} is not a {'whole ' if kind is int else ''}number; "
                                "fix or unset it") from None
            if value < 0:
                raise UserError(f"EXOMNI_{name} must not be negative (got {raw})")
            return value

        def words(name):
            return tuple(w for w in (get(name) or "").replace(",", " ").split() if w)

        base = cls()
        return cls(
            host=get("HOST") or base.host, port=number("PORT", int, base.port),
            store=Path(get("STORE")) if get("STORE") else default_store(env),
            token=env.get("EXOMNI_TOKEN"),  # "" kept, so that it is refused rather than ignored
            allow_origins=words("ALLOW_ORIGINS"), allow_hosts=words("ALLOW_HOSTS"),
            max_queued=number("MAX_QUEUED", int, base.max_queued), keep_jobs=number("KEEP_JOBS", int, base.keep_jobs),
            keep_job_days=number("KEEP_JOB_DAYS", float, base.keep_job_days),
            keep_takes=number("KEEP_TAKES", int, 0), keep_bytes=number("KEEP_BYTES", int, 0),
            checkpoint=get("CHECKPOINT"), decoder=get("DECODER"), device=get("DEVICE"),
            speech_encoder=get("SPEECH_ENCODER"), speech_generator=get("SPEECH_GENERATOR"),
            presets=tuple(p for p in (get("PRESETS") or "").split(os.pathsep) if p),
            align_processes=number("ALIGN_PROCESSES", int, 0),
            blender_user_config=env.get("BLENDER_USER_CONFIG") or None, appdata=env.get("APPDATA") or None)

    def but(self, **changes) -> "Settings":
        """A copy with the fields given (None values ignored: a flag that was not set)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
