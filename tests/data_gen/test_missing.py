"""Missing joints of pose-estimator output (data_gen.missing), against hand-worked fillings."""

import numpy as np

from data_gen.missing import fill_body, fill_missing, nearest_found, present_joints

# a 4-joint chain of 1-D coordinates: 0 (root) - 1 - 2, and 3 hanging off 0
PARENTS = (0, 0, 1, 0)


def test_gaps_are_interpolated_held_at_the_ends_and_absent_frames_stay_absent():
    body = np.zeros((6, 4, 1))
    body[1:5, 0, 0] = [1, 2, 3, 4]  # the root in frames 1-4
    body[1, 1, 0], body[4, 1, 0] = 10, 40  # joint 1 in frames 1 and 4 only
    body[3, 2, 0] = 7  # joint 2 in frame 3 only
    body[2, 3, 0] = 5  # joint 3 in frame 2 only
    filled = fill_body(body, present_joints(body), PARENTS)
    expected = np.zeros((6, 4))
    expected[1:5, 0] = [1, 2, 3, 4]
    expected[1:5, 1] = [10, 20, 30, 40]  # linear between frames 1 and 4
    expected[1:5, 2] = 7  # held from its one frame
    expected[1:5, 3] = 5
    np.testing.assert_array_equal(filled[..., 0], expected)  # frames 0 and 5: nobody, left at 0


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


def test_scores_nan_and_the_frames_with_nobody_cut():
    bodies = np.zeros((2, 5, 4, 1))
    bodies[0, 1:3] = 1.0
    bodies[1, 2:4] = 2.0
    bodies[1, 3, 1] = np.nan
    scores = np.ones((2, 5, 4))
    scores[0, 1, 2] = 0.2
    present = present_joints(bodies, scores, min_score=0.5)
    assert not present[0, 1, 2] and not present[1, 3, 1] and present[1, 3, 0]
    filled, first, end = fill_missing(np.nan_to_num(bodies), present, PARENTS)
    assert (first, end) == (1, 4)  # frames 0 and 4 hold nobody
    assert filled[0, 3].sum() == 0 and filled[1, 1].sum() == 0  # outside each body's own frames
    assert filled[0, 1, 2, 0] == 1.0 and filled[1, 3, 1, 0] == 2.0
