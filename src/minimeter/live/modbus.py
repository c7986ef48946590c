"""Modbus TCP with the SunSpec information model: common model 1 and meter model 201
(single element) or 202 (split phase), read-only (issue 5, SPEC §5, §7, §8).

:func:`sunspec_registers` is a pure function from a :class:`~minimeter.live.stream.Snapshot`
to the holding registers from 40000 on: ``SunS``, model 1, model 201/202, the end model.
:class:`SunSpecServer` is a sink of the live stream that serves them with pymodbus; every
register is read-only, so the energy register cannot be written or reset through Modbus.

Scale factors (value = register × 10^SF) are fixed and chosen so the largest meter at
its limits fits an int16: 440 A (110 % of 400 A) × 2 elements × 138 V = 121 440 W.

=========  ====  ==============================================
point      SF    range
=========  ====  ==============================================
A, Aph*    −1    ±3276.7 A (2 × 440 A = 880 A total)
PhV*       −1    ±3276.7 V
Hz         −2    ±327.67 Hz
W, Wph*    +1    ±327 670 W
PF*        −1    ±100.0 % (Pct, signed)
TotWh*      0    Wh, acc32 (rolls over after 4.29 GWh)
=========  ====  ==============================================

Points the meter does not measure (VA, var, line-to-line voltage, phase C) read as
SunSpec's "not implemented" (0x8000 for int16 and scale factors, 0 for acc32).

Malformed and refused requests (SPEC S15.3) get the Modbus exception codes: a read of
count 0 or more than 125 registers → 03 (illegal data value); any write (function codes
5, 6, 15, 16, 22, 23) → 01 (illegal function: this device has nothing writable); an
address outside the map → 02. Only the server's own unit id (:data:`UNIT_ID`, 1 by
default) answers; a request to another unit id gets exception 0B (gateway target device
failed to respond) — *decision*: an immediate answer rather than a client's timeout, as
a Modbus TCP gateway would give for a device it does not have.

``Evt`` bits: 2 power failure, 3 under-voltage, 4 low PF, 5 over-current,
6 over-voltage; OEM bits: 16 reverse phase (the red LED), 17 frequency out of range,
18 clipped input.
"""

from __future__ import annotations

import contextlib
import math
import struct
import threading
import time
from typing import Any, Callable

from minimeter.meter import EventKind
from minimeter.meter.register import QUANTA_PER_WH
from minimeter.live.stream import Snapshot

BASE_ADDRESS = 40000
UNIT_ID = 1
MAX_READ_COUNT = 125              # registers per read (Modbus application protocol, 6.3)
NOT_IMPLEMENTED_INT16 = 0x8000
MODEL_1_LENGTH = 66
METER_MODEL_LENGTH = 105
END_MODEL_ID = 0xFFFF

SF_A = -1
SF_V = -1
SF_HZ = -2
SF_W = 1
SF_PF = -1
SF_WH = 0

EVT_POWER_FAILURE = 2
EVT_UNDER_VOLTAGE = 3
EVT_LOW_PF = 4
EVT_OVER_CURRENT = 5
EVT_OVER_VOLTAGE = 6
EVT_OEM_REVERSE_PHASE = 16
EVT_OEM_FREQUENCY = 17
EVT_OEM_CLIPPED = 18

_EVENT_BITS = {
    EventKind.POWER_LOSS: EVT_POWER_FAILURE, EventKind.UNDER_VOLTAGE: EVT_UNDER_VOLTAGE,
    EventKind.LOW_PF: EVT_LOW_PF, EventKind.OVER_CURRENT: EVT_OVER_CURRENT,
    EventKind.OVER_VOLTAGE: EVT_OVER_VOLTAGE, EventKind.FREQUENCY: EVT_OEM_FREQUENCY,
    EventKind.CLIPPED: EVT_OEM_CLIPPED,
}   # reverse power shows as the reverse phase LED's bit

# Offsets of the meter model's points from its ID register (SunSpec models 201/202).
_OFF = {
    "A": 2, "AphA": 3, "AphB": 4, "AphC": 5, "A_SF": 6,
    "PhV": 7, "PhVphA": 8, "PhVphB": 9, "PhVphC": 10, "PPV": 11, "PPVphAB": 12, "PPVphBC": 13,
    "PPVphCA": 14, "V_SF": 15, "Hz": 16, "Hz_SF": 17,
    "W": 18, "WphA": 19, "WphB": 20, "WphC": 21, "W_SF": 22,
    "VA": 23, "VA_SF": 27, "VAR": 28, "VAR_SF": 32,
    "PF": 33, "PFphA": 34, "PFphB": 35, "PFphC": 36, "PF_SF": 37,
    "TotWhExp": 38, "TotWhImp": 46, "TotWh_SF": 54, "TotVAh_SF": 71, "TotVArh_SF": 104, "Evt": 105,
}
_INT16_POINTS_NOT_MEASURED = (
    "AphC", "PhVphC", "PPV", "PPVphAB", "PPVphBC", "PPVphCA", "WphC", "PFphC",
    "VA", "VA_SF", "VAR", "VAR_SF", "TotVAh_SF", "TotVArh_SF",
)


