"""Metrology-only analysis of a recording, any number of elements (issue 4, SPEC §4).

No register, outputs or LEDs: the recording's frames go through the channel map and
:func:`minimeter.meter.metrology.measure_chunk`, chunk by chunk, cutting line cycles on
element 1's voltage (L1–N; for a 3-phase recording the phases' cycles are cut together on
L1). The Schmitt trigger's hysteresis scales with the recording: 10 % of the reference's
peak over the first chunk, unless given.

The summary per element is taken over whole line cycles (partial ones at the edges left
out): Vrms and Irms as the rms over those cycles, P as their energy over their duration,
PF = P / (Vrms · Irms), f as the mean of the cycles' frequencies. The energy of the
whole recording (partial cycles included) is reported too: it is the rectangle-rule
integral of v·i over every sample (S4.2, S4.7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from minimeter.sources.recordings import DEFAULT_CHUNK_FRAMES, ChannelMap, InvalidRecording, Reader, RecordingInfo
from minimeter.meter.metrology import SECONDS_PER_HOUR, CycleBlock, LineCycleState, measure_chunk

HYSTERESIS_FRACTION = 0.10     # of the reference voltage's peak in the first chunk


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


@dataclass
class _Accumulator:
    elements: int
    cycles: int = 0
    whole: int = 0
    duration_s: float = 0.0
    freq_sum: float = 0.0
    vv: np.ndarray = field(default=None)      # Σ Vrms²·T over whole cycles
    ii: np.ndarray = field(default=None)
    energy_whole: np.ndarray = field(default=None)
    energy_all: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        e = self.elements
        self.vv, self.ii, self.energy_whole, self.energy_all = (np.zeros(e) for _ in range(4))

    def add(self, b: CycleBlock) -> None:
        self.cycles += b.count
        self.energy_all += b.energy_wh.sum(axis=1)
        w = ~b.partial
        if not w.any():
            return
        d = b.duration_s[w]
        self.whole += int(w.sum())
        self.duration_s += float(d.sum())
        self.freq_sum += float(np.nansum(b.frequency_hz[w]))
        self.vv += (b.volts_rms[:, w] ** 2 * d).sum(axis=1)
        self.ii += (b.amps_rms[:, w] ** 2 * d).sum(axis=1)
        self.energy_whole += b.energy_wh[:, w].sum(axis=1)


def cycle_blocks(
    reader: Reader,
    channel_map: ChannelMap | None = None,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    hysteresis_v: float | None = None,
) -> tuple[ChannelMap, Iterator[CycleBlock], list]:
    """The recording's line cycles, streamed: ``(map used, iterator of blocks, [hysteresis])``.

    The hysteresis list is filled with the value used once the first chunk is read.
    """
    info = reader.info
    chunks = reader.chunks(chunk_frames)
    first = next(chunks, None)
    if first is None:
        raise InvalidRecording(f"{info.path}: the recording holds no samples")
    if channel_map is None:
        channel_map = ChannelMap.automatic(info, first)
    resolved = channel_map.resolve(info)
    used: list = []

    def blocks() -> Iterator[CycleBlock]:
        state = LineCycleState.start(resolved.elements, info.sample_rate_hz)
        hyst = hysteresis_v
        pending = [first]
        for frames in _chain(pending, chunks):
            volts, amps = resolved.split(frames)
            if not (np.isfinite(volts).all() and np.isfinite(amps).all()):
                raise InvalidRecording(f"{info.path}: non-finite samples (NaN or infinite) in the mapped channels")
            if hyst is None:
                peak = float(np.max(np.abs(volts[0]))) if volts.shape[1] else 0.0
                hyst = HYSTERESIS_FRACTION * peak if peak > 0 else 1e-9
                used.append(hyst)
            block, state = measure_chunk(volts, amps, state, hysteresis_v=hyst, reference=volts[0])
            if block.count:
                yield block
        e = resolved.elements
        empty = np.zeros((e, 0))
        block, _ = measure_chunk(empty, empty, state, hysteresis_v=hyst or 1e-9, final=True, reference=np.zeros(0))
        if block.count:
            yield block

    if hysteresis_v is not None:
        used.append(float(hysteresis_v))
    return channel_map, blocks(), used


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


def analyze(
    reader: Reader,
    channel_map: ChannelMap | None = None,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    hysteresis_v: float | None = None,
    on_block=None,
) -> Summary:
    """Analyse a whole recording, streaming; ``on_block(block)`` sees every cycle block
    (for a per-cycle table) as it is measured."""
    used_map, blocks, hyst = cycle_blocks(reader, channel_map, chunk_frames=chunk_frames, hysteresis_v=hysteresis_v)
    acc = _Accumulator(len(used_map.elements))
    for block in blocks:
        acc.add(block)
        if on_block is not None:
            on_block(block)
    return summarise(reader.info, used_map, hyst[0] if hyst else float("nan"), acc)


def summarise(info: RecordingInfo, channel_map: ChannelMap, hysteresis_v: float, acc: _Accumulator) -> Summary:
    elements = []
    for k, e in enumerate(channel_map.elements):
        t = acc.duration_s
        v = math.sqrt(acc.vv[k] / t) if t > 0 else float("nan")
        i = math.sqrt(acc.ii[k] / t) if t > 0 else float("nan")
        p = acc.energy_whole[k] * SECONDS_PER_HOUR / t if t > 0 else float("nan")
        pf = p / (v * i) if t > 0 and v * i > 0 else float("nan")
        elements.append(ElementSummary(k + 1, e.voltage, e.current, v, i, p, pf,
                                       float(acc.energy_whole[k]), float(acc.energy_all[k])))
    freq = acc.freq_sum / acc.whole if acc.whole else float("nan")
    return Summary(info, channel_map, hysteresis_v, acc.cycles, acc.whole, acc.duration_s, freq, tuple(elements))


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


__all__ = ["ElementSummary", "Summary", "analyze", "cycle_blocks", "cycle_rows"]
