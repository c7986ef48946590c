"""``minimeter analyze FILE`` (metrology only, any number of elements) and
``minimeter meter FILE`` (the whole meter fed from a recording)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from minimeter.drive import feed_samples
from minimeter.errors import MinimeterError
from minimeter.lab.analysis import HYSTERESIS_FRACTION, MappedRecording, analyze, cut_on, cycle_rows, map_recording
from minimeter.lab.calibration import load_calibration
from minimeter.lab.pulses import EdgeWriter, start_epoch_of
from minimeter.lab.windows import window_rows
from minimeter.meter.power import window_cycles
from minimeter.meter.catalog import meter_spec
from minimeter.meter.core import Meter, max_hysteresis_v
from minimeter.sources.recordings import DEFAULT_CHUNK_FRAMES, MAP_HELP, ChannelMap, InvalidRecording, open_recording
from minimeter.cli._args import meter_options
from minimeter.cli.fleet import analyze_archive_command, cluster_options
from minimeter.cli._panel import front_panel


def _reader_options(func):
    options = [
        click.option("--map", "channel_map", default=None, metavar="MAP", help=MAP_HELP + " (default: pair V and A channels)."),
        click.option("--columns", default=None, help="CSV: the sample columns, comma-separated (default: all but time)."),
        click.option("--sample-rate", type=float, default=None, help="CSV: the sample rate [Hz] (default: from the time column)."),
        click.option("--names", default=None, help="WAV: channel names, comma-separated (default: the .wav.json sidecar)."),
        click.option("--scales", default=None, help="WAV: per-channel full-scale values [V or A], comma-separated."),
        click.option("--chunk-frames", type=int, default=DEFAULT_CHUNK_FRAMES, show_default=True, help="Frames per chunk read."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


_HYSTERESIS = click.option("--hysteresis", type=float, default=None,
                           help=f"Zero-crossing hysteresis [V] (default: {HYSTERESIS_FRACTION:.0%} of the peak of the "
                                "voltage cycles are cut on).")


def _open(path, columns, sample_rate, names, scales):
    opts = {}
    if columns:
        opts["columns"] = [c.strip() for c in columns.split(",")]
    if sample_rate:
        opts["sample_rate_hz"] = sample_rate
    if names:
        opts["names"] = [n.strip() for n in names.split(",")]
    if scales:
        try:
            opts["scales"] = [float(s) for s in scales.split(",")]
        except ValueError:
            raise InvalidRecording(f"--scales {scales!r}: expected numbers, comma-separated") from None
    return open_recording(path, **opts)


class _CycleWriter:
    """Per-cycle rows to CSV (streamed) or JSON (collected)."""

    def __init__(self, path: str | None, channel_map_holder: list) -> None:
        self.path = Path(path) if path else None
        self.index = 0
        self.rows: list[dict] = []
        self._csv = None
        self._fh = None
        self._map = channel_map_holder

    def __call__(self, block) -> None:
        if self.path is None:
            return
        rows = cycle_rows(block, self.index, self._map[0] if self._map else None)
        self.index += block.count
        if self.path.suffix.lower() == ".json":
            self.rows.extend(rows)
            return
        if self._csv is None:
            self._fh = open(self.path, "w", newline="")
            self._csv = csv.DictWriter(self._fh, fieldnames=list(rows[0]))
            self._csv.writeheader()
        self._csv.writerows(rows)

    def close(self) -> None:
        if self.path is None:
            return
        if self.path.suffix.lower() == ".json":
            self.path.write_text(json.dumps(self.rows, indent=1))
        elif self._fh is not None:
            self._fh.close()


def _fmt(x: float, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


@click.command("analyze")
@click.argument("file", type=click.Path(dir_okay=False))
@_reader_options
@_HYSTERESIS
@click.option("--cycles-out", type=click.Path(dir_okay=False), default=None,
              help="Write the per-cycle table to this .csv or .json file.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and the per-window table as JSON only.")
@click.option("--out", "summary_out", type=click.Path(dir_okay=False), default=None,
              help="Archive mode (also when FILE is a glob such as 'survey/*.cfg'): one Dask task per file, "
                   "one row per file and element to this Parquet file (default summary.parquet).")
@cluster_options
def analyze_command(file, channel_map, columns, sample_rate, names, scales, chunk_frames, hysteresis, cycles_out, as_json,
                    summary_out, workers, scheduler):
    """Metrology only: line cycles of a recording (COMTRADE, CSV, WAV, NPZ), any number
    of elements — a summary per element and in total, and the table: per cycle for a
    short recording (up to two windows), else per IEC 61000-4-30 window (10 cycles at
    50 Hz, 12 at 60 Hz)."""
    if summary_out or any(c in file for c in "*?["):
        return analyze_archive_command(file, summary_out or "summary.parquet", workers, scheduler, channel_map,
                                       sample_rate, chunk_frames, hysteresis, one_file=(columns, names, scales,
                                                                                        cycles_out, as_json))
    _analyze_file(file, channel_map, columns, sample_rate, names, scales, chunk_frames, hysteresis, cycles_out, as_json)


class _Tables:
    """``on_block`` and ``on_windows`` of :func:`analyze`: the per-cycle file, the window
    rows, and the first cycles' rows (the table printed for a short recording)."""

    def __init__(self, writer: _CycleWriter, channel_map_holder: list) -> None:
        self.writer = writer
        self.window_rows: list[dict] = []
        self.cycle_rows: list[dict] = []
        self.cycles = 0
        self._map = channel_map_holder

    def __call__(self, block) -> None:
        self.writer(block)
        if self.cycles < SHORT_CYCLES:
            self.cycle_rows += cycle_rows(block.slice(0, SHORT_CYCLES - self.cycles), self.cycles, self._map[0])
        self.cycles += block.count

    def windows(self, windows) -> None:
        self.window_rows += window_rows(windows, len(self.window_rows))

    @property
    def short(self) -> bool:
        """Few enough cycles to print them one by one."""
        return self.cycles <= SHORT_CYCLES


