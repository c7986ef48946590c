"""MQTT for Home Assistant (issues 5, 11, 14, 15): a real broker (amqtt, started here)
receives the device discovery config, the states and the output edges; a plain paho
subscriber checks them against the meter (SPEC S12.4, S13.1, S14.3)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
from dataclasses import dataclass, replace

import paho.mqtt.client as paho
import pytest

amqtt_broker = pytest.importorskip("amqtt.broker")

from minimeter.formats import parse_iso8601  # noqa: E402
from minimeter.live.runner import LiveMeter  # noqa: E402
from minimeter.live.mqtt import HomeAssistantPublisher, MqttConnection, MqttError, parse_broker_url  # noqa: E402

from .test_live_support import QUANTA_PER_WH, constant_installation, free_port  # noqa: E402
from .registers_support import registers, without_beyond_kwh  # noqa: E402


@pytest.fixture
def broker_url():
    """An amqtt broker on a free loopback port, in its own event loop thread."""
    port = free_port()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }

    async def start():
        broker = amqtt_broker.Broker(config)
        await broker.start()
        return broker

    broker = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=15)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline, "the broker did not open its port"
        time.sleep(0.05)
    yield f"mqtt://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout=15)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


class Subscriber:
    """A plain paho client that records every message on the topics it subscribes to."""

    def __init__(self, url: str, *topics: str) -> None:
        b = parse_broker_url(url)
        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.connect(b.host, b.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert self.ready.wait(10), "subscription not acknowledged"

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def last(self, topic: str, timeout_s: float = 10.0, where=lambda payload: True) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                found = [p for t, p, _ in self.messages if t == topic and where(p)]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"nothing on {topic} within {timeout_s} s; got topics "
                             f"{sorted({t for t, _, _ in self.messages})}")

    def all(self, topic: str) -> list[str]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def topics(self) -> set[str]:
        with self.lock:
            return {t for t, _, _ in self.messages}

    def retained(self, topic: str) -> list[bool]:
        with self.lock:
            return [r for t, _, r in self.messages if t == topic]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _publish(url: str, topic: str, payload: str, retain: bool = False) -> None:
    """One message from another client (Home Assistant's birth message, a retained state)."""
    b = parse_broker_url(url)
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"other-{time.monotonic_ns()}")
    c.connect(b.host, b.port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_s12_4_one_device_config_with_origin_classes_and_the_meters_states(broker_url):
    # 1500 W on L1 (PF 1) and 700 W on L2 for one hour: 2.2 kWh, 2200 W, 12.5 A on CT1.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    live.advance_to(3600.0)
    snap = without_beyond_kwh(live.publish())                # the kWh meter's entities (§12's: below)
    sub = Subscriber(broker_url, "homeassistant/#", "minimeter/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_test", model=snap.spec.model_number, elements=2,
                                 min_interval_s=0.0, serial="MM123456")
    try:
        pub.update(snap)
        pub.start()
        raw = sub.last("homeassistant/device/mm_test/config")
        assert "object_id" not in raw                                        # deprecated in HA 2025.10
        cfg = json.loads(raw)
        assert cfg["device"]["serial_number"] == "MM123456" and cfg["device"]["sw_version"]
        assert cfg["device"]["identifiers"] == ["mm_test"]
        assert cfg["origin"]["name"] == "minimeter" and cfg["origin"]["sw_version"]
        assert cfg["availability_topic"] == "minimeter/mm_test/availability"
        cmps = cfg["components"]
        assert set(cmps) == {"energy", "power", "voltage_l1", "voltage_l2", "current_ct1", "current_ct2",
                             "power_factor", "frequency", "power_led", "load_led", "reverse_led"}
        energy = cmps["energy"]
        assert (energy["platform"], energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
            "sensor", "energy", "total_increasing", "kWh")
        assert energy["default_entity_id"] == "sensor.mm_test_energy" and energy["unique_id"] == "mm_test_energy"
        for key, unit in (("power", "W"), ("voltage_l1", "V"), ("voltage_l2", "V"), ("current_ct1", "A"),
                          ("current_ct2", "A"), ("power_factor", "%"), ("frequency", "Hz")):
            assert cmps[key]["unit_of_measurement"] == unit and cmps[key]["state_topic"] == f"minimeter/mm_test/{key}"
        assert {k for k, c in cmps.items() if c.get("entity_category") == "diagnostic"} == {
            "frequency", "power_led", "load_led", "reverse_led"}
        assert all(cmps[led]["platform"] == "binary_sensor" and cmps[led]["payload_on"] == "ON"
                   for led in ("power_led", "load_led", "reverse_led"))
        assert sub.last("minimeter/mm_test/availability") == "online"
        energy = float(sub.last("minimeter/mm_test/energy"))
        assert energy == pytest.approx(2.2, abs=0.010)                        # within one Kh = 10 pulse
        assert energy == (snap.meter.register_quanta // QUANTA_PER_WH) / 1000
        assert float(sub.last("minimeter/mm_test/power")) == pytest.approx(2200.0, abs=0.1)
        assert float(sub.last("minimeter/mm_test/voltage_l1")) == pytest.approx(120.0, abs=0.05)
        assert float(sub.last("minimeter/mm_test/current_ct1")) == pytest.approx(12.5, abs=0.005)
        assert float(sub.last("minimeter/mm_test/power_factor")) == pytest.approx(100.0, abs=0.05)
        assert float(sub.last("minimeter/mm_test/frequency")) == pytest.approx(60.0, abs=0.005)
        assert sub.last("minimeter/mm_test/power_led") == "ON"
        assert sub.last("minimeter/mm_test/reverse_led") == "OFF"
        # CT2 reversed with more load on L2: the reverse LED state follows the meter.
        live.inject_fault("ct-reversed", ct="CT2")
        live.add_load(constant_installation((2000.0, "L2")).loads[0])
        live.advance_to(3660.0)
        pub.update(without_beyond_kwh(live.publish()))
        assert sub.last("minimeter/mm_test/reverse_led", where=lambda p: p == "ON") == "ON"
    finally:
        pub.stop()
    assert sub.last("minimeter/mm_test/availability", where=lambda p: p == "offline") == "offline"
    energies = [float(p) for p in sub.all("minimeter/mm_test/energy")]
    assert energies == sorted(energies) and min(energies) > 0
    assert not any(t.startswith("homeassistant/sensor/") for t in sub.topics())   # no per-entity configs
    sub.close()


def test_default_device_topics_are_not_doubled(broker_url):
    # node id 'minimeter' under the default base topic 'minimeter': minimeter/power, not minimeter/minimeter/power
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    live.advance_to(60.0)
    sub = Subscriber(broker_url, "#")
    pub = HomeAssistantPublisher(broker_url, min_interval_s=0.0)
    try:
        pub.update(live.publish())
        pub.start()
        assert float(sub.last("minimeter/power")) == pytest.approx(1000.0, abs=0.1)
        assert sub.last("minimeter/availability") == "online"
    finally:
        pub.stop()
    assert not any(t.startswith("minimeter/minimeter") for t in sub.topics())
    sub.close()


def test_no_state_is_published_before_the_first_measured_cycle(broker_url):
    # A meter that has fed nothing: no voltage 0.0, no 'unknown' frequency, no LED OFF —
    # the first states on the wire are the measured ones (120 V, 60 Hz, Power LED ON).
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    sub = Subscriber(broker_url, "minimeter/#", "homeassistant/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_fresh", min_interval_s=0.0)
    try:
        pub.update(live.publish())                          # start-up snapshot, nothing measured
        pub.start()
        sub.last("homeassistant/device/mm_fresh/config")
        pub.update(live.publish())                          # still nothing measured
        live.advance_to(1.0)
        pub.update(live.publish())
        assert float(sub.last("minimeter/mm_fresh/voltage_l1")) == pytest.approx(120.0, abs=0.05)
    finally:
        pub.stop()
    # the publisher's own messages arrive in order: anything sent before the measured state came first
    assert [float(v) for v in sub.all("minimeter/mm_fresh/voltage_l1")] == [pytest.approx(120.0, abs=0.05)] * len(
        sub.all("minimeter/mm_fresh/voltage_l1"))
    assert sub.all("minimeter/mm_fresh/power_led") and set(sub.all("minimeter/mm_fresh/power_led")) == {"ON"}
    assert "unknown" not in sub.all("minimeter/mm_fresh/frequency")
    sub.close()


def test_birth_message_republishes_discovery_and_state(broker_url):
    live = LiveMeter(constant_installation((1500.0, "L1")), speed=0)
    live.advance_to(600.0)                                  # 250 Wh
    sub = Subscriber(broker_url, "minimeter/#", "homeassistant/device/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_birth", min_interval_s=3600.0)   # no timed states
    try:
        pub.update(live.publish())
        pub.start()
        sub.last("minimeter/mm_birth/power")
        sub.clear()
        _publish(broker_url, "homeassistant/status", "online")     # Home Assistant restarted
        assert json.loads(sub.last("homeassistant/device/mm_birth/config"))["components"]["energy"]
        assert float(sub.last("minimeter/mm_birth/power")) == pytest.approx(1500.0, abs=0.1)
        assert float(sub.last("minimeter/mm_birth/energy")) == pytest.approx(0.250, abs=0.010)
        assert sub.last("minimeter/mm_birth/availability") == "online"
    finally:
        pub.stop()
    sub.close()


def test_s12_4_beyond_kwh_entities_appear_with_their_classes_when_measured(broker_url):
    # Hand-set §12 quantities: Q1 = 600 + 200 var, S = 1700 + 750 VA, displacement PF 0.9/0.95,
    # THD 3 % / 40 %, registers Q1..Q4 = 1234.9, 10, 0, 5.5 varh, 2345.6 VAh, demand 1800 W, max 2400 W.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    live.advance_to(60.0)
    base = without_beyond_kwh(live.publish())
    snap = replace(base, reactive_power_var=(600.0, 200.0), apparent_power_va=(1700.0, 750.0),
                   displacement_pf=(0.9, 0.95), thd_v_percent=(3.0, 3.0), thd_i_percent=(40.0, 12.5),
                   registers=registers((1000.0, 300.0), (0.0, 0.0), (1234.9, 10.0, 0.0, 5.5), 2345.6,
                                       1800.0, 2400.0, 900.0))
    sub = Subscriber(broker_url, "minimeter/#", "homeassistant/device/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_pq", min_interval_s=0.0)
    try:
        pub.update(base)
        pub.start()
        assert "reactive_power" not in json.loads(sub.last("homeassistant/device/mm_pq/config"))["components"]
        pub.update(snap)
        cmps = json.loads(sub.last("homeassistant/device/mm_pq/config",
                                   where=lambda p: "reactive_power" in p))["components"]
        assert (cmps["reactive_power"]["device_class"], cmps["reactive_power"]["unit_of_measurement"],
                cmps["reactive_power"]["state_class"]) == ("reactive_power", "var", "measurement")
        assert (cmps["apparent_power"]["device_class"], cmps["apparent_power"]["unit_of_measurement"]) == (
            "apparent_power", "VA")
        for q in range(1, 5):
            c = cmps[f"reactive_energy_q{q}"]
            assert (c["device_class"], c["unit_of_measurement"], c["state_class"]) == (
                "reactive_energy", "kvarh", "total_increasing")
        assert "device_class" not in cmps["apparent_energy"]                 # HA has none for VAh
        assert (cmps["apparent_energy"]["unit_of_measurement"], cmps["apparent_energy"]["state_class"]) == (
            "kVAh", "total_increasing")
        assert cmps["displacement_power_factor_l1"]["device_class"] == "power_factor"
        assert cmps["thd_i_ct1"]["entity_category"] == "diagnostic"
        assert float(sub.last("minimeter/mm_pq/reactive_power")) == 800.0
        assert float(sub.last("minimeter/mm_pq/apparent_power")) == 2450.0
        assert float(sub.last("minimeter/mm_pq/displacement_power_factor_l2")) == 95.0
        assert float(sub.last("minimeter/mm_pq/thd_i_ct2")) == 12.5
        assert sub.last("minimeter/mm_pq/reactive_energy_q1") == "1.234"               # whole varh, never rounded up
        assert sub.last("minimeter/mm_pq/reactive_energy_q4") == "0.005"
        assert sub.last("minimeter/mm_pq/apparent_energy") == "2.345"
        assert float(sub.last("minimeter/mm_pq/max_demand")) == 2400.0
    finally:
        pub.stop()
    sub.close()


@dataclass(frozen=True)
class _WithStartEpoch:
    """A sink that passes each snapshot on with a known start instant (the runner's own
    comes with the first-hour work)."""
    sink: object
    start_epoch_s: float

    def update(self, snapshot):
        self.sink.update(replace(snapshot, start_epoch_s=self.start_epoch_s))


def test_s13_1_output_edges_stream_one_json_per_edge_not_retained(broker_url):
    # 1000 W on L1 for 360 s = 100 Wh from 0: the outputs close at power-up (E = 0 is in
    # the first half of every Kh), then the Kh = 10 output changes state at every 5 Wh:
    # floor(E / 5) energy edges (19: E ends a hair under 100 Wh); Kh = 100: floor(E / 50);
    # times ISO from the meter's start instant.
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    sub = Subscriber(broker_url, "minimeter/mm_edges/edges")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_edges", min_interval_s=0.0)
    start_epoch = 1_780_000_000.0
    try:
        pub.start()
        live.add_sink(_WithStartEpoch(pub, start_epoch))      # every snapshot: the edges of each piece fed
        live.advance_to(360.0)
        e_wh = live.publish().watt_hours
        want10, want100 = math.floor(e_wh / 5), math.floor(e_wh / 50)
        deadline = time.monotonic() + 10
        while len(sub.all("minimeter/mm_edges/edges")) < want10 + want100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pub.stop()
    edges = [json.loads(p) for p in sub.all("minimeter/mm_edges/edges")]
    energy = [e for e in edges if e["cause"] == "energy"]
    assert len([e for e in energy if e["output"] == "10"]) == want10
    assert len([e for e in energy if e["output"] == "100"]) == want100
    restores = [e for e in edges if e["cause"] == "power-restore"]
    assert restores and all(e["time_s"] == 0.0 and e["state"] == "ON" for e in restores)    # power-up, E = 0: closed
    assert [e["state"] for e in energy if e["output"] == "10"][:2] == ["OFF", "ON"]       # OFF at 5 Wh, ON at 10
    first = energy[0]
    assert set(first) == {"time", "time_s", "output", "state", "cause"}
    assert first["time_s"] == pytest.approx(18.0, abs=1 / 60)                         # 5 Wh at 1000 W
    assert parse_iso8601(first["time"]) == pytest.approx(start_epoch + first["time_s"], abs=1e-6)
    assert not any(sub.retained("minimeter/mm_edges/edges"))
    sub.close()


def test_fleet_many_devices_share_one_connection(broker_url):
    # S14.3: three meters on one MqttConnection: three device configs, states under each
    # device's topic, one availability topic for the connection.
    conn = MqttConnection(f"{broker_url}/fleet", client_id="fleet-test")
    sub = Subscriber(broker_url, "fleet/#", "homeassistant/device/#")
    pubs = []
    try:
        conn.start()
        for k, watts in enumerate((500.0, 1000.0, 1500.0), start=1):
            live = LiveMeter(constant_installation((watts, "L1")), speed=0)
            live.advance_to(60.0)
            pub = HomeAssistantPublisher(conn, node_id=f"meter_{k}", serial=f"MM{k:06d}", min_interval_s=0.0)
            pub.update(live.publish())
            pub.start()
            pubs.append(pub)
        for k, watts in enumerate((500.0, 1000.0, 1500.0), start=1):
            cfg = json.loads(sub.last(f"homeassistant/device/meter_{k}/config"))
            assert cfg["device"]["serial_number"] == f"MM{k:06d}" and cfg["availability_topic"] == "fleet/availability"
            assert float(sub.last(f"fleet/meter_{k}/power")) == pytest.approx(watts, abs=0.1)
        assert sub.last("fleet/availability") == "online"
        assert len({p.client for p in pubs}) == 1
    finally:
        for pub in pubs:
            pub.stop()
        conn.stop()
    assert sub.last("fleet/availability", where=lambda p: p == "offline") == "offline"
    sub.close()


def test_s14_3_a_fleet_device_republishes_a_state_only_when_it_changed(broker_url):
    # A fleet's device (refresh_s): the full set at announcement; then another minute at
    # 1,000 W on L1 changes the energy (+16.7 Wh) and nothing else, so only the energy goes
    # out; 1,200 W added on L2 changes the power (2,200 W) and CT2's current (10 A) too, not
    # the voltages, CT1 or the frequency; stop() sends the full set once more.
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    live.advance_to(3600.0)
    sub = Subscriber(broker_url, "minimeter/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_chg", min_interval_s=0.0, refresh_s=3600.0)
    base = "minimeter/mm_chg"
    try:
        pub.update(without_beyond_kwh(live.publish()))
        pub.start()
        assert float(sub.last(f"{base}/power")) == pytest.approx(1000.0, abs=0.1)
        live.advance_to(3660.0)
        pub.update(without_beyond_kwh(live.publish()))
        live.add_load(constant_installation((1200.0, "L2")).loads[0])
        live.advance_to(3720.0)
        pub.update(without_beyond_kwh(live.publish()))
    finally:
        pub.stop()
    assert sub.last(f"{base}/availability", where=lambda p: p == "offline") == "offline"   # all before it arrived
    for key in ("voltage_l1", "voltage_l2", "current_ct1", "frequency"):
        assert len(sub.all(f"{base}/{key}")) == 2, key                   # announcement and stop only
    assert [float(p) for p in sub.all(f"{base}/power")] == pytest.approx([1000.0, 2200.0, 2200.0], abs=0.1)
    assert [float(p) for p in sub.all(f"{base}/current_ct2")] == pytest.approx([0.0, 10.0, 10.0], abs=0.005)
    energies = [float(p) for p in sub.all(f"{base}/energy")]
    assert len(energies) == 4 and energies == sorted(energies)
    assert energies[1] - energies[0] == pytest.approx(1000.0 / 60 / 1000, abs=0.0015)   # one minute at 1 kW
    sub.close()


def test_s14_3_every_state_is_republished_once_the_refresh_period_has_passed(broker_url):
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    live.advance_to(60.0)
    snap = without_beyond_kwh(live.publish())
    sub = Subscriber(broker_url, "minimeter/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_ref", min_interval_s=0.0, refresh_s=0.5)
    try:
        pub.update(snap)
        pub.start()
        sub.last("minimeter/mm_ref/voltage_l1")
        time.sleep(0.6)
        pub.update(snap)                                      # unchanged, but the refresh is due
    finally:
        pub.stop()
    assert sub.last("minimeter/mm_ref/availability", where=lambda p: p == "offline") == "offline"
    assert len(sub.all("minimeter/mm_ref/voltage_l1")) == 3   # announcement, refresh, stop
    with pytest.raises(MqttError, match="refresh 0 s must be a positive"):
        HomeAssistantPublisher(broker_url, node_id="mm_bad", refresh_s=0)
    sub.close()


def test_never_publishes_zero_or_a_lower_energy(broker_url):
    # A previous run left 5.000 kWh retained; a meter now at 2.2 kWh (a store lost, say)
    # must not publish a lower energy; a brand-new meter at 0 publishes no energy at all.
    _publish(broker_url, "minimeter/mm_low/energy", "5.000", retain=True)
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    live.advance_to(1.0)
    fresh = replace(live.publish(), meter=LiveMeter(constant_installation((1.0, "L1")), speed=0).publish().meter)
    sub = Subscriber(broker_url, "minimeter/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_low", elements=2, min_interval_s=0.0)
    try:
        pub.update(fresh)                                     # measured, register 0
        pub.start()
        sub.last("minimeter/mm_low/power")                    # states are flowing
        time.sleep(0.3)                                       # let the retained 5.000 come back to the publisher
        live.advance_to(3600.0)
        pub.update(live.publish())
        assert sub.last("minimeter/mm_low/power", where=lambda p: float(p) > 2000) is not None
    finally:
        pub.stop()
    energies = [float(p) for p in sub.all("minimeter/mm_low/energy")]
    assert energies and all(e == 5.0 for e in energies)       # only the retained value, never 0 or 2.2
    sub.close()


def test_last_will_says_offline_when_the_meter_vanishes(broker_url):
    live = LiveMeter(constant_installation((1000.0, "L1")), speed=0)
    live.advance_to(60.0)
    sub = Subscriber(broker_url, "minimeter/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_will", elements=2, min_interval_s=0.0)
    pub.update(live.publish())
    pub.start()
    assert sub.last("minimeter/mm_will/availability") == "online"
    pub.client.loop_stop()
    pub.client.socket().close()                               # dies without DISCONNECT
    assert sub.last("minimeter/mm_will/availability", timeout_s=15, where=lambda p: p == "offline") == "offline"
    sub.close()


def test_a_closed_port_is_a_clear_error_at_once():
    # Issue 14 item 10: the TCP connect is refused, so start() says so — it does not wait
    # out its CONNACK timeout (60 s here) to report "no answer".
    pub = HomeAssistantPublisher(f"mqtt://127.0.0.1:{free_port()}", node_id="mm_closed")
    with pytest.raises(MqttError, match=r"cannot reach the MQTT broker 127\.0\.0\.1:\d+: .*refused"):
        pub.start(timeout_s=60.0)


def test_bad_broker_urls_and_device_ids_are_clear_errors():
    with pytest.raises(MqttError, match="mqtt://"):
        parse_broker_url("http://localhost")
    with pytest.raises(MqttError, match="host"):
        parse_broker_url("mqtt://")
    with pytest.raises(MqttError, match=r"\+ #"):
        parse_broker_url("mqtt://h/a/+")
    with pytest.raises(MqttError, match="device id"):
        HomeAssistantPublisher("mqtt://localhost", node_id="a/b")
    assert parse_broker_url("mqtt://u:p@example:1999/house").port == 1999


def test_s12_4_live_meter_beyond_kwh_entities_match_its_figures(broker_url):
    # 1500 W on L1 at PF 0.8 lagging for one hour: S = 1875 VA, Q1 = 1125 var, 1.125 kvarh in
    # quadrant I, 1.875 kVAh — the live meter's own §12 quantities reach Home Assistant.
    live = LiveMeter(constant_installation((1500.0, "L1"), pf=0.8), speed=0)
    live.advance_to(3600.0)
    snap = live.publish()
    sub = Subscriber(broker_url, "minimeter/#", "homeassistant/device/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_live", min_interval_s=0.0)
    try:
        pub.update(snap)
        pub.start()
        cmps = json.loads(sub.last("homeassistant/device/mm_live/config"))["components"]
        assert cmps["reactive_energy_q1"]["device_class"] == "reactive_energy"
        assert cmps["apparent_power"]["device_class"] == "apparent_power"
        assert float(sub.last("minimeter/mm_live/reactive_power")) == pytest.approx(1125.0, abs=0.1)
        assert float(sub.last("minimeter/mm_live/apparent_power")) == pytest.approx(1875.0, abs=0.1)
        assert float(sub.last("minimeter/mm_live/displacement_power_factor_l1")) == pytest.approx(80.0, abs=0.05)
        assert float(sub.last("minimeter/mm_live/reactive_energy_q1")) == pytest.approx(1.125, abs=0.001)
        assert float(sub.last("minimeter/mm_live/apparent_energy")) == pytest.approx(1.875, abs=0.001)
    finally:
        pub.stop()
    sub.close()
