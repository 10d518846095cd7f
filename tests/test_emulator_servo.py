"""The emulated servo's register model: the firmware rules LeRobot's drivers rely on."""

import pytest
from lerobot.motors.encoding_utils import (
    decode_sign_magnitude,
    decode_twos_complement,
    encode_sign_magnitude,
    encode_twos_complement,
)

from lerobot_policy_drift.robots.dynamics import JointDynamics
from lerobot_policy_drift.robots.servo import Refusal, Servo, decode, encode
from lerobot_policy_drift.robots.servo_spec import DYNAMIXEL, FEETECH, ServoSpec, servo_spec

DYN = JointDynamics(3000.0, 0.03)


def make(protocol, model, now=0.0):
    servo = Servo(servo_spec(protocol, model), 1, DYN, now)
    servo.put("Max_Position_Limit", 4095)
    return servo


def addr(servo, name):
    return servo.spec.registers[name][0]


def write(servo, name, value):
    a, size = servo.spec.registers[name]
    return servo.write(a, encode(servo.spec, name, value, size).to_bytes(size, "little"))


@pytest.mark.parametrize("value", [0, 1, 2047, -1, -2047, 4095, -4095])
def test_encodings_agree_with_lerobots_own(value):
    sts = servo_spec(FEETECH, "sts3215")
    xl = servo_spec(DYNAMIXEL, "xl330-m288")
    if abs(value) <= 2047:  # Homing_Offset: sign bit 11
        assert encode(sts, "Homing_Offset", value, 2) == encode_sign_magnitude(value, 11)
        assert decode(sts, "Homing_Offset", encode_sign_magnitude(value, 11)) == value
    assert encode(sts, "Goal_Position", value, 2) == encode_sign_magnitude(value, 15)
    assert decode(sts, "Present_Position", encode_sign_magnitude(value, 15)) == value
    assert encode(xl, "Goal_Position", value, 4) == encode_twos_complement(value, 4)
    assert decode(xl, "Present_Position", encode_twos_complement(value, 4)) == decode_twos_complement(
        encode_twos_complement(value, 4), 4
    )
    assert decode_sign_magnitude(encode(sts, "Goal_Position", value, 2), 15) == value


def test_spec_comes_from_lerobot_tables_and_survives_json():
    spec = servo_spec(FEETECH, "sts3215")
    assert spec.model_number == 777 and spec.registers["Present_Position"] == (56, 2)
    assert ServoSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="no model"):
        servo_spec(FEETECH, "sts9999")


def test_identity_registers():
    servo = make(FEETECH, "sts3215")
    assert servo.read(3, 2) == (777).to_bytes(2, "little")
    assert servo.read(5, 1) == b"\x01"
    assert servo.get("Return_Delay_Time") == 250  # factory 500 µs
    xl = make(DYNAMIXEL, "xl430-w250")
    assert xl.get("Model_Number") == 1060


def test_feetech_homing_offset_is_subtracted():
    servo = make(FEETECH, "sts3215")
    servo.set_present(2000)
    angle = servo.angle
    assert write(servo, "Homing_Offset", 100) is None
    servo.advance_to(0.0)
    assert servo.get("Present_Position") == 1900 and servo.angle == angle  # nothing moved


def test_dynamixel_homing_offset_is_added_and_drive_mode_reverses():
    servo = make(DYNAMIXEL, "xl330-m288")
    servo.put("Operating_Mode", 4)
    servo.set_present(2000)
    write(servo, "Homing_Offset", 100)
    servo.advance_to(0.0)
    assert servo.get("Present_Position") == 2100
    write(servo, "Drive_Mode", 1)
    servo.advance_to(0.0)
    assert servo.get("Present_Position") == -2000 + 100  # Present = -Actual + Homing_Offset


