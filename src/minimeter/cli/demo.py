"""``minimeter demo`` (what ``make run`` runs): a day of a household in a minute."""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.live import Live

from minimeter.meter import Meter
from minimeter.sources.service import household_day, ideal_source
from minimeter.lab.simulation import simulate
from minimeter.cli._panel import front_panel
from minimeter.cli.simulate import print_summary

DAY_S = 86400.0
STEP_S = 300.0            # simulated seconds per panel refresh


@click.command("demo")
@click.option("--wall-seconds", type=float, default=24.0, show_default=True,
              help="How long the day takes on screen (0: as fast as possible).")
@click.option("--hours", type=float, default=24.0, show_default=True, help="Simulated hours.")
def demo_command(wall_seconds: float, hours: float) -> None:
    """A 7B meter with 200 A CTs on a 120/240 V split-phase household for a day —
    fridge cycling, lighting, cooking, a 240 V dryer — in accelerated time with a live
    front panel, ending with the day's kWh, the closures and registered vs analytic energy."""
    console = Console()
    meter = Meter.for_model("7B", ct_rating="200A")
    service, loads = household_day()
    source = ideal_source(service, loads, elements=2)
    duration_s = hours * 3600.0
    console.print(f"[bold]Mini Meter demo[/]: {meter.spec.model_number} on a 120/240 V split-phase household, "
                  f"{hours:g} h simulated by phasors in ~{wall_seconds:g} s")
    for load in loads:
        console.print(f"  • {load.name} on {load.connection}")
    wall0 = time.perf_counter()
    power = [0.0, 0.0]

    def show(update, reached_s: float) -> None:
        nonlocal power
        if update.cycles.count:
            power = [float(p) for p in update.cycles.power_w[:, -1]]
        live.update(front_panel(meter, reached_s, power))
        if wall_seconds > 0:
            due = wall0 + wall_seconds * reached_s / duration_s
            time.sleep(max(0.0, due - time.perf_counter()))

    with Live(front_panel(meter, 0.0, power), console=console, refresh_per_second=12) as live:
        result = simulate(meter, source, duration_s, cycles_per_block=int(STEP_S * service.frequency_hz),
                          on_update=show)
    print_summary(console, meter, result, panel=False)
    console.print(f"[bold]The day: {result.registered_wh / 1000:.3f} kWh[/]; closures "
                  + ", ".join(f"output {k}: {v}" for k, v in result.closures.items())
                  + f" — registered vs analytic {'[green]PASS[/]' if result.passed else '[red]FAIL[/]'}")
    if not result.passed:
        raise SystemExit(1)


COMMANDS = [demo_command]
