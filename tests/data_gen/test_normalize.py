"""The normalisation (docs/published-behaviour.md §1.4) on hand-worked arrays and against the literal loop."""

import numpy as np
import pytest

from data_gen.normalize import normalize, normalize_and_turn, normalize_loop, pad_null_frames, upside_down
from dataset.layouts import COCO17, KINECT20, NTU25, Layout


def _sample(frames=3):
    """One sample, N x C x T x V x M zeros, and a view in M x T x V x C to fill by hand."""
    data = np.zeros((1, 3, frames, 25, 2), dtype=np.float32)
    return data, np.transpose(data[0], (3, 1, 2, 0))  # view: M x T x V x C


def _mtvc(out):
    return np.transpose(out[0], (3, 1, 2, 0))  # M x T x V x C


def test_centring_subtracts_first_persons_spine_middle_per_frame():
    data, s = _sample(frames=2)
    shift = np.array([[10, 20, 30], [11, 20, 30]], dtype=np.float32)  # the body moves by +1 in x
    for t in range(2):
        s[0, t, :] = shift[t] + [5, 5, 5]
        s[0, t, 0] = shift[t] + [1, 2, 3]  # spine base
        s[0, t, 1] = shift[t] + [1, 2, 4]  # spine middle: spine vector (0, 0, 1) -> no z-rotation
        s[0, t, 4] = shift[t] + [0, 2, 4]  # left shoulder
        s[0, t, 8] = shift[t] + [2, 2, 4]  # right shoulder: (2, 0, 0) -> no x-rotation
        s[1, t, :] = shift[t] + [1, 2, 6]  # second person
        s[1, t, 3] = 0  # one of its joints untracked
    s[0, 0, 10] = [1, -1, 0]  # x + y + z == 0: stays 0
    out = _mtvc(normalize(data))
    for t in range(2):
        np.testing.assert_allclose(out[0, t, 0], [0, 0, -1], atol=1e-6)
        np.testing.assert_allclose(out[0, t, 1], [0, 0, 0], atol=1e-6)
        np.testing.assert_allclose(out[0, t, 4], [-1, 0, 0], atol=1e-6)
        np.testing.assert_allclose(out[0, t, 8], [1, 0, 0], atol=1e-6)
        np.testing.assert_allclose(out[0, t, 20], [4, 3, 1], atol=1e-6)
        np.testing.assert_allclose(out[1, t, 0], [0, 0, 2], atol=1e-6)
        np.testing.assert_array_equal(out[1, t, 3], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 0, 10], [0, 0, 0])
    np.testing.assert_allclose(out[0, 1, 10], [4, 3, 1], atol=1e-6)


