"""What the emulated camera sees: the arm from the side, drawn from its joint positions, plus objects.

The drawing is deliberately simple (lines and discs) but it is a function of the real emulated
state: a policy that watches this camera sees the arm move when its servos move, and sees the
objects a task places (``SceneObject``) where it placed them. Geometry is ``robots.kinematics``:
world frame at the arm's base, y up, unit = image height; the base sits at the middle of the image
width, 15 % of the height above the bottom edge.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lerobot_policy_drift.robots.kinematics import chain_points, tip_heading

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


BASE_HEIGHT = 0.15  # the base's height above the image's bottom edge (image heights)


@dataclass(frozen=True)
class SceneObject:
    x: float  # world frame (see robots.kinematics): right of the base, image heights
    y: float  # above the base, image heights
    radius: float  # image heights
    rgb: tuple[int, int, int]


def to_pixel(x: float, y: float, width: int, height: int) -> tuple[int, int]:
    return int(round(width / 2 + x * height)), int(round((1 - BASE_HEIGHT) * height - y * height))


def joint_angles(present: dict[str, float], calibration: dict[str, dict]) -> dict[str, float]:
    """Radians from the middle of each joint's calibrated range; the gripper as an opening 0..1."""
    angles = {}
    for name, value in present.items():
        cal = calibration[name]
        low, high = cal["range_min"], cal["range_max"]
        if name == "gripper":
            angles[name] = min(max((value - low) / max(high - low, 1), 0.0), 1.0)
        else:
            angles[name] = (value - (low + high) / 2) * 2 * math.pi / 4096
    return angles


def render(
    angles: dict[str, float], width: int, height: int, objects: tuple[SceneObject, ...] = ()
) -> np.ndarray:
    """An RGB uint8 image [height, width, 3] of the arm (side view) and the objects."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (70, 74, 82)
    base = to_pixel(0.0, 0.0, width, height)
    image[base[1] :] = (120, 100, 80)
    for obj in objects:
        center = to_pixel(obj.x, obj.y, width, height)
        cv2.circle(image, center, max(int(round(obj.radius * height)), 1), obj.rgb, -1, cv2.LINE_AA)

    pan = angles.get("shoulder_pan", 0.0)
    cv2.ellipse(image, base, (int(0.08 * width), int(0.03 * height)), 0, 0, 360, (40, 40, 40), -1)
    tick = (int(base[0] + 0.08 * width * math.cos(pan)), int(base[1] + 0.03 * height * math.sin(pan)))
    cv2.line(image, base, tick, (230, 230, 230), 2, cv2.LINE_AA)

    points = [to_pixel(x, y, width, height) for x, y in chain_points(angles)]
    colors = ((235, 140, 40), (60, 170, 230), (90, 210, 120))
    for start, end, color in zip(points, points[1:], colors, strict=False):
        cv2.line(image, start, end, color, max(height // 40, 2), cv2.LINE_AA)
        cv2.circle(image, start, max(height // 50, 2), (250, 250, 250), -1, cv2.LINE_AA)

    heading = tip_heading(angles)
    opening = angles.get("gripper", 0.5)
    spread = (0.01 + 0.05 * opening) * height * (0.3 + 0.7 * abs(math.cos(angles.get("wrist_roll", 0.0))))
    normal = np.array([-math.sin(heading), -math.cos(heading)])  # pixel frame: y points down
    along = 0.06 * height * np.array([math.cos(heading), -math.sin(heading)])
    end = np.array(points[-1], float)
    for side in (-1, 1):
        root = end + side * spread * normal
        cv2.line(
            image,
            tuple(root.astype(int)),
            tuple((root + along).astype(int)),
            (220, 60, 60),
            max(height // 80, 1),
        )
    return image
