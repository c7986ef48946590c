"""A live fleet (SPEC S14.3): the meters of a fleet file running live in one process
(``minimeter fleet serve FLEET.toml``).

* **One loop**, not a thread per meter: each meter is a
  :class:`~minimeter.live.runner.LiveMeter` woken every ``tick_s`` of wall time
  (default :data:`~minimeter.live.runner.MAX_TICK_S`, the longest a lone live meter
  sleeps), the wakes staggered evenly over the tick; a wake feeds the meter up to the
  simulated time of the wall clock (:meth:`LiveMeter.advance_to`, which commits at each
  Kh = 10 edge as ``minimeter run`` does) and publishes a snapshot to its sinks. A wake
  runs in the loop's own thread when it is the only one due — the usual case, the wakes
  being Python that holds the GIL: four threads sharing every wake took a third more CPU,
  handing the GIL over, than one. When several are due at once (the loop fell behind:
  the stores' disk waits, a fast ``speed``) they are shared by :data:`WAKE_THREADS`
  threads, so that their commits' disk waits overlap.
* **Persistence**, with ``run``'s guarantee for energy (S10.1): each meter has its own
  store, ``DB_DIR/<meter>.sqlite3``, and continues from it on the next start. A meter
  commits at each change of its Kh = 10 output (as ``run`` does), at a wake that reached
  an event, and otherwise at most every :data:`COMMIT_EVERY_S` of wall time (``run``:
  every second) — a commit per meter per wake was about a third of the fleet's CPU. So a
  crash (``kill -9``) loses less than one Kh = 10 pulse's energy (5 Wh + one line cycle,
  within the rating: see :mod:`minimeter.live.runner`), and at most
  :data:`COMMIT_EVERY_S` of the clock and interval energies: the restarted meter
  continues from the stored state, a state it really had, and feeds that stretch again
  from its source. A clean stop commits every meter's last state.
* **Modbus/SunSpec**: meter ``i`` (0-based, in the fleet's order) is served on port
  ``modbus_port + i // 247`` at unit id ``i % 247 + 1`` (Modbus unit ids run 1–247), its
  SunSpec map as ``minimeter run`` serves one meter's (:mod:`minimeter.live.modbus`).
* **MQTT**: one connection for the fleet, one Home Assistant device per meter (node id:
  the meter's name), each announced by discovery (:mod:`minimeter.live.mqtt`). A device's
  states are looked at every ``mqtt_interval_s`` and only the changed ones published
  (retained), every state every ``mqtt_refresh_s`` and on Home Assistant's birth message.
* **Web**: ``/`` lists the meters with their Modbus port and unit id and MQTT node id,
  each linking to its front panel at ``/meters/<meter>/`` (the panel app of
  :mod:`minimeter.live.web`, mounted); ``/api/meters`` is the same list as JSON;
  ``/metrics`` is every meter's metrics in one scrape, labelled ``meter``.

A control sent from a meter's panel applies from the simulated time the meter has
reached — at most one tick behind the wall clock.
"""

from __future__ import annotations

import heapq
import html
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minimeter.errors import MinimeterError
from minimeter.formats.fleet import Fleet
from minimeter.fleet.population import member
from minimeter.live.metrics import CONTENT_TYPE, FleetCollector, make_registry, metrics_text
from minimeter.live.runner import MAX_TICK_S, LiveMeter
from minimeter.live.services import Services
from minimeter.live.store import Store
from minimeter.meter._kernels import warm

UNITS_PER_PORT = 247               # Modbus unit ids 1–247
MAX_LIVE_METERS = 100_000
TICK_RANGE_S = (0.05, 60.0)
MQTT_CONNECT_S = 10.0              # the broker's answer
WAKE_THREADS = 4                   # threads the wakes due together share (their stores' fsyncs overlap)
COMMIT_EVERY_S = 60.0              # a meter's commits besides its Kh = 10 edges and events [s wall]


class FleetServeError(MinimeterError, ValueError):
    """A live fleet that cannot be served as asked."""


@dataclass(frozen=True)
class ModbusAddress:
    port: int
    unit_id: int


