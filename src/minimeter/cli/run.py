"""``minimeter run`` (what ``make run`` runs): a live Mini Meter on the network.

A meter on a simulated installation (a file, or the built-in household day), running in
real time (``--speed 1``) or accelerated, its register in SQLite, its front panel in the
browser and in the terminal, answering Modbus/SunSpec, publishing to MQTT and serving
Prometheus metrics. It stops after ``--hours`` of simulated time (0: never) or on
SIGINT/SIGTERM — a clean stop loses nothing — and prints the run's summary.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import threading
import time

import click
from rich.console import Console
from rich.live import Live

from minimeter.errors import MinimeterError
from minimeter.sources.installation import default_installation, load_installation
from minimeter.live.runner import LiveMeter
from minimeter.lab.simulation import SimulationResult
from minimeter.cli._args import LOAD_HELP, parse_load
from minimeter.cli._panel import front_panel
from minimeter.cli.simulate import print_summary


def default_db_path() -> str:
    """``$XDG_DATA_HOME/minimeter/meter.sqlite3`` (``~/.local/share/…`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "minimeter", "meter.sqlite3")


def _check_port_free(host: str, port: int, what: str, option: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise MinimeterError(f"cannot serve {what} on {host}:{port}: {exc.strerror} — choose another {option}") from None


def _parse_fault(text: str) -> tuple[str, dict]:
    """'ct-reversed:ct=CT2' → ('ct-reversed', {'ct': 'CT2'})."""
    kind, _, rest = text.partition(":")
    params = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise click.BadParameter(f"fault parameter {part!r} in {text!r} must be NAME=VALUE")
        try:
            params[key.strip()] = float(value) if key.strip() in ("amps", "volts", "hz") else value.strip()
        except ValueError:
            raise click.BadParameter(f"fault parameter {part!r} in {text!r} needs a number") from None
    return kind.strip(), params


class _Services:
    """The asyncio side (web panel, Modbus) in its own thread; the meter keeps the main one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="minimeter-services", daemon=True)
        self.thread.start()
        self.web_server = None
        self.web_app = None
        self.modbus = None
        self._futures = []

    def start_web(self, app, host: str, port: int) -> None:
        import uvicorn  # noqa: PLC0415

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=1, access_log=False)
        self.web_server = uvicorn.Server(config)
        self.web_app = app
        self._futures.append(asyncio.run_coroutine_threadsafe(self.web_server.serve(), self.loop))
        deadline = time.monotonic() + 10.0
        while not self.web_server.started:
            if self._futures[-1].done() or time.monotonic() > deadline:
                raise MinimeterError(f"the web panel could not start on {host}:{port}")
            time.sleep(0.02)

    def start_modbus(self, server) -> None:
        self.modbus = server
        future = asyncio.run_coroutine_threadsafe(server.serve(), self.loop)
        self._futures.append(future)
        deadline = time.monotonic() + 10.0
        while not server.listening:
            if future.done() or time.monotonic() > deadline:
                raise MinimeterError(f"Modbus could not start on {server.host}:{server.port} — choose another --modbus-port")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.web_server is not None:
            self.loop.call_soon_threadsafe(self.web_app.state.stopping.set)
            self.web_server.should_exit = True
        if self.modbus is not None:
            try:
                asyncio.run_coroutine_threadsafe(self.modbus.stop(), self.loop).result(timeout=3)
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass
        for fut in self._futures:
            try:
                fut.result(timeout=5)
            except Exception:  # noqa: BLE001 - a server that failed has said so already
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@click.command("run")
@click.argument("installation_file", required=False, type=click.Path(dir_okay=False))
@click.option("--hours", type=float, default=None,
              help="Simulated hours to run, then print the summary and stop (0: run until stopped) "
                   "[default: the installation file's duration, else 24].")
@click.option("--speed", type=float, default=3600.0, show_default=True,
              help="Simulated seconds per wall second: 1 is real time, 60 a minute a second, 0 flat out.")
@click.option("--until-hours", type=float, default=None,
              help="Stop once the meter's simulated clock (kept in the store) reaches this many hours.")
@click.option("--db", "db_path", default=None, help="The SQLite store [default: ~/.local/share/minimeter/meter.sqlite3].")
@click.option("--no-store", is_flag=True, help="Keep nothing: a meter starting from zero, not persisted.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web panel and Modbus bind.")
@click.option("--port", type=int, default=8000, show_default=True, help="Web panel port (0: no web panel).")
@click.option("--token", default=None,
              help="Token the panel's controls need (one is made up when --host is not loopback).")
@click.option("--modbus-port", type=int, default=5020, show_default=True,
              help="Modbus TCP / SunSpec port (0: no Modbus).")
@click.option("--mqtt", "mqtt_url", default=None, metavar="URL",
              help="Publish to this broker for Home Assistant, e.g. mqtt://localhost:1883.")
@click.option("--mqtt-interval", type=float, default=1.0, show_default=True, help="Seconds between MQTT states.")
@click.option("--node-id", default="minimeter", show_default=True, help="MQTT / Home Assistant device id.")
@click.option("--load", "loads", multiple=True, metavar="SPEC", help="Replace the installation's loads: " + LOAD_HELP)
@click.option("--fault", "faults", multiple=True, metavar="KIND[:NAME=VALUE,…]",
              help="A wiring fault to start with, e.g. ct-reversed:ct=CT2.")
@click.option("--panel/--no-panel", default=None, help="The terminal front panel [default: when on a terminal].")
def run_command(installation_file, hours, speed, until_hours, db_path, no_store, host, port, token,
                modbus_port, mqtt_url, mqtt_interval, node_id, loads, faults, panel) -> None:
    """Run a Mini Meter continuously: web panel, Modbus/SunSpec, MQTT, metrics, and a
    crash-safe register. By default a 7B on the built-in household day, one simulated
    day in 24 s with the panel on http://127.0.0.1:8000, then the day's summary."""
    from minimeter.live.store import Store  # noqa: PLC0415

    console = Console()
    inst = load_installation(installation_file) if installation_file else default_installation()
    if hours is None:
        hours = inst.duration_s / 3600.0 if getattr(inst, "duration_s", None) else 24.0
    if hours < 0 or speed < 0:
        raise MinimeterError("--hours and --speed must be ≥ 0")
    if loads:
        inst = inst.with_loads(tuple(parse_load(spec) for spec in loads))
    for text in faults:
        kind, params = _parse_fault(text)
        inst = inst.with_fault(kind, **params)

    from minimeter.live.web import is_loopback  # noqa: PLC0415

    if port and not is_loopback(host) and not token:
        token = secrets.token_urlsafe(12)
    if port and port == modbus_port:
        raise MinimeterError(f"--port and --modbus-port are both {port}; give them different ports")
    if port:
        _check_port_free(host, port, "the web panel", "--port")
    if modbus_port:
        _check_port_free(host, modbus_port, "Modbus", "--modbus-port")

    store = None if no_store else Store.open(db_path or default_db_path())
    live = LiveMeter(inst, store=store, speed=speed)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    services = _Services()
    publisher = None
    try:
        if port:
            from minimeter.live.web import create_app  # noqa: PLC0415

            services.start_web(create_app(live, token=token), host, port)
        if modbus_port:
            from minimeter.live.modbus import SunSpecServer  # noqa: PLC0415

            modbus = SunSpecServer(host, modbus_port)
            modbus.update(live.latest)
            live.subscribe(modbus.update)
            services.start_modbus(modbus)
        if mqtt_url:
            from minimeter.live.mqtt import HomeAssistantPublisher  # noqa: PLC0415

            publisher = HomeAssistantPublisher(mqtt_url, node_id=node_id, model=live.spec.model_number,
                                               elements=live.spec.elements, min_interval_s=mqtt_interval)
            publisher.update(live.latest)
            publisher.start()
            live.subscribe(publisher.update)
        _announce(console, live, inst, store, host, port, token, modbus_port, mqtt_url, hours, speed)
        use_panel = console.is_terminal if panel is None else panel
        until_s = until_hours * 3600.0 if until_hours is not None else None
        wall0 = time.perf_counter()
        if use_panel:
            with Live(_panel(live), console=console, refresh_per_second=10) as screen:
                live.run(stop, hours=hours or None, until_s=until_s, on_step=lambda: screen.update(_panel(live)))
        else:
            live.run(stop, hours=hours or None, until_s=until_s)
    finally:
        live.closed = True
        if publisher is not None:
            publisher.stop()
        services.stop()
        if store is not None:
            store.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    _summary(console, live, time.perf_counter() - wall0)


def _panel(live: LiveMeter):
    snap = live.latest
    return front_panel(live.meter, snap.time_s, list(snap.power_w),
                       title=f"Mini Meter {snap.model_number} — live ×{snap.speed:g}")


def _announce(console, live, inst, store, host, port, token, modbus_port, mqtt_url, hours, speed) -> None:
    shown = f"[{host}]" if ":" in host else host
    console.print(f"[bold]Mini Meter {live.spec.model_number}[/] — {getattr(inst, 'name', '') or 'installation'}: "
                  f"{getattr(inst, 'description', '')}")
    if store is not None:
        if live.restored is not None:
            console.print(f"  store {store.path}: restored register {live.restored.watt_hours / 1000:.3f} kWh "
                          f"at simulated {live.restored.time_s / 3600:.2f} h")
        else:
            console.print(f"  store {store.path}: new meter")
    if port:
        console.print(f"Web panel on http://{shown}:{port}  (metrics: http://{shown}:{port}/metrics)")
        if token:
            console.print(f"  controls need the token: {token}")
    if modbus_port:
        console.print(f"Modbus TCP / SunSpec on {shown}:{modbus_port} (models 1 and {200 + live.spec.elements})")
    if mqtt_url:
        console.print(f"MQTT to {mqtt_url} (Home Assistant discovery)")
    span = f"{hours:g} simulated hours" if hours else "until stopped (Ctrl-C)"
    pace = "flat out" if speed == 0 else ("real time" if speed == 1 else f"×{speed:g}")
    console.print(f"Running {span}, {pace}.", highlight=False)


def _summary(console: Console, live: LiveMeter, wall_s: float) -> None:
    duration = live.time_s - live.start_time_s
    per, delivered = live.analytic()
    result = SimulationResult(duration_s=duration, mode="phasor", sample_rate_hz=None)
    result.cycles = live.cycles_fed
    result.wall_s = wall_s
    result.score(live.meter, live.start_watt_hours, per, delivered)
    result.keep_events([e for e in live.events() if e.time_s >= live.start_time_s])
    print_summary(console, live.meter, result)
    console.print(f"[bold]This run: {duration / 3600:.2f} simulated h, {result.registered_wh / 1000:.3f} kWh[/] "
                  f"(register {live.meter.watt_hours / 1000:.3f} kWh); closures "
                  + ", ".join(f"output {k}: {v}" for k, v in result.closures.items())
                  + f" — registered vs analytic {'[green]PASS[/]' if result.passed else '[red]FAIL[/]'}")
    if not result.passed:
        raise SystemExit(1)


COMMANDS = [run_command]

