"""Modbus TCP / SunSpec (issue 5): a pysunspec2 client scans our pymodbus server, finds
models 1 and 202 (201 on a single-element meter) and reads the meter's figures."""

from __future__ import annotations

import asyncio
import threading

import pytest

sunspec_client = pytest.importorskip("sunspec2.modbus.client")
sunspec_modbus = pytest.importorskip("sunspec2.modbus.modbus")

from minimeter.sources.installation import default_installation  # noqa: E402
from minimeter.meter import Meter  # noqa: E402
from minimeter.live.runner import LiveMeter  # noqa: E402
from minimeter.live.modbus import BASE_ADDRESS, SunSpecServer, sunspec_registers  # noqa: E402
from minimeter.live.stream import Snapshot  # noqa: E402
from minimeter.sources.service import Load  # noqa: E402

from .test_live_support import QUANTA_PER_WH, constant_installation, free_port  # noqa: E402


@pytest.fixture
def serve():
    """Start a :class:`SunSpecServer` for a live meter in a background event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    servers = []

    def start(live: LiveMeter) -> int:
        port = free_port()
        server = SunSpecServer("127.0.0.1", port)
        live.add_sink(server)
        asyncio.run_coroutine_threadsafe(server.serve(), loop)
        servers.append(server)
        assert server.wait_ready(10.0), "the Modbus server did not start"
        return port

    yield start
    for server in servers:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def _scan(port: int):
    device = sunspec_client.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=5)
    device.scan()
    return device


def test_sunspec_scan_finds_models_1_and_202_with_the_meters_figures(serve):
    # 1500 W on L1 and 700 W on L2 at 120 V, PF 1, for one hour: 2200 Wh, 2200 W,
    # CT1 12.5 A, CT2 5.83 A, 60 Hz.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    live.advance_to(3600.0)
    snap = live.publish()
    device = _scan(serve(live))
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
    port = serve(live)
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
    port = serve(live)
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


def test_single_element_meter_is_model_201(serve):
    inst = default_installation()
    from dataclasses import replace

    from minimeter.sources.service import Service

    inst = replace(inst, model="MO", service=Service("single", 120.0, 60.0),
                   loads=(Load(1200.0, 1.0, connection="L1", name="heater"),))
    live = LiveMeter(inst, speed=0)
    live.advance_to(60.0)
    live.publish()
    device = _scan(serve(live))
    assert 201 in device.models and 202 not in device.models
    assert device.models[201][0].W.cvalue == pytest.approx(1200.0, abs=10.0)


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
