"""How a USB-serial adapter hands a servo's reply bytes to the host (pure timing, no I/O).

The servo finishes a status packet on the bus at some instant; the host's ``read()`` sees it later,
when the adapter ships its buffer over USB and the host controller next polls:

- **FTDI** (FT232R/FT232H; the U2D2 and many Waveshare boards): bytes wait in the chip until its
  62-byte payload is full (64-byte USB packet, 2 status bytes) or its *latency timer* expires,
  16 ms by default since the data began waiting, 1 ms when set low
  (``/sys/bus/usb-serial/devices/ttyUSB*/latency_timer``). FTDI application note AN232B-04, "Data
  Throughput, Latency and Handshaking", §3.
- **CH340/CH341**: no latency timer; what is in its 32-byte buffer goes out at the host's next
  poll.
- Every full-speed USB device is polled at most once per 1 ms frame (USB 2.0 §5.8.4, bulk IN on
  full speed), so nothing reaches the host between frames.

``ideal`` is today's emulator: each reply reaches the host the instant it is complete.
"""

import math
from dataclasses import dataclass
from typing import Literal

USB_FRAME_S = 0.001


@dataclass(frozen=True)
class Adapter:
    name: str
    latency_timer_s: float | None  # flush this long after data starts waiting; None: at the next poll
    buffer_bytes: int  # a full buffer is shipped at once
    frame_s: float  # the host polls once per frame; 0: no framing (ideal)

    def deliveries(self, replies: list[tuple[float, float, int]]) -> list[float]:
        """When the host has each reply, for replies given as (first byte on the bus, last byte on
        the bus, length) in bus order, seconds on one clock."""
        if self.frame_s == 0:
            return [done for _, done, _ in replies]
        shipped: list[float] = []  # per reply: when the flush that completed it happened
        waiting_since, pending = None, []
        for start, done, size in replies:
            if waiting_since is not None and self.latency_timer_s is not None:
                expiry = waiting_since + self.latency_timer_s
                if expiry <= start:  # the timer fired before this reply began
                    shipped += [expiry] * len(pending)
                    waiting_since, pending = None, []
            if waiting_since is None:
                waiting_since = start
            pending.append(size)
            if self.latency_timer_s is None or sum(pending) >= self.buffer_bytes:
                shipped += [done] * len(pending)  # full (or no timer): out at the next poll
                waiting_since, pending = None, []
        if pending:
            shipped += [waiting_since + self.latency_timer_s] * len(pending)
        return [self._next_frame(t) for t in shipped]

    def _next_frame(self, t: float) -> float:
        return math.ceil(t / self.frame_s - 1e-9) * self.frame_s


ADAPTERS = {
    "ideal": Adapter("ideal", None, 0, 0.0),
    "ftdi": Adapter("ftdi", 0.016, 62, USB_FRAME_S),
    "ftdi-low-latency": Adapter("ftdi-low-latency", 0.001, 62, USB_FRAME_S),
    "ch340": Adapter("ch340", None, 32, USB_FRAME_S),
}
AdapterName = Literal[tuple(ADAPTERS)]  # the names, for validated plans and command lines
