"""drift-run against the emulated arm when someone tries to break it: a second session on the same
port, Ctrl-C / SIGTERM during start-up, a flooded control pipe, bad files and dead devices. Each
ends in one line, a named state of the arm, and nothing moved that should not have."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from lerobot_policy_drift.robots.emulator import EmulatedRig
from lerobot_policy_drift.robots.rig import CameraPlan
from lerobot_policy_drift.runtime.backends import OrtBackend
from lerobot_policy_drift.runtime.config import ConfigError, RunConfig
from lerobot_policy_drift.runtime.errors import StartupCancelled
from lerobot_policy_drift.runtime.runner import Runner
from tests.emulator_helpers import wait_until
from tests.test_runtime_session import Background, simulated

CAMERA = CameraPlan(name="front", width=64, height=48, fps=30)


@pytest.fixture
def rig(tmp_path):
    with EmulatedRig.start("so100", tmp_path / "rig", leader=True, cameras=[CAMERA]) as rig:
        yield rig


def config_for(rig, bundle, report, **options) -> RunConfig:
    return RunConfig.for_rig(rig, bundle=bundle, report_dir=report, status=False, **options)


def cli_args(cfg: RunConfig) -> list[str]:
    """The same session as ``drift-run`` flags (a real-arm command line)."""
    args = ["--robot", cfg.robot, "--port", cfg.port, "--robot-id", cfg.robot_id]
    args += ["--calibration-dir", str(cfg.calibration_dir), "--bundle", str(cfg.bundle)]
    args += ["--report", str(cfg.report_dir), "--no-status"]
    for name, spec in cfg.cameras.items():
        args += ["--camera", f"{name}={spec}"]
    return args


def send(pipe, text: str) -> None:
    fd = os.open(pipe, os.O_WRONLY)
    os.write(fd, text.encode())
    os.close(fd)


def torque(rig) -> set[int]:
    return {s["Torque_Enable"] for s in rig.state().values()}


def test_a_second_session_on_the_same_port_is_refused_and_the_first_runs_on(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    pipe = tmp_path / "control"
    first = Background(
        simulated(config_for(rig, bundle, tmp_path / "first", duration_s=3600, control_pipe=pipe))
    )
    wait_until(lambda: first.ticks() > 10, timeout_s=60)
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "lerobot_policy_drift.runtime.cli",
            *cli_args(config_for(rig, bundle, tmp_path / "second")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2, second.stderr[-2000:]
    err = second.stderr.strip()
    assert f"the arm's port {rig.follower_port} is in use by process {os.getpid()}" in err
    assert "Arm: nothing connected, nothing moved." in err and "Traceback" not in err
    assert not (tmp_path / "second" / "report.json").exists()
    ticks = first.ticks()
    wait_until(lambda: first.ticks() > ticks + 10, timeout_s=30)  # still driving the arm
    assert torque(rig) == {1}  # the refused session turned nothing off under it
    send(pipe, "stop\n")
    report = first.join()
    assert report["stop_reason"] == "stop (pipe)" and "fault" not in report
    assert not any(k.startswith("bus_") for k, v in report["events"].items() if v)
    # Released on the way out: the port can be claimed again.
    again = simulated(config_for(rig, bundle, tmp_path / "third", duration_s=0.5)).run()
    assert again["stop_reason"] == "duration 0.5 s reached"


class CancelDuringWarmup:
    """The bundle's backend; the first warm-up call delivers a signal to the runner, as Ctrl-C in a
    terminal would, and records every call made."""

    def __init__(self, inner, signum):
        self.inner, self.signum, self.calls, self.runner = inner, signum, 0, None
        self.contract, self.name = inner.contract, inner.name

    def infer(self, feeds):
        self.calls += 1
        if self.calls == 1:
            self.runner.triggers.on_stop_signal(self.signum)
        return self.inner.infer(feeds)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_start_up_cancels_it_and_undoes_it(rig, so100_policy, tmp_path, signum, code):
    _, bundle = so100_policy
    backend = CancelDuringWarmup(OrtBackend(bundle), signum)
    runner = simulated(config_for(rig, bundle, tmp_path / "r", duration_s=30), backend=backend)
    backend.runner = runner
    with pytest.raises(StartupCancelled) as cancelled:
        runner.run()
    assert cancelled.value.exit_code == code and backend.calls == 1  # no further warm-up call
    assert cancelled.value.arm_state.startswith("connected, then released before any command: torque off")
    assert torque(rig) == {0} and all(c.fd == -1 for c in runner.devices.claims)
    assert runner.monitor.tick_times == []  # the loop never started


def test_a_signal_before_connect_connects_nothing(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    before = rig.state()
    runner = simulated(config_for(rig, bundle, tmp_path / "r", duration_s=30))
    runner.triggers.on_stop_signal(signal.SIGTERM)  # arrives while the policy loads
    with pytest.raises(StartupCancelled, match="SIGTERM"):
        runner.run()
    assert runner.devices is None and rig.state() == before


def test_start_up_faults_end_in_one_line_before_the_arm_connects(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    before = rig.state()
    good = config_for(rig, bundle, tmp_path / "r").model_dump()
    regular = tmp_path / "notes.txt"
    regular.write_text("keep")
    cases = [
        ({"control_pipe": regular}, "exists and is not a FIFO"),
        ({"control_pipe": tmp_path / "no" / "pipe"}, "folder .* does not exist"),
        ({"report_dir": regular}, "report: cannot write to"),
    ]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message) as refused:
            Runner(RunConfig(**{**good, **change})).run()
        assert refused.value.arm_state == "nothing connected, nothing moved"
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    (calibration / f"{good['robot_id']}.json").write_text('{"shoulder_pan": {"id": 1,')
    with pytest.raises(ConfigError, match="calibration file drift_sim.json in .* could not be read"):
        Runner(RunConfig(**{**good, "calibration_dir": calibration})).run()
    assert regular.read_text() == "keep" and rig.state() == before


def test_a_dead_camera_is_named_before_anything_connects(rig, so100_policy, tmp_path):
    """Found by our own probe: LeRobot's ZMQCamera, left to find it, closes its socket under its
    read thread, which now and then aborts the process (runtime/camera_probe.py)."""
    _, bundle = so100_policy
    good = config_for(rig, bundle, tmp_path / "r").model_dump()
    dead = {"front": "zmq:127.0.0.1:9/front"}  # nothing serves there
    before = rig.state()
    with pytest.raises(
        ConfigError, match=r"could not connect camera 'front' \(zmq:127.0.0.1:9/front\): no frame from"
    ) as err:
        Runner(RunConfig(**{**good, "cameras": dead})).run()
    assert err.value.arm_state == "nothing connected, nothing moved"
    assert rig.state() == before


def test_a_flooded_control_pipe_still_stops_the_session(rig, so100_policy, tmp_path):
    _, bundle = so100_policy
    pipe = tmp_path / "control"
    run = Background(simulated(config_for(rig, bundle, tmp_path / "r", duration_s=3600, control_pipe=pipe)))
    wait_until(lambda: run.ticks() > 10, timeout_s=60)
    flood = threading.Thread(target=send, args=(pipe, "x" * 5_000_000 + "\nwhat\nstop\n"))
    flood.start()
    report = run.join(timeout=60)
    flood.join(timeout=10)
    assert report["stop_reason"] == "stop (pipe)"
    assert report["events"]["control_pipe_overlong_line"] == 1
    assert report["events"]["control_pipe_unknown_line"] == 1
    assert (
        json.loads((tmp_path / "r" / "report.json").read_text())["events"]["control_pipe_overlong_line"] == 1
    )
