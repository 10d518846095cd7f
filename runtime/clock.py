"""The loop's clock: tick k is due at t0 + k/fps, on absolute deadlines.

Sleeping ``period - elapsed`` (LeRobot's ``precise_sleep`` on Linux) lets every overrun push
all later ticks back; here an overrun only costs the ticks whose deadlines passed. Those are
counted as missed and skipped, never fired in a burst to catch up. The wait sleeps until
``spin_s`` before the deadline, then spins, because Linux ``time.sleep`` overshoots by tens to
hundreds of microseconds.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    index: int  # k: due at t0 + k / fps
    due: float  # monotonic seconds
    started: float  # when the wait returned
    missed_before: int  # deadlines skipped since the previous tick (overrun)

    @property
    def jitter(self) -> float:
        """Seconds the tick started after its deadline (>= 0)."""
        return self.started - self.due


class TickClock:
    def __init__(
        self,
        fps: float,
        spin_s: float = 0.002,
        now: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if fps <= 0:
            raise ValueError(f"fps must be > 0; got {fps}.")
        self.period = 1.0 / fps
        self.spin_s = spin_s
        self._now, self._sleep = now, sleep
        self.t0: float | None = None
        self._next = 0
        self.missed = 0

    def now(self) -> float:
        """The clock's time (the session's time line; simulated in tests)."""
        return self._now()

    def start(self) -> None:
        self.t0 = self._now()
        self._next = 0

    def due(self, index: int) -> float:
        return self.t0 + index * self.period

    def wait(self) -> Tick:
        """Block until the next deadline that has not passed yet; return that tick."""
        if self.t0 is None:
            self.start()
        now = self._now()
        index = self._next
        # A deadline that already passed by more than a period is skipped (counted, not fired).
        late = int((now - self.due(index)) / self.period)
        missed = max(late, 0)
        index += missed
        due = self.due(index)
        remaining = due - now
        if remaining > self.spin_s:
            self._sleep(remaining - self.spin_s)
        while self._now() < due:
            pass
        self.missed += missed
        self._next = index + 1
        return Tick(index, due, self._now(), missed)
