"""Retargeting ARKit-52 curves onto a rig's own shape keys, through presets (one TOML file per rig family).

Pure logic: no bpy, so the backend's `exomni retarget` uses the same code as the add-on. One module
per concept:

- names.py    loose name matching (case, separators, camelCase, sides, namespace prefixes)
- preset.py   the preset model: targets, parsing and validation (toml_writer.py writes it back)
- apply.py    a preset on one rig: where targets land and the rig's curves; report.py the report
- detect.py   which family a rig belongs to, with ties and low coverage reported
- propose.py  a first map for a rig without a preset
- files.py    built-in and user preset folders, load, save, cache
- visemes.py  viseme curves from a take's phoneme timeline, for viseme rigs
- rig_weights.py  a take and a preset in, the rig's curves out (the keying path's one call)
"""

from .apply import Resolution, rig_curves
from .detect import (ACCEPT_SCORE, CONFIDENT_COVERAGE, MIN_MATCHED_KEYS, TIE_MARGIN, Candidate, Detection, detect,
                     detect_preset, match_score)
from .errors import PresetError
from .files import (PRESET_SUFFIX, PRESETS_ENV, USER_PRESET_FOLDER, builtin_preset_dirs, find_preset, load_preset,
                    load_presets, save_user_preset, user_preset_dirs)
from .names import EXACT, FOLDED, SQUASHED, STRIPPED, NameKey, RigNames, fold_words, key_names_of, name_key, name_words
from .preset import COMBINES, CURVES, Preset, Target
from .propose import propose_preset
from .report import RetargetReport
from .rig_weights import MIN_VISEME_KEYS, rig_weights, viseme_keys
from .toml_writer import dumps_toml
from .visemes import MAX_ACTIVE, VISEME_SETS, VISEMES, phoneme_visemes, viseme_curves

__all__ = [
    "ACCEPT_SCORE", "COMBINES", "CONFIDENT_COVERAGE", "CURVES", "EXACT", "FOLDED", "MIN_MATCHED_KEYS",
    "PRESETS_ENV", "PRESET_SUFFIX", "SQUASHED", "STRIPPED", "TIE_MARGIN", "USER_PRESET_FOLDER",
    "Candidate", "Detection", "NameKey", "Preset", "PresetError", "Resolution", "RetargetReport", "RigNames",
    "Target", "builtin_preset_dirs", "detect", "detect_preset", "dumps_toml", "find_preset", "fold_words",
    "key_names_of", "load_preset", "load_presets", "match_score", "name_key", "name_words", "propose_preset",
    "rig_curves", "save_user_preset", "user_preset_dirs", "MAX_ACTIVE", "MIN_VISEME_KEYS", "VISEMES", "VISEME_SETS",
    "phoneme_visemes", "rig_weights", "viseme_curves", "viseme_keys",
]
