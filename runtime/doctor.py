"""``drift-doctor``: what is wrong with this set-up, before the arm moves. One line per check, each
with its verdict and, when it fails, the fix. It reads and probes; it writes nothing to a servo.

    drift-doctor --robot so100 --port /dev/ttyACM0 --bundle bundles/so100 --camera front=zmq:127.0.0.1:5555
    drift-doctor --robot so100 --emulate --bundle bundles/so100 --json

Exit status 0 when nothing blocks a session (warnings allowed), 1 when a check fails, 2 when the
command line itself is wrong.
"""

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

from lerobot_policy_drift.export.manifest import BundleError, BundleManifest

from .backends import AUTO_PROVIDERS, PolicyContract
from .camera_probe import probe_zmq
from .checks import Check, fail, ok
from .config import ConfigError, RunConfig, camera_config
from .doctor_arm import arm_checks
from .doctor_machine import JETSON_RELEASE, machine_checks

CAMERA_LISTEN_S = 2.0  # per camera: long enough for its rate, short enough to wait for
SLOW_CAMERA = 0.8  # a camera under this share of the loop rate fails
SYS = Path("/sys")


def run_checks(
    robot: str,
    port: str,
    robot_id: str = "drift",
    calibration_dir: Path | None = None,
    bundle: Path | None = None,
    cameras: dict[str, str] | None = None,
    teleop_port: str | None = None,
    teleop_id: str = "drift_leader",
    fps: int | None = None,
    sys_root: Path = SYS,
    jetson_release: Path = JETSON_RELEASE,
) -> list[Check]:
    """Every check, in the order a user would fix them: machine, bundle, arm(s), cameras, wiring."""
    cameras = cameras or {}
    checks = machine_checks(jetson_release)
    contract = None
    if bundle is not None:
        contract, bundle_lines = bundle_checks(bundle)
        checks.extend(bundle_lines)
    fps = fps or (contract.fps if contract else 30)
    checks.extend(arm_checks("arm", robot, port, robot_id, calibration_dir, fps, sys_root))
    if teleop_port is not None:
        checks.extend(arm_checks("leader arm", robot, teleop_port, teleop_id, calibration_dir, fps, sys_root))
    sizes = contract.cameras if contract else {}
    checks.extend(camera_check(n, spec, sizes.get(n), fps) for n, spec in cameras.items())
    if contract is not None:
        checks.append(
            wiring_check(
                robot, port, robot_id, calibration_dir, bundle, cameras, teleop_port, teleop_id, contract
            )
        )
    return checks


def bundle_checks(bundle: Path) -> tuple[PolicyContract | None, list[Check]]:
    """The seal, then the golden set on every provider that loads here (the drift-export --verify gate)."""
    from lerobot_policy_drift.export.onnxrt import ORT_PROVIDERS, ProviderError
    from lerobot_policy_drift.export.verify import verify_bundle

    try:
        manifest = BundleManifest.load(bundle)
    except BundleError as err:
        return None, [fail("bundle", str(err), "re-export it with drift-export, or copy it again")]
    contract = PolicyContract.from_manifest(manifest)
    lines = [
        ok(
            "bundle",
            f"{bundle}: sealed, {len(contract.action_names)} actions, cameras {dict(contract.cameras)}, {contract.fps} fps",
        )
    ]
    import onnxruntime as ort

    listed = set(ort.get_available_providers())
    for provider in AUTO_PROVIDERS:
        if ORT_PROVIDERS[provider] not in listed:
            continue
        name = f"golden set on {provider}"
        try:
            results = verify_bundle(bundle, provider)
        except ProviderError as err:
            lines.append(Check(name, "skip", str(err).split(";")[0]))
            continue
        shown = ", ".join(f"{b} {'PASS' if p else 'FAIL'} (max |Δ| {f.max_abs:.1e})" for b, f, p in results)
        if all(p for _, _, p in results):
            lines.append(ok(name, shown))
        elif provider == "cpu":
            lines.append(fail(name, shown, "the bundle no longer computes what was gated: re-export it"))
        else:
            lines.append(
                Check(name, "warn", shown, f"--ort-provider auto passes over {provider}; nothing to do")
            )
    return contract, lines


def camera_check(name: str, spec: str, size: tuple[int, int] | None, fps: int) -> Check:
    from lerobot.cameras.zmq.configuration_zmq import ZMQCameraConfig

    label = f"camera {name}"
    try:
        cam = camera_config(name, spec, size[1] if size else 640, size[0] if size else 480, fps)
    except ConfigError as err:
        return fail(label, str(err), "use NAME=opencv:INDEX_OR_PATH or NAME=zmq:HOST:PORT[/CAMERA_NAME]")
    if not isinstance(cam, ZMQCameraConfig):
        return Check(label, "skip", f"{spec}: OpenCV cameras are checked by drift-run as it connects them")
    probe = probe_zmq(cam.server_address, cam.port, cam.camera_name, CAMERA_LISTEN_S, CAMERA_LISTEN_S)
    if probe.problem is not None:
        return fail(label, probe.problem, "start its image server and check HOST:PORT and the camera name")
    rate = probe.fps or 0.0
    detail = f"{spec}: {rate:.1f} fps, frame age {probe.age_ms:.0f} ms, {probe.shape[1]}x{probe.shape[0]}"
    if size is not None and probe.shape[:2] != tuple(size):
        return fail(
            label, detail + f"; the policy reads {size[1]}x{size[0]}", "serve it at the size the policy reads"
        )
    if rate < SLOW_CAMERA * fps:
        return fail(
            label,
            detail + f", below the {fps} Hz loop",
            "lower its resolution or exposure time, use a USB 3 port, or give it its own USB controller",
        )
    return ok(label, detail)


