"""drift-doctor's checks of an arm (follower or leader): its port, the USB adapter behind it, the
servos that answer, its calibration file against those servos, and the bus cycle it sustains.
Everything here reads; nothing writes to a servo, so nothing can move."""

import contextlib
import grp
import os
import pwd
import stat
import sys
import tempfile
from pathlib import Path

from lerobot_policy_drift.robots.arms import ARMS, arm_spec, follower_config, leader_config

from .bus_timing import cycle_for_rate, held_up_advice, latency_timer, latency_timer_fix
from .checks import Check, fail, ok
from .config import ConfigError
from .errors import BUS_ERRORS
from .ports import claim_port
from .wiring import build_with_calibration, require_calibration


def arm_checks(
    what: str, arm: str, port: str, device_id: str, calibration_dir: Path | None, fps: int, sys_root: Path
) -> list[Check]:
    """``what``: "arm" (the follower) or "leader arm"."""
    checks = [port_check(what, port)]
    if checks[0].verdict == "fail":
        return checks
    checks.append(adapter_check(what, port, sys_root))
    make_config = follower_config if what == "arm" else leader_config
    cfg = make_config(arm, port, device_id, calibration_dir)
    with tempfile.TemporaryDirectory() as empty:
        try:
            device = build_with_calibration(_maker(what), cfg, what)
            require_calibration(device, _flag(what), cfg.type)
        except ConfigError as err:
            checks.append(fail(f"{what}: calibration", str(err), _calibrate(what, cfg)))
            device = build_with_calibration(
                _maker(what), make_config(arm, port, device_id, Path(empty)), what
            )
            calibrated = False
        else:
            calibrated = True
        checks.extend(_bus_checks(what, arm, device, calibrated, fps))
    return checks


def _flag(what: str) -> str:
    return "robot" if what == "arm" else "teleop"


def _calibrate(what: str, cfg) -> str:
    flag = _flag(what)
    return f"lerobot-calibrate --{flag}.type={cfg.type} --{flag}.port={cfg.port} --{flag}.id={cfg.id}"


def _maker(what: str):
    from lerobot.robots.utils import make_robot_from_config
    from lerobot.teleoperators.utils import make_teleoperator_from_config

    return make_robot_from_config if what == "arm" else make_teleoperator_from_config


def port_check(what: str, port: str) -> Check:
    name = f"{what}: port"
    find = "find it with lerobot-find-port" + (
        " (or ls /dev/serial/by-id/)" if sys.platform.startswith("linux") else ""
    )
    if not os.path.exists(port):
        return fail(name, f"{port} does not exist", f"plug the {what} in and power it; {find}")
    device = os.path.realpath(port)
    if not stat.S_ISCHR(os.stat(device).st_mode):
        return fail(name, f"{port} is not a serial device", find)
    try:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)  # changes nothing on the line
    except PermissionError:
        return fail(name, f"{port}: {_who_may_use(device)}", _permission_fix(device))
    os.close(fd)
    try:
        claim_port(port, what).release()
    except ConfigError as err:
        return fail(name, str(err).split(": ", 1)[-1], "stop that process first (one process per arm)")
    return ok(name, f"{port}" + (f" → {device}" if device != port else "") + ", readable and writable, free")


def _who_may_use(device: str) -> str:
    st = os.stat(device)
    user = pwd.getpwuid(os.geteuid()).pw_name
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"user {user} may not read and write it (mode {stat.filemode(st.st_mode)}, group {group})"


def _permission_fix(device: str) -> str:
    if sys.platform.startswith("linux"):
        group = grp.getgrgid(os.stat(device).st_gid).gr_name
        return (
            f"sudo usermod -aG {group} $USER, then log out and in again (for now: sudo chmod a+rw {device})"
        )
    return f"give your user read and write access to {device}"


