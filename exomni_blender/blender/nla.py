"""The one NLA placement policy: where a take, an idle layer or the animator's own Action goes.

Rules, the same for shape keys, face rigs and dialogue scenes:
- Nothing is overwritten. An Action active on an ID is pushed down into the NLA before another
  becomes active; one a strip already plays is only unassigned.
- ExOmni's own Actions share tracks: a strip goes on the lowest unlocked, unmuted track of its kind
  (tracks named after the kind: "ExOmni takes", "ExOmni dialogue", "ExOmni mouth", ...) where it
  overlaps no strip; else a new track of that kind goes on top. The animator's own Action gets a
  track named after it and keeps its extrapolation.
- An ExOmni strip plays over its own frames only (extrapolation NOTHING), so earlier takes and
  whatever lies below play outside it.
"""

from __future__ import annotations

from contextlib import contextmanager

from . import compat
from ..core.errors import ExOmniError

TAKE_TRACK = "ExOmni takes"
TAKE_MARK = "exomni_text"  # a custom property every keyed take carries


class NlaError(ExOmniError, ValueError):
    """An animation stack that cannot take a new strip; the message says what to do."""


@contextmanager
def new_take_action(name: str, animated: str, error=ExOmniError):
    """A new Action to key a take into, made active inside the block. If Blender refuses to animate
    the owner (a linked rig, a library override), the unused Action is removed and `error` says how to
    make the owner editable; nothing half-made is left behind."""
    action = compat.new_action(name)
    try:
        yield action
    except (RuntimeError, TypeError, AttributeError) as exc:
        if action.users == 0:
            import bpy

            bpy.data.actions.remove(action)
        raise error(f"Blender refused to animate '{animated}': {exc}. If it is linked or a library override, "
                    "make it editable (Object > Library Override > Make Editable)") from exc


def is_take(action) -> bool:
    return action is not None and TAKE_MARK in action.keys()


def anim_data(owner):
    """The owner's animation data (created when missing), refused while it is in NLA tweak mode."""
    ad = owner.animation_data or owner.animation_data_create()
    if ad.use_tweak_mode:
        who = getattr(owner, "user", None) or owner
        raise NlaError(f"the animation of '{getattr(who, 'name', owner.name)}' is in NLA tweak mode; "
                       "leave it (Tab in the NLA editor) and try again")
    return ad


def push_down_active(owner, kind: str = TAKE_TRACK):
    """Move the owner's active Action into the NLA (takes onto `kind` tracks); returns its strip or None."""
    ad = owner.animation_data
    if ad is None or ad.action is None:
        return None
    anim_data(owner)
    previous = ad.action
    strip = None
    if not any(s.action == previous for track in ad.nla_tracks for s in track.strips):
        start = float(previous.frame_range[0])
        if is_take(previous):
            strip, _ = place(owner, previous, start, kind)
        else:
            strip, _ = place(owner, previous, start, previous.name, own_track=True, extrapolation=None)
    ad.action = None
    return strip


def activate(owner, action):
    """Make `action` the owner's active Action, the previous one pushed down first; returns the AnimData.

    While earlier strips lie in the NLA, the new Action plays over its own frames only, so they
    still play outside it."""
    push_down_active(owner)
    ad = compat.assign_action(owner, action)
    if len(ad.nla_tracks):
        ad.action_extrapolation = "NOTHING"
    return ad


def place(owner, action, start: float, kind: str, *, name: str | None = None, own_track: bool = False,
          extrapolation: str | None = "NOTHING", blend_type: str = "REPLACE", influence: float | None = None):
    """A strip playing `action` from frame `start` on a track of `kind`; returns (strip, track)."""
    ad = anim_data(owner)
    first, last = (float(v) for v in action.frame_range)
    end = start + (last - first)
    track = None if own_track else _free_track(ad, kind, start, end)
    if track is None:
        count = sum(1 for t in ad.nla_tracks if t.name.startswith(kind))
        track = ad.nla_tracks.new()
        track.name = kind if count == 0 else f"{kind} {count + 1}"
    strip = compat.new_nla_strip(track, name or action.name, start, action, owner)
    if name:
        strip.name = name
    if extrapolation is not None:
        strip.extrapolation = extrapolation
    strip.blend_type = blend_type
    if influence is not None:
        strip.use_animated_influence = False
        strip.influence = float(influence)
    return strip, track


def tracks_of(owner, kind: str) -> list:
    ad = owner.animation_data
    return [] if ad is None else [t for t in ad.nla_tracks if t.name.startswith(kind)]


def mute_tracks(owner, kinds) -> None:
    """Mute every track of these kinds (an earlier run's layers stay, silent)."""
    for kind in kinds:
        for track in tracks_of(owner, kind):
            track.mute = True


def remove_strips(owner, action) -> int:
    """Remove every strip that plays `action`, and an ExOmni track that it leaves empty; returns how many."""
    ad = owner.animation_data
    removed = 0
    if ad is None:
        return 0
    for track in list(ad.nla_tracks):
        strips = [s for s in track.strips if s.action == action]
        for strip in strips:
            track.strips.remove(strip)
            removed += 1
        if strips and not len(track.strips) and track.name.startswith("ExOmni"):
            ad.nla_tracks.remove(track)
    return removed


def _free_track(ad, kind: str, start: float, end: float):
    for track in ad.nla_tracks:
        if (track.name.startswith(kind) and not track.lock and not track.mute
                and all(end < s.frame_start or start > s.frame_end for s in track.strips)):
            return track
    return None
