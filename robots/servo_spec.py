"""What an emulated servo model is: its control table and encodings, read from LeRobot's own tables.

A ``ServoSpec`` is plain data, so the emulator process can receive it as JSON and never import
LeRobot (whose package import pulls in torch, seconds on a small machine). The builder
``servo_spec`` does import LeRobot's control tables, so the emulated registers sit at exactly the
addresses and sizes LeRobot's drivers use.
"""

from dataclasses import asdict, dataclass

FEETECH = "feetech"
DYNAMIXEL = "dynamixel"

# Registers a servo computes itself; a write to them changes nothing (Dynamixel: access error).
_READ_ONLY_PREFIXES = ("Present_", "Firmware_", "Model_")
_READ_ONLY_NAMES = {
    "Status",
    "Moving",
    "Moving_Status",
    "Goal_Position_2",
    "Realtime_Tick",
    "Registered_Instruction",
    "Hardware_Error_Status",
    "Velocity_Trajectory",
    "Position_Trajectory",
}
# First RAM address: everything below is EEPROM (Feetech STS/SMS manual; Dynamixel X e-Manual).
_EEPROM_END = {FEETECH: 40, DYNAMIXEL: 64}
# Firmware the emulated servos report (LeRobot requires all motors on a bus to match).
_FIRMWARE = {FEETECH: (3, 10), DYNAMIXEL: (52, 0)}


@dataclass(frozen=True)
class ServoSpec:
    protocol: str  # FEETECH (SCS/STS protocol 0) or DYNAMIXEL (Protocol 2.0)
    model: str  # LeRobot's model name, e.g. "sts3215", "xl330-m288"
    model_number: int
    registers: dict[str, tuple[int, int]]  # name -> (address, size in bytes)
    encodings: dict[str, int]  # Feetech: sign-magnitude sign bit; Dynamixel: two's complement bytes
    baudrates: dict[int, int]  # baud rate -> Baud_Rate register value
    resolution: int
    eeprom_end: int
    firmware: tuple[int, int]

    @property
    def table_end(self) -> int:
        return max(addr + size for addr, size in self.registers.values())

    def is_read_only(self, name: str) -> bool:
        return name.startswith(_READ_ONLY_PREFIXES) or name in _READ_ONLY_NAMES

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ServoSpec":
        registers = {name: (int(a), int(s)) for name, (a, s) in data["registers"].items()}
        baudrates = {int(b): int(v) for b, v in data["baudrates"].items()}
        return cls(
            **{**data, "registers": registers, "baudrates": baudrates, "firmware": tuple(data["firmware"])}
        )


def servo_spec(protocol: str, model: str) -> ServoSpec:
    """The spec of ``model`` from LeRobot's Feetech or Dynamixel tables."""
    if protocol == FEETECH:
        from lerobot.motors.feetech import tables
    elif protocol == DYNAMIXEL:
        from lerobot.motors.dynamixel import tables
    else:
        raise ValueError(f"unknown servo protocol {protocol!r}; expected {FEETECH!r} or {DYNAMIXEL!r}.")
    if model not in tables.MODEL_NUMBER_TABLE:
        raise ValueError(f"LeRobot's {protocol} tables have no model {model!r}.")
    registers = {name.strip(): tuple(where) for name, where in tables.MODEL_CONTROL_TABLE[model].items()}
    return ServoSpec(
        protocol=protocol,
        model=model,
        model_number=tables.MODEL_NUMBER_TABLE[model],
        registers=registers,
        encodings=dict(tables.MODEL_ENCODING_TABLE.get(model, {})),
        baudrates=dict(tables.MODEL_BAUDRATE_TABLE[model]),
        resolution=tables.MODEL_RESOLUTION[model],
        eeprom_end=_EEPROM_END[protocol],
        firmware=_FIRMWARE[protocol],
    )
