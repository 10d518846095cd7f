"""drift-run's rate on the emulated so100, and side by side with lerobot-rollout (its sync engine).

    python -m benchmarks.runtime_rate --seconds 600 --rates 30 100     # 10 minutes at each rate
    python -m benchmarks.runtime_rate --compare-rollout --seconds 120  # lerobot-rollout vs drift-run
    python -m benchmarks.runtime_rate --compare-rollout --rollout-inference rtc --seconds 120  # its RTC engine
    python -m benchmarks.runtime_rate --compare-rollout --seconds 240 --adapter ftdi-low-latency \
        --bus-order write-first read-first                            # the same, behind an adapter model
    python -m benchmarks.runtime_rate --seconds 120 --rates 100 --nice 0 10 --rounds 2  # priority A/B
    python -m benchmarks.runtime_rate --seconds 60 --rates 100 --gil-switch-ms 5 0.5 0.1 --rounds 3
    python -m benchmarks.runtime_rate --seconds 60 --rates 100 --spin-ms 2 4 --rounds 4
    python -m benchmarks.runtime_rate --seconds 30 --rates 100 --flood-mb 0 5 --rounds 3  # control-pipe flood
    python -m benchmarks.runtime_rate --seconds 600 --rates 30 50 100 --adapter ftdi-low-latency \
        --bus-order write-first read-first --rounds 3     # commands on the deadline vs after the read

Timing comes from two places: drift-run's own report (tick-start jitter, stages, inference, camera →
servo latency, and when each goal write returned on the host against its deadline) and, for every
runtime alike, the emulator's clock: the arrival times of the
Goal_Position SYNC_WRITEs at the servo chain, i.e. when the arm was actually commanded. From those,
the write interval minus the period is the actuation jitter, an interval over 1.5 periods is a slow
tick, and the longest interval is the longest stall. Paired write by write, the two clocks give the
pty hop: what the emulator's transport adds after drift-run's write returned (BENCHMARKS §6). The policies are untrained DriftPolicy bundles
with a 64x48 camera exported for the emulated so100 at 30 fps (for 30 Hz) and 50 fps (for 100 Hz:
drift-run plays the chunk interpolated at twice the policy rate).
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.emulated_policy import CAMERA, policy_bundle, record_teleop_dataset
from lerobot_policy_drift.robots.adapters import ADAPTERS
from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.runtime.config import BUS_ORDERS, ConfigError, RunConfig
from lerobot_policy_drift.runtime.monitor import actuation_figures, summarize
from lerobot_policy_drift.runtime.runner import Runner


def policy_for(fps: int, work: Path, prefix: bool = False) -> tuple[Path, Path]:
    """The untrained (checkpoint, bundle) for ``fps`` (``prefix``: trained-for-RTC architecture,
    prefix_conditioning), made once per ``--work`` folder and reused after."""
    out = work / f"policy{fps}{'_prefix' if prefix else ''}"
    if (out / "bundle" / "manifest.json").exists():
        return out / "pretrained_model", out / "bundle"
    root = work / f"drift_so100_{fps}fps"
    if not (root / "meta" / "info.json").exists():
        record_teleop_dataset("so100", root, work / f"rig{fps}", fps=fps)
    return policy_bundle(root, out, prefix_conditioning=prefix)


def flood(pipe: Path, megabytes: float) -> None:
    """One second into the run, ``megabytes`` without a newline into the control pipe (the session
    must drop it as one over-long line, in bounded memory, without losing its rate)."""
    while not pipe.exists():
        time.sleep(0.05)
    time.sleep(1.0)
    fd = os.open(pipe, os.O_WRONLY)
    block = b"x" * 65536
    for _ in range(int(megabytes * 2**20) // len(block)):
        os.write(fd, block)
    os.write(fd, b"\n")
    os.close(fd)


def run_drift(
    bundle: Path, fps: int, seconds: float, work: Path, flood_mb: float = 0, adapter: str = "ideal", **options
) -> dict:
    with EmulatedRig.start("so100", work / f"drift_rig_{fps}", cameras=[CAMERA], adapter=adapter) as rig:
        pipe = work / f"control_{fps}"
        cfg = RunConfig.for_rig(
            rig,
            bundle=bundle,
            fps=fps,
            duration_s=seconds,
            report_dir=work / f"drift_report_{fps}",
            status=False,
            control_pipe=pipe if flood_mb else None,
            **options,
        )
        if flood_mb:
            threading.Thread(target=flood, args=(pipe, flood_mb), daemon=True).start()
        runner = Runner(cfg)
        report = runner.run()
        arrivals = rig.sync_write_times()
        emulator = actuation_figures(arrivals[1:-1], fps)  # drop connect/shutdown writes
        emulator["hop_ms"] = summarize(hops_ms(runner.monitor.goal_write_times, arrivals, 1 / fps))
    return {"report": report, "emulator": emulator}


def hops_ms(returned: list[float], arrivals: list[float], period: float) -> list[float]:
    """Per goal write, its arrival at the emulated chain minus the return of drift-run's write (ms;
    both CLOCK_MONOTONIC): the time the emulator's own transport (the pty) added, which a real
    adapter's write does not. Each write is paired with the arrival nearest to it within half a
    period; a write with none (lost, or outside the run) is left out."""
    arrivals = np.asarray(arrivals, float)
    if not arrivals.size:
        return []
    out = []
    for t in returned:
        i = int(np.searchsorted(arrivals, t))
        near = min((arrivals[j] for j in (i - 1, i) if 0 <= j < arrivals.size), key=lambda a: abs(a - t))
        if abs(near - t) < period / 2:
            out.append((near - t) * 1e3)
    return out


# lerobot-rollout's engines. RTC: LeRobot's default queue threshold (30) is sized for 50-step chunks;
# with 8 executed actions it would infer back to back, so it asks when half the chunk is left.
ROLLOUT_INFERENCE = {
    "sync": ("--inference.type=sync",),
    "rtc": ("--inference.type=rtc", "--inference.rtc.execution_horizon=8", "--inference.queue_threshold=4"),
}


def run_rollout(
    checkpoint: Path, seconds: float, work: Path, adapter: str = "ideal", inference: str = "sync"
) -> dict:
    with EmulatedRig.start("so100", work / "rollout_rig", cameras=[CAMERA], adapter=adapter) as rig:
        cmd = [
            str(Path(sys.executable).parent / "lerobot-rollout"),
            *rig.robot_cli_args(),
            f"--policy.path={checkpoint}",
            "--policy.device=cpu",
            "--strategy.type=base",
            *ROLLOUT_INFERENCE[inference],
            "--fps=30",
            f"--duration={seconds}",
            # Its teardown glides the arm home at 50 Hz for 3 s; those writes are not the loop's.
            "--return_to_initial_position=false",
        ]
        t0 = time.time()
        result = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - t0
        emulator = actuation_figures(rig.sync_write_times()[1:-1], 30)
    if result.returncode != 0:
        raise RuntimeError(f"lerobot-rollout failed ({result.returncode}):\n{result.stderr[-3000:]}")
    if "RTC inference error" in result.stderr:  # its RTC thread logs and gives up, exit code 0
        raise RuntimeError(f"lerobot-rollout's RTC inference failed:\n{result.stderr[-3000:]}")
    slow_warnings = result.stderr.count("slower")
    return {
        "emulator": emulator,
        "wall_s": wall,
        "slow_loop_warnings": slow_warnings,
        "command": " ".join(cmd),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rates", type=int, nargs="*", default=[30, 100])
    parser.add_argument("--compare-rollout", action="store_true")
    parser.add_argument(
        "--rollout-inference",
        choices=list(ROLLOUT_INFERENCE),
        default="sync",
        help="--compare-rollout: lerobot-rollout's engine; rtc runs a prefix-conditioned policy, "
        "and drift-run its bundle (each chunk continues the plan)",
    )
    parser.add_argument(
        "--nice", type=int, nargs="+", default=[10], help="background_nice values, run side by side per rate"
    )
    parser.add_argument(
        "--gil-switch-ms", type=float, nargs="+", default=[5.0], help="gil_switch_ms values, run side by side"
    )
    parser.add_argument(
        "--spin-ms", type=float, nargs="+", default=[2.0], help="spin_ms values, run side by side"
    )
    parser.add_argument(
        "--flood-mb",
        type=float,
        nargs="+",
        default=[0.0],
        help="MB flooded into the control pipe, side by side",
    )
    parser.add_argument(
        "--adapter",
        nargs="+",
        default=["ideal"],
        choices=list(ADAPTERS),
        help="USB adapter models, side by side (--compare-rollout: the first)",
    )
    parser.add_argument(
        "--bus-order",
        nargs="+",
        default=["write-first"],
        choices=BUS_ORDERS,
        help="drift-run's bus_order values, side by side",
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternations of the side-by-side values")
    parser.add_argument("--out", type=Path, default=Path("outputs/runtime_rate.json"))
    parser.add_argument("--work", type=Path, help="scratch folder; its policies are reused by the next run")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="drift-rate-"))
    console = Console(width=200)
    results: dict = {}
    if args.compare_rollout:
        inference = args.rollout_inference
        checkpoint, bundle = policy_for(30, work, prefix=inference == "rtc")
        # Alternate twice so machine noise hits both alike.
        adapter = args.adapter[0]
        for round_ in range(2):
            results[f"lerobot-rollout {inference} #{round_ + 1}"] = run_rollout(
                checkpoint, args.seconds / 2, work / f"r{round_}", adapter, inference
            )
            for order in args.bus_order:
                results[f"drift-run {order} #{round_ + 1}"] = run_drift(
                    bundle, 30, args.seconds / 2, work / f"d{round_}", adapter=adapter, bus_order=order
                )
        table = Table(
            title=f"lerobot-rollout ({inference}) vs drift-run, emulated so100 ({adapter} adapter), 30 Hz, "
            f"2 × {args.seconds / 2:g} s each"
        )
        for col in ("runtime", "writes", "|jitter| p50", "p99", "max", "slow ticks", "longest stall ms"):
            table.add_column(col, justify="right")
        for name, r in results.items():
            e = r["emulator"]
            j = e["actuation_jitter_ms"]
            table.add_row(
                name,
                str(e["actuation_writes"]),
                f"{j['p50']:.2f}",
                f"{j['p99']:.2f}",
                f"{j['max']:.2f}",
                str(e["actuation_slow_writes"]),
                f"{e['actuation_longest_ms']:.1f}",
            )
        console.print(table)
    else:
        table = Table(title=f"drift-run on the emulated so100, {args.seconds:g} s per run")
        cols = (
            "fps",
            "adapter",
            "order",
            "nice",
            "GIL ms",
            "spin ms",
            "flood MB",
            "ticks",
            "missed",
            "jitter p50/p99/max ms",
            "e2e p50/p99 ms",
            "inference p50/p99 ms",
        )
        for col in (
            *cols,
            "send_action p99 ms",
            "goal write after deadline p50/p99 ms (host)",
            "host write |jitter| p99 ms",
            "pty hop p50/p99 ms",
            "actuation |jitter| p50/p99/max ms",
            "slow writes",
        ):
            table.add_column(col, justify="right")
        runs = [
            (fps, k, *variant)
            for fps in args.rates
            for k in range(args.rounds)
            for variant in itertools.product(
                args.adapter,
                args.bus_order,
                args.nice,
                args.gil_switch_ms,
                args.spin_ms,
                args.flood_mb,
            )
        ]
        policy_fps = {fps: 30 if fps % 30 == 0 else 50 for fps in args.rates}
        bundles = {pf: policy_for(pf, work)[1] for pf in set(policy_fps.values())}
        for fps, k, adapter, order, nice, switch, spin, flood_mb in runs:
            name = f"{fps} Hz, {adapter}, {order}, nice {nice}, GIL {switch:g} ms, spin {spin:g} ms, flood {flood_mb:g} MB"
            name += f" #{k + 1}" if args.rounds > 1 else ""
            try:
                r = run_drift(
                    bundles[policy_fps[fps]],
                    fps,
                    args.seconds,
                    work,
                    adapter=adapter,
                    bus_order=order,
                    background_nice=nice,
                    gil_switch_ms=switch,
                    spin_ms=spin,
                    flood_mb=flood_mb,
                )
            except ConfigError as err:  # e.g. a connect that failed: recorded, and the runs go on
                results[name] = {"failed": str(err)}
                table.add_row(str(fps), adapter, order, *[""] * (len(table.columns) - 4), f"failed: {err}")
                save(args.out, results)
                continue
            results[name] = r
            save(args.out, results)
            rep, e = r["report"], r["emulator"]
            j, l2, inf = rep["jitter_ms"], rep["e2e_latency_ms"], rep["inference_ms"]
            a, late = e["actuation_jitter_ms"], rep["goal_write_late_ms"]
            handed = rep["host_goal_writes"]["actuation_jitter_ms"]
            table.add_row(
                str(fps),
                adapter,
                order,
                str(nice),
                f"{switch:g}",
                f"{spin:g}",
                f"{flood_mb:g}",
                str(rep["ticks"]),
                str(rep["missed_ticks"]),
                f"{j['p50']:.3f} / {j['p99']:.3f} / {j['max']:.2f}",
                f"{l2['p50']:.0f} / {l2['p99']:.0f}",
                f"{inf['p50']:.1f} / {inf['p99']:.1f}",
                f"{rep['stages']['bus_write']['p99']:.2f}",
                f"{late['p50']:.2f} / {late['p99']:.2f}",
                f"{handed['p99']:.2f}",
                f"{e['hop_ms']['p50']:.2f} / {e['hop_ms']['p99']:.2f}",
                f"{a['p50']:.2f} / {a['p99']:.2f} / {a['max']:.2f}",
                str(e["actuation_slow_writes"]),
            )
        console.print(table)
    save(args.out, results)
    console.print(f"figures: {args.out}")


def save(out: Path, results: dict) -> None:
    """The figures so far (after every run: a long series that stops keeps what it measured)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
