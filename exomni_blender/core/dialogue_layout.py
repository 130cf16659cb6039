"""Where the lines of a dialogue go on the timeline, and what they are called there.

Pure Python (no bpy), so the backend's `exomni batch` and the add-on's Dialogue panel
share one definition. Layout is in whole frames, so rounding never makes two lines touch: lines
follow each other with a gap, a line with a given start time sits at that time, and a dual-dialogue
line starts together with the line before it. Those two are the only overlaps.
"""

from __future__ import annotations

import math

MAX_NAME_BYTES = 63  # Blender's limit for marker, strip, action and object names

# The protocol of `python -m exomni_blender.blender.dialogue_scene`: lines it prints on stdout for
# the backend that runs it. "<PROGRESS_TAG> <fraction> <message>", "<RESULT_TAG> <json>",
# "<INSPECT_TAG> <json>".
PROGRESS_TAG = "EXOMNI_PROGRESS"
RESULT_TAG = "EXOMNI_RESULT"
INSPECT_TAG = "EXOMNI_INSPECT"


def clip_name(text: str) -> str:
    data = text.encode("utf-8")[:MAX_NAME_BYTES]
    return data.decode("utf-8", "ignore").rstrip()


def first_words(text: str, words: int = 5, limit: int = 40) -> str:
    parts = text.replace("...", " ").split()
    out = " ".join(parts[:words])
    return out[:limit].rstrip() if len(out) > limit else out


def marker_name(character: str, text: str) -> str:
    """"CHARACTER: first words", the timeline marker of a line."""
    return clip_name(f"{character}: {first_words(text)}")


def strip_name(index: int, character: str, text: str) -> str:
    """The NLA strip, action and sound strip of a line; numbered, so unique and in script order."""
    return clip_name(f"{index + 1:03d} {character}: {first_words(text, 4, 36)}")


def line_frames(take, fps: float) -> tuple[int, int]:
    """(frames the line occupies, frames of its audio) for a take keyed at `fps`."""
    audio = int(math.ceil(round(take.audio.size / float(take.sample_rate) * fps, 6))) if take.audio.size else 0
    curves = int(math.ceil(round(take.weights.shape[0] * fps / float(take.fps), 6)))
    return max(curves, audio, 1), audio


def layout(lines, fps: float, frame_start: int = 1, gap: float = 0.5, lead_in: float = 0.5) -> list[int]:
    """Start frames for `lines`, each a dict or object with `frames`, `given_start` (seconds or None)
    and `dual` (bool), in script order."""
    if gap < 0 or lead_in < 0:
        raise ValueError("the gap and the lead-in are seconds, zero or more")
    gap_frames = int(round(gap * fps))
    cursor = frame_start + int(round(lead_in * fps))
    starts: list[int] = []
    for i, line in enumerate(lines):
        given, dual, frames = _get(line, "given_start"), _get(line, "dual"), int(_get(line, "frames"))
        if given is not None:
            start = frame_start + int(round(float(given) * fps))
        elif dual and starts:
            start = starts[-1]
        else:
            start = cursor
        starts.append(start)
        cursor = max(cursor, start + frames + gap_frames)
    return starts


def overlaps(lines, starts) -> list[tuple[int, int, bool]]:
    """(i, j, asked) for lines i < j that sound at the same time; asked: dual dialogue (j right
    after i) or both placed at given times."""
    spans = sorted((s, s + int(_get(l, "frames")) - 1, i) for i, (l, s) in enumerate(zip(lines, starts)))
    out = []
    for a, (s0, e0, i) in enumerate(spans):
        for s1, e1, j in spans[a + 1:]:
            if s1 > e0:
                break
            i2, j2 = sorted((i, j))
            asked = (bool(_get(lines[j2], "dual")) and j2 == i2 + 1) or (
                _get(lines[i2], "given_start") is not None and _get(lines[j2], "given_start") is not None)
            out.append((i2, j2, asked))
    return sorted(out)


def frame_range(lines, starts, frame_start: int, fps: float, tail: float = 0.5) -> tuple[int, int]:
    last = max(s + int(_get(l, "frames")) - 1 for l, s in zip(lines, starts))
    return frame_start, last + int(round(tail * fps))


def _get(line, name: str):
    if isinstance(line, dict):
        return line.get(name)
    return getattr(line, name)

