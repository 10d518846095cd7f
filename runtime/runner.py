"""The control loop: fixed-rate ticks, inference off the tick thread, safety, sessions, shutdown.

One tick (``_tick``): wait for the deadline → read operator commands → ``get_observation`` (bus +
cameras) → watchdog on stale frames/failed reads → hand the latest observation to the inference
worker when the queue runs low → merge a finished chunk → pick this tick's command (policy queue,
leader arm, or a handover blend) → safety filter → ``send_action`` → record timings.

Start-up, in order: policy → report folder and control pipe → (emulator) → robot classes
(calibration) → port claims → connect → warm-up. Every check that can fail runs before connect;
Ctrl-C / SIGTERM during start-up cancels it at the next step (``StartupCancelled``) and whatever
was started is undone in reverse order.

Safe states, whatever ends the session: the last safe command is held (the servos keep that
goal), then torque is turned off (``torque_off_on_exit``) and the ports are closed; the report
says which state the arm was left in. If the port itself is gone, the servos keep their last goal
with torque on, and the report says so.
"""

import contextlib
import os
import signal
import sys
import tempfile
import termios
import threading
import time
import traceback
from dataclasses import dataclass
from queue import Empty, Queue

import numpy as np

from runtime.backends import Backend, make_backend, time_inference
from runtime.chunks import ChunkSchedule, LatencyWindow, should_request, upsample
from runtime.clock import TickClock
from runtime.config import ConfigError, RunConfig, camera_config
from runtime.monitor import LatencyMonitor, summary_table
from runtime.observation import ObservationHistory
from runtime.ports import PortClaim, claim_port
from runtime.priority import favour_current_thread
from runtime.recording import as_action
from runtime.safety import SafetyFilter, SafetyLimits
from runtime.triggers import Triggers

# What a failing serial link raises through LeRobot (ConnectionError, SerialException ⊂ OSError).
BUS_ERRORS = (ConnectionError, OSError, termios.error)
WARMUP_CALLS = 5


class ConnectError(ConfigError):
    """The arm could not be connected or does not match its calibration: nothing moved."""


class StartupCancelled(Exception):
    """Ctrl-C / SIGTERM arrived during start-up: nothing more is started, the rest is undone."""

    def __init__(self, signal_name: str):
        super().__init__(f"start-up cancelled by {signal_name}")
        self.signal_name = signal_name
        self.exit_code = 128 + signal.Signals[signal_name].value


class SessionFault(Exception):
    """Ends the session in its safe state; ``kind`` names what broke."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind, self.message = kind, message


@dataclass
class _Request:
    feeds: dict
    tick: int  # loop tick of the observation
    source_time: float  # perf_counter of the camera frame (or state read) it saw
    epoch: int  # autonomy engagement it belongs to


@dataclass
class _Result:
    request: _Request
    actions: np.ndarray | None
    seconds: float
    error: BaseException | None


class InferenceWorker:
    """One background thread; at most one chunk in flight."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self._requests: Queue[_Request | None] = Queue()
        self._results: Queue[_Result] = Queue()
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()

    def submit(self, request: _Request) -> None:
        self.busy = True
        self._requests.put(request)

    def poll(self) -> _Result | None:
        try:
            return self._results.get_nowait()
        except Empty:
            return None

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            t0 = time.perf_counter()
            try:
                result = _Result(request, self.backend.infer(request.feeds), time.perf_counter() - t0, None)
            except Exception as err:  # handed to the tick thread, which ends the session
                result = _Result(request, None, time.perf_counter() - t0, err)
            self._results.put(result)
            self.busy = False

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=5.0)


def _with_calibration(make, device_cfg, what: str):
    """LeRobot's robot/teleoperator from its config; it reads the calibration file as it is built,
    so a corrupt file is named here (``ConfigError``) instead of surfacing as a parser traceback."""
    try:
        return make(device_cfg)
    except Exception as err:  # draccus / json raise many types for a malformed file
        while err.__cause__ or err.__context__:  # the parser's own words, not draccus's wrapper
            err = err.__cause__ or err.__context__
        path = f"{device_cfg.id}.json" + (
            f" in {device_cfg.calibration_dir}"
            if device_cfg.calibration_dir
            else " in LeRobot's calibration folder"
        )
        raise ConfigError(
            f"the {what}'s calibration file {path} could not be read ({' '.join(str(err).split())[:200]}); "
            "fix or delete it and run lerobot-calibrate again. Nothing was connected."
        ) from None


