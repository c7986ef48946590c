"""MQTT for Home Assistant: discovery, states and availability of a live meter.

:class:`HomeAssistantPublisher` connects to a broker given by URL
(``mqtt://[user:password@]host[:port][/base_topic]``), publishes Home Assistant's MQTT
discovery configs (retained) for

* the energy sensor: the register in kWh, ``device_class: energy``,
  ``state_class: total_increasing`` (what the Energy dashboard needs);
* net power [W], voltage per leg [V], current per CT [A], power factor [%],
  frequency [Hz];
* binary sensors for the Power, Load and Reverse phase LEDs;

then one state topic per sensor (retained), and an availability topic with a last will
(``offline``). The energy state never goes down and is never zero: the publisher keeps
the highest energy it (or a previous run, through the retained state) has published,
and publishes nothing lower, at start-up, on reconnect or ever.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from minimeter.errors import MinimeterError
from minimeter.meter.register import QUANTA_PER_WH
from minimeter.live.stream import Snapshot

DISCOVERY_PREFIX = "homeassistant"


class MqttError(MinimeterError):
    """A broker URL that cannot be used."""


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    username: str | None
    password: str | None
    base_topic: str
    tls: bool


def parse_broker_url(url: str) -> BrokerUrl:
    """``mqtt://user:pw@host:1883/minimeter`` → its parts (``mqtts://`` for TLS)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts", "tcp"):
        raise MqttError(f"broker URL {url!r} must start with mqtt:// or mqtts:// (e.g. mqtt://localhost:1883)")
    if not parsed.hostname:
        raise MqttError(f"broker URL {url!r} names no host")
    try:
        port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
    except ValueError:
        raise MqttError(f"broker URL {url!r} has a bad port") from None
    base = parsed.path.strip("/") or "minimeter"
    return BrokerUrl(parsed.hostname, port, unquote(parsed.username) if parsed.username else None,
                     unquote(parsed.password) if parsed.password else None, base, parsed.scheme == "mqtts")


@dataclass(frozen=True)
class SensorDef:
    key: str                   # object id and state sub-topic
    component: str             # 'sensor' or 'binary_sensor'
    name: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None


def sensor_defs(elements: int) -> list[SensorDef]:
    """The entities of a meter with ``elements`` elements."""
    defs = [
        SensorDef("energy", "sensor", "Energy", "kWh", "energy", "total_increasing"),
        SensorDef("power", "sensor", "Power", "W", "power", "measurement"),
    ]
    for k in range(1, elements + 1):
        defs.append(SensorDef(f"voltage_l{k}", "sensor", f"Voltage L{k}", "V", "voltage", "measurement"))
    for k in range(1, elements + 1):
        defs.append(SensorDef(f"current_ct{k}", "sensor", f"Current CT{k}", "A", "current", "measurement"))
    defs += [
        SensorDef("power_factor", "sensor", "Power factor", "%", "power_factor", "measurement"),
        SensorDef("frequency", "sensor", "Frequency", "Hz", "frequency", "measurement"),
        SensorDef("power_led", "binary_sensor", "Power LED", None, "power"),
        SensorDef("load_led", "binary_sensor", "Load LED"),
        SensorDef("reverse_led", "binary_sensor", "Reverse phase LED", None, "problem"),
    ]
    return defs


