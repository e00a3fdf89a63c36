"""Missing joints of pose-estimator output (data_gen.missing), against hand-worked fillings."""

import numpy as np

from data_gen.missing import (
    centres,
    change_places,
    fill_body,
    fill_missing,
    missing_summary,
    nearest_found,
    present_joints,
    rank_bodies,
    track_people,
)
from dataset.layouts import Layout, get_layout

# a 4-joint chain of 1-D coordinates: 0 (root) - 1 - 2, and 3 hanging off 0
PARENTS = (0, 0, 1, 0)


def test_gaps_are_interpolated_and_held_beyond_a_joints_first_and_last_frame():
    body = np.zeros((6, 4, 1))
    body[1:5, 0, 0] = [1, 2, 3, 4]  # the root in frames 1-4
    body[1, 1, 0], body[4, 1, 0] = 10, 40  # joint 1 in frames 1 and 4 only
    body[3, 2, 0] = 7  # joint 2 in frame 3 only
    body[2, 3, 0] = 5  # joint 3 in frame 2 only
    filled = fill_body(body, present_joints(body), PARENTS)
    expected = np.array(
        [
            [1, 10, 7, 5],  # before the body appears: where it appears
            [1, 10, 7, 5],
            [2, 20, 7, 5],  # joint 1 linear between frames 1 and 4
            [3, 30, 7, 5],
            [4, 40, 7, 5],
            [4, 40, 7, 5],  # after it leaves: where it left
        ]
    )
    np.testing.assert_array_equal(filled[..., 0], expected)
    np.testing.assert_array_equal(fill_body(body * 0, present_joints(body * 0), PARENTS), body * 0)  # absent: 0


def test_a_joint_never_found_takes_the_nearest_found_joint_along_the_bones():
    seen = np.array([False, False, True, True])
    assert nearest_found(1, seen, PARENTS) == 2  # its parent (0) was not found; its child was
    assert nearest_found(0, seen, PARENTS) == 3  # a root never found takes a child's: 1 no, 3 yes
    assert nearest_found(2, np.array([True, False, False, False]), PARENTS) == 0  # two bones up
    assert nearest_found(1, np.zeros(4, bool), PARENTS) is None
    body = np.zeros((2, 4, 2))
    body[:, 2] = [(1, 1), (2, 2)]
    body[:, 3] = [(5, 5), (6, 6)]
    filled = fill_body(body, present_joints(body), PARENTS)
    np.testing.assert_array_equal(filled[:, 0], body[:, 3])  # the root (a centre) is not left at 0
    np.testing.assert_array_equal(filled[:, 1], body[:, 2])


def test_scores_nan_frames_with_nobody_dropped_and_the_bodies_ranked():
    bodies = np.zeros((3, 6, 4, 1))
    bodies[0, 1:3] = [[[0], [1], [3], [1]], [[0], [2], [5], [2]]]  # frames 1-2, its root never found
    bodies[1, 2:5] = 2.0 * (1 + np.arange(4))[:, None]  # frames 2-4, still: joints at 2, 4, 6, 8
    bodies[1, 3, 1] = np.nan
    bodies[2, 4] = 100.0 * np.arange(4)[:, None]  # one frame of a huge false detection, its root at 0
    scores = np.ones((3, 6, 4))
    scores[1, 4, 2] = 0.2
    present = present_joints(bodies, scores, min_score=0.5)
    assert not present[1, 4, 2] and not present[1, 3, 1] and present[1, 3, 0] and not present[0, 1, 0]
    # energies over present joints: body 0 std of {1, 3, 1, 2, 5, 2} = 1.37, body 1 std of
    # {2, 4, 6, 8, 2, 6, 8, 2, 4, 8} = 2.41, body 2 std of {100, 200, 300} = 81.6; times the share of the
    # 4 kept frames each is in (frames 0 and 5 hold nobody): 0.69, 1.81, 20.4 -> bodies 2, 1
    filled, frames = fill_missing(np.nan_to_num(bodies), present, PARENTS, count=2)
    assert frames == 4 and filled.shape == (2, 4, 4, 1)
    # body 2 in every frame, its root (never found) on joint 1, the nearest found along the bones
    np.testing.assert_array_equal(filled[0, :, :, 0], [[100, 100, 200, 300]] * 4)
    # body 1 (frames 2-4 of the recording, 1-3 of those kept) held before it appears, its NaN and its
    # low-scored joint filled from their other frames
    np.testing.assert_array_equal(filled[1, :, :, 0], [[2, 4, 6, 8]] * 4)
    assert fill_missing(bodies * 0, present_joints(bodies * 0), PARENTS, count=2)[1] == 0


