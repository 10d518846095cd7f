"""``drift-run`` (the robot session) and ``drift-profile`` (inference alone, same report format).

    drift-run --robot so100 --emulate --bundle bundles/so100 --duration 30
    drift-run --robot so100 --port /dev/ttyACM0 --bundle bundles/so100 --camera front=opencv:0 \\
        --teleop-port /dev/ttyACM1 --mode teleop-first

Exit status: 0 when the session ended normally (duration, stop key, Ctrl-C), 1 when a fault ended it
(the report says which and in what state the arm was left), 2 when the configuration, bundle,
policy, a port or a camera was refused before the loop started, 130 / 143 when Ctrl-C / SIGTERM
cancelled the start-up. Each of those ends in one line saying what happened and the arm's state.
"""

import argparse
import itertools
import signal
import sys
from pathlib import Path

import numpy as np

from lerobot_policy_drift.export.manifest import GOLDEN_FILE, BundleError
from lerobot_policy_drift.export.onnxrt import ORT_PROVIDERS
from lerobot_policy_drift.robots.adapters import ADAPTERS

from .backends import BackendError, make_backend
from .config import BUS_ORDERS, ConfigError, RunConfig
from .monitor import LatencyMonitor, summary_table

PRECISIONS = ["fp32", "fp16", "int8"]


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drift-run", description="Run a Drift policy on an SO-100/SO-101/Koch arm."
    )
    p.add_argument("--config", type=Path, help="YAML/JSON file with any of the options below (flags win)")
    p.add_argument("--robot", choices=["so100", "so101", "koch"])
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", help="the follower arm's serial port")
    where.add_argument("--emulate", action="store_true", default=None, help="use the built-in emulated arm")
    p.add_argument(
        "--adapter",
        choices=list(ADAPTERS),
        help="with --emulate: the USB adapter model of the emulated arm (default ideal)",
    )
    p.add_argument("--robot-id", help="LeRobot robot id (its calibration file is <id>.json)")
    p.add_argument("--calibration-dir", type=Path)
    p.add_argument("--bundle", type=Path, help="a drift-export bundle")
    p.add_argument(
        "--policy",
        type=Path,
        help="a drift, or LeRobot diffusion / act / vqbet checkpoint (pretrained_model/), --backend torch",
    )
    p.add_argument("--backend", choices=["ort", "torch", "tensorrt"])
    p.add_argument(
        "--ort-provider",
        choices=["auto", *sorted(ORT_PROVIDERS)],
        help="default auto: the best that loads here",
    )
    p.add_argument("--precision", choices=PRECISIONS, help="the bundle graph to run (default fp32)")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], help="for --backend torch (default cpu)")
    p.add_argument("--inference-threads", type=int)
    p.add_argument(
        "--inference-floor-ms",
        type=float,
        help="no chunk returns sooner: rehearse a slower machine's chunk time on this one (default 0)",
    )
    p.add_argument(
        "--camera", action="append", metavar="NAME=SPEC", help="opencv:INDEX_OR_PATH or zmq:HOST:PORT[/NAME]"
    )
    p.add_argument("--teleop-port", help="the leader arm's serial port")
    p.add_argument("--teleop-id")
    p.add_argument("--fps", type=int)
    p.add_argument("--duration", dest="duration_s", type=float, help="seconds, then stop")
    p.add_argument("--mode", choices=["auto", "teleop-first"])
    p.add_argument("--report", dest="report_dir", type=Path, help="where report.json and latency.png go")
    p.add_argument("--blend-steps", type=int)
    p.add_argument("--max-speed", type=float, help="per joint, action units per second")
    p.add_argument("--max-accel", type=float, help="per joint, units per second² (jerk limit)")
    p.add_argument("--watchdog-ms", type=float)
    p.add_argument("--spin-ms", type=float, help="spin (not sleep) this long before each deadline")
    p.add_argument(
        "--bus-order",
        choices=BUS_ORDERS,
        help="write-first (default): each deadline writes the goal computed the tick before, then reads",
    )
    p.add_argument("--refill-margin", type=int)
    p.add_argument("--background-nice", type=int, help="nice increment for the other threads (default 10)")
    p.add_argument(
        "--gil-switch-ms",
        type=float,
        help="Python's GIL switch interval in the loop (default 5; > --spin-ms)",
    )
    p.add_argument("--handover-s", type=float)
    p.add_argument("--control-pipe", type=Path, help="FIFO accepting auto / teleop / stop lines")
    p.add_argument("--keep-torque", dest="torque_off_on_exit", action="store_false", default=None)
    p.add_argument("--no-status", dest="status", action="store_false", default=None)
    p.add_argument("--record", dest="record_dir", type=Path, help="record teleop phases as a LeRobot dataset")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--noise",
        choices=["per-chunk", "per-engagement"],
        help="a fresh noise draw per chunk (default), or one held per engagement of the policy",
    )
    return p


