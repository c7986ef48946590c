"""``minimeter simulate``: a meter on a synthetic service, by samples or phasors."""

from __future__ import annotations

import json
import math

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from minimeter.meter.core import Meter
from minimeter.sources.service import SERVICE_KINDS, Service, household_day, ideal_source
from minimeter.lab.simulation import S47_TOLERANCE_PERCENT, SimulationResult, simulate
from minimeter.lab.pulses import EdgeWriter
from minimeter.formats import LOAD_HELP, parse_duration_s, parse_harmonic, parse_load, parse_profile_load
from minimeter.cli._args import meter_options, parsed
from minimeter.cli._panel import front_panel

PROGRESS_MIN_SECONDS = 3600.0     # show a progress bar for runs longer than this (simulated)


def print_summary(console: Console, meter: Meter, result: SimulationResult, *, panel: bool = True) -> None:
    """The front panel (unless a live one is already on screen) and the
    registered-against-analytic table."""
    if panel:
        console.print(front_panel(meter, result.duration_s))
    table = Table(title="Registered against analytic energy", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for k, wh in enumerate(result.analytic_element_wh):
        table.add_row(f"analytic element {k + 1}", f"{wh:,.4f} Wh")
    table.add_row("analytic delivered (net > 0)", f"{result.analytic_delivered_wh:,.4f} Wh")
    table.add_row("registered", f"{result.registered_wh:,.4f} Wh")
    if result.reverse_wh:
        table.add_row("reverse (not registered)", f"{result.reverse_wh:,.4f} Wh")
    err = result.error_percent
    whole = result.whole_cycles
    table.add_row("error" if whole is None else "error (with the partial end cycles)",
                  "—" if math.isnan(err) else f"{err:+.6f} %")
    if whole is not None:
        table.add_row(f"whole cycles {whole.start_s:.6f}–{whole.end_s:.6f} s ({whole.count:,})",
                      f"{whole.measured_wh:,.6f} Wh of {whole.analytic_wh:,.6f} Wh analytic")
        table.add_row("error (whole cycles)", "—" if math.isnan(whole.error_percent) else f"{whole.error_percent:+.6f} %")
    verdict = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
    table.add_row(f"S4.7 (±{S47_TOLERANCE_PERCENT} %{', whole cycles' if whole is not None else ''})", verdict)
    mode = "phasor path" if result.mode == "phasor" else f"{result.sample_rate_hz:g} Hz samples, {result.frames:,} frames"
    table.add_row("run", f"{result.cycles:,} cycles, {mode}, {result.wall_s:.2f} s wall")
    console.print(table)
    if result.events:
        console.print(f"[bold]{len(result.events) + result.events_dropped} event(s)[/]; first ones:")
        for ev in result.events[:12]:
            mark = "raised " if ev.active else "cleared"
            console.print(f"  {ev.time_s:12.3f} s  {mark} {ev.kind:14s} {ev.message}")


@click.command("simulate")
@click.argument("installation", required=False, type=click.Path(exists=True, dir_okay=False))
@meter_options
@click.option("--service", "service_kind", type=click.Choice(SERVICE_KINDS), default="split", show_default=True,
              help="single (120 V 1-phase 2-wire), split (120/240 V) or network (120/208 V).")
@click.option("--volts", type=float, default=120.0, show_default=True, help="L–N voltage [V rms].")
@click.option("--frequency", type=float, default=60.0, show_default=True, help="Line frequency [Hz].")
@click.option("--voltage-harmonic", "voltage_harmonics", multiple=True, metavar="N=MAG[@DEG]",
              help="A supply voltage harmonic, e.g. 5=0.1.")
@click.option("--load", "loads", multiple=True, metavar="SPEC", help=LOAD_HELP)
@click.option("--profile", "profiles", multiple=True, metavar="FILE[@CONN][,pf=…]",
              help="A load following a 'time_s,watts' CSV profile.")
@click.option("--household", is_flag=True, help="Use the built-in 24-hour household (split phase).")
@click.option("--duration", default="60s", show_default=True, help="Simulated time: 60s, 90min, 24h, 7d.")
@click.option("--sample-rate", type=float, default=7812.5, show_default=True, help="Samples per second [Hz].")
@click.option("--phasor", is_flag=True, help="Feed per-cycle phasors instead of samples (fast for days/years).")
@click.option("--chunk-frames", type=int, default=65536, show_default=True, help="Frames per chunk fed.")
@click.option("--noise-v", type=float, default=0.0, help="White noise on the voltage samples [V rms].")
@click.option("--noise-a", type=float, default=0.0, help="White noise on the current samples [A rms].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON only.")
@click.option("--pulses-out", type=click.Path(dir_okay=False), default=None, help="Write the output edges to this CSV file (S13.1).")
def simulate_command(installation, model, ct_rating, ct_ratio, register, t_suffix, service_kind, volts, frequency,
                     voltage_harmonics, loads, profiles, household, duration, sample_rate, phasor, chunk_frames,
                     noise_v, noise_a, as_json, pulses_out) -> None:
    """Simulate a correctly installed meter on a synthetic service and compare what it
    registers with the analytic energy."""
    duration_s = parsed(parse_duration_s, duration, "--duration")
    if installation is not None:
        from minimeter.formats.installation import load_installation   # the installation file (SPEC S3.2)

        setup = load_installation(installation)
        meter, source = Meter(setup.spec), setup.source()
        duration_s = setup.duration_s if setup.duration_s else duration_s
        household = True          # an installation may be faulty: no exit status on mismatch
        _run_and_report(meter, source, duration_s, None if phasor else sample_rate, chunk_frames, as_json, household,
                        pulses_out)
        return
    meter = Meter.for_model(model, ct_rating=ct_rating, ct_ratio=ct_ratio, register=register, t_suffix=t_suffix)
    if household:
        service, load_list = household_day()
    else:
        vh = [parsed(parse_harmonic, text, "--voltage-harmonic") for text in voltage_harmonics]
        service = Service(service_kind, volts, frequency, tuple(vh))
        load_list = (tuple(parsed(parse_load, s, "--load") for s in loads)
                     + tuple(parsed(parse_profile_load, p, "--profile") for p in profiles))
    source = ideal_source(service, load_list, meter.spec.elements, noise_v_rms=noise_v, noise_a_rms=noise_a)
    strict = not household and not noise_v and not noise_a
    _run_and_report(meter, source, duration_s, None if phasor else sample_rate, chunk_frames, as_json, not strict,
                    pulses_out)


def _run_and_report(meter, source, duration_s, rate, chunk_frames, as_json, lenient, pulses_out=None) -> None:
    """Run with a progress bar on long runs, print the panel and summary (or JSON);
    exit status 1 when an ideal run misses S4.7, unless ``lenient``."""
    console = Console(stderr=as_json)
    show_progress = not as_json and duration_s >= PROGRESS_MIN_SECONDS
    with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>5.1f} %"),
                  TimeRemainingColumn(), console=console, disable=not show_progress, transient=True) as progress, \
            EdgeWriter(pulses_out) as write_edges:
        task = progress.add_task("sim", total=duration_s)
        result = simulate(meter, source, duration_s, sample_rate_hz=rate, chunk_frames=chunk_frames,
                          on_update=lambda u, reached: (write_edges(u), progress.update(task, completed=reached)))
    if as_json:
        payload = result.as_dict()
        payload.update(lcd=meter.lcd_text, counter=meter.counter_value, leds=meter.leds.__dict__,
                       model=meter.spec.model_number)
        click.echo(json.dumps(payload, indent=2, default=float))
    else:
        print_summary(console, meter, result)
    if not result.passed and not lenient:
        raise SystemExit(1)


COMMANDS = [simulate_command]
