"""Joint dynamics of an emulated position servo: a speed-limited first-order lag, in closed form.

A hobby servo's position loop behaves, to first order, like ``dx/dt = clip((goal - x) / tau, ±v_max)``:
far from the goal it slews at its no-load speed, close to it the error decays exponentially
with time constant ``tau``. Integrating that in closed form (instead of fixed sub-steps) lets the
emulator advance a joint lazily, only when someone reads it, by any gap exactly.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class JointDynamics:
    max_speed: float  # ticks per second (no-load slew rate)
    tau: float  # seconds: time constant of the exponential approach near the goal

    def __post_init__(self):
        if self.max_speed <= 0 or self.tau <= 0:
            raise ValueError(f"JointDynamics needs max_speed > 0 and tau > 0; got {self}.")


def advance(position: float, goal: float, dt: float, dyn: JointDynamics) -> tuple[float, float]:
    """Position and velocity (ticks/s) after ``dt`` seconds of tracking a fixed ``goal``."""
    if dt <= 0:
        return position, 0.0
    error = goal - position
    direction = math.copysign(1.0, error)
    # Slewing phase: while |error| > v_max * tau the commanded speed saturates.
    linear_band = dyn.max_speed * dyn.tau
    slew_distance = max(abs(error) - linear_band, 0.0)
    slew_time = slew_distance / dyn.max_speed
    if dt <= slew_time:
        return position + direction * dyn.max_speed * dt, direction * dyn.max_speed
    position += direction * slew_distance
    remaining = goal - position
    decay = math.exp(-(dt - slew_time) / dyn.tau)
    return goal - remaining * decay, remaining * decay / dyn.tau
