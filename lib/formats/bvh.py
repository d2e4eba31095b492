"""BVH motion capture: hierarchy parsing and forward kinematics to global joint positions."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from lib.formats.base import FormatError, PoseFile

logger = logging.getLogger(__name__)

_AXES = {"x": 0, "y": 1, "z": 2}
# A root whose position moves less than this (file units) over the clip is a static dummy.
_STATIC_TOLERANCE = 1e-6
# Names (lower case) of single-child roots that are placement or trajectory nodes, not bodies.
_DUMMY_ROOT_NAMES = ("joint_root", "root", "reference", "world", "origin", "trajectory")


@dataclass
class BvhJoint:
    """One ROOT or JOINT of the hierarchy (End Sites are not joints).

    Attributes:
        name: joint name.
        parent: index of the parent joint, -1 for a root.
        offset: rest offset from the parent, file units.
        channels: channel names in file order, e.g. ``("Xposition", ..., "Zrotation")``.
    """

    name: str
    parent: int
    offset: np.ndarray
    channels: tuple[str, ...] = ()


@dataclass
class BvhMotion:
    """A parsed BVH file. Shape: values (F, sum of channels over joints)."""

    joints: list[BvhJoint]
    frame_time: float
    values: np.ndarray


def _token(tokens: list[str], index: int, what: str, path: str) -> str:
    """``tokens[index]``, or a FormatError saying the file ends before ``what``."""
    if index >= len(tokens):
        raise FormatError(f"{path}: the file ends after {tokens[-1]!r} (token {len(tokens)}) "
                          f"where {what} should follow; the BVH file is truncated")
    return tokens[index]


def _floats(tokens: list[str], start: int, count: int, path: str) -> np.ndarray:
    """``count`` numbers from token ``start`` on; a FormatError if any is missing or not one."""
    if start + count > len(tokens):
        _token(tokens, len(tokens), f"{count} numbers after {tokens[start - 1]!r}", path)
    try:
        return np.array(tokens[start:start + count], dtype=np.float64)
    except ValueError:
        raise FormatError(f"{path}: expected {count} numbers after token {start} "
                          f"({tokens[start - 1]!r}); the file is not valid BVH") from None


def _number(tokens: list[str], index: int, what: str, path: str, kind: type) -> int | float:
    """The number ``what`` at ``tokens[index]`` (kind int or float), or a FormatError."""
    text = _token(tokens, index, what, path)
    try:
        return kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise FormatError(f"{path}: {what} is {text!r} (token {index}), expected {expected}; "
                          "the file is not valid BVH") from None


def _parse_hierarchy(tokens: list[str], path: str) -> tuple[list[BvhJoint], int]:
    """Joints in file order (parents first) and the token index just after ``MOTION``."""
    if not tokens or tokens[0] != "HIERARCHY":
        raise FormatError(f"{path}: a BVH file starts with HIERARCHY; is it a BVH file?")
    joints: list[BvhJoint] = []
    stack: list[int] = []  # open blocks: joint index, or -1 for an End Site
    pending, index = -1, 1
    while index < len(tokens) and tokens[index] != "MOTION":
        token = tokens[index]
        if token in ("ROOT", "JOINT"):
            parent = next((j for j in reversed(stack) if j >= 0), -1)
            name = _token(tokens, index + 1, f"the name of the {token}", path)
            joints.append(BvhJoint(name, parent, np.zeros(3)))
            pending, index = len(joints) - 1, index + 2
        elif token == "End":
            pending, index = -1, index + 2
        elif token == "{":
            stack.append(pending)
            index += 1
        elif token == "}" and stack:
            stack.pop()
            index += 1
        elif token == "OFFSET" and stack:
            if stack[-1] >= 0:
                joints[stack[-1]].offset = _floats(tokens, index + 1, 3, path)
            index += 4
        elif token == "CHANNELS" and stack and stack[-1] >= 0:
            count = _number(tokens, index + 1, "the CHANNELS count", path, int)
            if count < 0 or index + 2 + count > len(tokens):
                raise FormatError(f"{path}: CHANNELS {count} of joint {joints[stack[-1]].name!r} "
                                  "is negative or runs past the end of the file")
            joints[stack[-1]].channels = tuple(tokens[index + 2:index + 2 + count])
            index += 2 + count
        else:
            raise FormatError(f"{path}: unexpected token {token!r} (token {index}) in the "
                              "HIERARCHY section; check its braces and keywords")
    if index >= len(tokens) or not joints:
        raise FormatError(f"{path}: no MOTION section or no joints; the file is truncated")
    return joints, index + 1


def _parse_motion(tokens: list[str], start: int, channels: int,
                  path: str) -> tuple[float, np.ndarray]:
    """Frame time and the (F, channels) channel values after ``MOTION``."""
    if tokens[start:start + 1] != ["Frames:"] or tokens[start + 2:start + 4] != ["Frame", "Time:"]:
        raise FormatError(f"{path}: MOTION must be followed by 'Frames: N' and 'Frame Time: dt'")
    frames = _number(tokens, start + 1, "the frame count after 'Frames:'", path, int)
    frame_time = _number(tokens, start + 4, "the value after 'Frame Time:'", path, float)
    values = _floats(tokens, start + 5, len(tokens) - start - 5, path)
    if values.size != frames * channels:
        raise FormatError(f"{path}: {values.size} motion values, expected {frames} frames x "
                          f"{channels} channels; the file is truncated or its CHANNELS are wrong")
    if frames < 1 or frame_time <= 0:
        raise FormatError(f"{path}: {frames} frames with frame time {frame_time}; need >= 1 "
                          "frame and a positive frame time")
    return frame_time, values.reshape(frames, channels)


def parse_bvh(path: str) -> BvhMotion:
    """Read a BVH file's hierarchy and channel values (any channel order per joint)."""
    try:
        with open(path, encoding="utf-8") as handle:
            tokens = handle.read().split()
    except (OSError, UnicodeDecodeError) as err:
        raise FormatError(f"{path}: cannot read the BVH file ({err})") from None
    joints, start = _parse_hierarchy(tokens, path)
    channels = sum(len(joint.channels) for joint in joints)
    frame_time, values = _parse_motion(tokens, start, channels, path)
    return BvhMotion(joints, frame_time, values)


