"""Audio bytes, one definition each: 16-bit PCM, WAV files, and what kind of audio file some bytes are.

- `to_pcm16` / `from_pcm16`: float samples in [-1, 1] to and from little-endian 16-bit PCM (the
  clip, scale and rounding a take's audio.wav stores; the stream sends the same bytes);
- `encode_wav` / `decode_wav`: a mono 16-bit PCM WAV out; any PCM (8/16/24/32-bit) or float WAV in;
- `wav_pcm16`: the data bytes of a mono 16-bit WAV as they are (no decoding, so none can differ);
- `sniff_audio`: the container a file's first bytes announce (wav, flac, ogg, mp3, m4a, webm, ...),
  or "raw" when they announce none; `audio_suffix` is the file extension for it.

Stdlib + numpy only: Blender's Python, the add-on and the backend all use it.
"""

from __future__ import annotations

import struct

import numpy as np

from .errors import TakeFormatError

PCM16_SCALE_OUT = 32767.0  # float -> int16: 1.0 is 32767, so a full-scale sample never wraps
PCM16_SCALE_IN = 32768.0  # int16 -> float: -32768 is -1.0


class WavFormatError(TakeFormatError):
    """A WAV file that cannot be read; the message says what is wrong with it."""


# -- 16-bit PCM ------------------------------------------------------------------------------------

def to_pcm16(samples) -> bytes:
    """Little-endian 16-bit PCM for float samples (clipped to [-1, 1], scaled by 32767, rounded)."""
    return pcm16_array(samples).tobytes()


def pcm16_array(samples) -> np.ndarray:
    """The int16 samples `to_pcm16` writes, as an array."""
    x = np.clip(np.asarray(samples, np.float32).reshape(-1), -1.0, 1.0)
    return (x * PCM16_SCALE_OUT).round().astype("<i2")


def from_pcm16(pcm) -> np.ndarray:
    """float32 samples in [-1, 1) from 16-bit PCM: bytes (little-endian) or an int16 array."""
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        data = bytes(pcm)
        pcm = np.frombuffer(data[:len(data) - len(data) % 2], "<i2")
    return np.asarray(pcm).astype(np.float32) / PCM16_SCALE_IN


# -- WAV -------------------------------------------------------------------------------------------

def wav_header(data_bytes: int, sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """The 44-byte RIFF/WAVE header of a PCM WAV holding `data_bytes` bytes of samples."""
    block = channels * bits // 8
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, int(sample_rate), int(sample_rate) * block, block, bits)
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " + fmt
            + b"data" + struct.pack("<I", data_bytes))


