"""The safety filter: NaN hold, joint limits, velocity and jerk clamps, each reported with its reason."""

import numpy as np
import pytest

from lerobot_policy_drift.runtime.safety import SafetyFilter, SafetyLimits

NAMES = ("a", "b")


def make(max_step=None, max_jerk=None):
    limits = SafetyLimits(NAMES, np.array([-10.0, 0.0]), np.array([10.0, 100.0]), max_step, max_jerk)
    f = SafetyFilter(limits)
    f.reset(np.array([0.0, 50.0]))
    return f


def test_nan_holds_the_last_safe_command():
    f = make()
    safe, why = f.apply(np.array([np.nan, 60.0]))
    assert safe.tolist() == [0.0, 60.0] and why[0].reason == "non_finite" and why[0].joints == ("a",)


def test_joint_limits_clamp():
    safe, why = make().apply(np.array([20.0, -5.0]))
    assert safe.tolist() == [10.0, 0.0] and [w.reason for w in why] == ["joint_limit"]


def test_velocity_limit_spreads_a_jump_over_ticks():
    f = make(max_step=np.array([1.0, 2.0]))
    first, why = f.apply(np.array([5.0, 50.0]))
    assert first.tolist() == [1.0, 50.0] and why[0].reason == "velocity" and why[0].joints == ("a",)
    trail = [f.apply(np.array([5.0, 50.0]))[0][0] for _ in range(5)]
    assert trail == [2.0, 3.0, 4.0, 5.0, 5.0]


def test_jerk_limit_ramps_the_speed():
    f = make(max_step=np.array([5.0, 5.0]), max_jerk=np.array([1.0, 1.0]))
    positions = [f.apply(np.array([10.0, 50.0]))[0][0] for _ in range(4)]
    assert positions == [1.0, 3.0, 6.0, 10.0]  # steps 1, 2, 3, 4: the change of step is ≤ 1


def test_clean_commands_pass_untouched():
    f = make(max_step=np.array([1.0, 1.0]))
    safe, why = f.apply(np.array([0.5, 50.5]))
    assert safe.tolist() == [0.5, 50.5] and why == []


def test_bad_limits_and_use_before_reset_are_refused():
    with pytest.raises(ValueError, match="one value per joint"):
        SafetyLimits(NAMES, np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="max_step must be > 0"):
        SafetyLimits(NAMES, np.zeros(2), np.ones(2), max_step=np.array([1.0, 0.0]))
    f = SafetyFilter(SafetyLimits(NAMES, np.zeros(2), np.ones(2)))
    with pytest.raises(RuntimeError, match="reset"):
        f.apply(np.zeros(2))
