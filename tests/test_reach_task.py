"""The reach tasks: targets reachable on both sides, success read from joint state; the one-target
task asks for half the tolerance and has no "between"."""

import numpy as np
import pytest

from lerobot_policy_drift.robots.calibration import default_calibration
from lerobot_policy_drift.robots.kinematics import tip
from lerobot_policy_drift.robots.scene import joint_angles
from lerobot_policy_drift.robots.tasks import (
    TASKS,
    TOLERANCE,
    between,
    correction_weight,
    operator_motion,
    outcome,
    sample_targets,
    scene_objects,
    ticks_for,
    tip_gap,
)

IDS = {"shoulder_pan": 1, "shoulder_lift": 2, "elbow_flex": 3, "wrist_flex": 4, "wrist_roll": 5, "gripper": 6}
CAL = default_calibration("so100", IDS)


def test_targets_one_each_side_and_reachable():
    rng = np.random.default_rng(0)
    for _ in range(20):
        left, right = sample_targets(rng)
        assert left.side == "left" and left.x < 0 < right.x and right.side == "right"
        for t in (left, right):
            assert tip(t.angles) == pytest.approx((t.x, t.y), abs=1e-9)
        assert len(scene_objects((left, right))) == 2


def test_outcome_is_read_from_the_joints():
    targets = sample_targets(np.random.default_rng(1))
    assert outcome(targets[0].angles, targets) == "left"
    assert outcome(targets[1].angles, targets) == "right"
    assert outcome({}, targets) == "miss"  # resting straight up: between the targets, above them
    halfway = {j: 0.5 * (targets[0].angles[j] + targets[1].angles[j]) for j in targets[0].angles}
    assert outcome(halfway, targets) == "miss"
    assert between(halfway, targets) and between({}, targets)  # the mode average is upright
    assert not between(targets[0].angles, targets)  # reached: not a miss
    beyond = {"shoulder_lift": 1.2, "elbow_flex": 0.6}  # tip out past the left target
    assert tip(beyond)[0] < targets[0].x and not between(beyond, targets)


def test_operator_motion_goes_from_start_to_goal_in_calibrated_ticks():
    goal = sample_targets(np.random.default_rng(2))[1]
    motion = operator_motion({}, goal.angles, CAL, move_s=1.5, hold_s=1.0)
    names = sorted(CAL, key=lambda n: CAL[n]["id"])
    start = dict(zip(names, motion(0.0), strict=True))
    end = dict(zip(names, motion(2.4), strict=True))
    assert joint_angles(start, CAL)["elbow_flex"] == pytest.approx(0.0)
    reached = joint_angles(end, CAL)
    assert tip(reached) == pytest.approx((goal.x, goal.y), abs=TOLERANCE / 10)
    assert motion(1.5) == motion(2.5)  # holds after the move
    assert (
        ticks_for({}, CAL)[1] == (CAL["shoulder_lift"]["range_min"] + CAL["shoulder_lift"]["range_max"]) / 2
    )


def _toward(angles: dict, gap: float, target) -> dict:
    """Pitch-joint angles whose tip ends ``gap`` from ``target`` (found along the ray from rest)."""
    for k in range(1, 2001):
        scaled = {j: a * k / 2000 for j, a in angles.items()}
        if tip_gap(scaled, (target,)) <= gap:
            return scaled
    raise AssertionError("the target is not reached along the ray")


def test_one_target_task_draws_one_target_on_either_side_and_asks_for_half_the_tolerance():
    one, two = TASKS["one-target"], TASKS["two-targets"]
    assert one.tolerance == TOLERANCE / 2 and two.tolerance == TOLERANCE
    rng = np.random.default_rng(0)
    sides = []
    for _ in range(40):
        (target,) = one.sample(rng)
        sides.append(target.side)
        assert tip(target.angles) == pytest.approx((target.x, target.y), abs=1e-9)
        assert len(scene_objects((target,))) == 1
    assert 10 <= sides.count("left") <= 30  # both sides, drawn at random
    # The two-target task draws exactly what it drew before tasks existed (values pinned from the
    # earlier code, 20040e8): the benchmarks' seeded layouts stay comparable across sessions.
    left, right = two.sample(np.random.default_rng(3))
    assert (left.side, left.x, left.y) == (
        "left",
        pytest.approx(-0.428588, abs=1e-6),
        pytest.approx(0.086307, abs=1e-6),
    )
    assert (right.side, right.x, right.y) == (
        "right",
        pytest.approx(0.400319, abs=1e-6),
        pytest.approx(0.183005, abs=1e-6),
    )

    (target,) = one.sample(np.random.default_rng(5))
    assert one.outcome(target.angles, (target,)) == target.side
    near = _toward(target.angles, 0.06, target)  # inside the two-target tolerance, outside this one
    assert 0.04 < tip_gap(near, (target,)) <= 0.06
    assert one.outcome(near, (target,)) == "miss" and two.outcome(near, (target,)) == target.side
    assert not one.between({}, (target,))  # one target: nothing to be between


def test_correction_weight_eases_in_over_the_reach_and_out_in_the_hold():
    move, hold = 1.5, 1.0
    assert correction_weight(0.0, move, hold) == pytest.approx(0.0)
    assert correction_weight(move / 2, move, hold) == pytest.approx(0.5)
    assert correction_weight(move, move, hold) == pytest.approx(1.0)
    assert correction_weight(move + hold / 4, move, hold) == pytest.approx(0.5)
    assert correction_weight(move + hold / 2, move, hold) == 0.0 == correction_weight(move + hold, move, hold)
    rising = [correction_weight(t, move, hold) for t in np.linspace(0, move, 16)]
    assert rising == sorted(rising)
