"""The one bulk F-curve writer: data paths, frames and values in, keyed F-curves out.

Every take, jaw, idle layer and head motion is keyed here, with `keyframe_points.add` + `foreach_set`
(never a per-frame `keyframe_insert`), through `compat` so the same call works on Blender 4.2's
legacy Actions and on the slotted, layered Actions of 4.4 to 5.x. Interpolation is always set:
a curve sampled per frame reads the same at any scene rate only when it is linear between keys.
"""

from __future__ import annotations

from typing import Mapping

import bpy
import numpy as np

from . import compat

_INTERPOLATION = {item.identifier: item.value
                  for item in bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items}


def interpolation_value(name: str) -> int:
    """The enum value of a keyframe interpolation such as 'LINEAR', 'CONSTANT' or 'BEZIER'."""
    try:
        return _INTERPOLATION[name]
    except KeyError:
        raise ValueError(f"unknown interpolation {name!r}; use one of {', '.join(_INTERPOLATION)}") from None


def write_fcurves(action, owner, channels: Mapping, frames, *, group: str | None = None,
                  interpolation: str = "LINEAR") -> list:
    """Key `channels` on `action` for the ID `owner` (the slot it animates) and return the F-curves.

    channels       {data path: values} or {(data path, array index): values}; values are [len(frames)],
                   or [k] with their own frames when given as (frames, values)
    frames         scene frames shared by every channel without its own (increasing)
    group          the channel group the F-curves go into (created when missing)
    interpolation  set on every key ('LINEAR' by default)
    """
    mode = interpolation_value(interpolation)
    shared = np.asarray(frames, dtype=np.float64).reshape(-1)
    written = []
    for target, values in channels.items():
        path, index = target if isinstance(target, tuple) else (target, 0)
        at = shared
        if isinstance(values, tuple):  # (own frames, values): a sparse channel
            at, values = np.asarray(values[0], np.float64).reshape(-1), values[1]
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if values.shape[0] != at.shape[0]:
            raise ValueError(f"{path}[{index}] has {values.shape[0]} values for {at.shape[0]} frames")
        fcurve = compat.new_fcurve(action, owner, path, index, group=group)
        fill(fcurve, at, values, mode)
        written.append(fcurve)
    return written


def fill(fcurve, frames: np.ndarray, values: np.ndarray, interpolation: int) -> None:
    """Replace nothing, add keys: `frames`/`values` appended to an empty F-curve in one call each."""
    n = int(frames.shape[0])
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    points = fcurve.keyframe_points
    points.add(n)
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(n, interpolation, dtype=np.int32))
    fcurve.update()  # sorts the keys and computes their handles


def read_fcurve(fcurve) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values) of an F-curve's keys, read in bulk."""
    n = len(fcurve.keyframe_points)
    co = np.empty(2 * n, dtype=np.float32)
    fcurve.keyframe_points.foreach_get("co", co)
    return co[0::2].astype(np.float64), co[1::2].copy()


# -- sparse keys -----------------------------------------------------------------------------------

def sparse_indices(values, tolerance: float) -> np.ndarray:
    """Indices of the keys to keep so that linear interpolation between them stays within `tolerance`
    of every value (Ramer-Douglas-Peucker on the value error). The first and last are always kept."""
    v = np.asarray(values, np.float64).reshape(-1)
    n = v.shape[0]
    if n <= 2:
        return np.arange(n)
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        inner = np.arange(a + 1, b)
        line = v[a] + (v[b] - v[a]) * (inner - a) / float(b - a)
        error = np.abs(v[a + 1:b] - line)
        worst = int(np.argmax(error))
        if error[worst] > tolerance:
            split = a + 1 + worst
            keep[split] = True
            stack.append((a, split))
            stack.append((split, b))
    return np.flatnonzero(keep)


def sparse_channels(channels: Mapping, frames, tolerance: float, skip_still: bool = True) -> dict:
    """{target: (frames_k, values_k)}: each channel with only the keys its motion needs (within
    `tolerance`, linear between keys), ready for `write_fcurves`. A channel that stays at rest
    (within `tolerance` of 0) over the whole range is left out with `skip_still`, else it gets a
    single key: enough for a REPLACE layer to own the channel, so nothing stale shows through."""
    shared = np.asarray(frames, np.float64).reshape(-1)
    out = {}
    for target, values in channels.items():
        values = np.asarray(values, np.float32).reshape(-1)
        if float(np.max(np.abs(values), initial=0.0)) <= tolerance:
            if not skip_still:
                out[target] = (shared[:1], np.zeros(1, np.float32))
            continue
        keep = sparse_indices(values, tolerance)
        out[target] = (shared[keep], values[keep])
    return out
