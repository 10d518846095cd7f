"""A chain of emulated servos behind a pseudo-terminal: what a USB servo adapter looks like to LeRobot.

One thread per chain reads instruction packets from the pty master, lets the addressed servos
execute them (``Servo``) and writes their status packets back after the time the real bus would
take: the request and reply bytes at the servo's baud rate plus each servo's Return_Delay_Time
(2 µs units; 500 µs at the factory, 0 after LeRobot's ``configure_motors``), then as the USB
adapter (``robots/adapters.py``) hands them to the host. Faults (``BusFaults``)
apply per status packet; a reply still pending when the client sends its next instruction is
dropped (on a half-duplex bus it would collide), so late replies never pile up. The client opens a stable symlink (``port``) to the current pty slave, so
an "unplug" removes the device node and a "re-plug" brings back the same path, as udev would.

The arrival times of goal writes (``sync_writes``) include the pty's own hop: the kernel moves a
pty's written bytes to the other side in a worker thread, woken on the writer's CPU, and a writer
that keeps that CPU busy (LeRobot's bus reads poll the port) delays it by up to a scheduler tick. A
real adapter's write has no such hop (BENCHMARKS §6, "The pty hop").
"""

import os
import random
import select
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from lerobot_policy_drift.robots.adapters import ADAPTERS, Adapter
from lerobot_policy_drift.robots.faults import BusFaults, updated
from lerobot_policy_drift.robots.servo import Refusal, Servo
from lerobot_policy_drift.robots.wire import (
    BROADCAST_ID,
    PING,
    READ,
    SYNC_READ,
    SYNC_WRITE,
    WRITE,
    BadPacket,
    Instruction,
    address_and_length,
    wire_for,
)

_PARTIAL_PACKET_TIMEOUT_S = 0.02  # servos drop a half-received packet after this much silence
SERVO_THREAD_FIFO = 10  # real-time priority of each chain's thread, where the OS grants it


