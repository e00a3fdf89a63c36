"""Skeleton layouts as data: which joints a sample holds and how the method uses them.

A layout names the joints, each joint's parent (the bone modality is x[joint] - x[parent]; a joint
that is its own parent has a zero bone), the channels per joint (3-D, or 2-D), the bodies per sample,
the joints the published normalisation uses (the centre joint, and the two joint pairs whose vectors
are turned to +z and +x; docs/published-behaviour.md §1.4) and how many joints the joint-corruption
augmentation picks (docs/published-behaviour.md §2.1). Everything else follows from it: the encoder
input size is joints x channels x bodies, the modalities, augmentations, feeders and checkpoints all
read it, and a processed folder records its own in `layout.json` (a folder without one is `ntu25`, the
published layout, so folders made by the published tools keep working).

Adding a skeleton touches data, not the model: put a `Layout(...)` in `LAYOUTS` below, or write the
same fields to a JSON file and pass its path wherever a layout name is taken
(`python -c "from dataset.layouts import get_layout; print(get_layout('kinect20').to_json())"`
prints one to start from).
"""

import json
import numbers
import os
import re
from dataclasses import asdict, dataclass

from dataset.catalog import PROTOCOL_FOLDERS

LAYOUT_FILE = "layout.json"
# A dataset's name names default run folders and result rows: letters, digits, '_', '.', '-' (not first).
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def dataset_name_problem(name):
    """What is wrong with `name` as a dataset's name (None when nothing is)."""
    if isinstance(name, str) and DATASET_NAME.fullmatch(name):
        return None
    return f"a dataset name is letters, digits, '_', '.' or '-' (not first), found {name!r}"


class LayoutError(ValueError):
    """A layout, or a processed folder's layout record, is unknown or inconsistent."""


