"""Metrology-only analysis of a recording, any number of elements (issue 4, SPEC §4).

No register, outputs or LEDs: the recording's frames go through the channel map
(:func:`map_recording`) and :func:`minimeter.drive.measure_samples`, chunk by chunk,
cutting line cycles on the meter's own reference voltage
(:func:`minimeter.meter.metrology.reference_voltage`: L1–L2 for exactly two elements,
L1–N otherwise — for a 3-phase recording the phases' cycles are cut together on L1), so
``analyze`` and ``meter`` cut a recording into the same cycles. The Schmitt trigger's
hysteresis scales with the recording: 10 % of the reference voltage's peak over the
first ``PROBE_FRAMES`` frames (:func:`default_hysteresis_v`), unless given; ``meter``
takes the same.

The summary per element is taken over whole line cycles (partial ones at the edges left
out, :mod:`minimeter.lab.averaging`): Vrms and Irms as the rms over those cycles, P as
their energy over their duration, PF = P / (Vrms · Irms), f as the mean of the cycles'
frequencies. The energy of the whole recording (partial cycles included) is reported
too: it is the rectangle-rule integral of v·i over every sample (S4.2, S4.7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from minimeter.drive import SampleChunk, measure_samples, recording_chunks
from minimeter.lab.averaging import CycleAverages, average_cycles
from minimeter.lab.windows import measured_windows
from minimeter.meter.power import PowerQuantities
from minimeter.meter.metrology import CycleBlock, reference_voltage
from minimeter.sources.recordings import (DEFAULT_CHUNK_FRAMES, ChannelMap, InvalidRecording, Reader, RecordingInfo,
                                          ResolvedMap)

HYSTERESIS_FRACTION = 0.10     # of the reference voltage's peak in the first frames
PROBE_FRAMES = DEFAULT_CHUNK_FRAMES   # the first look at a recording (automatic map, hysteresis) [frames]


# --------------------------------------------------------------------------- a recording as the meter's inputs
def default_hysteresis_v(volts: np.ndarray) -> float:
    """The zero-crossing hysteresis for a stream whose first voltages are ``volts``
    (e, n) [V]: ``HYSTERESIS_FRACTION`` of the reference voltage's peak (at least 1 nV)."""
    reference = reference_voltage(volts)
    peak = float(np.nanmax(np.abs(reference))) if np.any(np.isfinite(reference)) else 0.0   # NaN: a gap
    return max(HYSTERESIS_FRACTION * peak, 1e-9)


def cut_on(elements: int) -> str:
    """Which voltage cycles are cut on, in words, for ``elements`` elements."""
    return "L1–L2 (element 1's voltage less element 2's)" if elements == 2 else "L1–N (element 1's voltage)"


@dataclass(frozen=True)
class MappedRecording:
    """A recording bound to the meter's inputs through a channel map."""

    reader: Reader
    channel_map: ChannelMap
    resolved: ResolvedMap
    first_volts: np.ndarray       # (e, n) the first frames' voltages [V]
    chunk_frames: int

    @property
    def info(self) -> RecordingInfo:
        return self.reader.info

    @property
    def elements(self) -> int:
        return self.resolved.elements

    @property
    def sample_rate_hz(self) -> float:
        return self.reader.info.sample_rate_hz

    @property
    def hysteresis_v(self) -> float:
        """:func:`default_hysteresis_v` of the first frames [V]."""
        return default_hysteresis_v(self.first_volts)

    def chunks(self) -> Iterator[SampleChunk]:
        """``(volts (e, n) [V], amps (e, n) [A primary])`` chunk by chunk, from the start."""
        return recording_chunks(self.reader, self.resolved, self.chunk_frames)


def first_frames(reader: Reader) -> np.ndarray:
    """The recording's first ``PROBE_FRAMES`` frames (channels, n), read for a first look."""
    first = next(iter(reader.chunks(PROBE_FRAMES)), None)
    if first is None or first.shape[1] == 0:
        raise InvalidRecording(f"{reader.info.path}: the recording holds no samples")
    return first


def map_recording(reader: Reader, channel_map: ChannelMap | None = None, *, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                  first: np.ndarray | None = None) -> MappedRecording:
    """Bind ``reader`` to the meter's inputs: ``channel_map``, or one paired by the
    channels' units and names over the first frames (``first``, read when not given)."""
    if first is None:
        first = first_frames(reader)
    if channel_map is None:
        channel_map = ChannelMap.automatic(reader.info, first)
    resolved = channel_map.resolve(reader.info)
    volts, _ = resolved.split(first)
    return MappedRecording(reader, channel_map, resolved, volts, int(chunk_frames))


# --------------------------------------------------------------------------- the summary
@dataclass(frozen=True)
class ElementSummary:
    """One element over the whole cycles of a recording."""

    element: int
    voltage_channel: str
    current_channel: str
    volts_rms: float          # [V]
    amps_rms: float           # [A]
    power_w: float            # [W]
    power_factor: float       # P / (Vrms · Irms)
    energy_wh: float          # over whole cycles [Wh]
    energy_all_wh: float      # over every sample, partial cycles included [Wh]


