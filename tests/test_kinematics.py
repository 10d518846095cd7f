"""The emulated arm's planar kinematics: forward, inverse, limits."""

import math

import numpy as np
import pytest

from lerobot_policy_drift.robots.kinematics import LINKS, REACH_LIMIT, chain_points, reach, tip, tip_heading


def test_zero_pose_points_straight_up():
    assert tip({}) == pytest.approx((0.0, sum(LINKS)))
    assert tip_heading({}) == pytest.approx(math.pi / 2)


def test_pan_shortens_the_horizontal_extent_only():
    bent = {"shoulder_lift": -0.8, "elbow_flex": -0.6}
    side, turned = tip(bent), tip({**bent, "shoulder_pan": 0.9})
    assert abs(turned[0]) < abs(side[0]) and turned[1] == pytest.approx(side[1])


def test_reach_round_trips_inside_its_limits():
    rng = np.random.default_rng(0)
    solved = 0
    for x, y in rng.uniform([-0.5, -0.05], [0.5, 0.45], size=(300, 2)):
        angles = reach(x, y)
        if angles is None:
            continue
        solved += 1
        assert tip(angles) == pytest.approx((x, y), abs=1e-9)
        assert all(abs(a) <= REACH_LIMIT + 1e-12 for a in angles.values())
    assert solved > 100


def test_gripper_points_down_where_it_can():
    angles = reach(0.35, 0.1)
    heading = tip_heading(angles)
    assert (math.cos(heading), math.sin(heading)) == pytest.approx((0.0, -1.0), abs=1e-9)


def test_unreachable_targets_are_none():
    assert reach(2.0, 0.0) is None
    assert reach(0.0, -0.5) is None  # below the table


def test_chain_has_base_elbow_wrist_tip():
    assert len(chain_points({})) == 4 and chain_points({})[0] == (0.0, 0.0)