@dataclass(frozen=True)
class Layout:
    """One skeleton layout (see the module docstring). Joint indices are 0-based."""

    name: str
    joints: tuple  # V joint names
    parents: tuple  # V: parent index of each joint
    centre: int  # the joint moved to the origin in every frame
    z_axis: tuple  # (a, b): x[b] - x[a] of the first body at frame 0 is turned to +z
    x_axis: tuple  # (a, b): then x[b] - x[a] is turned to +x
    corrupted_joints: int  # joints a joint corruption picks
    channels: int = 3
    bodies: int = 2

    def __post_init__(self):
        if not isinstance(self.joints, (list, tuple)) or not all(isinstance(j, str) for j in self.joints):
            raise LayoutError(f"layout {self.name!r}: joints must be a list of joint names, found {self.joints!r}")
        object.__setattr__(self, "joints", tuple(self.joints))

        def integer(value):  # an int (or numpy integer); not a bool, not a float (not even 3.0)
            return isinstance(value, numbers.Integral) and not isinstance(value, bool)

        problems = []
        for field in ("parents", "z_axis", "x_axis"):
            value = getattr(self, field)
            if isinstance(value, (list, tuple)) and all(integer(j) for j in value):
                object.__setattr__(self, field, tuple(int(j) for j in value))
            else:
                problems.append(f"{field} must be a list of integer joint indices, found {value!r}")
        for field in ("centre", "corrupted_joints", "channels", "bodies"):
            value = getattr(self, field)
            if integer(value):
                object.__setattr__(self, field, int(value))
            else:
                problems.append(f"{field} must be an integer, found {value!r}")
        if problems:
            raise LayoutError(f"layout {self.name!r}: " + "; ".join(problems))
        v = len(self.joints)
        if v < 1:
            problems.append("no joints")
        if len(self.parents) != v:
            problems.append(f"{len(self.parents)} parents for {v} joints")
        if any(not 0 <= p < v for p in self.parents):
            problems.append(f"parents must be joint indices in [0, {v})")
        elif len(self.parents) == v:
            for j in range(v):  # follow each joint's parents until a joint repeats: it must be a root
                chain = [j]
                while self.parents[chain[-1]] not in chain:
                    chain.append(self.parents[chain[-1]])
                if self.parents[chain[-1]] != chain[-1]:
                    cycle = " -> ".join(map(str, chain + [self.parents[chain[-1]]]))
                    problems.append(
                        f"parents must lead every joint to a root (a joint that is its own parent), "
                        f"found the cycle {cycle} in {self.parents}"
                    )
                    break
        for field, pair in (("z_axis", self.z_axis), ("x_axis", self.x_axis)):
            if self.channels == 2 and not pair:  # a 2-D skeleton is not rotated: the pairs are not used
                continue
            if len(pair) != 2 or any(not 0 <= j < v for j in pair):
                problems.append(f"{field} must be two joint indices in [0, {v}), found {pair}")
        if not 0 <= self.centre < v:
            problems.append(f"centre must be a joint index in [0, {v}), found {self.centre}")
        if not 1 <= self.corrupted_joints <= v:
            problems.append(f"corrupted_joints must be in [1, {v}], found {self.corrupted_joints}")
        if self.channels not in (2, 3):
            problems.append(f"channels must be 2 or 3, found {self.channels}")
        if self.bodies < 1:
            problems.append(f"bodies must be at least 1, found {self.bodies}")
        if problems:
            raise LayoutError(f"layout {self.name!r}: " + "; ".join(problems))

    def differences(self, other, ignore=()):
        """How layout `other` differs from this one (but in the fields `ignore`), for messages: 'centre 0
        against 3', or the name alone of a field holding a list of more than four values ('parents')."""
        found = []
        for name, ours in asdict(self).items():
            theirs = getattr(other, name)
            if ours != theirs and name not in ignore:
                long = isinstance(ours, (list, tuple)) and len(ours) > 4
                found.append(name if long else f"{name} {ours!r} against {theirs!r}")
        return ", ".join(found)

    def trunk_sides(self):
        """(lower, upper): the joints on `a`'s and on `b`'s side of the z-axis pair (a, b), the skeleton cut
        at that bone (joints of another tree of the layout on neither side); None for a 2-D layout or a
        pair that is not a bone. The normalisation turns x[b] - x[a] to +z, so in data whose joint order
        is the layout's the upper side lies above the lower on average (the published hip -> spine bone:
        the hips and legs below the rest)."""
        if self.channels != 3 or len(self.z_axis) != 2:
            return None
        a, b = self.z_axis
        if a != b and self.parents[a] == b:
            cut = a
        elif a != b and self.parents[b] == a:
            cut = b
        else:
            return None

        def chain(j):  # j and its ancestors up to its root (the layout's checks refuse cycles)
            found = [j]
            while self.parents[found[-1]] != found[-1]:
                found.append(self.parents[found[-1]])
            return found

        chains = [chain(j) for j in range(self.num_joints)]
        subtree = tuple(j for j, c in enumerate(chains) if cut in c)
        rest = tuple(j for j, c in enumerate(chains) if cut not in c and c[-1] == chains[a][-1])
        return (subtree, rest) if cut == a else (rest, subtree)

    @property
    def num_joints(self):
        return len(self.joints)

    @property
    def input_size(self):
        """Features per frame of one modality: joints x channels x bodies (150 for ntu25)."""
        return self.num_joints * self.channels * self.bodies

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_json(self):
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, record, source="layout"):
        """A Layout from its fields (as `to_dict` writes them); LayoutError names `source` otherwise."""
        if not isinstance(record, dict):
            raise LayoutError(
                f"{source}: expected a JSON object with the layout's fields, found {type(record).__name__}"
            )
        fields = set(cls.__dataclass_fields__)
        optional = {"channels", "bodies"} | ({"z_axis", "x_axis"} if record.get("channels") == 2 else set())
        unknown, missing = set(record) - fields, fields - optional - set(record)
        if unknown or missing:
            found = [f"unknown fields {sorted(unknown)}"] * bool(unknown) + [
                f"missing fields {sorted(missing)}"
            ] * bool(missing)
            raise LayoutError(f"{source}: {', '.join(found)}")
        if record.get("channels") == 2:  # 2-D: not rotated, so the axis pairs may be left out
            record = {"z_axis": [], "x_axis": [], **record}
        try:
            return cls(**record)
        except (TypeError, ValueError) as exc:
            raise LayoutError(f"{source}: {exc}") from None


