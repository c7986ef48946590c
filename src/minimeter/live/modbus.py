"""Modbus TCP with the SunSpec information model (issues 5, 11, 14; SPEC §5, §7, §8,
S12.4, S14.3, S15.3), read-only.

The map is generated from pysunspec2's model definitions (:mod:`.sunspec_models`, made
by ``scripts/gen_sunspec_models.py``; a test keeps it current), never offsets by hand.
The chain from register 40000: ``SunS``, common model 1, the meter models, the end model.
By default a single-element meter serves 201 (int16 + scale factors) then 211 (float32);
a two-element (split-phase) meter 202 then 212; any of 201–204 / 211–214 may be chosen
(``models=``, e.g. ``(203, 213)`` for clients that only probe 201/211/203/213, as evcc's
``sunspec-meter`` template does). A client reading the chain in order (evcc, pysunspec2,
the Home Assistant SunSpec integration) finds the int+SF model first.

Every point is measured or "not implemented" as SunSpec defines it — int16 and scale
factors 0x8000, acc32 0, float32 NaN (0x7FC00000), bitfield32 0xFFFFFFFF — nothing reads
0 that is not measured. Measured: ``A``/``Aph*``, ``PhV``/``PhVph*`` (L–N), ``Hz``,
``W``/``Wph*``, ``PF``/``PFph*`` (true PF, signed like P: percent in the int models
(units ``Pct``), a ratio in the float ones (units ``PF``)), ``TotWhImp`` (the register,
whole Wh), ``TotWhExp`` (energy of reverse cycles, not registered), ``Evt``; and, when the
snapshot carries SPEC §12's quantities, ``VA``/``VAph*``, ``VAR``/``VARph*`` (Q1,
fundamental), ``TotWhImpPh*``/``TotWhExpPh*`` (per element), ``TotVAhImp`` and the
four quadrants ``TotVArhImpQ1``, ``TotVArhImpQ2``, ``TotVArhExpQ3``, ``TotVArhExpQ4``
(whole Wh / VAh / varh, floored). A scale factor is "not implemented" when no point
using it is measured. Line-to-line voltages and phase C (B too on one element) are not.

Scale factors (value = register × 10^SF) are fixed and chosen so the largest meter at
its limits fits an int16: 440 A (110 % of 400 A) × 2 elements × 138 V = 121 440 W.

=============  ====  ==============================================
point          SF    range
=============  ====  ==============================================
A, Aph*        −1    ±3276.7 A (2 × 440 A = 880 A total)
PhV*           −1    ±3276.7 V
Hz             −2    ±327.67 Hz
W, VA, VAR*    +1    ±327 670 W / VA / var
PF*            −1    ±100.0 % (Pct, signed)
TotWh*, VAh,    0    Wh / VAh / varh, acc32 (rolls over after 4.29 GWh)
varh
=============  ====  ==============================================

Malformed and refused requests (SPEC S15.3) get the Modbus exception codes: a read of
count 0 or more than 125 registers → 03 (illegal data value); any write (function codes
5, 6, 15, 16, 22, 23) → 01 (illegal function: this device has nothing writable); an
address outside the map → 02. Only the configured unit ids answer; a request to another
gets exception 0B (gateway target device failed to respond) — *decision*: an immediate
answer rather than a client's timeout, as a Modbus TCP gateway gives for a device it
does not have.

Many meters (a fleet, S14.3): one :class:`SunSpecServer` serves up to 247 devices on one
port, one per unit id, each a :class:`SunSpecDevice` (a sink of its own meter's stream)::

    devices = {uid: SunSpecDevice(serial=f"MM{uid:06d}") for uid in range(1, 248)}
    server = SunSpecServer("0.0.0.0", 5020, devices=devices)
    lives[uid].add_sink(devices[uid])                  # each meter feeds its device
    await server.serve()

More than 247 meters: one server per port. ``SunSpecServer(host, port)`` alone is the
single meter of ``minimeter run`` (unit id 1), itself a sink.

``Evt`` bits: 2 power failure (and interruptions), 3 under-voltage (and dips), 4 low PF,
5 over-current, 6 over-voltage (and swells); OEM bits: 16 reverse phase (the red LED), 17
frequency out of range, 18 clipped input.
"""

from __future__ import annotations

import contextlib
import math
import struct
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from minimeter.errors import MinimeterError
from minimeter.meter import EventKind
from minimeter.meter.register import QUANTA_PER_WH
from minimeter.live.stream import Snapshot
from minimeter.live.sunspec_models import MODELS, SunSpecModel, SunSpecPoint