def test_a_branch_of_its_own_never_found_takes_the_mean_of_the_found_joints():
    # parents (0, 1, 1): two roots; joint 0 found, the branch of joints 1 and 2 never
    body = np.zeros((3, 3, 2))
    body[:, 0] = [(1, 1), (2, 2), (3, 3)]
    filled = fill_body(body, present_joints(body), (0, 1, 1))
    np.testing.assert_array_equal(filled[:, 1], body[:, 0])
    np.testing.assert_array_equal(filled[:, 2], body[:, 0])


def test_with_zeros_as_coordinates_a_body_all_zero_in_a_frame_is_still_absent_there():
    bodies = np.zeros((2, 3, 4, 1))  # body 1: padding, all zero
    bodies[0, 0] = [[0], [1], [2], [3]]  # its root at the origin, a coordinate
    bodies[0, 2] = [[0], [3], [4], [5]]  # frame 1: nobody found
    present = present_joints(bodies, zeros_missing=False)
    assert present[0, 0].all() and not present[0, 1].any() and not present[1].any()
    filled, frames = fill_missing(bodies, present, PARENTS, count=2)
    assert frames == 2  # frame 1 dropped, and the padding is no body
    np.testing.assert_array_equal(filled[0, :, :, 0], [[0, 1, 2, 3], [0, 3, 4, 5]])
    np.testing.assert_array_equal(filled[1], 0)


def test_a_body_found_somewhere_ranks_before_a_body_found_nowhere():
    bodies = np.zeros((2, 4, 3, 1))
    bodies[0, :, 0] = 5.0  # found, but one joint in one place: energy 0
    order = rank_bodies(bodies, present_joints(bodies), 1)
    assert order.tolist() == [0]  # (equal scores would keep the later body, as published)


def test_the_summary_counts_what_filling_will_meet_and_leaves_bad_recordings_to_the_reader():
    layout = get_layout(
        dict(
            name="four",
            joints=list("abcd"),
            parents=list(PARENTS),
            centre=0,
            corrupted_joints=1,
            channels=1 + 1,
            bodies=1,
        )
    )
    good = np.zeros((1, 4, 4, 2))
    good[0, 1:3] = 1.0  # frames 1, 2; frames 0, 3 with nobody
    good[0, 2, 3] = 0.0  # one joint of 8 missing
    empty = np.zeros((1, 2, 4, 2))
    wrong = np.ones((1, 2, 3, 2))  # 3 joints for a 4-joint layout
    text = np.ones(good.shape[:3]).astype(str)  # scores the reader will refuse: left out, not a crash
    assert missing_summary([good], layout, [text], min_score=0.5)["recordings_with_anyone"] == 0
    assert missing_summary([good, empty, wrong], layout) == {
        "recordings_with_anyone": 1,
        "joints_missing_percent": 12.5,
        "frames_without_anyone": 4,
        "centre_never_found": 0,
        "joints_never_found": [],  # joint d is missing in frame 2 only
        "recordings_with_several_people": 0,
        "people_change_places": 0,
    }
    never = good.copy()
    never[0, :, 1] = 0.0  # joint b in no frame
    assert missing_summary([never, empty], layout)["joints_never_found"] == ["b"]
    # the 7 joints found, 2 of them scored below 0.3 (a score on a missing joint does not count)
    scores = np.full(good.shape[:3], 0.9)
    scores[0, 1, :2] = 0.1
    scores[0, 2, 3] = 0.1  # the missing joint
    scores[0, 0] = 0.0  # frames with nobody
    low = missing_summary([good], layout, [scores], low_score=0.3)["found_scored_below_percent"]
    assert low == round(100 * 2 / 7, 2)
    assert missing_summary([good], layout, [text], low_score=0.3)["found_scored_below_percent"] is None
    scores[0, 1, 0] = 0.3  # a score at the threshold is not below it
    assert missing_summary([good], layout, [scores], low_score=0.3)["found_scored_below_percent"] == round(100 / 7, 2)