SHORT_CYCLES = 24          # two 60 Hz windows: up to this, the table printed is per cycle
ROWS_PRINTED = 20          # windows printed on the terminal (all in --json)


def _analyze_file(file, channel_map, columns, sample_rate, names, scales, chunk_frames, hysteresis, cycles_out,
                  as_json) -> None:
    """``analyze`` of one recording (the command's body; a multi-file dispatch calls it per file)."""
    reader = _open(file, columns, sample_rate, names, scales)
    cmap = ChannelMap.parse(channel_map) if channel_map else None
    holder = [cmap]
    tables = _Tables(_CycleWriter(cycles_out, holder), holder)
    try:
        summary = analyze(reader, cmap, chunk_frames=chunk_frames, hysteresis_v=hysteresis, on_block=tables,
                          on_windows=tables.windows)
    finally:
        tables.writer.close()
    cycles_per_window = window_cycles(summary.frequency_hz) if math.isfinite(summary.frequency_hz) else None
    if as_json:
        payload = summary.as_dict()
        payload.update(window_cycles=cycles_per_window, windows=tables.window_rows)
        if tables.short:
            payload["cycle_table"] = tables.cycle_rows
        click.echo(json.dumps(payload, indent=2, default=float))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    _print_summary(console, summary)
    _print_table(console, tables, cycles_per_window)
    if cycles_out:
        console.print(f"per-cycle table written to {cycles_out}")


def _print_summary(console: Console, summary) -> None:
    info = summary.info
    console.print(f"[bold]{info.path}[/] — {info.format}, {info.channels} channels, {info.sample_rate_hz:,.3f} Hz, "
                  f"{info.frame_count:,} frames ({info.duration_s:.4f} s"
                  + (f" from {info.start_time}" if info.start_time else "") + ")")
    for note in info.notes:
        console.print(f"  note: {note}")
    console.print(f"channel map {summary.channel_map.text()}; cycles cut on {cut_on(len(summary.elements))}, "
                  f"hysteresis {summary.hysteresis_v:.3g} V; {summary.whole_cycles} whole cycles "
                  f"({summary.whole_duration_s:.6f} s) of {summary.cycles}")
    table = Table(title="Per element, over whole cycles")
    for col in ("element", "V", "I", "Vrms [V]", "Irms [A]", "P [W]", "PF", "E whole [Wh]", "E all [Wh]"):
        table.add_column(col, justify="right")
    for e in summary.elements:
        table.add_row(str(e.element), e.voltage_channel, e.current_channel, _fmt(e.volts_rms), _fmt(e.amps_rms),
                      _fmt(e.power_w), _fmt(e.power_factor, 4), _fmt(e.energy_wh, 6), _fmt(e.energy_all_wh, 6))
    table.add_row("total", "", "", "", "", _fmt(summary.total_power_w), "", _fmt(summary.total_energy_wh, 6),
                  _fmt(summary.total_energy_all_wh, 6), style="bold")
    console.print(table)
    console.print(f"frequency {_fmt(summary.frequency_hz, 4)} Hz (mean of whole cycles)")


