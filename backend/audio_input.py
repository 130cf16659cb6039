"""Recordings as people have them: WAV/FLAC/OGG/AIFF through soundfile, MP3/M4A/AAC and anything
else ffmpeg reads through pydub, using the ffmpeg binary shipped in the imageio-ffmpeg wheel.

A `Recording` keeps the file's own sample rate (channels mixed down to mono) for the take, and
offers a 16 kHz copy for analysis. Every file that cannot be used raises an EngineError whose
message says what is wrong with it and what to do instead.
"""

from __future__ import annotations

import re
import struct
import subprocess
import warnings
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path

import numpy as np

from exomni_blender.core import contract as C
from exomni_blender.core.audio_codec import from_pcm16, sniff_audio

from .engines.base import EngineError

ANALYSIS_RATE = 16000
MIN_SECONDS = 0.1
# Sample rates real recordings have (telephone 8 kHz to studio 384 kHz). A 1 Hz header is an attack or
# a broken file: resampling it to 16 kHz would take minutes and gigabytes.
SAMPLE_RATE_RANGE = (4000, 384000)
SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS: below this nothing audible was recorded
# Formats soundfile decodes itself; everything else (MP3 included, which libsndfile also reads but
# without the encoder-delay handling ffmpeg has) goes through ffmpeg.
SOUNDFILE_FORMATS = ("WAV", "WAVEX", "RF64", "W64", "FLAC", "OGG", "AIFF", "CAF", "AU")
FFMPEG_EXTENSIONS = (".mp3", ".m4a", ".aac", ".mp4", ".m4b", ".mov", ".webm", ".opus", ".wma", ".ac3", ".mka")
SUPPORTED = "WAV, FLAC, OGG, AIFF, MP3, M4A or AAC"


@dataclass
class Recording:
    samples: np.ndarray  # mono float32 in [-1, 1] at the file's own rate
    sample_rate: int
    channels: int  # in the file, before the mixdown
    format: str  # container as detected, e.g. "WAV", "FLAC", "mp3"
    source: str = ""  # file name, for messages

    @property
    def duration(self) -> float:
        return self.samples.size / float(self.sample_rate)

    def analysis(self, rate: int = ANALYSIS_RATE) -> np.ndarray:
        """The recording resampled for analysis (the take keeps `samples` untouched)."""
        return resample(self.samples, self.sample_rate, rate)


def bad_audio(message: str) -> EngineError:
    return EngineError(message, C.E_BAD_AUDIO)


def too_large(message: str) -> EngineError:
    return EngineError(message, C.E_TOO_LARGE)


def load_recording(path, max_seconds: float = C.MAX_AUDIO_SECONDS, max_bytes: int = C.MAX_AUDIO_BYTES,
                   name: str | None = None) -> Recording:
    """Read, check and mix down a recording. `name` is what messages call it (an upload's file name)."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise bad_audio(f"{name}: no such file; pick an existing recording ({SUPPORTED})")
    size = path.stat().st_size
    if size == 0:
        raise bad_audio(f"{name} is empty (0 bytes); the export or upload did not finish, so save it again")
    if size > max_bytes:
        raise too_large(f"{name} is {size / 2**20:.1f} MB, over the limit of {max_bytes / 2**20:.0f} MB; "
                        "trim it to the line you need or export it compressed (MP3/M4A)")
    with open(path, "rb") as fh:
        head = fh.read(4096)

    if sniff_audio(head) == "wav":
        _check_wav_complete(path, name, size)
    info = None if path.suffix.lower() in FFMPEG_EXTENSIONS else _soundfile_info(path)
    if info is not None and info.format in SOUNDFILE_FORMATS:
        _check_rate(int(info.samplerate), int(info.channels), name)
        _check_length(info.frames / float(info.samplerate), name, max_seconds)
        samples, rate, channels = _read_soundfile(path, name)
        fmt = info.format
    else:
        samples, rate, channels, fmt = _read_with_ffmpeg(path, name, head, max_seconds)
    return _checked(Recording(samples, rate, channels, fmt, name), max_seconds)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy), float32 out."""
    from scipy.signal import resample_poly

    x = np.asarray(samples, np.float32)
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    g = gcd(int(src_rate), int(dst_rate))
    up, down = dst_rate // g, src_rate // g
    if max(up, down) > 2000:  # an odd rate: a close ratio keeps the filter small; the drift is ppm
        ratio = Fraction(dst_rate, src_rate).limit_denominator(2000)
        up, down = ratio.numerator, ratio.denominator
    return resample_poly(x, up, down).astype(np.float32)


