"""Recordings as people have them: WAV/FLAC/OGG/AIFF through soundfile, MP3/M4A/AAC and anything
else through the ffmpeg binary shipped in the imageio-ffmpeg wheel, piped and bounded by the length limit.

A `Recording` keeps the file's own sample rate (channels mixed down to mono) for the take, and
offers a 16 kHz copy for analysis. Every file that cannot be used raises an EngineError whose
message says what is wrong with it and what to do instead.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path

import numpy as np

from exomni_blender.core import contract as C
from exomni_blender.core.audio_codec import sniff_audio

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


@dataclass
class Scan:
    """What the checks need of a recording's samples, gathered piece by piece (nothing kept)."""
    samples: int = 0
    peak: float = 0.0
    finite: bool = True

    def add(self, x: np.ndarray) -> None:
        if x.size:
            self.samples += int(x.size)
            self.finite = self.finite and bool(np.all(np.isfinite(x)))
            self.peak = max(self.peak, float(np.max(np.abs(np.nan_to_num(x)))))


def bad_audio(message: str) -> EngineError:
    return EngineError(message, C.E_BAD_AUDIO)


def too_large(message: str) -> EngineError:
    return EngineError(message, C.E_TOO_LARGE)


def load_recording(path, max_seconds: float = C.MAX_AUDIO_SECONDS, max_bytes: int = C.MAX_AUDIO_BYTES,
                   name: str | None = None, keep: bool = True) -> Recording | None:
    """Read, check and mix down a recording. `name` is what messages call it (an upload's file name).
    With `keep=False` the recording is checked exactly as it would be read, piece by piece, and nothing
    is kept (None): memory stays flat whatever the file holds."""
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
    scan = Scan()
    if info is not None and info.format in SOUNDFILE_FORMATS:
        _check_rate(int(info.samplerate), int(info.channels), name)
        _check_length(info.frames / float(info.samplerate), name, max_seconds)
        samples, rate, channels = _read_soundfile(path, name, scan, keep)
        fmt = info.format
    else:
        samples, rate, channels, fmt = _read_with_ffmpeg(path, name, head, max_seconds, scan, keep)
    _check_scan(scan, rate, channels, name, max_seconds)
    return Recording(samples, rate, channels, fmt, name) if keep else None


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling, float32 out: soxr where it is installed (the extension bundles it),
    else scipy's polyphase filter. Neither is imported when the rate is already right."""
    x = np.asarray(samples, np.float32)
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    try:
        import soxr
    except ImportError:
        soxr = None
    if soxr is not None:
        return np.asarray(soxr.resample(x, int(src_rate), int(dst_rate), quality="HQ"), np.float32)
    from scipy.signal import resample_poly

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


def _read_soundfile(path: Path, name: str, scan: Scan, keep: bool):
    import soundfile as sf

    pieces = []
    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                mono = block.mean(axis=1).astype(np.float32)
                scan.add(mono)
                if keep:
                    pieces.append(mono)
    except Exception as exc:
        raise bad_audio(f"{name} could not be decoded ({exc}); the file is damaged: export it again") from None
    return (np.concatenate(pieces) if pieces else np.zeros(0, np.float32)), rate, channels


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
_RATE = re.compile(r"(\d+) Hz")
DECODE_TIMEOUT_S = 120  # ten minutes of the slowest codec decode in seconds; more is a broken file


def _read_with_ffmpeg(path: Path, name: str, head: bytes, max_seconds: float, scan: Scan, keep: bool = True):
    """Decode through the ffmpeg binary: the container's duration is checked first, and where it has none
    (a browser recorder's Opus/WebM) the decode itself stops just past the limit, so an hour of audio
    in a few MB is never decoded whole. The samples arrive mixed down to mono float32 in pieces; with
    `keep=False` (checking a recording before a job is accepted) they are only counted."""
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
    codec = stream.group(1)
    rate_match = _RATE.search(stream.group(0) + probe[stream.end():stream.end() + 200])
    rate = int(rate_match.group(1)) if rate_match else 0
    channels = _channel_count(probe[stream.end():stream.end() + 200])
    _check_rate(rate, channels, name)
    cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-vn",
           "-t", f"{max_seconds + 1.0:.3f}", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    limit_bytes = int((max_seconds + 1.0) * rate) * 4
    pieces, count, carry = [], 0, b""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while chunk := proc.stdout.read(1 << 20):
            count += len(chunk)
            chunk, carry = carry + chunk, b""
            whole = len(chunk) - len(chunk) % 4
            chunk, carry = chunk[:whole], chunk[whole:]
            x = np.frombuffer(chunk, "<f4")
            scan.add(x)
            if keep:
                pieces.append(x)
            if count > limit_bytes:  # ffmpeg's -t already stops it; this holds whatever it does
                break
        err = proc.stderr.read().decode("utf-8", "replace")
        status = proc.wait(timeout=DECODE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise bad_audio(f"{name} took over {DECODE_TIMEOUT_S} s to decode; export it again as {SUPPORTED}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    if status != 0 and count == 0:
        raise bad_audio(f"{name} could not be decoded as {codec} audio ({_last_ffmpeg_line(err)}); the file is "
                        f"damaged or incomplete: export it again")
    if count / 4 / float(rate) > max_seconds:
        raise too_large(f"{name} is longer than the limit of {max_seconds:.0f} s (its container does not say how "
                        "long; decoding stopped at the limit); split it into shorter lines (one take per line)")
    x = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    fmt = codec if codec != "mp3float" else "mp3"
    return x, rate, channels, fmt


def _channel_count(text: str) -> int:
    """Channels from ffmpeg's stream line: mono, stereo, 5.1, '6 channels', ... (1 when it says none)."""
    m = re.search(r"Hz, ([^,\n]+)", text)
    layout = (m.group(1).strip() if m else "mono").split("(")[0]
    named = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}
    if layout in named:
        return named[layout]
    n = re.match(r"(\d+) channels", layout)
    return int(n.group(1)) if n else 1


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
    """Refuse, before a job is accepted, a recording no engine could use (EngineError, 413/422). The
    samples are counted, never kept: this runs in the HTTP process."""
    load_recording(path, name=name, keep=False)


def _check_rate(rate: int, channels: int, name: str) -> None:
    if channels < 1:
        raise bad_audio(f"{name} declares {channels} audio channels, so it holds no sound; export it again")
    low, high = SAMPLE_RATE_RANGE
    if not low <= rate <= high:
        raise bad_audio(f"{name} declares a sample rate of {rate} Hz, outside {low}..{high} Hz that recordings "
                        "use; the file is damaged or mislabelled: export it again (e.g. 48 kHz WAV)")


def _check_scan(scan: Scan, rate: int, channels: int, name: str, max_seconds: float) -> None:
    _check_rate(rate, channels, name)
    if scan.samples == 0:
        raise bad_audio(f"{name} holds no audio samples (0 s long); export the recording again")
    if not scan.finite:
        raise bad_audio(f"{name} contains invalid (NaN or infinite) samples; export it again as 16-bit PCM")
    duration = scan.samples / float(rate)
    _check_length(duration, name, max_seconds)
    if duration < MIN_SECONDS:
        raise bad_audio(f"{name} is only {duration * 1000:.0f} ms long, too short to hold speech; "
                        "pick the whole line")
    if scan.peak < SILENCE_PEAK:
        level = f"peak level {20 * np.log10(scan.peak):.0f} dBFS" if scan.peak > 0 else "every sample is zero"
        raise bad_audio(f"{name} is silent ({level}): no voice was recorded; check the microphone "
                        "or pick the right track")
