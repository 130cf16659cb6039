"""How a line is delivered: parentheticals such as (whispering), (shouting), (quickly) become
volume, pitch, rate and intensity, applied where each belongs:

- rate and pitch go into the take request (the engine speaks faster, higher); a mood's voice is
  the engine's to apply, from the mood alone (cues naming a mood add no rate or pitch of their own);
- a whisper switches the eSpeak voice to its whisper variant;
- volume becomes the gain of the line's audio strip in the scene (the take's own audio stays clean);
- intensity scales the take's expression around rest (a shout opens wider, a whisper moves less);
  blinks are left alone;
- a mood ("(angrily)", "(happily)", "(sadly)", ...) goes into the take request with its intensity,
  so the engine shows it on the face and in the voice (`exomni_blender.core.face.MOODS`); when two
  parentheticals name moods, the first wins.

Parentheticals that are not about delivery ("beer raised", "in Vietnamese") change nothing.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from exomni_blender.core.face import mood_curves, mood_of, scale_intensity

# Each cue word (matched as a word prefix, so "whisper" also matches "whispering", "whispered")
# with the factors it multiplies: volume, pitch, rate, intensity; and whether it whispers.
# A cue that names a mood (angr, sad, happ, ...) leaves pitch and rate at 1: the mood's own voice
# (`core.face.MOOD_VOICE`, applied by the engine at the mood's intensity) is the one place that
# decides how a mood sounds, so "(angrily)" raises rate and pitch once, not twice.
_CUES: dict[str, tuple[float, float, float, float, bool]] = {
    "whisper": (0.35, 1.0, 0.95, 0.6, True),
    "hush": (0.4, 1.0, 0.95, 0.6, True),
    "under his breath": (0.4, 1.0, 1.0, 0.6, True),
    "under her breath": (0.4, 1.0, 1.0, 0.6, True),
    "under their breath": (0.4, 1.0, 1.0, 0.6, True),
    "shout": (1.6, 1.15, 1.05, 1.4, False),
    "yell": (1.6, 1.15, 1.05, 1.4, False),
    "scream": (1.7, 1.25, 1.1, 1.5, False),
    "loud": (1.4, 1.05, 1.0, 1.25, False),
    "quick": (1.0, 1.0, 1.3, 1.0, False),
    "fast": (1.0, 1.0, 1.3, 1.0, False),
    "rapid": (1.0, 1.0, 1.35, 1.0, False),
    "hurried": (1.0, 1.0, 1.25, 1.05, False),
    "slow": (1.0, 0.97, 0.75, 0.95, False),
    "deliberate": (1.0, 1.0, 0.8, 1.0, False),
    "drawl": (1.0, 0.97, 0.75, 1.0, False),
    "angr": (1.25, 1.0, 1.0, 1.3, False),
    "furious": (1.35, 1.0, 1.0, 1.4, False),
    "annoyed": (1.1, 1.0, 1.0, 1.15, False),
    "soft": (0.6, 1.0, 0.95, 0.8, False),
    "quiet": (0.55, 1.0, 0.95, 0.8, False),
    "gentl": (0.7, 1.0, 0.95, 0.85, False),
    "sad": (0.85, 1.0, 1.0, 0.8, False),
    "excit": (1.15, 1.0, 1.0, 1.2, False),
    "happ": (1.05, 1.0, 1.0, 1.1, False),
    "nervous": (0.9, 1.0, 1.0, 0.95, False),
}
_AMPLIFIERS = ("very", "really", "extremely")
_SOFTENERS = ("slightly", "a bit", "somewhat", "mildly", "faintly")

# Cue word prefixes that name a mood (matched like the cues above).
_MOOD_CUES: dict[str, str] = {
    "happ": "happy", "cheer": "happy", "joy": "happy", "smil": "happy", "laugh": "happy", "delight": "happy",
    "glad": "happy", "excit": "happy", "warm": "happy",
    "sad": "sad", "sorrow": "sad", "tear": "sad", "crying": "sad", "glum": "sad", "mournful": "sad",
    "wistful": "sad", "dejected": "sad", "gloom": "sad",
    "angr": "angry", "furious": "angry", "irritat": "angry", "annoyed": "angry", "rage": "angry",
    "enraged": "angry", "snarl": "angry", "seeth": "angry",
    "surpris": "surprised", "astonish": "surprised", "amazed": "surprised", "shock": "surprised",
    "stunned": "surprised",
    "afraid": "afraid", "fear": "afraid", "scared": "afraid", "terrif": "afraid", "nervous": "afraid",
    "anxious": "afraid", "panic": "afraid", "trembl": "afraid",
    "disgust": "disgusted", "revolted": "disgusted", "sneer": "disgusted", "contempt": "disgusted",
}
MOOD_INTENSITY = {"plain": 0.7, "amplified": 1.0, "softened": 0.4}

# Limits that keep every combination speakable (eSpeak's rate and pitch ranges are wider).
LIMITS = {"volume": (0.1, 2.0), "pitch": (0.5, 1.6), "rate": (0.5, 2.0), "intensity": (0.3, 1.8)}


@dataclass(frozen=True)
class Delivery:
    volume: float = 1.0  # audio gain
    pitch: float = 1.0  # multiplies the request's pitch
    rate: float = 1.0  # multiplies the request's rate
    intensity: float = 1.0  # expression scale around rest
    whisper: bool = False
    cues: tuple = ()  # the parenthetical words that set it, for the summary
    mood: str = "neutral"  # the face and voice's mood (core.face.MOOD_NAMES)
    mood_intensity: float = 0.0  # 0..1; 0 with the neutral mood

    @property
    def neutral(self) -> bool:
        return (self.volume, self.pitch, self.rate, self.intensity, self.whisper, self.mood) == (
            1.0, 1.0, 1.0, 1.0, False, "neutral")

    def to_json(self) -> dict:
        d = asdict(self)
        d["cues"] = list(self.cues)
        return d

    def settings(self) -> dict:
        """What changes the take (hashed for the take cache); the volume is applied in the scene."""
        out = {"pitch": round(self.pitch, 4), "rate": round(self.rate, 4),
               "intensity": round(self.intensity, 4), "whisper": self.whisper}
        if self.mood != "neutral":  # neutral lines keep the cache keys they had before moods
            out.update(mood=self.mood, mood_intensity=round(self.mood_intensity, 4))
        return out


def delivery_for(parentheticals) -> Delivery:
    """The delivery asked for by a line's parentheticals (neutral when none is about delivery)."""
    factors = {"volume": 1.0, "pitch": 1.0, "rate": 1.0, "intensity": 1.0}
    whisper = False
    cues: list[str] = []
    for paren in parentheticals:
        text = paren.lower()
        words = re.findall(r"[a-z']+", text)
        for cue, (volume, pitch, rate, intensity, whispers) in _CUES.items():
            if " " in cue:
                hit = cue in " ".join(words)
                amplified = False
            else:
                positions = [i for i, w in enumerate(words) if w.startswith(cue)]
                hit = bool(positions)
                amplified = any(i > 0 and words[i - 1] in _AMPLIFIERS for i in positions)
            if not hit:
                continue
            power = 1.5 if amplified else 1.0
            for key, value in zip(("volume", "pitch", "rate", "intensity"), (volume, pitch, rate, intensity)):
                factors[key] *= value ** power
            whisper |= whispers
            cues.append(cue)
    for key, (lo, hi) in LIMITS.items():
        factors[key] = float(min(hi, max(lo, factors[key])))
    mood, mood_intensity = mood_for(parentheticals)
    return Delivery(whisper=whisper, cues=tuple(cues), mood=mood, mood_intensity=mood_intensity,
                    **{k: round(v, 4) for k, v in factors.items()})


