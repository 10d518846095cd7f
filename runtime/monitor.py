"""Where every millisecond went: per-tick stage timings, per-chunk inference, end-to-end latency.

The monitor only collects (appends to lists, a few microseconds per tick); statistics, the JSON
report, the plot and the terminal table are computed at the end. Stages per tick:
``obs_read`` (LeRobot ``get_observation``: bus read + camera ``read_latest``), ``preprocess``
(history → graph inputs), ``queue`` (merging a finished chunk, popping this tick's action),
``safety``, ``bus_write`` (``send_action`` until the servo bus write returned) and ``tick``
(all of it). ``frame_age`` is how old the camera frame was when read. ``e2e`` is per action:
from the arrival of the camera frame it was computed from (LeRobot's camera thread timestamp;
the bus read start for state-only policies) to the return of the bus write that sent it.
``leader_to_bus`` is the same for the operator's commands: from the leader arm's reading to the
return of the write that sent it (one period more with ``bus_order`` write-first).

Actuation, twice: ``goal_write_late`` is how long after its tick's deadline each goal's write
returned on the host, and ``host_goal_writes`` the write intervals against the period, the rate
the host handed goals to the adapter (any arm, real or emulated). Where the device's clock is
known (the emulated arm), ``actuation_*`` are the same intervals as the servo chain received them.
"""

import json
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lerobot_policy_drift.runtime.config import ConfigError

STAGES = ("obs_read", "preprocess", "queue", "safety", "bus_write", "tick")
JOIN_REACH = 3  # ticks either side of a chunk join counted as "near" it