def _parents_from_pairs(pairs):
    """0-based parents from 1-based (child, parent) pairs listed for every joint."""
    return tuple(parent - 1 for _, parent in sorted(pairs))


# NTU RGB+D (Kinect v2), the published layout: docs/published-behaviour.md §1.1, §1.4, §2.3.
NTU25 = Layout(
    name="ntu25",
    joints=(
        "spine base",
        "spine middle",
        "neck",
        "head",
        "left shoulder",
        "left elbow",
        "left wrist",
        "left hand",
        "right shoulder",
        "right elbow",
        "right wrist",
        "right hand",
        "left hip",
        "left knee",
        "left ankle",
        "left foot",
        "right hip",
        "right knee",
        "right ankle",
        "right foot",
        "spine shoulder",
        "left hand tip",
        "left thumb",
        "right hand tip",
        "right thumb",
    ),
    parents=_parents_from_pairs(
        (
            (1, 2),
            (2, 21),
            (3, 21),
            (4, 3),
            (5, 21),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 21),
            (10, 9),
            (11, 10),
            (12, 11),
            (13, 1),
            (14, 13),
            (15, 14),
            (16, 15),
            (17, 1),
            (18, 17),
            (19, 18),
            (20, 19),
            (21, 21),
            (22, 23),
            (23, 8),
            (24, 25),
            (25, 12),
        )
    ),
    centre=1,
    z_axis=(0, 1),
    x_axis=(4, 8),
    corrupted_joints=15,
    channels=3,
    bodies=2,
)

# Kinect v1 (20 joints) in the Kinect SDK v1 order, hip centre first: NW-UCLA's (the MSR-Action3D
# importer reorders MSR's own order into it; docs/small-data.md for data in another order). The normalisation
# uses the joint indices NTU's uses (centre spine, hip centre -> spine to +z, left -> right shoulder
# to +x); the bones mirror NTU's (the shoulder centre is the root, with a zero bone, as NTU's spine
# shoulder is; hips hang from the hip centre); 12 of 20 corrupted joints keeps the published 15 of 25.
KINECT20 = Layout(
    name="kinect20",
    joints=(
        "hip centre",
        "spine",
        "shoulder centre",
        "head",
        "left shoulder",
        "left elbow",
        "left wrist",
        "left hand",
        "right shoulder",
        "right elbow",
        "right wrist",
        "right hand",
        "left hip",
        "left knee",
        "left ankle",
        "left foot",
        "right hip",
        "right knee",
        "right ankle",
        "right foot",
    ),
    parents=(1, 2, 2, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18),
    centre=1,
    z_axis=(0, 1),
    x_axis=(4, 8),
    corrupted_joints=12,
    channels=3,
    bodies=1,
)

