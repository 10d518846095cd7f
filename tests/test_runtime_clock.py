"""The tick clock on a simulated time line: absolute deadlines, overruns skipped not burst."""

import pytest

from lerobot_policy_drift.runtime.clock import TickClock


class FakeTime:
    def __init__(self):
        self.t = 100.0

    def now(self):
        self.t += 1e-6  # every look at the clock costs a microsecond (the spin loop terminates)
        return self.t

    def sleep(self, s):
        self.t += s


def make(fps=10):
    ft = FakeTime()
    clock = TickClock(fps, spin_s=0.002, now=ft.now, sleep=ft.sleep)
    clock.start()
    return clock, ft


def test_ticks_land_on_absolute_deadlines_without_drift():
    clock, ft = make(fps=10)
    starts = []
    for _ in range(50):
        tick = clock.wait()
        starts.append(tick.started)
        ft.t += 0.03  # work inside the tick (30 % of the period)
    assert [round(s - clock.t0, 4) for s in starts] == [round(k * 0.1, 4) for k in range(50)]
    assert clock.missed == 0


def test_an_overrun_skips_missed_deadlines_instead_of_bursting():
    clock, ft = make(fps=10)
    clock.wait()  # tick 0
    ft.t += 0.35  # a stall of 3.5 periods
    tick = clock.wait()
    assert tick.index == 3 and tick.missed_before == 2  # ticks 1 and 2 are gone, 3 fires late once
    assert tick.jitter == pytest.approx(0.05, abs=1e-4)
    nxt = clock.wait()
    assert nxt.index == 4 and nxt.jitter < 1e-4  # back on the grid, no catch-up burst
    assert clock.missed == 2


def test_bad_rate_is_refused():
    with pytest.raises(ValueError, match="fps must be > 0"):
        TickClock(0)
