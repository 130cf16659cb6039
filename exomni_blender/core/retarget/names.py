"""Shape-key names compared loosely: one preset entry serves every spelling of the same key.

Case, separators and camelCase are ignored, a side word at either end (Left/Right, _L/_R, .L/.R, L_/R_)
becomes the side, counters at either end are dropped, and a namespace prefix that most of the rig's
keys share ("CC_Base_Body.", "Head_") is looked behind. `RigNames.lookup` says how well a name matched
(EXACT > FOLDED > SQUASHED > STRIPPED), which detection uses for ranking.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s_.\-:|/\\,;]+")
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")
_SIDE_WORDS = {"l": "L", "left": "L", "r": "R", "right": "R"}
_QUADRANTS = {"ul", "ur", "dl", "dr"}  # MetaHuman's upper/lower + side suffixes (mouthFunnelUL)

# Quality of a match, used for ranking: exact spelling, same words and side, same letters when the
# rig's names lost their word boundaries ("mouthsmileleft"), same after a namespace prefix.
EXACT, FOLDED, SQUASHED, STRIPPED = 1.0, 0.98, 0.95, 0.9


@dataclass(frozen=True)
class NameKey:
    """A name reduced to what matters for matching: its words (lower case) and its side (L, R or '')."""

    words: tuple
    side: str = ""

    def __str__(self) -> str:
        return " ".join(self.words) + (f" [{self.side}]" if self.side else "")


def name_words(name: str) -> list:
    """The words of a name, lower case: separators and camelCase split, counters at either end dropped."""
    words = []
    for piece in _SEPARATORS.split(str(name)):
        if piece:
            words.extend(_piece_words(piece))
    # Version counters and suffixes such as "A01_" or "_div2" do not name the shape.
    while len(words) > 1 and any(c.isdigit() for c in words[-1]):
        words.pop()
    while len(words) > 1 and any(c.isdigit() for c in words[0]):
        words.pop(0)
    return words


def _piece_words(piece: str) -> list:
    found = _WORDS.findall(piece) if piece.isascii() else []
    if not found or sum(map(len, found)) < len(piece) // 2:
        return [piece.lower()]  # non-Latin names stay whole
    words = []
    for word in found:
        if word.isupper() and word.lower() in _QUADRANTS:
            words.extend([word[0].lower(), word[1].lower()])  # side becomes its own word
        else:
            words.append(word.lower())
    return words


def fold_words(words) -> NameKey:
    """NameKey of a word list: a side word at either end becomes the side."""
    words = list(words)
    side = ""
    if len(words) > 1 and words[-1] in _SIDE_WORDS:
        side = _SIDE_WORDS[words.pop()]
    elif len(words) > 1 and words[0] in _SIDE_WORDS:
        side = _SIDE_WORDS[words.pop(0)]
    return NameKey(tuple(words), side)


def name_key(name: str) -> NameKey:
    """How a name is compared: `name_key("Mouth_Smile.L") == name_key("mouthSmileLeft")`."""
    return fold_words(name_words(name))


def _squashed_forms(key: NameKey) -> tuple:
    """Spellings of a wanted name with word boundaries gone, side word in any of its places."""
    joined = "".join(key.words)
    if not key.side:
        return (joined,)
    letter, word = key.side.lower(), {"L": "left", "R": "right"}[key.side]
    return (joined + letter, joined + word, letter + joined, word + joined)


class RigNames:
    """A rig's shape-key names indexed for loose lookup. The reference key (Basis) is left out by the caller."""

    def __init__(self, names):
        self.names = list(dict.fromkeys(str(n) for n in names if n))
        self._exact = {n: n for n in self.names}
        self._lower = {}
        for n in self.names:
            self._lower.setdefault(n.lower(), []).append(n)
        word_lists = {n: name_words(n) for n in self.names}
        self.namespaces = self._find_namespaces(word_lists)
        self._folded, self._squashed, self._stripped = {}, {}, {}
        for n, words in word_lists.items():
            self._folded.setdefault(fold_words(words), []).append(n)
            self._squashed.setdefault("".join(words), []).append(n)
            for prefix in self.namespaces:
                if len(words) > len(prefix) and tuple(words[:len(prefix)]) == prefix:
                    rest = words[len(prefix):]
                    for key in (fold_words(rest), "".join(rest)):
                        if n not in self._stripped.setdefault(key, []):
                            self._stripped[key].append(n)

    def _find_namespaces(self, word_lists) -> list:
        """Leading word runs (up to 6 words) that at least half of the names (and 3 or more) start with."""
        counts = {}
        for words in word_lists.values():
            for k in range(1, min(6, len(words) - 1) + 1):
                prefix = tuple(words[:k])
                counts[prefix] = counts.get(prefix, 0) + 1
        need = max(3, math.ceil(0.5 * len(self.names)))
        found = [p for p, c in counts.items() if c >= need]
        return sorted(found, key=len)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name) -> bool:
        return name in self._exact

    def lookup(self, name: str):
        """(rig name, quality, other candidates) for a wanted name, or (None, 0.0, []) when absent."""
        if name in self._exact:
            return name, EXACT, []
        same = self._lower.get(name.lower())
        if same:
            return same[0], EXACT, same[1:]
        key = name_key(name)
        hits = self._folded.get(key)
        if hits:
            return hits[0], FOLDED, hits[1:]
        squashed = _squashed_forms(key)
        for table, keys, quality in ((self._squashed, squashed, SQUASHED),
                                     (self._stripped, (key, *squashed), STRIPPED)):
            for k in keys:
                hits = table.get(k)
                if hits:
                    return hits[0], quality, hits[1:]
        return None, 0.0, []


def key_names_of(obj_or_names) -> list:
    """Shape-key names of a Blender object, mesh or Key (reference key left out), or a list of names."""
    if obj_or_names is None:
        return []
    if isinstance(obj_or_names, RigNames):
        return list(obj_or_names.names)
    if isinstance(obj_or_names, (str, bytes)):
        raise TypeError("expected an object with shape keys or a list of key names, not a single string")
    if hasattr(obj_or_names, "type") and hasattr(obj_or_names, "data"):  # an Object (an armature has no keys)
        key = getattr(obj_or_names.data, "shape_keys", None)
    elif hasattr(obj_or_names, "shape_keys"):  # a Mesh
        key = obj_or_names.shape_keys
    else:  # a Key, or plain names
        key = obj_or_names
    if key is None:
        return []
    blocks = getattr(key, "key_blocks", None)
    if blocks is not None:
        reference = getattr(key, "reference_key", None)
        ref_name = reference.name if reference is not None else None
        return [kb.name for kb in blocks if kb.name != ref_name]
    names = [str(n) for n in obj_or_names]
    return [n for n in names if n.lower() != "basis"]


def as_rig(obj_or_names):
    """RigNames for an object or names; None stays None (the preset's own names are written)."""
    if obj_or_names is None:
        return None
    if isinstance(obj_or_names, RigNames):
        return obj_or_names
    return RigNames(key_names_of(obj_or_names))


def short_list(items, limit: int = 8) -> str:
    """The first few names of a list for a message, with how many more there are."""
    items = list(items)
    text = ", ".join(items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")
