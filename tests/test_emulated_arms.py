"""LeRobot's own robot, teleoperator and camera classes against the emulated arms (no patching).

Each rig runs in a child process, as a servo would on the far side of a USB cable.
"""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from lerobot.cameras.zmq import ZMQCamera
from lerobot.robots.utils import make_robot_from_config
from lerobot.teleoperators.utils import make_teleoperator_from_config

from lerobot_policy_drift.robots.emulator import EmulatedRig, EmulatorError
from lerobot_policy_drift.robots.leader_scripts import sway_within
from lerobot_policy_drift.robots.rig import GIL_SWITCH_S, CameraPlan
from tests.emulator_helpers import no_prompts, wait_until


@pytest.fixture(params=["so100", "so101", "koch"])
def rig(request, tmp_path):
    with EmulatedRig.start(request.param, tmp_path, leader=True) as rig:
        yield rig


def test_connect_observe_act_disconnect(rig):
    robot = make_robot_from_config(rig.follower_config())
    with no_prompts():
        robot.connect()
    try:
        assert robot.is_calibrated
        obs = robot.get_observation()
        assert set(obs) == {f"{j}.pos" for j in rig.plan.follower.motors}
        goal = {k: v + (5.0 if not k.startswith("gripper") else 10.0) for k, v in obs.items()}
        robot.send_action(goal)
        state = wait_until(lambda: _reached(robot, goal, tol=0.5))
        assert state
        torque = {s["Torque_Enable"] for s in rig.state().values()}
        assert torque == {1}
    finally:
        robot.disconnect()
    assert {s["Torque_Enable"] for s in rig.state().values()} == {0}  # disconnect() disabled torque


def test_a_ctrl_c_leaves_the_arm_to_the_program_that_holds_it(tmp_path):
    """A terminal's Ctrl-C reaches the rig's child as well as the program: like a real arm, the
    emulated one stays, so that program's stop (torque off) still reaches it; close() ends it."""
    with EmulatedRig.start("so100", tmp_path) as rig:
        robot = make_robot_from_config(rig.follower_config())
        with no_prompts():
            robot.connect()
        robot.send_action(robot.get_observation())  # torque on
        os.kill(rig._proc.pid, signal.SIGINT)
        time.sleep(1.0)
        assert rig._proc.poll() is None
        robot.disconnect()
        assert {s["Torque_Enable"] for s in rig.state().values()} == {0}
    assert rig._proc.poll() is not None


def _reached(robot, goal, tol):
    obs = robot.get_observation()
    return all(abs(obs[k] - v) <= tol for k, v in goal.items())


def test_teleoperation_follower_tracks_scripted_leader(rig):
    rig.set_leader_script(sway_within(rig.plan.leader.calibration, share=0.3, period_s=2.0))
    robot = make_robot_from_config(rig.follower_config())
    leader = make_teleoperator_from_config(rig.leader_config())
    with no_prompts():
        robot.connect()
        leader.connect()
    try:
        seen, errors = [], []
        start = time.monotonic()
        while time.monotonic() - start < 2.5:  # more than one period of the sway
            action = leader.get_action()
            robot.send_action(action)
            seen.append(action["elbow_flex.pos"])
            if time.monotonic() - start > 0.3:  # after the follower caught up with the first command
                obs = robot.get_observation()
                errors.append(max(abs(obs[k] - v) for k, v in action.items()))
        swing = np.ptp(seen)
        assert swing > 10.0  # the leader really moved (degrees or % of range)
        assert np.median(errors) < 0.15 * swing  # and the follower followed, with the servo's lag
    finally:
        leader.disconnect()
        robot.disconnect()


def test_actuated_so_leader_accepts_goal_writes(tmp_path):
    with EmulatedRig.start("so101", tmp_path, leader=True) as rig:
        leader = make_teleoperator_from_config(rig.leader_config())
        with no_prompts():
            leader.connect()
        try:
            start = leader.get_action()
            leader.enable_torque()  # LeRobot's handover: power the leader, drive it to the follower
            target = {k: v + 8.0 for k, v in start.items()}
            leader.send_feedback(target)
            wait_until(lambda: all(abs(leader.get_action()[k] - v) < 0.5 for k, v in target.items()))
        finally:
            leader.disconnect()


