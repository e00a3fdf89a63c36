"""Skeleton layouts: the bone tables and normalisation joints by name, checks, files and folder records."""

import json
import os
from dataclasses import replace

import pytest

from dataset.layouts import (
    COCO17,
    KINECT20,
    LAYOUT_FILE,
    LAYOUTS,
    NTU25,
    Layout,
    LayoutError,
    folder_record_text,
    get_layout,
    new_layout_problems,
    read_folder_record,
)
from tests.helpers import write_folder_record

# Each joint's parent, by name, as the published bone pairs (NTU) and the Kinect v1 skeleton draw them.
NTU25_PARENTS = {
    "spine base": "spine middle",
    "spine middle": "spine shoulder",
    "neck": "spine shoulder",
    "head": "neck",
    "left shoulder": "spine shoulder",
    "left elbow": "left shoulder",
    "left wrist": "left elbow",
    "left hand": "left wrist",
    "right shoulder": "spine shoulder",
    "right elbow": "right shoulder",
    "right wrist": "right elbow",
    "right hand": "right wrist",
    "left hip": "spine base",
    "left knee": "left hip",
    "left ankle": "left knee",
    "left foot": "left ankle",
    "right hip": "spine base",
    "right knee": "right hip",
    "right ankle": "right knee",
    "right foot": "right ankle",
    "spine shoulder": "spine shoulder",
    "left hand tip": "left thumb",
    "left thumb": "left hand",
    "right hand tip": "right thumb",
    "right thumb": "right hand",
}
KINECT20_PARENTS = {
    "hip centre": "spine",
    "spine": "shoulder centre",
    "shoulder centre": "shoulder centre",
    "head": "shoulder centre",
    "left shoulder": "shoulder centre",
    "left elbow": "left shoulder",
    "left wrist": "left elbow",
    "left hand": "left wrist",
    "right shoulder": "shoulder centre",
    "right elbow": "right shoulder",
    "right wrist": "right elbow",
    "right hand": "right wrist",
    "left hip": "hip centre",
    "left knee": "left hip",
    "left ankle": "left knee",
    "left foot": "left ankle",
    "right hip": "hip centre",
    "right knee": "right hip",
    "right ankle": "right knee",
    "right foot": "right ankle",
}

# pyskl's COCO graph (its inward edges, child -> parent, by index as pyskl lists them: (15, 13), (13, 11),
# (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6), (5, 0), (6, 0), (1, 0), (3, 1),
# (2, 0), (4, 2)), by name in the COCO keypoint order.
COCO17_PARENTS = {
    "nose": "nose",
    "left eye": "nose",
    "right eye": "nose",
    "left ear": "left eye",
    "right ear": "right eye",
    "left shoulder": "nose",
    "right shoulder": "nose",
    "left elbow": "left shoulder",
    "right elbow": "right shoulder",
    "left wrist": "left elbow",
    "right wrist": "right elbow",
    "left hip": "left shoulder",
    "right hip": "right shoulder",
    "left knee": "left hip",
    "right knee": "right hip",
    "left ankle": "left knee",
    "right ankle": "right knee",
}


def _named(layout, index):
    return layout.joints[index]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_built_in_layout_passes_a_layout_files_checks_and_round_trips(name, tmp_path):
    # a layout added to LAYOUTS is held to what a user's layout file is: its own JSON must load again
    layout = LAYOUTS[name]
    assert layout.name == name and not new_layout_problems(layout)
    assert get_layout(layout.to_dict()) == layout
    path = tmp_path / f"{name}.json"
    path.write_text(layout.to_json())  # as the docs tell a user to start a file of their own
    assert get_layout(str(path)) == layout


@pytest.mark.parametrize(
    "layout, parents, size",
    [(NTU25, NTU25_PARENTS, 150), (KINECT20, KINECT20_PARENTS, 60), (COCO17, COCO17_PARENTS, 34)],
)
def test_bones_by_name(layout, parents, size):
    assert {layout.joints[j]: layout.joints[p] for j, p in enumerate(layout.parents)} == parents
    assert len(layout.joints) == len(parents) and layout.input_size == size
    roots = [j for j, p in enumerate(layout.parents) if j == p]
    assert len(roots) == 1  # one zero bone
    for j in range(layout.num_joints):  # a tree: every joint reaches the root
        seen = set()
        while layout.parents[j] != j:
            assert j not in seen
            seen.add(j)
            j = layout.parents[j]
        assert j == roots[0]