def _int16(value: float, sf: int) -> int:
    """``value`` as a signed int16 register at scale factor ``sf`` (two's complement);
    NaN gives "not implemented"."""
    if not math.isfinite(value):
        return NOT_IMPLEMENTED_INT16
    raw = int(round(value / 10.0 ** sf))
    raw = max(-32767, min(32767, raw))
    return raw & 0xFFFF


def _string(text: str, registers: int) -> list[int]:
    data = text.encode("ascii", "replace")[: 2 * registers].ljust(2 * registers, b"\0")
    return [(data[2 * i] << 8) | data[2 * i + 1] for i in range(registers)]


def _u32(value: int) -> list[int]:
    value &= 0xFFFFFFFF
    return [value >> 16, value & 0xFFFF]


def event_bits(snapshot: Snapshot) -> int:
    """The SunSpec ``Evt`` bitfield for the active events and the reverse phase LED."""
    bits = 0
    for kind, _element in snapshot.active_events:
        if kind in _EVENT_BITS:
            bits |= 1 << _EVENT_BITS[kind]
    if snapshot.meter.reverse_led:
        bits |= 1 << EVT_OEM_REVERSE_PHASE
    return bits


def meter_model_id(elements: int) -> int:
    """201 for a single-element meter, 202 for split phase."""
    return 201 if elements == 1 else 202


