"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import sys
import time
from pathlib import Path


def add_engine_options(p) -> None:
    from ..settings import Settings

    env = Settings.from_env(strict=False)  # the one reader of the EXOMNI_* variables
    g = p.add_argument_group("Ex-Omni model")
    g.add_argument("--exomni-checkpoint", default=env.checkpoint, metavar="DIR",
                   help="released Ex-Omni checkpoint folder (default: $EXOMNI_CHECKPOINT)")
    g.add_argument("--exomni-decoder", default=env.decoder, metavar="DIR",
                   help="glm-4-voice-decoder folder with flow.pt and hift.pt (default: $EXOMNI_DECODER)")
    g.add_argument("--exomni-speech-encoder", default=env.speech_encoder, metavar="DIR",
                   help="folder with the Whisper encoder's config files, when the checkpoint's "
                        "pretrain_speech_encoder_weights cannot be found offline (default: $EXOMNI_SPEECH_ENCODER)")
    g.add_argument("--exomni-speech-generator", default=env.speech_generator, metavar="DIR",
                   help="folder with the speech generator's Qwen3 config, when the checkpoint's "
                        "pretrain_speech_generator_weights cannot be found offline (default: $EXOMNI_SPEECH_GENERATOR)")
    g.add_argument("--device", default=env.device, help="cuda, cuda:1 or cpu (default: cuda if present)")


def make_registry(args):
    from ..engines.registry import default_registry

    return default_registry(args.exomni_checkpoint, args.exomni_decoder, args.device,
                            exomni_speech_encoder=getattr(args, "exomni_speech_encoder", None),
                            exomni_speech_generator=getattr(args, "exomni_speech_generator", None))


def default_store() -> Path:
    from ..settings import Settings

    return Settings.from_env(strict=False).store


class ProgressBar:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream or sys.stderr  # sys.stderr of now, not of import time
        self.tty = self.stream.isatty()
        self._last = ("", -1.0)
        self._t0 = time.monotonic()

    def __call__(self, fraction: float, message: str = "") -> None:
        if fraction >= 1.0:  # the finished line is done()'s, with the time it took
            return
        self._draw(fraction, message)

    def _draw(self, fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if (message, pct // 10 if not self.tty else pct) == self._last:
            return
        self._last = (message, pct // 10 if not self.tty else pct)
        bar = "#" * (pct // 5) + "-" * (20 - pct // 5)
        line = f"{self.label} [{bar}] {pct:3d}% {message}"
        if self.tty:
            self.stream.write("\r" + line[:100].ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self, message: str = "done") -> None:
        self._draw(1.0, f"{message} ({time.monotonic() - self._t0:.1f} s)")
        if self.tty:
            self.stream.write("\n")


def fail(message: str, status: int = 2) -> int:
    print(f"exomni: error: {message}", file=sys.stderr)
    return status


def model_libraries_installed() -> bool:
    """Whether torch is there for the model commands; if not, says how to install it."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("this needs torch and transformers: pip install 'exomni-blender[model]'")
        return False
    return True