@pytest.mark.parametrize(
    "layout, centre, z_axis, x_axis, bodies, corrupted",
    [
        (NTU25, "spine middle", ("spine base", "spine middle"), ("left shoulder", "right shoulder"), 2, 15),
        (KINECT20, "spine", ("hip centre", "spine"), ("left shoulder", "right shoulder"), 1, 12),
        (COCO17, "left hip", (), (), 1, 10),  # 2-D: not rotated
    ],
)
def test_normalisation_joints_by_name(layout, centre, z_axis, x_axis, bodies, corrupted):
    assert _named(layout, layout.centre) == centre
    assert tuple(_named(layout, j) for j in layout.z_axis) == z_axis
    assert tuple(_named(layout, j) for j in layout.x_axis) == x_axis
    assert (layout.channels, layout.bodies, layout.corrupted_joints) == (2 if z_axis == () else 3, bodies, corrupted)


@pytest.mark.parametrize(
    "change, found",
    [
        (dict(parents=(0, 0, 5)), "parents must be joint indices in [0, 3)"),
        (dict(parents=(0, 0)), "2 parents for 3 joints"),
        (dict(z_axis=(0, 3)), "z_axis must be two joint indices in [0, 3), found (0, 3)"),
        (dict(centre=-1), "centre must be a joint index in [0, 3), found -1"),
        (dict(centre=3), "centre must be a joint index in [0, 3), found 3"),
        (dict(parents=(0, 0, 3)), "parents must be joint indices in [0, 3)"),  # one past the last joint
        (dict(channels=4), "channels must be 2 or 3, found 4"),
        (dict(corrupted_joints=4), "corrupted_joints must be in [1, 3], found 4"),
        (dict(corrupted_joints=0), "corrupted_joints must be in [1, 3], found 0"),  # the augmentation needs one
        (dict(bodies=0), "bodies must be at least 1, found 0"),
    ],
)
def test_inconsistent_layout_is_refused(change, found):
    fields = dict(
        name="tri",
        joints=("a", "b", "c"),
        parents=(0, 0, 1),
        centre=0,
        z_axis=(0, 1),
        x_axis=(1, 2),
        corrupted_joints=1,
    )
    with pytest.raises(LayoutError) as info:
        Layout(**dict(fields, **change))
    assert str(info.value).startswith("layout 'tri': ") and found in str(info.value)


@pytest.mark.parametrize(
    "change, found",
    [
        (
            dict(parents=(1, 2, 0)),
            "parents must lead every joint to a root (a joint that is its own parent), found the "
            "cycle 0 -> 1 -> 2 -> 0 in (1, 2, 0)",
        ),
        (dict(parents=[0, 2, 1]), "found the cycle 1 -> 2 -> 1 in (0, 2, 1)"),  # a root, but not for 1, 2
        (dict(parents=[0, 0, 1.7]), "parents must be a list of integer joint indices, found [0, 0, 1.7]"),
        (dict(parents=[0, True, 1]), "parents must be a list of integer joint indices, found [0, True, 1]"),
        (dict(z_axis=[0, 1.0]), "z_axis must be a list of integer joint indices, found [0, 1.0]"),
        (dict(x_axis=3), "x_axis must be a list of integer joint indices, found 3"),
        (dict(centre=1.5), "centre must be an integer, found 1.5"),
        (dict(channels=3.0), "channels must be an integer, found 3.0"),
        (dict(bodies=True), "bodies must be an integer, found True"),
        (dict(corrupted_joints="1"), "corrupted_joints must be an integer, found '1'"),
        (dict(joints="abc"), "joints must be a list of joint names, found 'abc'"),  # not 3 joints
        (dict(joints=["a", 2, "c"]), "joints must be a list of joint names, found ['a', 2, 'c']"),
    ],
)
def test_layout_json_with_a_parent_cycle_or_a_non_integer_is_refused(tmp_path, change, found):
    fields = dict(
        name="tri",
        joints=["a", "b", "c"],
        parents=[0, 0, 1],
        centre=0,
        z_axis=[0, 1],
        x_axis=[1, 2],
        corrupted_joints=1,
        channels=3,
        bodies=1,
    )
    path = tmp_path / "tri.json"
    path.write_text(json.dumps(dict(fields, **change)))
    with pytest.raises(LayoutError) as info:
        get_layout(str(path))
    assert str(info.value).startswith(f"layout file {path}: layout 'tri': ") and found in str(info.value)
    path.write_text(json.dumps(fields))
    assert get_layout(str(path)).parents == (0, 0, 1)  # lists from JSON become tuples


