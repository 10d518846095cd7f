"""One emulated servo: its register file and what its firmware does with it.

The register file is the model's control table (``ServoSpec``) as bytes. Writes go through the
firmware rules a LeRobot driver relies on: read-only registers, EEPROM locked while torque is on
(Dynamixel) or not persisted while ``Lock`` is set (Feetech), position limits, homing offset,
drive mode, sign encodings. Present position/velocity/load are computed from a joint model
(``dynamics``) advanced lazily to the time of each read.

Position conventions (from the servo manuals, as LeRobot's drivers assume them):
Feetech ``Present = Actual - Homing_Offset`` (wrapped to one turn in position mode);
Dynamixel ``Present = ±Actual + Homing_Offset`` (sign from ``Drive_Mode`` bit 0; wrapped only in
position mode 3, multi-turn in extended modes 4 and 5).
"""

import enum
from collections.abc import Callable

from lerobot_policy_drift.robots.dynamics import JointDynamics, advance
from lerobot_policy_drift.robots.servo_spec import DYNAMIXEL, FEETECH, ServoSpec


class Refusal(enum.Enum):
    """Why a servo refused an instruction; the wire layer maps it to the protocol's error."""

    ACCESS = "access"  # read-only register, EEPROM with torque on, or an address outside the table
    LIMIT = "limit"  # a goal outside the position limits in a mode that enforces them


def encode(spec: ServoSpec, name: str, value: int, size: int) -> int:
    """Signed value -> register bits, in the model's encoding."""
    if name in spec.encodings:
        if spec.protocol == FEETECH:  # sign-magnitude, sign at bit ``encodings[name]``
            bit = spec.encodings[name]
            magnitude = min(abs(int(value)), (1 << bit) - 1)
            return magnitude | (1 << bit) if value < 0 else magnitude
        return int(value) & ((1 << (8 * spec.encodings[name])) - 1)  # two's complement
    return max(0, min(int(value), (1 << (8 * size)) - 1))


def decode(spec: ServoSpec, name: str, raw: int) -> int:
    """Register bits -> signed value, in the model's encoding."""
    if name in spec.encodings:
        if spec.protocol == FEETECH:
            bit = spec.encodings[name]
            magnitude = raw & ((1 << bit) - 1)
            return -magnitude if raw & (1 << bit) else magnitude
        n_bits = 8 * spec.encodings[name]
        return raw - (1 << n_bits) if raw & (1 << (n_bits - 1)) else raw
    return raw


# Factory values of the registers LeRobot reads or depends on (everything else powers up as 0).
_FACTORY = {
    FEETECH: {
        "Return_Delay_Time": 250,  # 500 µs until LeRobot's configure_motors writes 0
        "Max_Position_Limit": 4095,
        "Max_Torque_Limit": 1000,
        "Phase": 0x1C,  # bit 0x10 set: LeRobot clears it on STS3215
        "P_Coefficient": 32,
        "D_Coefficient": 32,
        "Protection_Current": 500,
        "Overload_Torque": 80,
        "Max_Temperature_Limit": 70,
        "Max_Voltage_Limit": 140,
        "Min_Voltage_Limit": 40,
        "Present_Voltage": 120,
        "Present_Temperature": 31,
    },
    DYNAMIXEL: {
        "Return_Delay_Time": 250,
        "Baud_Rate": 1,  # 57600, the factory rate; LeRobot's setup_motor writes 3 (1 Mbps)
        "Operating_Mode": 3,
        "Max_Position_Limit": 4095,
        "Temperature_Limit": 70,
        "Velocity_Limit": 445,
        "Position_P_Gain": 800,
        "Status_Return_Level": 2,
        "Present_Input_Voltage": 50,
        "Present_Temperature": 31,
    },
}

# Modes in which the joint tracks Goal_Position, and those that wrap Present_Position to one turn.
_POSITION_MODES = {FEETECH: {0}, DYNAMIXEL: {3, 4, 5}}
_WRAPPED_MODES = {FEETECH: {0}, DYNAMIXEL: {3}}
# Present_Velocity unit in ticks/s: Feetech reports steps/s; Dynamixel 0.229 rpm.
_VELOCITY_UNIT = {FEETECH: 1.0, DYNAMIXEL: 0.229 * 4096 / 60}


