"""The control loop: start-up, fixed-rate ticks, shutdown.

Start-up, in order: policy → report folder and control pipe → robot classes, every check against
the policy and a frame from each ZMQ camera (runtime/wiring.py) → port claims → connect, and the
bus cycle against the loop rate → first observation, safety limits, warm-up. Ctrl-C / SIGTERM during start-up cancels it at the next step (``StartupCancelled``) and
whatever was started is undone in reverse order.

One tick (``_tick``), with ``bus_order`` write-first (the default): read operator commands →
``send_action`` of the command computed during the previous tick, so the goal reaches the servos on
the deadline whatever the reads cost → ``get_observation`` (bus + cameras) → watchdog on stale
frames/failed reads → merge a finished chunk and ask for the next one (runtime/feed.py) → the next
tick's command (policy queue, leader arm, or a handover: runtime/modes.py) → safety filter → held
for the next deadline → record timings. What it costs: an observation (and a leader reading) acts
one period later than when the command is written straight after the read (read-first, the order
LeRobot's own loops use, kept as an option); policy actions are keyed by tick, so each still goes
out on its own tick, but a chunk that arrives during tick k first changes tick k+1's goal.

Safe states, whatever ends the session: the last safe command is held (the servos keep that
goal), then torque is turned off (``torque_off_on_exit``) and the ports are closed; the report
says which state the arm was left in. If the port itself is gone, the servos keep their last goal
with torque on, and the report says so.

The clock is injectable: tests run sessions on a simulated one (each wait returns the next tick).
"""

import os
import sys
import threading
import time

from .backends import Backend, backend_for
from .clock import TickClock
from .config import ConfigError, RunConfig
from .errors import BUS_ERRORS, SessionFault, StartupCancelled
from .monitor import LatencyMonitor, check_writable
from .priority import Favoured, favour_current_thread, keep_gil_through_spin
from .recording import as_action
from .session import Loop, Pending, start_loop
from .triggers import Triggers
from .wiring import (
    Devices,
    build_devices,
    check_cameras,
    check_tick_budget,
    claim_ports,
    close_ports_now,
    connect,
    release,
)


