"""Whole characters: one take keyed on every mesh and bone of a character, in step.

Real avatars are split: a head mesh, teeth and tongue meshes with their own jaw shapes, eye meshes
with their own gaze shapes, often under an armature whose eye bones turn the eyes. Keying only the
chosen mesh leaves clenched teeth behind parted lips and a fixed stare. Here:

- `find_character(obj)` finds the character around any object chosen (a mesh, its body, its armature):
  the armature it hangs from or is deformed by (and everything under it), else the hierarchy it is part
  of, else the meshes of its collection that sit inside the same body (bounding boxes, so two
  characters side by side in one collection stay apart). Each mesh whose shape keys take a channel of
  a take (by name, or through the retarget preset detected for it, as `keying.key_take` resolves them)
  is a part; so are the armature's eye bones, its head bone and its jaw bone.
- `check_character(obj)` lists those parts, or refuses, in the panel's words, an object with nothing a
  take can move, before any take is made.
- `key_character(obj, take)` keys them all from the one take: each mesh through `keying.key_take` (or
  `layers.key_layers`), the bones in one Action on the armature. Every Action of the take carries the
  same take id (`exomni_take_id`) and is named "ExOmni: <line> [<part>]".

Eye bones turn with the gaze channels, in the armature's frame seen as the character (facing -Y, up +Z
in the world): eyeLookOut/In at 1 turn the eye GAZE_SIDE_DEG to the side, eyeLookUp GAZE_UP_DEG up,
eyeLookDown GAZE_DOWN_DEG down (a human eye's comfortable range; ARKit's 1 is a full look). An eye bone
that another bone tracks (Rigify's eye.L / eye.R targets) is moved instead of turned, by as much as
turns the tracking eye the same angle. An eye bone that deforms an eye mesh which has its own gaze
shapes is left still (the shapes turn that eye; both would turn it twice), and the jaw bone is keyed
only when no mesh opens the jaw with a shape key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from dataclasses import dataclass, field

import bpy
import numpy as np

from . import nla
from .fcurves import write_fcurves
from .keying import KeyingError, _action_name, _scene_of, key_take, resolve_targets
from ..core.arkit import INDEX
from ..core.errors import ExOmniError
from ..core.retarget.names import name_words

GAZE_SIDE_DEG = 25.0
GAZE_UP_DEG = 20.0
GAZE_DOWN_DEG = 25.0

# Eye bones of common families, most specific first (compared loosely: case and separators ignored):
# Ready Player Me / VRM / Mixamo, Character Creator, Rigify / MakeHuman / metarig, Daz, MetaHuman, VRoid.
EYE_BONE_NAMES = {
    "left": ("LeftEye", "CC_Base_L_Eye", "eye.L", "lEye", "FACIAL_L_Eye", "J_Adj_L_FaceEye"),
    "right": ("RightEye", "CC_Base_R_Eye", "eye.R", "rEye", "FACIAL_R_Eye", "J_Adj_R_FaceEye"),
}
_SIDE_WORDS = {"left": {"l", "left"}, "right": {"r", "right"}}
_NOT_AN_EYE = {"brow", "lid", "lids", "lash", "lashes", "socket", "master", "end", "tip", "nub", "highlight"}
_HELPER_PREFIXES = ("mch", "org", "def", "tweak", "vis", "prop")
_TRACKING = {"DAMPED_TRACK", "TRACK_TO", "LOCKED_TRACK", "IK"}

MESH, EYE_BONE, HEAD_BONE, JAW_BONE = "mesh", "eye bone", "head bone", "jaw bone"
# A part the user left out (the Generate panel's Keyed list): a custom property on the mesh object or
# the pose bone, so the choice stays with the character in the .blend and every path that keys it
# (Generate, Re-key, dialogue scenes) honours it.
LEFT_OUT = "exomni_left_out"
LEFT_OUT_NOTE = "left out (the Generate panel's Keyed list)"
TAKE_ID = "exomni_take_id"  # the custom property every Action of one take shares
PART = "exomni_part"


class CharacterError(ExOmniError, ValueError):
    """A character that a take cannot move; the message says what to do, in the panel's words."""


