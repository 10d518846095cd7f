"""The emulated arm's planar kinematics: forward, inverse, limits."""

import math

import numpy as np
import pytest

from lerobot_policy_drift.robots.kinematics import (
    HEADINGS,
    LINKS,
    REACH_LIMIT,
    chain_points,
    postures,
    reach,
    tip,
    tip_heading,
)
from lerobot_policy_drift.robots.tasks import SIDES


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


def test_reach_moves_the_joints_least_from_rest():
    rng = np.random.default_rng(1)
    for x, y in rng.uniform([0.2, 0.02], [0.45, 0.3], size=(50, 2)):
        chosen = reach(x, y)
        if chosen is None:
            continue
        effort = sum(a * a for a in chosen.values())
        for posture in postures(x, y, np.asarray(HEADINGS)):  # e.g. the first heading that works
            assert effort <= float(np.square(posture).sum()) + 1e-12


@pytest.mark.parametrize("side", sorted(SIDES))
def test_nearby_targets_get_nearby_postures(side):
    """The scripted operator's goal is a continuous function of where the target is: no jump of
    posture between two targets 0.01 apart anywhere the tasks put targets."""
    (x0, y0), (x1, y1) = SIDES[side]
    grid = {
        (i, j): reach(float(x), float(y))
        for i, x in enumerate(np.arange(x0, x1, 0.01))
        for j, y in enumerate(np.arange(y0, y1, 0.01))
    }
    steps = [
        max(abs(a[k] - b[k]) for k in a)
        for (i, j), a in grid.items()
        for b in (grid.get((i + 1, j)), grid.get((i, j + 1)))
        if a is not None and b is not None
    ]
    assert len(steps) > 500
    assert max(steps) < 0.15  # radians; the first working heading of HEADINGS jumped 0.57 here


def test_unreachable_targets_are_none():
    assert reach(2.0, 0.0) is None
    assert reach(0.0, -0.5) is None  # below the table


def test_chain_has_base_elbow_wrist_tip():
    assert len(chain_points({})) == 4 and chain_points({})[0] == (0.0, 0.0)