def energy_kwh(snapshot: Snapshot) -> float:
    """The register in kWh, truncated to whole Wh (so a later value is never lower)."""
    return (snapshot.meter.register_quanta // QUANTA_PER_WH) / 1000.0


def state_values(snapshot: Snapshot) -> dict[str, str]:
    """Each sensor's state payload for one snapshot."""
    def fmt(x: float, digits: int) -> str:
        return f"{x:.{digits}f}" if math.isfinite(x) else "unknown"

    values = {"energy": f"{energy_kwh(snapshot):.3f}", "power": fmt(snapshot.net_power_w, 1)}
    for k in range(snapshot.spec.elements):
        values[f"voltage_l{k + 1}"] = fmt(snapshot.volts_rms[k], 1)
        values[f"current_ct{k + 1}"] = fmt(snapshot.amps_rms[k], 2)
    values["power_factor"] = fmt(100.0 * snapshot.net_power_factor, 1)
    values["frequency"] = fmt(snapshot.frequency_hz, 2)
    for led, on in (("power_led", snapshot.meter.power_led), ("load_led", snapshot.meter.load_led),
                    ("reverse_led", snapshot.meter.reverse_led)):
        values[led] = "ON" if on else "OFF"
    return values


class HomeAssistantPublisher:
    """Publishes a live meter to an MQTT broker for Home Assistant.

    A sink of the live stream: :meth:`start`, then :meth:`update` with each snapshot (any
    thread; it keeps the newest and publishes at most every ``min_interval_s``), then :meth:`stop`.
    """

    def __init__(self, url: str, *, node_id: str = "minimeter", model: str = "Mini Meter",
                 elements: int = 2, min_interval_s: float = 1.0, discovery_prefix: str = DISCOVERY_PREFIX) -> None:
        self.broker = parse_broker_url(url)
        self.node_id = node_id
        self.model = model
        self.elements = elements
        self.min_interval_s = float(min_interval_s)
        self.discovery_prefix = discovery_prefix
        self.base = f"{self.broker.base_topic}/{node_id}"
        self.availability_topic = f"{self.base}/availability"
        self._lock = threading.Lock()
        self._published_energy = 0.0           # highest energy published or seen retained [kWh]
        self._last: Snapshot | None = None
        self._last_sent = 0.0
        self._connected = threading.Event()
        import paho.mqtt.client as paho  # noqa: PLC0415

        self._paho = paho
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"minimeter-{node_id}")
        if self.broker.username:
            self.client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            self.client.tls_set()
        self.client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)

    def state_topic(self, key: str) -> str:
        return f"{self.base}/{key}"

    def discovery_topic(self, d: SensorDef) -> str:
        return f"{self.discovery_prefix}/{d.component}/{self.node_id}/{d.key}/config"

    def discovery_payload(self, d: SensorDef) -> dict:
        payload = {
            "name": d.name,
            "unique_id": f"{self.node_id}_{d.key}",
            "object_id": f"{self.node_id}_{d.key}",
            "state_topic": self.state_topic(d.key),
            "availability_topic": self.availability_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": {"identifiers": [self.node_id], "name": f"Mini Meter {self.node_id}",
                       "manufacturer": "Leviton (simulated by minimeter)", "model": self.model},
        }
        if d.unit:
            payload["unit_of_measurement"] = d.unit
        if d.device_class:
            payload["device_class"] = d.device_class
        if d.state_class:
            payload["state_class"] = d.state_class
        if d.component == "binary_sensor":
            payload["payload_on"], payload["payload_off"] = "ON", "OFF"
        return payload

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 10.0) -> None:
        """Connect (in paho's network thread); returns once connected or raises."""
        try:
            self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot reach the MQTT broker {self.broker.host}:{self.broker.port}: {exc}") from None
        self.client.loop_start()
        if not self._connected.wait(timeout_s):
            self.client.loop_stop()
            raise MqttError(f"no answer from the MQTT broker {self.broker.host}:{self.broker.port} "
                            f"within {timeout_s:g} s")

    def stop(self) -> None:
        """Say ``offline`` and disconnect cleanly."""
        if self._connected.is_set():
            self._flush(force=True)
            info = self.client.publish(self.availability_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        client.subscribe(self.state_topic("energy"), qos=1)       # a previous run's retained energy
        for d in sensor_defs(self.elements):
            client.publish(self.discovery_topic(d), json.dumps(self.discovery_payload(d)), qos=1, retain=True)
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        self._connected.set()
        self._flush(force=True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.state_topic("energy"):
            try:
                seen = float(message.payload.decode())
            except ValueError:
                return
            with self._lock:
                self._published_energy = max(self._published_energy, seen)

    # ------------------------------------------------------------------ states
    def update(self, snapshot: Snapshot) -> None:
        """Publish ``snapshot``'s states (at most every ``min_interval_s``)."""
        with self._lock:
            self._last = snapshot
        self._flush()

    def _flush(self, force: bool = False) -> None:
        with self._lock:
            snap = self._last
            now = time.monotonic()
            if snap is None or not self._connected.is_set():
                return
            if not force and now - self._last_sent < self.min_interval_s:
                return
            self._last_sent = now
            values = state_values(snap)
            energy = energy_kwh(snap)
            if energy <= 0.0 or energy < self._published_energy:
                del values["energy"]                  # never zero, never lower (total_increasing)
            else:
                self._published_energy = energy
        for key, payload in values.items():
            self.client.publish(self.state_topic(key), payload, qos=0, retain=True)
