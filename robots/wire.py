"""Byte framing of the two servo protocols, servo side: split instruction packets, build status packets.

Feetech SCS/STS (protocol 0): ``FF FF ID LEN INST P… CHK``, ``CHK = ~(ID+LEN+INST+ΣP) & 0xFF``;
status ``FF FF ID LEN ERR P… CHK``. A packet with a bad checksum is ignored (no reply).

Dynamixel Protocol 2.0: ``FF FF FD 00 ID LEN_L LEN_H INST P… CRC_L CRC_H``; status has INST 0x55
then ERR. CRC-16 and byte stuffing are the Dynamixel SDK's own (``Protocol2PacketHandler``), so
the emulator and LeRobot's driver agree by construction on those two algorithms; a packet with
a bad CRC gets a status with error 3 (CRC error), as X-series firmware answers.
"""

from dataclasses import dataclass

from dynamixel_sdk.protocol2_packet_handler import Protocol2PacketHandler

from lerobot_policy_drift.robots.servo import Refusal
from lerobot_policy_drift.robots.servo_spec import DYNAMIXEL, FEETECH

BROADCAST_ID = 0xFE
PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83


@dataclass(frozen=True)
class Instruction:
    servo_id: int
    code: int
    params: bytes


@dataclass(frozen=True)
class BadPacket:
    servo_id: int  # the ID byte as received (the packet failed its checksum/CRC)


class FeetechWire:
    protocol = FEETECH
    address_bytes = 1  # READ/WRITE/SYNC_* address and length fields

    @staticmethod
    def checksum(body: bytes) -> int:
        return ~sum(body) & 0xFF

    def split(self, buf: bytearray) -> list[Instruction | BadPacket]:
        """Consume every complete packet at the front of ``buf``; leave a partial one in place."""
        out: list[Instruction | BadPacket] = []
        while True:
            start = buf.find(b"\xff\xff")
            if start < 0:
                del buf[: max(len(buf) - 1, 0)]  # keep a trailing 0xFF: it may start a header
                return out
            del buf[:start]
            if len(buf) >= 3 and buf[2] == 0xFF:  # FF FF FF: resynchronise on the next pair
                del buf[:1]
                continue
            if len(buf) < 4:
                return out
            length = buf[3]
            if length < 2:
                del buf[:2]
                continue
            if len(buf) < length + 4:
                return out
            packet = bytes(buf[: length + 4])
            del buf[: length + 4]
            if self.checksum(packet[2:-1]) != packet[-1]:
                out.append(BadPacket(packet[2]))
            else:
                out.append(Instruction(packet[2], packet[4], packet[5:-1]))

    def status(self, servo_id: int, error: int, params: bytes = b"") -> bytes:
        body = bytes([servo_id, len(params) + 2, error]) + params
        return b"\xff\xff" + body + bytes([self.checksum(body)])

    def ping_reply(self, servo_id: int, model_number: int, firmware: int) -> bytes:
        return self.status(servo_id, 0)  # protocol 0 PING carries no parameters

    @staticmethod
    def refusal_error(refusal: Refusal, is_write: bool) -> int | None:
        # STS firmware has no access/limit error bit: a refused write is acknowledged and
        # ignored; a read outside the table gets no answer (the driver times out).
        return 0 if is_write else None

    @staticmethod
    def bad_packet_reply(bad: BadPacket) -> int | None:
        return None


class DynamixelWire:
    protocol = DYNAMIXEL
    address_bytes = 2
    _sdk = Protocol2PacketHandler()
    ERR_CRC, ERR_ACCESS, ERR_LIMIT, ERR_INSTRUCTION = 3, 7, 6, 2

    def crc(self, packet: list[int] | bytes, n: int) -> int:
        return self._sdk.updateCRC(0, packet, n)

    def split(self, buf: bytearray) -> list[Instruction | BadPacket]:
        out: list[Instruction | BadPacket] = []
        while True:
            start = buf.find(b"\xff\xff\xfd\x00")
            if start < 0:
                del buf[: max(len(buf) - 3, 0)]
                return out
            del buf[:start]
            if len(buf) < 7:
                return out
            length = buf[5] | buf[6] << 8
            if length < 3:
                del buf[:4]
                continue
            if len(buf) < length + 7:
                return out
            packet = list(buf[: length + 7])
            del buf[: length + 7]
            if self.crc(packet, length + 5) != (packet[-2] | packet[-1] << 8):
                out.append(BadPacket(packet[4]))
                continue
            packet = self._sdk.removeStuffing(packet)
            length = packet[5] | packet[6] << 8
            out.append(Instruction(packet[4], packet[7], bytes(packet[8 : 5 + length])))

    def status(self, servo_id: int, error: int, params: bytes = b"") -> bytes:
        length = len(params) + 4
        packet = [0xFF, 0xFF, 0xFD, 0x00, servo_id, length & 0xFF, length >> 8, 0x55, error, *params, 0, 0]
        packet = self._sdk.addStuffing(packet)
        total = (packet[5] | packet[6] << 8) + 7
        crc = self.crc(packet, total - 2)
        packet[total - 2], packet[total - 1] = crc & 0xFF, crc >> 8
        return bytes(packet[:total])

    def ping_reply(self, servo_id: int, model_number: int, firmware: int) -> bytes:
        return self.status(servo_id, 0, bytes([model_number & 0xFF, model_number >> 8, firmware]))

    def refusal_error(self, refusal: Refusal, is_write: bool) -> int | None:
        return self.ERR_LIMIT if refusal is Refusal.LIMIT else self.ERR_ACCESS

    def bad_packet_reply(self, bad: BadPacket) -> int | None:
        return self.ERR_CRC


def wire_for(protocol: str) -> FeetechWire | DynamixelWire:
    return {FEETECH: FeetechWire, DYNAMIXEL: DynamixelWire}[protocol]()


def address_and_length(params: bytes, n: int) -> tuple[int, int]:
    """The (address, length) pair that opens READ and SYNC_* parameters (``n`` bytes each)."""
    return int.from_bytes(params[:n], "little"), int.from_bytes(params[n : 2 * n], "little")