def _crossing_people():
    """Two people of 3 joints in 2-D over 6 frames, A from x = 0 to the right, B from x = 5 to the left
    (0.3 a frame each, never closer than 2), each frame listing them in an order of its own."""
    t = np.arange(6)[:, None]
    joints = np.array([[1.0, 1.0], [1.0, 2.0], [1.2, 1.5]])  # V x C (no joint at 0, which is missing)
    a = joints + np.stack([0.3 * t, 0 * t], axis=-1)  # T x V x C
    b = joints + np.stack([5 - 0.3 * t, 0 * t], axis=-1)
    tracked = np.stack([a, b])  # 2 x T x V x C
    swapped = np.array([False, True, True, False, True, False])
    listed = tracked.copy()
    listed[:, swapped] = tracked[::-1][:, swapped]
    return tracked, listed


def test_tracking_gives_each_place_one_person_nearest_first():
    tracked, listed = _crossing_people()
    bodies, present = track_people(listed, present_joints(listed))
    np.testing.assert_array_equal(bodies, tracked)
    assert present.all()
    assert change_places(listed, present_joints(listed)) and not change_places(tracked, present_joints(tracked))
    # a person who leaves keeps their place for their return; one who arrives takes a free place
    three = np.zeros((3,) + tracked.shape[1:])
    three[:2, [0, 1, 5]] = listed[:, [0, 1, 5]]
    three[2, 2:4] = tracked[0, 2:4]  # frames 2, 3: B gone, A listed third
    three[:, 4] = tracked[0, 4] + [20, 0], tracked[1, 4], tracked[0, 4]  # C arrives far off, listed first
    bodies, present = track_people(three, present_joints(three))
    np.testing.assert_array_equal(bodies[0], tracked[0])  # A throughout
    np.testing.assert_array_equal(bodies[1, [0, 1, 4, 5]], tracked[1, [0, 1, 4, 5]])  # B where seen
    assert not present[1, 2:4].any()  # and absent while gone
    np.testing.assert_array_equal(bodies[2, 4], tracked[0, 4] + [20, 0])  # C in the free place
    assert not present[2, [0, 1, 2, 3, 5]].any()


def test_the_summary_counts_recordings_whose_people_change_places():
    tracked, listed = _crossing_people()
    alone = tracked.copy()
    alone[1] = 0  # one person: nothing to swap
    layout = Layout("three", ("a", "b", "c"), (0, 0, 0), 0, (), (), 1, channels=2, bodies=1)
    summary = missing_summary([listed, tracked, alone], layout)
    assert (summary["recordings_with_several_people"], summary["people_change_places"]) == (2, 1)


def test_tracking_leaves_people_in_order_where_they_are():
    # the reviewer's cases, in order already: one who is missed while another arrives; one who leaves
    # before another enters. A stranger beyond reach takes a place never used, not the missing one's.
    tracked, _ = _crossing_people()
    a, b = tracked[0, :4], tracked[1, :4] + [95, 0]  # B about 100 away
    missed = np.zeros((2, 4) + tracked.shape[2:])
    missed[0, [0, 2, 3]], missed[1, 1:] = a[[0, 2, 3]], b[1:]
    leaving = np.zeros((2, 8) + tracked.shape[2:])
    leaving[0, :4], leaving[1, 4:] = a, b
    for bodies in (missed, leaving):
        present = present_joints(bodies)
        kept, kept_present = track_people(bodies, present)
        np.testing.assert_array_equal(kept, bodies)
        np.testing.assert_array_equal(kept_present, present)
        assert not change_places(bodies, present)


