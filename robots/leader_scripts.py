"""Hands for an emulated leader arm: Present_Position (raw ticks, servo-ID order) as a function of time.

Scripts are small picklable objects, so a test can hand one to an emulator running in another
process. Any picklable callable ``t -> sequence of ticks`` works the same way.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hold:
    """A hand holding the leader still at ``ticks``."""

    ticks: tuple[float, ...]

    def __call__(self, t: float) -> list[float]:
        return list(self.ticks)


@dataclass(frozen=True)
class Sway:
    """Every joint swings around ``center`` with its own amplitude, one period for all joints."""

    center: tuple[float, ...]
    amplitude: tuple[float, ...]
    period_s: float = 4.0

    def __call__(self, t: float) -> list[float]:
        phase = 2 * np.pi * t / self.period_s
        return [
            c + a * np.sin(phase + 0.7 * i)
            for i, (c, a) in enumerate(zip(self.center, self.amplitude, strict=True))
        ]


@dataclass(frozen=True)
class Recorded:
    """A recorded trajectory: ``times`` [T] seconds, ``ticks`` [T, n_joints]; linear in between."""

    times: tuple[float, ...]
    ticks: tuple[tuple[float, ...], ...]
    loop: bool = False

    def __call__(self, t: float) -> list[float]:
        times = np.asarray(self.times)
        if self.loop and times[-1] > times[0]:
            t = times[0] + (t - times[0]) % (times[-1] - times[0])
        ticks = np.asarray(self.ticks)
        return [float(np.interp(t, times, ticks[:, j])) for j in range(ticks.shape[1])]


def sway_within(calibration: dict[str, dict], share: float = 0.25, period_s: float = 4.0) -> Sway:
    """A sway that stays inside each joint's calibrated range (``share`` of the half-range)."""
    cals = sorted(calibration.values(), key=lambda c: c["id"])
    center = tuple((c["range_min"] + c["range_max"]) / 2 for c in cals)
    amplitude = tuple(share * (c["range_max"] - c["range_min"]) / 2 for c in cals)
    return Sway(center, amplitude, period_s)
