"""drift-run against the emulated arms: queue, faults, handover, config errors (and, marked slow,
the real rate).

The arm runs in an emulator process the test also holds, so faults are injected and servo state is
read while LeRobot's classes are connected. Sessions run on a simulated clock (tests/sim_clock.py:
exact tick counts, no dependence on machine load) except the slow real-rate test. Nothing here
asserts on sleeps: the runner's own report (ticks, events) and the emulator's registers are the
evidence.
"""

import dataclasses
import os
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.robots.rig import CameraPlan
from lerobot_policy_drift.runtime.backends import OrtBackend
from lerobot_policy_drift.runtime.config import ConfigError, RunConfig
from lerobot_policy_drift.runtime.runner import Runner
from lerobot_policy_drift.runtime.session import WARMUP_CALLS
from tests.emulator_helpers import assert_rate_held, wait_until
from tests.sim_clock import SimulatedClock

CAMERA = CameraPlan(name="front", width=64, height=48, fps=30)
# How long a test waits for a session to get somewhere: a bound on liveness, not a speed (start-up
# and simulated ticks run in real time, and a loaded 2-core CI machine has taken over 30 s).
LIVE_S = 120
REPORT_KEYS = {
    "ticks",
    "missed_ticks",
    "jitter_ms",
    "stages",
    "e2e_latency_ms",
    "interventions",
    "transitions",
}


@pytest.fixture
def rig(tmp_path):
    with EmulatedRig.start("so100", tmp_path / "rig", leader=True, cameras=[CAMERA]) as rig:
        yield rig


def config_for(rig: EmulatedRig, bundle: Path, report: Path, **options) -> RunConfig:
    return RunConfig.for_rig(rig, bundle=bundle, report_dir=report, status=False, **options)


def simulated(cfg: RunConfig, backend=None) -> Runner:
    """A session on the simulated clock."""
    return Runner(cfg, backend, clock=SimulatedClock(cfg.fps))


class Background:
    """Runner.run() in a thread; the test acts on the rig meanwhile."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self.report = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.report = self.runner.run()
        except Exception as err:  # re-raised by join()
            self.error = err

    def ticks(self) -> int:
        """Ticks so far; a session that ended in an error raises it here, so a wait on it names the
        cause at once instead of timing out."""
        if self.error is not None:
            raise self.error
        return len(self.runner.monitor.tick_times)

    def join(self, timeout=LIVE_S):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the session did not end"
        if self.error:
            raise self.error
        return self.report


class Wrapped:
    """The bundle's ORT backend, for a test to change what it returns."""

    def __init__(self, inner):
        self.inner = inner
        self.contract, self.name = inner.contract, inner.name + "+test"

    def infer(self, feeds):
        return self.inner.infer(feeds)


class TicksLate(Wrapped):
    """Answers once the loop has run exactly ``ticks`` more ticks: slower than a chunk lasts, counted
    in loop ticks (warm-up calls, before the loop, answer at once). The simulated clock is held at
    the answer's tick while the real inference runs, so its cost in real time does not count."""

    def __init__(self, inner, ticks: int):
        super().__init__(inner)
        self.ticks, self.runner = ticks, None

    def infer(self, feeds):
        if self.runner.loop is None:
            return self.inner.infer(feeds)
        done, clock = self.runner.monitor.tick_times, self.runner.clock
        start = len(done)
        clock.hold_at(start + self.ticks)
        try:
            answer = self.inner.infer(feeds)
            wait_until(
                lambda: len(done) >= start + self.ticks or self.runner.stop_reason != "running", LIVE_S
            )
        finally:
            clock.release()
        return answer


class NaNBackend(Wrapped):
    def infer(self, feeds):
        out = self.inner.infer(feeds)
        out[:, 2] = np.nan
        return out


class SwitchProbe(Wrapped):
    """Records Python's GIL switch interval at every inference."""

    def __init__(self, inner):
        super().__init__(inner)
        self.seen: list[float] = []

    def infer(self, feeds):
        self.seen.append(sys.getswitchinterval())
        return self.inner.infer(feeds)


