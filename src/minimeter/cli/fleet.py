"""``minimeter fleet``: many meters (SPEC §14) — ``run`` a fleet file on Dask, ``report``
its results as HTML, ``serve`` it live."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from minimeter.formats.fleet import load_fleet
from minimeter.fleet.archive import analyze_archive, expand
from minimeter.fleet.cluster import dask_client
from minimeter.fleet.report import DEFAULT_TARIFF_PER_KWH, write_report
from minimeter.fleet.run import DEFAULT_PARTITION_METERS, read_table, run_fleet
from minimeter.fleet.serve import COMMIT_EVERY_S, FleetServer, ServeOptions, node_id
from minimeter.live.runner import MAX_TICK_S
from minimeter.live.web import is_loopback


def cluster_options(func):
    """``--workers N`` (local cluster) or ``--scheduler tcp://HOST:PORT`` (an existing one)."""
    func = click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="An existing Dask cluster's scheduler (default: a local cluster).")(func)
    return click.option("--workers", type=int, default=None,
                        help="Worker processes of the local cluster (default: this machine's cores).")(func)


@click.group("fleet")
def fleet_group() -> None:
    """Many meters: run a fleet on Dask, report it, or serve it live."""


@fleet_group.command("run")
@click.argument("fleet_file", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Results folder (Parquet).")
@cluster_options
@click.option("--partition", "partition_meters", type=int, default=DEFAULT_PARTITION_METERS, show_default=True,
              help="Meters per Dask task.")
def run_command(fleet_file, out, workers, scheduler, partition_meters) -> None:
    """Run every meter of FLEET_FILE on the phasor path, one Dask task per partition, and
    write interval energy, registers, closures, events and each diagnosis as Parquet."""
    fleet = load_fleet(fleet_file)
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with dask_client(scheduler, workers) as client, Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"{fleet.name}: meters", total=fleet.meters)
        run_fleet(fleet, out, client, partition_meters=partition_meters,
                  on_done=lambda n: bar.advance(task, n))
    meters = read_table(out, "meters")
    faulty = meters[meters.injected != "none"]
    period = f"{fleet.period_s / 86400:g} d" if fleet.period_s >= 86400 else f"{fleet.period_s / 3600:g} h"
    click.echo(f"{fleet.name}: {len(meters)} meters × {period} → {out}")
    click.echo(f"  registered {meters.registered_wh.sum() / 1000:,.3f} kWh of "
               f"{meters.true_delivered_wh.sum() / 1000:,.3f} kWh delivered")
    click.echo(f"  injected faults {len(faulty)}, named {int(faulty.named.sum())}; diagnosis right on "
               f"{int(meters.diagnosis_ok.sum())} of {len(meters)} meters")


@fleet_group.command("report")
@click.argument("results", type=click.Path(file_okay=False))
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Report file (default: RESULTS/report.html).")
@click.option("--tariff", type=float, default=DEFAULT_TARIFF_PER_KWH, show_default=True,
              help="Energy price per kWh, to cost the revenue lost.")
@click.option("--currency", default="$", show_default=True, help="Currency symbol.")
def report_command(results, html_path, tariff, currency) -> None:
    """An HTML report of a fleet's RESULTS folder: load curve, registration per meter,
    injected against diagnosed faults, the installations losing the most revenue."""
    path = write_report(results, html_path or Path(results) / "report.html", tariff_per_kwh=tariff, currency=currency)
    click.echo(f"report: {path}")


