"""Takes to and from the formats animators exchange: one module per format, each registering itself.

- `registry`: the `Format` record, the registry, and what iterates it: `detect_format`, `load_any`,
  the formats offered (`formats`, `readable_formats`, `writable_formats`), the take panel's file
  filter (`file_filter`) and what it reads for what was picked (`exchange_file_for`);
- `take_folder`: a take folder (audio.wav, blendshapes.json, take.json);
- `a2f`: NVIDIA Audio2Face blendshape JSON;
- `livelink`: Live Link Face CSV;
- `rhubarb`: Rhubarb Lip Sync JSON;
- `files`: what they share: the error, JSON reading, and the WAV that goes with a file.
A new format is one new module in this folder (see registry.py), or a plugin's entry point.

Pure Python + numpy (no bpy), so the add-on and the command line share it.
"""

from __future__ import annotations

from .a2f import a2f_document, map_named_weights, read_a2f, read_a2f_take, take_a2f_bytes, write_a2f
from .files import (A2F_EXPORT_SUFFIX, ExchangeFormatError, find_audio, load_wav, missing_audio_message, paired_audio,
                    read_json)
from .livelink import (LIVELINK_BLENDSHAPES, LIVELINK_HEADER, LIVELINK_ROTATIONS, format_timecode, infer_livelink_fps,
                       livelink_csv_text, livelink_name, parse_timecode, read_livelink_csv, timecode_seconds,
                       write_livelink_csv)
from .registry import (ENTRY_POINT_GROUP, Format, detect_format, exchange_file_for, file_filter, formats, get_format,
                       load_any, plugin_errors, readable_formats, register_format, unregister_format,
                       writable_formats)
from .rhubarb import (PHONEME_SHAPES, RHUBARB_SHAPES, SHAPE_POSES, curves_from_cues, frame_shapes, kept_cues,
                      phoneme_shape, read_rhubarb_json, rhubarb_cue_list, rhubarb_cues, rhubarb_json,
                      write_rhubarb_json)
from ..face import lip_gap  # noqa: F401 (the lip gap the Rhubarb shapes are read with)