class Runner:
    def __init__(self, config: RunConfig, backend: Backend | None = None, clock=None):
        self.cfg = config
        self.backend = backend
        self.clock = clock or TickClock(config.fps, spin_s=config.spin_ms / 1000)
        self.devices: Devices | None = None
        self.loop: Loop | None = None
        self.triggers = Triggers()
        self.monitor = LatencyMonitor(config.fps)
        self.stop_reason = "not started"
        self.final_state = "nothing connected, nothing moved"
        self.multiple = 1  # loop ticks per policy step
        self.priority: str | None = None  # what was reniced, and what was given back
        self._favoured: Favoured | None = None
        self.bus_cycles: dict[str, str] = {}  # per arm, measured at connect
        self._gil_switch_before: float | None = None  # Python's interval, restored at shutdown

    # -- the session ---------------------------------------------------------------------------
    def run(self) -> dict:
        """Start up, run until stopped; always shut down safely and write the report.

        A refusal before the loop (``ConfigError``, ``BackendError``, ``BundleError``) or a cancelled
        start-up (``StartupCancelled``) is raised after the shutdown, with ``arm_state`` set to the
        state the arm was left in."""
        fault: SessionFault | None = None
        try:
            try:
                self._prepare()
                self._connect()
                self._start_loop()
                self._run_loop()
            except SessionFault as err:
                fault = err
                self.stop_reason = f"fault: {err}"
                self.monitor.fault(self._elapsed(), err.kind, err.message)
            finally:
                self._shutdown()
        except Exception as err:
            err.arm_state = self.final_state
            raise
        report = self.monitor.write(self.cfg.report_dir, self._report_extra())
        if fault is not None:
            report["fault"] = {"kind": fault.kind, "message": fault.message}
        return report

    def _checkpoint(self) -> None:
        """Between start-up steps: honour a Ctrl-C / SIGTERM that arrived meanwhile."""
        if self.triggers.stop_signal is not None:
            raise StartupCancelled(self.triggers.stop_signal)

    def _prepare(self) -> None:
        """The policy, and everything that can be checked before anything connects."""
        cfg = self.cfg
        if self.backend is None:
            self.backend = backend_for(cfg)
        self._checkpoint()
        c = self.backend.contract
        if cfg.fps % c.fps:
            raise ConfigError(f"fps: {cfg.fps} is not the policy's fps ({c.fps}) or a whole multiple of it.")
        self.multiple = cfg.fps // c.fps
        check_writable(cfg.report_dir)
        if cfg.control_pipe is not None:
            self.triggers.open_pipe(cfg.control_pipe)
        self.devices = build_devices(cfg, c)
        self._checkpoint()
        check_cameras(self.devices, cfg.cameras)
        self._checkpoint()

    def _connect(self) -> None:
        claim_ports(self.devices)
        cycles, buses = {}, {}
        for device, what in self.devices.each():
            self._checkpoint()
            cycles[what], buses[what] = connect(device, what, self.cfg.cameras, self.cfg.fps), device.bus
            self.bus_cycles[what] = cycles[what].describe()
            self.final_state = "connected; torque on, holding the pose found at connect"
        cycles = check_tick_budget(cycles, self.cfg.fps, buses)  # measured again if the pair is too slow
        self.bus_cycles.update({what: cycle.describe() for what, cycle in cycles.items()})

    def _start_loop(self) -> None:
        """First observation, safety limits, warm-up, then every part of the running loop."""
        cfg = self.cfg
        self.loop = start_loop(
            cfg, self.backend, self.devices, self.monitor, self.multiple, self._checkpoint, self._changed
        )
        if threading.current_thread() is threading.main_thread():
            self.triggers.watch_signals()
            self.triggers.watch_keys()
        if cfg.control_pipe is not None:
            self.triggers.watch_pipe(cfg.control_pipe)
        self._gil_switch_before = keep_gil_through_spin(cfg.gil_switch_ms)
        self._favoured = favour_current_thread(cfg.background_nice)
        self.priority = self._favoured.message
        self.monitor.transition(0.0, "start", self.loop.modes.mode, f"mode {cfg.mode}")

    def _run_loop(self) -> None:
        cfg, loop = self.cfg, self.loop
        self.clock.start()
        loop.t0 = self.clock.t0  # the session's time line starts with tick 0
        last_status = 0.0
        show_status = cfg.status and sys.stderr.isatty()
        self.stop_reason = "running"
        while True:
            tick = self.clock.wait()
            if not self._tick(tick):
                break
            if cfg.duration_s is not None and tick.started - loop.t0 >= cfg.duration_s:
                self.stop_reason = f"duration {cfg.duration_s:g} s reached"
                break
            if show_status and tick.started - last_status > 0.5:
                last_status = tick.started
                print("\r" + self.monitor.status_line(loop.modes.mode), end="", file=sys.stderr, flush=True)
        self.monitor.missed_ticks = self.clock.missed
        if show_status:
            print(file=sys.stderr)

    def _elapsed(self) -> float:
        return self.clock.now() - self.loop.t0 if self.loop is not None and self.loop.t0 is not None else 0.0

    # -- one tick ------------------------------------------------------------------------------
    def _tick(self, tick) -> bool:
        """One control period; False ends the session."""
        loop, names = self.loop, self.backend.contract.action_names
        k, began = tick.index, time.perf_counter()
        stages: dict[str, float] = {}
        for command, source in self.triggers.drain():
            if command == "stop":
                self.stop_reason = f"stop ({source})"
                return False
            loop.modes.switch(command, source, k, loop.safety.last)
        write_first = self.cfg.bus_order == "write-first"
        if write_first:  # this deadline's command, computed during the previous tick
            self._write(loop.pending, stages, tick.due)
        obs, stale_why, source = self._observe(stages)
        target = k + 1 if write_first else k  # the tick whose command is computed now

        # Queue: merge a finished chunk, ask for the next one, pick the command.
        t = time.perf_counter()
        auto = loop.modes.mode == "auto"
        loop.feed.merge(target, loop.modes.epoch if auto else None, loop.safety.last, self._elapsed())
        if auto and stale_why is None:
            loop.feed.request(k, loop.policy_inputs, source, loop.modes.epoch)
        command, from_policy, leader_read_at = loop.command(target, stale_why, self.monitor)
        stages["queue"] = time.perf_counter() - t

        t = time.perf_counter()
        before = loop.safety.last
        safe, interventions = loop.safety.apply(command)
        self.monitor.command(safe - before, from_policy)
        for item in interventions:
            self.monitor.intervention(item.reason, item.joints)
        stages["safety"] = time.perf_counter() - t
        if loop.recorder is not None and loop.modes.mode == "teleop" and obs is not None:
            loop.recorder.add(obs, as_action(names, safe))  # LeRobot's pairing: the leader at this reading
        loop.pending = Pending(safe, target, from_policy, leader_read_at)
        if not write_first and (obs is not None or not stale_why.startswith("bus")):
            self._write(loop.pending, stages, tick.due)  # read-first: never write after a failed bus read
        loop.end_tick()
        stages["tick"] = time.perf_counter() - began
        self.monitor.tick(
            tick.started - loop.t0, tick.jitter, stages, loop.feed.schedule.remaining(target + 1)
        )
        return True

    def _observe(self, stages: dict) -> tuple[dict | None, str | None, float]:
        """``get_observation`` (bus + cameras) and the watchdog on failed reads and stale frames:
        (observation or None, why it is not usable or None, when its camera frame arrived)."""
        loop, robot = self.loop, self.devices.robot
        t = time.perf_counter()
        obs, stale_why = None, None
        try:
            obs = robot.get_observation()
        except (TimeoutError, RuntimeError) as err:  # a stale/stopped camera, or a servo error status
            stale_why = f"observation: {err}"
        except BUS_ERRORS as err:
            loop.bus_failed(err, "read", self.monitor.events)
            stale_why = f"bus: {err}"
        stages["obs_read"] = time.perf_counter() - t
        source = t
        if obs is not None and self.backend.contract.cameras:
            source, age_ms, stale_why = loop.watchdog.frame_age(robot.cameras.values())
            self.monitor.frame_age_ms.append(age_ms)
        if stale_why is None:
            t = time.perf_counter()
            loop.history.push(obs)
            stages["preprocess"] = time.perf_counter() - t
        else:
            self.monitor.events["watchdog_hold"] += 1
        loop.watchdog.check(stale_why)
        return obs, stale_why, source

    def _write(self, pending: Pending, stages: dict, deadline: float) -> None:
        """``send_action``: the goal positions go out on the bus (this tick's ``deadline``: when they
        were due)."""
        t = time.perf_counter()
        try:
            self.devices.robot.send_action(as_action(self.backend.contract.action_names, pending.command))
        except BUS_ERRORS as err:
            self.loop.bus_failed(err, "write", self.monitor.events)
            stages["bus_write"] = time.perf_counter() - t
            return
        written = time.perf_counter()
        stages["bus_write"] = written - t
        self.monitor.goal_written(deadline, self.clock.now())
        if pending.from_policy:
            self.loop.feed.written(pending.tick, written)
        elif pending.leader_read_at is not None:
            self.monitor.leader_to_bus_ms.append((written - pending.leader_read_at) * 1e3)

    def _changed(self, old: str, new: str, why: str, k: int) -> None:
        """A mode transition: timestamped in the report; a teleoperated phase is one recorded episode."""
        self.monitor.transition(self._elapsed(), old, new, f"{why} at tick {k}")
        self.loop.feed.clear()  # the next chunk is blended in from the live pose
        if self.loop.recorder is not None and old == "teleop":
            self.loop.recorder.end_episode()

    # -- signals and shutdown ------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGINT / SIGTERM: cancel the start-up, or stop the loop; a second Ctrl-C exits at once."""
        self.triggers.watch_stop_signals(self._force_exit)

    def _force_exit(self) -> None:
        if self.devices is not None:
            close_ports_now(self.devices)  # never leave with a port held open
        os._exit(130)

    def _shutdown(self) -> None:
        """Undo the start-up in reverse order; the arm ends in a named state."""
        self.triggers.close()
        self.monitor.events.update(self.triggers.events)
        loop = self.loop
        if loop is not None:
            if loop.recorder is not None:
                loop.recorder.finalize()
            loop.feed.close()
        if self._gil_switch_before is not None:
            sys.setswitchinterval(self._gil_switch_before)
        if self._favoured is not None and self._favoured.before:
            self.priority = f"{self._favoured.message}; at the end: {self._favoured.restore()}"
        if self.devices is not None:
            hold = None if loop is None else as_action(self.backend.contract.action_names, loop.safety.last)
            self.final_state, lost = release(self.devices, self.cfg.torque_off_on_exit, hold)
            if lost:
                self.monitor.events["port_lost_at_shutdown"] += 1

    def _report_extra(self) -> dict:
        c = self.backend.contract if self.backend is not None else None
        return {
            "stop_reason": self.stop_reason,
            "final_state": self.final_state,
            "backend": getattr(self.backend, "name", None),
            "backend_choice": getattr(self.backend, "choice", None),  # why this one (--ort-provider auto)
            "policy_fps": c.fps if c else None,
            "loop_multiple": self.multiple,
            "priority": self.priority,
            "bus_cycle": self.bus_cycles,
            "config": self.cfg.model_dump(mode="json"),
        }


def run_session(config: RunConfig, backend: Backend | None = None, write_arrivals=None) -> dict:
    """``drift-run`` as a function; ``write_arrivals``: the goal writes on the device's clock, if known."""
    runner = Runner(config, backend)
    runner.monitor.write_arrivals = write_arrivals
    if threading.current_thread() is threading.main_thread():
        runner.install_signal_handlers()
    return runner.run()
