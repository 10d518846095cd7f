"""Injected faults produce the errors LeRobot raises on hardware, and clearing them lets it recover.

Faults are changed while LeRobot's classes are connected, through the rig's control socket.
"""

import termios

import pytest
import serial
from lerobot.cameras.zmq import ZMQCamera
from lerobot.robots.utils import make_robot_from_config

from lerobot_policy_drift.robots.emulator import EmulatedRig, EmulatorError
from lerobot_policy_drift.robots.rig import CameraPlan
from tests.emulator_helpers import no_prompts, wait_until


@pytest.fixture(params=["so100", "koch"])
def rig(request, tmp_path):
    with EmulatedRig.start(request.param, tmp_path) as rig:
        yield rig


def connected(rig):
    robot = make_robot_from_config(rig.follower_config())
    with no_prompts():
        robot.connect()
    return robot


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"drop_rate": 1.0}, "There is no status packet"),
        ({"extra_delay_s": 0.2}, "There is no status packet"),  # later than the driver's reply window
        ({"corrupt_rate": 1.0}, "Incorrect status packet"),
        ({"silent_ids": {3}}, "There is no status packet"),
    ],
)
def test_bus_faults_raise_lerobots_connection_error_and_clear(rig, fault, message):
    robot = connected(rig)
    try:
        rig.set_bus_faults(**fault)
        with pytest.raises(ConnectionError, match=f"Failed to sync read 'Present_Position'.*{message}"):
            robot.get_observation()
        rig.set_bus_faults(drop_rate=0.0, extra_delay_s=0.0, corrupt_rate=0.0, silent_ids=set())
        # Recovers without reconnecting once the replies to the failed tries have drained (LeRobot
        # does not flush its input buffer between tries, so stale bytes can fail a few more reads).
        wait_until(lambda: observes(robot))
    finally:
        robot.disconnect()
    # And a fresh connect succeeds. A status packet the emulator was still timing out to the old
    # session when it closed can reach the new one after its open-time flush (on hardware too, a
    # reply crossing a close/open fails that one handshake), so the claim is "once it has passed".
    robot = wait_until(lambda: connects(rig))
    robot.disconnect()


def connects(rig):
    try:
        return connected(rig)
    except RuntimeError:  # LeRobot's motor check read a late reply meant for the previous session
        return None


def observes(robot) -> bool:
    try:
        return bool(robot.get_observation())
    except ConnectionError:
        return False


def test_a_silent_servo_fails_lerobots_motor_check_on_connect(rig):
    rig.set_bus_faults(silent_ids={5})
    robot = make_robot_from_config(rig.follower_config())
    with pytest.raises(RuntimeError, match=r"motor check failed(.|\n)*Missing motor IDs:\n  - 5"):
        robot.connect()
    rig.set_bus_faults(silent_ids=set())
    connected(rig).disconnect()


def test_status_error_bits_raise_lerobots_runtime_error(tmp_path):
    with EmulatedRig.start("so100", tmp_path) as rig:
        robot = connected(rig)
        try:
            rig.set_bus_faults(error_bits={2: 0x20})
            with pytest.raises(RuntimeError, match="Overload error"):
                robot.bus.read("Present_Position", "shoulder_lift")
            rig.set_bus_faults(error_bits={})
            robot.bus.read("Present_Position", "shoulder_lift")
        finally:
            robot.disconnect()


def test_unplugging_raises_serial_errors_and_replugging_restores_the_same_port(rig):
    robot = connected(rig)
    obs = robot.get_observation()
    robot.send_action(obs)
    rig.set_bus_faults(unplugged=True)
    # What pyserial raises on a vanished USB adapter: tcdrain/read/write fail with EIO.
    with pytest.raises((serial.SerialException, termios.error)):
        robot.get_observation()
    with pytest.raises(ConnectionError, match="Could not connect on port"):
        make_robot_from_config(rig.follower_config()).connect()  # the device node is gone
    rig.set_bus_faults(unplugged=False)
    robot = connected(rig)  # same port path, servos kept their state and power
    try:
        again = robot.get_observation()
        assert all(abs(again[k] - v) < 1.0 for k, v in obs.items())
    finally:
        robot.disconnect()


def test_invalid_fault_values_are_refused_with_their_field(rig):
    with pytest.raises(EmulatorError, match="drop_rate"):
        rig.set_bus_faults(drop_rate=2.0)
    with pytest.raises(EmulatorError, match="no_such_fault"):
        rig.set_bus_faults(no_such_fault=True)
    with pytest.raises(EmulatorError, match="no 'leader' arm"):
        rig.state("leader")


def test_camera_stall_makes_frames_stale_and_recovers(tmp_path):
    with EmulatedRig.start("so100", tmp_path, cameras=[CameraPlan(width=64, height=48, fps=30)]) as rig:
        cam = ZMQCamera(rig.camera_config())
        cam.connect()
        try:
            assert fresh(cam)
            rig.set_camera_faults(stalled=True)
            wait_until(lambda: not fresh(cam))  # LeRobot: "latest frame is too old"
            rig.set_camera_faults(stalled=False)
            wait_until(lambda: fresh(cam))
        finally:
            cam.disconnect()


def fresh(cam, max_age_ms: int = 200) -> bool:
    try:
        cam.read_latest(max_age_ms=max_age_ms)
        return True
    except TimeoutError as err:
        assert "too old" in str(err)
        return False