def axis_rotation(axis: int, degrees: np.ndarray) -> np.ndarray:
    """Rotation matrices about one coordinate axis.

    Shape:
        degrees (F,) -> (F, 3, 3).
    """
    angle = np.radians(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    first, second = [a for a in range(3) if a != axis]
    # Right-handed: for axis y the (first, second) pair is (x, z) but the sign flips.
    sign = -1.0 if axis == 1 else 1.0
    matrix = np.zeros((len(angle), 3, 3))
    matrix[:, axis, axis] = 1.0
    matrix[:, first, first] = matrix[:, second, second] = cos
    matrix[:, first, second] = -sign * sin
    matrix[:, second, first] = sign * sin
    return matrix


def _local_transform(joint: BvhJoint, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local rotation (channel order, intrinsic) and translation of one joint.

    Position channels replace the matching OFFSET components (the Bandai convention; for the
    usual BVH, whose root OFFSET is zero, this equals adding them).

    Shape:
        values (F, channels of this joint) -> rotation (F, 3, 3), translation (F, 3).
    """
    frames = len(values)
    rotation = np.broadcast_to(np.eye(3), (frames, 3, 3))
    translation = np.repeat(joint.offset[None], frames, axis=0)
    for column, name in enumerate(joint.channels):
        axis = _AXES.get(name[:1].lower())
        kind = name[1:].lower()
        if axis is None or kind not in ("position", "rotation"):
            raise FormatError(f"unknown BVH channel {name!r} of joint {joint.name!r}; expected "
                              "X/Y/Z position or rotation")
        if kind == "position":
            translation[:, axis] = values[:, column]
        else:
            rotation = rotation @ axis_rotation(axis, values[:, column])
    return rotation, translation


def forward_kinematics(motion: BvhMotion) -> np.ndarray:
    """Global joint positions of every ROOT/JOINT, in file units.

    Shape:
        returns (F, J, 3) for the J joints of ``motion.joints``.
    """
    frames = len(motion.values)
    rotations = np.zeros((len(motion.joints), frames, 3, 3))
    positions = np.zeros((frames, len(motion.joints), 3))
    column = 0
    for index, joint in enumerate(motion.joints):
        width = len(joint.channels)
        local_rot, local_pos = _local_transform(joint, motion.values[:, column:column + width])
        column += width
        if joint.parent < 0:
            rotations[index], positions[:, index] = local_rot, local_pos
            continue
        parent_rot = rotations[joint.parent]
        positions[:, index] = positions[:, joint.parent] + np.einsum("fij,fj->fi", parent_rot,
                                                                     local_pos)
        rotations[index] = parent_rot @ local_rot
    return positions


def _dummy_roots(positions: np.ndarray, names: list[str], parents: list[int]) -> list[int]:
    """Roots with exactly one child that are placement nodes, not part of the body.

    Such a root is dropped when it never moves (in a clip of two or more frames) or is named
    like a placement node (Bandai's ``joint_Root``, which is static in most clips and a ground
    trajectory in a few).
    """
    dummies = []
    for joint, parent in enumerate(parents):
        if parent >= 0 or parents.count(joint) != 1:
            continue
        static = len(positions) > 1 and np.ptp(positions[:, joint], axis=0).max() < \
            _STATIC_TOLERANCE
        if static or names[joint].lower() in _DUMMY_ROOT_NAMES:
            dummies.append(joint)
    return dummies


def _drop_joints(positions: np.ndarray, names: list[str], parents: list[int],
                 dropped: list[int]) -> tuple[np.ndarray, list[str], list[int]]:
    """Remove joints; a removed joint's children take its parent."""
    keep = [j for j in range(len(names)) if j not in dropped]
    new_index = {old: new for new, old in enumerate(keep)}

    def kept_parent(joint: int) -> int:
        parent = parents[joint]
        while parent in dropped:
            parent = parents[parent]
        return new_index.get(parent, -1)

    return positions[:, keep], [names[j] for j in keep], [kept_parent(j) for j in keep]


def read_bvh(path: str, drop_dummy_root: bool = True) -> PoseFile:
    """Global joint positions of a BVH clip by forward kinematics, in the file's units.

    End Sites are not joints. A root with one child that never moves or is named like a
    placement node (root, joint_Root, reference, world, origin, trajectory) is dropped unless
    ``drop_dummy_root`` is False; its child then becomes the root.

    Shape:
        the PoseFile holds one sequence (F, J, 3).
    """
    motion = parse_bvh(path)
    positions = forward_kinematics(motion)
    names = [joint.name for joint in motion.joints]
    parents = [joint.parent for joint in motion.joints]
    dropped = _dummy_roots(positions, names, parents) if drop_dummy_root else []
    if dropped:
        logger.debug("%s: dropping placement root joint(s) %s", path, [names[j] for j in dropped])
        positions, names, parents = _drop_joints(positions, names, parents, dropped)
    return PoseFile(path, "bvh", [positions], joint_names=tuple(names), parents=tuple(parents),
                    fps=round(1.0 / motion.frame_time, 3),
                    meta={"dropped_joints": [motion.joints[j].name for j in dropped]})


def write_bvh(path: str, pose_file: PoseFile) -> None:
    """Refuse: refined output is joint positions, see the message for the alternatives."""
    raise FormatError(f"{path}: writing BVH is not supported. Refinement changes joint "
                      "positions, and turning positions back into BVH joint rotations (inverse "
                      "kinematics) would alter bone lengths or the motion. Write the refined "
                      "positions as .csv (joint-name header), .npy or .npz instead")