def modbus_address(index: int, base_port: int) -> ModbusAddress:
    """Where meter ``index`` (0-based) answers: port ``base_port + index // 247``, unit id ``index % 247 + 1``."""
    return ModbusAddress(base_port + index // UNITS_PER_PORT, index % UNITS_PER_PORT + 1)


def node_id(name: str) -> str:
    """A meter's name as an MQTT node id and URL path segment: letters, digits, ``-`` and ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "meter"


class _LastPushed:
    """A sink that remembers the last snapshot pushed: whether a wake's feeding already
    published (and committed) the state it ended at."""

    snapshot: Any = None

    def update(self, snapshot: Any) -> None:
        self.snapshot = snapshot

    def committed_at(self, time_s: float) -> bool:
        """Whether the last snapshot pushed is a commit point at simulated time ``time_s`` [s]."""
        snap = self.snapshot
        return snap is not None and snap.commit_point and snap.time_s == time_s


@dataclass(frozen=True)
class ServedMeter:
    """One live meter of the fleet and where it is reachable."""

    index: int
    name: str                      # node id and panel path segment
    live: LiveMeter
    fault: str
    modbus: ModbusAddress
    serial: str
    store: Store | None = None
    last: _LastPushed | None = None

    def as_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "model": self.live.spec.model_number, "fault": self.fault,
                "panel": f"meters/{self.name}/", "modbus_port": self.modbus.port, "unit_id": self.modbus.unit_id,
                "mqtt_node_id": self.name, "serial": self.serial}


def build_meters(fleet: Fleet, *, speed: float, db_dir: str | Path | None, modbus_port: int) -> list[ServedMeter]:
    """Every meter of ``fleet`` as a live meter (restored from its store in ``db_dir``)."""
    if fleet.meters > MAX_LIVE_METERS:
        raise FleetServeError(f"{fleet.meters:,} meters — a live fleet holds at most {MAX_LIVE_METERS:,}")
    if db_dir is not None:
        Path(db_dir).mkdir(parents=True, exist_ok=True)
    served: list[ServedMeter] = []
    names: set[str] = set()
    try:
        for i in range(fleet.meters):
            m = member(fleet, i)
            name = node_id(m.installation.name or f"{fleet.name}-{i:05d}")
            if name in names:
                name = f"{name}-{i:05d}"
            names.add(name)
            store = Store.open(Path(db_dir) / f"{name}.sqlite3") if db_dir is not None else None
            try:
                live = LiveMeter(m.installation, store=store, speed=speed, commit_every_s=COMMIT_EVERY_S)
            except BaseException:
                if store is not None:
                    store.close()
                raise
            last = _LastPushed()
            live.add_sink(last)
            served.append(ServedMeter(i, name, live, m.fault, modbus_address(i, modbus_port), f"MM{i + 1:06d}", store,
                                      last))
    except BaseException:
        for done in served:
            if done.store is not None:
                done.store.close()
        raise
    return served


# --------------------------------------------------------------------------- the web side
def _index_html(fleet: Fleet, served: list[ServedMeter]) -> str:
    e = html.escape
    rows = "\n".join(
        f"<tr><td><a href=\"meters/{e(m.name)}/\">{e(m.name)}</a></td><td>{e(m.live.spec.model_number)}</td>"
        f"<td>{e(m.fault)}</td><td>{m.modbus.port}</td><td>{m.modbus.unit_id}</td><td>{e(m.name)}</td></tr>"
        for m in served)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fleet {e(fleet.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 10px;text-align:left}}</style></head><body>
<h1>Fleet {e(fleet.name)} — {len(served)} live meters</h1>
<p>Each meter's front panel; Modbus/SunSpec at the port and unit id shown; Home Assistant device
(MQTT node id); <a href="metrics">metrics</a> labelled <code>meter</code>; <a href="api/meters">JSON</a>.</p>
<table><tr><th>meter</th><th>model</th><th>fault</th><th>Modbus port</th><th>unit id</th><th>MQTT node id</th></tr>
{rows}
</table></body></html>
"""


def fleet_app(fleet: Fleet, served: list[ServedMeter], collector: FleetCollector, token: str | None = None):
    """The fleet's web app: the index, the JSON list, the fleet's metrics, and each
    meter's panel app mounted at ``/meters/<name>``."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Mount, Route

    from minimeter.live.web import create_app

    page = _index_html(fleet, served)
    listing = [m.as_dict() for m in served]
    registry = make_registry(collector)

    async def index(request):
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def meters(request):
        return JSONResponse(listing)

    async def metrics(request):
        return Response(metrics_text(registry), media_type=CONTENT_TYPE)

    panels = {m.name: create_app(m.live, token=token) for m in served}

    async def no_slash(request):
        return RedirectResponse(f"{request.path_params['name']}/")

    routes = [Route("/", index), Route("/api/meters", meters), Route("/metrics", metrics),
              Route("/meters/{name}", no_slash)]
    routes += [Mount(f"/meters/{name}", app=app) for name, app in panels.items()]
    app = Starlette(routes=routes)
    app.state.panels = panels
    return app


# --------------------------------------------------------------------------- the fleet
@dataclass(frozen=True)
class ServeOptions:
    """Where and how a live fleet is served (a port 0 or URL None: not served)."""

    host: str = "127.0.0.1"
    port: int = 8000
    modbus_port: int = 5020
    mqtt_url: str | None = None
    mqtt_interval_s: float = 30.0           # a device's states looked at this often [s] …
    mqtt_refresh_s: float = 60.0            # … and published when changed, or all of them this often [s]
    token: str | None = None
    speed: float = 1.0
    tick_s: float = MAX_TICK_S
    db_dir: str | None = None


class FleetServer:
    """Every meter of a fleet live in this process (see the module's docstring)."""

    def __init__(self, fleet: Fleet, options: ServeOptions) -> None:
        if not TICK_RANGE_S[0] <= options.tick_s <= TICK_RANGE_S[1]:
            raise FleetServeError(f"--tick {options.tick_s:g} s is outside {TICK_RANGE_S[0]:g} … {TICK_RANGE_S[1]:g} s")
        if options.modbus_port and options.modbus_port + (fleet.meters - 1) // UNITS_PER_PORT > 65535:
            raise FleetServeError(f"{fleet.meters:,} meters need Modbus ports {options.modbus_port} … "
                                  f"{options.modbus_port + (fleet.meters - 1) // UNITS_PER_PORT}, beyond 65535")
        self.fleet, self.options = fleet, options
        self.meters: list[ServedMeter] = []
        self.collector = FleetCollector()
        self.web_port: int | None = None
        self._services: Services | None = None
        self._mqtt: Any = None
        self._closed = False
        self.max_lag_s = 0.0            # the latest a wake came after its due time in :meth:`run` [s wall]

    def start(self) -> None:
        """Build the live meters (restored from their stores) and serve the web index,
        Modbus and MQTT (whichever the options ask for).

        The MQTT connection is opened first: paho waits on its sockets with ``select()``,
        which takes no descriptor numbered 1024 or more, and a thousand stores open four
        descriptors each — so the connection's are taken while the numbers are low (a
        reconnect reuses the lowest free number, its own)."""
        o = self.options
        try:
            if o.mqtt_url:
                self._connect_mqtt()
            self.meters = build_meters(self.fleet, speed=o.speed, db_dir=o.db_dir, modbus_port=o.modbus_port)
            for m in self.meters:
                m.live.add_sink(self.collector.sink(m.name, serial=m.serial))
            self._services = Services("minimeter-fleet-services")
            if o.modbus_port:
                self._start_modbus()
            if o.mqtt_url:
                self._add_publishers()
            if o.port:
                app = fleet_app(self.fleet, self.meters, self.collector, o.token)
                self.web_port = self._services.start_web(app, o.host, o.port, lifespan="off",
                                                         what="the fleet's web index", error=FleetServeError)
        except BaseException:
            self.stop()
            raise

    def _start_modbus(self) -> None:
        from minimeter.live.modbus import SunSpecDevice, SunSpecServer

        ports: dict[int, dict[int, SunSpecDevice]] = {}
        for m in self.meters:
            device = SunSpecDevice(serial=m.serial, elements=m.live.spec.elements)
            m.live.add_sink(device)
            ports.setdefault(m.modbus.port, {})[m.modbus.unit_id] = device
        for port, devices in ports.items():
            self._services.start_modbus(SunSpecServer(self.options.host, port, devices=devices), error=FleetServeError)

    def _connect_mqtt(self) -> None:
        from minimeter.live.mqtt import MqttConnection

        self._mqtt = MqttConnection(self.options.mqtt_url, client_id=f"minimeter-fleet-{node_id(self.fleet.name)}")
        self._mqtt.start(timeout_s=MQTT_CONNECT_S)

    def _add_publishers(self) -> None:
        """One Home Assistant device per meter on the shared connection (each announced as it joins)."""
        from minimeter.live.mqtt import HomeAssistantPublisher

        for m in self.meters:
            publisher = HomeAssistantPublisher(self._mqtt, node_id=m.name, model=m.live.spec.model_number,
                                               elements=m.live.spec.elements, serial=m.serial,
                                               min_interval_s=self.options.mqtt_interval_s,
                                               refresh_s=self.options.mqtt_refresh_s)
            m.live.add_sink(publisher)
            publisher.start()

    def run(self, stop: threading.Event, *, seconds: float | None = None) -> None:
        """The one loop: wake each meter every tick (staggered), feed it to the wall
        clock's simulated time and publish; until ``stop`` or ``seconds`` of wall time.
        At the end every meter's state is committed."""
        warm()          # every compiled kernel loaded before the first wake, not at its first use
        tick = self.options.tick_s
        wall0 = time.monotonic()
        sim0 = [m.live.time_s for m in self.meters]
        n = len(self.meters)
        wakes = [(wall0 + tick * (i + 1) / n, i) for i in range(n)]
        heapq.heapify(wakes)
        end = wall0 + seconds if seconds is not None else float("inf")
        with ThreadPoolExecutor(WAKE_THREADS, thread_name_prefix="minimeter-fleet-wake") as pool:
            while not stop.is_set():
                now = time.monotonic()
                if now >= end:
                    break
                if wakes[0][0] > now:
                    stop.wait(min(wakes[0][0], end) - now)
                    continue
                due: list[int] = []
                while wakes and wakes[0][0] <= now:
                    self.max_lag_s = max(self.max_lag_s, now - wakes[0][0])
                    due.append(heapq.heapreplace(wakes, (wakes[0][0] + tick, wakes[0][1]))[1])
                target = [sim0[i] + (now - wall0) * self.options.speed for i in due]
                if len(due) == 1:
                    self._wake(self.meters[due[0]], target[0])
                else:
                    list(pool.map(self._wake, [self.meters[i] for i in due], target))
            list(pool.map(lambda m: m.live.publish(), self.meters))        # (the commits' disk waits overlap)

    @staticmethod
    def _wake(served: ServedMeter, target_s: float) -> None:
        """Feed one meter to ``target_s`` [s simulated] and publish where it got to: a commit
        point if an event came or :data:`COMMIT_EVERY_S` passed (feeding commits at the
        Kh = 10 edges itself)."""
        live = served.live
        live.advance_to(target_s)
        if not served.last.committed_at(live.time_s):
            live.publish(commit_point=live.events_waiting() or live.commit_due())

    def stop(self) -> None:
        """Stop serving; every meter's last state is committed (its store closed)."""
        if self._mqtt is not None:
            self._mqtt.stop()
            self._mqtt = None
        if self._services is not None:
            web = self._services.web_app
            self._services.stop(web.state.panels.values() if web is not None else ())
            self._services = None
        if not self._closed:
            self._closed = True
            for m in self.meters:
                if m.store is not None:
                    m.store.close()


__all__ = ["FleetServer", "ServeOptions", "ServedMeter", "modbus_address", "node_id", "fleet_app", "build_meters",
           "UNITS_PER_PORT", "COMMIT_EVERY_S", "FleetServeError"]
