"""A take's ARKit curves retargeted to a rig's own key names, written as Audio2Face-style JSON.

For use outside Blender (game engines, other DCCs): the same presets and matcher as the add-on
(exomni_blender.core.retarget), with the rig's key names taken from a list file when one is given, else the
preset's own names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from exomni_blender.core.retarget import Preset, PresetError, RetargetReport, detect
from exomni_blender.core.files import atomic_write
from exomni_blender.core.take import AUDIO_WAV, BLENDSHAPES_JSON, Take

REPORT_JSON = "retarget_report.json"
MAX_KEY_LIST_BYTES = 4 << 20  # thousands of names fit in far less


def read_rig_keys(path) -> list:
    """Key names from a file: one name per line, a JSON list, {"keys": [...]}, or an Audio2Face JSON."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_KEY_LIST_BYTES:
            raise PresetError(f"{path} is {path.stat().st_size // 1024} KB; a rig's key list is a few KB of names "
                              "(one per line, or a JSON list): is it the right file?")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PresetError(f"cannot read the rig's key list {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PresetError(f"{path} is not text (a binary file?); give the rig's key names, one per line, as UTF-8 "
                          "text, a JSON list, or an Audio2Face JSON") from None
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PresetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except RecursionError:
            raise PresetError(f"{path}: JSON nested too deeply; give a flat list of key names") from None
        if isinstance(data, dict):
            data = data.get("keys", data.get("facsNames"))
        if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
            raise PresetError(f"{path}: expected a list of key names, {{\"keys\": [...]}} or an Audio2Face JSON")
        names = data
    else:
        names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise PresetError(f"{path}: the rig's key list is empty")
    return names


def retarget_weights(preset: Preset, weights: np.ndarray, rig_keys=None) -> tuple:
    """(names, matrix [frames, keys] float32, RetargetReport) in the preset's target order."""
    curves, report = preset.targets(rig_keys, weights)
    names = list(curves)
    frames = np.asarray(weights).shape[0]
    matrix = np.stack([curves[n] for n in names], axis=1) if names else np.zeros((frames, 0), np.float32)
    return names, matrix.astype(np.float32), report


def a2f_json(names, matrix: np.ndarray, fps: float, track_path: str = "") -> dict:
    from exomni_blender.core.exchange import a2f_document  # the one Audio2Face writer

    return a2f_document(names, matrix, fps, track_path)


def choose_preset(preset_name: str | None, rig_keys, presets) -> tuple:
    """(Preset, note): the named preset, else the one detected from the rig's keys."""
    from exomni_blender.core.retarget import find_preset

    if preset_name:
        return find_preset(preset_name, presets), ""
    if not rig_keys:
        raise PresetError("name a preset with --preset, or give the rig's key names with --rig-keys to detect one")
    detection = detect(rig_keys, presets)
    if detection.preset is None:
        raise PresetError(detection.reason)
    return detection.preset, " ".join(detection.lines())


def write_retargeted(take_dir, out_dir, preset: Preset, rig_keys=None, fps: float | None = None) -> tuple:
    """Write out_dir/blendshapes.json (rig names), out_dir/retarget_report.json and the take's audio.

    Returns (paths written, RetargetReport). The take folder itself is never written to.
    """
    take_dir, out_dir = Path(take_dir), Path(out_dir)
    take = Take.load(take_dir)
    if fps:
        take = take.resampled(fps)
    if out_dir.resolve() == take_dir.resolve():
        raise PresetError("--out must be another folder than the take: its blendshapes.json holds the ARKit curves")
    names, matrix, report = retarget_weights(preset, take.weights, rig_keys)
    if not names:
        raise PresetError(f"none of {preset.name}'s keys is on the rig; check the key list or choose another preset")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    data = a2f_json(names, matrix, take.fps)
    atomic_write(out_dir / BLENDSHAPES_JSON, json.dumps(data, separators=(",", ":")).encode("utf-8"))
    written.append(out_dir / BLENDSHAPES_JSON)
    info = {"take": str(take_dir), "preset": preset.id, "preset_name": preset.name, "fps": take.fps,
            "frames": take.frames, "rig_keys_given": rig_keys is not None, **_report_json(report)}
    atomic_write(out_dir / REPORT_JSON, json.dumps(info, indent=2).encode("utf-8"))
    written.append(out_dir / REPORT_JSON)
    audio = take_dir / AUDIO_WAV
    if audio.is_file():
        shutil.copy2(audio, out_dir / AUDIO_WAV)
        written.append(out_dir / AUDIO_WAV)
    return written, report


def _report_json(report: RetargetReport) -> dict:
    d = report.to_json()
    d.pop("preset", None)
    return d


