"""Keying speed: `key_take` (bulk `foreach_set`) against per-frame `keyframe_insert`, side by side.

    python -m exomni_blender.benchmark [--frames 9000] [--insert-frames 900] [--repeats 3]

Both key the 52 ARKit shape keys of the procedural head with the same take, in the same process.
Per-frame `keyframe_insert` is timed on the first `--insert-frames` frames and extrapolated
linearly to the whole take (pass `--insert-frames` equal to `--frames` to time all of it); each
insert into a longer curve costs more, so the extrapolation understates its real time.
Prints seconds and the ratio; exits 0 when the run completes, whatever the numbers.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

TARGET_SECONDS = 0.25
TARGET_SPEEDUP = 20.0


def synthetic_take(frames: int, fps: float = 30.0, seed: int = 0):
    """A take with smooth, distinct curves on every channel (values in [0, 1])."""
    from ..core.take import Take

    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / fps
    freq = rng.uniform(0.2, 3.0, size=(1, 52))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 52))
    weights = 0.5 + 0.5 * np.sin(2 * np.pi * freq * t + phase)
    return Take(fps=fps, weights=weights.astype(np.float32), text="keying benchmark")


def _clear(key):
    import bpy

    ad = key.animation_data
    actions = set()
    if ad is not None:
        if ad.action is not None:
            actions.add(ad.action)
        for track in ad.nla_tracks:
            for strip in track.strips:
                if strip.action is not None:
                    actions.add(strip.action)
    key.animation_data_clear()
    for action in actions:
        bpy.data.actions.remove(action)


def run(frames: int = 9000, insert_frames: int = 900, repeats: int = 3, out=sys.stdout) -> dict:
    import bpy

    from ..core.arkit import ARKIT_52
    from .head import create_head
    from .keying import key_take

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    head = create_head()
    key = head.data.shape_keys
    take = synthetic_take(frames)
    insert_frames = max(1, min(insert_frames, frames))

    bulk = []
    for _ in range(max(1, repeats)):
        _clear(key)
        start = time.perf_counter()
        key_take(head, take, start_frame=1)
        bulk.append(time.perf_counter() - start)
    probe = [1, insert_frames // 2 + 1, insert_frames]
    bulk_values = [[fc.evaluate(f) for f in probe] for fc in _curves(key)]

    _clear(key)
    blocks = [key.key_blocks[name] for name in ARKIT_52]
    weights = take.weights
    start = time.perf_counter()
    for i in range(insert_frames):
        row = weights[i]
        for c, block in enumerate(blocks):
            block.value = float(row[c])
            block.keyframe_insert("value", frame=1 + i)
    per_frame = time.perf_counter() - start
    insert_values = [[fc.evaluate(f) for f in probe] for fc in _curves(key)]
    _clear(key)
    same = np.allclose(np.array(bulk_values), np.array(insert_values), atol=1e-5)

    best = min(bulk)
    extrapolated = per_frame * frames / insert_frames
    speedup = extrapolated / best
    met = best < TARGET_SECONDS and speedup >= TARGET_SPEEDUP
    print(f"keying {len(ARKIT_52)} channels x {frames} frames at 30 fps (Blender {bpy.app.version_string})", file=out)
    print(f"  key_take (keyframe_points.add + foreach_set): {best:.3f} s "
          f"(best of {len(bulk)}: {', '.join(f'{b:.3f}' for b in bulk)})", file=out)
    if insert_frames == frames:
        print(f"  per-frame keyframe_insert: {per_frame:.3f} s for all {frames} frames", file=out)
    else:
        print(f"  per-frame keyframe_insert: {per_frame:.3f} s for {insert_frames} of {frames} frames "
              f"-> {extrapolated:.2f} s for all {frames}, extrapolated linearly "
              "(inserts get slower as curves grow, so this understates it)", file=out)
    print(f"  speedup: {speedup:.0f}x", file=out)
    print(f"  same curves from both: {'yes' if same else 'NO'}", file=out)
    print(f"  target (< {TARGET_SECONDS} s and >= {TARGET_SPEEDUP:.0f}x): {'met' if met else 'NOT met'}", file=out)
    return {"key_take_s": best, "key_take_runs_s": bulk, "keyframe_insert_s": per_frame,
            "insert_frames": insert_frames, "keyframe_insert_extrapolated_s": extrapolated,
            "speedup": speedup, "same_curves": same, "target_met": met}


def _curves(key):
    from . import compat
    from ..core.arkit import ARKIT_52

    by_path = {fc.data_path: fc for fc in compat.all_fcurves(key.animation_data.action)}
    return [by_path[f'key_blocks["{name}"].value'] for name in ARKIT_52]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=9000, help="frames in the take (default 9000)")
    parser.add_argument("--insert-frames", type=int, default=900,
                        help="frames keyed with per-frame keyframe_insert, extrapolated to --frames (default 900)")
    parser.add_argument("--repeats", type=int, default=3, help="key_take runs; the best is reported (default 3)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exomni_blender.benchmark", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.insert_frames < 1 or args.repeats < 1:
        parser.error("--frames, --insert-frames and --repeats must be at least 1")
    run(args.frames, args.insert_frames, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
