"""Protocol conformance of the emulated servo chains, byte by byte and through the vendors' SDKs.

Requests come from the SDKs' own packet builders (scservo_sdk, dynamixel_sdk) or are spelled out
from the manuals; replies are checked as bytes or decoded by the same SDKs.
"""

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs
import serial
from lerobot.motors.feetech import FeetechMotorsBus

from lerobot_policy_drift.robots.arms import motor_table
from tests.emulator_helpers import running_chain

NO_REPLY_WAIT_S = 0.1  # longer than any emulated reply delay in these tests


@pytest.fixture
def so100(tmp_path):
    with running_chain("so100", tmp_path) as (chain, plan):
        yield chain


@pytest.fixture
def koch(tmp_path):
    with running_chain("koch", tmp_path) as (chain, plan):
        yield chain


def raw(port, request: bytes, n: int) -> bytes:
    with serial.Serial(str(port), 1_000_000, timeout=NO_REPLY_WAIT_S) as ser:
        ser.write(request)
        return ser.read(n)


def sdk_port(module, port):
    handler = module.PortHandler(str(port))
    assert handler.openPort() and handler.setBaudRate(1_000_000)
    return handler


# -- Feetech (SO-100/SO-101: STS3215, protocol 0) ---------------------------------------------------
def test_feetech_ping_bytes_match_the_manual(so100):
    assert raw(so100.port, bytes.fromhex("FF FF 01 02 01 FB"), 6) == bytes.fromhex("FF FF 01 02 00 FC")


def test_feetech_bad_checksum_and_out_of_table_reads_get_no_reply(so100):
    assert raw(so100.port, bytes.fromhex("FF FF 01 02 01 FA"), 6) == b""
    read_past_end = bytes([0xFF, 0xFF, 1, 4, 0x02, 0xF0, 0x20])
    read_past_end += bytes([~sum(read_past_end[2:]) & 0xFF])
    assert raw(so100.port, read_past_end, 6) == b""
    assert raw(so100.port, bytes.fromhex("FF FF 01 02 01 FB"), 6)  # the chain is still answering


def test_feetech_sdk_ping_read_write(so100):
    port, packets = sdk_port(scs, so100.port), scs.PacketHandler(0)
    try:
        assert packets.ping(port, 3) == (777, scs.COMM_SUCCESS, 0)
        assert packets.ping(port, 9)[1] == scs.COMM_RX_TIMEOUT  # no such servo
        assert packets.read2ByteTxRx(port, 1, 3) == (777, scs.COMM_SUCCESS, 0)
        assert packets.write1ByteTxRx(port, 2, 40, 1) == (scs.COMM_SUCCESS, 0)
        assert so100.snapshot()[2]["Torque_Enable"] == 1
    finally:
        port.closePort()


def test_feetech_sync_read_answers_back_to_back_in_request_order(so100):
    request = bytes([0xFF, 0xFF, 0xFE, 7, 0x82, 56, 2, 3, 1, 2])
    request += bytes([~sum(request[2:]) & 0xFF])
    reply = raw(so100.port, request, 3 * 8)
    assert [reply[i + 2] for i in range(0, 24, 8)] == [3, 1, 2]
    state = so100.snapshot()
    for i, servo_id in zip(range(0, 24, 8), (3, 1, 2), strict=True):
        assert reply[i : i + 2] == b"\xff\xff" and reply[i + 3] == 4 and reply[i + 4] == 0
        assert int.from_bytes(reply[i + 5 : i + 7], "little") == state[servo_id]["Present_Position"]


def test_feetech_sdk_sync_write_sets_goals_without_reply(so100):
    port, packets = sdk_port(scs, so100.port), scs.PacketHandler(0)
    try:
        for servo_id in range(1, 7):
            packets.write1ByteTxRx(port, servo_id, 40, 1)
        writer = scs.GroupSyncWrite(port, packets, 42, 2)
        for servo_id in range(1, 7):
            writer.addParam(servo_id, [0x00, 0x08])  # 2048
        assert writer.txPacket() == scs.COMM_SUCCESS
        assert port.readPort(64) == b""  # SYNC_WRITE is never answered
        reader = scs.GroupSyncRead(port, packets, 42, 2)
        for servo_id in range(1, 7):
            reader.addParam(servo_id)
        assert reader.txRxPacket() == scs.COMM_SUCCESS
        assert [reader.getData(i, 42, 2) for i in range(1, 7)] == [2048] * 6
    finally:
        port.closePort()