def test_report_fields_and_commands_reach_the_motors(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    before = rig.state()
    report = Runner(
        config_for(rig, bundle, tmp_path / "report", duration_s=3)
    ).run()  # real clock: see test_nan
    assert set(report) >= REPORT_KEYS and (tmp_path / "report" / "latency.png").stat().st_size > 10_000
    assert {"p50", "p95", "p99", "max"} <= set(report["jitter_ms"]) and set(report["stages"]) >= {
        "obs_read",
        "bus_write",
    }
    assert (
        report["ticks"] + report["missed_ticks"] == 91
        and report["chunks"] > 5
        and 0 < report["e2e_latency_ms"]["count"] <= 91
    )
    assert report["stop_reason"] == "duration 3 s reached"
    assert report["backend"] == "onnxruntime-cpu-fp32" and report["backend_choice"].startswith("auto: cpu")
    after = rig.state()
    assert any(after[i]["Present_Position"] != before[i]["Present_Position"] for i in before)  # it moved
    assert {s["Torque_Enable"] for s in after.values()} == {0}  # and was left with torque off
    assert report["command_step"]["max"] <= 90.0 / 30 + 1e-9  # never faster than max_speed


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["so100", "koch"])
def test_thirty_hertz_for_ten_seconds(arm, so100_policy, koch_policy, tmp_path):
    _, bundle = so100_policy if arm == "so100" else koch_policy
    with EmulatedRig.start(arm, tmp_path / "rig", cameras=[CAMERA]) as rig:
        report = Runner(config_for(rig, bundle, tmp_path / "report", duration_s=10, fps=30)).run()
        transactions = rig.stats()["follower_transactions"]
    assert_rate_held(report, deadlines=300)
    assert transactions >= 2 * report["ticks"]  # a read and a write per tick reached the servos
    assert report["events"].get("underrun_hold", 0) == 0


