"""A simulated tick clock for drift-run sessions in the fast tests.

Each ``wait()`` returns the next tick at once on a virtual time line (tick k at k/fps), so a
session's length, tick count and handover timing are exact and nothing depends on how loaded the
machine is. The emulated arm, the cameras and inference still run in real time; tests that need
the loop's real rate run on the real clock and are marked slow.
"""

from lerobot_policy_drift.runtime.clock import Tick


class SimulatedClock:
    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self.t0: float | None = None
        self.missed = 0
        self._next = 0
        self._now = 0.0

    def now(self) -> float:
        return self._now

    def start(self) -> None:
        self.t0 = self._now = 0.0
        self._next = 0

    def wait(self) -> Tick:
        due = self.t0 + self._next * self.period
        tick = Tick(self._next, due, due, 0)
        self._next += 1
        self._now = due
        return tick
