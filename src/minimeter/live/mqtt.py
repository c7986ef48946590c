"""MQTT for Home Assistant: device-based discovery, states, availability and the output
edges of live meters (issues 5, 11, 14, 15; SPEC S12.4, S13.1, S14.3).

Two classes:

* :class:`MqttConnection` — one paho client and one broker connection, given by URL
  (``mqtt://[user:password@]host[:port][/base_topic]``, ``mqtts://`` for TLS). It owns the
  last will (``offline``, retained, on its availability topic), answers Home Assistant's
  birth message (``homeassistant/status`` = ``online``: every device republishes its
  discovery and current state) and fails fast: a refused or unreachable broker raises
  :class:`MqttError` at once (a TCP connect timeout of :data:`CONNECT_TIMEOUT_S`), not
  after waiting for a CONNACK that cannot come.
* :class:`HomeAssistantPublisher` — one meter (one Home Assistant *device*), a sink of
  the live stream. Given a URL it makes and owns its connection (the single-meter
  ``minimeter run``); given an :class:`MqttConnection` it shares it — **a fleet is one
  connection carrying many devices**::

      conn = MqttConnection("mqtt://broker:1883/fleet")
      pubs = [HomeAssistantPublisher(conn, node_id=f"meter_{k:04d}", model=..., elements=2,
                                     serial=f"MM{k:06d}") for k in range(n)]
      conn.start()                                 # connect once
      for pub, live in zip(pubs, meters):
          live.add_sink(pub); pub.start()          # discovery + states of that device
      ...
      for pub in pubs: pub.stop()                  # last states; the connection stays
      conn.stop()                                  # 'offline' for all, disconnect

Topics (``B`` = the URL's base topic, default ``minimeter``; ``D`` = the device id):

* state: ``B/D/<key>`` (retained), one per entity — or ``B/<key>`` when ``D`` is ``B``'s
  last segment (the default single meter: ``minimeter/power``, never
  ``minimeter/minimeter/power``);
* availability: the connection's ``B/availability`` for a shared connection, the
  device's ``B/D/availability`` for a connection of its own;
* discovery: ``homeassistant/device/D/config`` (retained), one config per device with its
  ``components``, an ``origin`` block, ``sw_version``/``serial_number``, and
  ``default_entity_id`` (never the deprecated ``object_id``);
* edges: ``B/D/edges`` — one JSON object per output edge (S13.1), QoS 1, not retained:
  ``{"time": ISO 8601 UTC | null, "time_s": s since meter start, "output": "10",
  "state": "ON"|"OFF", "cause": "energy"|"power-loss"|"power-restore"}``.

Entities: energy [kWh] (``total_increasing``), net power [W], voltage per leg [V],
current per CT [A], power factor [%], frequency [Hz] and the Power/Load/Reverse-phase
LEDs (``entity_category: diagnostic`` for the frequency and the LEDs); and, only when the
meter measures them (SPEC §12: present in the snapshot), reactive power [var], apparent
power [VA], displacement power factor per element [%], THD of V and I per element [%], reactive
energy per quadrant [kvarh] (``reactive_energy``), apparent energy [kVAh] (Home Assistant
has no device class for it), demand and maximum demand [W].

Nothing is published before it is measured: no state at all until the first snapshot
with a measured line cycle (a start-up snapshot has no frequency and no voltage), and an
unmeasured quantity (NaN) is left out rather than sent as ``unknown`` or 0. The energy
never goes down and is never zero: the publisher keeps the highest energy it (or a
previous run, through the retained state) has published, and publishes nothing lower.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from minimeter import __version__
from minimeter.errors import MinimeterError
from minimeter.lab.pulses import edge_record
from minimeter.meter.register import QUANTA_PER_WH
from minimeter.live.stream import Snapshot

DISCOVERY_PREFIX = "homeassistant"
CONNECT_TIMEOUT_S = 2.0            # TCP connect to the broker: a closed port says so at once
MAX_QUEUED_MESSAGES = 100_000      # QoS 1 messages (edges) kept while the broker is away: bounded memory
ORIGIN = {"name": "minimeter", "sw_version": __version__}


class MqttError(MinimeterError):
    """A broker URL that cannot be used, or a broker that cannot be reached."""


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
    if any(c in base for c in "+#\0"):
        raise MqttError(f"broker URL {url!r}: the base topic {base!r} may not contain + # or NUL")
    return BrokerUrl(parsed.hostname, port, unquote(parsed.username) if parsed.username else None,
                     unquote(parsed.password) if parsed.password else None, base, parsed.scheme == "mqtts")


# --------------------------------------------------------------------------- entities
@dataclass(frozen=True)
class SensorDef:
    key: str                   # component id and state sub-topic
    component: str             # 'sensor' or 'binary_sensor'
    name: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    diagnostic: bool = False   # entity_category: diagnostic


def sensor_defs(elements: int, snapshot: Snapshot | None = None) -> list[SensorDef]:
    """The entities of a meter with ``elements`` elements; the beyond-kWh ones only when
    ``snapshot`` carries them."""
    defs = [
        SensorDef("energy", "sensor", "Energy", "kWh", "energy", "total_increasing"),
        SensorDef("power", "sensor", "Power", "W", "power", "measurement"),
    ]
    defs += [SensorDef(f"voltage_l{k}", "sensor", f"Voltage L{k}", "V", "voltage", "measurement")
             for k in range(1, elements + 1)]
    defs += [SensorDef(f"current_ct{k}", "sensor", f"Current CT{k}", "A", "current", "measurement")
             for k in range(1, elements + 1)]
    defs += [
        SensorDef("power_factor", "sensor", "Power factor", "%", "power_factor", "measurement"),
        SensorDef("frequency", "sensor", "Frequency", "Hz", "frequency", "measurement", diagnostic=True),
        SensorDef("power_led", "binary_sensor", "Power LED", None, "power", diagnostic=True),
        SensorDef("load_led", "binary_sensor", "Load LED", diagnostic=True),
        SensorDef("reverse_led", "binary_sensor", "Reverse phase LED", None, "problem", diagnostic=True),
    ]
    return defs + (_beyond_kwh_defs(elements, snapshot) if snapshot is not None else [])


def measured_groups(s: Snapshot) -> tuple[bool, ...]:
    """Which beyond-kWh groups ``s`` carries — all that :func:`sensor_defs` looks at in it."""
    return (bool(s.reactive_power_var), bool(s.apparent_power_va), bool(s.displacement_pf), bool(s.thd_v_percent),
            bool(s.thd_i_percent), s.registers is not None)


def _beyond_kwh_defs(elements: int, s: Snapshot) -> list[SensorDef]:
    defs = []
    if s.reactive_power_var:
        defs.append(SensorDef("reactive_power", "sensor", "Reactive power", "var", "reactive_power", "measurement"))
    if s.apparent_power_va:
        defs.append(SensorDef("apparent_power", "sensor", "Apparent power", "VA", "apparent_power", "measurement"))
    if s.displacement_pf:
        defs += [SensorDef(f"displacement_power_factor_l{k}", "sensor", f"Displacement power factor L{k}", "%",
                           "power_factor", "measurement") for k in range(1, elements + 1)]
    for field, label, what in (("thd_v_percent", "thd_v_l", "Voltage THD L"), ("thd_i_percent", "thd_i_ct", "Current THD CT")):
        if getattr(s, field):
            defs += [SensorDef(f"{label}{k}", "sensor", f"{what}{k}", "%", None, "measurement", diagnostic=True)
                     for k in range(1, elements + 1)]
    if s.registers is not None:
        defs += [SensorDef(f"reactive_energy_q{q}", "sensor", f"Reactive energy Q{q}", "kvarh", "reactive_energy",
                           "total_increasing") for q in range(1, 5)]
        defs += [
            SensorDef("apparent_energy", "sensor", "Apparent energy", "kVAh", None, "total_increasing"),
            SensorDef("demand", "sensor", "Demand (15 min)", "W", "power", "measurement"),
            SensorDef("max_demand", "sensor", "Maximum demand", "W", "power", None),
        ]
    return defs


def energy_kwh(snapshot: Snapshot) -> float:
    """The register in kWh, truncated to whole Wh (so a later value is never lower)."""
    return (snapshot.meter.register_quanta // QUANTA_PER_WH) / 1000.0


def state_values(snapshot: Snapshot) -> dict[str, str]:
    """Each entity's state payload for one snapshot; a quantity not measured (NaN) is
    left out."""
    values: dict[str, str] = {"energy": f"{energy_kwh(snapshot):.3f}"}

    def put(key: str, x: float, digits: int) -> None:
        if math.isfinite(x):
            values[key] = f"{x:.{digits}f}"

    put("power", snapshot.net_power_w, 1)
    for k in range(snapshot.spec.elements):
        put(f"voltage_l{k + 1}", snapshot.volts_rms[k], 1)
        put(f"current_ct{k + 1}", snapshot.amps_rms[k], 2)
    put("power_factor", 100.0 * snapshot.net_power_factor, 1)
    put("frequency", snapshot.frequency_hz, 2)
    for led, on in (("power_led", snapshot.meter.power_led), ("load_led", snapshot.meter.load_led),
                    ("reverse_led", snapshot.meter.reverse_led)):
        values[led] = "ON" if on else "OFF"
    _beyond_kwh_values(snapshot, put)
    return values


def _beyond_kwh_values(s: Snapshot, put) -> None:
    if s.reactive_power_var:
        put("reactive_power", sum(s.reactive_power_var), 1)
    if s.apparent_power_va:
        put("apparent_power", sum(s.apparent_power_va), 1)
    for k, x in enumerate(s.displacement_pf):
        put(f"displacement_power_factor_l{k + 1}", 100.0 * x, 1)
    for k, x in enumerate(s.thd_v_percent):
        put(f"thd_v_l{k + 1}", x, 2)
    for k, x in enumerate(s.thd_i_percent):
        put(f"thd_i_ct{k + 1}", x, 2)
    r = s.registers
    if r is not None:
        for q, varh in enumerate(r.varh, start=1):
            put(f"reactive_energy_q{q}", math.floor(varh) / 1000.0, 3)
        put("apparent_energy", math.floor(r.vah) / 1000.0, 3)
        put("demand", r.demand_w, 1)
        put("max_demand", r.max_demand_w, 1)


# --------------------------------------------------------------------------- the connection
class MqttConnection:
    """One broker connection that carries one or many Home Assistant devices.

    :meth:`start` connects (raising :class:`MqttError` at once if the broker refuses or
    cannot be reached, or after ``timeout_s`` without CONNACK); paho's network thread
    then reconnects by itself. On every (re)connection and on Home Assistant's birth
    message each attached :class:`HomeAssistantPublisher` republishes its discovery and
    state. :meth:`stop` says ``offline`` and disconnects.
    """

    def __init__(self, url: str, *, client_id: str = "minimeter", discovery_prefix: str = DISCOVERY_PREFIX,
                 availability_topic: str | None = None) -> None:
        self.broker = parse_broker_url(url)
        self.discovery_prefix = discovery_prefix
        self.birth_topic = f"{discovery_prefix}/status"
        self.availability_topic = availability_topic or f"{self.broker.base_topic}/availability"
        self._lock = threading.Lock()
        self._publishers: list[HomeAssistantPublisher] = []
        self._connected = threading.Event()
        self._refused: str | None = None
        import paho.mqtt.client as paho  # noqa: PLC0415

        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.connect_timeout = CONNECT_TIMEOUT_S
        if self.broker.username:
            self.client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            self.client.tls_set()
        self.client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.max_queued_messages_set(MAX_QUEUED_MESSAGES)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def attach(self, publisher: "HomeAssistantPublisher") -> None:
        """Carry ``publisher``'s device on this connection (announced now if connected)."""
        with self._lock:
            if publisher not in self._publishers:
                self._publishers.append(publisher)
        if self.connected:
            self.client.subscribe(publisher.state_topic("energy"), qos=1)
            publisher.announce()

    def detach(self, publisher: "HomeAssistantPublisher") -> None:
        with self._lock:
            if publisher in self._publishers:
                self._publishers.remove(publisher)

    def publish(self, topic: str, payload: str, *, qos: int = 0, retain: bool = False):
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect; returns once the broker has accepted, or raises :class:`MqttError`."""
        where = f"{self.broker.host}:{self.broker.port}"
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise MqttError(f"cannot reach the MQTT broker {where}: {reason}") from None
        self.client.loop_start()
        deadline = time.monotonic() + timeout_s
        while not self._connected.wait(0.05):
            if self._refused is not None or time.monotonic() > deadline:
                self.client.loop_stop()
                self.client.disconnect()
                why = f"refused: {self._refused}" if self._refused else f"no answer within {timeout_s:g} s"
                raise MqttError(f"MQTT broker {where}: {why}")

    def stop(self) -> None:
        """Every device's last state, ``offline``, and a clean disconnect."""
        with self._lock:
            publishers = list(self._publishers)
        for publisher in publishers:
            publisher.flush(force=True)
        if self.connected:
            info = self.client.publish(self.availability_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # paho's callbacks (its network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            return
        client.subscribe(self.birth_topic, qos=1)
        with self._lock:
            publishers = list(self._publishers)
        for publisher in publishers:
            client.subscribe(publisher.state_topic("energy"), qos=1)     # a previous run's retained energy
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        self._connected.set()
        for publisher in publishers:
            publisher.announce()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            publishers = list(self._publishers)
        if message.topic == self.birth_topic:
            if message.payload == b"online":                      # Home Assistant (re)started
                client.publish(self.availability_topic, "online", qos=1, retain=True)
                for publisher in publishers:
                    publisher.announce()
            return
        for publisher in publishers:
            if message.topic == publisher.state_topic("energy"):
                publisher.saw_energy(message.payload)


# --------------------------------------------------------------------------- one device
class HomeAssistantPublisher:
    """Publishes one live meter (one Home Assistant device) over MQTT.

    ``broker`` is a URL (the publisher makes its own :class:`MqttConnection`, whose
    availability topic is the device's) or a shared :class:`MqttConnection`. A sink of
    the live stream: :meth:`start`, then :meth:`update` with each snapshot (any thread;
    states at most every ``min_interval_s``, edges at once), then :meth:`stop`.

    With ``refresh_s`` (a fleet's head-end), a state is published only when its payload
    differs from the one last published (the broker retains it, Home Assistant keeps it),
    and every state at least every ``refresh_s`` — and on (re)connection, Home
    Assistant's birth message and :meth:`stop`. Without it, every state each time.
    """

    def __init__(self, broker: "str | MqttConnection", *, node_id: str = "minimeter", model: str = "Mini Meter",
                 elements: int = 2, min_interval_s: float = 1.0, discovery_prefix: str = DISCOVERY_PREFIX,
                 serial: str = "MM000001", name: str | None = None, refresh_s: float | None = None) -> None:
        if not node_id or any(c in node_id for c in "/+# "):
            raise MqttError(f"MQTT device id {node_id!r} must be non-empty, without / + # or spaces")
        self.node_id, self.model, self.elements, self.serial = node_id, model, int(elements), serial
        self.name = name or f"Mini Meter {node_id}"
        self.min_interval_s = float(min_interval_s)
        if refresh_s is not None and not refresh_s > 0:
            raise MqttError(f"MQTT state refresh {refresh_s!r} s must be a positive number of seconds")
        self.refresh_s = None if refresh_s is None else float(refresh_s)
        owned = isinstance(broker, str)
        if owned:
            base = device_base_topic(parse_broker_url(broker).base_topic, node_id)
            broker = MqttConnection(broker, client_id=f"minimeter-{node_id}", discovery_prefix=discovery_prefix,
                                    availability_topic=f"{base}/availability")
        self.connection: MqttConnection = broker
        self._owns_connection = owned
        self.base = device_base_topic(self.connection.broker.base_topic, node_id)
        self.availability_topic = self.connection.availability_topic
        self.discovery_topic = f"{self.connection.discovery_prefix}/device/{node_id}/config"
        self.edges_topic = f"{self.base}/edges"
        self._lock = threading.Lock()
        self._published_energy = 0.0           # highest energy published or seen retained [kWh]
        self._last: Snapshot | None = None     # newest measured snapshot
        self._last_sent = 0.0
        self._last_full = -math.inf            # when every state was last published [s, monotonic]
        self._sent: dict[str, str] = {}        # the payload last published per entity
        self._announced_keys: tuple[str, ...] = ()
        self._keys_memo: tuple[tuple[bool, ...], tuple[str, ...]] | None = None   # (measured groups, entity keys)
        self._started = False

    @property
    def client(self):
        """The paho client underneath (shared when the connection is)."""
        return self.connection.client

    def state_topic(self, key: str) -> str:
        return f"{self.base}/{key}"

    # ------------------------------------------------------------------ discovery
    def components(self) -> list[SensorDef]:
        with self._lock:
            snap = self._last
        return sensor_defs(self.elements, snap)

    def discovery_payload(self) -> dict:
        """The device's one discovery config: device, origin, and its components."""
        components = {}
        for d in self.components():
            c: dict[str, Any] = {"platform": d.component, "name": d.name, "unique_id": f"{self.node_id}_{d.key}",
                                 "default_entity_id": f"{d.component}.{self.node_id}_{d.key}",
                                 "state_topic": self.state_topic(d.key)}
            for key, value in (("unit_of_measurement", d.unit), ("device_class", d.device_class),
                               ("state_class", d.state_class)):
                if value:
                    c[key] = value
            if d.diagnostic:
                c["entity_category"] = "diagnostic"
            if d.component == "binary_sensor":
                c["payload_on"], c["payload_off"] = "ON", "OFF"
            components[d.key] = c
        return {
            "device": {"identifiers": [self.node_id], "name": self.name, "manufacturer": "Leviton (simulated by minimeter)",
                       "model": f"Mini Meter {self.model}", "model_id": self.model, "sw_version": __version__,
                       "serial_number": self.serial},
            "origin": dict(ORIGIN),
            "availability_topic": self.availability_topic, "payload_available": "online",
            "payload_not_available": "offline",
            "qos": 1,
            "components": components,
        }

    def announce(self) -> None:
        """(Re)publish the discovery config and the current state (connect, birth message)."""
        payload = self.discovery_payload()
        with self._lock:
            self._announced_keys = tuple(payload["components"])
        self.connection.publish(self.discovery_topic, json.dumps(payload), qos=1, retain=True)
        self.flush(force=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 10.0) -> None:
        """Connect (own connection) or join the shared one; raises :class:`MqttError`."""
        self._started = True
        self.connection.attach(self)
        if self._owns_connection:
            self.connection.start(timeout_s)

    def stop(self) -> None:
        """The last state; an own connection says ``offline`` and disconnects, a shared
        one carries on."""
        if self._owns_connection:
            self.connection.stop()
        else:
            self.flush(force=True)
        self.connection.detach(self)
        self._started = False

    def saw_energy(self, payload: bytes) -> None:
        """A retained energy state came back from the broker (a previous run's)."""
        try:
            seen = float(payload.decode())
        except (UnicodeDecodeError, ValueError):
            return
        if math.isfinite(seen):
            with self._lock:
                self._published_energy = max(self._published_energy, seen)

    # ------------------------------------------------------------------ states and edges
    def update(self, snapshot: Snapshot) -> None:
        """Take ``snapshot``: its edges at once, its states at most every ``min_interval_s``."""
        for t in snapshot.transitions:
            self.connection.publish(self.edges_topic, json.dumps(edge_record(t, snapshot.start_epoch_s)), qos=1)
        if not snapshot.measured:
            return
        with self._lock:
            self._last = snapshot
            announced = self._announced_keys
        if self.connection.connected and announced and self._entity_keys(snapshot) != announced:
            self.announce()                       # the meter measures more now (e.g. §12 registers)
            return
        self.flush()

    def _entity_keys(self, snapshot: Snapshot) -> tuple[str, ...]:
        """The entities of ``snapshot`` (recomputed only when it measures other groups)."""
        groups, memo = measured_groups(snapshot), self._keys_memo
        if memo is None or memo[0] != groups:
            memo = self._keys_memo = (groups, tuple(d.key for d in sensor_defs(self.elements, snapshot)))
        return memo[1]

    def flush(self, force: bool = False) -> None:
        """Publish the newest measured snapshot's states (retained): all of them when
        ``force``d or due for a refresh, else (with ``refresh_s``) the changed ones."""
        with self._lock:
            snap = self._last
            now = time.monotonic()
            if snap is None or not self.connection.connected:
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
            if force or self.refresh_s is None or now - self._last_full >= self.refresh_s:
                self._last_full = now
            else:
                values = {k: v for k, v in values.items() if self._sent.get(k) != v}
            self._sent.update(values)
        for key, payload in values.items():
            self.connection.publish(self.state_topic(key), payload, qos=0, retain=True)


def device_base_topic(base_topic: str, node_id: str) -> str:
    """``minimeter`` + ``kitchen`` → ``minimeter/kitchen``; ``minimeter`` + ``minimeter``
    → ``minimeter`` (no doubled topic level)."""
    return base_topic if base_topic.rsplit("/", 1)[-1] == node_id else f"{base_topic}/{node_id}"
