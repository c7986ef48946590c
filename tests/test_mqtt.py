"""MQTT for Home Assistant (issue 5): a real broker (amqtt, started here) receives the
discovery configs and the states; a test subscriber checks them against the meter."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import paho.mqtt.client as paho
import pytest

amqtt_broker = pytest.importorskip("amqtt.broker")

from minimeter.live.runner import LiveMeter  # noqa: E402
from minimeter.live.mqtt import HomeAssistantPublisher, MqttError, parse_broker_url  # noqa: E402

from .test_live_support import QUANTA_PER_WH, constant_installation, free_port  # noqa: E402


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

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_home_assistant_discovery_and_states_match_the_meter(broker_url):
    # 1500 W on L1 (PF 1) and 700 W on L2 for one hour: 2.2 kWh, 2200 W, 12.5 A on CT1.
    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    live.advance_to(3600.0)
    snap = live.publish()
    sub = Subscriber(broker_url, "homeassistant/#", "minimeter/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_test", model=snap.spec.model_number, elements=2,
                                 min_interval_s=0.0)
    try:
        pub.update(snap)
        pub.start()
        energy_cfg = json.loads(sub.last("homeassistant/sensor/mm_test/energy/config"))
        assert energy_cfg["device_class"] == "energy"
        assert energy_cfg["state_class"] == "total_increasing"
        assert energy_cfg["unit_of_measurement"] == "kWh"
        assert energy_cfg["availability_topic"] == "minimeter/mm_test/availability"
        for key, unit in (("power", "W"), ("voltage_l1", "V"), ("voltage_l2", "V"), ("current_ct1", "A"),
                          ("current_ct2", "A"), ("power_factor", "%"), ("frequency", "Hz")):
            cfg = json.loads(sub.last(f"homeassistant/sensor/mm_test/{key}/config"))
            assert cfg["unit_of_measurement"] == unit and cfg["state_topic"] == f"minimeter/mm_test/{key}"
        for led in ("power_led", "load_led", "reverse_led"):
            cfg = json.loads(sub.last(f"homeassistant/binary_sensor/mm_test/{led}/config"))
            assert cfg["payload_on"] == "ON"
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
        pub.update(live.publish())
        assert sub.last("minimeter/mm_test/reverse_led", where=lambda p: p == "ON") == "ON"
    finally:
        pub.stop()
    assert sub.last("minimeter/mm_test/availability", where=lambda p: p == "offline") == "offline"
    energies = [float(p) for p in sub.all("minimeter/mm_test/energy")]
    assert energies == sorted(energies) and min(energies) > 0
    sub.close()


def test_never_publishes_zero_or_a_lower_energy(broker_url):
    # A previous run left 5.000 kWh retained; a meter now at 2.2 kWh (a store lost, say)
    # must not publish a lower energy; a brand-new meter at 0 publishes no energy at all.
    seed = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="seed")
    b = parse_broker_url(broker_url)
    seed.connect(b.host, b.port)
    seed.loop_start()
    seed.publish("minimeter/mm_low/energy", "5.000", qos=1, retain=True).wait_for_publish(5)
    seed.disconnect()
    seed.loop_stop()

    live = LiveMeter(constant_installation((1500.0, "L1"), (700.0, "L2")), speed=0)
    fresh = live.publish()                                   # register 0
    sub = Subscriber(broker_url, "minimeter/#")
    pub = HomeAssistantPublisher(broker_url, node_id="mm_low", elements=2, min_interval_s=0.0)
    try:
        pub.update(fresh)
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


def test_bad_broker_urls_are_clear_errors():
    with pytest.raises(MqttError, match="mqtt://"):
        parse_broker_url("http://localhost")
    with pytest.raises(MqttError, match="host"):
        parse_broker_url("mqtt://")
    assert parse_broker_url("mqtt://u:p@example:1999/house").port == 1999
