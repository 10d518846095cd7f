"""The report's statistics alone: actuation as the servos felt it, from goal-write arrival times."""

import json

import numpy as np
import pytest

from lerobot_policy_drift.runtime.monitor import LatencyMonitor, actuation_figures


def test_actuation_jitter_is_the_write_interval_against_the_period():
    period = 0.01
    steady = [1.0 + i * period for i in range(50)]
    figures = actuation_figures(steady, fps=100)
    assert figures["actuation_writes"] == 50 and figures["actuation_slow_writes"] == 0
    assert figures["actuation_jitter_ms"]["max"] == pytest.approx(0.0, abs=1e-6)
    late = [*steady[:10], *(t + 0.004 for t in steady[10:20]), *(t + 0.011 for t in steady[20:])]
    figures = actuation_figures(late, fps=100)
    # one write 4 ms late (and its successor 4 ms early), then a gap of 2.1 periods
    assert figures["actuation_jitter_ms"]["max"] == pytest.approx(7.0, abs=1e-6)
    assert figures["actuation_slow_writes"] == 1 and figures["actuation_longest_ms"] == pytest.approx(17.0)


def test_the_report_carries_actuation_only_where_the_device_clock_is_known(tmp_path):
    plain = LatencyMonitor(fps=30)
    plain.tick(0.0, 0.0, {}, 0)
    assert "actuation_jitter_ms" not in plain.write(tmp_path / "plain")
    arrivals = [i / 30 for i in range(12)]
    emulated = LatencyMonitor(fps=30, write_arrivals=lambda: arrivals)
    emulated.tick(0.0, 0.0, {}, 0)
    emulated.tick(1 / 30, 0.0, {}, 0)
    report = emulated.write(tmp_path / "emulated")
    assert report["actuation_writes"] == 10  # the first write and the shutdown hold are not ticks
    assert (
        json.loads((tmp_path / "emulated" / "report.json").read_text())["actuation_jitter_ms"]["count"] == 9
    )
    assert (tmp_path / "emulated" / "latency.png").stat().st_size > 0


def test_goal_writes_are_timed_on_the_host_against_their_deadlines(tmp_path):
    """Any arm: how late each goal's write returned after its tick's deadline, and the intervals
    between the writes as the host handed them to the adapter (one write 4 ms late)."""
    monitor = LatencyMonitor(fps=100)
    for k in range(20):
        deadline = k / 100
        monitor.tick(deadline, 0.0, {}, 0)
        monitor.goal_written(deadline, deadline + (0.0045 if k == 7 else 0.0005))
    report = monitor.write(tmp_path / "r")
    late = report["goal_write_late_ms"]
    assert late["count"] == 20 and late["p50"] == pytest.approx(0.5) and late["max"] == pytest.approx(4.5)
    host = report["host_goal_writes"]
    assert host["actuation_writes"] == 20 and host["actuation_slow_writes"] == 0
    assert host["actuation_jitter_ms"]["max"] == pytest.approx(4.0)  # 14 ms, then 6 ms: both 4 off
    assert host["actuation_interval_ms"]["count"] == 19
    assert "actuation_jitter_ms" not in report  # no device clock here


def test_command_steps_near_chunk_joins_are_reported_apart():
    from lerobot_policy_drift.runtime.monitor import LatencyMonitor

    monitor = LatencyMonitor(fps=30)
    for i in range(40):
        if i in (10, 30):
            monitor.chunk(i / 30, 0.02, 1, join_step=0.5)
        # the policy plays ticks 5.. (before: the operator); at tick 11 the step jumps 1 → 5 → 1
        monitor.command(np.array([5.0 if i == 11 else 1.0, -0.5]), from_policy=i >= 5)
    report = monitor.report()
    assert report["join_step"]["count"] == 2 and report["join_step"]["max"] == 0.5
    assert report["command_step_near_joins"]["count"] == 14  # ticks 7..13 and 27..33
    assert report["command_step_near_joins"]["max"] == 5.0
    assert report["command_step_elsewhere"]["max"] == 1.0
    # jerks: tick 11 (1 → 5) and tick 12 (5 → 1) change the step by 4, both near the join
    assert (
        report["command_jerk_near_joins"]["count"] == 14 and report["command_jerk_near_joins"]["max"] == 4.0
    )
    # within chunks: ticks 6..39 away from joins (tick 5 follows an operator tick: no jerk counted)
    within = report["command_jerk_within_chunks"]
    assert within["count"] == 40 - 6 - 14 and within["max"] == 0.0