@dataclass
class Part:
    """One thing a take moves: a mesh's shape keys, or a bone of the armature."""
    kind: str
    object_name: str
    bone: str = ""
    side: str = ""  # eye bones: "left" / "right"
    channels: tuple = ()  # meshes: the shape keys the take drives
    note: str = ""  # why a part found is not keyed ("" when it is)
    name: str = ""  # its label where the bone's name is a mesh's too ("Head (bone)")

    @property
    def label(self) -> str:
        return self.name or self.bone or self.object_name


@dataclass
class Character:
    """The character around a chosen object: its armature (or None) and the parts a take can move."""
    chosen: str
    armature: str | None
    parts: list = field(default_factory=list)

    def keyable(self) -> list:
        return [p for p in self.parts if not p.note]

    def meshes(self) -> list:
        return [p for p in self.keyable() if p.kind == MESH]

    def bones(self) -> list:
        return [p for p in self.keyable() if p.kind != MESH]


@dataclass
class CharacterTake:
    """What `key_character` keyed: {part label: Action}, {part label: what it keyed}, and the rest."""
    take_id: str
    main: str  # the object that stands for the character (the take's item names it)
    actions: dict = field(default_factory=dict)
    keyed: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)  # {part label: why it was not keyed}
    missing: list = field(default_factory=list)  # ARKit channels the main mesh has no key for
    layered: object = None  # the main mesh's LayeredTake, when keyed as layers
    layers: dict = field(default_factory=dict)  # {part label: LayeredTake} of every mesh keyed as layers
    objects: dict = field(default_factory=dict)  # {part label: the object it is on}

    @property
    def main_object(self) -> str:
        return self.objects.get(self.main, self.main)

    @property
    def main_action(self):
        return self.actions.get(self.main) or next(iter(self.actions.values()), None)

    def summary(self) -> str:
        return ", ".join(self.keyed)


def _holder(part):
    """Where a part's left-out flag lives: the mesh object, or the armature's pose bone."""
    obj = bpy.data.objects.get(part.object_name)
    if obj is None or part.kind == MESH:
        return obj
    return obj.pose.bones.get(part.bone) if obj.pose is not None else None


def is_left_out(part) -> bool:
    holder = _holder(part)
    return bool(holder is not None and holder.get(LEFT_OUT, False))


def set_left_out(part, left_out: bool) -> None:
    holder = _holder(part)
    if holder is None:
        return
    if left_out:
        holder[LEFT_OUT] = True
    elif LEFT_OUT in holder:
        del holder[LEFT_OUT]


# -- finding the character -----------------------------------------------------------------------------

def find_character(obj) -> Character:
    """The character around `obj` and every part of it (keyable or found with a note why not)."""
    if obj is None:
        raise CharacterError("Pick a head in the panel (or select one), or press Add Demo Head.")
    layer = getattr(bpy.context, "view_layer", None)
    if layer is not None:  # world positions decide which loose meshes belong together: bring them up to date
        layer.update()
    armature = _armature_of(obj)
    meshes = _character_meshes(obj, armature)
    character = Character(obj.name, armature.name if armature is not None else None)
    for mesh in meshes:
        channels = mesh_channels(mesh)
        if channels:
            character.parts.append(Part(MESH, mesh.name, channels=tuple(channels)))
    if armature is not None:
        taken = {m.name for m in meshes}
        for part in _bone_parts(armature, meshes, character.meshes()):
            part.name = f"{part.bone} (bone)" if part.bone in taken else ""
            character.parts.append(part)
    # The mesh with the most keys first (the face stands for the character), the chosen one on a tie.
    character.parts.sort(key=lambda p: (p.kind != MESH, -len(p.channels), p.object_name != obj.name, p.label))
    return character


def check_character(obj) -> list:
    """The parts of `obj`'s character a take can move; CharacterError, in the panel's words, when none.

    Cheap enough to run before a take is made: nothing is keyed or changed."""
    character = find_character(obj)
    parts = character.keyable()
    if all(p.kind == HEAD_BONE for p in parts):  # a head bone alone moves only with recorded head motion
        raise CharacterError(
            f"'{obj.name}' has nothing a take can move: no ARKit shape keys on it or on the meshes of its "
            "character, and no eye or jaw bones. Select the head (the mesh with the face's shape keys), "
            "or press Add Demo Head, or give this mesh its face shapes with Make Shapes.")
    return parts