def test_feetech_broadcast_ping_through_lerobot(so100):
    bus = FeetechMotorsBus(str(so100.port), motor_table("so100"))
    bus.connect(handshake=False)
    try:
        assert bus.broadcast_ping() == {i: 777 for i in range(1, 7)}
    finally:
        bus.disconnect(disable_torque=False)


def test_feetech_error_bits_reach_the_sdk(so100):
    so100.set_faults(error_bits={2: 0x20})
    port, packets = sdk_port(scs, so100.port), scs.PacketHandler(0)
    try:
        value, comm, error = packets.read2ByteTxRx(port, 2, 56)
        assert comm == scs.COMM_SUCCESS and error == 0x20
        assert "Overload" in packets.getRxPacketError(error)
    finally:
        port.closePort()


# -- Dynamixel (Koch: XL430-W250 + XL330-M288, Protocol 2.0) ---------------------------------------
def test_dynamixel_sdk_ping_and_broadcast_ping(koch):
    port, packets = sdk_port(dxl, koch.port), dxl.PacketHandler(2.0)
    try:
        assert packets.ping(port, 1) == (1060, dxl.COMM_SUCCESS, 0)
        assert packets.ping(port, 4) == (1200, dxl.COMM_SUCCESS, 0)
        found, comm = packets.broadcastPing(port)
        assert comm == dxl.COMM_SUCCESS
        assert {i: model for i, (model, _) in found.items()} == {
            1: 1060,
            2: 1060,
            3: 1200,
            4: 1200,
            5: 1200,
            6: 1200,
        }
    finally:
        port.closePort()


def test_dynamixel_bad_crc_gets_a_crc_error_status(koch):
    ping = bytes.fromhex("FF FF FD 00 01 03 00 01 19 4E")  # e-Manual: PING to ID 1
    assert raw(koch.port, ping, 14)[8] == 0x00
    reply = raw(koch.port, ping[:-1] + b"\x00", 11)
    assert reply[:5] == bytes.fromhex("FFFFFD0001") and reply[7] == 0x55 and reply[8] == 3
    crc = dxl.PacketHandler(2.0).updateCRC(0, list(reply), 9)
    assert reply[9:11] == bytes([crc & 0xFF, crc >> 8])


def test_dynamixel_access_errors(koch):
    port, packets = sdk_port(dxl, koch.port), dxl.PacketHandler(2.0)
    try:
        assert packets.write1ByteTxRx(port, 3, 64, 1) == (dxl.COMM_SUCCESS, 0)  # torque on
        comm, error = packets.write4ByteTxRx(port, 3, 20, 10)  # Homing_Offset lives in EEPROM
        assert comm == dxl.COMM_SUCCESS and error == 7
        assert "not available" in packets.getRxPacketError(error)
        _, comm, error = packets.readTxRx(port, 3, 200, 4)  # beyond the control table
        assert error == 7
        comm, error = packets.write4ByteTxRx(port, 3, 132, 5)  # Present_Position is read-only
        assert error == 7
    finally:
        port.closePort()


def test_dynamixel_byte_stuffing_both_ways(koch):
    """A value whose bytes contain the header FF FF FD must be stuffed by the sender and unstuffed."""
    port, packets = sdk_port(dxl, koch.port), dxl.PacketHandler(2.0)
    value = 0x00FDFFFF  # little-endian bytes FF FF FD 00
    try:
        assert packets.write4ByteTxRx(port, 2, 112, value) == (dxl.COMM_SUCCESS, 0)  # Profile_Velocity
        assert packets.read4ByteTxRx(port, 2, 112) == (value, dxl.COMM_SUCCESS, 0)
    finally:
        port.closePort()


def test_dynamixel_sdk_sync_read_and_write(koch):
    port, packets = sdk_port(dxl, koch.port), dxl.PacketHandler(2.0)
    try:
        writer = dxl.GroupSyncWrite(port, packets, 112, 4)
        for servo_id in range(1, 7):
            writer.addParam(servo_id, list((100 + servo_id).to_bytes(4, "little")))
        assert writer.txPacket() == dxl.COMM_SUCCESS
        reader = dxl.GroupSyncRead(port, packets, 112, 4)
        for servo_id in range(1, 7):
            reader.addParam(servo_id)
        assert reader.txRxPacket() == dxl.COMM_SUCCESS
        assert [reader.getData(i, 112, 4) for i in range(1, 7)] == [101, 102, 103, 104, 105, 106]
    finally:
        port.closePort()
