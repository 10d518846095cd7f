"""DriftPolicy's processors: LeRobot's pipeline, with state ranges floored before normalizing."""

import numpy as np
import pytest
import torch

from lerobot_policy_drift.drift import make_drift_pre_post_processors
from lerobot_policy_drift.drift.processor_drift import floor_state_ranges
from tests.helpers import small_config


def _stats(state_min, state_max):
    return {
        "observation.state": {"min": np.array(state_min), "max": np.array(state_max)},
        "action": {"min": np.array(state_min), "max": np.array(state_max)},
    }


def test_only_narrow_state_ranges_are_widened_about_their_centre():
    cfg = small_config(state_range_floor=1.0)
    dim = cfg.input_features["observation.state"].shape[0]
    lo = np.array([0.0, -30.0, 50.0, 0.044] + [0.0] * (dim - 4))[:dim]
    hi = np.array([0.0, 30.0, 50.2, 0.044] + [0.0] * (dim - 4))[:dim]
    stats = _stats(lo, hi)
    out = floor_state_ranges(stats, cfg)
    np.testing.assert_array_equal(out["observation.state"]["min"][:4], [-0.5, -30.0, 49.6, 0.044 - 0.5])
    np.testing.assert_allclose(out["observation.state"]["max"][:4], [0.5, 30.0, 50.6, 0.044 + 0.5])
    np.testing.assert_array_equal(out["action"]["min"], lo)  # actions untouched
    np.testing.assert_array_equal(stats["observation.state"]["min"], lo)  # caller's stats untouched


@pytest.mark.parametrize("floor", [1.0, 0.0])
def test_a_joint_never_moved_in_the_data_tolerates_one_servo_tick_on_the_arm(floor):
    """LeRobot alone (floor 0) divides a constant joint by 1e-8: one tick (0.088°) reads as ~10⁷."""
    cfg = small_config(state_range_floor=floor)
    dim = cfg.input_features["observation.state"].shape[0]
    lo, hi = np.full(dim, -45.0), np.full(dim, 45.0)
    lo[0] = hi[0] = 12.0  # never moved
    pre, _ = make_drift_pre_post_processors(cfg, dataset_stats=_stats(lo, hi))
    state = torch.full((dim,), 0.0)
    state[0] = 12.0 + 0.088
    out = pre({"observation.state": state})["observation.state"]
    if floor:
        assert out.abs().max() <= 1.0 and abs(out[0, 0].item()) < 0.2
    else:
        assert abs(out[0, 0].item()) > 1e6


def test_environment_state_is_left_alone():
    """Its units vary (pixels, metres); only the robot's joints have known units."""
    cfg = small_config(env_state=True)
    dim = cfg.input_features["observation.environment_state"].shape[0]
    stats = {"observation.environment_state": {"min": np.zeros(dim), "max": np.full(dim, 0.2)}}
    out = floor_state_ranges(stats, cfg)
    np.testing.assert_array_equal(out["observation.environment_state"]["max"], np.full(dim, 0.2))
