"""Arm definitions build LeRobot's own configs, and motor tables come from LeRobot's driver classes."""

import pytest
from lerobot.cameras.zmq.configuration_zmq import ZMQCameraConfig
from lerobot.robots import RobotConfig
from lerobot.teleoperators import TeleoperatorConfig

from lerobot_policy_drift.robots.arms import (
    ARMS,
    follower_config,
    leader_config,
    motor_table,
    zmq_camera_config,
)

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


@pytest.mark.parametrize("arm", sorted(ARMS))
def test_follower_and_leader_configs_are_lerobots_own(arm, tmp_path):
    cam = zmq_camera_config("127.0.0.1", 5555, "top", 320, 240, 30)
    cfg = follower_config(
        arm, "/dev/ttyACM0", "arm1", tmp_path, cameras={"top": cam}, max_relative_target=5.0
    )
    # LeRobot 0.6 registers one config class under both so100_* and so101_* names.
    assert type(cfg) is RobotConfig.get_choice_class(f"{arm}_follower")
    assert cfg.port == "/dev/ttyACM0" and cfg.id == "arm1"
    assert cfg.calibration_dir == tmp_path and cfg.max_relative_target == 5.0
    assert isinstance(cfg.cameras["top"], ZMQCameraConfig) and cfg.cameras["top"].width == 320
    leader = leader_config(arm, "/dev/ttyACM1", "lead1", tmp_path)
    assert type(leader) is TeleoperatorConfig.get_choice_class(f"{arm}_leader")
    assert leader.port == "/dev/ttyACM1"


@pytest.mark.parametrize(
    ("arm", "role", "models"),
    [
        ("so100", "follower", {"sts3215"}),
        ("so101", "leader", {"sts3215"}),
        ("koch", "follower", {"xl430-w250", "xl330-m288"}),
        ("koch", "leader", {"xl330-m077"}),
    ],
)
def test_motor_tables_come_from_the_driver_classes(arm, role, models):
    table = motor_table(arm, role)
    assert list(table) == JOINTS
    assert [m.id for m in table.values()] == [1, 2, 3, 4, 5, 6]
    assert {m.model for m in table.values()} == models


def test_unknown_arm_or_role_names_what_is_allowed():
    with pytest.raises(
        ValueError, match=r"unknown arm 'so102'; expected one of \['koch', 'so100', 'so101'\]"
    ):
        follower_config("so102", "/dev/null", "x")
    with pytest.raises(ValueError, match="role must be"):
        motor_table("so100", "operator")
