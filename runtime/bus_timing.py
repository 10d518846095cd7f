"""What loop rate an arm's bus can hold, measured on the bus itself, and what to do when it cannot.

Each tick reads every position (a sync read: the host waits for every servo's reply, and for the
USB adapter to hand the replies over) and writes every goal (a sync write: no reply, only its
bytes on the wire). The highest rate keeps that read (its p99) plus the write within ``BUS_SHARE``
of the period, leaving the rest for the tick's own work; with a leader arm, both buses' cycles
share that budget. drift-doctor reports it; drift-run refuses a faster loop at connect, before the
policy drives the arm. Reads only: nothing moves.
"""

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

BUS_READS = 40  # sync reads timed
BUS_SHARE = 0.8  # of each loop period the bus may take
SYS = Path("/sys")


@dataclass(frozen=True)
class BusCycle:
    motors: int
    read_p50_s: float
    read_p99_s: float
    write_s: float  # a sync write of every goal on the wire

    @property
    def highest_hz(self) -> int:
        return highest_hz([self])

    def describe(self) -> str:
        return (
            f"a sync read of {self.motors} positions takes p50 {self.read_p50_s * 1e3:.1f} ms, "
            f"p99 {self.read_p99_s * 1e3:.1f} ms; with the write, the bus sustains ≤ {self.highest_hz} Hz"
        )


def highest_hz(cycles: list[BusCycle]) -> int:
    """The highest loop rate when every tick reads (and writes) each bus in ``cycles`` in turn: the
    follower's, and in teleop phases the leader's, whose sync read has the same adapter cost."""
    return int(BUS_SHARE / sum(c.read_p99_s + c.write_s for c in cycles))


def held_up_advice(cycles: list[BusCycle], fps: int) -> str:
    """What to tell a user whose ``cycles`` miss ``fps`` only in their tail ("" otherwise): their
    median reads fit the budget, so the reads were held up now and then while they were timed (a
    machine busy for a moment, a reply retried), not slow every time (an adapter's latency timer)."""
    if highest_hz([replace(c, read_p99_s=c.read_p50_s) for c in cycles]) < fps:
        return ""
    return (
        f" The median read{'s' if len(cycles) > 1 else ''} would hold {fps} Hz: reads were held up now and "
        "then while they were timed (the machine busy, a reply retried); close what else is running and "
        "start again."
    )


def measure_bus_cycle(bus, reads: int = BUS_READS) -> BusCycle:
    """Time ``reads`` sync reads of Present_Position on a connected LeRobot ``MotorsBus``."""
    seconds = []
    for _ in range(reads):
        t0 = time.perf_counter()
        bus.sync_read("Present_Position", normalize=False)
        seconds.append(time.perf_counter() - t0)
    p50, p99 = np.percentile(seconds, [50, 99])
    n = len(bus.motors)
    # Sync write: header, instruction, address, length, id + 2 data bytes per servo, checksum
    # (Feetech; Dynamixel 2.0 is a few bytes longer), 10 bits a byte.
    write_bytes = 8 + 3 * n + (4 if bus.__class__.__name__.startswith("Dynamixel") else 0)
    return BusCycle(n, float(p50), float(p99), write_bytes * 10 / bus.port_handler.getBaudRate())


def cycle_for_rate(bus, fps: int) -> BusCycle:
    """The bus's cycle, measured once more when too slow for ``fps`` (the better of the two): with
    40 reads the p99 is almost the slowest one, and a single stalled read (a reply lost and
    retried, a machine busy for a moment) is not the bus. drift-run and drift-doctor judge alike."""
    cycle = measure_bus_cycle(bus)
    return cycle if cycle.highest_hz >= fps else measured_again(bus, cycle)


def measured_again(bus, cycle: BusCycle) -> BusCycle:
    """The better of ``cycle`` and a second measurement of ``bus`` (the rule of ``cycle_for_rate``)."""
    return min(cycle, measure_bus_cycle(bus), key=lambda c: c.read_p99_s)


def latency_timer(port: str, sys_root: Path = SYS) -> tuple[str, int | None]:
    """(the adapter's driver, its latency timer in ms or None) for a serial ``port``, from sysfs."""
    node = Path(os.path.realpath(port)).name
    device = sys_root / "class" / "tty" / node / "device"
    driver_link = device / "driver"
    driver = os.path.basename(os.readlink(driver_link)) if driver_link.is_symlink() else "unknown driver"
    timer = device / "latency_timer"
    return driver, int(timer.read_text().strip()) if timer.exists() else None


def latency_timer_fix(port: str, sys_root: Path = SYS) -> str:
    node = Path(os.path.realpath(port)).name
    return (
        f"echo 1 | sudo tee {sys_root}/bus/usb-serial/devices/{node}/latency_timer "
        '(to keep it: a udev rule ATTR{latency_timer}="1" for this adapter)'
    )