def test_a_second_detection_near_the_person_is_no_change_of_places():
    tracked, listed = _crossing_people()
    echo = tracked[[0]] + [0.5, 0] + np.random.default_rng(0).normal(0, 0.05, tracked[[0]].shape)  # beside A
    bodies = np.concatenate([tracked[[0]], echo])
    bodies[:, [1, 2, 4]] = bodies[::-1][:, [1, 2, 4]]  # listed either way round
    assert not change_places(bodies, present_joints(bodies))
    assert change_places(listed, present_joints(listed))


TRIANGLE = np.array([[1.0, 1.0], [1.0, 2.0], [2.0, 1.0]])  # a 3-joint body of size about 0.6, no joint at 0


def test_a_centre_and_size_count_only_the_present_joints():
    # frame 0: joints (0, 0), (2, 0), (9, 9) with the last absent (a NaN would spoil a plain mean);
    # by hand the centre is (1, 0) and each present joint lies 1 away from it; frame 1: nothing present
    bodies = np.array([[[[0.0, 0.0], [2.0, 0.0], [np.nan, 9.0]], [[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]]])
    present = np.array([[[True, True, False], [False, False, False]]])
    centre, size = centres(bodies, present)
    np.testing.assert_array_equal(centre[0, 0], [1.0, 0.0])
    assert size[0, 0] == 1.0
    assert np.isnan(centre[0, 1]).all() and np.isnan(size[0, 1])  # absent: no centre, no size


def test_a_change_of_places_needs_each_person_to_land_on_the_others_place():
    # A jumps onto B's place, but B jumps far off instead of onto A's: no exchange
    bodies = np.stack([[TRIANGLE, TRIANGLE + [10, 0]], [TRIANGLE + [10, 0], TRIANGLE + [100, 0]]], axis=1)
    assert not change_places(bodies, present_joints(bodies))
    swapped = np.stack([[TRIANGLE, TRIANGLE + [10, 0]], [TRIANGLE + [10, 0], TRIANGLE]], axis=1)
    assert change_places(swapped, present_joints(swapped))
    # a small person beside a large one moves 6 units, within the large one's reach (2 x its size of
    # about 6.2): no exchange, though 6 is far beyond the small one's own reach
    small, large = 0.5 * (TRIANGLE - TRIANGLE.mean(0)), 10 * (TRIANGLE - TRIANGLE.mean(0))
    frames = [[small + [100, 0], large + [106, 0]], [small + [106, 0], large + [100, 0]]]
    bodies = np.stack(frames, axis=1)
    assert not change_places(bodies, present_joints(bodies))


def test_tracking_never_puts_one_person_in_two_places():
    # A stays; B, beside A, leaves in the last frame: A keeps its place there and B's stays empty
    bodies = np.zeros((2, 3, 3, 2))
    bodies[0] = TRIANGLE + [10, 10]
    bodies[1, :2] = TRIANGLE + [11, 10]
    kept, present = track_people(bodies, present_joints(bodies))
    np.testing.assert_array_equal(present[:, 2].any(axis=1), [True, False])
    np.testing.assert_array_equal(kept[0], bodies[0])


def test_a_person_beyond_every_places_reach_takes_the_nearest_free_place():
    # three people seen once at x = 0, 50, 100; then one person alone at x = 95, beyond reach of all three
    bodies = np.zeros((3, 2, 3, 2))
    for p, x in enumerate((0, 50, 100)):
        bodies[p, 0] = TRIANGLE + [x, 0]
    bodies[0, 1] = TRIANGLE + [95, 0]  # listed first
    kept, present = track_people(bodies, present_joints(bodies))
    np.testing.assert_array_equal(present[:, 1].any(axis=1), [False, False, True])  # the place last seen at 100
    np.testing.assert_array_equal(kept[2, 1], TRIANGLE + [95, 0])