def ffmpeg_exe() -> str:
    """The ffmpeg binary from the imageio-ffmpeg wheel (no system install needed)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise EngineError("reading MP3/M4A/AAC needs the imageio-ffmpeg package: pip install imageio-ffmpeg",
                          C.E_BAD_AUDIO) from None
    return imageio_ffmpeg.get_ffmpeg_exe()


# -- soundfile ----------------------------------------------------------------------------------

def _soundfile_info(path: Path):
    import soundfile as sf

    try:
        return sf.info(str(path))
    except Exception:  # not a format libsndfile knows (MP3 in MP4, text, ...): ffmpeg decides
        return None


def _read_soundfile(path: Path, name: str):
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise bad_audio(f"{name} could not be decoded ({exc}); the file is damaged: export it again") from None
    return data.mean(axis=1).astype(np.float32), int(rate), int(data.shape[1])


def _check_wav_complete(path: Path, name: str, size: int) -> None:
    """A WAV whose data chunk is announced longer than the file was cut short in a copy or upload."""
    with open(path, "rb") as fh:
        data = fh.read(min(size, 1 << 20))
    pos, block, rate = 12, None, None
    while pos + 8 <= len(data):
        cid, length = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"fmt " and pos + 24 <= len(data):
            _, _, rate, _, block, _ = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
        if cid == b"data":
            if length in (0, 0xFFFFFFFF) or data[:4] == b"RF64":
                return  # written as a stream (length unknown): read what is there
            present = size - (pos + 8)
            if present < length:
                if block and rate:
                    have, want = present / (block * rate), length / (block * rate)
                    detail = f"its header announces {want:.2f} s of audio but the file holds only {have:.2f} s"
                else:
                    detail = f"its header announces {length} bytes of audio but the file holds only {present}"
                raise bad_audio(f"{name} is a truncated WAV file: {detail}; the copy or export was cut "
                                "short, so copy or export it again")
            return
        pos += 8 + length + (length & 1)
    raise bad_audio(f"{name} is a truncated or damaged WAV file (no audio data chunk found); "
                    "export it again as 16-bit PCM WAV")


# -- ffmpeg (through pydub) ---------------------------------------------------------------------

_STREAM = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def _read_with_ffmpeg(path: Path, name: str, head: bytes, max_seconds: float):
    exe = ffmpeg_exe()
    probe = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                           timeout=60).stderr.decode("utf-8", "replace")
    stream = _STREAM.search(probe)
    if stream is None:
        raise bad_audio(_not_audio_message(name, head, probe))
    duration = _DURATION.search(probe)
    if duration:
        h, m, s = duration.groups()
        _check_length(int(h) * 3600 + int(m) * 60 + float(s), name, max_seconds)

    with warnings.catch_warnings():  # pydub warns at import when no ffmpeg is on PATH (we set our own)
        warnings.simplefilter("ignore", RuntimeWarning)  # and about audioop, deprecated in Python 3.13
        warnings.simplefilter("ignore", DeprecationWarning)
        from pydub import AudioSegment
        from pydub.exceptions import CouldntDecodeError
    AudioSegment.converter = exe
    codec = stream.group(1)
    try:
        # Naming the decoder skips pydub's ffprobe step (the wheel ships ffmpeg only).
        segment = AudioSegment.from_file(str(path), codec=codec)
    except CouldntDecodeError as exc:
        reason = _last_ffmpeg_line(str(exc))
        raise bad_audio(f"{name} could not be decoded as {codec} audio ({reason}); the file is damaged or "
                        f"incomplete: export it again") from None
    width, channels = segment.sample_width, segment.channels
    _check_rate(int(segment.frame_rate), int(channels), name)
    if width not in (1, 2, 4):
        raise bad_audio(f"{name} has {width * 8}-bit samples ffmpeg could not convert; export it as 16-bit PCM")
    if width == 1:
        x = (np.frombuffer(segment.raw_data, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = from_pcm16(segment.raw_data)
    else:
        x = np.frombuffer(segment.raw_data, "<i4").astype(np.float32) / float(2 ** 31)
    usable = x.size - x.size % channels
    x = x[:usable].reshape(-1, channels).mean(axis=1)
    fmt = codec if codec != "mp3float" else "mp3"
    return x.astype(np.float32), int(segment.frame_rate), int(channels), fmt


def _not_audio_message(name: str, head: bytes, probe: str) -> str:
    looks_text = bool(head) and b"\x00" not in head[:512]
    if looks_text:
        try:
            head[:512].decode("utf-8")
        except UnicodeDecodeError:
            looks_text = False
    if looks_text:
        return (f"{name} is a text file, not audio (whatever its extension says); "
                f"pick the recording itself ({SUPPORTED})")
    if sniff_audio(head) == "raw":  # samples with no header: nothing says their rate or channel count
        return (f"{name} has no audio header (raw PCM samples with no header, or a corrupt file), so its sample "
                f"rate and channels are unknown; if it is raw PCM, save it as WAV (e.g. ffmpeg -f s16le -ar 16000 "
                f"-ac 1 -i {name} out.wav, with its real format and rate), otherwise export it again as {SUPPORTED}")
    if re.search(r"Stream #\d+:\d+.*?: Video:", probe):
        return f"{name} has no audio track (only video or images); export the sound as {SUPPORTED}"
    return (f"{name} is not a readable audio file (corrupt, or not audio at all: "
            f"{_last_ffmpeg_line(probe)}); export it again as {SUPPORTED}")


def _last_ffmpeg_line(text: str) -> str:
    """The most telling line of ffmpeg's complaint, without its [component @ address] prefix."""
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", ln.strip()) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and "output file" not in ln and not ln.startswith(("size=", "Conversion failed"))]
    for ln in lines:
        if "Invalid data found" in ln:
            return "invalid data found where audio was expected"
    return lines[-1][:200] if lines else "unknown error"