_CYCLE_COLUMNS = (("V [V]", "v{}_rms", 3), ("I [A]", "i{}_rms", 3), ("P [W]", "p{}_w", 1), ("PF", "pf{}", 4))
_WINDOW_COLUMNS = (("V [V]", "v{}_rms", 3), ("I [A]", "i{}_rms", 3), ("P [W]", "p{}_w", 1),
                   ("Q1 [var]", "q{}_var", 1), ("S [VA]", "s{}_va", 1), ("PF", "pf{}", 4), ("DPF", "dpf{}", 4),
                   ("THD V [%]", "thd_v{}_percent", 2), ("THD I [%]", "thd_i{}_percent", 2))


def _print_table(console: Console, tables: _Tables, cycles_per_window: int | None) -> None:
    """The per-cycle table (short recordings) or the per-window one (its first rows): a
    line per cycle or window and element."""
    if tables.short:
        rows, key, columns = tables.cycle_rows, "cycle", _CYCLE_COLUMNS
        title = "Per cycle (partial: not bounded by two zero crossings)"
    else:
        rows, key, columns = tables.window_rows, "window", _WINDOW_COLUMNS
        title = (f"Per {cycles_per_window}-cycle window (IEC 61000-4-30, {len(rows):,} windows; IEEE 1459: Q1 "
                 "fundamental reactive, S apparent, PF true, DPF displacement)")
    if not rows:
        return
    elements = sum(1 for name in rows[0] if name.startswith("p") and name.endswith("_w"))
    table = Table(title=title)
    for head in (key, "start [s]", "element", *(c[0] for c in columns)) + (("partial",) if key == "cycle" else ()):
        table.add_column(head, justify="right")
    shown = 0
    for row in rows[:ROWS_PRINTED]:
        for k in range(1, elements + 1):
            cells = [str(row[key]) if k == 1 else "", _fmt(row["start_s"], 6) if k == 1 else "", str(k)]
            cells += [_fmt(row[name.format(k)], digits) for _, name, digits in columns]
            if key == "cycle":
                cells.append("yes" if row["partial"] and k == 1 else "")
            table.add_row(*cells, end_section=k == elements)
        shown += 1
    console.print(table)
    if len(rows) > shown:
        console.print(f"  … {len(rows) - shown:,} more window(s): all of them with --json; every cycle with "
                      "--cycles-out FILE")


def _meter_for(mapped: MappedRecording, model, ct_rating, ct_ratio, register, t_suffix, hysteresis,
               calibration_file) -> Meter:
    """The meter the recording feeds: its model, the recording's hysteresis, the calibration."""
    spec = meter_spec(model, ct_rating=ct_rating, ct_ratio=ct_ratio, register=register, t_suffix=t_suffix)
    if mapped.elements != spec.elements:
        raise MinimeterError(
            f"the channel map {mapped.channel_map.text()!r} gives {mapped.elements} element(s); a {spec.prefix} meter "
            f"has {spec.elements} — pass --map with {spec.elements} VCHAN:ICHAN pair(s)"
        )
    calibration = load_calibration(calibration_file) if calibration_file else None
    if calibration is not None and len(calibration.elements) != spec.elements:
        raise MinimeterError(
            f"{calibration_file} calibrates {len(calibration.elements)} element(s); a {spec.prefix} meter has "
            f"{spec.elements} — write one for it: minimeter calibrate --elements {spec.elements} --out {calibration_file}"
        )
    if hysteresis is None:            # the recording's own (a share of its peak), as deep as the meter takes
        hysteresis = min(mapped.hysteresis_v, max_hysteresis_v(spec))
    return Meter(spec, hysteresis_v=hysteresis, calibration=calibration)


