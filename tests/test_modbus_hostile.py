"""SPEC S15.3 on Modbus: malformed and refused requests from a real pymodbus client (and,
where that client will not even send them, a hand-built MBAP frame) get the Modbus
exception codes — count 0 or > 125 → 03, a write → 01, another unit id → 0B — and the
server goes on answering good reads."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import pytest

from minimeter.live.modbus import BASE_ADDRESS, UNIT_ID, SunSpecServer
from minimeter.live.runner import LiveMeter

from .test_live_support import constant_installation, free_port

pymodbus_client = pytest.importorskip("pymodbus.client")

ILLEGAL_FUNCTION, ILLEGAL_VALUE, GATEWAY_NO_RESPONSE = 0x01, 0x03, 0x0B


@pytest.fixture(scope="module")
def port():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    live.advance_to(360.0)                                     # 100 Wh
    live.publish()
    server = SunSpecServer("127.0.0.1", free_port())
    live.add_sink(server)
    asyncio.run_coroutine_threadsafe(server.serve(), loop)
    assert server.wait_ready(10.0)
    yield server.port
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


@pytest.fixture
def client(port):
    c = pymodbus_client.ModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
    assert c.connect()
    yield c
    c.close()


def _raw_read(port: int, unit: int, address: int, count: int) -> bytes:
    """One Modbus TCP request, function 03, built by hand: the response PDU (after MBAP)."""
    pdu = struct.pack(">BHH", 3, address, count)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(struct.pack(">HHHB", 0x1234, 0, len(pdu) + 1, unit) + pdu)
        answer = sock.recv(300)
    tid, proto, length, got_unit = struct.unpack(">HHHB", answer[:7])
    assert (tid, proto, got_unit) == (0x1234, 0, unit)
    return answer[7:7 + length - 1]


@pytest.mark.parametrize("count", [0, 126, 0xFFFF])
def test_s15_3_modbus_read_count_outside_1_to_125_is_exception_03(port, client, count):
    assert _raw_read(port, UNIT_ID, BASE_ADDRESS, count) == bytes([0x83, ILLEGAL_VALUE])
    good = client.read_holding_registers(BASE_ADDRESS, count=2, device_id=UNIT_ID)
    assert good.registers == [0x5375, 0x6E53]                  # 'SunS': still answering


def test_s15_3_modbus_read_of_125_registers_is_answered(port):
    pdu = _raw_read(port, UNIT_ID, BASE_ADDRESS, 125)
    assert pdu[:2] == bytes([0x03, 250]) and len(pdu) == 2 + 250


@pytest.mark.parametrize("write", [
    lambda c: c.write_register(BASE_ADDRESS + 70 + 46, 0, device_id=UNIT_ID),       # FC 06 on TotWhImp
    lambda c: c.write_registers(BASE_ADDRESS + 70 + 46, [0, 0], device_id=UNIT_ID),  # FC 16
    lambda c: c.write_coil(0, True, device_id=UNIT_ID),                              # FC 05
    lambda c: c.mask_write_register(address=BASE_ADDRESS, and_mask=0, or_mask=0, device_id=UNIT_ID),        # FC 22
])
def test_s15_3_modbus_writes_are_exception_01_and_change_nothing(client, write):
    before = client.read_holding_registers(BASE_ADDRESS + 70, count=105, device_id=UNIT_ID).registers
    answer = write(client)
    assert answer.isError() and answer.exception_code == ILLEGAL_FUNCTION
    assert client.read_holding_registers(BASE_ADDRESS + 70, count=105, device_id=UNIT_ID).registers == before


@pytest.mark.parametrize("unit", [0, 2, 7, 247, 255])
def test_s15_3_modbus_only_its_own_unit_id_answers(client, unit):
    answer = client.read_holding_registers(BASE_ADDRESS, count=2, device_id=unit)
    assert answer.isError() and answer.exception_code == GATEWAY_NO_RESPONSE


def test_s15_3_modbus_unit_id_is_1_to_247():
    with pytest.raises(ValueError, match="1…247"):
        SunSpecServer("127.0.0.1", 5020, unit_id=0)
