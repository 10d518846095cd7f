"""The servo joint model: closed-form speed-limited lag against a fine numerical integration."""

import math

import pytest

from lerobot_policy_drift.robots.dynamics import JointDynamics, advance

DYN = JointDynamics(max_speed=3000.0, tau=0.03)


def euler(position, goal, dt, dyn, steps=200_000):
    h = dt / steps
    for _ in range(steps):
        position += h * max(-dyn.max_speed, min(dyn.max_speed, (goal - position) / dyn.tau))
    return position


@pytest.mark.parametrize(
    ("start", "goal", "dt"), [(0, 1000, 0.1), (0, 1000, 0.5), (500, 480, 0.01), (2000, -300, 0.3)]
)
def test_closed_form_matches_integration(start, goal, dt):
    position, _ = advance(start, goal, dt, DYN)
    assert position == pytest.approx(euler(start, goal, dt, DYN), abs=0.05)


def test_far_goal_slews_at_max_speed_then_settles():
    position, velocity = advance(0.0, 4000.0, 0.5, DYN)
    assert position == pytest.approx(1500.0) and velocity == pytest.approx(3000.0)
    position, velocity = advance(0.0, 4000.0, 5.0, DYN)
    assert position == pytest.approx(4000.0, abs=1e-6) and abs(velocity) < 1e-6


def test_near_goal_decays_exponentially():
    position, _ = advance(0.0, 10.0, DYN.tau, DYN)
    assert position == pytest.approx(10.0 * (1 - math.exp(-1)))


def test_split_steps_equal_one_step():
    """Lazy updates at arbitrary read times must not change the trajectory."""
    a, _ = advance(0.0, 2500.0, 0.37, DYN)
    b, _ = advance(0.0, 2500.0, 0.1, DYN)
    b, _ = advance(b, 2500.0, 0.27, DYN)
    assert a == pytest.approx(b, abs=1e-9)


def test_no_time_no_motion_and_bad_parameters_refused():
    assert advance(5.0, 100.0, 0.0, DYN) == (5.0, 0.0)
    with pytest.raises(ValueError, match="max_speed > 0"):
        JointDynamics(max_speed=0.0, tau=0.03)
