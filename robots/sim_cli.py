"""``drift-sim``: an emulated SO-100/SO-101/Koch arm that LeRobot's own tools can connect to.

    drift-sim --robot so100 --leader --camera

prints one JSON line (ports, camera address, calibration folder and robot id), then serves until
Ctrl-C / SIGTERM. Point LeRobot at it, e.g. with the printed values:

    lerobot-teleoperate --robot.type=so100_follower --robot.port=<follower_port> --robot.id=<id> \\
        --teleop.type=so100_leader --teleop.port=<leader_port> --teleop.id=<leader_id>
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from lerobot_policy_drift.robots.adapters import ADAPTERS
from lerobot_policy_drift.robots.arms import ARMS
from lerobot_policy_drift.robots.faults import BusFaults
from lerobot_policy_drift.robots.rig import CameraPlan, Rig, run_until_signalled


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="drift-sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", required=True, choices=sorted(ARMS), help="which arm to emulate")
    parser.add_argument("--id", default="drift_sim", help="robot id: its calibration file is <id>.json")
    parser.add_argument("--leader", action="store_true", help="also emulate the leader arm (id <id>_leader)")
    parser.add_argument(
        "--leader-motion",
        choices=["sway", "still"],
        default="sway",
        help="how the (limp) leader moves: a scripted hand swaying every joint, or held still",
    )
    parser.add_argument(
        "--camera", action="store_true", help="also publish a camera over ZMQ (LeRobot 'zmq' camera)"
    )
    parser.add_argument("--camera-name", default="front")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30, help="camera frames per second")
    parser.add_argument("--camera-port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument(
        "--calibration-dir",
        type=Path,
        default=None,
        help="where calibration JSON is read/written (default: LeRobot's calibration folders)",
    )
    parser.add_argument(
        "--reply-delay-ms", type=float, default=0.0, help="extra delay before every servo reply"
    )
    parser.add_argument(
        "--adapter",
        choices=list(ADAPTERS),
        default="ideal",
        help="how the USB-serial adapter hands replies to the host: ideal (none), ftdi (16 ms latency "
        "timer), ftdi-low-latency (1 ms), ch340",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="where the port links live (default: a temp dir)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix=f"drift-sim-{args.robot}-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        _serve(args, run_dir)
    finally:
        if args.run_dir is None:  # our temporary folder: nothing of it outlives the run
            shutil.rmtree(run_dir, ignore_errors=True)


def _serve(args: argparse.Namespace, run_dir: Path) -> None:
    from lerobot_policy_drift.robots.emulator import (
        plan_rig,
    )  # LeRobot's tables: imported after the arguments are valid
    from lerobot_policy_drift.robots.leader_scripts import Hold, sway_within

    cameras = []
    if args.camera:
        cameras.append(
            CameraPlan(
                name=args.camera_name,
                width=args.width,
                height=args.height,
                fps=args.fps,
                port=args.camera_port,
            )
        )
    try:
        plan = plan_rig(
            args.robot,
            run_dir,
            robot_id=args.id,
            leader=args.leader,
            cameras=cameras,
            calibration_dir=args.calibration_dir,
            faults=BusFaults(extra_delay_s=args.reply_delay_ms / 1000),
            adapter=args.adapter,
        )
    except ValueError as err:
        sys.exit(f"drift-sim: {err}")
    rig = Rig(plan).start()
    if plan.leader is not None:
        if args.leader_motion == "sway":
            rig.set_leader_script(sway_within(plan.leader.calibration))
        else:
            rig.set_leader_script(Hold(tuple(s["Present_Position"] for s in rig.state("leader").values())))
    run_until_signalled(rig)


if __name__ == "__main__":
    main()
