"""Planar kinematics of the emulated arm as its camera sees it (pure).

The emulated camera looks at the arm from the side. In its world frame the arm's base is the
origin, x points right, y points up, and the unit is the image height. The three pitch joints
(shoulder_lift, elbow_flex, wrist_flex) turn the links counter-clockwise by their angle (radians
from the middle of the calibrated range); at zero the arm points straight up. shoulder_pan swings
the arm towards the camera, which shortens its horizontal extent by ``squash(pan)``. The renderer
draws exactly these points, and task success is measured on them, so what the camera shows and
what counts as reaching a target are the same geometry.
"""

import math

LINKS = (0.30, 0.26, 0.12)  # upper arm, forearm, wrist-to-gripper tip (image heights)
PITCH_JOINTS = ("shoulder_lift", "elbow_flex", "wrist_flex")
REACH_LIMIT = math.pi / 2  # ±90°: the emulator's default calibrated range of the pitch joints


def squash(pan: float) -> float:
    return 0.35 + 0.65 * abs(math.cos(pan))


def chain_points(angles: dict[str, float]) -> list[tuple[float, float]]:
    """Base, elbow, wrist and gripper tip in the world frame."""
    heading = math.pi / 2
    s = squash(angles.get("shoulder_pan", 0.0))
    points = [(0.0, 0.0)]
    for joint, length in zip(PITCH_JOINTS, LINKS, strict=True):
        heading += angles.get(joint, 0.0)
        x, y = points[-1]
        points.append((x + length * math.cos(heading) * s, y + length * math.sin(heading)))
    return points


def tip(angles: dict[str, float]) -> tuple[float, float]:
    return chain_points(angles)[-1]


def tip_heading(angles: dict[str, float]) -> float:
    return math.pi / 2 + sum(angles.get(j, 0.0) for j in PITCH_JOINTS)


# Gripper headings tried in turn: pointing down first, then tilted, then level.
HEADINGS = tuple(
    -math.pi / 2 + k * math.pi / 8 * sign for k in range(5) for sign in ((1,) if k == 0 else (-1, 1))
)


def reach(x: float, y: float, headings: tuple[float, ...] = HEADINGS) -> dict[str, float] | None:
    """Pitch-joint angles putting the tip at (x, y) (pan 0) with the gripper at the first of
    ``headings`` that works; None if out of reach or outside ±90° per joint."""
    for heading in headings:
        if (angles := _reach(x, y, heading)) is not None:
            return angles
    return None


def _reach(x: float, y: float, heading: float) -> dict[str, float] | None:
    l1, l2, l3 = LINKS
    wx, wy = x - l3 * math.cos(heading), y - l3 * math.sin(heading)
    d2 = wx * wx + wy * wy
    cos_elbow = (d2 - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if not -1.0 <= cos_elbow <= 1.0:
        return None
    for elbow in (math.acos(cos_elbow), -math.acos(cos_elbow)):
        h1 = math.atan2(wy, wx) - math.atan2(l2 * math.sin(elbow), l1 + l2 * math.cos(elbow))
        a1 = _wrap(h1 - math.pi / 2)
        a2 = elbow
        a3 = _wrap(heading - h1 - elbow)
        if all(abs(a) <= REACH_LIMIT for a in (a1, a2, a3)):
            return {"shoulder_lift": a1, "elbow_flex": a2, "wrist_flex": a3}
    return None


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi
