"""The safety filter between the action queue and the bus (pure, always on).

In order: a command with a NaN/inf holds the last safe command; each joint is clamped to its
calibrated range; the change per tick is clamped (velocity); where set, the change of that change
is clamped (jerk), then the range is enforced again. Every intervention is returned with its
reason and joint so the runner can count and log it.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SafetyLimits:
    names: tuple[str, ...]
    lower: np.ndarray  # per joint, action units
    upper: np.ndarray
    max_step: np.ndarray | None = None  # per joint and tick (velocity)
    max_jerk: np.ndarray | None = None  # per joint and tick² (change of the step)

    def __post_init__(self):
        n = len(self.names)
        for field in ("lower", "upper", "max_step", "max_jerk"):
            value = getattr(self, field)
            if value is not None and np.shape(value) != (n,):
                raise ValueError(
                    f"SafetyLimits.{field} needs one value per joint ({n}); got shape {np.shape(value)}."
                )
        if np.any(self.lower > self.upper):
            raise ValueError("SafetyLimits: a lower limit is above its upper limit.")
        for field in ("max_step", "max_jerk"):
            value = getattr(self, field)
            if value is not None and np.any(value <= 0):
                raise ValueError(f"SafetyLimits.{field} must be > 0 for every joint.")


@dataclass(frozen=True)
class Intervention:
    reason: str  # "non_finite" | "joint_limit" | "velocity" | "jerk"
    joints: tuple[str, ...]


class SafetyFilter:
    def __init__(self, limits: SafetyLimits):
        self.limits = limits
        self.last: np.ndarray | None = None
        self.last_step = np.zeros(len(limits.names))

    def reset(self, position: np.ndarray) -> None:
        """Start from where the arm is (at rest: no step carried over)."""
        self.last = np.clip(np.asarray(position, np.float64), self.limits.lower, self.limits.upper)
        self.last_step = np.zeros(len(self.limits.names))

    def _joints(self, mask: np.ndarray) -> tuple[str, ...]:
        return tuple(n for n, m in zip(self.limits.names, mask, strict=True) if m)

    def apply(self, command: np.ndarray) -> tuple[np.ndarray, list[Intervention]]:
        if self.last is None:
            raise RuntimeError("SafetyFilter.reset(position) must be called before the first command.")
        lim = self.limits
        command = np.asarray(command, np.float64)
        out: list[Intervention] = []
        bad = ~np.isfinite(command)
        if bad.any():
            out.append(Intervention("non_finite", self._joints(bad)))
            command = np.where(bad, self.last, command)
        clipped = np.clip(command, lim.lower, lim.upper)
        if (moved := clipped != command).any():
            out.append(Intervention("joint_limit", self._joints(moved)))
        step = clipped - self.last
        if lim.max_step is not None:
            limited = np.clip(step, -lim.max_step, lim.max_step)
            if (moved := limited != step).any():
                out.append(Intervention("velocity", self._joints(moved)))
            step = limited
        if lim.max_jerk is not None:
            change = step - self.last_step
            limited = np.clip(change, -lim.max_jerk, lim.max_jerk)
            if (moved := limited != change).any():
                out.append(Intervention("jerk", self._joints(moved)))
            step = self.last_step + limited
        safe = np.clip(self.last + step, lim.lower, lim.upper)
        self.last_step = safe - self.last
        self.last = safe
        return safe, out
