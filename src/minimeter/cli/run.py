"""``minimeter run`` (what ``make run`` runs): a live Mini Meter on the network.

A meter on a simulated installation (a file, or the built-in household day), running in
real time (``--speed 1``) or accelerated, its register in SQLite, its front panel in the
browser and in the terminal, answering Modbus/SunSpec, publishing to MQTT and serving
Prometheus metrics. It stops after ``--hours`` of simulated time (0: never) or on
SIGINT/SIGTERM — a clean stop loses nothing — and prints the run's summary.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass, replace

import click
from rich.console import Console
from rich.live import Live

from minimeter.errors import MinimeterError
from minimeter.formats import LOAD_HELP, parse_fault, parse_load
from minimeter.formats.installation import load_installation
from minimeter.sources.installation import default_installation
from minimeter.live.runner import LiveMeter
from minimeter.live.services import Services
from minimeter.live.stream import Snapshot
from minimeter.lab.simulation import SimulationResult
from minimeter.meter.register import watt_hours
from minimeter.cli._args import parsed
from minimeter.cli._panel import PanelSink, front_panel
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


def _model_ids(text: str | None) -> tuple[int, ...] | None:
    """``--sunspec-models 203,213`` → (203, 213); the server checks them against the meter."""
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: SunSpec model ids separated by commas, e.g. 203,213",
                                 param_hint="--sunspec-models") from None


@dataclass(frozen=True)
class _Network:
    """Where the sinks people connect to are served (0 / None: not served)."""

    host: str
    port: int
    token: str | None
    modbus_port: int
    mqtt_url: str | None
    mqtt_interval_s: float
    node_id: str
    sunspec_models: tuple[int, ...] | None = None     # None: by element count


class _RunLog:
    """A sink: the events of this run, for the summary (every snapshot carries the events
    since the one before it)."""

    def __init__(self) -> None:
        self.result = SimulationResult(duration_s=0.0, mode="phasor", sample_rate_hz=None)

    def update(self, snapshot: Snapshot) -> None:
        self.result.keep_events(snapshot.events)


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
@click.option("--sunspec-models", default=None, metavar="IDS",
              help="SunSpec meter models to serve, e.g. 203,213 for clients that probe only 201/211/203/213 "
                   "(evcc) [default: 201,211 for one element, 202,212 for two].")
@click.option("--mqtt", "mqtt_url", default=None, metavar="URL",
              help="Publish to this broker for Home Assistant, e.g. mqtt://localhost:1883.")
@click.option("--mqtt-interval", type=float, default=1.0, show_default=True, help="Seconds between MQTT states.")
@click.option("--node-id", default="minimeter", show_default=True, help="MQTT / Home Assistant device id.")
@click.option("--load", "loads", multiple=True, metavar="SPEC", help="Replace the installation's loads: " + LOAD_HELP)
@click.option("--fault", "faults", multiple=True, metavar="KIND[:NAME=VALUE,…]",
              help="A wiring fault to start with, e.g. ct-reversed:ct=CT2.")
@click.option("--panel/--no-panel", default=None, help="The terminal front panel [default: when on a terminal].")
def run_command(installation_file, hours, speed, until_hours, db_path, no_store, host, port, token,
                modbus_port, sunspec_models, mqtt_url, mqtt_interval, node_id, loads, faults, panel) -> None:
    """Run a Mini Meter continuously: web panel, Modbus/SunSpec, MQTT, metrics, and a
    crash-safe register. By default a 7B on the built-in household day, one simulated
    day in 24 s with the panel on http://127.0.0.1:8000, then the day's summary."""
    from minimeter.live.store import Store  # noqa: PLC0415

    console = Console()
    inst, hours = _installation(installation_file, hours, speed, loads, faults)
    store = None if no_store else Store.open(db_path or default_db_path())     # S10.2: the writer's lock first
    try:
        net = _network(_Network(host, port, token, modbus_port, mqtt_url, mqtt_interval, node_id,
                                _model_ids(sunspec_models)))
        live = LiveMeter(inst, store=store, speed=speed)
    except BaseException:
        if store is not None:
            store.close()                                 # (and its lock) before the error is shown
        raise
    log = _RunLog()
    live.add_sink(log)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    services = Services()
    publisher = None
    try:
        publisher = _serve(live, services, net)
        _announce(console, live, inst, store, net, hours, speed)
        until_s = until_hours * 3600.0 if until_hours is not None else None
        wall0 = time.perf_counter()
        panel_shown = _run(console, live, stop, panel, hours or None, until_s)
    finally:
        if publisher is not None:
            publisher.stop()
        services.stop()
        if store is not None:
            store.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    _summary(console, live, log.result, time.perf_counter() - wall0, panel_shown)


def _installation(installation_file, hours, speed, loads, faults):
    """The installation to run, with the options' loads and faults, and the hours to run."""
    inst = load_installation(installation_file) if installation_file else default_installation()
    if hours is None:
        hours = inst.duration_s / 3600.0 if getattr(inst, "duration_s", None) else 24.0
    if hours < 0 or speed < 0:
        raise MinimeterError("--hours and --speed must be ≥ 0")
    if loads:
        inst = inst.with_loads(tuple(parsed(parse_load, spec, "--load") for spec in loads))
    for text in faults:
        fault = parsed(parse_fault, text, "--fault")
        inst = inst.with_fault(fault.kind, **dict(fault.params))
    return inst, hours