@pytest.mark.parametrize(
    "change, found",
    [
        (dict(joints=["a", "b", "a"]), "joint names must differ, found 'a' more than once"),
        (dict(x_axis=[2, 2]), "x_axis must be two different joints, found [2, 2]"),  # no direction to turn to
        (dict(z_axis=[1, 1], x_axis=[0, 0]), "z_axis must be two different joints, found [1, 1]; x_axis must be"),
    ],
)
def test_a_layout_file_for_new_data_names_each_joint_once_and_pairs_two_joints(tmp_path, change, found):
    fields = dict(name="tri", joints=["a", "b", "c"], parents=[0, 0, 1], centre=0, z_axis=[0, 1], x_axis=[1, 2])
    path = tmp_path / "tri.json"
    path.write_text(json.dumps(dict(fields, corrupted_joints=1, **change)))
    with pytest.raises(LayoutError) as info:
        get_layout(str(path))
    assert str(info.value).startswith(f"layout file {path}: layout 'tri': {found}")
    # a folder imported before these checks still opens with the layout it recorded
    layout = Layout.from_dict(dict(fields, corrupted_joints=1, **change))
    write_folder_record(tmp_path / "old", layout, 2, "mine")
    assert read_folder_record(str(tmp_path / "old"))[0] == layout


def test_layout_from_name_dict_and_json_file(tmp_path):
    assert get_layout("kinect20") is KINECT20 and get_layout(NTU25) is NTU25
    path = tmp_path / "mine.json"
    record = dict(KINECT20.to_dict(), name="mine", bodies=2)
    path.write_text(json.dumps(record))
    mine = get_layout(str(path))
    assert mine.name == "mine" and mine.bodies == 2 and mine.parents == KINECT20.parents
    assert get_layout(record) == mine
    with pytest.raises(LayoutError, match=r"unknown layout 'h36m17'; known: ntu25, kinect20, coco17"):
        get_layout("h36m17")
    # a built-in layout's name on other fields would print and compare as that layout: refused by name
    path.write_text(json.dumps(dict(record, name="kinect20")))
    with pytest.raises(LayoutError) as info:
        get_layout(str(path))
    assert str(info.value) == (
        f"layout file {path}: layout 'kinect20': the name 'kinect20' is a built-in layout's, and this file "
        "differs from it in bodies 1 against 2: give the file's layout a name of its own"
    )
    path.write_text(KINECT20.to_json())  # the built-in layout itself, as docs tell a user to start a file
    assert get_layout(str(path)) == KINECT20
    path.write_text(json.dumps(dict(record, hands=2)))
    with pytest.raises(LayoutError, match=rf"layout file {path}: unknown fields \['hands'\]"):
        get_layout(str(path))
    path.write_bytes(b"\xff\xfe{}")  # not UTF-8: a layout error naming the file, not a traceback
    with pytest.raises(LayoutError, match=rf"layout file {path}: 'utf-8' codec can't decode"):
        get_layout(str(path))


def test_a_2d_layout_may_leave_out_the_axis_pairs_a_3d_one_may_not(tmp_path):
    fields = dict(name="flat", joints=["a", "b", "c"], parents=[0, 0, 1], centre=0, corrupted_joints=1)
    flat = get_layout(dict(fields, channels=2))
    assert (flat.z_axis, flat.x_axis) == ((), ())  # not rotated (normalisation centres a 2-D skeleton only)
    path = tmp_path / "flat.json"
    path.write_text(flat.to_json())
    assert get_layout(str(path)) == flat  # its own record round-trips
    with pytest.raises(LayoutError) as info:
        get_layout(dict(fields, channels=3))
    assert str(info.value) == "layout: missing fields ['x_axis', 'z_axis']"  # no empty 'unknown fields []'


def test_folder_record_round_trip_and_default(tmp_path):
    folder = str(tmp_path / "ucla")
    assert read_folder_record(folder) == (NTU25, None, None, None)  # no record: the published layout
    path = write_folder_record(folder, "kinect20", 10, "nw_ucla", "cross_view")
    assert path == os.path.join(folder, LAYOUT_FILE) and os.listdir(folder) == [LAYOUT_FILE]
    assert read_folder_record(folder) == (KINECT20, 10, "nw_ucla", "cross_view")
    assert json.loads(open(path).read())["num_class"] == 10
    for bad in (0, 2.5, True, "10"):
        with pytest.raises(LayoutError, match="num_class must be a positive integer"):
            folder_record_text("kinect20", bad)
    for bad in (0, 2.5, True, "10"):  # a record edited by hand
        with open(path, "w") as f:
            json.dump({"layout": KINECT20.to_dict(), "num_class": bad, "dataset": "nw_ucla"}, f)
        with pytest.raises(LayoutError, match=rf"{path}: num_class must be a positive integer, found {bad!r}"):
            read_folder_record(folder)
    for bad in ("", "../escape", ["x"], {"a": 1}):  # names run folders and result rows: edited by hand
        with open(path, "w") as f:
            json.dump({"layout": KINECT20.to_dict(), "num_class": 10, "dataset": bad}, f)
        with pytest.raises(LayoutError, match=rf"{path}: a dataset name is letters, digits"):
            read_folder_record(folder)
        with pytest.raises(LayoutError, match="a dataset name is letters, digits"):
            folder_record_text(KINECT20, 10, bad)
    write_folder_record(folder, NTU25, 60, "ntu60")  # replaces the record; no protocol recorded
    assert read_folder_record(folder) == (NTU25, 60, "ntu60", None) and os.listdir(folder) == [LAYOUT_FILE]
    assert "protocol" not in json.loads(open(path).read())  # as records written before protocols were
    with pytest.raises(LayoutError, match="unknown protocol 'xsub'"):
        folder_record_text(NTU25, 60, "ntu60", "xsub")
    with open(path, "w") as f:  # a record edited by hand
        json.dump({"layout": NTU25.to_dict(), "num_class": 60, "dataset": "ntu60", "protocol": "sideways"}, f)
    with pytest.raises(LayoutError, match=rf"{path}: unknown protocol 'sideways'"):
        read_folder_record(folder)


