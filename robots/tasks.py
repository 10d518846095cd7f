"""The reach tasks on the emulated arm: where the targets go, what the operator does, and what
counts as success (pure).

``two-targets`` (the demo's task): each episode places two targets at random, one left and one
right of the base, both reachable; only the camera shows where they are. A demonstration reaches
one of them (chosen at random, so demonstrations are bimodal) and holds there. Success is read from
the emulated arm's own joint state through the same kinematics the camera draws
(``robots.kinematics``): the gripper tip must end within the task's tolerance of a target; ending
anywhere else (e.g. between the targets) fails.

``one-target`` (precision): one target, on a side drawn at random, and half the tolerance. There
is no mode to choose, so its misses measure how precisely a policy places the tip, apart from the
mode choice that the two-target task also tests.
"""

import math
from dataclasses import dataclass

import numpy as np

from lerobot_policy_drift.robots.kinematics import reach, tip
from lerobot_policy_drift.robots.leader_scripts import Recorded
from lerobot_policy_drift.robots.scene import SceneObject

TARGET_RADIUS = 0.07  # image heights
TOLERANCE = 0.08  # tip within this distance of a target's centre counts as reached (two targets)
COLORS = ((235, 205, 40), (235, 205, 40))  # identical: the policy must tell them apart by place
# Where targets are drawn from (world frame, image heights): each side of the base.
SIDES = {"left": ((-0.45, 0.02), (-0.2, 0.3)), "right": ((0.2, 0.02), (0.45, 0.3))}


@dataclass(frozen=True)
class Target:
    side: str
    x: float
    y: float
    angles: dict[str, float]  # pitch-joint angles that reach it


@dataclass(frozen=True)
class ReachTask:
    """A reach task: how many targets an episode shows and how close the tip must end."""

    name: str
    targets: int
    tolerance: float
    instruction: str  # the dataset's task string

    def sample(self, rng: np.random.Generator) -> tuple[Target, ...]:
        """The episode's targets: one on each side, or one on a side drawn at random."""
        if self.targets == 2:
            return sample_targets(rng)
        side = ("left", "right")[int(rng.integers(2))]
        return sample_targets(rng, sides=(side,))

    def outcome(self, angles: dict[str, float], targets) -> str:
        return outcome(angles, targets, self.tolerance)

    def between(self, angles: dict[str, float], targets) -> bool:
        return len(targets) == 2 and between(angles, targets, self.tolerance)


TASKS = {
    task.name: task
    for task in (
        ReachTask("two-targets", 2, TOLERANCE, "reach one of the two targets"),
        ReachTask("one-target", 1, TOLERANCE / 2, "reach the target"),
    )
}


def sample_targets(rng: np.random.Generator, sides=tuple(SIDES)) -> tuple[Target, ...]:
    """One reachable target on each of ``sides`` of the base."""
    out = []
    for side in sides:
        low, high = SIDES[side]
        while True:
            x, y = rng.uniform(low, high)
            angles = reach(float(x), float(y))
            if angles is not None:
                out.append(Target(side, float(x), float(y), angles))
                break
    return tuple(out)


def scene_objects(targets) -> list[SceneObject]:
    colors = COLORS[: len(targets)]
    return [SceneObject(t.x, t.y, TARGET_RADIUS, c) for t, c in zip(targets, colors, strict=True)]


def outcome(angles: dict[str, float], targets, tolerance: float = TOLERANCE) -> str:
    """``left`` / ``right`` (the target reached) or ``miss``."""
    return next((t.side for t in targets if tip_gap(angles, (t,)) <= tolerance), "miss")


def tip_gap(angles: dict[str, float], targets) -> float:
    """The tip's distance to the nearest target's centre (image heights): the precision measure."""
    return min(math.dist(tip(angles), (t.x, t.y)) for t in targets)


def between(angles: dict[str, float], targets, tolerance: float = TOLERANCE) -> bool:
    """A miss with the tip left-right between the targets: the mode-averaging failure. The two
    reaches mirror each other, so their average in joint space is near the upright rest pose —
    a policy that averages the modes stays (or drifts back) up there, between the targets."""
    x, _ = tip(angles)
    left, right = sorted(targets, key=lambda t: t.x)
    return outcome(angles, targets, tolerance) == "miss" and left.x < x < right.x


def ticks_for(angles: dict[str, float], calibration: dict[str, dict]) -> list[float]:
    """Present-position ticks per servo (ID order) for joint angles (radians from mid-range)."""
    cals = sorted(calibration.items(), key=lambda kv: kv[1]["id"])
    mids = {name: (c["range_min"] + c["range_max"]) / 2 for name, c in cals}
    return [mids[name] + angles.get(name, 0.0) * 4096 / (2 * math.pi) for name, _ in cals]


def operator_motion(
    start: dict, goal: dict, calibration: dict, move_s: float, hold_s: float, steps: int = 40
) -> Recorded:
    """A hand moving the leader from ``start`` to ``goal`` angles (smooth in joint space), then holding."""
    times, ticks = [], []
    for i in range(steps + 1):
        s = i / steps
        w = 0.5 - 0.5 * math.cos(math.pi * s)  # zero velocity at both ends
        angles = {j: (1 - w) * start.get(j, 0.0) + w * goal.get(j, 0.0) for j in set(start) | set(goal)}
        times.append(s * move_s)
        ticks.append(tuple(ticks_for(angles, calibration)))
    times.append(move_s + hold_s)
    ticks.append(ticks[-1])
    return Recorded(tuple(times), tuple(ticks))


def correction_weight(t: float, move_s: float, hold_s: float) -> float:
    """How much of a demonstration's command offset (``demos.arm.record``'s ``command_noise``) the
    follower is sent ``t`` seconds into the reach: none at the start, all of it on arrival (eased
    in as the reach is), none again halfway through the hold — the arm arrives off its goal and is
    brought back onto it while the recorded action stays the operator's."""
    if t <= move_s:
        return 0.5 - 0.5 * math.cos(math.pi * t / move_s)
    return max(0.0, 1.0 - (t - move_s) / (hold_s / 2))