def mesh_channels(mesh) -> list:
    """The shape keys of `mesh` a take drives (by ARKit name or through its detected preset); [] if none."""
    if mesh is None or mesh.type != "MESH" or mesh.data is None:
        return []
    key = mesh.data.shape_keys
    if key is None or len(key.key_blocks) < 2:
        return []
    names = [kb.name for kb in key.key_blocks if kb != key.reference_key]
    from ..core.take import Take

    probe = Take(fps=30.0, weights=np.zeros((1, len(INDEX)), np.float32))
    targets = resolve_targets(names, probe)[0]
    return [n for n in names if n in targets]


def find_eye_bones(armature_obj) -> dict:
    """{"left": bone name, "right": bone name} of the armature's eye bones (a side may be missing)."""
    bones = [b.name for b in armature_obj.data.bones]
    loose = {" ".join(name_words(n)): n for n in reversed(bones)}
    found = {}
    for side, known in EYE_BONE_NAMES.items():
        hit = next((loose[k] for k in (" ".join(name_words(w)) for w in known) if k in loose), None)
        if hit is None:
            # Namespaced names ("mixamorig:LeftEye", "Armature_LeftEye"): the known name at the end.
            for wanted in known:
                tail = name_words(wanted)
                hit = next((n for n in bones if name_words(n)[-len(tail):] == tail
                            and name_words(n)[0] not in _HELPER_PREFIXES), None)
                if hit is not None:
                    break
        if hit is None:
            candidates = []
            for n in bones:
                words = name_words(n)
                if ("eye" in words and _SIDE_WORDS[side] & set(words) and words[0] not in _HELPER_PREFIXES
                        and not _NOT_AN_EYE & set(words)):
                    candidates.append((len(words), n))
            hit = min(candidates)[1] if candidates else None
        if hit is not None:
            found[side] = hit
    return found


def _armature_of(obj):
    if obj.type == "ARMATURE":
        return obj
    for mod in getattr(obj, "modifiers", ()):
        if mod.type == "ARMATURE" and getattr(mod, "object", None) is not None:
            return mod.object
    parent = obj.parent
    while parent is not None:
        if parent.type == "ARMATURE":
            return parent
        parent = parent.parent
    return None


def _descendants(root) -> list:
    out, stack = [], [root]
    while stack:
        o = stack.pop()
        out.append(o)
        stack.extend(o.children)
    return out


def _character_meshes(obj, armature) -> list:
    if armature is not None:
        found = _descendants(armature)
        for o in bpy.data.objects:  # meshes deformed by the armature without being its children
            if o.type == "MESH" and any(m.type == "ARMATURE" and m.object == armature for m in o.modifiers):
                found.append(o)
    elif obj.parent is not None or obj.children:
        root = obj
        while root.parent is not None:
            root = root.parent
        found = _descendants(root)
    else:
        found = _neighbours(obj)
    seen, meshes = set(), []
    for o in [obj, *found]:
        if o.type == "MESH" and o.name not in seen:
            seen.add(o.name)
            meshes.append(o)
    return meshes


def _neighbours(obj) -> list:
    """Meshes of `obj`'s collections that sit inside the same body: inside the bounding box of the
    largest mesh there whose box holds `obj`'s centre (the body or the head)."""
    pool = {o.name: o for c in obj.users_collection for o in c.objects if o.type == "MESH" and not o.parent}
    pool[obj.name] = obj
    boxes = {name: _world_box(o) for name, o in pool.items()}
    centre = boxes[obj.name].mean(axis=0)
    holders = [n for n, b in boxes.items() if _inside(centre, b)]
    anchor = max(holders, key=lambda n: float(np.prod(boxes[n][1] - boxes[n][0])), default=obj.name)
    return [pool[n] for n, b in boxes.items() if _inside(b.mean(axis=0), boxes[anchor], grow=0.1)]


