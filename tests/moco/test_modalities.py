"""Modalities (docs/published-behaviour.md §2.3) against hand-worked values on a hand-built skeleton."""

import pytest
import torch

from dataset.layouts import NTU25, get_layout
from moco.modalities import MODALITIES, bone, flatten, modality, motion

NTU_PARENTS = torch.tensor(NTU25.parents)  # the NTU-25 table, checked against PUBLISHED_BONES below

# (child, parent), 1-based, typed again from docs/published-behaviour.md §2.3.
PUBLISHED_BONES = [
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
]


def skeleton(n=2, t=3):
    """x[n, c, t, v, m] = 1000 c + 10 t^2 + v^2 + 0.5 m + 5000 n (0-based indices)."""
    ni, ci, ti, vi, mi = torch.meshgrid(
        torch.arange(n), torch.arange(3), torch.arange(t), torch.arange(25), torch.arange(2), indexing="ij"
    )
    return (1000 * ci + 10 * ti**2 + vi**2 + 0.5 * mi + 5000 * ni).double()


def test_modality_names():
    assert MODALITIES == ("joint", "motion", "bone")


def test_motion_hand_values():
    out = motion(skeleton())
    assert out.shape == skeleton().shape  # the last frame's difference is 0, not one frame more
    # 10 (t+1)^2 - 10 t^2 = 10 (2t + 1): 10 at t=0, 30 at t=1, and the last frame is 0.
    assert torch.all(out[:, :, 0] == 10)
    assert torch.all(out[:, :, 1] == 30)
    assert torch.all(out[:, :, 2] == 0)


def test_bone_hand_values():
    out = bone(skeleton(), NTU_PARENTS)
    # Only v^2 differs between joints of the same (n, c, t, m).
    assert torch.all(out[:, :, :, 20] == 0)  # joint 21 is its own parent
    assert torch.all(out[:, :, :, 0] == 0 - 1)  # (1, 2): 0^2 - 1^2
    assert torch.all(out[:, :, :, 3] == 9 - 4)  # (4, 3): 3^2 - 2^2
    assert torch.all(out[:, :, :, 22] == 484 - 49)  # (23, 8): 22^2 - 7^2
    assert torch.all(out[:, :, :, 24] == 576 - 121)  # (25, 12): 24^2 - 11^2
    assert torch.all(out[:, :, :, 1] == 1 - 400)  # (2, 21): 1^2 - 20^2


def test_bone_matches_loop_over_published_pairs():
    x = torch.randn(2, 3, 4, 25, 2, dtype=torch.float64)
    expected = torch.zeros_like(x)
    for child, parent in PUBLISHED_BONES:
        expected[:, :, :, child - 1] = x[:, :, :, child - 1] - x[:, :, :, parent - 1]
    assert torch.equal(bone(x, NTU_PARENTS), expected)


def test_flatten_index_order():
    x = skeleton()
    out = flatten(x)
    assert out.shape == (2, 3, 150)
    # feature 149 = v 24, c 2, m 1; feature 7 = v 1, c 0, m 1; feature 2 = v 0, c 1, m 0
    t = torch.arange(3).double()
    assert torch.equal(out[1, :, 149], 2000 + 10 * t**2 + 576 + 0.5 + 5000)
    assert torch.equal(out[0, :, 7], 10 * t**2 + 1 + 0.5)
    assert torch.equal(out[0, :, 2], 1000 + 10 * t**2)
    for v in range(25):
        for c in range(3):
            for m in range(2):
                assert torch.equal(out[:, :, v * 6 + c * 2 + m], x[:, c, :, v, m])


def test_modality_dispatch_and_errors():
    x = skeleton()
    assert torch.equal(modality(x, "joint", NTU_PARENTS), flatten(x))
    assert torch.equal(modality(x, "motion", NTU_PARENTS), flatten(motion(x)))
    assert torch.equal(modality(x, "bone", NTU_PARENTS), flatten(bone(x, NTU_PARENTS)))
    with pytest.raises(ValueError, match="unknown modality"):
        modality(x, "velocity", NTU_PARENTS)
    with pytest.raises(ValueError, match=r"N x C x T x V x M.*\(2, 3, 25, 2\)"):
        flatten(torch.zeros(2, 3, 25, 2))
    with pytest.raises(ValueError, match=r"expected 25 joints"):
        bone(torch.zeros(1, 3, 4, 20, 1), NTU_PARENTS)


def test_kinect20_bones_by_hand():
    # Joint v sits at (v, 10 v, 100 v) in frame 0 of body 0; a bone is the joint minus its parent.
    x = torch.zeros(1, 3, 2, 20, 1)
    v = torch.arange(20.0)
    x[0, :, 0, :, 0] = torch.stack([v, 10 * v, 100 * v])
    out = bone(x, torch.tensor(get_layout("kinect20").parents))
    by_hand = {
        0: 0 - 1,
        1: 1 - 2,
        2: 0,
        3: 3 - 2,
        4: 4 - 2,
        5: 5 - 4,
        8: 8 - 2,
        12: 12 - 0,
        16: 16 - 0,
        19: 19 - 18,
        11: 11 - 10,
    }
    for joint, step in by_hand.items():
        assert torch.equal(out[0, :, 0, joint, 0], torch.tensor([step, 10.0 * step, 100.0 * step])), joint
    assert torch.equal(out[0, :, 1], torch.zeros(3, 20, 1))  # an empty frame has zero bones
    flat = modality(x, "bone", torch.tensor(get_layout("kinect20").parents))
    assert flat.shape == (1, 2, 60) and torch.equal(flat[0, 0, 5 * 3 : 5 * 3 + 3], torch.tensor([1.0, 10.0, 100.0]))


def test_the_bone_table_has_no_default():
    x = skeleton()
    with pytest.raises(TypeError):
        bone(x)
    with pytest.raises(TypeError):
        modality(x, "bone")


def test_the_layout_parents_tuple_is_a_bone_table():
    x = torch.randn(2, 3, 4, 25, 2, dtype=torch.float64)
    assert torch.equal(bone(x, NTU25.parents), bone(x, NTU_PARENTS))
    assert torch.equal(modality(x, "bone", NTU25.parents), modality(x, "bone", NTU_PARENTS))