def test_torque_on_tracks_goal_and_torque_off_does_not_move():
    servo = make(FEETECH, "sts3215")
    servo.set_present(2000)
    write(servo, "Goal_Position", 2500)  # torque off: ignored, goal follows the shaft
    servo.advance_to(1.0)
    assert servo.get("Present_Position") == 2000 and servo.get("Goal_Position") == 2000
    write(servo, "Torque_Enable", 1)
    write(servo, "Goal_Position", 2500)
    servo.advance_to(1.1)
    assert 2000 < servo.get("Present_Position") < 2500  # on its way, speed-limited
    assert servo.get("Present_Velocity") > 0 and servo.get("Present_Load") > 0
    servo.advance_to(3.0)
    assert servo.get("Present_Position") == 2500


def test_feetech_clamps_goals_to_its_limits():
    servo = make(FEETECH, "sts3215")
    servo.put("Min_Position_Limit", 1000)
    servo.put("Max_Position_Limit", 3000)
    servo.set_present(2000)
    write(servo, "Torque_Enable", 1)
    write(servo, "Goal_Position", 3900)
    servo.advance_to(5.0)
    assert servo.get("Present_Position") == 3000


def test_dynamixel_refuses_out_of_limit_goal_in_position_mode_only():
    servo = make(DYNAMIXEL, "xl330-m288")
    servo.put("Max_Position_Limit", 3000)
    servo.set_present(2000)
    write(servo, "Torque_Enable", 1)
    assert write(servo, "Goal_Position", 3500) is Refusal.LIMIT
    assert servo.get("Goal_Position") == 2000
    write(servo, "Torque_Enable", 0)
    write(servo, "Operating_Mode", 4)  # extended position: limits do not apply
    write(servo, "Torque_Enable", 1)
    assert write(servo, "Goal_Position", 3500) is None


def test_dynamixel_eeprom_is_locked_while_torque_is_on():
    servo = make(DYNAMIXEL, "xl430-w250")
    write(servo, "Torque_Enable", 1)
    assert write(servo, "Homing_Offset", 50) is Refusal.ACCESS
    assert servo.get("Homing_Offset") == 0
    write(servo, "Torque_Enable", 0)
    assert write(servo, "Homing_Offset", 50) is None and servo.get("Homing_Offset") == 50


def test_read_only_and_out_of_table_are_refused():
    servo = make(FEETECH, "sts3215")
    assert write(servo, "Present_Position", 10) is Refusal.ACCESS
    assert write(servo, "Model_Number", 1) is Refusal.ACCESS
    assert servo.read(servo.spec.table_end - 1, 4) is Refusal.ACCESS
    assert servo.read(addr(servo, "Present_Position"), 0) is Refusal.ACCESS


def test_feetech_lock_decides_what_survives_a_power_cycle():
    servo = make(FEETECH, "sts3215")
    write(servo, "Lock", 1)
    write(servo, "Homing_Offset", 300)  # takes effect, not persisted
    assert servo.get("Homing_Offset") == 300
    servo.power_cycle(1.0)
    assert servo.get("Homing_Offset") == 0
    write(servo, "Lock", 0)
    write(servo, "Homing_Offset", 300)
    servo.power_cycle(2.0)
    assert servo.get("Homing_Offset") == 300 and servo.get("Torque_Enable") == 0


def test_torque_on_holds_the_pose_it_was_given():
    servo = make(FEETECH, "sts3215")
    servo.set_present(1234)
    write(servo, "Torque_Enable", 1)
    servo.advance_to(2.0)
    assert servo.get("Present_Position") == 1234 and servo.get("Goal_Position") == 1234


def test_a_script_moves_a_limp_joint_but_not_a_powered_one():
    servo = make(FEETECH, "sts3215")
    servo.script = lambda t: 2000 + 100 * t
    servo.advance_to(1.0)
    assert servo.get("Present_Position") == 2100
    write(servo, "Torque_Enable", 1)
    servo.advance_to(3.0)
    assert servo.get("Present_Position") == 2100
