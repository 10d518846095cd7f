"""The bus cycle drift-run times at connect, over many fresh rigs like the demo's: how often two
healthy emulated buses would be judged too slow for the demo's 30 Hz.

Each round starts an emulated SO-100 with its leader arm and the demo's 64×48 camera (as
``demos.arm.evaluate`` does), connects LeRobot's own follower (its camera included) and leader,
and times each bus right after its connect the way drift-run does (``runtime.bus_timing``: the
p99 of 40 sync reads), then again over 200 reads. ``--hogs N`` runs the rounds a second time
beside N busy-looping processes at nice 0 (a machine doing something else), the two settings
taking turns round by round so that the machine's own noise hits both alike::

    python -m benchmarks.connect_cycle --rounds 20 --hogs 2
"""

import argparse
import dataclasses
import json
import multiprocessing
import tempfile
from pathlib import Path

import numpy as np
from lerobot.robots.utils import make_robot_from_config
from lerobot.teleoperators.utils import make_teleoperator_from_config
from rich.console import Console
from rich.table import Table

from lerobot_policy_drift.demos.arm import CAMERA, LOOP_FPS
from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.runtime.bus_timing import BUS_READS, BusCycle, highest_hz, measure_bus_cycle

LONG_READS = 200


def _spin() -> None:
    while True:
        pass


def one_round(run_dir: Path) -> dict:
    """Connect follower then leader on a fresh rig, each timed right after its connect."""
    row = {}
    with EmulatedRig.start("so100", run_dir, leader=True, cameras=[CAMERA]) as rig:
        devices = {
            "follower": make_robot_from_config(rig.follower_config()),
            "leader": make_teleoperator_from_config(rig.leader_config()),
        }
        try:
            for what, device in devices.items():
                device.connect(calibrate=False)
                row[what] = {
                    str(reads): dataclasses.asdict(measure_bus_cycle(device.bus, reads))
                    for reads in (BUS_READS, LONG_READS)
                }
        finally:
            for device in devices.values():
                if device.is_connected:
                    device.disconnect()
    return row


def refused(rows: list[dict], reads: int) -> int:
    """Rounds whose pair would miss the demo's rate on the first measurement (before drift-run's
    second one)."""
    return sum(
        highest_hz([BusCycle(**row[what][str(reads)]) for what in ("follower", "leader")]) < LOOP_FPS
        for row in rows
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="rigs per setting")
    parser.add_argument(
        "--hogs", type=int, default=2, help="busy processes beside the second setting (0: one setting)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write every measurement as JSON here")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="drift-connect-cycle-"))
    settings = ["quiet"] + ([f"{args.hogs} hogs"] if args.hogs else [])
    results: dict[str, list[dict]] = {s: [] for s in settings}
    for r in range(args.rounds):
        for setting in settings:
            hogs = [
                multiprocessing.Process(target=_spin, daemon=True)
                for _ in range(args.hogs if setting != "quiet" else 0)
            ]
            for hog in hogs:
                hog.start()
            try:
                results[setting].append(one_round(root / f"{setting.replace(' ', '_')}-{r}"))
            finally:
                for hog in hogs:
                    hog.terminate()
                    hog.join()

    table = Table(
        title=f"Bus cycle at connect, SO-100 + leader + camera, {args.rounds} rigs per setting (ms)"
    )
    for col in (
        "setting",
        "bus",
        f"p50 ({BUS_READS})",
        f"p99 of {BUS_READS}: median / max",
        f"p99 of {LONG_READS}: median / max",
    ):
        table.add_column(col)
    table.add_column(f"pairs refused at {LOOP_FPS} Hz: {BUS_READS} / {LONG_READS} reads")
    for setting, rows in results.items():
        for what in ("follower", "leader"):
            p99 = {
                n: np.array([row[what][str(n)]["read_p99_s"] for row in rows]) * 1e3
                for n in (BUS_READS, LONG_READS)
            }
            p50 = np.median([row[what][str(BUS_READS)]["read_p50_s"] for row in rows]) * 1e3
            table.add_row(
                setting,
                what,
                f"{p50:.2f}",
                f"{np.median(p99[BUS_READS]):.1f} / {p99[BUS_READS].max():.1f}",
                f"{np.median(p99[LONG_READS]):.1f} / {p99[LONG_READS].max():.1f}",
                f"{refused(rows, BUS_READS)} / {refused(rows, LONG_READS)} of {len(rows)}"
                if what == "leader"
                else "",
            )
    Console().print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
        print(f"results: {args.out}")


if __name__ == "__main__":
    main()