def _world_box(o) -> np.ndarray:
    m = np.array([list(r) for r in o.matrix_world], np.float64)
    corners = np.array([list(c) for c in o.bound_box], np.float64)
    world = corners @ m[:3, :3].T + m[:3, 3]
    return np.stack([world.min(axis=0), world.max(axis=0)])


def _inside(point, box, grow: float = 0.0) -> bool:
    pad = (box[1] - box[0]) * grow + 1e-6
    return bool(np.all(point >= box[0] - pad) and np.all(point <= box[1] + pad))


def _bone_parts(armature, meshes, mesh_parts) -> list:
    from .bone_face import find_jaw_bone
    from .layers import find_head_bone

    parts = []
    eye_shapes = {side: [p for p in mesh_parts if _gaze_keys(p.channels, side) and _is_eye_mesh(p.channels)]
                  for side in ("left", "right")}
    for side, bone in find_eye_bones(armature).items():
        note = ""
        deformed = [p.object_name for p in eye_shapes[side]
                    if _deforms(armature, bone, bpy.data.objects[p.object_name])]
        if deformed:
            note = f"its eye mesh {deformed[0]} turns with its own gaze shapes"
        parts.append(Part(EYE_BONE, armature.name, bone=bone, side=side, note=note))
    head = find_head_bone(armature)
    if head is not None:
        parts.append(Part(HEAD_BONE, armature.name, bone=head))  # keyed when the take records head motion
    jaw = find_jaw_bone(armature)
    if jaw is not None and jaw not in {p.bone for p in parts}:
        opened = [p.object_name for p in mesh_parts if "jawOpen" in _arkit_of(p.channels)]
        parts.append(Part(JAW_BONE, armature.name, bone=jaw,
                          note=f"{opened[0]} opens the jaw with its shape keys" if opened else ""))
    return parts


def _arkit_of(channels) -> set:
    return {n for n in INDEX if any(" ".join(name_words(n)) == " ".join(name_words(c)) for c in channels)}


def _gaze_keys(channels, side) -> list:
    suffix = "Left" if side == "left" else "Right"
    return [n for n in _arkit_of(channels) if n.startswith("eyeLook") and n.endswith(suffix)]


def _is_eye_mesh(channels) -> bool:
    return all(n.startswith("eye") for n in _arkit_of(channels))


def _deforms(armature, bone, mesh) -> bool:
    return bone in mesh.vertex_groups and any(m.type == "ARMATURE" and m.object == armature for m in mesh.modifiers)


# -- keying --------------------------------------------------------------------------------------------

