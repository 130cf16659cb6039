"""What a retarget did on one rig: what landed where, and what found no home."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arkit import ARKIT_52
from .names import short_list


@dataclass
class RetargetReport:
    """What landed where: channels with no target on the rig and preset keys missing from it."""

    preset: str
    landed: dict = field(default_factory=dict)  # rig key -> source description
    channel_keys: dict = field(default_factory=dict)  # ARKit channel -> rig keys it raises
    channels_landed: list = field(default_factory=list)
    unmapped_channels: list = field(default_factory=list)  # ARKit channels that drive nothing on this rig
    missing_keys: list = field(default_factory=list)  # preset keys not found on the rig
    fallbacks_used: list = field(default_factory=list)
    renamed: dict = field(default_factory=dict)  # preset key -> rig key, where the spelling differs
    ambiguous: dict = field(default_factory=dict)  # preset key -> other rig keys it also matched
    shared_keys: list = field(default_factory=list)  # rig keys two targets reached (the larger value wins)
    lost_motion: list = field(default_factory=list)  # unmapped channels that move in this take
    key_coverage: float = 0.0  # share of the preset's (non-fallback) keys found on the rig
    source: str = "curves"  # "curves" (ARKit mixes) or "phonemes" (visemes keyed from the phoneme timeline)

    @property
    def channel_coverage(self) -> float:
        return len(self.channels_landed) / len(ARKIT_52)

    def lines(self) -> list:
        out = [f"{self.preset}: {len(self.landed)} keys driven, {len(self.channels_landed)}/52 channels land, "
               f"{self.key_coverage:.0%} of the preset's keys on the rig"]
        if self.source == "phonemes":
            out.append("Visemes keyed from the take's phoneme timeline.")
        if self.lost_motion:
            out.append(f"Moving channels with no key on this rig: {short_list(self.lost_motion)}")
        if self.unmapped_channels:
            out.append(f"Channels with no target: {short_list(self.unmapped_channels)}")
        if self.missing_keys:
            out.append(f"Preset keys missing on the rig: {short_list(self.missing_keys)}")
        if self.fallbacks_used:
            out.append(f"Fallback keys used: {short_list(self.fallbacks_used)}")
        if self.ambiguous:
            out.append("Several rig keys fit: " + "; ".join(f"{k} -> {v}" for k, v in list(self.ambiguous.items())[:4]))
        if self.shared_keys:
            out.append(f"Keys reached by two targets (larger value kept): {short_list(self.shared_keys)}")
        return out

    def summary(self) -> str:
        return "\n".join(self.lines())

    # keying.key_take reads reports as mappings, like its identity map's {"missing", "mapped", "unused"}.
    def get(self, name: str, default=None):
        views = {"missing": self.unmapped_channels, "mapped": self.channel_keys, "unused": self.missing_keys}
        if name in views:
            return views[name]
        return getattr(self, name, default)

    def __getitem__(self, name: str):
        value = self.get(name, KeyError)
        if value is KeyError:
            raise KeyError(name)
        return value

    def to_json(self) -> dict:
        return {"preset": self.preset, "landed": dict(self.landed), "channel_keys": dict(self.channel_keys),
                "channels_landed": list(self.channels_landed),
                "unmapped_channels": list(self.unmapped_channels), "missing_keys": list(self.missing_keys),
                "fallbacks_used": list(self.fallbacks_used), "renamed": dict(self.renamed),
                "ambiguous": {k: list(v) for k, v in self.ambiguous.items()}, "shared_keys": list(self.shared_keys),
                "lost_motion": list(self.lost_motion), "key_coverage": round(self.key_coverage, 4),
                "channel_coverage": round(self.channel_coverage, 4), "source": self.source}