def parse_cameras(specs: list[str] | None) -> dict[str, str] | None:
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"--camera {spec!r}: expected NAME=SPEC, e.g. front=opencv:0.")
        out[name] = value
    return out


NOTHING_CONNECTED = "nothing connected, nothing moved"
# What refuses a session before its loop starts, each with the one line a user reads.
REFUSALS = (ConfigError, BackendError, BundleError)
WIRING = {
    "emulate",
    "adapter",
    "robot",
    "port",
    "robot_id",
    "calibration_dir",
    "cameras",
    "teleop_port",
    "teleop_id",
}


def main(argv: list[str] | None = None) -> int:
    args = vars(_run_parser().parse_args(argv))
    config_file = args.pop("config")
    try:
        args["cameras"] = parse_cameras(args.pop("camera"))
        config = RunConfig.load(config_file, **args)
        from .errors import StartupCancelled
        from .monitor import print_summary

        try:
            for sig in (signal.SIGINT, signal.SIGTERM):  # until the session installs its own handlers
                signal.signal(sig, _cancel_start_up)
            report = _emulated_session(config) if config.emulate else _session(config)
        except StartupCancelled as err:
            print(f"drift-run: {err}; arm: {getattr(err, 'arm_state', NOTHING_CONNECTED)}.", file=sys.stderr)
            return err.exit_code
    except REFUSALS as err:
        print(f"drift-run: {err} Arm: {getattr(err, 'arm_state', NOTHING_CONNECTED)}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before any handler was installed (the imports)
        print(f"drift-run: cancelled by SIGINT during start-up; arm: {NOTHING_CONNECTED}.", file=sys.stderr)
        return 130
    print_summary(report)
    print(
        f"report: {config.report_dir / 'report.json'}, {config.report_dir / 'latency.png'}", file=sys.stderr
    )
    return 1 if "fault" in report else 0


def _cancel_start_up(signum, _frame):
    from .errors import StartupCancelled

    raise StartupCancelled(signal.Signals(signum).name)


def _session(config: RunConfig, backend=None, write_arrivals=None) -> dict:
    from .runner import run_session

    return run_session(config, backend, write_arrivals)


def _emulated_session(config: RunConfig) -> dict:
    """``--emulate``: the built-in emulated arm (cameras named and sized as the policy reads them,
    a leader when the session starts in teleop), started here and wired to the session exactly as
    a real arm is, by its port, calibration and camera addresses. This is the one place in
    runtime/ that starts the emulator."""
    from lerobot_policy_drift.robots.emulator import EmulatedRig
    from lerobot_policy_drift.robots.leader_scripts import sway_within
    from lerobot_policy_drift.robots.rig import CameraPlan

    from .backends import backend_for
    from .monitor import check_writable

    check_writable(config.report_dir)  # the emulator's ports live in it
    backend = backend_for(config)
    cameras = [
        CameraPlan(name=n, width=w, height=h, fps=30) for n, (h, w) in backend.contract.cameras.items()
    ]
    leader = config.mode == "teleop-first"
    with EmulatedRig.start(
        config.robot,
        config.report_dir / "emulator",
        robot_id=config.robot_id,
        leader=leader,
        cameras=cameras,
        adapter=config.adapter,
    ) as rig:
        if leader:
            rig.set_leader_script(sway_within(rig.plan.leader.calibration, share=0.2, period_s=6.0))
        options = config.model_dump(exclude=WIRING)
        rig.sync_write_times()  # from here on: the session's goal writes, as the servos received them
        return _session(RunConfig.for_rig(rig, leader=leader, **options), backend, rig.sync_write_times)


def profile_main(argv: list[str] | None = None) -> int:
    """``drift-profile``: inference alone on the bundle's golden inputs, written as a drift-run report."""
    p = argparse.ArgumentParser(prog="drift-profile", description=profile_main.__doc__)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--policy", type=Path, help="checkpoint for --backend torch")
    p.add_argument("--backend", choices=["ort", "torch", "tensorrt"], default="ort")
    p.add_argument("--ort-provider", choices=["auto", *sorted(ORT_PROVIDERS)], default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--report", type=Path, default=Path("outputs/profile"))
    p.add_argument(
        "--parts",
        action="store_true",
        help="also split the graph's CPU time into encoder / U-Net / glue with ONNX Runtime's profiler",
    )
    args = p.parse_args(argv)
    if args.parts and (args.backend != "ort" or args.ort_provider != "cpu"):
        print(
            "drift-profile: --parts splits ONNX Runtime's CPU kernel times; use --backend ort "
            "--ort-provider cpu (on a GPU provider a node's profiled time is its launch, not its run).",
            file=sys.stderr,
        )
        return 2
    try:
        backend = make_backend(
            args.backend, args.bundle, args.policy, args.ort_provider, args.threads, args.precision
        )
        golden = np.load(args.bundle / GOLDEN_FILE)
    except (BackendError, BundleError, OSError) as err:
        print(f"drift-profile: {err}", file=sys.stderr)
        return 2
    names = [k.removeprefix("input.") for k in golden.files if k.startswith("input.")]
    feeds = [{n: golden[f"input.{n}"][i] for n in names} for i in range(len(golden["expected"]))]
    from lerobot_policy_drift.drift.timing import time_calls

    monitor = LatencyMonitor(fps=backend.contract.fps)
    cycle = itertools.cycle(feeds)
    elapsed = 0.0
    for seconds in time_calls(lambda: backend.infer(next(cycle)), args.calls, warmup=3):
        monitor.chunk(elapsed, seconds, 0)  # back to back: each call starts as the previous ends
        elapsed += seconds
    report = monitor.write(
        args.report, {"backend": backend.name, "bundle": str(args.bundle), "calls": args.calls}
    )
    from rich.console import Console

    Console(stderr=True).print(summary_table(report))
    print(f"report: {args.report / 'report.json'}", file=sys.stderr)
    if args.parts:
        _profile_parts(args, feeds)
    return 0


def _profile_parts(args: argparse.Namespace, feeds: list[dict[str, np.ndarray]]) -> None:
    """Where the graph's time goes, per policy part and op type: a table and ``parts.json``."""
    import json

    from rich.console import Console
    from rich.table import Table

    from lerobot_policy_drift.export.graph_profile import profile_graph
    from lerobot_policy_drift.export.manifest import BundleManifest

    model = args.bundle / BundleManifest.load(args.bundle).graph_file(args.precision)
    prof = profile_graph(model, feeds, min(args.calls, 100), args.threads)
    table = Table(
        title=f"{model.name}: median ms per call, {prof.calls} calls with ONNX Runtime's profiler on",
        caption="the profiler slows every node: read the parts as shares of a call",
    )
    for col in ("where", "ms", "share"):
        table.add_column(col, justify="right" if col != "where" else "left")
    rows = [*prof.parts_ms.items(), ("outside kernels", prof.outside_kernels_ms)]
    for name, ms in rows:
        table.add_row(name, f"{ms:.2f}", f"{ms / prof.wall_ms:.0%}")
    table.add_row("[b]call (wall)", f"[b]{prof.wall_ms:.2f}", "")
    table.add_row("call without the profiler", f"{prof.plain_wall_ms:.2f}", "")
    for op, ms in list(prof.ops_ms.items())[:8]:
        table.add_row(f"  op {op}", f"{ms:.2f}", f"{ms / prof.wall_ms:.0%}")
    Console(stderr=True).print(table)
    args.report.mkdir(parents=True, exist_ok=True)
    (args.report / "parts.json").write_text(json.dumps({"model": str(model), **prof.to_json()}, indent=2))
    print(f"parts: {args.report / 'parts.json'}", file=sys.stderr)


def entry() -> None:
    sys.exit(main())


def profile_entry() -> None:
    sys.exit(profile_main())


if __name__ == "__main__":
    entry()
