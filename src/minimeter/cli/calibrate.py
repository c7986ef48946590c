"""``minimeter calibrate``: the makers' calibration sequence against a synthetic reference,
or against a recorded reference run (``--reference-run RUN.toml``; see
:mod:`minimeter.lab.reference_run`)."""

from __future__ import annotations

import click
from click.core import ParameterSource
from rich.console import Console

from minimeter.lab.calibration import calibrate
from minimeter.errors import MinimeterError
from minimeter.sources.frontend import PRESETS, preset
from minimeter.lab.reference_run import calibrate_from_reference_run, load_reference_run

_SYNTHETIC_ONLY = {"front_end_name": "--front-end", "elements": "--elements", "rated_a": "--rated", "volts": "--volts",
                   "frequency": "--frequency", "sample_rate": "--sample-rate", "seconds": "--seconds"}


@click.command("calibrate")
@click.option("--front-end", "front_end_name", type=click.Choice(list(PRESETS)), default="typical", show_default=True,
              help="The front end being calibrated (a preset model).")
@click.option("--elements", type=click.IntRange(1, 2), default=1, show_default=True, help="Elements of the meter.")
@click.option("--rated", "rated_a", type=float, default=200.0, show_default=True, help="CT rating [A].")
@click.option("--volts", type=float, default=120.0, show_default=True, help="Reference voltage [V rms].")
@click.option("--frequency", type=float, default=60.0, show_default=True, help="Reference frequency [Hz].")
@click.option("--sample-rate", type=float, default=2000.0, show_default=True, help="Samples per second [Hz].")
@click.option("--seconds", type=float, default=10.0, show_default=True,
              help="Signal averaged per step [s] (longer at low current).")
@click.option("--reference-run", "reference_run", type=click.Path(dir_okay=False), default=None,
              help="Calibrate from a recorded reference run (TOML: per step a recording of the meter's inputs "
                   "and the reference standard's true Vrms, Irms and power) instead of the synthetic reference.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default="calibration.json", show_default=True,
              help="The calibration file to write (the meter loads it: `minimeter meter --calibration`, "
                   "`minimeter bench --calibration`).")
@click.pass_context
def calibrate_command(ctx, front_end_name, elements, rated_a, volts, frequency, sample_rate, seconds, reference_run,
                      out_file):
    """Calibrate a front end: offset at the lowest current, gain at rated current and
    PF 1, phase at PF 0.5 — per table current — against a synthetic reference, or
    against a recorded reference run (--reference-run RUN.toml)."""
    if reference_run is not None:
        given = [flag for name, flag in _SYNTHETIC_ONLY.items()
                 if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
        if given:
            raise MinimeterError(f"calibrate: {', '.join(given)} describe(s) the synthetic reference; a reference "
                                 f"run takes its elements, currents, voltages and frequency from {reference_run}")
        console = Console()
        run = load_reference_run(reference_run)
        console.print(f"calibrating from the recorded reference run {reference_run} ({len(run.steps)} steps, "
                      f"{run.frequency_hz:g} Hz)")
        cal = calibrate_from_reference_run(run, on_step=lambda m: console.print("  " + m))
        cal.save(out_file)
        console.print(f"calibration written to {out_file}")
        return
    if sample_rate < 2000 or rated_a <= 0 or volts <= 0 or not 40 <= frequency <= 70 or seconds <= 0:
        raise MinimeterError("calibrate: need sample rate ≥ 2000 Hz, positive rating, voltage and seconds, "
                             "and a frequency of 40–70 Hz")
    console = Console()
    fe = preset(front_end_name)
    console.print(f"calibrating {fe.name!r} ({fe.description}), {elements} element(s), {rated_a:g} A CT, "
                  f"reference {volts:g} V {frequency:g} Hz at {sample_rate:g} Hz")
    cal = calibrate(fe, elements, rated_a=rated_a, volts_rms=volts, frequency_hz=frequency,
                    sample_rate_hz=sample_rate, seconds=seconds, on_step=lambda m: console.print("  " + m))
    cal.save(out_file)
    console.print(f"calibration written to {out_file}")


COMMANDS = [calibrate_command]