# COCO-17 keypoints in image pixels (2-D), the order of most pose estimators (MMPose, pyskl, Detectron2,
# YOLO pose). The bones are pyskl's COCO graph, rooted at the nose (a zero bone); the centre is the left
# hip, the torso joint closest to NTU's spine (a hip never found takes its parent shoulder's place when
# the pyskl importer fills missing joints); a 2-D skeleton is not rotated, so no axis pairs; 10 of 17
# corrupted joints keeps the published 15 of 25; one body: the actor (write a JSON layout with bodies 2
# for actions of two people).
COCO17 = Layout(
    name="coco17",
    joints=(
        "nose",
        "left eye",
        "right eye",
        "left ear",
        "right ear",
        "left shoulder",
        "right shoulder",
        "left elbow",
        "right elbow",
        "left wrist",
        "right wrist",
        "left hip",
        "right hip",
        "left knee",
        "right knee",
        "left ankle",
        "right ankle",
    ),
    parents=(0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    centre=11,
    z_axis=(),
    x_axis=(),
    corrupted_joints=10,
    channels=2,
    bodies=1,
)

LAYOUTS = {layout.name: layout for layout in (NTU25, KINECT20, COCO17)}
DEFAULT_LAYOUT = NTU25


def new_layout_problems(layout):
    """What a layout file given for new data must also get right, beside what every Layout checks:
    joint names that differ (messages and checks name joints by them) and axis pairs of two different
    joints (one joint twice gives no direction, so its turn would be skipped), and a built-in layout's
    name only for that layout (runs print and compare layouts by name). Folders and checkpoints written
    before these checks keep loading."""
    problems = []
    built_in = LAYOUTS.get(layout.name)
    if built_in is not None and built_in != layout:
        problems.append(
            f"the name {layout.name!r} is a built-in layout's, and this file differs from it in "
            f"{built_in.differences(layout)}: give the file's layout a name of its own"
        )
    twice = sorted({j for j in layout.joints if layout.joints.count(j) > 1})
    if twice:
        problems.append(f"joint names must differ, found {', '.join(map(repr, twice))} more than once")
    for field in ("z_axis", "x_axis"):
        pair = getattr(layout, field)
        if len(pair) == 2 and pair[0] == pair[1]:
            problems.append(f"{field} must be two different joints, found {list(pair)}")
    return problems


def get_layout(spec):
    """A Layout from a Layout, a known name, a dict of fields or the path of a JSON file of them."""
    if isinstance(spec, Layout):
        return spec
    if isinstance(spec, dict):
        return Layout.from_dict(spec)
    if spec in LAYOUTS:
        return LAYOUTS[spec]
    if isinstance(spec, str) and spec.endswith(".json"):
        try:
            with open(spec) as f:
                record = json.load(f)
        except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8; nested too deep
            raise LayoutError(f"layout file {spec}: {exc}") from None
        layout = Layout.from_dict(record, source=f"layout file {spec}")
        problems = new_layout_problems(layout)
        if problems:
            raise LayoutError(f"layout file {spec}: layout {layout.name!r}: " + "; ".join(problems))
        return layout
    raise LayoutError(f"unknown layout {spec!r}; known: {', '.join(LAYOUTS)} (or the path of a .json layout file)")


def _record_problem(num_class, dataset, protocol, need_class=False, dataset_fix=""):
    """What is wrong with a folder record's class count, dataset name (followed by `dataset_fix`) or
    protocol (None when nothing)."""
    if (num_class is not None or need_class) and (
        not isinstance(num_class, numbers.Integral) or isinstance(num_class, bool) or num_class < 1
    ):
        return f"num_class must be a positive integer, found {num_class!r}"
    if protocol is not None and protocol not in PROTOCOL_FOLDERS:
        return f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOL_FOLDERS)}"
    if dataset is not None and (problem := dataset_name_problem(dataset)):  # it names run folders, result rows
        return problem + dataset_fix
    return None


def folder_record_text(layout, num_class, dataset=None, protocol=None):
    """The text of a processed folder's `layout.json`: its layout, class count, dataset name and, when
    known, the protocol (benchmark) its train / val parts follow."""
    problem = _record_problem(num_class, dataset, protocol, need_class=True)
    if problem:
        raise LayoutError(problem)
    record = {"layout": get_layout(layout).to_dict(), "num_class": int(num_class), "dataset": dataset}
    if protocol is not None:
        record["protocol"] = protocol
    return json.dumps(record, indent=1) + "\n"


def read_folder_record(folder):
    """(layout, num_class or None, dataset or None, protocol or None) of a processed folder; `ntu25`
    without a record (records written before protocols were recorded have none)."""
    path = os.path.join(folder, LAYOUT_FILE)
    if not os.path.exists(path):  # a folder of that name is no record but an error
        return DEFAULT_LAYOUT, None, None, None
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8; nested too deep
        raise LayoutError(f"{path}: not a readable layout record ({exc})") from None
    if not isinstance(record, dict) or "layout" not in record:
        raise LayoutError(f"{path}: expected a JSON object with 'layout', 'num_class' and 'dataset'")
    layout = Layout.from_dict(record["layout"], source=path)
    num_class, dataset, protocol = (record.get(key) for key in ("num_class", "dataset", "protocol"))
    fix = '; edit its "dataset" or convert again (pyskl: --dataset NAME)'
    problem = _record_problem(num_class, dataset, protocol, dataset_fix=fix)
    if problem:
        raise LayoutError(f"{path}: {problem}")
    return layout, num_class, dataset, protocol