def react_like_hardware() -> str:
    """Real-time priority for the calling thread, where the OS grants it (Linux; root or CAP_SYS_NICE).

    A servo takes a packet the instant its bytes arrive. A thread standing in for it, woken while
    every core runs something else, can wait for the scheduler's next tick (4 ms at CONFIG_HZ=250)
    before it sees, timestamps and answers the packet: measured on a 2-vCPU VM, every second 100 Hz
    goal write arrived ~3.8 ms late on the emulator's clock while drift-run's write had returned
    within 0.8 ms (BENCHMARKS §6). The thread sleeps in ``select`` between packets, so the priority
    takes no CPU from anything else. Returns what was set, for the rig's ``stats()``."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(SERVO_THREAD_FIFO))
    except (AttributeError, OSError):  # not Linux, or not permitted
        return "normal (real-time priority not permitted here)"
    return f"SCHED_FIFO {SERVO_THREAD_FIFO}"


class ServoChain:
    def __init__(
        self,
        protocol: str,
        servos: Sequence[Servo],
        port: Path,
        faults: BusFaults | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        adapter: Adapter = ADAPTERS["ideal"],
    ):
        self.wire = wire_for(protocol)
        self.adapter = adapter
        self.servos = {servo.servo_id: servo for servo in servos}
        self.port = Path(port)
        self.faults = faults or BusFaults()
        self.clock = clock
        self.lock = threading.RLock()  # guards servos and faults against the control thread
        self.transactions = 0
        self.sync_writes: deque[float] = deque(maxlen=1_000_000)  # arrival times: the actuation clock
        self._rng = random.Random(seed)
        self._master = self._slave = None
        self._wake_r, self._wake_w = os.pipe()
        self._plug_request: bool | None = None
        self._plug_done = threading.Event()
        self._running = False
        self._thread: threading.Thread | None = None
        self.thread_priority = "not started"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "ServoChain":
        self._plug_in()
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"servo-chain {self.port.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._unplug()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _plug_in(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        tmp = self.port.with_name(self.port.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self._slave))
        tmp.replace(self.port)  # atomic: the port path never points at a dead pty

    def _unplug(self) -> None:
        self.port.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    # -- control (any thread) ------------------------------------------------------------------
    def set_faults(self, **changes) -> BusFaults:
        """Change faults while a client is connected; returns once an unplug/re-plug took effect."""
        with self.lock:
            new = updated(self.faults, changes)
            plug_change = new.unplugged != self.faults.unplugged
            self.faults = new
        if plug_change and self._running:
            self._plug_done.clear()
            self._plug_request = not new.unplugged
            os.write(self._wake_w, b"p")
            self._plug_done.wait(timeout=2.0)
        elif plug_change:
            self._unplug() if new.unplugged else self._plug_in()
        return new

    def set_script(self, script: Callable[[float], Sequence[float]] | None) -> None:
        """Move limp joints by hand: ``script(t)`` gives Present_Position per servo (ID order), t in s."""
        with self.lock:
            t0 = self.clock()
            ids = sorted(self.servos)
            for index, servo_id in enumerate(ids):
                servo = self.servos[servo_id]
                servo.script = None if script is None else (lambda now, i=index: script(now - t0)[i])

    def snapshot(self) -> dict[int, dict]:
        """Every servo's state now: position, goal, torque and the calibration registers."""
        names = ["Present_Position", "Goal_Position", "Torque_Enable", "Homing_Offset"]
        names += ["Min_Position_Limit", "Max_Position_Limit", "Operating_Mode", "Return_Delay_Time"]
        with self.lock:
            now = self.clock()
            out = {}
            for servo_id, servo in sorted(self.servos.items()):
                servo.advance_to(now)
                out[servo_id] = {name: servo.get(name) for name in names if servo.has(name)}
                if servo.has("Lock"):
                    out[servo_id]["Lock"] = servo.get("Lock")
            return out

    def take_sync_write_times(self) -> list[float]:
        """Arrival times (s, monotonic) of the SYNC_WRITEs since the last call: when the arm was commanded."""
        with self.lock:
            times = list(self.sync_writes)
            self.sync_writes.clear()
        return times

    def power_cycle(self) -> None:
        with self.lock:
            now = self.clock()
            for servo in self.servos.values():
                servo.advance_to(now)
                servo.power_cycle(now)

    # -- serving (chain thread) ----------------------------------------------------------------
    def _serve(self) -> None:
        self.thread_priority = react_like_hardware()
        buf = bytearray()
        last_rx = 0.0
        while self._running:
            fds = [self._wake_r] + ([self._master] if self._master is not None else [])
            ready, _, _ = select.select(fds, [], [], _PARTIAL_PACKET_TIMEOUT_S)
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
                if self._plug_request is not None:
                    self._plug_in() if self._plug_request else self._unplug()
                    self._plug_request = None
                    buf.clear()
                    self._plug_done.set()
                continue
            now = self.clock()
            if not ready:
                if buf and now - last_rx > _PARTIAL_PACKET_TIMEOUT_S:
                    buf.clear()
                continue
            try:
                buf += os.read(self._master, 4096)
            except OSError:
                continue
            last_rx = now
            for packet in self.wire.split(buf):
                self._answer(packet, now)

    def _answer(self, packet: Instruction | BadPacket, received: float) -> None:
        with self.lock:
            replies = self._execute(packet)
            faults = self.faults
            request_bytes = len(packet.params) + 10 if isinstance(packet, Instruction) else 10
            baud = self._baudrate()
        due = received + request_bytes * 10 / baud + faults.extra_delay_s
        on_bus = []  # (first byte, last byte, packet) of each reply that reaches the adapter
        for servo_id, reply in replies:
            if servo_id in faults.silent_ids:
                continue
            start = due + self.servos[servo_id].get("Return_Delay_Time") * 2e-6
            due = start + len(reply) * 10 / baud
            if self._rng.random() < faults.drop_rate:
                continue
            if self._rng.random() < faults.corrupt_rate:
                reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])
            on_bus.append((start, due, reply))
        arrivals = self.adapter.deliveries([(start, done, len(r)) for start, done, r in on_bus])
        for arrival, (_, _, reply) in zip(arrivals, on_bus, strict=True):
            delay = arrival - self.clock()
            # The master sent again before we answered (checked even when this emulator is
            # already late, e.g. CPU-starved): a late reply would collide with the new exchange.
            if select.select([self._master], [], [], max(delay, 0.0))[0]:
                return
            try:
                os.write(self._master, reply)
            except (OSError, TypeError):  # unplugged meanwhile
                return
        self.transactions += 1

    def _baudrate(self) -> int:
        first = self.servos[min(self.servos)]
        register = first.get("Baud_Rate")
        return next((b for b, v in first.spec.baudrates.items() if v == register), 1_000_000)

    def _status(self, servo_id: int, error: int, params: bytes = b"") -> tuple[int, bytes]:
        error |= self.faults.error_bits.get(servo_id, 0)
        return servo_id, self.wire.status(servo_id, error, params)

    def _live(self, servo_id: int) -> Servo | None:
        if servo_id in self.faults.silent_ids:
            return None  # a servo that stopped answering also stopped executing
        servo = self.servos.get(servo_id)
        if servo is not None:
            servo.advance_to(self.clock())
        return servo

    def _execute(self, packet: Instruction | BadPacket) -> list[tuple[int, bytes]]:
        """Run one instruction; the status packets to send back, in bus order."""
        if isinstance(packet, BadPacket):
            error = self.wire.bad_packet_reply(packet)
            if error is None or packet.servo_id == BROADCAST_ID or self._live(packet.servo_id) is None:
                return []
            return [self._status(packet.servo_id, error)]
        n = self.wire.address_bytes
        code, params, target = packet.code, packet.params, packet.servo_id
        if code == PING:
            ids = sorted(self.servos) if target == BROADCAST_ID else [target]
            return [
                (i, self.wire.ping_reply(i, s.spec.model_number, s.spec.firmware[0]))
                for i in ids
                if (s := self._live(i)) is not None
            ]
        if code == READ:
            servo = self._live(target)
            if servo is None or target == BROADCAST_ID:
                return []
            return self._read_reply(servo, *address_and_length(params, n))
        if code == WRITE:
            address, data = int.from_bytes(params[:n], "little"), params[n:]
            ids = sorted(self.servos) if target == BROADCAST_ID else [target]
            replies = []
            for servo_id in ids:
                if (servo := self._live(servo_id)) is None:
                    continue
                refusal = servo.write(address, data)
                error = 0 if refusal is None else self.wire.refusal_error(refusal, is_write=True)
                if target != BROADCAST_ID and error is not None:
                    replies.append(self._status(servo_id, error))
            return replies
        if code == SYNC_READ:
            address, length = address_and_length(params, n)
            replies = []
            for servo_id in params[2 * n :]:
                if (servo := self._live(servo_id)) is not None:
                    replies += self._read_reply(servo, address, length)
            return replies
        if code == SYNC_WRITE:
            self.sync_writes.append(self.clock())
            address, length = address_and_length(params, n)
            body = params[2 * n :]
            for start in range(0, len(body) - length, length + 1):
                if (servo := self._live(body[start])) is not None:
                    servo.write(address, body[start + 1 : start + 1 + length])
            return []
        if self.wire.protocol == "dynamixel" and target != BROADCAST_ID and self._live(target) is not None:
            return [self._status(target, self.wire.ERR_INSTRUCTION)]
        return []

    def _read_reply(self, servo: Servo, address: int, length: int) -> list[tuple[int, bytes]]:
        data = servo.read(address, length)
        if isinstance(data, Refusal):
            error = self.wire.refusal_error(data, is_write=False)
            return [] if error is None else [self._status(servo.servo_id, error)]
        return [self._status(servo.servo_id, 0, data)]
