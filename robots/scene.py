"""What the emulated camera sees: the arm from the side, drawn from its joint positions, plus objects.

The drawing is deliberately simple (lines and discs) but it is a function of the real emulated
state: a policy that watches this camera sees the arm move when its servos move, and sees the
objects a task places (``SceneObject``) where it placed them.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@dataclass(frozen=True)
class SceneObject:
    x: float  # 0..1 across the image
    y: float  # 0..1 down the image
    radius: float  # share of the image height
    rgb: tuple[int, int, int]


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
    table_y = int(0.85 * height)
    image[table_y:] = (120, 100, 80)
    for obj in objects:
        center = (int(obj.x * width), int(obj.y * height))
        cv2.circle(image, center, max(int(obj.radius * height), 1), obj.rgb, -1, cv2.LINE_AA)

    pan = angles.get("shoulder_pan", 0.0)
    squash = 0.35 + 0.65 * abs(math.cos(pan))  # the arm swings towards/away from the camera
    base = np.array([width / 2, table_y], float)
    cv2.ellipse(
        image, tuple(base.astype(int)), (int(0.08 * width), int(0.03 * height)), 0, 0, 360, (40, 40, 40), -1
    )
    tick = base + 0.08 * width * np.array([math.cos(pan), 0.35 * math.sin(pan)])
    cv2.line(image, tuple(base.astype(int)), tuple(tick.astype(int)), (230, 230, 230), 2, cv2.LINE_AA)

    heading = -math.pi / 2  # straight up
    point = base
    lengths = (0.30, 0.26, 0.12)
    colors = ((235, 140, 40), (60, 170, 230), (90, 210, 120))
    for joint, length, color in zip(JOINTS[1:4], lengths, colors, strict=True):
        heading += angles.get(joint, 0.0)
        step = length * height * np.array([math.cos(heading) * squash, math.sin(heading)])
        nxt = point + step
        cv2.line(
            image, tuple(point.astype(int)), tuple(nxt.astype(int)), color, max(height // 40, 2), cv2.LINE_AA
        )
        cv2.circle(image, tuple(point.astype(int)), max(height // 50, 2), (250, 250, 250), -1, cv2.LINE_AA)
        point = nxt

    opening = angles.get("gripper", 0.5)
    spread = (0.01 + 0.05 * opening) * height * (0.3 + 0.7 * abs(math.cos(angles.get("wrist_roll", 0.0))))
    normal = np.array([-math.sin(heading), math.cos(heading)])
    along = 0.06 * height * np.array([math.cos(heading), math.sin(heading)])
    for side in (-1, 1):
        root = point + side * spread * normal
        cv2.line(
            image,
            tuple(root.astype(int)),
            tuple((root + along).astype(int)),
            (220, 60, 60),
            max(height // 80, 1),
        )
    return image
