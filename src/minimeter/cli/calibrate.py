"""``minimeter calibrate``: the makers' calibration sequence against a synthetic reference,
or against a recorded reference run (``--reference-run RUN.toml``; see
:mod:`minimeter.lab.reference_run`)."""

from __future__ import annotations

import click
from click.core import ParameterSource
from rich.console import Console

from minimeter.lab.calibration import calibrate, calibrate_ct_type
from minimeter.errors import MinimeterError
from minimeter.sources.frontend import PRESETS, preset
from minimeter.lab.reference_run import calibrate_from_reference_run, load_reference_run

_SYNTHETIC_ONLY = {"front_end_name": "--front-end", "elements": "--elements", "rated_a": "--rated", "volts": "--volts",
                   "frequency": "--frequency", "sample_rate": "--sample-rate", "seconds": "--seconds",
                   "phase_as": "--phase-as", "ct_units": "--ct-unit"}


@click.command("calibrate")
@click.option("--front-end", "front_end_name", type=click.Choice(list(PRESETS)), default="typical", show_default=True,
              help="The front end being calibrated (a preset model).")
@click.option("--elements", type=click.IntRange(1, 2), default=2, show_default=True,
              help="Elements of the meter (2: the commands' default model, 7B; 1 for MO, MK).")
@click.option("--rated", "rated_a", type=float, default=200.0, show_default=True, help="CT rating [A].")
@click.option("--volts", type=float, default=120.0, show_default=True, help="Reference voltage [V rms].")
@click.option("--frequency", type=float, multiple=True, default=(60.0, 50.0), show_default=True,
              help="Reference line frequency [Hz]; give it twice (60 and 50, the default) to split each phase "
                   "error into an angle and a delay, which then hold at any frequency (S9.4).")
@click.option("--phase-as", "phase_as", type=click.Choice(["delay", "angle"]), default="delay", show_default=True,
              help="With one --frequency: keep the phase error as a delay (a skew) or as an angle (a CT).")
@click.option("--ct-unit", "ct_units", type=click.IntRange(1, 10_000), multiple=True,
              help="Calibrate the CT type from these units of it (e.g. --ct-unit 1 --ct-unit 2): the corrections "
                   "are averaged, for every unit of the type.")
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
def calibrate_command(ctx, front_end_name, elements, rated_a, volts, frequency, phase_as, ct_units, sample_rate, seconds,
                      reference_run, out_file):
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
    if sample_rate < 2000 or rated_a <= 0 or volts <= 0 or not all(40 <= f <= 70 for f in frequency) or seconds <= 0:
        raise MinimeterError("calibrate: need sample rate ≥ 2000 Hz, positive rating, voltage and seconds, "
                             "and frequencies of 40–70 Hz")
    if len(set(frequency)) > 1 and ctx.get_parameter_source("phase_as") is ParameterSource.COMMANDLINE:
        raise MinimeterError("calibrate: --phase-as applies to one --frequency; two frequencies find the angle "
                             "and the delay themselves")
    console = Console()
    fe = preset(front_end_name)
    freqs = sorted(set(frequency), reverse=True)
    console.print(f"calibrating {fe.name!r} ({fe.description}), {elements} element(s), {rated_a:g} A CT, "
                  f"reference {volts:g} V {' and '.join(f'{f:g}' for f in freqs)} Hz at {sample_rate:g} Hz"
                  + (f", CT type from units {', '.join(map(str, ct_units))}" if ct_units else ""))
    options = dict(rated_a=rated_a, volts_rms=volts, frequency_hz=freqs if len(freqs) > 1 else freqs[0],
                   sample_rate_hz=sample_rate, seconds=seconds, phase_as=phase_as,
                   on_step=lambda m: console.print("  " + m))
    cal = calibrate_ct_type(fe, elements, ct_units, **options) if ct_units else calibrate(fe, elements, **options)
    cal.save(out_file)
    console.print(f"calibration written to {out_file}")


COMMANDS = [calibrate_command]