def test_slow_inference_holds_on_underrun_and_drops_what_it_missed(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    slow = TicksLate(OrtBackend(bundle), ticks=14)  # > 8 actions: every chunk arrives too late
    runner = simulated(config_for(rig, bundle, tmp_path / "r", duration_s=3), backend=slow)
    slow.runner = runner
    report = runner.run()
    assert report["ticks"] == 91 and report["chunks"] >= 2
    assert report["events"]["underrun_hold"] > 10  # the queue ran dry and the arm held, counted
    assert report["stale_actions_dropped"]["max"] >= 14  # the ticks consumed while computing


def test_an_inference_floor_rehearses_a_slower_machine(rig, so100_policy, tmp_path):
    """--inference-floor-ms: every chunk takes at least the floor, the report names it, and the
    runtime plans for it as for a slow machine (the ticks passed meanwhile are dropped from each
    chunk). Real clock: the floor is a sleep. Only lower bounds are asserted."""
    _, bundle = so100_policy
    cfg = config_for(rig, bundle, tmp_path / "report", duration_s=3, inference_floor_ms=150)
    report = Runner(cfg).run()
    assert report["backend"] == "onnxruntime-cpu-fp32, floored at 150 ms"
    assert report["backend_choice"].startswith("auto: cpu")
    assert report["config"]["inference_floor_ms"] == 150
    assert report["chunks"] >= 3 and report["inference_ms"]["p50"] >= 150
    assert report["stale_actions_dropped"]["p50"] >= 4  # 150 ms at 30 Hz: 4.5 ticks computing


def test_nan_actions_are_held_and_counted(rig, so100_policy, tmp_path):
    """On the real 30 Hz clock: on the simulated one the ticks outrun real inference, and on a loaded
    machine every chunk could arrive stale, so no action would reach the safety layer at all."""
    _, bundle = so100_policy
    report = Runner(
        config_for(rig, bundle, tmp_path / "r", duration_s=2), NaNBackend(OrtBackend(bundle))
    ).run()
    policy_actions = report["e2e_latency_ms"]["count"]  # one per policy action that reached the bus
    # Write-first: the goal computed during the last tick (for the tick after it) is never written.
    assert "fault" not in report and policy_actions > 0
    assert policy_actions <= report["interventions"]["non_finite"] <= policy_actions + 1
    assert report["intervention_joints"]["non_finite:elbow_flex.pos"] == report["interventions"]["non_finite"]


def test_gil_switch_interval_holds_during_the_loop_and_is_restored(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    probe = SwitchProbe(OrtBackend(bundle))
    before = sys.getswitchinterval()
    cfg = config_for(rig, bundle, tmp_path / "r", duration_s=2, gil_switch_ms=3.0)
    simulated(cfg, backend=probe).run()
    # Calls after the warm-up ran in the loop (how many finish in the simulated seconds depends on
    # this machine's speed: inference runs in real time).
    assert len(probe.seen) > WARMUP_CALLS and probe.seen[-1] == pytest.approx(3e-3)
    assert sys.getswitchinterval() == before


def test_unplug_mid_run_ends_in_a_named_state(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    run = Background(simulated(config_for(rig, bundle, tmp_path / "r", duration_s=3600)))
    wait_until(lambda: run.ticks() > 20, timeout_s=LIVE_S)
    rig.set_bus_faults(unplugged=True)
    report = run.join()
    assert report["fault"]["kind"] == "bus" and "arm unreachable at shutdown" in report["final_state"]
    assert (tmp_path / "r" / "report.json").is_file()


def test_checksum_errors_end_the_session_safely(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    run = Background(simulated(config_for(rig, bundle, tmp_path / "r", duration_s=3600)))
    wait_until(lambda: run.ticks() > 20, timeout_s=LIVE_S)
    rig.set_bus_faults(corrupt_rate=1.0)
    wait_until(lambda: not run.thread.is_alive(), timeout_s=LIVE_S)
    rig.set_bus_faults(corrupt_rate=0.0)
    report = run.join()
    assert report["fault"]["kind"] == "bus" and "Incorrect status packet" in report["fault"]["message"]
    assert report["events"]["bus_read_error"] >= 3


def test_camera_stall_holds_then_ends_the_session_with_torque_off(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    run = Background(simulated(config_for(rig, bundle, tmp_path / "r", duration_s=3600, fault_after_ms=500)))
    wait_until(lambda: run.ticks() > 20, timeout_s=LIVE_S)
    rig.set_camera_faults(stalled=True)
    report = run.join()
    summary = {k: report.get(k) for k in ("fault", "events", "final_state", "stop_reason")}
    assert report["fault"]["kind"] == "watchdog" and report["events"]["watchdog_hold"] >= 10, summary
    assert report["final_state"].startswith("holding the last safe command, then torque off"), summary
    assert {s["Torque_Enable"] for s in rig.state().values()} == {0}


def teleop_first(rig: EmulatedRig, bundle: Path, tmp_path: Path, **options) -> RunConfig:
    """A session that starts with the leader driving, switched by lines on ``tmp_path/control``."""
    return RunConfig.for_rig(
        rig,
        leader=True,
        bundle=bundle,
        report_dir=tmp_path / "r",
        status=False,
        mode="teleop-first",
        control_pipe=tmp_path / "control",
        handover_s=0.5,
        **options,
    )


def send(pipe: Path, command: str) -> None:
    fd = os.open(pipe, os.O_WRONLY)
    os.write(fd, f"{command}\n".encode())
    os.close(fd)


def test_teleop_first_then_auto_then_teleop_without_jumps(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    pipe = tmp_path / "control"
    cfg = teleop_first(
        rig, bundle, tmp_path, record_dir=tmp_path / "recorded", record_repo_id="local/recorded"
    )
    from lerobot_policy_drift.robots.leader_scripts import sway_within

    rig.set_leader_script(sway_within(rig.plan.leader.calibration, share=0.2, period_s=3.0))
    run = Background(simulated(cfg))
    wait_until(lambda: run.ticks() > 30 and pipe.exists(), timeout_s=LIVE_S)
    for command, ticks in (("auto", 60), ("teleop", 60), ("stop", None)):
        send(pipe, command)
        if ticks:
            start = run.ticks()
            wait_until(lambda t=ticks, s=start: run.ticks() > s + t, timeout_s=LIVE_S)
    report = run.join()
    assert [(t["from"], t["to"]) for t in report["transitions"]] == [
        ("start", "teleop"),
        ("teleop", "auto"),
        ("auto", "handover"),
        ("handover", "teleop"),
    ]
    assert "leader to follower" in report["transitions"][2]["why"]  # the SO leader is actuated
    assert report["stop_reason"] == "stop (pipe)"
    assert report["command_step"]["max"] <= 90.0 / 30 + 1e-9  # no step beyond the limit, ever
    # Every operator command's age when written: one per tick not in auto (teleop and handover
    # follow the leader), less the last tick's, which write-first would write at the next deadline.
    tick_of = [int(re.search(r"at tick (\d+)", t["why"]).group(1)) for t in report["transitions"][1:3]]
    assert report["leader_to_bus_ms"]["count"] == report["ticks"] - (tick_of[1] - tick_of[0]) - 1
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    recorded = LeRobotDataset("local/recorded", root=tmp_path / "recorded")
    assert recorded.meta.total_episodes == 2 and recorded.meta.total_frames > 60  # two teleop phases


def test_config_errors_are_refused_before_anything_moves(rig, so100_policy, tmp_path):
    ckpt, bundle = so100_policy
    before = rig.state()
    good = config_for(rig, bundle, tmp_path / "r").model_dump()
    with pytest.raises(ConfigError, match="could not connect to the arm on /nonexistent"):
        Runner(RunConfig(**{**good, "port": "/nonexistent"})).run()
    with pytest.raises(ConfigError, match="no calibration file .*nobody.json"):
        Runner(RunConfig(**{**good, "robot_id": "nobody"})).run()
    with pytest.raises(ConfigError, match="could not connect to the arm .* motor check failed"):
        Runner(RunConfig(**{**good, "robot": "koch"})).run()  # a Koch driver on an SO-100's port
    five_joints = Wrapped(OrtBackend(bundle))
    five_joints.contract = dataclasses.replace(
        five_joints.contract, action_names=five_joints.contract.action_names[:5]
    )
    with pytest.raises(ConfigError, match="bundle/robot mismatch"):
        Runner(RunConfig(**good), backend=five_joints).run()
    with pytest.raises(ConfigError, match="cameras: the policy reads"):
        Runner(RunConfig(**{**good, "cameras": {"wrist": "opencv:0"}})).run()
    with pytest.raises(ConfigError, match="fps: 45 is not the policy's fps"):
        Runner(RunConfig(**{**good, "fps": 45})).run()
    with pytest.raises(ConfigError, match="max_speed"):
        RunConfig.load(None, **{**good, "max_speed": -1})
    with pytest.raises(ConfigError, match="exactly one of port"):
        RunConfig.load(None, **{**good, "emulate": True})
    after = rig.state()
    assert all(after[i]["Present_Position"] == before[i]["Present_Position"] for i in before)
    assert {s["Torque_Enable"] for s in after.values()} == {0}


class NoiseProbe(Wrapped):
    """Records the noise of every chunk the loop asks for (the warm-up calls before it are skipped)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.runner, self.seen = None, []

    def infer(self, feeds):
        if self.runner.loop is not None:
            self.seen.append(feeds["noise"].copy())
        return self.inner.infer(feeds)


@pytest.mark.parametrize("noise", ["per-chunk", "per-engagement"])
def test_noise_is_drawn_per_chunk_or_held_per_engagement(rig, so100_policy, tmp_path, noise):
    _, bundle = so100_policy
    pipe = tmp_path / "control"
    cfg = teleop_first(rig, bundle, tmp_path, noise=noise)
    probe = NoiseProbe(OrtBackend(bundle))
    probe.runner = simulated(cfg, probe)
    run = Background(probe.runner)
    wait_until(lambda: run.ticks() > 10 and pipe.exists(), timeout_s=LIVE_S)
    engagements = []
    for command in ("auto", "teleop", "auto", "stop"):
        calls, start = len(probe.seen), run.ticks()
        send(pipe, command)
        if command == "auto":  # several chunks of one engagement
            wait_until(lambda c=calls: len(probe.seen) >= c + 4, timeout_s=LIVE_S)
            engagements.append(probe.seen[calls + 1 : calls + 4])  # the first may be the old epoch's
        elif command == "teleop":
            wait_until(lambda s=start: run.ticks() > s + 30, timeout_s=LIVE_S)
    run.join()
    draws = [chunk for chunks in engagements for chunk in chunks]
    distinct = {draw.tobytes() for draw in draws}
    if noise == "per-chunk":
        assert len(distinct) == len(draws)
    else:  # one draw per engagement, a new one at the next
        assert [len({c.tobytes() for c in chunks}) for chunks in engagements] == [1, 1]
        assert len(distinct) == 2