@dataclass(frozen=True)
class Summary:
    """The recording's summary (see the module's docstring)."""

    info: RecordingInfo
    channel_map: ChannelMap
    hysteresis_v: float
    cycles: int                # all cycles
    whole_cycles: int
    whole_duration_s: float    # [s]
    frequency_hz: float        # mean over whole cycles [Hz]; NaN if none
    elements: tuple[ElementSummary, ...]

    @property
    def total_power_w(self) -> float:
        return float(sum(e.power_w for e in self.elements))

    @property
    def total_energy_wh(self) -> float:
        """Over whole cycles [Wh]."""
        return float(sum(e.energy_wh for e in self.elements))

    @property
    def total_energy_all_wh(self) -> float:
        return float(sum(e.energy_all_wh for e in self.elements))

    def as_dict(self) -> dict:
        return {
            "recording": self.info.as_dict(),
            "channel_map": self.channel_map.text(),
            "hysteresis_v": self.hysteresis_v,
            "cycles": self.cycles,
            "whole_cycles": self.whole_cycles,
            "whole_duration_s": self.whole_duration_s,
            "frequency_hz": self.frequency_hz,
            "elements": [e.__dict__ for e in self.elements],
            "total_power_w": self.total_power_w,
            "total_energy_wh": self.total_energy_wh,
            "total_energy_all_wh": self.total_energy_all_wh,
        }


def _finite(chunks: Iterator[SampleChunk], path) -> Iterator[SampleChunk]:
    for volts, amps in chunks:
        if not (np.isfinite(volts).all() and np.isfinite(amps).all()):
            raise InvalidRecording(f"{path}: non-finite samples (NaN or infinite) in the mapped channels")
        yield volts, amps


def cycle_blocks(mapped: MappedRecording, *, hysteresis_v: float | None = None) -> Iterator[CycleBlock]:
    """The recording's line cycles, streamed (metrology alone, cut as the meter cuts)."""
    hysteresis = mapped.hysteresis_v if hysteresis_v is None else float(hysteresis_v)
    return measure_samples(_finite(mapped.chunks(), mapped.info.path), mapped.sample_rate_hz,
                           hysteresis_v=hysteresis)


def analyze(
    reader: Reader,
    channel_map: ChannelMap | None = None,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    hysteresis_v: float | None = None,
    on_block: Callable[[CycleBlock], None] | None = None,
    on_windows: Callable[[PowerQuantities], None] | None = None,
) -> Summary:
    """Analyse a whole recording, streaming; ``on_block(block)`` sees every cycle block
    (for a per-cycle table) as it is measured, ``on_windows(windows)`` the IEC 61000-4-30
    windows each block completes with their IEEE 1459 quantities (:mod:`minimeter.lab.windows`)."""
    mapped = map_recording(reader, channel_map, chunk_frames=chunk_frames)
    hysteresis = mapped.hysteresis_v if hysteresis_v is None else float(hysteresis_v)
    blocks = cycle_blocks(mapped, hysteresis_v=hysteresis)
    if on_windows is not None:
        blocks = _with_windows(mapped, hysteresis, on_windows)
    averages = average_cycles(blocks, mapped.elements, on_block=on_block)
    return summarise(mapped.info, mapped.channel_map, hysteresis, averages)


def _with_windows(mapped: MappedRecording, hysteresis_v: float, on_windows) -> Iterator[CycleBlock]:
    for block, windows in measured_windows(_finite(mapped.chunks(), mapped.info.path), mapped.sample_rate_hz,
                                           hysteresis_v=hysteresis_v, elements=mapped.elements):
        if windows.count:
            on_windows(windows)
        yield block


def summarise(info: RecordingInfo, channel_map: ChannelMap, hysteresis_v: float, averages: CycleAverages) -> Summary:
    """The :class:`Summary` of a recording's whole-cycle averages."""
    pf = averages.power_factor
    elements = tuple(
        ElementSummary(k + 1, e.voltage, e.current, float(averages.volts_rms[k]), float(averages.amps_rms[k]),
                       float(averages.power_w[k]), float(pf[k]), float(averages.energy_wh[k]),
                       float(averages.energy_all_wh[k]))
        for k, e in enumerate(channel_map.elements))
    frequency = averages.frequency_hz if averages.whole_cycles else math.nan
    return Summary(info, channel_map, hysteresis_v, averages.cycles, averages.whole_cycles, averages.seconds,
                   frequency, elements)


def cycle_rows(block: CycleBlock, first_index: int, channel_map: ChannelMap) -> list[dict]:
    """Per-cycle table rows (dicts of plain numbers) for CSV/JSON output."""
    rows = []
    pf = block.power_factor
    for j in range(block.count):
        row = {"cycle": first_index + j, "start_s": float(block.start_s[j]), "duration_s": float(block.duration_s[j]),
               "partial": bool(block.partial[j]), "frequency_hz": float(block.frequency_hz[j])}
        for k in range(block.elements):
            n = k + 1
            row[f"p{n}_w"] = float(block.power_w[k, j])
            row[f"v{n}_rms"] = float(block.volts_rms[k, j])
            row[f"i{n}_rms"] = float(block.amps_rms[k, j])
            row[f"pf{n}"] = float(pf[k, j])
            row[f"e{n}_wh"] = float(block.energy_wh[k, j])
        rows.append(row)
    return rows


__all__ = ["HYSTERESIS_FRACTION", "ElementSummary", "MappedRecording", "Summary", "analyze", "cycle_blocks",
           "cut_on", "cycle_rows", "default_hysteresis_v", "first_frames", "map_recording", "summarise"]
