"""``minimeter diagnose``: name the installation's fault from what the meter measures
(SPEC S11.3) — on a simulated installation or on a recording (any format :mod:`minimeter.sources.recordings`
reads).

Only the samples reach the naming: for an installation file the meter's samples over a
few cycles are produced first, then measured, exactly as for a recording.
"""

from __future__ import annotations

import json

import click
import numpy as np

from minimeter.meter.catalog import meter_spec
from minimeter.lab.diagnostics import WINDOW_MIN_HZ, diagnose_samples, window_samples
from minimeter.errors import InvalidSamples
from minimeter.formats import parse_duration_s
from minimeter.formats.installation import load_installation
from minimeter.sources.recordings import MAP_HELP, ChannelMap, InvalidRecording, open_recording, write_npz
from minimeter.cli._args import meter_options, parsed


def generation_option(func):
    """``--generation/--no-generation``: the installer's word on PV back-feed (overrides the file's)."""
    return click.option("--generation/--no-generation", "generation", default=None,
                        help="PV back-feed on the site (expected, not a fault) or none (reverse power is then a "
                             "wiring fault); default: the installation file's `generation`, else not said.")(func)


def read_window(path: str, sample_rate_hz: float | None, channel_map: str | None, start_s: float,
                seconds: float, elements: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """``seconds`` of a recording (COMTRADE, CSV, WAV or .npz, read by :mod:`minimeter.sources.recordings`)
    from ``start_s`` [s], split into the meter's inputs by ``channel_map`` (or by the
    channels' units and names): (volts (e, n) [V], amps (e, n) [A primary], rate [Hz]).
    Without a map, the elements come from the channel names when they give ``elements``
    of them — a dead voltage channel is then a measurement (an open terminal), not a
    channel to leave out."""
    reader = open_recording(path, sample_rate_hz=sample_rate_hz)
    info = reader.info
    rate = info.sample_rate_hz
    first = int(round(start_s * rate))
    wanted = int(round(seconds * rate))
    if first >= info.frame_count:
        raise InvalidRecording(f"{path}: --at {start_s:g} s is past the recording's end ({info.duration_s:g} s)")
    pieces, seen = [], 0
    for chunk in reader.chunks():
        lo, hi = max(first - seen, 0), min(first + wanted - seen, chunk.shape[1])
        if hi > lo:
            pieces.append(chunk[:, lo:hi])
        seen += chunk.shape[1]
        if seen >= first + wanted:
            break
    frames = np.concatenate(pieces, axis=1)
    if channel_map:
        cmap = ChannelMap.parse(channel_map)
    else:
        cmap = ChannelMap.automatic(info)
        if elements is None or len(cmap.elements) != elements:
            cmap = ChannelMap.automatic(info, frames)
    volts, amps = cmap.resolve(info).split(frames)
    return volts, amps, rate


def _seconds(text: str) -> float:
    return parsed(lambda t: parse_duration_s(t, allow_zero=True), text, "--at")


@click.command("diagnose")
@click.argument("installation", required=False, type=click.Path(dir_okay=False))
@click.option("--recording", type=click.Path(dir_okay=False),
              help="A recording instead (COMTRADE .cfg, .csv, .wav, .npz).")
@click.option("--map", "channel_map", default=None, metavar="MAP", help=f"Recording channels: {MAP_HELP}.")
@meter_options
@click.option("--at", "at", default="0", show_default=True, help="Simulated time of the window: 0, 90s, 18h.")
@click.option("--cycles", type=click.IntRange(2, 600), default=4, show_default=True, help="Line cycles measured.")
@click.option("--sample-rate", type=float, default=None, help="Samples per second [Hz] (default 4000 for a simulation).")
@click.option("--save", type=click.Path(dir_okay=False), help="Save the simulated window as a .npz recording.")
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
@generation_option
def diagnose_command(installation, recording, channel_map, model, ct_rating, ct_ratio, register, t_suffix, at,
                     cycles, sample_rate, save, as_json, generation) -> None:
    """Name the fault of an installation (or a recording) from the meter's measurements:
    per-element voltage, current, the current's angle to its own voltage, the angle
    between L1 and L2 voltages and the power signs. Every cause the measurements cannot
    separate is listed, with the confidence split between them. Exit status 1 when a
    fault is found."""
    if (installation is None) == (recording is None):
        raise click.UsageError("give an INSTALLATION file or --recording FILE (one of them)")
    if installation is not None:
        setup = load_installation(installation)
        spec = setup.spec
        rate = sample_rate or 4000.0
        volts, amps = window_samples(setup.source(), _seconds(at), cycles, rate)
        title = f"{installation} — {spec.model_number}"       # not the file's name for it: that may be the answer
        generation = setup.generation if generation is None else generation
    else:
        spec = meter_spec(model, ct_rating=ct_rating, ct_ratio=ct_ratio, register=register, t_suffix=t_suffix)
        volts, amps, rate = read_window(recording, sample_rate, channel_map, _seconds(at),
                                        (cycles + 1.5) / WINDOW_MIN_HZ, spec.elements)
        if volts.shape[0] != spec.elements:
            raise InvalidSamples(f"{recording}: the channels give {volts.shape[0]} element(s); a {spec.prefix} has "
                                 f"{spec.elements} — choose --model or --map")
        title = f"{recording} — {spec.model_number}"
    if save:
        names = [f"{q}{k + 1}" for k in range(volts.shape[0]) for q in ("V", "I")]
        interleaved = np.empty((2 * volts.shape[0], volts.shape[1]))
        interleaved[0::2], interleaved[1::2] = volts, amps
        write_npz(save, interleaved, rate, names, ["V", "A"] * volts.shape[0])
    diagnosis = diagnose_samples(spec, volts, amps, rate, cycles=cycles, generation=generation)
    if as_json:
        click.echo(json.dumps(diagnosis.as_dict(), indent=2))
    else:
        click.echo(f"Diagnosis: {title}")
        for line in diagnosis.measurements.lines():
            click.echo(f"  {line}")
        for line in diagnosis.lines():
            click.echo(line)
    if diagnosis.faults:
        raise SystemExit(1)


COMMANDS = [diagnose_command]