def _run_meter(meter: Meter, mapped: MappedRecording, console: Console, show_progress: bool,
               write_edges=lambda update: None) -> tuple[list, int]:
    """Feed the whole recording (through :func:`minimeter.drive.feed_samples`); the events
    and the number of output transitions."""
    events, transitions = [], 0
    with Progress(TextColumn("metering"), BarColumn(), TextColumn("{task.percentage:>5.1f} %"), TimeRemainingColumn(),
                  console=console, disable=not show_progress, transient=True) as progress:
        task = progress.add_task("meter", total=mapped.info.duration_s)
        for update in feed_samples(meter, mapped.chunks(), mapped.sample_rate_hz):
            events.extend(update.events)
            transitions += len(update.transitions)
            write_edges(update)
            progress.update(task, completed=meter.time_s)
    return events, transitions


def _meter_payload(meter: Meter, mapped: MappedRecording, calibration_file, events: list, transitions: int) -> dict:
    return {
        "recording": mapped.info.as_dict(), "channel_map": mapped.channel_map.text(), "model": meter.spec.model_number,
        "hysteresis_v": meter.hysteresis_v, "calibration": calibration_file,
        "watt_hours": meter.watt_hours, "register_quanta": meter.register_quanta,
        "reverse_watt_hours": meter.reverse_watt_hours, "lcd": meter.lcd_text, "counter": meter.counter_value,
        "closures": {name: meter.closures(name) for name in meter.output_names}, "transitions": transitions,
        "leds": meter.leds.__dict__, "events": [ev.__dict__ for ev in events[:1000]], "events_total": len(events),
    }


@click.command("meter")
@click.argument("file", type=click.Path(dir_okay=False))
@_reader_options
@meter_options
@click.option("--calibration", "calibration_file", type=click.Path(dir_okay=False), default=None,
              help="A calibration file written by `minimeter calibrate`.")
@_HYSTERESIS
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON only.")
@click.option("--pulses-out", type=click.Path(dir_okay=False), default=None, help="Write the output edges to this CSV file (S13.1).")
def meter_command(file, channel_map, columns, sample_rate, names, scales, chunk_frames, model, ct_rating, ct_ratio,
                  register, t_suffix, calibration_file, hysteresis, as_json, pulses_out):
    """The whole meter (register, outputs, LEDs, events) fed from a recording."""
    reader = _open(file, columns, sample_rate, names, scales)
    mapped = map_recording(reader, ChannelMap.parse(channel_map) if channel_map else None, chunk_frames=chunk_frames)
    meter = _meter_for(mapped, model, ct_rating, ct_ratio, register, t_suffix, hysteresis, calibration_file)
    console = Console(stderr=as_json)
    info = mapped.info
    with EdgeWriter(pulses_out, start_epoch_of(info.start_time)) as write_edges:
        events, transitions = _run_meter(meter, mapped, console, info.duration_s >= 3600 and not as_json, write_edges)
    payload = _meter_payload(meter, mapped, calibration_file, events, transitions)
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=float))
        return
    console.print(front_panel(meter, info.duration_s))
    console.print(f"{info.path}: {info.frame_count:,} frames at {info.sample_rate_hz:,.3f} Hz ({info.duration_s:.4f} s"
                  + (f" from {info.start_time}" if info.start_time else "") + f"), map {mapped.channel_map.text()}"
                  + (f", calibration {calibration_file}" if calibration_file else ""), highlight=False)
    console.print(f"registered {meter.watt_hours:.6f} Wh; reverse (not registered) {meter.reverse_watt_hours:.6f} Wh",
                  highlight=False)
    console.print("closures: " + ", ".join(f"output {name} {n}" for name, n in payload["closures"].items())
                  + f"; {transitions} output edge(s)", highlight=False)
    for ev in events[:20]:
        console.print(f"  {ev.time_s:10.4f} s  {'raised ' if ev.active else 'cleared'} {ev.kind:14s} {ev.message}")
    if len(events) > 20:
        console.print(f"  … {len(events) - 20} more event(s)")


COMMANDS = [analyze_command, meter_command]
