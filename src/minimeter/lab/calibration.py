"""Calibration (SPEC S9.1; issue 4): per-element offset removal, voltage and current
gain, and phase correction as a table against current — and the makers' sequence that
finds them.

:class:`Calibration` is the meter's calibration hook (``Meter(spec, calibration=cal)``):
``initial_state(elements, fs)`` then ``apply(volts, amps, fs, state) -> (volts, amps,
state)`` on every chunk before metrology. It is pure (returns a new state, leaves its
inputs alone) and gives the same samples whatever the chunking: the filter history and
the current level are carried in the state, and the level's blocks are aligned to the
stream's sample index (see :mod:`minimeter.sources.frontend`).

Per element ``k``::

    v' = (v − offset_v) · volts_gain                      delayed HALF_TAPS samples
    i' = (i − offset_a) · amps_gain(I)                    delayed HALF_TAPS + phase_delay(I)·fs

``amps_gain`` and ``phase_delay_s`` are tables against the current [A rms] (linear in
log-current, clamped at the ends), read at the rms of the previous level block. The
phase correction is a fractional-sample delay by Lagrange interpolation, which keeps
the amplitude at the line frequency (error < 1e-10). The correction adds a group delay
of ``HALF_TAPS`` samples to both channels (:meth:`Calibration.group_delay_s`): the
meter sees the stream that much later, and the last ``HALF_TAPS`` samples of a stream
are still in the filter when it closes (2 ms at 2 kHz — a real meter's latency too).

:func:`calibrate` runs the makers' sequence (STANDARDS.md, "Where the error comes from")
against a synthetic reference: gain at rated current and PF 1 (voltage gain from Vrms,
current gain from P), then at each table current the current gain at PF 1 and the phase
at PF 0.5 lag — the ratios measured/reference ``r1`` and ``r05`` give the phase error
``β = atan((r05/r1 − 1)/√3)`` (since ``cos(60° − β)/cos 60° = cos β + √3·sin β``; for
small errors this is STANDARDS.md's ``asin(error/√3)``) and the gain ``cos β / r1`` —
and the offsets at the lowest current as the mean of the samples over whole cycles.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from minimeter.meter.snapshot import snapshot_state_type

from minimeter.sources.frontend import (DELAY_QUANTUM_SAMPLES, HALF_TAPS, DelayState, FrontEnd, InvalidFrontEnd, LevelState,
                       _interp_log, block_levels, delay_chunk)
from minimeter.meter.metrology import LineCycleState, measure_chunk
from minimeter.sources.service import Load, Service, ideal_source

FORMAT = "minimeter-calibration"
VERSION = 1
CALIBRATION_CURRENTS_FRACTION = (0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0)   # of the CT rating


@dataclass(frozen=True)
class ElementCalibration:
    """One element's corrections (see the module's docstring)."""

    offset_v: float = 0.0                     # [V]
    offset_a: float = 0.0                     # [A]
    volts_gain: float = 1.0
    current_a: tuple[float, ...] = (1.0,)     # table currents [A rms]
    amps_gain: tuple[float, ...] = (1.0,)
    phase_delay_s: tuple[float, ...] = (0.0,)  # delay of the current relative to the voltage [s]

    def __post_init__(self) -> None:
        n = len(self.current_a)
        if n == 0 or len(self.amps_gain) != n or len(self.phase_delay_s) != n:
            raise InvalidFrontEnd("calibration tables need equal, non-zero lengths")
        if any(a <= 0 for a in self.current_a) or list(self.current_a) != sorted(self.current_a):
            raise InvalidFrontEnd("calibration table currents must be positive and increasing")
        if not all(math.isfinite(x) for x in (self.offset_v, self.offset_a, self.volts_gain, *self.amps_gain,
                                               *self.phase_delay_s)):
            raise InvalidFrontEnd("calibration values must be finite numbers")

    def tables_at(self, level_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(self.current_a, float)
        return (_interp_log(level_a, a, np.asarray(self.amps_gain, float)),
                _interp_log(level_a, a, np.asarray(self.phase_delay_s, float)))


@snapshot_state_type
@dataclass(frozen=True)
class CalibrationState:
    level: LevelState
    amps_delay: DelayState
    volts_delay: DelayState


@dataclass(frozen=True)
class Calibration:
    """The meter's calibration: one :class:`ElementCalibration` per element."""

    elements: tuple[ElementCalibration, ...]
    notes: tuple[str, ...] = field(default=())

    # ---------------------------------------------------------------- the meter's hook
    def initial_state(self, elements: int, sample_rate_hz: float) -> CalibrationState:
        if elements != len(self.elements):
            raise InvalidFrontEnd(
                f"the calibration is for {len(self.elements)} element(s); this meter has {elements}"
            )
        return CalibrationState(LevelState.start(elements, sample_rate_hz), DelayState.start(elements),
                                DelayState.start(elements))

    def apply(self, volts: np.ndarray, amps: np.ndarray, sample_rate_hz: float,
              state: CalibrationState) -> tuple[np.ndarray, np.ndarray, CalibrationState]:
        """Corrected (volts, amps), both delayed by the group delay; and the new state."""
        fs = float(sample_rate_hz)
        e, n = volts.shape
        off_v = np.array([c.offset_v for c in self.elements])[:, None]
        off_a = np.array([c.offset_a for c in self.elements])[:, None]
        gain_v = np.array([c.volts_gain for c in self.elements])[:, None]
        a0 = amps - off_a
        levels, level_state = block_levels(a0, state.level)
        gain = np.empty((e, n))
        delay = np.empty((e, n))
        for k, c in enumerate(self.elements):
            gain[k], delay[k] = c.tables_at(levels[k])
        delay = np.round(delay * fs / DELAY_QUANTUM_SAMPLES) * DELAY_QUANTUM_SAMPLES
        a, amps_delay = delay_chunk(a0 * gain, delay, state.amps_delay)
        v, volts_delay = delay_chunk((volts - off_v) * gain_v, np.zeros((e, n)), state.volts_delay)
        return v, a, CalibrationState(level_state, amps_delay, volts_delay)

    def group_delay_s(self, sample_rate_hz: float) -> float:
        """The bulk delay the correction adds to both channels [s]."""
        return HALF_TAPS / sample_rate_hz

    # ---------------------------------------------------------------- file
    def as_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "notes": list(self.notes),
                "elements": [{"offset_v": c.offset_v, "offset_a": c.offset_a, "volts_gain": c.volts_gain,
                              "current_a": list(c.current_a), "amps_gain": list(c.amps_gain),
                              "phase_delay_us": [d * 1e6 for d in c.phase_delay_s]} for c in self.elements]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    @staticmethod
    def identity(elements: int) -> "Calibration":
        return Calibration(tuple(ElementCalibration() for _ in range(elements)))


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration file written by :meth:`Calibration.save` (``minimeter calibrate``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InvalidFrontEnd(f"{p}: no such calibration file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidFrontEnd(f"{p}: not a calibration file (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidFrontEnd(f"{p}: not a calibration file (no \"format\": \"{FORMAT}\")")
    try:
        elements = tuple(ElementCalibration(
            offset_v=float(e["offset_v"]), offset_a=float(e["offset_a"]), volts_gain=float(e["volts_gain"]),
            current_a=tuple(float(x) for x in e["current_a"]), amps_gain=tuple(float(x) for x in e["amps_gain"]),
            phase_delay_s=tuple(float(x) * 1e-6 for x in e["phase_delay_us"]),
        ) for e in data["elements"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidFrontEnd(f"{p}: calibration element malformed ({exc!r})") from None
    if not elements:
        raise InvalidFrontEnd(f"{p}: the calibration has no elements")
    return Calibration(elements, tuple(str(n) for n in data.get("notes", ())))


# --------------------------------------------------------------------------- the sequence
@dataclass(frozen=True)
class _Measured:
    volts_rms: np.ndarray     # (e,) [V]
    amps_rms: np.ndarray      # (e,) [A]
    power_w: np.ndarray       # (e,) [W]
    mean_v: np.ndarray        # (e,) [V]
    mean_a: np.ndarray        # (e,) [A]


@dataclass(frozen=True)
class CycleAverages:
    """Averages over the whole line cycles of a steady signal, after settling."""

    volts_rms: np.ndarray     # (e,) calibrated [V]
    amps_rms: np.ndarray      # (e,) calibrated [A]
    power_w: np.ndarray       # (e,) calibrated [W]
    mean_v: np.ndarray        # (e,) mean of the raw (uncalibrated) samples: the offset [V]
    mean_a: np.ndarray        # (e,) [A]
    seconds: float            # whole cycles averaged [s]
    cycles: int


def average_whole_cycles(chunks: Iterable[tuple[np.ndarray, np.ndarray]], calibration: Calibration,
                         elements: int, sample_rate_hz: float, *, settle_s: float,
                         hysteresis_v: float) -> CycleAverages | None:
    """Stream raw ``(volts, amps)`` chunks, each (e, n), through ``calibration`` and the
    line-cycle metrology; average P, Vrms and Irms over the whole cycles that start after
    ``settle_s`` [s] (weighted by duration), and the raw samples' means after it. None if
    no whole cycle was measured. The one measuring loop of both calibration sources."""
    fs = sample_rate_hz
    cal_state = calibration.initial_state(elements, fs)
    line = LineCycleState.start(elements, fs)
    settle = int(round(settle_s * fs))
    sums = np.zeros((5, elements))
    duration, count, k0, cycles = 0.0, 0, 0, 0
    for v, a in chunks:
        n = v.shape[1]
        if k0 + n > settle:
            lo = max(settle - k0, 0)
            sums[3] += v[:, lo:].sum(axis=1)
            sums[4] += a[:, lo:].sum(axis=1)
            count += n - lo
        k0 += n
        v, a, cal_state = calibration.apply(v, a, fs, cal_state)
        block, line = measure_chunk(v, a, line, hysteresis_v=hysteresis_v, reference=v[0])
        keep = ~block.partial & (block.start_s >= settle_s)
        if keep.any():
            d = block.duration_s[keep]
            sums[0] += (block.volts_rms[:, keep] ** 2 * d).sum(axis=1)
            sums[1] += (block.amps_rms[:, keep] ** 2 * d).sum(axis=1)
            sums[2] += (block.power_w[:, keep] * d).sum(axis=1)
            duration += float(d.sum())
            cycles += int(keep.sum())
    if duration <= 0 or count == 0:
        return None
    return CycleAverages(np.sqrt(sums[0] / duration), np.sqrt(sums[1] / duration), sums[2] / duration,
                         sums[3] / count, sums[4] / count, duration, cycles)


def _measure(front_end: FrontEnd, calibration: Calibration, elements: int, volts_rms: float, amps_rms: float,
             power_factor: float, lagging: bool, frequency_hz: float, sample_rate_hz: float,
             seconds: float, settle_s: float) -> _Measured:
    """Run a steady test signal through front end and calibration; average over whole
    cycles after ``settle_s``."""
    service = Service("single", volts_rms, frequency_hz)
    load = Load(volts_rms * amps_rms * power_factor, power_factor, leading=not lagging)
    source = ideal_source(service, (load,), 1)
    fs = sample_rate_hz

    def chunks():
        fe_state = front_end.initial_state(elements, fs)
        for frames in source.frames(seconds, fs, 1 << 15):
            v = np.repeat(frames.volts, elements, axis=0)
            a = np.repeat(frames.amps, elements, axis=0)
            v, a, fe_state = front_end.apply(v, a, fs, fe_state)
            yield v, a

    got = average_whole_cycles(chunks(), calibration, elements, fs, settle_s=settle_s,
                               hysteresis_v=0.1 * volts_rms)
    if got is None:
        raise InvalidFrontEnd("calibration run too short: no whole line cycle measured")
    return _Measured(got.volts_rms, got.amps_rms, got.power_w, got.mean_v, got.mean_a)


def calibrate(
    front_end: FrontEnd,
    elements: int,
    *,
    rated_a: float = 200.0,
    volts_rms: float = 120.0,
    frequency_hz: float = 60.0,
    sample_rate_hz: float = 2000.0,
    currents_a: Sequence[float] | None = None,
    seconds: float = 10.0,
    on_step: Callable[[str], None] | None = None,
) -> Calibration:
    """The makers' calibration sequence against a synthetic reference (see the module's
    docstring). Every element is fed the same reference signal through its own copy of
    ``front_end``. Each step averages ``seconds`` of signal, longer at low current
    (``seconds · rated_a / (10 · I)``, so the noise's share of the measured power stays
    small). Returns the calibration; the meter loads it with ``calibration=``."""
    currents = sorted(currents_a or [f * rated_a for f in CALIBRATION_CURRENTS_FRACTION])
    say = on_step or (lambda _msg: None)
    settle = 0.6
    common = dict(elements=elements, volts_rms=volts_rms, frequency_hz=frequency_hz, sample_rate_hz=sample_rate_hz,
                  settle_s=settle)

    def at(amps: float) -> dict:
        return dict(common, seconds=settle + max(seconds, seconds * rated_a / (10.0 * amps)))

    # 1. offsets at the lowest current, PF 1 (mean of the raw samples over the run).
    identity = Calibration.identity(elements)
    low = _measure(front_end, identity, amps_rms=currents[0], power_factor=1.0, lagging=True, **at(currents[0]))
    offsets_v, offsets_a = low.mean_v, low.mean_a
    say(f"offset at {currents[0]:g} A: V {', '.join(f'{x:+.4f}' for x in offsets_v)} V, "
        f"I {', '.join(f'{x:+.4f}' for x in offsets_a)} A")
    base = [ElementCalibration(offset_v=float(offsets_v[k]), offset_a=float(offsets_a[k])) for k in range(elements)]

    # 2. gain at rated current, PF 1: the voltage gain from Vrms.
    m = _measure(front_end, Calibration(tuple(base)), amps_rms=rated_a, power_factor=1.0, lagging=True, **at(rated_a))
    volts_gain = volts_rms / m.volts_rms
    say(f"voltage gain at {rated_a:g} A, PF 1: {', '.join(f'{g:.5f}' for g in volts_gain)}")
    base = [replace(b, volts_gain=float(volts_gain[k])) for k, b in enumerate(base)]

    # 3. per table current: PF 1 then PF 0.5 lag, both without current correction. With
    #    the current reading G·i(t + β/ω): r1 = G·cos β and r05 = G·(cos β + √3·sin β), so
    #    β = atan((r05 / r1 − 1) / √3) and G = r1 / cos β exactly (the phase error's
    #    cos β is not mistaken for a gain error).
    gains = np.ones((elements, len(currents)))
    delays = np.zeros((elements, len(currents)))
    for j, amps in enumerate(currents):
        flat = Calibration(tuple(replace(b, current_a=(amps,), amps_gain=(1.0,), phase_delay_s=(0.0,)) for b in base))
        m1 = _measure(front_end, flat, amps_rms=amps, power_factor=1.0, lagging=True, **at(amps))
        m2 = _measure(front_end, flat, amps_rms=amps, power_factor=0.5, lagging=True, **at(amps))
        r1 = m1.power_w / (volts_rms * amps)
        r05 = m2.power_w / (volts_rms * amps * 0.5)
        beta = np.arctan((r05 / r1 - 1.0) / math.sqrt(3.0))
        gains[:, j] = np.cos(beta) / r1
        beta_deg = np.degrees(beta)
        delays[:, j] = beta_deg / (360.0 * frequency_hz)
        say(f"{amps:7.2f} A: current gain {', '.join(f'{g:.5f}' for g in gains[:, j])}; "
            f"phase {', '.join(f'{b:+.4f}°' for b in beta_deg)} → current delayed "
            f"{', '.join(f'{d * 1e6:+.2f} µs' for d in delays[:, j])}")
    cal = Calibration(
        tuple(replace(b, current_a=tuple(currents), amps_gain=tuple(float(g) for g in gains[k]),
                      phase_delay_s=tuple(float(d) for d in delays[k])) for k, b in enumerate(base)),
        notes=(f"front end {front_end.name!r}: {front_end.description}",
               f"reference: synthetic {volts_rms:g} V, {frequency_hz:g} Hz, sampled at {sample_rate_hz:g} Hz",
               "sequence: offset at the lowest current; voltage gain at rated current PF 1; "
               "current gain at PF 1 and phase at PF 0.5 lag per table current"),
    )
    return cal


__all__ = ["Calibration", "ElementCalibration", "CalibrationState", "calibrate", "load_calibration"]
