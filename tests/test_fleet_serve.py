"""A live fleet (SPEC S14.3): many meters in one process, each reachable as a networked
meter — SunSpec by Modbus unit id (port + i // 247, unit i % 247 + 1), an MQTT device
(Home Assistant discovery), a web panel listed on the index, a `meter` label in /metrics —
and each persisted in its own store.

250 meters (two Modbus ports), run a few seconds at 20×."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request

import pytest

from minimeter.formats.fleet import parse_fleet
from minimeter.fleet.serve import FleetServer, ServeOptions, modbus_address
from minimeter.live.store import Store

from .test_live_support import QUANTA_PER_WH, free_port
from .test_mqtt import Subscriber

amqtt_broker = pytest.importorskip("amqtt.broker")

sunspec_client = pytest.importorskip("sunspec2.modbus.client")

METERS = 250
FLEET = f"""
name = "block"
seed = 11
start = "18h"
[population]
meters = {METERS}
models = {{ "7B" = 0.8, "6S" = 0.2 }}
"""


def test_s14_3_modbus_port_and_unit_id_of_a_meter():
    """Meter i: port 5020 + i // 247, unit id i % 247 + 1 (999 = 4 × 247 + 11)."""
    addresses = [modbus_address(i, 5020) for i in (0, 246, 247, 493, 494, 999)]
    assert [(a.port, a.unit_id) for a in addresses] == \
        [(5020, 1), (5020, 247), (5021, 1), (5021, 247), (5022, 1), (5024, 12)]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def served(tmp_path_factory, broker_url):
    broker = broker_url
    db_dir = tmp_path_factory.mktemp("fleet-db")
    options = ServeOptions(port=free_port(), modbus_port=free_port(), mqtt_url=f"{broker}/minimeter",
                           mqtt_interval_s=1.0, speed=20.0, tick_s=1.0, db_dir=str(db_dir))
    server = FleetServer(parse_fleet(FLEET), options)
    sub = Subscriber(broker, "homeassistant/device/+/config")     # (paho: before the stores take the low fds)
    server.start()
    server.run(threading.Event(), seconds=6.0)
    yield server, sub, db_dir
    server.stop()
    sub.client.loop_stop()
    sub.client.disconnect()


@pytest.fixture(scope="module")
def broker_url():
    """An amqtt broker on a free loopback port for the module, in its own event loop thread."""
    port = free_port()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}

    async def start():
        broker = amqtt_broker.Broker(config)
        await broker.start()
        return broker

    broker = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=15)
    yield f"mqtt://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout=15)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def _scan(port: int, unit: int):
    device = sunspec_client.SunSpecModbusClientDeviceTCP(slave_id=unit, ipaddr="127.0.0.1", ipport=port, timeout=5)
    device.scan()
    return device


def test_s14_3_pysunspec2_reads_the_first_and_the_last_meter_as_documented(served):
    server, _, _ = served
    base = server.options.modbus_port
    for index in (0, METERS - 1):
        m = server.meters[index]
        port, unit = base + index // 247, index % 247 + 1              # the documented mapping
        state = json.loads(_get(f"http://127.0.0.1:{server.web_port}/meters/{m.name}/api/state"))
        device = _scan(port, unit)
        assert device.models[1][0].SN.value == m.serial
        meter_model = device.models[202 if m.live.spec.elements == 2 else 201][0]
        assert state["time_s"] > 0 and state["time_s"] == pytest.approx(m.live.time_s)      # it ran
        whole_wh = int(state["register_quanta"]) // QUANTA_PER_WH
        assert (meter_model.TotWhImp.cvalue or 0) == whole_wh             # SunSpec: an accumulator at 0 reads None
        assert meter_model.W.cvalue == pytest.approx(state["net_power_w"], abs=5.0)      # W_SF = 1: 10 W steps


def test_s14_3_an_mqtt_device_announced_for_every_meter(served):
    server, sub, _ = served
    names = {m.name for m in server.meters}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with sub.lock:
            seen = {t.split("/")[2] for t, _, _ in sub.messages}
        if seen >= names:
            break
        time.sleep(0.1)
    assert seen == names
    with sub.lock:
        config = json.loads(next(p for t, p, _ in sub.messages if t.split("/")[2] == server.meters[-1].name))
    assert config["device"]["serial_number"] == server.meters[-1].serial
    assert config["device"]["identifiers"] == [server.meters[-1].name]


def test_s14_3_index_links_every_panel_and_metrics_label_every_meter(served):
    server, _, _ = served
    base = f"http://127.0.0.1:{server.web_port}"
    index = _get(f"{base}/")
    listing = json.loads(_get(f"{base}/api/meters"))
    assert len(listing) == METERS
    for m in listing:
        assert f'href="meters/{m["name"]}/"' in index
    assert "Mini Meter" in _get(f"{base}/{listing[-1]['panel']}")
    metrics = _get(f"{base}/metrics")
    labelled = {line.split('meter="')[1].split('"')[0] for line in metrics.splitlines()
                if line.startswith("minimeter_energy_joules_total{")}
    assert labelled == {m["name"] for m in listing}


def test_s14_3_each_meter_is_persisted_in_its_own_store(served):
    server, _, db_dir = served
    m = server.meters[7]
    stored = Store.open(db_dir / f"{m.name}.sqlite3", writer=False).load()
    assert stored is not None and stored.meter.register_quanta == m.live.meter.register_quanta
    assert stored.time_s == pytest.approx(m.live.time_s)