def _default_db_dir(fleet_name: str) -> str:
    """``$XDG_DATA_HOME/minimeter/fleets/<fleet>`` (``~/.local/share/…`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "minimeter", "fleets", node_id(fleet_name))


@fleet_group.command("serve")
@click.argument("fleet_file", type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Web index and panels (0: none).")
@click.option("--modbus-port", type=click.IntRange(0, 65535), default=5020, show_default=True,
              help="First Modbus/SunSpec port: meter i on port + i // 247, unit id i % 247 + 1 (0: none).")
@click.option("--mqtt", "mqtt_url", default=None, metavar="URL", help="MQTT broker, e.g. mqtt://127.0.0.1:1883/minimeter.")
@click.option("--mqtt-interval", type=float, default=30.0, show_default=True, help="Seconds between a device's states.")
@click.option("--db-dir", default=None, type=click.Path(file_okay=False),
              help="One store per meter here (default: $XDG_DATA_HOME/minimeter/fleets/<fleet>). A meter commits at "
                   f"each change of its Kh = 10 output, at events and every {COMMIT_EVERY_S:g} s: a crash loses less "
                   f"than one Kh = 10 pulse's energy, as `run`, and at most {COMMIT_EVERY_S:g} s of clock and "
                   "intervals, fed again on restart.")
@click.option("--no-store", is_flag=True, help="Do not persist the meters.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Simulated seconds per wall second.")
@click.option("--tick", "tick_s", type=float, default=MAX_TICK_S, show_default=True,
              help="Each meter is fed and published once per this many wall seconds.")
@click.option("--seconds", type=float, default=None, help="Stop after this many wall seconds (default: until Ctrl-C).")
@click.option("--token", default=None, help="Bearer token for the panels' controls (required beyond loopback).")
def serve_command(fleet_file, host, port, modbus_port, mqtt_url, mqtt_interval, db_dir, no_store, speed, tick_s,
                  seconds, token) -> None:
    """Run every meter of FLEET_FILE live in this process: a web index linking each
    meter's front panel, Modbus/SunSpec by unit id, one MQTT device per meter, /metrics
    labelled by meter, each meter persisted."""
    if port and not is_loopback(host) and not token:
        raise click.UsageError(f"--host {host} serves beyond this machine: give --token for the panels' controls")
    fleet = load_fleet(fleet_file)
    options = ServeOptions(host=host, port=port, modbus_port=modbus_port, mqtt_url=mqtt_url,
                           mqtt_interval_s=mqtt_interval, token=token, speed=speed, tick_s=tick_s,
                           db_dir=None if no_store else (db_dir or _default_db_dir(fleet.name)))
    click.echo(f"{fleet.name}: starting {fleet.meters} live meters …", err=True)
    server = FleetServer(fleet, options)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        last = server.meters[-1].modbus
        click.echo(f"web http://{host}:{server.web_port}/ ; " if server.web_port else "", nl=False)
        if modbus_port:
            click.echo(f"Modbus ports {modbus_port}…{last.port} (meter i: port {modbus_port} + i // 247, "
                       f"unit id i % 247 + 1)", nl=False)
        click.echo(f"; store {options.db_dir}" if options.db_dir else "; not persisted")
        server.run(stop, seconds=seconds)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"{fleet.name}: stopped; {len(server.meters)} meters at "
               f"{min(m.live.time_s for m in server.meters):,.1f} s simulated or more; wakes at most "
               f"{server.max_lag_s:.2f} s late")


def analyze_archive_command(pattern: str, out: str, workers, scheduler, channel_map, sample_rate, chunk_frames,
                            hysteresis, one_file: tuple = ()) -> None:
    """``minimeter analyze PATTERN --out FILE``: every file PATTERN names, one Dask task
    each; a row per file and element, a bad file's error in its row (not fatal).
    ``one_file``: the values of the options that apply to one file only (must be unset)."""
    if any(one_file):
        raise click.UsageError("--columns, --names, --scales, --cycles-out and --json apply to one file, "
                               "not to an archive (a glob or --out)")
    files = expand(pattern)
    console = Console(stderr=True)
    columns = (TextColumn("analyze"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with dask_client(scheduler, workers) as client, Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("files", total=len(files))
        rows = analyze_archive(files, client, out, on_done=lambda n: bar.advance(task, n), channel_map=channel_map,
                               sample_rate_hz=sample_rate, chunk_frames=chunk_frames, hysteresis_v=hysteresis)
    failed = rows[rows.error.notna()]
    click.echo(f"{len(files)} file(s), {len(rows) - len(failed)} element row(s) → {out}; "
               f"{len(failed)} file(s) failed")
    for row in failed.itertuples():
        click.echo(f"  {row.file}: {row.error}", err=True)


COMMANDS = [fleet_group]
