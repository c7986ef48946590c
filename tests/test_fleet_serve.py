"""A live fleet (SPEC S14.3): many meters in one process, each reachable as a networked
meter — SunSpec by Modbus unit id (port + i // 247, unit i % 247 + 1), an MQTT device
(Home Assistant discovery), a web panel listed on the index, a `meter` label in /metrics —
and each persisted in its own store.

250 meters (two Modbus ports), run a few seconds at 20×, on an amqtt broker; and the
issue's figure — 1,000 meters, five Modbus ports, MQTT discovery for all of them — on a
Mosquitto broker the test starts (Debian's: `sh scripts/install-test-services.sh`, which
`make test` runs)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from minimeter.errors import MinimeterError
from minimeter.formats.fleet import parse_fleet
from minimeter.fleet.serve import COMMIT_EVERY_S, FleetServer, ServeOptions, modbus_address
from minimeter.live.runner import LiveMeter
from minimeter.live.store import Store

from .test_live_support import QUANTA_PER_WH, constant_installation, free_port
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


def test_s10_1_a_fleet_meter_commits_at_its_kh10_edges_not_at_every_wake(tmp_path):
    """S10.1 under the live fleet's commit policy (commits at the Kh = 10 edges, at events,
    and every COMMIT_EVERY_S = 60 s of wall time; a wake = feed to the wall clock, then
    publish, a commit point only if an event came or 60 s passed). 1,200 W on L1 registers
    5 Wh — a Kh = 10 output change — every 15 s (900 line cycles): over 125 s of 5-s wakes
    (41.67 Wh) the store changes at each edge only (8 states, not 25), and after every wake it
    holds a register less than 5 Wh + one line cycle (1200 / 216,000 Wh) behind the
    meter's — what a kill would lose. A clean stop (a last commit) loses nothing."""
    path = tmp_path / "meter.sqlite3"
    store = Store.open(path)
    live = LiveMeter(constant_installation((1200.0, "L1")), store=store, speed=1.0, commit_every_s=COMMIT_EVERY_S)
    reader = Store.open(path, writer=False)
    cycle_wh = 1200.0 / 60 / 3600
    stored_times = set()
    for wake in range(1, 26):
        live.advance_to(5.0 * wake)
        live.publish(commit_point=live.events_waiting() or live.commit_due())
        stored = reader.load()
        stored_wh = stored.meter.register_quanta / QUANTA_PER_WH if stored else 0.0
        assert 0.0 <= live.meter.register_quanta / QUANTA_PER_WH - stored_wh < 5.0 + cycle_wh + 1e-9
        stored_times.add(stored.time_s if stored else None)
    assert live.meter.watt_hours == pytest.approx(1200.0 * 125 / 3600, abs=cycle_wh)
    assert len(stored_times - {None}) == 8
    live.publish()
    assert reader.load().meter.register_quanta == live.meter.register_quanta
    reader.close()
    store.close()
    with pytest.raises(MinimeterError, match="commit_every_s must be a finite number of seconds > 0"):
        LiveMeter(constant_installation((1200.0, "L1")), commit_every_s=0.0)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