def _failed_camera(device, err: BaseException) -> str | None:
    """The camera whose ``connect()`` raised ``err`` (found in its traceback), or None."""
    cameras = {id(cam): name for name, cam in getattr(device, "cameras", {}).items()}
    tb = err.__traceback__
    while tb is not None:
        name = cameras.get(id(tb.tb_frame.f_locals.get("self")))
        if name is not None:
            return name
        tb = tb.tb_next
    return None


def joint_limits(robot, action_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each joint's calibrated range in action units, through LeRobot's own normalization."""
    bus = robot.bus
    lower, upper = [], []
    for name in action_names:
        cal = bus.calibration[name.removesuffix(".pos")]
        a = bus._normalize({cal.id: cal.range_min})[cal.id]
        b = bus._normalize({cal.id: cal.range_max})[cal.id]
        lower.append(min(a, b))
        upper.append(max(a, b))
    return np.array(lower), np.array(upper)


class Runner:
    def __init__(self, config: RunConfig, backend: Backend | None = None):
        self.cfg = config
        self.backend = backend
        self.rig = None
        self.robot = None
        self.teleop = None
        self.worker: InferenceWorker | None = None
        self.triggers = Triggers()
        self.stop_reason = "not started"
        self.final_state = "nothing connected, nothing moved"
        self.monitor = LatencyMonitor(config.fps)
        self.claims: list[PortClaim] = []
        self.loop_started = False
        self._interrupts = 0
        self._cancelled: str | None = None  # the signal that cancels start-up
        self._gil_switch_before: float | None = None  # Python's interval, restored at shutdown

    def _checkpoint(self) -> None:
        """Between start-up steps: honour a Ctrl-C / SIGTERM that arrived meanwhile."""
        if self._cancelled is not None:
            raise StartupCancelled(self._cancelled)

    # -- set-up (nothing moves) ----------------------------------------------------------------
    def prepare(self) -> None:
        """Load the policy and check it against the robot before anything connects."""
        from lerobot.robots.utils import make_robot_from_config
        from lerobot.teleoperators.utils import make_teleoperator_from_config

        from robots.arms import follower_config, leader_config

        cfg = self.cfg
        if self.backend is None:
            self.backend = make_backend(
                cfg.backend, cfg.bundle, cfg.policy, cfg.ort_provider, self._threads(), cfg.precision
            )
        self._checkpoint()
        c = self.backend.contract
        if cfg.fps % c.fps:
            raise ConfigError(f"fps: {cfg.fps} is not the policy's fps ({c.fps}) or a whole multiple of it.")
        self.multiple = cfg.fps // c.fps
        self._check_report_dir()
        if cfg.control_pipe is not None:
            self.triggers.open_pipe(cfg.control_pipe)
        leader_needed = cfg.mode == "teleop-first" or cfg.teleop_port is not None
        if cfg.emulate:
            robot_cfg, leader_cfg = self._start_emulator(leader_needed)
        else:
            unknown = set(cfg.cameras) - set(c.cameras)
            missing = set(c.cameras) - set(cfg.cameras)
            if unknown or missing:
                raise ConfigError(
                    f"cameras: the policy reads {sorted(c.cameras)}; unknown {sorted(unknown)}, missing {sorted(missing)}."
                )
            cams = {n: camera_config(n, cfg.cameras[n], w, h, 30) for n, (h, w) in c.cameras.items()}
            robot_cfg = follower_config(cfg.robot, cfg.port, cfg.robot_id, cfg.calibration_dir, cameras=cams)
            leader_cfg = None
            if leader_needed:
                leader_cfg = leader_config(cfg.robot, cfg.teleop_port, cfg.teleop_id, cfg.calibration_dir)
        self._checkpoint()
        robot_cfg.disable_torque_on_disconnect = cfg.torque_off_on_exit
        self.robot = _with_calibration(make_robot_from_config, robot_cfg, "arm")
        actions = set(self.robot.action_features)
        if set(c.action_names) != actions:
            raise ConfigError(
                f"bundle/robot mismatch: the policy's actions {list(c.action_names)} are not the "
                f"{cfg.robot} motors {sorted(actions)}."
            )
        missing_state = set(c.state_names) - set(self.robot.observation_features)
        if missing_state:
            raise ConfigError(f"bundle/robot mismatch: the robot does not observe {sorted(missing_state)}.")
        for name, (h, w) in c.cameras.items():
            got = self.robot.observation_features.get(name)
            if got != (h, w, 3):
                raise ConfigError(f"camera {name!r} is configured as {got}; the policy needs {(h, w, 3)}.")
        self._require_calibration(self.robot, "robot", robot_cfg.type)
        if leader_cfg is not None:
            self.teleop = _with_calibration(make_teleoperator_from_config, leader_cfg, "leader arm")
            self._require_calibration(self.teleop, "teleop", leader_cfg.type)

    def _check_report_dir(self) -> None:
        where = self.cfg.report_dir
        try:
            where.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=where, prefix=".drift-run-probe"):
                pass
        except OSError as err:
            raise ConfigError(
                f"report: cannot write to {where} ({err.strerror}); pick another --report."
            ) from None

    def _threads(self) -> int:
        return self.cfg.inference_threads or max(1, (os.cpu_count() or 2) - 1)

    def _require_calibration(self, device, flag: str, kind: str) -> None:
        if not device.calibration:
            raise ConfigError(
                f"no calibration file {device.calibration_fpath}: run lerobot-calibrate "
                f"--{flag}.type={kind} --{flag}.port=… --{flag}.id={device.id} first (or pass calibration_dir)."
            )

    def _start_emulator(self, leader: bool):
        from robots.emulator import EmulatedRig
        from robots.leader_scripts import sway_within
        from robots.rig import CameraPlan

        cams = [
            CameraPlan(name=n, width=w, height=h, fps=30)
            for n, (h, w) in self.backend.contract.cameras.items()
        ]
        self.rig = EmulatedRig.start(
            self.cfg.robot,
            self.cfg.report_dir / "emulator",
            robot_id=self.cfg.robot_id,
            leader=leader,
            cameras=cams,
        )
        if leader:
            self.rig.set_leader_script(sway_within(self.rig.plan.leader.calibration, share=0.2, period_s=6.0))
        return self.rig.follower_config(), self.rig.leader_config() if leader else None

    # -- connect -------------------------------------------------------------------------------
    def connect(self) -> None:
        """Claim every port first (one process per arm), then connect through LeRobot."""
        devices = [
            (d, what) for d, what in ((self.robot, "arm"), (self.teleop, "leader arm")) if d is not None
        ]
        for device, what in devices:
            self.claims.append(claim_port(device.config.port, what))
        for device, what in devices:
            self._checkpoint()
            try:
                device.connect(calibrate=False)
            except (*BUS_ERRORS, RuntimeError, TimeoutError) as err:  # RuntimeError: LeRobot's motor check
                message = " ".join(str(err).split())
                camera = _failed_camera(device, err)
                if camera is not None:  # the bus connected first: shutdown releases it, torque off
                    spec = self.cfg.cameras.get(camera, "the emulated camera")
                    raise ConnectError(
                        f"could not connect camera {camera!r} ({spec}): {message}. Check that it is plugged "
                        "in and not used by another program."
                    ) from err
                with contextlib.suppress(Exception):  # a failed handshake can leave the port open
                    device.bus.port_handler.closePort()
                raise ConnectError(
                    f"could not connect to the {what} on {device.config.port}: {message}"
                ) from err
            self.final_state = "connected; torque on, holding the pose found at connect"
            if not device.is_calibrated:
                raise ConnectError(
                    f"the {what}'s servos do not match {device.calibration_fpath}; run lerobot-calibrate for it."
                )

    # -- the session ---------------------------------------------------------------------------
    def run(self) -> dict:
        """Prepare, connect, run until stopped; always shut down safely and write the report.

        A refusal before the loop (``ConfigError``, ``BackendError``, ``BundleError``) or a cancelled
        start-up (``StartupCancelled``) is raised after the shutdown, with ``arm_state`` set to the
        state the arm was left in."""
        fault: SessionFault | None = None
        try:
            try:
                self.prepare()
                self.connect()
                self._loop()
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

    def _elapsed(self) -> float:
        return time.perf_counter() - getattr(self, "_t_start", time.perf_counter())

    def _loop(self) -> None:
        cfg, c = self.cfg, self.backend.contract
        self.history = ObservationHistory(c, self.multiple)
        self.schedule = ChunkSchedule(cfg.blend_steps)
        self.rng = np.random.default_rng(cfg.seed)
        obs = self._observe_or_fail()
        self.history.push(obs)
        present = np.array([obs[n] for n in c.action_names])
        lower, upper = joint_limits(self.robot, c.action_names)
        max_step = np.full(len(c.action_names), cfg.max_speed / cfg.fps)
        max_jerk = None if cfg.max_accel is None else np.full(len(c.action_names), cfg.max_accel / cfg.fps**2)
        self.safety = SafetyFilter(SafetyLimits(c.action_names, lower, upper, max_step, max_jerk))
        self.safety.reset(present)
        warm = []
        for _ in range(WARMUP_CALLS):
            self._checkpoint()
            warm += time_inference(self.backend, self.history.feeds(self._noise()), 1)
        self._checkpoint()
        self.latency = LatencyWindow(cfg.latency_window, initial_s=max(warm))
        self.worker = InferenceWorker(self.backend)
        if threading.current_thread() is threading.main_thread():
            self.triggers.watch_signals()
            self.triggers.watch_keys()
        if cfg.control_pipe is not None:
            self.triggers.watch_pipe(cfg.control_pipe)
        self.mode = "teleop" if cfg.mode == "teleop-first" else "auto"
        self.epoch = 0
        self.handover = None
        self.bus_failures = 0
        self.hold_since: float | None = None
        self.source_time: dict[int, float] = {}
        self.clock = TickClock(cfg.fps, spin_s=cfg.spin_ms / 1000)
        # The tick thread spins (holding the GIL) for spin_ms before each deadline; a switch interval
        # longer than that spin keeps the camera reader threads from taking the GIL from it just
        # before the deadline (BENCHMARKS §6: 0.1–0.5 ms intervals made p99 jitter 0.5–3 ms).
        self._gil_switch_before = sys.getswitchinterval()
        sys.setswitchinterval(cfg.gil_switch_ms / 1000)
        self.priority = favour_current_thread(cfg.background_nice)
        self._t_start = time.perf_counter()
        self.recorder = None
        if cfg.record_dir is not None:
            from runtime.recording import EpisodeRecorder

            self.recorder = EpisodeRecorder(cfg.record_dir, cfg.record_repo_id, cfg.fps, self.robot)
        self.monitor.transition(0.0, "start", self.mode, f"mode {cfg.mode}")
        self.clock.start()
        self.loop_started = True
        last_status = 0.0
        show_status = cfg.status and sys.stderr.isatty()
        self.stop_reason = "running"
        while True:
            tick = self.clock.wait()
            if not self._tick(tick):
                break
            if cfg.duration_s is not None and tick.started - self._t_start >= cfg.duration_s:
                self.stop_reason = f"duration {cfg.duration_s:g} s reached"
                break
            if show_status and tick.started - last_status > 0.5:
                last_status = tick.started
                print("\r" + self.monitor.status_line(self.mode), end="", file=sys.stderr, flush=True)
        self.monitor.missed_ticks = self.clock.missed
        if show_status:
            print(file=sys.stderr)

    def _noise(self) -> np.ndarray:
        c = self.backend.contract
        return self.rng.standard_normal((c.horizon, len(c.action_names))).astype(np.float32)

    def _observe_or_fail(self) -> dict:
        try:
            return self.robot.get_observation()
        except (*BUS_ERRORS, TimeoutError) as err:
            raise SessionFault("observation", f"first observation failed: {err}") from err

    def _tick(self, tick) -> bool:
        """One control period; False ends the session."""
        cfg, c = self.cfg, self.backend.contract
        k = tick.index
        stages: dict[str, float] = {}
        for command, source in self.triggers.drain():
            if command == "stop":
                self.stop_reason = f"stop ({source})"
                return False
            self._switch(command, source, k)

        # Observation, with the watchdog on failed reads and stale frames.
        t = time.perf_counter()
        obs, stale_why = None, None
        try:
            obs = self.robot.get_observation()
            self.bus_failures = 0
        except (TimeoutError, RuntimeError) as err:  # a stale/stopped camera, or a servo error status
            stale_why = f"observation: {err}"
        except BUS_ERRORS as err:
            self._bus_failed(err, "read")
            stale_why = f"bus: {err}"
        stages["obs_read"] = time.perf_counter() - t
        source = t
        if obs is not None and c.cameras:
            frame_times = [cam.latest_timestamp for cam in self.robot.cameras.values()]
            source = min(frame_times)
            age_ms = (time.perf_counter() - source) * 1e3
            self.monitor.frame_age_ms.append(age_ms)
            if age_ms > cfg.watchdog_ms:
                stale_why = f"camera frame {age_ms:.0f} ms old"
        if stale_why is None:
            t = time.perf_counter()
            self.history.push(obs)
            stages["preprocess"] = time.perf_counter() - t
            self.hold_since = None
        else:
            self.monitor.events["watchdog_hold"] += 1
            self.hold_since = self.hold_since or time.perf_counter()
            if (time.perf_counter() - self.hold_since) * 1e3 > cfg.fault_after_ms:
                raise SessionFault(
                    "watchdog", f"no fresh observation for {cfg.fault_after_ms:g} ms ({stale_why})"
                )

        # Queue: merge a finished chunk, ask for the next one, pop this tick's action.
        t = time.perf_counter()
        self._merge(k)
        if self.mode == "auto" and stale_why is None and not self.worker.busy:
            queued = self.schedule.remaining(k)
            if should_request(
                queued, self.latency.ticks(c.fps) * self.multiple, cfg.refill_margin * self.multiple
            ):
                feeds = self.history.feeds(self._noise())
                self.worker.submit(_Request(feeds, k, source, self.epoch))
        command, from_policy = self._command(k, obs, stale_why)
        stages["queue"] = time.perf_counter() - t

        t = time.perf_counter()
        before = self.safety.last
        safe, interventions = self.safety.apply(command)
        self.monitor.command_step.append(float(np.max(np.abs(safe - before))))
        for item in interventions:
            self.monitor.intervention(item.reason, item.joints)
        stages["safety"] = time.perf_counter() - t

        t = time.perf_counter()
        if obs is not None or not stale_why.startswith("bus"):  # a failed bus read: do not write either
            try:
                self.robot.send_action(as_action(c.action_names, safe))
            except BUS_ERRORS as err:
                self._bus_failed(err, "write")
            else:
                if self.recorder is not None and self.mode == "teleop" and obs is not None:
                    self.recorder.add(obs, as_action(c.action_names, safe))
        written = time.perf_counter()
        stages["bus_write"] = written - t
        if from_policy and k in self.source_time:
            self.monitor.e2e_ms.append((written - self.source_time.pop(k)) * 1e3)
        stages["tick"] = written - tick.started
        self.monitor.tick(tick.started - self._t_start, tick.jitter, stages, self.schedule.remaining(k + 1))
        return True

    def _bus_failed(self, err: BaseException, direction: str) -> None:
        """Count a failed bus read/write; too many ticks in a row end the session."""
        self.bus_failures += 1
        self.monitor.events[f"bus_{direction}_error"] += 1
        if self.bus_failures >= self.cfg.bus_error_limit:
            raise SessionFault(
                "bus", f"{self.bus_failures} ticks in a row failed to {direction} the arm: {err}"
            ) from err

    def _merge(self, k: int) -> None:
        result = self.worker.poll()
        if result is None:
            return
        if result.error is not None:
            detail = "".join(traceback.format_exception_only(result.error)).strip()
            raise SessionFault("inference", f"the {self.backend.name} backend failed: {detail}")
        if self.mode != "auto" or result.request.epoch != self.epoch:
            return  # computed for an autonomy phase that has ended
        chunk = upsample(result.actions, self.multiple)
        req = result.request
        insertion = self.schedule.insert(chunk, req.tick, k, last_command=self.safety.last)
        for i in range(len(chunk)):
            self.source_time[req.tick + i] = req.source_time
        for stale_tick in [t for t in self.source_time if t < k]:
            del self.source_time[stale_tick]
        self.latency.add(result.seconds)
        self.monitor.chunk(time.perf_counter() - self._t_start, result.seconds, insertion.stale_dropped)

    def _command(self, k: int, obs: dict | None, stale_why: str | None) -> tuple[np.ndarray, bool]:
        """This tick's command before safety, and whether it came from the policy queue."""
        names = self.backend.contract.action_names
        hold = self.safety.last
        if self.mode == "auto":
            action = self.schedule.pop(k)
            if stale_why is not None:
                return hold, False  # watchdog: never act on a stale view of the world
            if action is None:
                self.monitor.events[
                    "underrun_hold" if self.monitor.inference_ms else "awaiting_first_chunk"
                ] += 1
                return hold, False
            return action, True
        lead = self._leader_action(names)
        if self.mode == "teleop":
            return lead, False
        # Handing control back to the operator.
        h = self.handover
        h["step"] += 1
        w = min(h["step"] / h["ticks"], 1.0)
        if h["actuated"]:  # drive the leader to the follower first; the follower holds
            target = (1 - w) * h["leader_start"] + w * h["hold"]
            self.teleop.send_feedback(as_action(names, target))
            command = h["hold"]
        else:  # the follower slides to wherever the operator holds the leader
            command = (1 - w) * h["hold"] + w * lead
        if w >= 1.0:
            if h["actuated"]:
                self.teleop.bus.disable_torque()
            self._set_mode("teleop", "handover complete", k)
        return command, False

    def _leader_action(self, names) -> np.ndarray:
        try:
            action = self.teleop.get_action()
        except BUS_ERRORS as err:
            raise SessionFault("leader", f"the leader arm stopped answering: {err}") from err
        return np.array([action[n] for n in names])

    def _switch(self, command: str, source: str, k: int) -> None:
        if command == "auto" and self.mode != "auto":
            if self.mode == "handover" and self.handover["actuated"]:
                self.teleop.bus.disable_torque()  # the leader was being driven: let it go limp again
            self.epoch += 1
            self.schedule.clear()  # the first chunk is blended in from the live pose
            self._set_mode("auto", f"operator ({source})", k)
        elif command == "teleop" and self.mode == "auto":
            if self.teleop is None:
                self.monitor.events["teleop_without_leader"] += 1
                return
            names = self.backend.contract.action_names
            actuated = bool(self.teleop.feedback_features)
            handover = {
                "step": 0,
                "ticks": max(int(self.cfg.handover_s * self.cfg.fps), 1),
                "actuated": actuated,
            }
            handover["hold"] = self.safety.last.copy()
            handover["leader_start"] = self._leader_action(names)
            if actuated:
                self.teleop.bus.enable_torque()
            self.handover = handover
            self.schedule.clear()
            self._set_mode(
                "handover",
                f"operator ({source}); {'leader to follower' if actuated else 'follower to leader'}",
                k,
            )

    def _set_mode(self, mode: str, why: str, k: int) -> None:
        self.monitor.transition(self._elapsed(), self.mode, mode, f"{why} at tick {k}")
        if self.recorder is not None and self.mode == "teleop":
            self.recorder.end_episode()  # one episode per teleoperated phase
        self.mode = mode

    # -- shutdown ------------------------------------------------------------------------------
    def _on_signal(self, signum, _frame):
        name = signal.Signals(signum).name
        self._cancelled = self._cancelled or name  # start-up: cancel at the next step
        self.triggers.put("stop", name)  # the loop: stop at the next tick
        if signum != signal.SIGINT:
            return
        self._interrupts += 1
        if self._interrupts == 1:
            return
        # Second Ctrl-C: leave now, but never with a port held open.
        for device in (self.teleop, self.robot):
            with contextlib.suppress(Exception):
                device.bus.port_handler.closePort()
        with contextlib.suppress(Exception):
            self.rig.close()
        os._exit(130)

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _shutdown(self) -> None:
        self.triggers.close()
        self.monitor.events.update(self.triggers.events)
        if getattr(self, "recorder", None) is not None:
            self.recorder.finalize()
        if self.worker is not None:
            self.worker.close()
        if self._gil_switch_before is not None:
            sys.setswitchinterval(self._gil_switch_before)
        lost = False
        if self.teleop is not None and self.teleop.is_connected:
            try:
                self.teleop.disconnect()
            except BUS_ERRORS:
                with contextlib.suppress(Exception):
                    self.teleop.bus.port_handler.closePort()
        if self.robot is not None and self.robot.bus.is_connected:
            torque = "torque off" if self.cfg.torque_off_on_exit else "torque on (torque_off_on_exit=false)"
            try:
                if not self.robot.is_connected:  # a camera failed at connect: the bus alone is open
                    self.robot.bus.disconnect(self.cfg.torque_off_on_exit)
                    for cam in self.robot.cameras.values():
                        if cam.is_connected:
                            cam.disconnect()
                    self.final_state = (
                        f"the arm's bus was opened, then closed ({torque}); no command was sent"
                    )
                elif self.loop_started:
                    self.robot.send_action(as_action(self.backend.contract.action_names, self.safety.last))
                    self.robot.disconnect()
                    self.final_state = f"holding the last safe command, then {torque}; ports closed"
                else:  # start-up ended before the first command
                    self.robot.disconnect()
                    self.final_state = f"connected, then released before any command: {torque}; ports closed"
            except (*BUS_ERRORS, TimeoutError) as err:
                lost = True
                for cam in self.robot.cameras.values():
                    with contextlib.suppress(Exception):
                        cam.disconnect()
                with contextlib.suppress(Exception):
                    self.robot.bus.port_handler.closePort()
                self.final_state = (
                    f"arm unreachable at shutdown ({err}); the servos keep their last goal with torque on. "
                    "Power them off or reconnect and run again."
                )
        for claim in reversed(self.claims):
            claim.release()
        if self.rig is not None:
            self.rig.close()
        if lost:
            self.monitor.events["port_lost_at_shutdown"] += 1

    def _report_extra(self) -> dict:
        c = self.backend.contract if self.backend is not None else None
        return {
            "stop_reason": self.stop_reason,
            "final_state": self.final_state,
            "backend": getattr(self.backend, "name", None),
            "policy_fps": c.fps if c else None,
            "loop_multiple": getattr(self, "multiple", None),
            "priority": getattr(self, "priority", None),
            "config": self.cfg.model_dump(mode="json"),
        }


def print_summary(report: dict) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    console.print(summary_table(report))
    console.print(f"stop: {report['stop_reason']}; arm: {report['final_state']}")
    if report["interventions"]:
        console.print(f"safety interventions: {report['interventions']}")
    events = {k: v for k, v in report["events"].items() if v}
    if events:
        console.print(f"events: {events}")


def run_session(config: RunConfig, backend: Backend | None = None) -> dict:
    """``drift-run`` as a function (tests, scripts); raises ConfigError/BackendError before connecting."""
    runner = Runner(config, backend)
    if threading.current_thread() is threading.main_thread():
        runner.install_signal_handlers()
    return runner.run()