BASE_ADDRESS = 40000
UNIT_ID = 1
MAX_READ_COUNT = 125              # registers per read (Modbus application protocol, 6.3)
NOT_IMPLEMENTED_INT16 = 0x8000
NOT_IMPLEMENTED_FLOAT32 = 0x7FC00000
NOT_IMPLEMENTED_BITFIELD32 = 0xFFFFFFFF
END_MODEL_ID = 0xFFFF
METER_MODELS = (201, 202, 203, 204, 211, 212, 213, 214)
_PHASES = {201: 1, 202: 2, 203: 3, 204: 3, 211: 1, 212: 2, 213: 3, 214: 3}   # phases a model can carry

SCALE_FACTORS = {"A_SF": -1, "V_SF": -1, "Hz_SF": -2, "W_SF": 1, "VA_SF": 1, "VAR_SF": 1, "PF_SF": -1,
                 "TotWh_SF": 0, "TotVAh_SF": 0, "TotVArh_SF": 0}

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
    EventKind.CLIPPED: EVT_OEM_CLIPPED, EventKind.INTERRUPTION: EVT_POWER_FAILURE,
    EventKind.DIP: EVT_UNDER_VOLTAGE, EventKind.SWELL: EVT_OVER_VOLTAGE,
}   # reverse power shows as the reverse phase LED's bit


class SunSpecError(MinimeterError, ValueError):
    """A SunSpec server or map that cannot be made (unit id, model choice)."""


def event_bits(snapshot: Snapshot) -> int:
    """The SunSpec ``Evt`` bitfield for the active events and the reverse phase LED."""
    bits = 0
    for kind, _element in snapshot.active_events:
        if kind in _EVENT_BITS:
            bits |= 1 << _EVENT_BITS[kind]
    if snapshot.meter.reverse_led:
        bits |= 1 << EVT_OEM_REVERSE_PHASE
    return bits


def meter_models(elements: int, models: Sequence[int] | None = None) -> tuple[int, ...]:
    """The meter models to serve: by default (201, 211) for one element, (202, 212) for
    two; a choice is checked against the table and the element count."""
    chosen = tuple(models) if models is not None else ((201, 211) if elements == 1 else (202, 212))
    for mid in chosen:
        if mid not in METER_MODELS:
            raise SunSpecError(f"SunSpec meter model {mid!r} is not one of {', '.join(map(str, METER_MODELS))}")
        if _PHASES[mid] < elements:
            raise SunSpecError(f"SunSpec model {mid} carries {_PHASES[mid]} phase(s); the meter has {elements} elements")
    if not chosen or len(set(chosen)) != len(chosen):
        raise SunSpecError(f"SunSpec meter models {chosen!r}: give one or more distinct models")
    return chosen


def _per_phase(values: dict, name: str, xs: Sequence[float], suffix: str = "ph{}") -> None:
    for k, phase in enumerate("ABC"):
        values[name + suffix.format(phase)] = xs[k] if k < len(xs) else None


def point_values(snapshot: Snapshot) -> dict[str, float | int | None]:
    """Each measured point in engineering units (A, V, Hz, W, VA, var, PF ratio, Wh, VAh,
    varh; ``Evt`` as bits); a point absent or None is not measured."""
    s, v = snapshot, {}
    v["TotWhImp"] = s.meter.register_quanta // QUANTA_PER_WH
    v["TotWhExp"] = s.meter.reverse_quanta // QUANTA_PER_WH
    v["Evt"] = event_bits(s)
    r = s.registers
    if r is not None:
        _per_phase(v, "TotWhImp", [math.floor(x) for x in r.import_wh], "Ph{}")
        _per_phase(v, "TotWhExp", [math.floor(x) for x in r.export_wh], "Ph{}")
        v["TotVAhImp"] = math.floor(r.vah)
        for name, varh in zip(("TotVArhImpQ1", "TotVArhImpQ2", "TotVArhExpQ3", "TotVArhExpQ4"), r.varh):
            v[name] = math.floor(varh)
    if s.measured:                          # a start-up snapshot: the registers only
        _line_values(s, v)
    return {name: (x if x is None or math.isfinite(x) else None) for name, x in v.items()}