def adapter_check(what: str, port: str, sys_root: Path) -> Check:
    """The USB-serial adapter's driver and, where it has one (FTDI), its latency timer: 16 ms by
    default, which makes every status packet wait that long."""
    name = f"{what}: adapter"
    node = Path(os.path.realpath(port))
    if node.parent.name == "pts" or node.name.startswith("pts"):
        return ok(name, "pseudo-terminal (an emulated arm): no USB adapter")
    if not (sys_root / "class" / "tty" / node.name).exists():
        return Check(
            name, "skip", f"no {sys_root}/class/tty/{node.name} here: adapter not identified (not Linux?)"
        )
    driver, ms = latency_timer(port, sys_root)
    if ms is None:
        return ok(name, f"{driver} (no latency timer to tune)")
    if ms <= 1:
        return ok(name, f"{driver}, latency timer {ms} ms")
    return Check(
        name,
        "warn",
        f"{driver}, latency timer {ms} ms: every servo reply waits up to {ms} ms in the adapter",
        latency_timer_fix(port, sys_root),
    )


def _bus_checks(what: str, arm: str, device, calibrated: bool, fps: int) -> list[Check]:
    bus = device.bus
    try:
        bus.connect(handshake=True)  # pings every servo and compares its model; writes nothing
    except (*BUS_ERRORS, RuntimeError) as err:
        return [_motors_failed(what, arm, bus, err)]
    try:
        models = sorted({m.model for m in bus.motors.values()})
        checks = [
            ok(
                f"{what}: motors",
                f"{len(bus.motors)} answer with the ids and models of a {arm} ({', '.join(models)})",
            )
        ]
        if calibrated:
            checks.append(_calibration_matches(what, device))
        checks.append(_bus_cycle(what, bus, fps))
        return checks
    finally:
        with contextlib.suppress(Exception):
            bus.disconnect(disable_torque=False)  # torque as it was: nothing changes


def _motors_failed(what: str, arm: str, bus, err: BaseException) -> Check:
    detail = " ".join(str(err).split())[:160]
    other = _other_family_answers(arm, bus.port)
    if other:
        return fail(
            f"{what}: motors",
            f"no {arm} servo answers on {bus.port}, but {other}-type servos do",
            f"pass --robot {other}" if other == "koch" else f"pass --robot {other} (or so101)",
        )
    return fail(
        f"{what}: motors",
        f"the servos of a {arm} do not all answer on {bus.port} ({detail})",
        "check the arm's power supply and the daisy-chain cables; set up motor ids with lerobot-setup-motors",
    )


def _other_family_answers(arm: str, port: str) -> str | None:
    """The arm kind (of the other servo family) whose servos answer on ``port``, if any."""
    from lerobot.robots.utils import make_robot_from_config

    for other, spec in ARMS.items():
        if spec.protocol == arm_spec(arm).protocol or other == "so101":
            continue
        with tempfile.TemporaryDirectory() as empty:
            bus = make_robot_from_config(follower_config(other, port, "probe", Path(empty))).bus
            try:
                bus.connect(handshake=True)
            except (*BUS_ERRORS, RuntimeError):
                continue
            with contextlib.suppress(Exception):
                bus.disconnect(disable_torque=False)
            return other
    return None


def _calibration_matches(what: str, device) -> Check:
    name = f"{what}: calibration"
    path = device.calibration_fpath
    if device.bus.is_calibrated:
        return ok(name, f"{path} matches the servos")
    return fail(
        name,
        f"{path} does not match the servos' offsets and limits: it was made for another arm or before a re-assembly",
        _calibrate(what, device.config),
    )


def _bus_cycle(what: str, bus, fps: int) -> Check:
    cycle = cycle_for_rate(bus, fps)
    if cycle.highest_hz >= fps:
        return ok(f"{what}: bus cycle", f"{cycle.describe()} (asked: {fps} Hz)")
    advice = held_up_advice([cycle], fps)
    return fail(
        f"{what}: bus cycle",
        f"{cycle.describe()}, below the {fps} Hz asked" + (f".{advice}" if advice else ""),
        f"run at --fps {cycle.highest_hz} or lower, or make the bus faster: a USB adapter's latency timer "
        "at 1 ms (see the adapter line), a shorter cable chain",
    )