def sunspec_registers(snapshot: Snapshot, *, serial: str = "MM000001", version: str = "0.1.0") -> list[int]:
    """The holding registers from :data:`BASE_ADDRESS` on, for one snapshot."""
    regs = [0x5375, 0x6E53]                                      # 'SunS'
    regs += [1, MODEL_1_LENGTH]
    regs += _string("Leviton", 16) + _string(f"Mini Meter {snapshot.spec.model_number}", 16)
    regs += _string(snapshot.spec.model_number, 8) + _string(version, 8) + _string(serial, 16)
    regs += [1, NOT_IMPLEMENTED_INT16]                           # DA, Pad
    m = [0] * (METER_MODEL_LENGTH + 2)
    m[0], m[1] = meter_model_id(snapshot.spec.elements), METER_MODEL_LENGTH
    for name in _INT16_POINTS_NOT_MEASURED:
        m[_OFF[name]] = NOT_IMPLEMENTED_INT16
    e = snapshot.spec.elements
    amps, volts, power, pf = snapshot.amps_rms, snapshot.volts_rms, snapshot.power_w, snapshot.power_factor
    m[_OFF["A"]] = _int16(sum(amps), SF_A)
    m[_OFF["AphA"]] = _int16(amps[0], SF_A)
    m[_OFF["AphB"]] = _int16(amps[1], SF_A) if e > 1 else NOT_IMPLEMENTED_INT16
    m[_OFF["A_SF"]] = SF_A & 0xFFFF
    m[_OFF["PhV"]] = _int16(sum(volts) / e, SF_V)
    m[_OFF["PhVphA"]] = _int16(volts[0], SF_V)
    m[_OFF["PhVphB"]] = _int16(volts[1], SF_V) if e > 1 else NOT_IMPLEMENTED_INT16
    m[_OFF["V_SF"]] = SF_V & 0xFFFF
    m[_OFF["Hz"]] = _int16(snapshot.frequency_hz, SF_HZ)
    m[_OFF["Hz_SF"]] = SF_HZ & 0xFFFF
    m[_OFF["W"]] = _int16(snapshot.net_power_w, SF_W)
    m[_OFF["WphA"]] = _int16(power[0], SF_W)
    m[_OFF["WphB"]] = _int16(power[1], SF_W) if e > 1 else NOT_IMPLEMENTED_INT16
    m[_OFF["W_SF"]] = SF_W & 0xFFFF
    m[_OFF["PF"]] = _int16(100.0 * snapshot.net_power_factor, SF_PF)
    m[_OFF["PFphA"]] = _int16(100.0 * pf[0], SF_PF)
    m[_OFF["PFphB"]] = _int16(100.0 * pf[1], SF_PF) if e > 1 else NOT_IMPLEMENTED_INT16
    m[_OFF["PF_SF"]] = SF_PF & 0xFFFF
    m[_OFF["TotWhExp"]:_OFF["TotWhExp"] + 2] = _u32(snapshot.meter.reverse_quanta // QUANTA_PER_WH // 10 ** SF_WH)
    m[_OFF["TotWhImp"]:_OFF["TotWhImp"] + 2] = _u32(snapshot.meter.register_quanta // QUANTA_PER_WH // 10 ** SF_WH)
    m[_OFF["TotWh_SF"]] = SF_WH & 0xFFFF
    m[_OFF["Evt"]:_OFF["Evt"] + 2] = _u32(event_bits(snapshot))
    regs += m
    regs += [END_MODEL_ID, 0]
    return regs


class SunSpecServer:
    """A read-only Modbus TCP server of a live meter's SunSpec registers, and a sink of
    its stream.

    :meth:`update` keeps the newest snapshot (any thread); a read renders it once and
    always sees one whole snapshot's registers.
    """

    def __init__(self, host: str, port: int, *, serial: str = "MM000001", unit_id: int = UNIT_ID) -> None:
        if not (isinstance(unit_id, int) and 1 <= unit_id <= 247):
            raise ValueError(f"Modbus unit id must be 1…247, got {unit_id!r}")
        self.host, self.port, self.serial, self.unit_id = host, int(port), serial, unit_id
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._rendered: tuple[Snapshot | None, list[int] | None] = (None, None)
        self._modbus: Any = None           # the pymodbus server, once serving
        self._ended = False

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def registers(self) -> list[int] | None:
        """The registers of the newest snapshot (None before the first one)."""
        with self._lock:
            snap, (done, regs) = self._snapshot, self._rendered
            if snap is not None and snap is not done:
                regs = sunspec_registers(snap, serial=self.serial)
                self._rendered = (snap, regs)
            return regs

    async def _action(self, function_code, start_address, address, count, registers, set_values):
        from pymodbus.constants import ExcCodes  # noqa: PLC0415

        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION          # read-only: nothing is ever written
        regs = self.registers()
        if regs is None:
            return ExcCodes.DEVICE_BUSY
        registers[: len(regs)] = regs
        return None

    async def serve(self) -> None:
        """Serve until cancelled or :meth:`stop`."""
        from pymodbus.server import ModbusTcpServer  # noqa: PLC0415
        from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: PLC0415

        length = 2 + MODEL_1_LENGTH + 2 + METER_MODEL_LENGTH + 2 + 2
        device = SimDevice(
            id=self.unit_id,
            simdata=[SimData(BASE_ADDRESS, count=length, values=0, datatype=DataType.REGISTERS, readonly=True)],
            action=self._action,
        )
        try:
            self._modbus = ModbusTcpServer(device, address=(self.host, self.port), custom_pdu=_strict_requests(self.unit_id))
            await self._modbus.serve_forever()
        finally:
            self._ended = True

    @property
    def listening(self) -> bool:
        """Whether the server has bound its port."""
        return self._modbus is not None and getattr(self._modbus, "transport", None) is not None

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait (from another thread than the server's) until it listens: True, or False
        if it ended (its port taken, say) or ``timeout_s`` [s] passed."""
        deadline = time.monotonic() + timeout_s
        while not self.listening:
            if self._ended or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    async def stop(self) -> None:
        if self._modbus is not None:
            await self._modbus.shutdown()


def _strict_requests(unit_id: int) -> list:
    """Request classes for the server's decoder: a request to another unit id answered
    with exception 0B; reads whose count is outside 1…125 with exception 03 (pymodbus'
    own decoder drops them and answers a bare exception 01 for function code 0); every
    write with exception 01."""
    from pymodbus.constants import ExcCodes  # noqa: PLC0415
    from pymodbus.pdu import ExceptionResponse  # noqa: PLC0415
    from pymodbus.pdu.bit_message import (  # noqa: PLC0415
        ReadCoilsRequest, ReadDiscreteInputsRequest, WriteMultipleCoilsRequest, WriteSingleCoilRequest)
    from pymodbus.pdu.register_message import (  # noqa: PLC0415
        MaskWriteRegisterRequest, ReadHoldingRegistersRequest, ReadInputRegistersRequest,
        ReadWriteMultipleRegistersRequest, WriteMultipleRegistersRequest, WriteSingleRegisterRequest)

    def strict(base: type, refusal: Callable[[Any], Any], decode: Callable[[Any, bytes], None]) -> type:
        async def datastore_update(self, context, device_id):
            code = ExcCodes.GATEWAY_NO_RESPONSE if device_id != unit_id else refusal(self)
            if code is not None:
                return ExceptionResponse(self.function_code, code)
            return await base.datastore_update(self, context, device_id)

        return type(f"Strict{base.__name__}", (base,), {"decode": decode, "datastore_update": datastore_update})

    def read_decode(self, data: bytes) -> None:
        self.address, self.count = struct.unpack(">HH", data[:4])

    def lenient(base: type) -> Callable[[Any, bytes], None]:
        def decode(self, data: bytes) -> None:
            with contextlib.suppress(Exception):          # whatever a write says, it is refused
                base.decode(self, data)
        return decode

    def bad_count(request: Any) -> Any:
        return None if 1 <= request.count <= MAX_READ_COUNT else ExcCodes.ILLEGAL_VALUE

    classes = [strict(c, bad_count, read_decode) for c in (ReadHoldingRegistersRequest, ReadInputRegistersRequest)]
    classes += [strict(c, lambda r: None, c.decode) for c in (ReadCoilsRequest, ReadDiscreteInputsRequest)]
    classes += [strict(c, lambda r: ExcCodes.ILLEGAL_FUNCTION, lenient(c))
                for c in (WriteSingleCoilRequest, WriteSingleRegisterRequest, WriteMultipleCoilsRequest,
                          WriteMultipleRegistersRequest, MaskWriteRegisterRequest, ReadWriteMultipleRegistersRequest)]
    return classes
