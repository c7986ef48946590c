"""``minimeter export``: a store's interval data and event log as CSV."""

from __future__ import annotations

import sys

import click

from minimeter.live.store import open_existing


@click.command("export")
@click.option("--db", "db_path", default=None, help="The store [default: the one `minimeter run` uses].")
@click.option("--intervals", "intervals_path", default=None, metavar="FILE",
              help="Write the 15-minute interval data (kWh and average W per element) here ('-': stdout).")
@click.option("--events", "events_path", default=None, metavar="FILE", help="Write the event log here ('-': stdout).")
@click.option("--registers", "registers_path", default=None, metavar="FILE",
              help="Write the registers here: forward kWh, import/export per element, reactive energy per "
                   "quadrant, apparent energy, maximum demand ('-': stdout).")
def export_command(db_path, intervals_path, events_path, registers_path) -> None:
    """Export a meter's interval data, event log and registers as CSV. Without --intervals,
    --events or --registers, the interval data goes to stdout."""
    from minimeter.cli.run import default_db_path  # noqa: PLC0415

    store = open_existing(db_path or default_db_path())
    try:
        if intervals_path is None and events_path is None and registers_path is None:
            intervals_path = "-"
        for path, write, what in ((intervals_path, store.export_intervals_csv, "interval rows"),
                                  (events_path, store.export_events_csv, "events"),
                                  (registers_path, store.export_registers_csv, "registers")):
            if path is None:
                continue
            if path == "-":
                write(sys.stdout)
                continue
            with open(path, "w", newline="", encoding="utf-8") as out:
                rows = write(out)
            click.echo(f"{rows} {what} → {path}", err=True)
    finally:
        store.close()


COMMANDS = [export_command]
