"""``drift-run`` (the robot session) and ``drift-profile`` (inference alone, same report format).

    drift-run --robot so100 --emulate --bundle bundles/so100 --duration 30
    drift-run --robot so100 --port /dev/ttyACM0 --bundle bundles/so100 --camera front=opencv:0 \\
        --teleop-port /dev/ttyACM1 --mode teleop-first

Exit status: 0 when the session ended normally (duration, stop key, Ctrl-C), 1 when a fault ended it
(the report says which and in what state the arm was left), 2 when the configuration, bundle or
policy was refused before anything connected.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from export.manifest import GOLDEN_FILE, BundleError
from export.onnxrt import ORT_PROVIDERS

from .backends import BackendError, make_backend
from .config import ConfigError, RunConfig
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
    p.add_argument("--robot-id", help="LeRobot robot id (its calibration file is <id>.json)")
    p.add_argument("--calibration-dir", type=Path)
    p.add_argument("--bundle", type=Path, help="a drift-export bundle")
    p.add_argument(
        "--policy",
        type=Path,
        help="a drift or LeRobot diffusion checkpoint (pretrained_model/), --backend torch",
    )
    p.add_argument("--backend", choices=["ort", "torch", "tensorrt"])
    p.add_argument("--ort-provider", choices=sorted(ORT_PROVIDERS))
    p.add_argument("--precision", choices=PRECISIONS, help="the bundle graph to run (default fp32)")
    p.add_argument("--inference-threads", type=int)
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
    return p


def _cameras(specs: list[str] | None) -> dict[str, str] | None:
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"--camera {spec!r}: expected NAME=SPEC, e.g. front=opencv:0.")
        out[name] = value
    return out


def main(argv: list[str] | None = None) -> int:
    args = vars(_run_parser().parse_args(argv))
    config_file = args.pop("config")
    try:
        args["cameras"] = _cameras(args.pop("camera"))
        config = RunConfig.load(config_file, **args)
        from .runner import print_summary, run_session

        report = run_session(config)
    except (ConfigError, BackendError, BundleError) as err:
        print(f"drift-run: {err}\nNothing was connected; the arm did not move.", file=sys.stderr)
        return 2
    print_summary(report)
    print(
        f"report: {config.report_dir / 'report.json'}, {config.report_dir / 'latency.png'}", file=sys.stderr
    )
    return 1 if "fault" in report else 0


def profile_main(argv: list[str] | None = None) -> int:
    """``drift-profile``: inference alone on the bundle's golden inputs, written as a drift-run report."""
    p = argparse.ArgumentParser(prog="drift-profile", description=profile_main.__doc__)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--policy", type=Path, help="checkpoint for --backend torch")
    p.add_argument("--backend", choices=["ort", "torch", "tensorrt"], default="ort")
    p.add_argument("--ort-provider", choices=sorted(ORT_PROVIDERS), default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--report", type=Path, default=Path("outputs/profile"))
    args = p.parse_args(argv)
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
    import time

    monitor = LatencyMonitor(fps=backend.contract.fps)
    for feed in feeds[:3]:
        backend.infer(feed)
    start = time.perf_counter()
    for i in range(args.calls):
        t0 = time.perf_counter()
        backend.infer(feeds[i % len(feeds)])
        monitor.chunk(t0 - start, time.perf_counter() - t0, 0)
    report = monitor.write(
        args.report, {"backend": backend.name, "bundle": str(args.bundle), "calls": args.calls}
    )
    from rich.console import Console

    Console(stderr=True).print(summary_table(report))
    print(f"report: {args.report / 'report.json'}", file=sys.stderr)
    return 0


def entry() -> None:
    sys.exit(main())


def profile_entry() -> None:
    sys.exit(profile_main())
