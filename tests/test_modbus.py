"""Modbus TCP / SunSpec (issues 5, 11, 14; SPEC S12.4, S14.3, S15.3): a pysunspec2 client
scans our pymodbus server: models 1, 202 and 212 (201 and 211 on one element) in the
chain; every point of the meter models either the meter's figure or "not implemented" —
never a 0 that was not measured; evcc's probe order; many meters on one port, one per
unit id."""

from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import replace

import pytest

sunspec_client = pytest.importorskip("sunspec2.modbus.client")
sunspec_modbus = pytest.importorskip("sunspec2.modbus.modbus")
pymodbus_client = pytest.importorskip("pymodbus.client")

from minimeter.sources.installation import default_installation  # noqa: E402
from minimeter.meter import Meter  # noqa: E402
from minimeter.live.runner import LiveMeter  # noqa: E402
from minimeter.live.modbus import BASE_ADDRESS, SunSpecDevice, SunSpecError, SunSpecServer, sunspec_registers  # noqa: E402
from minimeter.live.stream import Snapshot  # noqa: E402
from minimeter.sources.service import Load, Service  # noqa: E402

from .registers_support import registers, without_beyond_kwh  # noqa: E402
from .test_live_support import QUANTA_PER_WH, constant_installation, free_port  # noqa: E402


