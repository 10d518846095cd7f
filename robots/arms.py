"""Which arms Drift drives, and how to build LeRobot's own configs for them.

Nothing here hard-codes a motor table: the motor names, IDs and models are read from the
LeRobot follower/leader classes themselves (``motor_table``), so the runtime and the emulated
arms always agree with the drivers a lab uses.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from lerobot.cameras.configs import CameraConfig
from lerobot.cameras.zmq.configuration_zmq import ZMQCameraConfig
from lerobot.motors import Motor
from lerobot.robots import RobotConfig, koch_follower, so_follower  # noqa: F401 (registers the configs)
from lerobot.teleoperators import TeleoperatorConfig, koch_leader, so_leader  # noqa: F401


@dataclass(frozen=True)
class ArmSpec:
    name: str
    follower_type: str  # LeRobot RobotConfig choice name
    leader_type: str  # LeRobot TeleoperatorConfig choice name
    protocol: str  # "feetech" (SCS/STS packets) or "dynamixel" (Protocol 2.0)


ARMS = {
    "so100": ArmSpec("so100", "so100_follower", "so100_leader", "feetech"),
    "so101": ArmSpec("so101", "so101_follower", "so101_leader", "feetech"),
    "koch": ArmSpec("koch", "koch_follower", "koch_leader", "dynamixel"),
}


def arm_spec(arm: str) -> ArmSpec:
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of {sorted(ARMS)}.")
    return ARMS[arm]


def follower_config(
    arm: str,
    port: str,
    robot_id: str,
    calibration_dir: Path | None = None,
    cameras: dict[str, CameraConfig] | None = None,
    **options,
) -> RobotConfig:
    """LeRobot's follower config for ``arm`` (e.g. ``so100_follower``); ``options`` are its own fields."""
    cls = RobotConfig.get_choice_class(arm_spec(arm).follower_type)
    return cls(port=port, id=robot_id, calibration_dir=calibration_dir, cameras=cameras or {}, **options)


def leader_config(
    arm: str, port: str, teleop_id: str, calibration_dir: Path | None = None
) -> TeleoperatorConfig:
    """LeRobot's leader-arm config for ``arm`` (e.g. ``so100_leader``)."""
    cls = TeleoperatorConfig.get_choice_class(arm_spec(arm).leader_type)
    return cls(port=port, id=teleop_id, calibration_dir=calibration_dir)


# LeRobot's ZMQCamera.disconnect() waits 2 s for its read thread, then terminates the ZMQ context;
# a thread still blocked in recv (default timeout 5 s, i.e. a stalled camera) aborts the process.
# A receive timeout under 2 s lets the thread return first.
ZMQ_RECV_TIMEOUT_MS = 1000


def zmq_camera_config(
    server_address: str, port: int, camera_name: str, width: int, height: int, fps: int
) -> ZMQCameraConfig:
    """A LeRobot ``zmq`` camera reading frames in LeRobot's image-server format."""
    return ZMQCameraConfig(
        server_address=server_address,
        port=port,
        camera_name=camera_name,
        width=width,
        height=height,
        fps=fps,
        timeout_ms=ZMQ_RECV_TIMEOUT_MS,
    )


def _offline_device(arm: str, role: str):
    """LeRobot's follower/leader object for ``arm``, built without connecting (no port is opened;
    its calibration folder is a throw-away one, so the user's calibration files are not touched)."""
    from lerobot.robots.utils import make_robot_from_config
    from lerobot.teleoperators.utils import make_teleoperator_from_config

    if role not in ("follower", "leader"):
        raise ValueError(f"role must be 'follower' or 'leader'; got {role!r}.")
    with tempfile.TemporaryDirectory() as calibration:
        if role == "follower":
            return make_robot_from_config(
                follower_config(arm, "/dev/null", f"{arm}_table", Path(calibration))
            )
        return make_teleoperator_from_config(
            leader_config(arm, "/dev/null", f"{arm}_table", Path(calibration))
        )


def motor_table(arm: str, role: str = "follower") -> dict[str, Motor]:
    """Motor name → LeRobot ``Motor`` (id, model, norm mode), as the real driver class defines it."""
    return dict(_offline_device(arm, role).bus.motors)


def device_name(arm: str, role: str = "follower") -> str:
    """LeRobot's class name for the device (``so_follower``, ``koch_leader``, …): its calibration folder."""
    return type(_offline_device(arm, role)).name