def wiring_check(
    robot, port, robot_id, calibration_dir, bundle, cameras, teleop_port, teleop_id, contract
) -> Check:
    """drift-run's own checks of the policy against the robot, before it connects."""
    from .wiring import build_devices

    try:
        cfg = RunConfig(
            robot=robot,
            port=port,
            robot_id=robot_id,
            calibration_dir=calibration_dir,
            bundle=bundle,
            cameras=cameras,
            teleop_port=teleop_port,
            teleop_id=teleop_id,
        )
        build_devices(cfg, contract)
    except ConfigError as err:
        return fail("policy against robot", str(err), "use the bundle made for this arm and its cameras")
    return ok("policy against robot", "motors, observed state and camera names and sizes match the bundle")


def render(checks: list[Check]) -> None:
    from rich.console import Console
    from rich.table import Table

    styles = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
    table = Table(title="drift-doctor", show_lines=False)
    for col in ("check", "verdict", "found", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.name, f"[{styles[c.verdict]}]{c.verdict}[/]", c.detail, c.fix)
    Console().print(table)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drift-doctor", description="Check this set-up before drift-run moves the arm."
    )
    p.add_argument("--robot", choices=["so100", "so101", "koch"], required=True)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="the follower arm's serial port")
    where.add_argument("--emulate", action="store_true", help="check against the built-in emulated arm")
    p.add_argument("--robot-id", default="drift")
    p.add_argument("--calibration-dir", type=Path)
    p.add_argument("--bundle", type=Path, help="a drift-export bundle: its seal, golden set and contract")
    p.add_argument("--camera", action="append", metavar="NAME=SPEC", help="as drift-run's --camera")
    p.add_argument("--teleop-port", help="the leader arm's serial port")
    p.add_argument("--teleop-id", default="drift_leader")
    p.add_argument("--fps", type=_rate, help="the loop rate to check for (default: the bundle's, else 30)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON instead of a table")
    return p


def _rate(text: str) -> int:
    """A loop rate as drift-run accepts it (``RunConfig.fps``: 1 to 1000 Hz)."""
    bounds = RunConfig.model_fields["fps"].metadata
    low, high = next(m.ge for m in bounds if hasattr(m, "ge")), next(m.le for m in bounds if hasattr(m, "le"))
    if not text.isdigit() or not low <= int(text) <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of Hz from {low} to {high}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    from .cli import parse_cameras

    args = _parser().parse_args(argv)
    try:
        cameras = parse_cameras(args.camera) or {}
    except ConfigError as err:
        print(f"drift-doctor: {err}", file=sys.stderr)
        return 2
    options = dict(
        robot_id=args.robot_id,
        calibration_dir=args.calibration_dir,
        bundle=args.bundle,
        cameras=cameras,
        teleop_port=args.teleop_port,
        teleop_id=args.teleop_id,
        fps=args.fps,
    )
    if args.emulate:
        if cameras or args.teleop_port:
            print(
                "drift-doctor: --emulate makes its own cameras and leader arm; drop --camera/--teleop-port",
                file=sys.stderr,
            )
            return 2
        checks = _on_emulated_arm(args.robot, args.bundle, options)
    else:
        checks = run_checks(args.robot, args.port, **options)
    if args.json:
        blocked = any(c.verdict == "fail" for c in checks)
        print(json.dumps({"ok": not blocked, "checks": [c.as_dict() for c in checks]}, indent=1))
    else:
        render(checks)
    return 1 if any(c.verdict == "fail" for c in checks) else 0


def _on_emulated_arm(robot: str, bundle: Path | None, options: dict) -> list[Check]:
    """The built-in emulated arm, with the cameras the bundle reads and a leader arm."""
    from lerobot_policy_drift.robots.emulator import EmulatedRig
    from lerobot_policy_drift.robots.rig import CameraPlan

    sizes = {}
    if bundle is not None:
        with contextlib.suppress(BundleError):  # the bundle line says what is wrong with it
            sizes = PolicyContract.from_manifest(BundleManifest.load(bundle)).cameras
    cameras = [CameraPlan(name=n, width=w, height=h, fps=30) for n, (h, w) in sizes.items()]
    with (
        tempfile.TemporaryDirectory() as folder,
        EmulatedRig.start(robot, Path(folder), leader=True, cameras=cameras) as rig,
    ):
        wired = RunConfig.for_rig(rig, leader=True, bundle=bundle or Path("-"))
        options.update(
            robot_id=wired.robot_id,
            calibration_dir=wired.calibration_dir,
            cameras=wired.cameras,
            teleop_port=wired.teleop_port,
            teleop_id=wired.teleop_id,
        )
        return run_checks(robot, wired.port, **options)


def entry() -> None:
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # it only reads: nothing to undo on the arm
        print("drift-doctor: cancelled by Ctrl-C; nothing was written to the arm.", file=sys.stderr)
        sys.exit(130)