class Servo:
    """Registers + joint of one servo. Not thread-safe: its chain serialises access."""

    def __init__(self, spec: ServoSpec, servo_id: int, dynamics: JointDynamics, now: float):
        self.spec = spec
        self.dynamics = dynamics
        self.memory = bytearray(spec.table_end)
        self._by_address = {addr: (name, size) for name, (addr, size) in spec.registers.items()}
        self.angle = 0.0  # physical shaft position, ticks (not wrapped)
        self.velocity = 0.0  # ticks/s
        self.target_angle = 0.0
        self.time = now
        self.script: Callable[[float], float] | None = None  # present ticks as a function of time
        self._factory_reset(servo_id)

    # -- registers -------------------------------------------------------------------------------
    def _raw(self, name: str) -> int:
        addr, size = self.spec.registers[name]
        return int.from_bytes(self.memory[addr : addr + size], "little")

    def get(self, name: str) -> int:
        return decode(self.spec, name, self._raw(name))

    def put(self, name: str, value: int) -> None:
        """Set a register directly (emulator side: no firmware rules)."""
        addr, size = self.spec.registers[name]
        self.memory[addr : addr + size] = encode(self.spec, name, value, size).to_bytes(size, "little")

    def has(self, name: str) -> bool:
        return name in self.spec.registers

    def _factory_reset(self, servo_id: int) -> None:
        self.memory[:] = bytes(len(self.memory))
        for name, value in _FACTORY[self.spec.protocol].items():
            if self.has(name):
                self.put(name, value)
        self.put("Model_Number", self.spec.model_number)
        major, minor = self.spec.firmware
        if self.spec.protocol == FEETECH:
            self.put("Firmware_Major_Version", major)
            self.put("Firmware_Minor_Version", minor)
        else:
            self.put("Firmware_Version", major)
        self.put("ID", servo_id)
        self.flash = bytes(self.memory[: self.spec.eeprom_end])

    @property
    def servo_id(self) -> int:
        return self.get("ID")

    @property
    def torque_on(self) -> bool:
        return self.get("Torque_Enable") == 1

    # -- position conventions ------------------------------------------------------------------
    def _sign(self) -> int:
        drive_reversed = self.spec.protocol == DYNAMIXEL and self.get("Drive_Mode") & 1
        return -1 if drive_reversed else 1

    def _offset_term(self) -> int:
        offset = self.get("Homing_Offset")
        return -offset if self.spec.protocol == FEETECH else offset

    def present_unwrapped(self) -> float:
        return self._sign() * self.angle + self._offset_term()

    def _wrap(self, present: float) -> float:
        if self.get("Operating_Mode") in _WRAPPED_MODES[self.spec.protocol]:
            return present % self.spec.resolution
        return present

    def present(self) -> int:
        return int(round(self._wrap(self.present_unwrapped())))

    def set_present(self, present: float) -> None:
        """Place the shaft where it reads ``present`` (emulator side: power-on pose, scripts)."""
        self.angle = self._sign() * (present - self._offset_term())
        self.target_angle = self.angle
        self.velocity = 0.0

    # -- time ----------------------------------------------------------------------------------
    def advance_to(self, now: float) -> None:
        """Bring the joint (and the registers computed from it) to time ``now``."""
        dt = now - self.time
        self.time = now
        if self.torque_on and self.get("Operating_Mode") in _POSITION_MODES[self.spec.protocol]:
            self.angle, self.velocity = advance(self.angle, self.target_angle, dt, self.dynamics)
        elif self.script is not None and not self.torque_on:  # a hand moves a limp leader joint
            before = self.angle
            self.set_present(self.script(now))
            self.velocity = (self.angle - before) / dt if dt > 0 else 0.0
        else:
            self.velocity = 0.0
        self._publish_state()

    def _publish_state(self) -> None:
        present = self.present()
        self.put("Present_Position", present)
        velocity = self._sign() * self.velocity / _VELOCITY_UNIT[self.spec.protocol]
        self.put("Present_Velocity", int(round(velocity)))
        error = self.target_angle - self.angle if self.torque_on else 0.0
        load = max(-1000, min(1000, int(round(error * 5))))  # 0.1 % of stall torque per tick of lag
        if self.spec.protocol == FEETECH:
            self.put("Present_Load", load)
            self.put("Moving", int(abs(self.velocity) > 20))
        else:
            self.put("Present_Current", load)
            self.put("Moving", int(abs(self.velocity) > 20))
        if not self.torque_on:  # goal follows the shaft so enabling torque holds the pose
            self.put("Goal_Position", present)

    # -- instructions --------------------------------------------------------------------------
    def read(self, addr: int, length: int) -> bytes | Refusal:
        if length <= 0 or addr + length > len(self.memory):
            return Refusal.ACCESS
        return bytes(self.memory[addr : addr + length])

    def write(self, addr: int, data: bytes) -> Refusal | None:
        end = addr + len(data)
        if not data or end > len(self.memory):
            return Refusal.ACCESS
        touched = [(a, *self._by_address[a]) for a in range(addr, end) if a in self._by_address]
        for _, name, _ in touched:
            if self.spec.is_read_only(name):
                return Refusal.ACCESS
        if self.spec.protocol == DYNAMIXEL and addr < self.spec.eeprom_end and self.torque_on:
            return Refusal.ACCESS  # Dynamixel: EEPROM is locked while torque is enabled
        was_on = self.torque_on
        old = bytes(self.memory[addr:end])
        self.memory[addr:end] = data
        for _, name, _ in touched:
            if name == "Goal_Position" and (refusal := self._accept_goal()) is not None:
                self.memory[addr:end] = old
                return refusal
        if not was_on and self.torque_on:
            self.target_angle = self.angle  # torque on: hold where the shaft is
            self.put("Goal_Position", self.present())
        locked = self.spec.protocol == FEETECH and self.get("Lock") == 1
        if addr < self.spec.eeprom_end and not locked:  # Feetech persists EEPROM only when unlocked
            self.flash = bytes(self.memory[: self.spec.eeprom_end])
        return None

    def _accept_goal(self) -> Refusal | None:
        goal = self.get("Goal_Position")
        low, high = self.get("Min_Position_Limit"), self.get("Max_Position_Limit")
        mode = self.get("Operating_Mode")
        if self.spec.protocol == FEETECH and mode == 0 and high > low:
            goal = max(low, min(high, goal))  # Feetech clamps to its limits
        elif self.spec.protocol == DYNAMIXEL and mode == 3 and not low <= goal <= high:
            return Refusal.LIMIT  # Dynamixel refuses the write with a data-limit error
        error = goal - self._wrap(self.present_unwrapped())
        self.target_angle = self.angle + self._sign() * error
        return None

    def power_cycle(self, now: float) -> None:
        """Power off and on: RAM to factory values, EEPROM from what was persisted, torque off."""
        eeprom = self.flash
        self._factory_reset(self.get("ID"))
        self.memory[: self.spec.eeprom_end] = eeprom
        self.flash = eeprom
        self.target_angle = self.angle
        self.time = now
        self._publish_state()
