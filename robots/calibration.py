"""Headless calibration: the emulated servos and LeRobot's calibration JSON agree from the start.

LeRobot's ``connect()`` compares the calibration file with the servos' Homing_Offset and position
limits (and Drive_Mode on Dynamixel); when they match it neither prompts nor moves. The emulator
therefore preloads its registers from the same values it writes to (or reads from) the file.

Where the file goes is LeRobot's rule: ``<calibration_dir>/<id>.json``, where ``calibration_dir``
defaults to ``$HF_LEROBOT_CALIBRATION/robots/<so_follower|koch_follower>`` (and
``…/teleoperators/<so_leader|koch_leader>`` for leaders), ``$HF_LEROBOT_CALIBRATION`` defaulting
to ``~/.cache/huggingface/lerobot/calibration``.
"""

import json
from pathlib import Path

from lerobot_policy_drift.robots.arms import device_name

# A plausible hand calibration: mid-range homing offsets, ±90° body ranges, full-turn joints
# where LeRobot's own calibrate() records a full turn, a gripper with a 100° stroke.
_OFFSETS = [-709, 312, -145, 98, 41, -233]
_FULL_TURN = {"so100": {"wrist_roll"}, "so101": {"wrist_roll"}, "koch": {"shoulder_pan", "wrist_roll"}}


def default_calibration(arm: str, motors: dict[str, int]) -> dict[str, dict]:
    """LeRobot ``MotorCalibration`` fields per motor name (``motors``: name -> servo id)."""
    calibration = {}
    for index, (name, servo_id) in enumerate(motors.items()):
        if name in _FULL_TURN[arm]:
            low, high = 0, 4095
        elif name == "gripper":
            low, high = 2000, 3138
        else:
            low, high = 1024, 3072
        calibration[name] = {
            "id": servo_id,
            "drive_mode": 0,
            "homing_offset": _OFFSETS[index % len(_OFFSETS)],
            "range_min": low,
            "range_max": high,
        }
    return calibration


def calibration_file(arm: str, role: str, device_id: str, calibration_dir: Path | None) -> Path:
    """Where LeRobot's follower/leader class with this id reads its calibration (LeRobot's rule)."""
    if calibration_dir is None:
        from lerobot.utils.constants import HF_LEROBOT_CALIBRATION, ROBOTS, TELEOPERATORS

        kind = ROBOTS if role == "follower" else TELEOPERATORS
        calibration_dir = HF_LEROBOT_CALIBRATION / kind / device_name(arm, role)
    return Path(calibration_dir) / f"{device_id}.json"


def load_or_write(path: Path, default: dict[str, dict]) -> dict[str, dict]:
    """The calibration in ``path`` if it is there and names the same motors; else write ``default``.

    The file is written in LeRobot's format (draccus JSON of ``dict[str, MotorCalibration]``).
    """
    if path.is_file():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"calibration file {path} is not valid JSON ({err}); fix or delete it.") from err
        if set(existing) == set(default):
            return existing
        raise ValueError(
            f"calibration file {path} names motors {sorted(existing)}, expected {sorted(default)}; "
            "pass another --id or delete the file."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(default, indent=4))
    tmp.replace(path)
    return default