# --------------------------------------------------------------------------- 1,000 meters on Mosquitto
# (before the 250-meter module fixture's first use: its stores hold a thousand file descriptors while it
# lives, and paho waits on its sockets with select(), which takes none numbered 1024 or more)
def _benchmark_module():
    """benchmarks/fleet_scaling.py, whose ``mosquitto()`` starts and stops a broker of our own."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fleet_scaling.py"
    spec = importlib.util.spec_from_file_location("fleet_scaling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fleet_scaling = _benchmark_module()
LARGE = 1000
needs_mosquitto = pytest.mark.skipif(
    not os.access(fleet_scaling.MOSQUITTO, os.X_OK) and not fleet_scaling.shutil.which("mosquitto"),
    reason="mosquitto is not installed — `sh scripts/install-test-services.sh` (make test runs it)")


@needs_mosquitto
@pytest.mark.skipif(not fleet_scaling.shutil.which("setpriv"), reason="util-linux setpriv is not installed")
def test_the_broker_of_a_killed_test_does_not_outlive_it(tmp_path):
    """A process that started its own broker (``fleet_scaling.mosquitto``) and is then killed
    with SIGKILL — no ``finally`` runs — leaves no broker behind: the port it listened on
    is closed within seconds."""
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import importlib.util, sys, time\n"
         f"spec = importlib.util.spec_from_file_location('fs', {str(Path(fleet_scaling.__file__))!r})\n"
         "fs = importlib.util.module_from_spec(spec); spec.loader.exec_module(fs)\n"
         f"with fs.mosquitto({str(tmp_path)!r}) as url:\n"
         "    print(url.rsplit(':', 1)[1], flush=True); time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        assert fleet_scaling._listening(port)                 # the broker is up
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 10
    while fleet_scaling._listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not fleet_scaling._listening(port)


@needs_mosquitto
def test_s14_3_issue_13_a_thousand_meters_mqtt_discovery_for_all_and_sunspec_first_and_last(tmp_path):
    """Issue 13's acceptance at 1,000 meters, on a real broker (Mosquitto, started here on a
    free loopback port, stopped at the end): one retained discovery config per meter at
    homeassistant/device/<node id>/config — 1,000 distinct ids, each the meter's node id and
    serial — and the first and the last meter's last states equal to the web API's;
    pysunspec2 reads the first meter (port P, unit 1) and the last (port P + 999 // 247 =
    P + 4, unit 999 % 247 + 1 = 12). No stores (persistence: the test above)."""
    fleet = parse_fleet(FLEET.replace(f"meters = {METERS}", f"meters = {LARGE}"))
    assert fleet.meters == LARGE
    with fleet_scaling.mosquitto(tmp_path) as broker:
        options = ServeOptions(port=free_port(), modbus_port=free_port(), mqtt_url=f"{broker}/minimeter",
                               mqtt_interval_s=1.0, speed=1.0, tick_s=2.0)   # the issue's speed; 3 wakes a meter
        server = FleetServer(fleet, options)
        sub = Subscriber(broker, "homeassistant/device/+/config", "minimeter/+/power", "minimeter/+/voltage_l1",
                         "minimeter/availability")
        try:
            server.start()
            ends = (server.meters[0], server.meters[-1])
            assert (ends[1].modbus.port, ends[1].modbus.unit_id) == (options.modbus_port + 4, 12)
            server.run(threading.Event(), seconds=6.0)
            for index in (0, LARGE - 1):
                _reads_as_documented(server, index)
            api = [json.loads(_get(f"http://127.0.0.1:{server.web_port}/meters/{m.name}/api/state")) for m in ends]
            configs = _discovery_configs(sub, LARGE, timeout_s=30.0)
            server.stop()                                   # every device's last states, then 'offline'
            sub.last("minimeter/availability", timeout_s=15.0, where=lambda p: p == "offline")    # (all in, in order)
            assert set(configs) == {m.name for m in server.meters} and len(configs) == LARGE
            for m in server.meters:
                assert configs[m.name]["device"]["identifiers"] == [m.name]
                assert configs[m.name]["device"]["serial_number"] == m.serial
            for m, state in zip(ends, api):
                assert state["time_s"] > 0
                _last_states_are(sub, m.name, power_w=state["net_power_w"], volts_l1=state["volts_rms"][0])
        finally:
            server.stop()
            sub.close()


def _discovery_configs(sub: Subscriber, count: int, timeout_s: float) -> dict[str, dict]:
    """node id → its discovery config, once ``count`` devices have one (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with sub.lock:
            raw = {t.split("/")[2]: p for t, p, _ in sub.messages if t.startswith("homeassistant/device/")}
        if len(raw) >= count or time.monotonic() > deadline:
            return {node: json.loads(payload) for node, payload in raw.items()}
        time.sleep(0.2)


def _last_states_are(sub: Subscriber, node: str, *, power_w: float, volts_l1: float) -> None:
    """The device's last power and L1 voltage states (one decimal) are these values."""
    for key, value in (("power", power_w), ("voltage_l1", volts_l1)):
        topic = f"minimeter/{node}/{key}"
        states = sub.all(topic)
        assert states, f"no state on {topic}"
        assert float(states[-1]) == pytest.approx(value, abs=0.05 + 1e-9), topic


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


def _reads_as_documented(server: FleetServer, index: int) -> None:
    """pysunspec2 finds meter ``index`` at the documented port and unit id, and its
    registers are the web API's (the serial, the register in whole Wh, the power)."""
    m = server.meters[index]
    port, unit = server.options.modbus_port + index // 247, index % 247 + 1              # the documented mapping
    state = json.loads(_get(f"http://127.0.0.1:{server.web_port}/meters/{m.name}/api/state"))
    device = _scan(port, unit)
    assert device.models[1][0].SN.value == m.serial
    meter_model = device.models[202 if m.live.spec.elements == 2 else 201][0]
    assert state["time_s"] > 0 and state["time_s"] == pytest.approx(m.live.time_s)      # it ran
    whole_wh = int(state["register_quanta"]) // QUANTA_PER_WH
    assert (meter_model.TotWhImp.cvalue or 0) == whole_wh             # SunSpec: an accumulator at 0 reads None
    assert meter_model.W.cvalue == pytest.approx(state["net_power_w"], abs=5.0)      # W_SF = 1: 10 W steps


def test_s14_3_pysunspec2_reads_the_first_and_the_last_meter_as_documented(served):
    server, _, _ = served
    for index in (0, METERS - 1):
        _reads_as_documented(server, index)


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
