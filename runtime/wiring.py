"""The policy against the robot, before anything moves: LeRobot's robot and leader classes built
from the config, every check that can fail (cameras, motors, observed state, image sizes,
calibration files), then the port claims and the connect.

The bench and the lab differ only by a port and camera addresses: an emulated arm is wired by
``drift-run --emulate`` (runtime/cli.py) exactly as a real one.
"""

import contextlib
from dataclasses import dataclass, field

import numpy as np

from lerobot_policy_drift.drift.lerobot_compat import normalize_positions
from lerobot_policy_drift.runtime.backends import PolicyContract
from lerobot_policy_drift.runtime.bus_timing import (
    BusCycle,
    cycle_for_rate,
    held_up_advice,
    highest_hz,
    latency_timer,
    latency_timer_fix,
    measured_again,
)
from lerobot_policy_drift.runtime.camera_probe import probe_zmq
from lerobot_policy_drift.runtime.config import ConfigError, RunConfig, camera_config
from lerobot_policy_drift.runtime.errors import BUS_ERRORS, ConnectError
from lerobot_policy_drift.runtime.ports import PortClaim, claim_port

CAMERA_FIRST_FRAME_S = 2.0  # a 30 fps server's first frame, after ZMQ's subscription handshake


@dataclass
class Devices:
    """The follower (with its cameras), the leader if the session needs one, and their port claims."""

    robot: object
    teleop: object | None = None
    claims: list[PortClaim] = field(default_factory=list)

    def each(self):
        yield self.robot, "arm"
        if self.teleop is not None:
            yield self.teleop, "leader arm"


def build_devices(cfg: RunConfig, contract: PolicyContract) -> Devices:
    """LeRobot's robot (and teleoperator) for ``cfg``, checked against the policy's ``contract``."""
    from lerobot.robots.utils import make_robot_from_config
    from lerobot.teleoperators.utils import make_teleoperator_from_config

    from lerobot_policy_drift.robots.arms import follower_config, leader_config

    if cfg.emulate:
        raise ConfigError(
            "emulate: the emulated arm is started by drift-run; in scripts use RunConfig.for_rig(rig)."
        )
    unknown, missing = set(cfg.cameras) - set(contract.cameras), set(contract.cameras) - set(cfg.cameras)
    if unknown or missing:
        raise ConfigError(
            f"cameras: the policy reads {sorted(contract.cameras)}; unknown {sorted(unknown)}, missing {sorted(missing)}."
        )
    cams = {n: camera_config(n, cfg.cameras[n], w, h, 30) for n, (h, w) in contract.cameras.items()}
    robot_cfg = follower_config(cfg.robot, cfg.port, cfg.robot_id, cfg.calibration_dir, cameras=cams)
    robot_cfg.disable_torque_on_disconnect = cfg.torque_off_on_exit
    robot = build_with_calibration(make_robot_from_config, robot_cfg, "arm")
    actions = set(robot.action_features)
    if set(contract.action_names) != actions:
        raise ConfigError(
            f"bundle/robot mismatch: the policy's actions {list(contract.action_names)} are not the "
            f"{cfg.robot} motors {sorted(actions)}."
        )
    missing_state = set(contract.state_names) - set(robot.observation_features)
    if missing_state:
        raise ConfigError(f"bundle/robot mismatch: the robot does not observe {sorted(missing_state)}.")
    for name, (h, w) in contract.cameras.items():
        got = robot.observation_features.get(name)
        if got != (h, w, 3):
            raise ConfigError(f"camera {name!r} is configured as {got}; the policy needs {(h, w, 3)}.")
    require_calibration(robot, "robot", robot_cfg.type)
    devices = Devices(robot)
    if cfg.mode == "teleop-first" or cfg.teleop_port is not None:
        leader_cfg = leader_config(cfg.robot, cfg.teleop_port, cfg.teleop_id, cfg.calibration_dir)
        devices.teleop = build_with_calibration(make_teleoperator_from_config, leader_cfg, "leader arm")
        require_calibration(devices.teleop, "teleop", leader_cfg.type)
    return devices