def mood_for(parentheticals) -> tuple[str, float]:
    """(mood, intensity 0..1) named by the first parenthetical that names one; ("neutral", 0) if none.

    "very"/"really"/"extremely" before the word give the full mood, "slightly"/"a bit" a hint of it."""
    for paren in parentheticals:
        words = re.findall(r"[a-z']+", paren.lower())
        for i, word in enumerate(words):
            mood = next((m for cue, m in _MOOD_CUES.items() if word.startswith(cue)), None)
            if mood is None:
                continue
            before = " ".join(words[max(0, i - 2):i])
            if i > 0 and words[i - 1] in _AMPLIFIERS:
                level = "amplified"
            elif any(before.endswith(s) for s in _SOFTENERS):
                level = "softened"
            else:
                level = "plain"
            return mood, MOOD_INTENSITY[level]
    return "neutral", 0.0


def whisper_voice(voice: str | None, default: str = "en-us") -> str:
    """The eSpeak voice with its timbre variant replaced by the whisper variant."""
    base = (voice or default).split("+", 1)[0]
    return f"{base}+whisper"


def apply_to_request(request, delivery: Delivery):
    """Set rate, pitch and voice of a TakeRequest for this delivery (in place; returns it)."""
    request.rate = float(request.rate) * delivery.rate
    request.pitch = float(request.pitch) * delivery.pitch
    if delivery.whisper:
        request.voice = whisper_voice(request.voice)
    if delivery.mood != "neutral":
        request.mood, request.intensity = delivery.mood, float(delivery.mood_intensity)
    return request


def apply_to_take(take, delivery: Delivery):
    """Scale the take's performance by the delivery's intensity (in place; returns it).

    The mood's layer is kept as the take records it (its strength is the mood's intensity), so the
    Blender side can still take it apart from the rest and replace it."""
    if abs(delivery.intensity - 1.0) < 1e-6:
        return take
    weights = np.asarray(take.weights, np.float32)
    mood, mood_intensity = mood_of(take.meta)
    layer = mood_curves(weights.shape[0], float(take.fps), mood, mood_intensity)
    scaled = scale_intensity(np.clip(weights - layer, 0.0, 1.0), delivery.intensity)
    take.weights = np.clip(scaled + layer, 0.0, 1.0).astype(np.float32)
    take.meta = {**take.meta, "delivery": delivery.to_json()}
    return take