def test_joints_given_as_one_string_are_refused():
    with pytest.raises(LayoutError, match=r"layout 'tri': joints must be a list of joint names, found 'abc'"):
        Layout(name="tri", joints="abc", parents=(0, 0, 1), centre=0, z_axis=(0, 1), x_axis=(1, 2), corrupted_joints=1)


LEGS = {f"{side} {part}" for side in ("left", "right") for part in ("hip", "knee", "ankle", "foot")}


def test_trunk_sides_cut_the_skeleton_at_the_bone_the_normalisation_turns_up():
    for layout, root in ((KINECT20, "hip centre"), (NTU25, "spine base")):  # z axis: root -> the spine
        lower, upper = layout.trunk_sides()
        assert {layout.joints[j] for j in lower} == {root} | LEGS
        assert sorted(lower + upper) == list(range(layout.num_joints))
    assert COCO17.trunk_sides() is None  # 2-D: not rotated
    # b is the root; a and c hang from b, d from c. The z axis b -> c cuts off c's side (c, d), above.
    chain = Layout(
        name="chain",
        joints=("a", "b", "c", "d"),
        parents=(1, 1, 1, 2),
        centre=1,
        z_axis=(1, 2),
        x_axis=(0, 3),
        corrupted_joints=1,
        channels=3,
        bodies=1,
    )
    assert chain.trunk_sides() == ((0, 1), (2, 3))
    assert replace(chain, z_axis=(2, 1)).trunk_sides() == ((2, 3), (0, 1))  # c -> b: c's side below
    assert replace(chain, z_axis=(0, 3)).trunk_sides() is None  # not a bone
    assert replace(chain, z_axis=(1, 1)).trunk_sides() is None  # one joint twice (the root, its own parent)
    # A second tree (d its own root) is on neither side of a cut in the first.
    assert replace(chain, parents=(1, 1, 1, 3)).trunk_sides() == ((0, 1), (2,))
    assert replace(chain, parents=(1, 1, 1, 3), z_axis=(2, 1)).trunk_sides() == ((2,), (0, 1))


def test_the_documented_reorder_of_a_built_in_layout_gives_the_hand_worked_layout(tmp_path, monkeypatch):
    # docs/small-data.md's snippet, run as written: kinect20 in a head-first order (head, shoulder centre,
    # spine, hip centre, then kinect20's limbs); the expected fields worked out by hand from the bones
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "small-data.md")) as f:
        doc = f.read()
    marker = "# a built-in layout in your data's joint order\n"
    snippet = doc[doc.index(marker) : doc.index("```", doc.index(marker))]
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "docs/small-data.md", "exec"), {})
    layout = get_layout(str(tmp_path / "kinect20_head_first.json"))
    assert layout.joints[:4] == ("head", "shoulder centre", "spine", "hip centre")
    assert layout.joints[4:] == KINECT20.joints[4:]
    # head, shoulder centre, spine from the shoulder centre (1, its own parent), hip centre from the spine,
    # shoulders from the shoulder centre, hips from the hip centre (3), limbs along their chains
    assert layout.parents == (1, 1, 1, 2, 1, 4, 5, 6, 1, 8, 9, 10, 3, 12, 13, 14, 3, 16, 17, 18)
    assert (layout.centre, layout.z_axis, layout.x_axis) == (2, (3, 2), (4, 8))
    assert (layout.corrupted_joints, layout.channels, layout.bodies) == (
        KINECT20.corrupted_joints,
        KINECT20.channels,
        KINECT20.bodies,
    )
    lower, upper = layout.trunk_sides()  # the hips and legs below the hip centre -> spine bone, as in kinect20
    assert set(lower) == {3, *range(12, 20)} and set(upper) == {0, 1, 2, *range(4, 12)}