def _line_values(s: Snapshot, v: dict) -> None:
    v["A"] = sum(s.amps_rms)
    _per_phase(v, "A", s.amps_rms)
    v["PhV"] = sum(s.volts_rms) / len(s.volts_rms)
    _per_phase(v, "PhV", s.volts_rms)
    v["Hz"] = s.frequency_hz
    v["W"] = s.net_power_w
    _per_phase(v, "W", s.power_w)
    v["PF"] = s.net_power_factor
    _per_phase(v, "PF", s.power_factor)
    if s.apparent_power_va:
        v["VA"] = sum(s.apparent_power_va)
        _per_phase(v, "VA", s.apparent_power_va)
    if s.reactive_power_var:
        v["VAR"] = sum(s.reactive_power_var)
        _per_phase(v, "VAR", s.reactive_power_var)


def _encode(point: SunSpecPoint, value: Any) -> list[int]:
    """One point's registers; ``value`` None → SunSpec's "not implemented"."""
    t = point.type
    if t in ("int16", "sunssf"):
        if value is None:
            return [NOT_IMPLEMENTED_INT16]
        sf = SCALE_FACTORS[point.sf] if t == "int16" else 0
        return [max(-32767, min(32767, int(round(value / 10.0 ** sf)))) & 0xFFFF]
    if t == "acc32":
        raw = 0 if value is None else int(value // 10 ** SCALE_FACTORS[point.sf]) & 0xFFFFFFFF
        return [raw >> 16, raw & 0xFFFF]
    if t == "float32":
        raw = NOT_IMPLEMENTED_FLOAT32 if value is None else struct.unpack(">I", struct.pack(">f", value))[0]
        return [raw >> 16, raw & 0xFFFF]
    if t == "bitfield32":
        raw = NOT_IMPLEMENTED_BITFIELD32 if value is None else int(value) & 0xFFFFFFFF
        return [raw >> 16, raw & 0xFFFF]
    if t == "string":
        data = str(value or "").encode("ascii", "replace")[: 2 * point.size].ljust(2 * point.size, b"\0")
        return [(data[2 * i] << 8) | data[2 * i + 1] for i in range(point.size)]
    if t == "uint16":
        return [0xFFFF if value is None else int(value) & 0xFFFF]
    if t == "pad":
        return [NOT_IMPLEMENTED_INT16]
    raise SunSpecError(f"SunSpec point {point.name}: type {t!r} is not served")


def _model_registers(model: SunSpecModel, values: dict) -> list[int]:
    """A model's registers (ID, L, then its points) from point values in engineering units
    (a power factor in a ``Pct`` point ×100)."""
    used_sf = {p.sf for p in model.points if p.sf and values.get(p.name) is not None}
    regs: list[int] = []
    for p in model.points:
        if p.name in ("ID", "L"):
            value = model.id if p.name == "ID" else model.length
        elif p.type == "sunssf":
            value = SCALE_FACTORS.get(p.name) if p.name in used_sf else None
        else:
            value = values.get(p.name)
            if value is not None and p.units == "Pct":
                value = 100.0 * value
        regs += _encode(p, value)
    return regs


def sunspec_registers(snapshot: Snapshot, *, serial: str = "MM000001", version: str = "0.1.0",
                      models: Sequence[int] | None = None, unit_id: int = UNIT_ID) -> list[int]:
    """The holding registers from :data:`BASE_ADDRESS` on, for one snapshot."""
    common = {"Mn": "Leviton", "Md": f"Mini Meter {snapshot.spec.model_number}", "Opt": snapshot.spec.model_number,
              "Vr": version, "SN": serial, "DA": unit_id}
    regs = [0x5375, 0x6E53] + _model_registers(MODELS[1], common)            # 'SunS', model 1
    values = point_values(snapshot)
    for mid in meter_models(snapshot.spec.elements, models):
        regs += _model_registers(MODELS[mid], values)
    return regs + [END_MODEL_ID, 0]


def map_length(models: Sequence[int]) -> int:
    """Registers from 40000 to the end model's L, inclusive."""
    return 2 + sum(MODELS[m].length + 2 for m in (1, *models)) + 2


class SunSpecDevice:
    """One meter's SunSpec registers at one unit id: a sink of that meter's stream.

    :meth:`update` keeps the newest snapshot (any thread); :meth:`registers` renders it
    once, so a read always sees one whole snapshot's registers.
    """

    def __init__(self, *, serial: str = "MM000001", models: Sequence[int] | None = None,
                 elements: int | None = None) -> None:
        self.serial = serial
        self.models = None if models is None else tuple(models)
        if self.models is not None:               # a bad choice fails here, not at a client's read
            meter_models(elements or 1, self.models)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._rendered: tuple[Any, list[int] | None] = (None, None)

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def served_models(self, elements: int) -> tuple[int, ...]:
        return meter_models(elements, self.models)

    def registers(self, unit_id: int = UNIT_ID) -> list[int] | None:
        """The registers of the newest snapshot (None before the first one)."""
        with self._lock:
            snap, (done, regs) = self._snapshot, self._rendered
            if snap is not None and done != (snap, unit_id):
                regs = sunspec_registers(snap, serial=self.serial, models=self.models, unit_id=unit_id)
                self._rendered = ((snap, unit_id), regs)
            return regs


class SunSpecServer:
    """A read-only Modbus TCP server of SunSpec devices, one per unit id.

    ``SunSpecServer(host, port)`` serves one meter at ``unit_id`` (1) and is itself the
    sink of its stream; ``SunSpecServer(host, port, devices={unit_id: SunSpecDevice, …})``
    serves many (1–247 on one port), each device the sink of its own meter.
    """

    def __init__(self, host: str, port: int, *, serial: str = "MM000001", unit_id: int = UNIT_ID,
                 models: Sequence[int] | None = None, elements: int | None = None,
                 devices: Mapping[int, SunSpecDevice] | None = None) -> None:
        if devices is None:
            _check_unit_id(unit_id)
            devices = {unit_id: SunSpecDevice(serial=serial, models=models, elements=elements)}
        if not devices:
            raise SunSpecError("a SunSpec server needs at least one device")
        for uid in devices:
            _check_unit_id(uid)
        self.host, self.port = host, int(port)
        self.devices: dict[int, SunSpecDevice] = dict(devices)
        self.unit_id = next(iter(self.devices))
        self.serial = self.devices[self.unit_id].serial
        self._modbus: Any = None           # the pymodbus server, once serving
        self._ended = False

    def update(self, snapshot: Snapshot) -> None:
        """(Single meter) keep the newest snapshot of the meter at :attr:`unit_id`."""
        self.devices[self.unit_id].update(snapshot)

    def registers(self, unit_id: int | None = None) -> list[int] | None:
        """The registers a device serves now (None before its first snapshot)."""
        uid = self.unit_id if unit_id is None else unit_id
        return self.devices[uid].registers(uid)

    def _action_for(self, unit_id: int):
        device = self.devices[unit_id]

        async def action(function_code, start_address, address, count, registers, set_values):
            from pymodbus.constants import ExcCodes  # noqa: PLC0415

            if set_values is not None:
                return ExcCodes.ILLEGAL_FUNCTION          # read-only: nothing is ever written
            try:
                regs = device.registers(unit_id)
            except SunSpecError:
                return ExcCodes.DEVICE_FAILURE            # a model choice the meter does not fit
            if regs is None:
                return ExcCodes.DEVICE_BUSY
            if address - BASE_ADDRESS + count > len(regs):
                return ExcCodes.ILLEGAL_ADDRESS           # beyond this device's end model
            registers[: len(regs)] = regs
            return None

        return action

    async def serve(self) -> None:
        """Serve until cancelled or :meth:`stop`."""
        from pymodbus.server import ModbusTcpServer  # noqa: PLC0415
        from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: PLC0415

        sim = [SimDevice(id=uid, simdata=[SimData(BASE_ADDRESS, count=_served_length(device), values=0,
                                                  datatype=DataType.REGISTERS, readonly=True)],
                         action=self._action_for(uid))
               for uid, device in self.devices.items()]
        try:
            self._modbus = ModbusTcpServer(sim if len(sim) > 1 else sim[0], address=(self.host, self.port),
                                           custom_pdu=_strict_requests(frozenset(self.devices)))
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


def _served_length(device: SunSpecDevice) -> int:
    """The register block a device needs (a default chain: one int+SF and one float model)."""
    return map_length(device.models if device.models is not None else (202, 212))


def _check_unit_id(unit_id: Any) -> None:
    if not (isinstance(unit_id, int) and not isinstance(unit_id, bool) and 1 <= unit_id <= 247):
        raise SunSpecError(f"Modbus unit id must be 1…247, got {unit_id!r}")


def _strict_requests(unit_ids: frozenset[int]) -> list:
    """Request classes for the server's decoder: a request to a unit id not served answered
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
            code = ExcCodes.GATEWAY_NO_RESPONSE if device_id not in unit_ids else refusal(self)
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