def _network(net: _Network) -> _Network:
    """Check the ports are free and distinct; make up a token for a panel beyond loopback."""
    from minimeter.live.web import is_loopback  # noqa: PLC0415

    if net.port and net.port == net.modbus_port:
        raise MinimeterError(f"--port and --modbus-port are both {net.port}; give them different ports")
    if net.port:
        _check_port_free(net.host, net.port, "the web panel", "--port")
    if net.modbus_port:
        _check_port_free(net.host, net.modbus_port, "Modbus", "--modbus-port")
    if net.port and not is_loopback(net.host) and not net.token:
        return replace(net, token=secrets.token_urlsafe(12))
    return net


def _serve(live: LiveMeter, services: Services, net: _Network):
    """Add the network sinks to ``live`` and start serving them; the MQTT publisher (to
    stop at the end) or None."""
    if net.port:
        from minimeter.live.web import create_app  # noqa: PLC0415

        services.start_web(create_app(live, token=net.token), net.host, net.port)
    if net.modbus_port:
        from minimeter.live.modbus import SunSpecServer  # noqa: PLC0415

        modbus = SunSpecServer(net.host, net.modbus_port, models=net.sunspec_models, elements=live.spec.elements)
        live.add_sink(modbus)
        services.start_modbus(modbus)
    if not net.mqtt_url:
        return None
    from minimeter.live.mqtt import HomeAssistantPublisher  # noqa: PLC0415

    publisher = HomeAssistantPublisher(net.mqtt_url, node_id=net.node_id, model=live.spec.model_number,
                                       elements=live.spec.elements, min_interval_s=net.mqtt_interval_s)
    live.add_sink(publisher)
    publisher.start()
    return publisher


def _run(console: Console, live: LiveMeter, stop: threading.Event, panel: bool | None, hours, until_s) -> bool:
    """Run the meter, with the terminal panel as one more sink when wanted (its last
    frame, drawn when the run ends, stays on screen as the final panel): whether it was."""
    if not (console.is_terminal if panel is None else panel):
        live.run(stop, hours=hours, until_s=until_s)
        return False
    face = PanelSink()
    live.add_sink(face)
    with Live(face, console=console, refresh_per_second=10):
        live.run(stop, hours=hours, until_s=until_s)
    return True


def _announce(console, live: LiveMeter, inst, store, net: _Network, hours, speed) -> None:
    shown = f"[{net.host}]" if ":" in net.host else net.host
    console.print(f"[bold]Mini Meter {live.spec.model_number}[/] — {getattr(inst, 'name', '') or 'installation'}: "
                  f"{getattr(inst, 'description', '')}")
    if store is not None:
        if live.restored is not None:
            console.print(f"  store {store.path}: restored register {watt_hours(live.restored.meter.register_quanta) / 1000:.3f} kWh "
                          f"at simulated {live.restored.time_s / 3600:.2f} h")
        else:
            console.print(f"  store {store.path}: new meter")
    if net.port:
        console.print(f"Web panel on http://{shown}:{net.port}  (metrics: http://{shown}:{net.port}/metrics)")
        if net.token:
            console.print(f"  controls need the token: {net.token}")
    if net.modbus_port:
        from minimeter.live.modbus import meter_models  # noqa: PLC0415

        served = meter_models(live.spec.elements, net.sunspec_models)
        console.print(f"Modbus TCP / SunSpec on {shown}:{net.modbus_port} "
                      f"(models 1, {', '.join(map(str, served[:-1]))} and {served[-1]})" if len(served) > 1 else
                      f"Modbus TCP / SunSpec on {shown}:{net.modbus_port} (models 1 and {served[0]})")
    if net.mqtt_url:
        console.print(f"MQTT to {net.mqtt_url} (Home Assistant discovery)")
    span = f"{hours:g} simulated hours" if hours else "until stopped (Ctrl-C)"
    pace = "flat out" if speed == 0 else ("real time" if speed == 1 else f"×{speed:g}")
    console.print(f"Running {span}, {pace}.", highlight=False)


def _summary(console: Console, live: LiveMeter, result: SimulationResult, wall_s: float, panel_shown: bool) -> None:
    """This run's registered energy against the analytic energy of the sources that fed it:
    the final panel (the meter's clock, lifetime closures; unless the live one is on
    screen), the run's table, and one line with this run's and the lifetime figures."""
    start = live.start_state
    result.duration_s = live.time_s - live.start_time_s
    result.cycles = live.cycles_fed
    result.wall_s = wall_s
    per, delivered = live.analytic()
    result.score(live.meter, watt_hours(start.register_quanta), per, delivered)
    result.reverse_wh = watt_hours(live.meter.reverse_quanta - start.reverse_quanta)       # this run's
    result.closures = {name: n - start.closures_of(name) for name, n in result.closures.items()}
    if not panel_shown:
        console.print(front_panel(live.meter, live.time_s))
    print_summary(console, live.meter, result, panel=False)
    lifetime = ", ".join(f"{name}: {live.meter.closures(name)}" for name in result.closures)
    console.print(f"[bold]This run: {result.duration_s / 3600:.2f} simulated h, {result.registered_wh / 1000:.3f} kWh[/] "
                  f"(register {live.meter.watt_hours / 1000:.3f} kWh since new); closures this run "
                  + ", ".join(f"output {k}: {v}" for k, v in result.closures.items())
                  + f" (since new {lifetime}) — registered vs analytic "
                  + ("[green]PASS[/]" if result.passed else "[red]FAIL[/]"))
    if not result.passed:
        raise SystemExit(1)


COMMANDS = [run_command]