def check_writable(report_dir: Path) -> None:
    """Before anything connects: the report of a session must have somewhere to go."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=report_dir, prefix=".drift-run-probe"):
            pass
    except OSError as err:
        raise ConfigError(
            f"report: cannot write to {report_dir} ({err.strerror}); pick another --report."
        ) from None


def summarize(values_ms) -> dict[str, float]:
    v = np.asarray(values_ms, float)
    if v.size == 0:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(v, [50, 95, 99])
    return {
        "count": int(v.size),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(v.max()),
    }


def actuation_figures(arrivals_s, fps: float) -> dict:
    """What the servos felt: from the arrival times of the goal writes at the bus (seconds, the
    device's clock; or when the host's writes returned, for what it handed the adapter), |interval − period| as ``actuation_jitter_ms`` and the writes that came more than
    1.5 periods after the one before (``actuation_slow_writes``)."""
    intervals = np.diff(np.asarray(arrivals_s, float)) * 1e3
    period = 1e3 / fps
    return {
        "actuation_writes": len(arrivals_s),
        "actuation_interval_ms": summarize(intervals),
        "actuation_jitter_ms": summarize(np.abs(intervals - period)),
        "actuation_slow_writes": int((intervals > 1.5 * period).sum()),
        "actuation_longest_ms": float(intervals.max()) if intervals.size else None,
    }


@dataclass
class LatencyMonitor:
    fps: float
    tick_times: list[float] = field(default_factory=list)  # s since start
    jitter_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    frame_age_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)
    leader_to_bus_ms: list[float] = field(default_factory=list)  # teleop: leader reading -> its write
    goal_write_times: list[float] = field(default_factory=list)  # s, loop clock: each goal write's return
    goal_write_late_ms: list[float] = field(default_factory=list)  # that return after its tick's deadline
    command_step: list[float] = field(default_factory=list)  # max |Δ command| over joints, per tick
    # max |Δ command − the previous tick's Δ| over joints, per tick: a change of speed, i.e. a jerk;
    # nan unless this tick and the previous one both played the policy's chunk
    command_jerk: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)
    inference_times: list[float] = field(default_factory=list)
    queue_depth: list[int] = field(default_factory=list)
    stale_dropped: list[int] = field(default_factory=list)
    join_step: list[float] = field(default_factory=list)  # per chunk join: max |new − old plan|
    join_ticks: list[int] = field(default_factory=list)  # index into command_step of each join
    interventions: Counter = field(default_factory=Counter)
    intervention_joints: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)  # underrun, watchdog_hold, late_tick, …
    transitions: list[dict] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)
    missed_ticks: int = 0
    # Where the device's own clock is known (the emulated arm): () -> arrival times of every goal
    # write, read once when the report is written.
    write_arrivals: Callable[[], list[float]] | None = None
    _arrivals: list[float] = field(default_factory=list)
    _last_step: np.ndarray | None = None  # the previous tick's change, if the policy played it

    def command(self, step: np.ndarray, from_policy: bool) -> None:
        """One tick's command change (after the safety filter), and whether the policy's chunk
        gave that command (the jerk is only counted between two such ticks)."""
        self.command_step.append(float(np.max(np.abs(step))))
        both = from_policy and self._last_step is not None
        self.command_jerk.append(float(np.max(np.abs(step - self._last_step))) if both else float("nan"))
        self._last_step = step if from_policy else None

    def tick(self, t: float, jitter_s: float, stages_s: dict[str, float], depth: int) -> None:
        self.tick_times.append(t)
        self.jitter_ms.append(jitter_s * 1e3)
        for name, seconds in stages_s.items():
            self.stages[name].append(seconds * 1e3)
        self.queue_depth.append(depth)
        if jitter_s > 0.5 / self.fps:
            self.events["late_tick"] += 1

    def goal_written(self, deadline: float, written: float) -> None:
        """A goal write returned at ``written`` for the tick due at ``deadline`` (loop clock, s)."""
        self.goal_write_times.append(written)
        self.goal_write_late_ms.append((written - deadline) * 1e3)

    def chunk(self, t: float, seconds: float, stale: int, join_step: float | None = None) -> None:
        self.inference_times.append(t)
        self.inference_ms.append(seconds * 1e3)
        self.stale_dropped.append(stale)
        if join_step is not None:
            self.join_step.append(join_step)
            self.join_ticks.append(len(self.command_step))  # this tick's command step is next

    def _steps_near_joins(self, reach: int = JOIN_REACH) -> dict:
        """The command steps within ``reach`` ticks of a chunk join against all others, and the
        jerks (changes of step) near joins against those within a chunk, policy ticks only: a join
        that jerks shows as larger figures near joins. Steps saturate at the speed limit while the
        arm reaches; jerks do not."""
        near = np.zeros(len(self.command_step), bool)
        for j in self.join_ticks:
            near[max(j - reach, 0) : j + reach + 1] = True
        steps = np.asarray(self.command_step)
        jerk = np.asarray(self.command_jerk, float)  # one per command step
        played = ~np.isnan(jerk)
        return {
            "command_step_near_joins": summarize(steps[near].tolist()),
            "command_step_elsewhere": summarize(steps[~near].tolist()),
            "command_jerk_near_joins": summarize(jerk[near & played].tolist()),
            "command_jerk_within_chunks": summarize(jerk[~near & played].tolist()),
        }

    def intervention(self, reason: str, joints: tuple[str, ...]) -> None:
        self.interventions[reason] += 1
        for joint in joints:
            self.intervention_joints[f"{reason}:{joint}"] += 1

    def transition(self, t: float, source: str, target: str, why: str) -> None:
        self.transitions.append({"t_s": round(t, 4), "from": source, "to": target, "why": why})

    def fault(self, t: float, kind: str, message: str) -> None:
        self.faults.append({"t_s": round(t, 4), "kind": kind, "message": message})

    # -- results -------------------------------------------------------------------------------
    def report(self, extra: dict | None = None) -> dict:
        duration = self.tick_times[-1] - self.tick_times[0] if len(self.tick_times) > 1 else 0.0
        return {
            "ticks": len(self.tick_times),
            "missed_ticks": self.missed_ticks,
            "fps_target": self.fps,
            "fps_achieved": (len(self.tick_times) - 1) / duration if duration > 0 else None,
            "jitter_ms": summarize(self.jitter_ms),
            "stages": {name: summarize(v) for name, v in self.stages.items()},
            "frame_age_ms": summarize(self.frame_age_ms),
            "e2e_latency_ms": summarize(self.e2e_ms),
            "leader_to_bus_ms": summarize(self.leader_to_bus_ms),
            "goal_write_late_ms": summarize(self.goal_write_late_ms),
            "host_goal_writes": actuation_figures(self.goal_write_times, self.fps),
            "command_step": summarize(self.command_step),
            "inference_ms": summarize(self.inference_ms),
            "chunks": len(self.inference_ms),
            "stale_actions_dropped": summarize(self.stale_dropped),
            "join_step": summarize(self.join_step),
            **self._steps_near_joins(),
            "queue_depth": summarize(self.queue_depth),
            "interventions": dict(self.interventions),
            "intervention_joints": dict(self.intervention_joints),
            "events": dict(self.events),
            "transitions": self.transitions,
            "faults": self.faults,
            **(actuation_figures(self._arrivals, self.fps) if self._arrivals else {}),
            **(extra or {}),
        }

    def status_line(self, mode: str) -> str:
        recent = self.jitter_ms[-int(self.fps * 5) :]
        p99 = float(np.percentile(recent, 99)) if recent else 0.0
        depth = self.queue_depth[-1] if self.queue_depth else 0
        rate = 0.0
        if len(self.tick_times) > 10:
            span = self.tick_times[-1] - self.tick_times[-11]
            rate = 10 / span if span > 0 else 0.0
        return (
            f"{mode:>8} | {rate:5.1f} Hz | jitter p99 {p99:5.2f} ms | missed {self.missed_ticks} | "
            f"queue {depth:2d} | chunks {len(self.inference_ms)} | interventions {sum(self.interventions.values())}"
        )

    def write(self, out: Path, extra: dict | None = None) -> dict:
        if self.write_arrivals is not None:
            self._arrivals = self.write_arrivals()[1:-1]  # without the first and the shutdown hold
        out.mkdir(parents=True, exist_ok=True)
        report = self.report(extra)
        tmp = out / "report.json.tmp"
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(out / "report.json")
        self.plot(out / "latency.png")
        return report

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2, figsize=(13, 8))
        names = [s for s in STAGES if self.stages[s]] + (["inference"] if self.inference_ms else [])
        data = [self.stages[s] for s in STAGES if self.stages[s]] + (
            [self.inference_ms] if self.inference_ms else []
        )
        if self.e2e_ms:
            names.append("e2e")
            data.append(self.e2e_ms)
        ax = axes[0, 0]
        if data:
            ax.boxplot(data, whis=(1, 99), showfliers=False)
            ax.set_xticks(range(1, len(names) + 1), names, rotation=30)
            ax.set_yscale("log")
        ax.set_ylabel("ms (box: p25–p75, whiskers: p1–p99)")
        ax.set_title("Per-stage time")
        ax = axes[0, 1]
        ax.plot(self.tick_times, self.jitter_ms, lw=0.6, label="tick start")
        if len(self.goal_write_times) > 1:  # the host's side: |goal-write return interval − period|
            written = np.asarray(self.goal_write_times)
            handed = np.abs(np.diff(written) * 1e3 - 1e3 / self.fps)
            start = self.tick_times[0] if self.tick_times else 0.0
            ax.plot(written[1:] - written[0] + start, handed, lw=0.6, label="goal writes (host)")
        if len(self._arrivals) > 1:  # the servos' side: |goal-write interval − period|
            arrivals = np.asarray(self._arrivals)
            felt = np.abs(np.diff(arrivals) * 1e3 - 1e3 / self.fps)
            start = self.tick_times[0] if self.tick_times else 0.0
            ax.plot(arrivals[1:] - arrivals[0] + start, felt, lw=0.6, label="actuation (at the servos)")
        ax.axhline(1.0, color="r", ls="--", lw=0.8, label="1 ms")
        ax.set_xlabel("s")
        ax.set_ylabel("jitter, ms")
        ax.set_title(f"Jitter ({self.missed_ticks} missed ticks)")
        ax.legend()
        ax = axes[1, 0]
        if self.e2e_ms:
            ax.hist(self.e2e_ms, bins=60)
        ax.set_xlabel("ms")
        ax.set_title("Camera frame → servo write, per action")
        ax = axes[1, 1]
        ax.plot(self.tick_times, self.queue_depth, lw=0.6, label="queue depth (actions)")
        ax2 = ax.twinx()
        ax2.plot(self.inference_times, self.inference_ms, "o", ms=2, color="tab:orange", label="inference ms")
        ax.set_xlabel("s")
        ax.set_title("Queue depth and inference time")
        ax.legend(loc="upper left")
        ax2.legend(loc="upper right")
        for t in self.transitions:
            for a in (axes[0, 1], axes[1, 1]):
                a.axvline(t["t_s"], color="gray", lw=0.6, ls=":")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)


def summary_table(report: dict):
    """A rich table of the report's timing figures (ms)."""
    from rich.table import Table

    table = Table(title=f"drift-run: {report['ticks']} ticks, {report['missed_ticks']} missed")
    for col in ("", "count", "p50", "p95", "p99", "max"):
        table.add_column(col, justify="right")
    rows = {"jitter": report["jitter_ms"], **report["stages"]}
    rows.update(
        {
            "frame age": report["frame_age_ms"],
            "inference": report["inference_ms"],
            "e2e": report["e2e_latency_ms"],
            "goal write late": report["goal_write_late_ms"],
        }
    )
    for name, s in rows.items():
        if s["count"]:
            table.add_row(name, str(s["count"]), *(f"{s[k]:.2f}" for k in ("p50", "p95", "p99", "max")))
    return table


def print_summary(report: dict) -> None:
    """The summary table, the stop reason and the arm's final state, on the terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    console.print(summary_table(report))
    if report.get("backend"):
        choice = report.get("backend_choice")
        console.print(f"backend: {report['backend']}" + (f" ({choice})" if choice else ""))
    console.print(f"stop: {report['stop_reason']}; arm: {report['final_state']}")
    if report["interventions"]:
        console.print(f"safety interventions: {report['interventions']}")
    events = {k: v for k, v in report["events"].items() if v}
    if events:
        console.print(f"events: {events}")
