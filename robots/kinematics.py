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

import numpy as np

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


# The gripper headings that define where the arm can reach (the tasks' reachable set): pointing
# down, tilted by multiples of 22.5°, level.
HEADINGS = tuple(
    -math.pi / 2 + k * math.pi / 8 * sign for k in range(5) for sign in ((1,) if k == 0 else (-1, 1))
)
# The headings a reach is chosen from: every 0.5°, and HEADINGS themselves (so whatever they reach
# is found here too, to the last bit).
SEARCH_HEADINGS = np.concatenate([np.linspace(-math.pi, math.pi, 720, endpoint=False), HEADINGS])


def reach(x: float, y: float) -> dict[str, float] | None:
    """Pitch-joint angles putting the tip at (x, y) (pan 0), or None if no heading of ``HEADINGS``
    reaches it within ±90° per joint.

    Of every posture that reaches it (any heading in ``SEARCH_HEADINGS``, either elbow bend), the
    one that moves the joints least from the upright rest pose, where each reach starts: nearby
    targets get nearby postures, as a person's reaches would. (Taking the first heading of
    ``HEADINGS`` that works made the posture jump by up to 0.58 rad between targets 0.01 apart.)"""
    if not postures(x, y, np.asarray(HEADINGS)).size:
        return None
    found = postures(x, y, SEARCH_HEADINGS)
    best = found[np.argmin(np.square(found).sum(axis=1))]
    return dict(zip(PITCH_JOINTS, map(float, best), strict=True))


def postures(x: float, y: float, headings: np.ndarray) -> np.ndarray:
    """(n, 3) pitch-joint angles reaching (x, y) at ``headings``, both elbow bends, inside the limits."""
    l1, l2, l3 = LINKS
    wx, wy = x - l3 * np.cos(headings), y - l3 * np.sin(headings)
    cos_elbow = (wx * wx + wy * wy - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    ok = np.abs(cos_elbow) <= 1.0
    heading, wx, wy = headings[ok], wx[ok], wy[ok]
    bend = np.arccos(cos_elbow[ok])
    out = []
    for elbow in (bend, -bend):
        h1 = np.arctan2(wy, wx) - np.arctan2(l2 * np.sin(elbow), l1 + l2 * np.cos(elbow))
        angles = np.stack([_wrap(h1 - math.pi / 2), elbow, _wrap(heading - h1 - elbow)], axis=1)
        out.append(angles[np.all(np.abs(angles) <= REACH_LIMIT, axis=1)])
    return np.concatenate(out)


def _wrap(angle):
    return (angle + math.pi) % (2 * math.pi) - math.pi