def key_character(obj, take, start_frame=1, *, exclude=(), take_id: str = "", layered: bool = False,
                  preset=None, tolerance=None, character: Character | None = None,
                  tracks: str | None = None) -> CharacterTake:
    """Key `take` on every part of `obj`'s character from `start_frame`, in step; returns a CharacterTake.

    obj        any object of the character: the head mesh, the body, the armature
    take       a Take at any rate (frames land at the scene's rate, as `keying.key_take` lands them)
    exclude    part labels (mesh or bone names) to leave alone, besides those the user left out
               (`is_left_out`, the Generate panel's Keyed list)
    take_id    the id the take's Actions share (`exomni_take_id`); a new one when empty
    layered    shape-key meshes as NLA layers (`layers.key_layers`) instead of one Action each
    preset     the retarget preset for the chosen mesh (None: detected per mesh)
    tolerance  as for `key_take`: None keys every frame
    tracks     with `layered`: the NLA tracks' name (`layers.key_layers`), e.g. a dialogue's own
    Raises CharacterError (nothing to key) or the keying error of the chosen mesh; a failure on another
    mesh of the character is recorded in `skipped` and the rest is keyed.
    """
    character = character or find_character(obj)
    left_out = [p for p in character.keyable() if is_left_out(p)]
    parts = [p for p in character.keyable() if p.label not in set(exclude) and p not in left_out]
    if not parts:
        check_character(obj)  # says what to do
        raise CharacterError(f"every part of '{obj.name}' was left out or excluded; nothing was keyed. Tick at "
                             "least one part in the Generate panel's Keyed list")
    result = CharacterTake(take_id=take_id or uuid.uuid4().hex[:12], main=parts[0].label)
    for p in character.parts:
        if p.note and p.label not in set(exclude):
            result.skipped[p.label] = p.note
    for p in left_out:
        result.skipped[p.label] = LEFT_OUT_NOTE
    weights = np.asarray(take.weights, np.float32)
    if weights.ndim != 2 or weights.shape[0] == 0:
        raise KeyingError("the take has no frames to key; generate it again")
    several = len(parts) > 1
    name = _action_name(take)
    head_taken = False
    mesh_parts = [p for p in parts if p.kind == MESH]
    head_target, shared = _layer_head(character, mesh_parts) if layered else (None, True)
    if layered and head_target is False:
        result.skipped["head motion"] = ("the meshes have no armature or parent to turn together and their "
                                         "origins differ; parent them to one object to key the head's turns")
    for part in mesh_parts:
        mesh = bpy.data.objects[part.object_name]
        main = part.label == result.main
        try:
            if layered:
                from .layers import key_layers

                keep_head = head_target is not False and (not shared or not head_taken)
                made = key_layers(mesh, take if keep_head else _without_head(take), start_frame=start_frame,
                                  preset=preset if mesh.name == obj.name else None,
                                  head=head_target if shared and head_target else mesh,
                                  **({"tracks": tracks} if tracks else {}))
                result.layers[part.label] = made
                head_taken = head_taken or "head" in made.actions
                actions = list(made.actions.values())
                action = made.actions.get("mouth") or actions[0]
                if main:
                    result.layered, result.missing = made, list(made.missing)
            else:
                action = key_take(mesh, take, start_frame=start_frame,
                                  preset=preset if mesh.name == obj.name else None, tolerance=tolerance)
                actions = [action]
                if main:
                    result.missing = [str(m) for m in action.get("exomni_missing", [])]
        except ExOmniError as exc:
            if main:
                raise
            result.skipped[part.label] = str(exc)
            continue
        for a in actions:
            _tag(a, result.take_id, part.label, name if several and not layered else None)
        result.actions[part.label] = action
        result.keyed[part.label] = list(part.channels)
        result.objects[part.label] = mesh.name
    bones = [p for p in parts if p.kind != MESH]
    if bones:
        armature = bpy.data.objects[character.armature]
        action, keyed = _key_bones(armature, bones, take, start_frame, name, head_taken)
        if action is not None:
            _tag(action, result.take_id, armature.name, None)
            for p in bones:
                if p.label in keyed:
                    result.actions[p.label] = action
                    result.keyed[p.label] = keyed[p.label]
                    result.objects[p.label] = armature.name
            if result.main not in result.actions:
                result.main = next(iter(keyed))
    if not result.keyed:
        raise CharacterError(f"nothing of '{obj.name}' could be keyed: "
                             + "; ".join(f"{k}: {v}" for k, v in result.skipped.items()))
    return result


def change_mood(obj, take_action, mood: str, intensity: float = 1.0) -> list:
    """Key the expression layer of a layered take again with `mood` on every mesh of `obj`'s character
    that the take keyed (the same `exomni_take_id`); the other layers stay. Returns the meshes changed."""
    from .layers import TAKE_KEY, key_mood

    take_id = take_action.get(TAKE_ID)
    changed = []
    for part in find_character(obj).parts:
        mesh = bpy.data.objects.get(part.object_name) if part.kind == MESH else None
        key = mesh.data.shape_keys if mesh is not None else None
        ad = key.animation_data if key is not None else None
        if ad is None:
            continue
        if take_id is None:  # a take keyed on one mesh only, before takes had an id
            mine = [take_action] if mesh.name == obj.name else []
        else:
            mine = [s.action for t in ad.nla_tracks for s in t.strips
                    if s.action is not None and s.action.get(TAKE_ID) == take_id and s.action.get(TAKE_KEY)]
        if mine:
            key_mood(mesh, mood, intensity, take_action=mine[0])
            changed.append(mesh.name)
    return changed


def _layer_head(character, mesh_parts) -> tuple:
    """(what the head layer turns, whether one turn moves every mesh) for a layered take: the armature's
    head bone, else the one object the meshes hang from; each mesh on its own when they share an origin
    (a split avatar exported flat); (False, False) when nothing turns them together."""
    from .layers import find_head_bone

    if character.armature is not None:
        armature = bpy.data.objects[character.armature]
        if find_head_bone(armature):
            return armature, True
    meshes = [bpy.data.objects[p.object_name] for p in mesh_parts]
    if len(meshes) == 1:
        return None, True  # key_layers' own choice, as for a single head
    roots = {_root(m) for m in meshes}
    if len(roots) == 1 and next(iter(roots)) not in meshes:
        return next(iter(roots)), True
    origins = np.array([list(m.matrix_world.translation) for m in meshes])
    if all(m.parent is None for m in meshes) and np.ptp(origins, axis=0).max() < 1e-3:
        return None, False
    return False, False


def _root(o):
    while o.parent is not None:
        o = o.parent
    return o


def clear_take(take_id: str) -> list:
    """Remove a take from every part of its character: each Action carrying `take_id` is unassigned,
    its NLA strips removed, the Action deleted, and the shape keys it drove set back to 0 (the rest
    shape). Returns the part labels cleared; an unknown id clears nothing. The take's sound strip and
    folder are not touched."""
    from .compat import all_fcurves

    actions = [a for a in bpy.data.actions if take_id and a.get(TAKE_ID) == take_id]
    if not actions:
        return []
    gone = set(actions)
    driven = []  # (Key, Action) pairs: whose shape keys go back to rest
    for owner in list(bpy.data.objects) + list(bpy.data.shape_keys):
        ad = owner.animation_data
        if ad is None:
            continue
        used = {ad.action} & gone if ad.action is not None else set()
        if used:
            ad.action = None
        for track in ad.nla_tracks:
            for strip in [s for s in track.strips if s.action in gone]:
                used.add(strip.action)
                track.strips.remove(strip)
        if isinstance(owner, bpy.types.Key):
            driven.extend((owner, a) for a in used)
    for key, action in driven:
        for fc in all_fcurves(action):
            found = re.match(r'key_blocks\["(.+)"\]\.value$', fc.data_path)
            block = key.key_blocks.get(found.group(1)) if found else None
            if block is not None:
                block.value = 0.0
    labels = [a.get(PART, a.name) for a in actions]
    for action in actions:
        bpy.data.actions.remove(action)
    return list(dict.fromkeys(labels))


def _tag(action, take_id, label, base_name):
    action[TAKE_ID] = take_id
    action[PART] = label
    if base_name is not None:
        action.name = f"{base_name} [{label}]"


def _without_head(take):
    from ..core import face

    meta = {k: v for k, v in (getattr(take, "meta", None) or {}).items() if k != face.HEAD_ROTATION}
    return dataclasses.replace(take, meta=meta)


def _key_bones(armature, parts, take, start_frame, name, head_taken):
    """One Action on the armature for its eye, head and jaw bones; (Action or None, {bone: channels})."""
    from .bone_face import jaw_channels
    from .layers import head_channels
    from ..core import face

    weights = np.asarray(take.weights, np.float64)
    scene = _scene_of(armature)
    step = scene.render.fps / scene.render.fps_base / float(take.fps)
    frames = float(start_frame) + np.arange(weights.shape[0], dtype=np.float64) * step
    channels, keyed = {}, {}
    for part in parts:
        if part.kind == EYE_BONE:
            got = eye_channels(armature, part.bone, part.side, weights)
        elif part.kind == JAW_BONE:
            got = jaw_channels(armature, part.bone, weights)
        else:  # the head bone turns with the take's recorded head motion, unless its layers have it
            rotation = None if head_taken else face.head_rotation(getattr(take, "meta", {}), weights.shape[0])
            got = head_channels(armature, rotation) if rotation is not None else {}
        if got:
            channels.update(got)
            keyed[part.label] = sorted({path.rsplit(".", 1)[-1] for path, _ in got})
    if not channels:
        return None, {}
    ad = armature.animation_data
    if ad is not None and ad.use_tweak_mode:
        raise KeyingError(f"'{armature.name}' is in NLA tweak mode; leave it (Tab in the NLA editor) and "
                          "key the take again")
    with nla.new_take_action(f"{name} [{armature.name}]", armature.name, KeyingError) as action:
        action[nla.TAKE_MARK] = str(getattr(take, "text", "") or "")
        for bone in keyed:
            mine = {k: v for k, v in channels.items() if k[0].startswith(f'pose.bones["{_escape(bone)}"]')}
            write_fcurves(action, armature, mine, frames, group=bone)
        nla.activate(armature, action)
    return action, keyed


