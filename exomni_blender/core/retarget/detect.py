"""Which rig family a head belongs to, from its shape-key names; never chosen silently.

Every preset is scored on the rig's keys; ties and low coverage come back with the result, and
`detect(...).reason` says why nothing was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .files import load_presets
from .names import RigNames, key_names_of
from .preset import Preset

# Detection thresholds (scores are in [0, 1]; see `detect`).
ACCEPT_SCORE = 0.3  # below this no preset is chosen
CONFIDENT_COVERAGE = 0.6  # a chosen preset with less key coverage than this carries a warning
TIE_MARGIN = 0.03  # two presets closer than this are a tie
MIN_MATCHED_KEYS = 3  # a preset needs at least this many of its keys on the rig


@dataclass
class Candidate:
    preset: Preset
    score: float
    coverage: float  # share of the preset's keys found (quality-weighted)
    matched_keys: int  # distinct rig keys the preset reaches
    signature_hits: int
    explained: float  # share of the rig's keys the preset reaches
    primary_keys: frozenset = frozenset()  # rig keys its non-fallback targets reach
    complete: bool = False  # every target of the preset, fallbacks included, is on the rig
    fallback_keys: int = 0  # rig keys only its fallback targets reach

    def adds_only_fallbacks_to(self, other: "Candidate") -> bool:
        """Whether this preset writes the keys a complete `other` writes, plus fallbacks only."""
        return (other.complete and other.fallback_keys == 0 and self.fallback_keys > 0
                and bool(other.primary_keys) and other.primary_keys == self.primary_keys)

    def describe(self) -> str:
        return f"{self.preset.name} (score {self.score:.2f}, {self.coverage:.0%} of its keys, {self.matched_keys} rig keys)"


@dataclass
class Detection:
    """The outcome of ranking every preset on a rig: the choice (or None), why, and what to watch."""

    preset: Preset | None
    ranking: list
    reason: str
    warnings: list = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.ranking[0].score if self.ranking and self.preset is not None else 0.0

    def lines(self) -> list:
        return [self.reason, *self.warnings]


def match_score(preset: Preset, rig: RigNames) -> Candidate:
    """How well a preset explains a rig's keys (see `detect`)."""
    res = preset.resolve(rig)
    primary = [i for i, t in enumerate(preset.entries) if not t.fallback]
    fallbacks = [i for i, t in enumerate(preset.entries) if t.fallback]

    def weighted(indices):
        return sum(res.found[i][1] for i in indices if i in res.found)

    cov = weighted(primary) / len(primary) if primary else 0.0
    fcov = weighted(fallbacks) / len(fallbacks) if fallbacks else 0.0
    effective = max(cov, 0.9 * fcov)
    precision = weighted(range(len(preset.entries))) / len(preset.entries)
    claimed = {res.found[i][0] for i in res.found}
    explained = len(claimed) / len(rig) if len(rig) else 0.0
    sig_hits = sum(1 for s in preset.signature if rig.lookup(s)[0] is not None)
    if preset.signature:
        need = min(3, len(preset.signature))
        factor = 0.5 + 0.5 * min(1.0, sig_hits / need)
    else:
        factor = 1.0
    score = factor * (0.55 * effective + 0.15 * precision + 0.3 * explained)
    coverage = cov if cov >= 0.9 * fcov else fcov
    primary_keys = frozenset(res.found[i][0] for i in primary if i in res.found)
    return Candidate(preset, round(score, 4), coverage, len(claimed), sig_hits, explained, primary_keys,
                     complete=not res.missing, fallback_keys=len(claimed - primary_keys))


def detect(obj_or_key_names, presets=None) -> Detection:
    """Rank presets by how well the rig's shape-key names match and choose the best, or say why not.

    The score mixes the preset's key coverage (quality-weighted: exact spelling > loose spelling >
    behind a namespace prefix), the share of the rig's keys it explains, and whether its signature
    names (what identifies the family) are present. No preset is chosen below ACCEPT_SCORE, with fewer
    than MIN_MATCHED_KEYS keys, or when the runner-up is within TIE_MARGIN (unless the leader is a user
    preset and the runner-up a built-in one: a user's edit of a family wins over the original).
    """
    names = key_names_of(obj_or_key_names)
    presets = load_presets() if presets is None else list(presets)
    if not presets:
        return Detection(None, [], "No retarget presets were found; check the presets folder.")
    if not names:
        return Detection(None, [], "The object has no shape keys to match (a bone-driven face needs "
                                   "exomni_blender.blender.bone_face instead).")
    rig = RigNames(names)
    ranking = sorted((match_score(p, rig) for p in presets),
                     key=lambda c: (-c.score, c.preset.user is False, c.preset.id))
    ranking = _complete_set_first(ranking)
    best = ranking[0]
    if best.score < ACCEPT_SCORE or best.matched_keys < MIN_MATCHED_KEYS:
        sample = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        reason = (f"No preset fits these {len(names)} shape keys ({sample}): the closest, {best.describe()}, "
                  f"is below the {ACCEPT_SCORE:.2f} needed. Pick a preset in the retarget panel or create one "
                  "from this rig.")
        return Detection(None, ranking, reason)
    warnings = []
    if len(ranking) > 1:
        tie = _tie_with_runner_up(best, ranking[1], warnings)
        if tie is not None:
            return Detection(None, ranking, tie)
    if best.coverage < CONFIDENT_COVERAGE:
        warnings.append(f"Low coverage: only {best.coverage:.0%} of {best.preset.name}'s keys are on this rig; "
                        "check the channels with no target.")
    return Detection(best.preset, ranking, f"Detected {best.describe()}.", warnings)


def _complete_set_first(ranking: list) -> list:
    """The ranking with a complete preset moved first when the leader's own keys are exactly its keys.

    A Ready Player Me head carries the 52 ARKit keys and 15 visemes: the Ready Player Me preset
    writes the same 52 keys as the ARKit preset and adds only fallbacks (the visemes, used only when
    asked), so the complete ARKit set is the plain answer and no tie is reported.
    """
    best = ranking[0]
    for other in ranking[1:]:
        if best.adds_only_fallbacks_to(other) and other.preset.user == best.preset.user:
            return [other, best] + [c for c in ranking[1:] if c is not other]
    return ranking


def _tie_with_runner_up(best: Candidate, runner: Candidate, warnings: list):
    """The reason to choose nothing when the runner-up ties the leader, else None (warnings filled in)."""
    if runner.adds_only_fallbacks_to(best):
        return None  # the runner-up writes the same keys and adds only fallbacks: no real choice
    if best.score - runner.score < TIE_MARGIN:
        if best.preset.user and not runner.preset.user:
            warnings.append(f"The user preset {best.preset.name} ties with {runner.preset.name}; using the "
                            "user preset.")
            return None
        return (f"Ambiguous rig: {best.describe()} and {runner.describe()} fit equally well. "
                "Choose one in the retarget panel.")
    if best.score - runner.score < 2 * TIE_MARGIN:
        warnings.append(f"Close runner-up: {runner.describe()}.")
    return None


def detect_preset(obj_or_key_names, presets=None) -> Preset | None:
    """The preset that best fits a rig's shape keys, or None (call `detect` for the reason)."""
    return detect(obj_or_key_names, presets).preset
