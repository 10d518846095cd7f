"""A simulated tick clock for drift-run sessions in the fast tests.

Each ``wait()`` returns the next tick at once on a virtual time line (tick k at k/fps), so a
session's length, tick count and handover timing are exact and nothing depends on how loaded the
machine is. The emulated arm, the cameras and inference still run in real time; tests that need
the loop's real rate run on the real clock and are marked slow. A test that needs inference to
take an exact number of ticks holds the clock at a tick (``hold_at``) until it answers: otherwise a
loaded machine lets the loop outrun the inference thread by any number of ticks.
"""

import threading

from lerobot_policy_drift.runtime.clock import Tick

HOLD_LIMIT_S = 120  # a hold never released is a broken test, not a slow machine


class SimulatedClock:
    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self.t0: float | None = None
        self.missed = 0
        self._next = 0
        self._now = 0.0
        self._hold: int | None = None
        self._released = threading.Event()

    def hold_at(self, index: int) -> None:
        """Tick ``index`` and later wait until ``release()`` (called from another thread)."""
        self._released.clear()
        self._hold = index

    def release(self) -> None:
        self._hold = None
        self._released.set()

    def now(self) -> float:
        return self._now

    def start(self) -> None:
        self.t0 = self._now = 0.0
        self._next = 0

    def wait(self) -> Tick:
        held = self._hold is not None and self._next >= self._hold
        if held and not self._released.wait(HOLD_LIMIT_S):
            raise RuntimeError(f"the simulated clock was held at tick {self._hold} and never released")
        due = self.t0 + self._next * self.period
        tick = Tick(self._next, due, due, 0)
        self._next += 1
        self._now = due
        return tick
