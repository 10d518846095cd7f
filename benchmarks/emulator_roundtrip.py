"""Round trip of LeRobot's bus calls through the emulated arms: does the emulator leave room for 100 Hz?

One control-loop bus cycle = ``sync_read("Present_Position")`` + ``sync_write("Goal_Position")``
through LeRobot's unmodified ``FeetechMotorsBus`` / ``DynamixelMotorsBus``, against emulators
running in child processes. Calls are interleaved round-robin so machine noise hits them alike.
Rigs: SO-100 and Koch as LeRobot configures them (Return_Delay_Time 0), SO-100 with the
factory Return_Delay_Time (250 = 500 µs per servo), to show what LeRobot's configure step buys,
and SO-100 behind each USB adapter model (robots/adapters.py): FTDI at its default 16 ms latency
timer, FTDI at 1 ms, CH340. The others use the ideal adapter (replies reach the host at once).
And SO-100 serving a 64×48 camera at 30 fps (the demo's), configured and at the factory delay, with
the rig process's GIL switch interval as the rig sets it (0.2 ms) and at Python's default (5 ms):
the camera thread against the servo thread's replies (one wait for the GIL per reply sent apart).

    python -m benchmarks.emulator_roundtrip --rounds 5000
"""

import argparse
import json
import tempfile
from pathlib import Path

from lerobot.robots.utils import make_robot_from_config
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.arm import CAMERA
from lerobot_policy_drift.drift.timing import round_robin
from lerobot_policy_drift.robots.emulator import EmulatedRig

BUDGET_100HZ_MS = 10.0
# Bytes on the wire per cycle at 1 Mbaud (10 µs/byte), instruction + status packets (research §4.4).
WIRE_BYTES = {"feetech": 14 + 6 * 8 + 26, "dynamixel": 20 + 6 * 15 + 38}


def bus_cycle(robot):
    bus = robot.bus

    def cycle():
        bus.sync_write("Goal_Position", bus.sync_read("Present_Position"))

    return cycle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    run_root = Path(tempfile.mkdtemp(prefix="drift-roundtrip-"))
    camera, gil_5ms = {"cameras": [CAMERA]}, {"cameras": [CAMERA], "gil_switch_s": 0.005}
    setups = {  # label: (arm, factory Return_Delay_Time, adapter, other EmulatedRig.start options)
        "so100": ("so100", False, "ideal", {}),
        "koch": ("koch", False, "ideal", {}),
        "so100 factory delay": ("so100", True, "ideal", {}),
        "so100 ftdi": ("so100", False, "ftdi", {}),
        "so100 ftdi-low-latency": ("so100", False, "ftdi-low-latency", {}),
        "so100 ch340": ("so100", False, "ch340", {}),
        "so100 + camera": ("so100", False, "ideal", camera),
        "so100 + camera, GIL 5 ms": ("so100", False, "ideal", gil_5ms),
        "so100 factory delay + camera": ("so100", True, "ideal", camera),
        "so100 factory delay + camera, GIL 5 ms": ("so100", True, "ideal", gil_5ms),
    }
    rigs, robots, calls = [], [], {}
    try:
        for label, (arm, factory_delay, adapter, options) in setups.items():
            folder = run_root / label.replace(" ", "_").replace(",", "")
            rig = EmulatedRig.start(arm, folder, adapter=adapter, **options)
            rigs.append(rig)
            robot = make_robot_from_config(rig.follower_config())
            robot.connect()
            robots.append(robot)
            if factory_delay:
                for motor in robot.bus.motors:
                    robot.bus.write("Return_Delay_Time", motor, 250)
            calls[label] = bus_cycle(robot)
        figures = round_robin(calls, args.rounds)
    finally:
        for robot in robots:
            robot.disconnect()
        for rig in rigs:
            rig.close()

    table = Table(title=f"LeRobot sync_read + sync_write through the emulator, {args.rounds} rounds each")
    for column in ("rig", "p50 ms", "p99 ms", "100 Hz budget / p99", "wire time at 1 Mbaud (model)"):
        table.add_column(column, justify="right")
    for label, fig in figures.items():
        protocol = "dynamixel" if label.startswith("koch") else "feetech"
        wire_ms = WIRE_BYTES[protocol] * 0.01
        fig["wire_ms"] = wire_ms
        fig["headroom_100hz"] = BUDGET_100HZ_MS / fig["p99_ms"]
        table.add_row(
            label,
            f"{fig['p50_ms']:.2f}",
            f"{fig['p99_ms']:.2f}",
            f"{fig['headroom_100hz']:.1f}×",
            f"{wire_ms:.2f}",
        )
    console = Console()
    console.print(table)
    ratio = figures["so100 factory delay"]["p50_ms"] / figures["so100"]["p50_ms"]
    console.print(f"factory Return_Delay_Time costs {ratio:.2f}× the configured cycle (p50, side by side)")
    for delay in ("", "factory delay "):
        gil = (
            figures[f"so100 {delay}+ camera, GIL 5 ms"]["p99_ms"]
            / figures[f"so100 {delay}+ camera"]["p99_ms"]
        )
        console.print(
            f"so100 {delay}beside a camera: Python's 5 ms GIL switch interval costs {gil:.2f}× the p99"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