@pytest.fixture
def serve():
    """Start a :class:`SunSpecServer` (``**kwargs``) in a background event loop, ``live``'s
    sink when given; returns the server (its ``port``)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servers = []

    def start(live: LiveMeter | None = None, **kwargs) -> SunSpecServer:
        server = SunSpecServer("127.0.0.1", free_port(), **kwargs)
        if live is not None:
            live.add_sink(server)
        asyncio.run_coroutine_threadsafe(server.serve(), loop)
        servers.append(server)
        assert server.wait_ready(10.0), "the Modbus server did not start"
        return server

    yield start
    for server in servers:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def _scan(port: int, unit: int = 1):
    device = sunspec_client.SunSpecModbusClientDeviceTCP(slave_id=unit, ipaddr="127.0.0.1", ipport=port, timeout=5)
    device.scan()
    return device


def test_sunspec_scan_finds_models_1_and_202_with_the_meters_figures(serve):
    # 1500 W on L1 and 700 W on L2 at 120 V, PF 1, for one hour: 2200 Wh, 2200 W,
    # CT1 12.5 A, CT2 5.83 A, 60 Hz.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    live.advance_to(3600.0)
    snap = live.publish()
    device = _scan(serve(live).port)
    assert 1 in device.models and 202 in device.models
    common = device.models[1][0]
    assert common.Mn.value == "Leviton"
    assert "7B" in common.Md.value
    meter = device.models[202][0]
    assert meter.TotWhImp.cvalue == pytest.approx(2200.0, abs=10.0)          # within one Kh = 10 pulse
    assert meter.TotWhImp.cvalue == snap.meter.register_quanta // QUANTA_PER_WH             # the register, floored to Wh
    assert meter.W.cvalue == pytest.approx(2200.0, abs=10.0)                  # W_SF = 1: 10 W steps
    assert meter.W.cvalue == pytest.approx(snap.net_power_w, abs=5.0)
    assert meter.WphA.cvalue == pytest.approx(1500.0, abs=5.0)
    assert meter.WphB.cvalue == pytest.approx(700.0, abs=5.0)
    assert meter.PhVphA.cvalue == pytest.approx(120.0, abs=0.05)
    assert meter.PhVphB.cvalue == pytest.approx(120.0, abs=0.05)
    assert meter.AphA.cvalue == pytest.approx(12.5, abs=0.05)
    assert meter.AphB.cvalue == pytest.approx(700 / 120, abs=0.05)
    assert meter.Hz.cvalue == pytest.approx(60.0, abs=0.005)
    assert meter.PF.cvalue == pytest.approx(100.0, abs=0.05)
    assert meter.Evt.value == 0


def test_sunspec_evt_reverse_phase_oem_bit_and_updates(serve):
    # 200 W on L1, 1000 W on L2, CT2 reversed: net −800 W → reverse LED → OEM bit 16.
    live = LiveMeter(constant_installation((200.0, "L1"), (1000.0, "L2")), speed=0)
    live.advance_to(60.0)
    live.publish()
    port = serve(live).port
    live.inject_fault("ct-reversed", ct="CT2")
    live.advance_to(120.0)
    live.publish()
    meter = _scan(port).models[202][0]
    assert meter.Evt.value & (1 << 16)
    assert meter.W.cvalue == pytest.approx(-800.0, abs=10.0)
    # the register kept the first minute only: 1200 W × 60 s = 20 Wh
    assert meter.TotWhImp.cvalue == pytest.approx(20, abs=1)            # Wh, floored


def test_sunspec_registers_are_read_only(serve):
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    live.advance_to(360.0)                                     # 100 Wh
    live.publish()
    port = serve(live).port
    device = _scan(port)
    meter = device.models[202][0]
    before = meter.TotWhImp.cvalue
    device.connect()
    try:
        with pytest.raises(sunspec_modbus.ModbusClientException, match="exception: 1"):   # illegal function (S15.3)
            device.write(meter.model_addr + 46, b"\x00\x00\x00\x00")   # TotWhImp ← 0
    finally:
        device.disconnect()
    assert _scan(port).models[202][0].TotWhImp.cvalue == before == pytest.approx(100, abs=1)


def test_scale_factors_fit_440_a_times_2_times_138_v():
    # The largest meter at its limits: 400 A CTs at 110 % = 440 A on both elements at 138 V:
    # W = 2 × 440 × 138 = 121 440 W → 12 144 at W_SF = 1; A = 880 A → 8 800 at A_SF = −1.
    meter = Meter.for_model("7B", ct_rating="400A")
    snap = Snapshot(
        seq=1, spec=meter.spec, meter=meter.state(), cycle_index=0, time_s=0.0, speed=0.0,
        power_w=(440 * 138.0, 440 * 138.0), volts_rms=(138.0, 138.0), amps_rms=(440.0, 440.0),
        power_factor=(1.0, 1.0), frequency_hz=60.0,
    )
    regs = sunspec_registers(snap)
    meter = regs[2 + 2 + 66:]                  # after 'SunS' and model 1
    assert meter[0] == 202 and meter[1] == 105
    assert meter[18] == 12144                  # W
    assert meter[19] == meter[20] == 6072      # WphA, WphB
    assert meter[2] == 8800                    # A
    assert meter[8] == 1380                    # PhVphA at V_SF = −1
    assert BASE_ADDRESS == 40000


def _split_phase_snapshot(**beyond):
    # 1500 W on L1 and 700 W on L2 at 120 V, PF 1, for one hour: 2200 Wh registered.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    live.advance_to(3600.0)
    return replace(without_beyond_kwh(live.publish()), **beyond)


BEYOND = dict(
    reactive_power_var=(600.0, -200.0), apparent_power_va=(1700.0, 750.0), displacement_pf=(0.93, 0.96),
    registers=registers((1500.4, 700.9), (0.0, 12.7), (1234.9, 10.0, 0.0, 5.5), 2345.6, 2200.0, 2400.0, 900.0),
)


def _expected(snap, pf_scale: float) -> dict:
    """Every measured point, computed from the load figures (not from the map's code)."""
    register_wh = snap.meter.register_quanta // (1 << 40)           # whole Wh (the register's quantum 2⁻⁴⁰ Wh)
    return {
        "A": 12.5 + 700 / 120, "AphA": 12.5, "AphB": 700 / 120, "PhV": 120.0, "PhVphA": 120.0, "PhVphB": 120.0,
        "Hz": 60.0, "W": 2200.0, "WphA": 1500.0, "WphB": 700.0, "PF": pf_scale, "PFphA": pf_scale, "PFphB": pf_scale,
        "VA": 2450.0, "VAphA": 1700.0, "VAphB": 750.0, "VAR": 400.0, "VARphA": 600.0, "VARphB": -200.0,
        "TotWhImp": register_wh, "TotWhExp": 0, "TotWhImpPhA": 1500, "TotWhImpPhB": 700,
        "TotWhExpPhA": 0, "TotWhExpPhB": 12, "TotVAhImp": 2345, "TotVArhImpQ1": 1234, "TotVArhImpQ2": 10,
        "TotVArhExpQ3": 0, "TotVArhExpQ4": 5, "Evt": 0,
    }


TOLERANCE = {"A": 0.05, "V": 0.05, "Hz": 0.005, "W": 5.0, "VA": 5.0, "var": 5.0, "Pct": 0.05}   # half a step at each SF


def _check_every_point(model, expected: dict) -> None:
    for name, point in model.points.items():
        if name in ("ID", "L") or point.pdef["type"] == "sunssf":
            continue
        want = expected.get(name)
        # acc32 0 is SunSpec's "not implemented": a measured 0 Wh reads None in the int models
        if want is None or (want == 0 and point.pdef["type"] == "acc32"):
            assert point.cvalue is None, f"{model.gname}.{name} reads {point.cvalue}, not 'not implemented'"
            continue
        tol = TOLERANCE.get(point.pdef.get("units"), 0.0) if point.pdef["type"] == "int16" else 1e-6 * abs(want)
        assert point.cvalue == pytest.approx(want, abs=tol + 1e-9), f"{model.gname}.{name}"


def test_s12_4_pysunspec2_reads_every_point_of_202_and_212_measured_or_not_implemented(serve):
    snap = _split_phase_snapshot(**BEYOND)
    server = serve()
    server.update(snap)
    device = _scan(server.port)
    assert [m for m in device.models if isinstance(m, int)] == [1, 202, 212]       # int+SF first, float beside it
    assert device.models[1][0].DA.value == 1
    _check_every_point(device.models[202][0], _expected(snap, 100.0))             # PF in percent (Pct)
    _check_every_point(device.models[212][0], _expected(snap, 1.0))               # PF a ratio (float model)
    m202 = device.models[202][0]
    assert (m202.VA_SF.value, m202.VAR_SF.value, m202.TotVAh_SF.value, m202.TotVArh_SF.value) == (1, 1, 0, 0)
    assert m202.TotWhImp.cvalue == pytest.approx(2200, abs=10)                      # within one Kh = 10 pulse


def test_s12_4_without_beyond_kwh_quantities_va_and_var_are_not_implemented_not_zero(serve):
    snap = _split_phase_snapshot()
    server = serve()
    server.update(snap)
    m202, m212 = (_scan(server.port).models[m][0] for m in (202, 212))
    for model in (m202, m212):
        for name in ("VA", "VAphA", "VAphB", "VAR", "VARphA", "VARphB", "TotVAhImp", "TotVArhImpQ1",
                     "TotWhImpPhA", "AphC", "PhVphC", "WphC"):
            assert getattr(model, name).cvalue is None, name
    assert m202.VA_SF.value is None and m202.VAR_SF.value is None                    # unused scale factors: n/a
    assert m202.W.cvalue == pytest.approx(2200.0, abs=5.0) and m212.W.cvalue == pytest.approx(2200.0, rel=1e-6)


def test_before_the_first_measured_cycle_only_the_register_is_served(serve):
    # A start-up snapshot (nothing fed): no 0 V, 0 A, 0 W — "not implemented" until measured.
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    server = serve()
    server.update(live.publish())
    m202 = _scan(server.port).models[202][0]
    for name in ("A", "AphA", "PhV", "PhVphA", "Hz", "W", "WphA", "PF"):
        assert getattr(m202, name).cvalue is None, name
    assert m202.Evt.value == 0


def test_single_element_meter_serves_201_then_211(serve):
    inst = replace(default_installation(), model="MO", service=Service("single", 120.0, 60.0),
                   loads=(Load(1200.0, 1.0, connection="L1", name="heater"),))
    live = LiveMeter(inst, speed=0)
    live.advance_to(60.0)                                            # 20 Wh
    server = serve()
    server.update(live.publish())
    device = _scan(server.port)
    assert [m for m in device.models if isinstance(m, int)] == [1, 201, 211]
    for model, pf in ((device.models[201][0], 100.0), (device.models[211][0], 1.0)):
        assert model.W.cvalue == pytest.approx(1200.0, abs=5.0)
        assert model.AphA.cvalue == pytest.approx(10.0, abs=0.05)
        assert model.PF.cvalue == pytest.approx(pf, rel=1e-3)
        assert model.AphB.cvalue is None and model.WphB.cvalue is None      # no second element
        assert model.TotWhImp.cvalue == pytest.approx(20, abs=1)


EVCC_PROBE = (201, 211, 203, 213)      # evcc's sunspec-meter template: the first of these models the device has


def _evcc_value(device, point: str):
    for model_id in EVCC_PROBE:
        if model_id in device.models:
            return model_id, getattr(device.models[model_id][0], point).cvalue
    return None, None


def test_evcc_probe_order_finds_the_int_model_first(serve):
    # evcc reads power from 201:W, 211:W, 203:W, 213:W in that order and energy from
    # …:TotWhImp × 0.001. It does not probe 202/212: a split-phase meter is served to it as
    # 203 + 213 (phase C not implemented).
    snap = _split_phase_snapshot(**BEYOND)
    default = serve()
    default.update(snap)
    assert _evcc_value(_scan(default.port), "W") == (None, None)        # 202/212: not in evcc's list
    for_evcc = serve(models=(203, 213))
    for_evcc.update(snap)
    device = _scan(for_evcc.port)
    model_id, watts = _evcc_value(device, "W")
    assert model_id == 203 and watts == pytest.approx(2200.0, abs=5.0)
    assert _evcc_value(device, "TotWhImp")[1] * 0.001 == pytest.approx(2.2, abs=0.010)     # kWh
    assert device.models[213][0].WphC.cvalue is None and device.models[203][0].AphC.cvalue is None


def test_s14_3_one_port_serves_many_meters_one_per_unit_id(serve):
    # Three meters at unit ids 1, 7 and 247 on one port: each answers with its own figures,
    # model 1 says its own address (DA) and serial; unit id 2 is not served.
    devices = {uid: SunSpecDevice(serial=f"MM{uid:06d}") for uid in (1, 7, 247)}
    watts = {1: 500.0, 7: 1000.0, 247: 2000.0}
    for uid, device in devices.items():
        live = LiveMeter(constant_installation((watts[uid], "L1")), speed=0)
        live.add_sink(device)
        live.advance_to(60.0)
        live.publish()
    server = serve(devices=devices)
    for uid in devices:
        scanned = _scan(server.port, uid)
        assert scanned.models[1][0].DA.value == uid and scanned.models[1][0].SN.value == f"MM{uid:06d}"
        assert scanned.models[202][0].W.cvalue == pytest.approx(watts[uid], abs=5.0)
    client = pymodbus_client.ModbusTcpClient("127.0.0.1", port=server.port, timeout=3, retries=0)
    assert client.connect()
    try:
        answer = client.read_holding_registers(BASE_ADDRESS, count=2, device_id=2)
        assert answer.isError() and answer.exception_code == 0x0B          # gateway target failed to respond
        assert client.read_holding_registers(BASE_ADDRESS, count=2, device_id=247).registers == [0x5375, 0x6E53]
    finally:
        client.close()


def test_bad_model_choices_and_unit_ids_are_clear_errors():
    with pytest.raises(SunSpecError, match=r"model 201 carries 1 phase\(s\); the meter has 2 elements"):
        SunSpecServer("127.0.0.1", 5020, models=(201,), elements=2)
    with pytest.raises(SunSpecError, match="not one of"):
        SunSpecDevice(models=(101,))
    with pytest.raises(SunSpecError, match="1…247"):
        SunSpecServer("127.0.0.1", 5020, devices={0: SunSpecDevice()})


def test_s12_4_pysunspec2_reads_the_live_meters_va_var_pf_and_energy_points(serve):
    # 1500 W on L1 and 700 W on L2 at PF 0.8 lagging for one hour, closed form:
    # S = P / 0.8 = 1875 + 875 = 2750 VA, Q1 = P·tan(acos 0.8) = 0.75 P = 1125 + 525 = 1650 var
    # (quadrant I); energies 1500 / 700 Wh imported, 1650 varh, 2750 VAh.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2"), pf=0.8), speed=0)
    live.advance_to(3600.0)
    snap = live.publish()
    r = snap.registers
    device = _scan(serve(live).port)
    m202, m212 = device.models[202][0], device.models[212][0]
    for model, pf in ((m202, 80.0), (m212, 0.8)):
        assert model.VA.cvalue == pytest.approx(2750.0, abs=5.0) and model.VAphA.cvalue == pytest.approx(1875.0, abs=5.0)
        assert model.VAR.cvalue == pytest.approx(1650.0, abs=5.0) and model.VARphB.cvalue == pytest.approx(525.0, abs=5.0)
        assert model.PF.cvalue == pytest.approx(pf, rel=1e-3) and model.PFphA.cvalue == pytest.approx(pf, rel=1e-3)
        assert model.TotVArhImpQ1.cvalue == pytest.approx(1650, abs=1) == math.floor(r.varh[0])
        assert model.TotVAhImp.cvalue == pytest.approx(2750, abs=1) == math.floor(r.vah)
        assert model.TotWhImpPhA.cvalue == pytest.approx(1500, abs=1) == math.floor(r.import_wh[0])
        assert model.TotWhImpPhB.cvalue == pytest.approx(700, abs=1) == math.floor(r.import_wh[1])
        assert model.VA.cvalue == pytest.approx(sum(snap.apparent_power_va), abs=5.0)       # the API's figures
        assert model.VAR.cvalue == pytest.approx(sum(snap.reactive_power_var), abs=5.0)
    assert m202.TotVArhImpQ2.cvalue is None and m212.TotVArhImpQ2.cvalue == 0.0       # acc32 0 is "not implemented"


def test_run_serves_the_models_evcc_probes_when_asked():
    # `minimeter run --sunspec-models 203,213`: the CLI side of the evcc choice above; the
    # built-in household draws from its first cycle, so 203:W reads a measured power.
    from .test_live_support import start_run  # noqa: PLC0415

    port = free_port()
    proc = start_run("--no-store", "--speed", "60", "--hours", "0", "--port", "0", "--modbus-port", str(port),
                     "--sunspec-models", "203,213")
    try:
        device = None
        for _ in range(100):
            try:
                device = _scan(port)
                break
            except Exception:        # not listening yet
                if proc.poll() is not None:
                    pytest.fail(proc.stdout.read())
                threading.Event().wait(0.2)
        assert device is not None and set(device.models) >= {1, 203, 213} and 202 not in device.models
        assert _evcc_value(device, "W")[0] == 203
    finally:
        proc.terminate()
        proc.wait(timeout=10)