def test_zmq_camera_reads_rendered_frames(tmp_path):
    camera = CameraPlan(name="front", width=160, height=120, fps=30)
    with EmulatedRig.start("so100", tmp_path, cameras=[camera]) as rig:
        cam = ZMQCamera(rig.camera_config())
        cam.connect()
        try:
            frame = cam.read()
            assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
            first = cam.latest_timestamp
            cam.read()
            assert cam.latest_timestamp > first
            stats = wait_until(lambda: (s := rig.stats())["camera_frames"]["front"] > 5 and s)
            assert stats["camera_last_timestamp"]["front"] > 0
            # The picture is the arm's state: move the elbow and the image changes.
            robot = make_robot_from_config(rig.follower_config(cameras={}))
            with no_prompts():
                robot.connect()
            before = cam.read().astype(int)
            obs = robot.get_observation()
            robot.send_action({**obs, "elbow_flex.pos": obs["elbow_flex.pos"] + 40.0})
            wait_until(lambda: np.abs(cam.read().astype(int) - before).mean() > 1.0)
            robot.disconnect()
        finally:
            cam.disconnect()


def test_follower_config_with_two_cameras_connects_through_the_robot(tmp_path):
    cameras = [
        CameraPlan(name="wrist", width=96, height=96, fps=30),
        CameraPlan(name="top", width=64, height=48),
    ]
    with EmulatedRig.start("koch", tmp_path, cameras=cameras) as rig:
        robot = make_robot_from_config(rig.follower_config())
        with no_prompts():
            robot.connect()
        try:
            obs = robot.get_observation()
            assert obs["wrist"].shape == (96, 96, 3) and obs["top"].shape == (48, 64, 3)
            rig.set_camera_faults("top", stalled=True)
            with pytest.raises(EmulatorError, match="name the camera"):
                rig.set_camera_faults(stalled=True)
        finally:
            robot.disconnect()


def test_the_emulator_child_stays_free_of_torch(tmp_path):
    """The rig's child process starts from a stand-in for the package root (whose import registers
    the policy and so loads torch): no torch library is mapped into it."""
    with EmulatedRig.start("so100", tmp_path) as rig:
        rig.state()  # the child is up and serving
        maps = Path(f"/proc/{rig._proc.pid}/maps").read_text()
    assert "libtorch" not in maps and "/torch/" not in maps


def _real_time_allowed() -> bool:
    """Whether this machine grants a thread SCHED_FIFO (tried on a throwaway thread)."""
    import os
    import threading

    result = []

    def probe():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            result.append(True)
        except (AttributeError, OSError):
            result.append(False)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result[0]


def test_the_servo_thread_reacts_like_hardware_where_the_os_allows(tmp_path):
    """The chain's thread runs at real-time priority where permitted, so a goal write is seen when
    it arrives, not at the scheduler's next tick; elsewhere the rig says it could not."""
    with EmulatedRig.start("so100", tmp_path) as rig:
        priority = wait_until(lambda: (p := rig.stats()["servo_thread_priority"]) != "not started" and p)
    assert priority == (
        "SCHED_FIFO 10" if _real_time_allowed() else "normal (real-time priority not permitted here)"
    )


def test_the_rig_process_hands_the_gil_over_quickly(tmp_path):
    """A servo thread waiting for the GIL behind a camera thread drawing a frame is not a servo: the
    rig's process switches every 0.2 ms (Python's 5 ms only when a plan asks, to measure it)."""
    with EmulatedRig.start("so100", tmp_path / "quick") as rig:
        assert rig.stats()["gil_switch_s"] == pytest.approx(GIL_SWITCH_S) and GIL_SWITCH_S <= 0.0005
    with EmulatedRig.start("so100", tmp_path / "default", gil_switch_s=0.005) as rig:
        assert rig.stats()["gil_switch_s"] == pytest.approx(0.005)
