"""``drift-sim``: one JSON line, LeRobot's tools connect with the printed values, clean shutdown."""

import json
import os
import signal
import subprocess
import sys
from multiprocessing.connection import Client
from pathlib import Path

import pytest
from lerobot.cameras.zmq import ZMQCamera
from lerobot.robots.utils import make_robot_from_config
from lerobot.teleoperators.utils import make_teleoperator_from_config

from lerobot_policy_drift.robots.arms import follower_config, leader_config, zmq_camera_config
from lerobot_policy_drift.robots.rig import CONTROL_AUTHKEY
from tests.emulator_helpers import no_prompts

KEYS = {"follower_port", "leader_port", "camera", "calibration_dir", "id"}


def start_sim(tmp_path, *args, run_dir: bool = True, env=None):
    cmd = [sys.executable, "-m", "lerobot_policy_drift.robots.sim_cli"]
    cmd += ["--run-dir", str(tmp_path / "run")] if run_dir else []
    cmd += ["--calibration-dir", str(tmp_path / "calibration"), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return proc, json.loads(line)


def stop_sim(proc) -> int:
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=15)
    proc.stdout.close()
    proc.stderr.close()
    return code


def control(info, method, **kwargs):
    with Client(info["control"], family="AF_UNIX", authkey=CONTROL_AUTHKEY) as conn:
        conn.send((method, kwargs))
        status, value = conn.recv()
    assert status == "ok", value
    return value


def test_sim_prints_its_ports_and_lerobot_connects(tmp_path):
    proc, info = start_sim(
        tmp_path, "--robot", "so100", "--leader", "--camera", "--width", "64", "--height", "48"
    )
    try:
        assert set(info) >= KEYS
        assert info["camera"]["type"] == "zmq" and info["camera"]["server_address"] == "127.0.0.1"
        assert (Path(info["calibration_dir"]) / f"{info['id']}.json").is_file()
        robot = make_robot_from_config(
            follower_config("so100", info["follower_port"], info["id"], Path(info["calibration_dir"]))
        )
        leader = make_teleoperator_from_config(
            leader_config(
                "so100", info["leader_port"], info["leader_id"], Path(info["leader_calibration_dir"])
            )
        )
        cam_info = info["camera"]
        cam = ZMQCamera(
            zmq_camera_config(
                cam_info["server_address"], cam_info["port"], cam_info["camera_name"], 64, 48, 30
            )
        )
        with no_prompts():
            robot.connect()
            leader.connect()
        cam.connect()
        robot.send_action(leader.get_action())
        assert cam.read().shape == (48, 64, 3)
        cam.disconnect()
        leader.disconnect()
        robot.disconnect()
        assert control(info, "stats")["follower_transactions"] > 0
    finally:
        code = stop_sim(proc)
    assert code == 0
    assert not Path(info["follower_port"]).exists() and not Path(info["leader_port"]).exists()
    assert not Path(info["control"]).exists()


def test_sim_reuses_an_existing_calibration_file(tmp_path):
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    custom = {
        name: {
            "id": i + 1,
            "drive_mode": 0,
            "homing_offset": 10 * i,
            "range_min": 900 + i,
            "range_max": 3000 + i,
        }
        for i, name in enumerate(
            ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
        )
    }
    (calibration / "lab_arm.json").write_text(json.dumps(custom))
    proc, info = start_sim(tmp_path, "--robot", "koch", "--id", "lab_arm")
    try:
        robot = make_robot_from_config(follower_config("koch", info["follower_port"], "lab_arm", calibration))
        with no_prompts():
            robot.connect()  # the servos were preloaded from the lab's file: no calibration prompt
        assert robot.bus.read_calibration()["elbow_flex"].range_min == 902
        robot.disconnect()
    finally:
        assert stop_sim(proc) == 0


def test_sim_refuses_bad_input_clearly(tmp_path):
    bad = subprocess.run(
        [sys.executable, "-m", "lerobot_policy_drift.robots.sim_cli", "--robot", "ur5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "invalid choice: 'ur5'" in bad.stderr
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    (calibration / "drift_sim.json").write_text("{not json")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "lerobot_policy_drift.robots.sim_cli",
            "--robot",
            "so100",
            "--calibration-dir",
            str(calibration),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "is not valid JSON" in bad.stderr and "fix or delete it" in bad.stderr


@pytest.mark.slow
def test_lerobot_teleoperate_runs_against_drift_sim(tmp_path):
    """The issue's bar: LeRobot's own teleoperation CLI pointed at drift-sim's ports."""
    proc, info = start_sim(
        tmp_path, "--robot", "so100", "--leader", "--camera", "--width", "64", "--height", "48"
    )
    try:
        cam = info["camera"]
        cameras = (
            f"{{front: {{type: zmq, server_address: {cam['server_address']}, port: {cam['port']}, "
            f"camera_name: front, width: 64, height: 48, fps: 30}}}}"
        )
        before = control(info, "state", device="follower")
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "lerobot-teleoperate"),
                "--robot.type=so100_follower",
                f"--robot.port={info['follower_port']}",
                f"--robot.id={info['id']}",
                f"--robot.calibration_dir={info['calibration_dir']}",
                f"--robot.cameras={cameras}",
                "--teleop.type=so100_leader",
                f"--teleop.port={info['leader_port']}",
                f"--teleop.id={info['leader_id']}",
                f"--teleop.calibration_dir={info['leader_calibration_dir']}",
                "--teleop_time_s=3",
                "--fps=30",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        after = control(info, "state", device="follower")
        moved = [abs(after[i]["Present_Position"] - before[i]["Present_Position"]) for i in before]
        assert max(moved) > 20  # the follower followed the swaying leader
        assert control(info, "stats")["follower_transactions"] > 60  # ~30 Hz for 3 s
    finally:
        assert stop_sim(proc) == 0


def test_sim_leaves_nothing_in_the_temp_folder(tmp_path):
    """Without --run-dir the ports live in a temporary folder, removed again at shutdown."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc, info = start_sim(
        tmp_path, "--robot", "so100", run_dir=False, env={**os.environ, "TMPDIR": str(temp)}
    )
    assert Path(info["follower_port"]).parent.parent == temp  # it used the temp folder
    assert stop_sim(proc) == 0
    assert list(temp.iterdir()) == []