def test_spine_is_turned_onto_plus_z():
    data, s = _sample(frames=1)
    base = np.array([10, 20, 30], dtype=np.float32)
    s[0, 0, :] = base + [0, 1, 0]  # every other joint sits on the spine middle
    s[0, 0, 0] = base  # spine vector (0, 1, 0): needs +90 degrees about x
    s[0, 0, 2] = base + [0, 2, 0]  # up the spine: ends on +z
    s[0, 0, 3] = base + [0, 1, 1]  # in front (+z): ends on -y
    s[0, 0, 4] = base + [-1, 1, 0]  # shoulders already along x
    s[0, 0, 8] = base + [1, 1, 0]
    out = _mtvc(normalize(data))[0, 0]
    np.testing.assert_allclose(out[0], [0, 0, -1], atol=1e-6)
    np.testing.assert_allclose(out[2], [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(out[3], [0, -1, 0], atol=1e-6)
    np.testing.assert_allclose(out[4], [-1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[8], [1, 0, 0], atol=1e-6)


def test_a_spine_pointing_straight_down_is_not_turned():
    # the spine vector opposite +z: no rotation axis, so the published rotation is the identity (a rotation
    # by 180 degrees about an undefined axis would otherwise collapse the skeleton)
    data, s = _sample(frames=1)
    base = np.array([10, 20, 30], dtype=np.float32)
    s[0, 0, :] = base
    s[0, 0, 0] = base + [0, 0, 1]  # spine base above the spine middle: spine vector (0, 0, -1)
    s[0, 0, 3] = base + [0, 2, 0]
    s[0, 0, 4] = base + [-1, 0, 0]  # shoulders already along x
    s[0, 0, 8] = base + [1, 0, 0]
    out = _mtvc(normalize(data))[0, 0]
    np.testing.assert_allclose(out, s[0, 0] - base, atol=1e-6)


def test_shoulders_are_turned_onto_plus_x():
    data, s = _sample(frames=1)
    base = np.array([10, 20, 30], dtype=np.float32)
    s[0, 0, :] = base
    s[0, 0, 0] = base - [0, 0, 1]  # spine along +z already
    s[0, 0, 4] = base - [0, 1, 0]  # shoulder vector (0, 2, 0): -90 degrees about z
    s[0, 0, 8] = base + [0, 1, 0]
    s[0, 0, 5] = base + [1, 0, 0]  # +x ends on -y
    out = _mtvc(normalize(data))[0, 0]
    np.testing.assert_allclose(out[0], [0, 0, -1], atol=1e-6)
    np.testing.assert_allclose(out[4], [-1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[8], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[5], [0, -1, 0], atol=1e-6)


def _frames(values):
    """A 1 x 1 x T x 25 x 3 array whose frame t holds values[t] at every coordinate (0 = empty frame)."""
    return np.array(values, dtype=np.float32)[None, None, :, None, None] * np.ones((1, 1, 1, 25, 3), np.float32)


@pytest.mark.parametrize(
    "before, after",
    [
        ([0, 0, 1, 2, 0, 3, 0, 0], [1, 2, 3, 1, 2, 3, 1, 2]),  # first frames missing: front-aligned, gap closed
        ([1, 2, 0, 0, 0], [1, 2, 1, 2, 1]),  # tail missing: looped
        ([1, 0, 2, 0, 0], [1, 0, 2, 1, 0]),  # middle gap stays (and is looped with the rest)
        ([1, 2, 3], [1, 2, 3]),  # nothing to pad
        ([0, 0, 0], [0, 0, 0]),  # empty person stays empty
    ],
)
def test_padding_of_null_frames(before, after):
    given = _frames(before)
    out = pad_null_frames(given)
    np.testing.assert_array_equal(out, _frames(after))
    np.testing.assert_array_equal(given, _frames(before))  # the input is left as it was


def test_padding_is_per_person():
    s = np.concatenate([_frames([1, 2, 0, 0]), _frames([0, 5, 6, 0])], axis=1)  # 1 x 2 x T x 25 x 3
    out = pad_null_frames(s)
    np.testing.assert_array_equal(out[:, :1], _frames([1, 2, 1, 2]))
    np.testing.assert_array_equal(out[:, 1:], _frames([5, 6, 5, 6]))


def test_all_zero_sample_is_left_alone_and_matches_loop_on_awkward_batch():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(7, 3, 40, 25, 2)).astype(np.float32)
    data[0] = 0  # all-zero sample
    data[1, :, :5] = 0  # first frames missing (both persons)
    data[2, :, 30:] = 0  # tail missing
    data[3, :, 10:15, :, 0] = 0  # middle gap, first person only
    data[4, :, :, :, 1] = 0  # single person
    data[5, :, :, :, 0] = 0  # first person empty: no centre, no rotation
    data[6, :, :3, :, 1] = 0
    data[6, :, 20:, :, 1] = 0
    data[4, :, :, 5, 0] = np.array([0.5, -0.5, 2.0])[:, None]  # x + y = 0: a found joint all the same (z counts)
    out = normalize(data)
    assert out.dtype == np.float32 and out.shape == data.shape
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_allclose(out, normalize_loop(data), rtol=0, atol=2e-6)


# Layouts other than ntu25: the joints of every step come from the layout.


def test_kinect20_centring_and_both_rotations_by_hand():
    # Frame 0, relative to the spine (joint 1): spine vector x[1] - x[0] = (1, 0, 0), so the first turn
    # is 90 degrees about -y, (x, y, z) -> (-z, y, x); it leaves the shoulder vector x[8] - x[4] on
    # (0, 2, 0), so the second is 90 degrees about -z, (x, y, z) -> (y, -x, z). Together: (y, z, x).
    data = np.zeros((1, 3, 2, 20, 1), dtype=np.float32)
    s = np.transpose(data[0], (3, 1, 2, 0))  # M x T x V x C view
    relative = {
        0: (-1, 0, 0),
        1: (0, 0, 0),
        3: (2, 0, 0),
        4: (0, -1, 0),
        8: (0, 1, 0),
        5: (0, 0, 1),
        12: (0.5, 0.25, -2),
    }
    for t, centre in enumerate(([10, 20, 30], [13, 19, 32])):
        for j, offset in relative.items():
            s[0, t, j] = np.add(centre, offset)
    s[0, 1, 5] += [0, 0, 1]  # frame 1: joint 5 at (0, 0, 2) from that frame's spine
    normalised, turn = normalize_and_turn(data, KINECT20)
    np.testing.assert_allclose(turn, [90.0], atol=1e-6)  # step 4: 90 degrees about -z
    out = _mtvc(normalised)[0]
    expected = {
        0: (0, 0, -1),
        1: (0, 0, 0),
        3: (0, 0, 2),
        4: (-1, 0, 0),
        8: (1, 0, 0),
        5: (0, 1, 0),
        12: (0.25, -2, 0.5),
    }
    for t in range(2):
        for j, value in expected.items():
            if t == 1 and j == 5:
                value = (0, 2, 0)
            np.testing.assert_allclose(out[t, j], value, atol=1e-6, err_msg=f"frame {t} joint {j}")
        np.testing.assert_array_equal(out[t, 19], [0, 0, 0])  # untracked joint stays at 0


QUAD = Layout(
    name="quad",
    joints=("a", "b", "c", "d"),
    parents=(0, 0, 1, 2),
    centre=3,
    z_axis=(2, 0),
    x_axis=(3, 1),
    corrupted_joints=1,
    channels=3,
    bodies=2,
)


def test_centre_and_axes_are_the_layouts_joints():
    # Centre d (joint 3); x[0] - x[2] = (0, 1, 0) is turned to +z by 90 degrees about +x,
    # (x, y, z) -> (x, -z, y); x[1] - x[3] = (0, 0, -1) is then on +y, turned to +x by (x, y, z) ->
    # (y, -x, z). Together: (x, y, z) -> (-z, -x, y).
    data = np.zeros((1, 3, 1, 4, 2), dtype=np.float32)
    s = np.transpose(data[0], (3, 1, 2, 0))  # M x T x V x C view
    centre = np.array([5, 5, 5], dtype=np.float32)
    s[0, 0] = centre + np.array([(1, 1, 0), (0, 0, -1), (1, 0, 0), (0, 0, 0)])
    s[1, 0] = centre + np.array([(0, 0, 2), (1, 2, 3), (2, 1, 2), (-1, 0, 0)])  # second person
    out = _mtvc(normalize(data, QUAD))
    np.testing.assert_allclose(out[0, 0], [(0, -1, 1), (1, 0, 0), (0, -1, 0), (0, 0, 0)], atol=1e-6)
    np.testing.assert_allclose(out[1, 0], [(-2, 0, 0), (-3, -1, 2), (-2, -2, 1), (0, 1, 0)], atol=1e-6)
    np.testing.assert_allclose(_mtvc(normalize_loop(data, QUAD)), out, rtol=0, atol=2e-6)


def test_two_dimensional_layout_is_padded_and_centred_only():
    flat = Layout(
        name="quad2d",
        joints=("a", "b", "c", "d"),
        parents=(0, 0, 1, 2),
        centre=3,
        z_axis=(2, 0),
        x_axis=(3, 1),
        corrupted_joints=1,
        channels=2,
        bodies=1,
    )
    data = np.zeros((1, 2, 3, 4, 1), dtype=np.float32)
    s = np.transpose(data[0], (3, 1, 2, 0))  # M x T x V x C view
    s[0, 1] = [(5, 8), (1, -1), (0, 0), (4, 6)]  # frame 0 empty; joint 1 sums to 0: untracked
    s[0, 2] = [(3, 5), (7, 7), (0, 0), (3, 3)]
    expected = np.array(
        [
            [(1, 2), (0, 0), (0, 0), (0, 0)],  # front-aligned, centred on joint 3
            [(0, 2), (4, 4), (0, 0), (0, 0)],
            [(1, 2), (0, 0), (0, 0), (0, 0)],
        ]
    )  # the empty tail repeats frame 0
    for normaliser in (normalize, normalize_loop):
        out = _mtvc(normaliser(data, flat))[0]
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("layout", [KINECT20, QUAD])
def test_other_layouts_match_the_loop_on_an_awkward_batch(layout):
    rng = np.random.default_rng(1)
    v, m = layout.num_joints, layout.bodies
    data = rng.normal(size=(5, 3, 30, v, m)).astype(np.float32)
    data[0] = 0  # all-zero sample
    data[1, :, :4] = 0  # first frames missing
    data[2, :, 20:] = 0  # tail missing
    data[3, :, 5:9, :, 0] = 0  # middle gap
    out = normalize(data, layout)
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_allclose(out, normalize_loop(data, layout), rtol=0, atol=2e-6)


def test_data_that_does_not_fit_the_layout_is_refused():
    with pytest.raises(
        ValueError,
        match=r"layout kinect20: expected data of shape N x 3 x T x 20 x M, "
        r"found \(1, 3, 4, 25, 2\)",
    ):
        normalize(np.ones((1, 3, 4, 25, 2), np.float32), KINECT20)


def test_upside_down_compares_the_mean_height_of_the_lower_and_the_upper_side():
    lower, upper = (list(side) for side in NTU25.trunk_sides())
    data = np.zeros((4, 3, 3, 25, 2), dtype=np.float32)  # N x C x T x V x M, normalised
    z = data[:, 2]  # N x T x V x M
    z[:, :, upper, 0] = 1.0
    z[:, :, lower, 0] = -1.0  # sample 0 stands
    z[1, 2, lower, 0] = 20.0  # sample 1: the lower side above in one frame of three, by enough to lift its mean
    z[2, 2, lower, 0] = 2.0  # sample 2: above in one frame, not enough
    z[3, :, :, 1] = -z[3, :, :, 0]  # sample 3: a second body upside down does not count
    z[:, 1, :, 0] = 0.0  # a frame without the first body adds nothing
    # Mean z of the lower / upper side over the three frames: sample 0 -2/3 / 2/3, sample 1 (-1 + 0 + 20) / 3
    # = 6.33 / 2/3, sample 2 (-1 + 0 + 2) / 3 = 1/3 / 2/3, sample 3 as sample 0.
    np.testing.assert_array_equal(upside_down(data, NTU25), [False, True, False, False])
    np.testing.assert_array_equal(upside_down(-data, NTU25), [True, False, True, True])
    assert upside_down(np.zeros((1, 2, 3, 17, 1), np.float32), COCO17) is None


def test_the_turn_of_step_4_is_the_angle_from_the_x_pair_to_plus_x():
    # kinect20, the spine already on +z (step 3 turns nothing); the left -> right shoulder vector at frame 0
    # (cos t, sin t, 0) is then turned by t onto +x.
    angles = [0.0, 30.0, 150.0]
    data = np.zeros((len(angles) + 1, 3, 2, 20, 1), dtype=np.float32)  # sample 1 all zero
    s = np.transpose(data, (0, 4, 2, 3, 1))  # N x M x T x V x C view
    for i, t in zip((0, 2, 3), np.radians(angles)):
        s[i, 0, :, 0] = (0, 0, -1)  # hip centre below the spine (joint 1, at the origin)
        s[i, 0, :, 1] = (0, 0, 0.001)  # not at exactly 0: a joint summing to 0 counts as untracked
        s[i, 0, :, 4] = (-np.cos(t) / 2, -np.sin(t) / 2, 0)
        s[i, 0, :, 8] = (np.cos(t) / 2, np.sin(t) / 2, 0)
    normalised, turn = normalize_and_turn(data, KINECT20)
    np.testing.assert_allclose(turn[[0, 2, 3]], angles, atol=1e-4)
    assert np.isnan(turn[1])
    np.testing.assert_array_equal(normalised, normalize(data, KINECT20))
    assert np.isnan(normalize_and_turn(np.ones((1, 2, 3, 17, 1), np.float32), COCO17)[1]).all()  # 2-D: no turn