def encode_wav(samples, sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV of float samples (the file a take folder stores as audio.wav)."""
    pcm = to_pcm16(samples)
    return wav_header(len(pcm), sample_rate) + pcm


def _chunks(data: bytes):
    """(chunk id, chunk body) of a RIFF/WAVE file, in order; a body cut short is returned as it is."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        yield cid, data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)


def _require_riff(data: bytes) -> None:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavFormatError("not a WAV file (no RIFF/WAVE header)")


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate from a PCM (8/16/24/32-bit) or float WAV."""
    _require_riff(data)
    fmt, fmt_body, payload = None, b"", None
    for cid, body in _chunks(data):
        if cid == b"fmt ":
            if len(body) < 16:
                raise WavFormatError("WAV file is truncated (its fmt chunk is shorter than 16 bytes)")
            fmt, fmt_body = struct.unpack("<HHIIHH", body[:16]), body
        elif cid == b"data":
            payload = body
    if fmt is None or payload is None:
        raise WavFormatError("WAV file is truncated (missing fmt or data chunk)")
    tag, channels, rate, _, _, bits = fmt
    if tag == 0xFFFE and len(fmt_body) >= 26:
        # WAVE_FORMAT_EXTENSIBLE (ffmpeg writes it above 48 kHz or 2 channels, for instance): the sub-format
        # GUID that follows the basic fields begins with the real format tag (1 PCM, 3 float).
        tag = struct.unpack("<H", fmt_body[24:26])[0]
    if channels < 1 or bits < 8 or bits % 8 or rate < 1:
        raise WavFormatError(f"unsupported WAV header ({channels} channels, {bits}-bit, {rate} Hz); "
                             "export the audio again as 16-bit PCM WAV")
    width = bits // 8
    usable = len(payload) - len(payload) % (width * channels)
    payload = payload[:usable]
    if tag == 3 and bits in (32, 64):
        x = np.frombuffer(payload, "<f4" if bits == 32 else "<f8").astype(np.float32)
    elif tag != 1:
        raise WavFormatError(f"unsupported WAV encoding (format tag {tag}); export the audio as PCM or float WAV")
    elif bits == 8:
        x = (np.frombuffer(payload, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 16:
        x = from_pcm16(payload)
    elif bits == 24:
        b = np.frombuffer(payload, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif bits == 32:
        x = np.frombuffer(payload, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise WavFormatError(f"unsupported WAV sample format ({bits}-bit, tag {tag})")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x.astype(np.float32), int(rate)


def wav_pcm16(data: bytes) -> tuple[int, bytes]:
    """(sample rate, data bytes) of a mono 16-bit PCM WAV, the kind a take stores, untouched."""
    _require_riff(data)
    rate, pcm = None, None
    for cid, body in _chunks(data):
        if cid == b"fmt " and len(body) >= 16:
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if (tag, channels, bits) != (1, 1, 16):
                raise WavFormatError(f"a take's audio is mono 16-bit PCM, not format {tag}, {channels} ch, "
                                     f"{bits}-bit")
        elif cid == b"data":
            pcm = body
    if rate is None or pcm is None:
        raise WavFormatError("WAV file without fmt or data chunk")
    return rate, pcm[:len(pcm) - len(pcm) % 2]


# -- what kind of audio file -------------------------------------------------------------------------

# kind -> the file extension a decoder picks it by. "video" and "image" are containers a person picks
# by mistake; "raw" is bytes with no header at all (headerless PCM, or a corrupt file).
AUDIO_SUFFIXES = {
    "wav": ".wav", "aiff": ".aiff", "flac": ".flac", "ogg": ".ogg", "mp3": ".mp3", "aac": ".aac", "m4a": ".m4a",
    "webm": ".webm", "wma": ".wma", "amr": ".amr", "caf": ".caf", "au": ".au",
}
CONTAINERS = tuple(AUDIO_SUFFIXES) + ("riff", "iff", "video", "image")

_PREFIXES = (  # (first bytes, kind); checked in order
    (b"fLaC", "flac"), (b"OggS", "ogg"), (b"ID3", "mp3"), (b"\x1aE\xdf\xa3", "webm"),  # EBML: WebM, Matroska
    (b"\x30\x26\xb2\x75", "wma"), (b"#!AMR", "amr"), (b"caff", "caf"), (b".snd", "au"),
    (b"\x00\x00\x01\xba", "video"), (b"\x89PNG", "image"), (b"\xff\xd8\xff", "image"), (b"GIF8", "image"),
)
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free")  # MP4/M4A/MOV: the first box's type at bytes 4..8


def sniff_audio(head: bytes) -> str:
    """The container the first bytes of a file announce: one of CONTAINERS, or "raw" for none.

    Sixteen bytes are enough; more do no harm. "riff"/"iff" are RIFF and IFF files other than WAV
    and AIFF (AVI, big-endian RIFX, ...)."""
    head = bytes(head[:16])
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] in (b"RIFF", b"RIFX", b"RF64"):
        return "riff"
    if head[:4] == b"FORM":
        return "aiff" if head[8:12] in (b"AIFF", b"AIFC") else "iff"
    for prefix, kind in _PREFIXES:
        if head.startswith(prefix):
            return kind
    if head[4:8] in _MP4_BOXES:
        return "m4a"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame sync
        return "aac" if head[1] & 0x06 == 0 else "mp3"  # layer bits 00: an AAC ADTS frame
    return "raw"


def audio_suffix(head: bytes, default: str = ".wav") -> str:
    """The file extension for audio bytes with no name to go by (`default` when they announce none)."""
    return AUDIO_SUFFIXES.get(sniff_audio(head), default)