# -- checks -------------------------------------------------------------------------------------

def _check_length(seconds: float, name: str, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise too_large(f"{name} is {seconds:.1f} s long, over the limit of {max_seconds:.0f} s; "
                        "split it into shorter lines (one take per line)")


def check_recording(path, name: str | None = None) -> None:
    """Refuse, before a job is accepted, a recording no engine could use (EngineError, 413/422)."""
    load_recording(path, name=name)


def _check_rate(rate: int, channels: int, name: str) -> None:
    if channels < 1:
        raise bad_audio(f"{name} declares {channels} audio channels, so it holds no sound; export it again")
    low, high = SAMPLE_RATE_RANGE
    if not low <= rate <= high:
        raise bad_audio(f"{name} declares a sample rate of {rate} Hz, outside {low}..{high} Hz that recordings "
                        "use; the file is damaged or mislabelled: export it again (e.g. 48 kHz WAV)")


def _checked(rec: Recording, max_seconds: float) -> Recording:
    name = rec.source
    _check_rate(rec.sample_rate, rec.channels, name)
    if rec.samples.size == 0:
        raise bad_audio(f"{name} holds no audio samples (0 s long); export the recording again")
    if not np.all(np.isfinite(rec.samples)):
        raise bad_audio(f"{name} contains invalid (NaN or infinite) samples; export it again as 16-bit PCM")
    _check_length(rec.duration, name, max_seconds)
    if rec.duration < MIN_SECONDS:
        raise bad_audio(f"{name} is only {rec.duration * 1000:.0f} ms long, too short to hold speech; "
                        "pick the whole line")
    peak = float(np.max(np.abs(rec.samples)))
    if peak < SILENCE_PEAK:
        level = f"peak level {20 * np.log10(peak):.0f} dBFS" if peak > 0 else "every sample is zero"
        raise bad_audio(f"{name} is silent ({level}): no voice was recorded; check the microphone "
                        "or pick the right track")
    return rec