def check_cameras(devices: Devices, cameras: dict[str, str]) -> None:
    """Every ZMQ camera is serving before anything connects (runtime/camera_probe.py says why)."""
    from lerobot.cameras.zmq.configuration_zmq import ZMQCameraConfig

    for name, cam in devices.robot.config.cameras.items():
        if not isinstance(cam, ZMQCameraConfig):
            continue  # LeRobot's OpenCVCamera cleans up after a failed connect by itself
        probe = probe_zmq(cam.server_address, cam.port, cam.camera_name, 0.0, CAMERA_FIRST_FRAME_S)
        if probe.problem is not None:
            raise ConnectError(
                f"could not connect camera {name!r} ({cameras.get(name, probe.address)}): {probe.problem}. "
                "Check that its server is running and reachable from here; nothing was connected."
            )


def check_bus_rate(device, what: str, fps: int) -> BusCycle:
    """The connected ``device``'s bus holds ``fps`` (runtime/bus_timing.py), or a ``ConnectError``
    naming the measured cycle, the highest rate and, for an FTDI adapter left at its default
    latency timer, the command that fixes it. A cycle too slow is measured once more before the
    refusal (``cycle_for_rate``). Reads only."""
    try:
        cycle = cycle_for_rate(device.bus, fps)
    except (*BUS_ERRORS, TimeoutError) as err:
        raise _failed_while_measured(what, err) from err
    if cycle.highest_hz >= fps:
        return cycle
    adapter = ""
    with contextlib.suppress(OSError):  # no sysfs (not Linux), or not a USB adapter
        driver, ms = latency_timer(device.config.port)
        if ms is not None and ms > 1:
            adapter = f" Its adapter ({driver}) holds every reply up to {ms} ms: {latency_timer_fix(device.config.port)}."
    raise ConnectError(
        f"the {what}'s bus cannot hold {fps} Hz: {cycle.describe()}.{adapter}{held_up_advice([cycle], fps)} "
        f"Run at a lower --fps (at most {cycle.highest_hz}, a whole multiple of the policy's rate), or make "
        "the bus faster."
    )


def check_tick_budget(
    cycles: dict[str, BusCycle], fps: int, buses: dict | None = None
) -> dict[str, BusCycle]:
    """Each bus holds ``fps`` alone (``check_bus_rate``); a tick that reads the follower and the leader
    must also fit both, or a ``ConnectError`` names each cycle and the highest rate for the pair.
    A pair too slow is measured once more on its ``buses`` (what -> connected LeRobot bus) before
    the refusal, each bus keeping the better of its two cycles, as one bus is (``cycle_for_rate``):
    a machine busy for a moment is not the buses. Returns the cycles judged."""
    if len(cycles) < 2 or highest_hz(list(cycles.values())) >= fps:
        return cycles
    if buses:
        again = {}
        for what, cycle in cycles.items():
            try:
                again[what] = measured_again(buses[what], cycle)
            except (*BUS_ERRORS, TimeoutError) as err:
                raise _failed_while_measured(what, err) from err
        cycles = again
        if highest_hz(list(cycles.values())) >= fps:
            return cycles
    each = "; ".join(
        f"the {what}: p50 {c.read_p50_s * 1e3:.1f}, p99 {c.read_p99_s * 1e3:.1f} ms"
        for what, c in cycles.items()
    )
    raise ConnectError(
        f"the arm and its leader together cannot hold {fps} Hz: a teleoperated tick reads both buses ({each}), "
        f"so the loop sustains ≤ {highest_hz(list(cycles.values()))} Hz.{held_up_advice(list(cycles.values()), fps)} "
        "Run at a lower --fps, or give the leader a faster adapter."
    )


def _failed_while_measured(what: str, err: Exception) -> ConnectError:
    return ConnectError(
        f"the {what}'s bus failed while its cycle was measured ({' '.join(str(err).split())[:200]}); "
        "check the cables and the power supply."
    )


def claim_ports(devices: Devices) -> None:
    """One process per arm: claim every port before LeRobot opens it (runtime/ports.py)."""
    for device, what in devices.each():
        devices.claims.append(claim_port(device.config.port, what))