def _escape(name: str) -> str:
    return bpy.utils.escape_identifier(name)


# -- gaze ----------------------------------------------------------------------------------------------

def gaze_angles(weights, side: str) -> tuple:
    """(turn, lift) in radians per frame for one eye from ARKit weights [frames, 52]: turn > 0 looks
    towards the character's left, lift > 0 looks up; within GAZE_SIDE_DEG / GAZE_UP_DEG / GAZE_DOWN_DEG."""
    w = np.asarray(weights, np.float64)
    s = "Left" if side == "left" else "Right"
    out, inward = w[:, INDEX[f"eyeLookOut{s}"]], w[:, INDEX[f"eyeLookIn{s}"]]
    to_left = (out - inward) if side == "left" else (inward - out)  # the left eye looks out to the left
    lift = np.clip(w[:, INDEX[f"eyeLookUp{s}"]] - w[:, INDEX[f"eyeLookDown{s}"]], -1.0, 1.0)
    turn = np.clip(to_left, -1.0, 1.0) * math.radians(GAZE_SIDE_DEG)
    lift = np.where(lift > 0, lift * math.radians(GAZE_UP_DEG), lift * math.radians(GAZE_DOWN_DEG))
    return turn, lift


def gaze_matrices(weights, side: str, armature_obj) -> np.ndarray:
    """[frames, 3, 3] eye turns in the armature's space (the character faces -Y and is up +Z in the world)."""
    from .layers import _axis_matrix

    turn, lift = gaze_angles(weights, side)
    world = _axis_matrix(2, turn) @ _axis_matrix(0, -lift)  # lift about X (-: the gaze rises), then turn
    a = np.array([list(r) for r in armature_obj.matrix_world], np.float64)[:3, :3]
    a = a / np.linalg.norm(a, axis=0, keepdims=True)
    return np.einsum("ji,fjk,kl->fil", a, world, a)  # the same turn in the armature's own axes


def eye_channels(armature_obj, bone_name: str, side: str, weights) -> dict:
    """{(data path, index): values} turning one eye bone with the gaze (or moving it, when it is a target
    another bone tracks)."""
    from .layers import bone_rotation_curves

    turns = gaze_matrices(weights, side, armature_obj)
    bone = armature_obj.data.bones[bone_name]
    rest = np.array([list(r) for r in bone.matrix_local], np.float64)[:3, :3]
    path = f'pose.bones["{_escape(bone_name)}"]'
    tracker = _tracker_of(armature_obj, bone_name)
    if tracker is not None:  # a look-at target: move it around the eye that tracks it
        eye = np.array(armature_obj.data.bones[tracker].head_local, np.float64)
        reach = np.array(bone.head_local, np.float64) - eye
        moved = np.einsum("fij,j->fi", turns, reach) - reach
        local = moved @ rest  # into the bone's rest axes: rest.T @ moved per frame
        return {(f"{path}.location", i): local[:, i] for i in range(3)}
    local = np.einsum("ij,fjk,kl->fil", rest.T, turns, rest)
    return bone_rotation_curves(armature_obj.pose.bones[bone_name], local, "eye bone")


def _tracker_of(armature_obj, bone_name: str):
    """The bone that looks at `bone_name` through a tracking constraint, or None."""
    for pb in armature_obj.pose.bones:
        for c in pb.constraints:
            if (c.type in _TRACKING and getattr(c, "target", None) == armature_obj
                    and getattr(c, "subtarget", "") == bone_name and not c.mute):
                return pb.name
    return None
