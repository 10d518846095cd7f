"""Headless calibration files: LeRobot's location rule and format, reuse of a lab's file."""

import json

import pytest
from lerobot.robots.utils import make_robot_from_config
from lerobot.utils.constants import HF_LEROBOT_CALIBRATION

from lerobot_policy_drift.robots.arms import follower_config
from lerobot_policy_drift.robots.calibration import calibration_file, default_calibration, load_or_write

IDS = {"shoulder_pan": 1, "shoulder_lift": 2, "elbow_flex": 3, "wrist_flex": 4, "wrist_roll": 5, "gripper": 6}


def test_default_location_is_lerobots(tmp_path):
    assert (
        calibration_file("so100", "follower", "a", None)
        == HF_LEROBOT_CALIBRATION / "robots/so_follower/a.json"
    )
    assert (
        calibration_file("koch", "leader", "b", None)
        == HF_LEROBOT_CALIBRATION / "teleoperators/koch_leader/b.json"
    )
    assert calibration_file("so101", "follower", "c", tmp_path) == tmp_path / "c.json"


def test_written_file_is_what_lerobot_loads(tmp_path):
    written = load_or_write(tmp_path / "arm.json", default_calibration("so100", IDS))
    robot = make_robot_from_config(follower_config("so100", "/dev/null", "arm", tmp_path))
    assert {name: vars(cal) for name, cal in robot.calibration.items()} == written
    assert written["wrist_roll"]["range_min"] == 0 and written["wrist_roll"]["range_max"] == 4095
    assert all(abs(c["homing_offset"]) <= 2047 for c in written.values())  # Feetech's 11-bit magnitude


def test_existing_file_is_reused_and_a_mismatch_refused(tmp_path):
    path = tmp_path / "arm.json"
    lab = default_calibration("koch", IDS)
    lab["elbow_flex"]["range_min"] = 1111
    path.write_text(json.dumps(lab))
    assert load_or_write(path, default_calibration("koch", IDS))["elbow_flex"]["range_min"] == 1111
    path.write_text(json.dumps({"left_wheel": lab["elbow_flex"]}))
    with pytest.raises(ValueError, match="names motors"):
        load_or_write(path, default_calibration("koch", IDS))