def connect(device, what: str, cameras: dict[str, str], fps: int) -> BusCycle:
    """LeRobot's ``connect()`` without calibrating, then the bus cycle against the loop rate
    (``check_bus_rate``); a failure names the part that failed."""
    try:
        device.connect(calibrate=False)
    except (*BUS_ERRORS, RuntimeError, TimeoutError) as err:  # RuntimeError: LeRobot's motor check
        message = " ".join(str(err).split())
        camera = _failed_camera(device, err)
        if camera is not None:  # the bus connected first: the shutdown releases it, torque off
            raise ConnectError(
                f"could not connect camera {camera!r} ({cameras.get(camera, 'no address')}): {message}. "
                "Check that it is plugged in and not used by another program."
            ) from err
        with contextlib.suppress(Exception):  # a failed handshake can leave the port open
            device.bus.port_handler.closePort()
        raise ConnectError(f"could not connect to the {what} on {device.config.port}: {message}") from err
    if not device.is_calibrated:
        raise ConnectError(
            f"the {what}'s servos do not match {device.calibration_fpath}; run lerobot-calibrate for it."
        )
    return check_bus_rate(device, what, fps)


def release(devices: Devices, torque_off: bool, hold: dict | None) -> tuple[str, bool]:
    """Disconnect in reverse order and drop the port claims; ``hold``: the last safe command, sent
    once more first (None when no command was ever sent). Returns (the arm's final state, whether
    the arm was unreachable)."""
    lost = False
    teleop, robot = devices.teleop, devices.robot
    if teleop is not None and teleop.is_connected:
        try:
            teleop.disconnect()
        except BUS_ERRORS:
            with contextlib.suppress(Exception):
                teleop.bus.port_handler.closePort()
    state = "nothing connected, nothing moved"
    if robot.bus.is_connected:
        torque = "torque off" if torque_off else "torque on (torque_off_on_exit=false)"
        try:
            if not robot.is_connected:  # a camera failed at connect: the bus alone is open
                robot.bus.disconnect(torque_off)
                for cam in robot.cameras.values():
                    if cam.is_connected:
                        cam.disconnect()
                state = f"the arm's bus was opened, then closed ({torque}); no command was sent"
            elif hold is not None:
                robot.send_action(hold)
                robot.disconnect()
                state = f"holding the last safe command, then {torque}; ports closed"
            else:  # start-up ended before the first command
                robot.disconnect()
                state = f"connected, then released before any command: {torque}; ports closed"
        except (*BUS_ERRORS, TimeoutError) as err:
            lost = True
            for cam in robot.cameras.values():
                with contextlib.suppress(Exception):
                    cam.disconnect()
            with contextlib.suppress(Exception):
                robot.bus.port_handler.closePort()
            state = (
                f"arm unreachable at shutdown ({err}); the servos keep their last goal with torque on. "
                "Power them off or reconnect and run again."
            )
    for claim in reversed(devices.claims):
        claim.release()
    return state, lost


def close_ports_now(devices: Devices) -> None:
    """A forced exit (second Ctrl-C): close the ports without talking to the servos."""
    for device, _ in devices.each():
        with contextlib.suppress(Exception):
            device.bus.port_handler.closePort()


def joint_limits(robot, action_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each joint's calibrated range in action units, through LeRobot's own normalization."""
    bus = robot.bus
    lower, upper = [], []
    for name in action_names:
        cal = bus.calibration[name.removesuffix(".pos")]
        a, b = normalize_positions(bus, cal.id, (cal.range_min, cal.range_max))
        lower.append(min(a, b))
        upper.append(max(a, b))
    return np.array(lower), np.array(upper)


def build_with_calibration(make, device_cfg, what: str):
    """LeRobot's robot/teleoperator from its config; it reads the calibration file as it is built,
    so a corrupt file is named here (``ConfigError``) instead of surfacing as a parser traceback."""
    try:
        return make(device_cfg)
    except Exception as err:  # draccus / json raise many types for a malformed file
        while err.__cause__ or err.__context__:  # the parser's own words, not draccus's wrapper
            err = err.__cause__ or err.__context__
        where = (
            f" in {device_cfg.calibration_dir}"
            if device_cfg.calibration_dir
            else " in LeRobot's calibration folder"
        )
        raise ConfigError(
            f"the {what}'s calibration file {device_cfg.id}.json{where} could not be read "
            f"({' '.join(str(err).split())[:200]}); fix or delete it and run lerobot-calibrate again."
        ) from None


def require_calibration(device, flag: str, kind: str) -> None:
    if not device.calibration:
        raise ConfigError(
            f"no calibration file {device.calibration_fpath}: run lerobot-calibrate "
            f"--{flag}.type={kind} --{flag}.port=… --{flag}.id={device.id} first (or pass calibration_dir)."
        )


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
