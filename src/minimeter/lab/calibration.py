"""Calibration (SPEC S9.1; issue 4): per-element offset removal, voltage and current
gain, and phase correction as a table against current — and the makers' sequence that
finds them.

:class:`Calibration` is the meter's calibration hook (``Meter(spec, calibration=cal)``):
``initial_state(elements, fs)`` then ``apply(volts, amps, fs, state) -> (volts, amps,
state)`` on every chunk before metrology. It is pure (returns a new state, leaves its
inputs alone) and gives the same samples whatever the chunking: the filter history, the
current level and the measured frequency are carried in the state.

Per element ``k``::

    v' = (v − offset_v) · volts_gain                      delayed HALF_TAPS samples
    i' = (i − offset_a) · amps_gain(I)                    delayed HALF_TAPS + (phase_delay(I) + phase_angle(I) / (360 f))·fs

``amps_gain``, ``phase_delay_s`` and ``phase_angle_deg`` are tables against the current
[A rms] (linear in log-current, clamped at the ends), read sample by sample at the
current's own level (SPEC S9.4): the rms over the last half period at 60 Hz, then over
the last half period at 50 Hz (two causal boxcars of ``i²``, which null the 2f ripple at
both line frequencies and follow a step within a cycle). The phase correction has a
delay part (a skew: the phase grows with f) and an angle part (a CT's displacement: the
same at any f), turned into a delay at the line frequency ``f`` measured on the voltage's
zero crossings (:func:`track_frequency`). The phase correction is a fractional-sample
delay by Lagrange interpolation, which keeps the amplitude at the line frequency (error
< 1e-10). The correction adds a group delay of ``HALF_TAPS`` samples to both channels
(:meth:`Calibration.group_delay_s`): the meter sees the stream that much later, and the
last ``HALF_TAPS`` samples of a stream are still in the filter when it closes (2 ms at
2 kHz — a real meter's latency too).

Transfer (S9.4): the sequence at one frequency cannot tell an angle from a delay; run at
60 and 50 Hz, :func:`combine_frequencies` splits each point's phase error into both. A
CT *type* is calibrated from several units by :func:`calibrate_ct_type` (the average).

:func:`fit_sequence` runs the makers' sequence (STANDARDS.md, "Where the error comes
from") on any reference — :func:`calibrate` on a synthetic one, and
:func:`minimeter.lab.reference_run.calibrate_from_reference_run` on a recorded one: the
offsets at the lowest current as the mean of the raw samples, the voltage gain from Vrms
at the highest current and PF 1, then at each table current the current gain at PF 1
and the phase at PF 0.5 lag — the ratios measured/reference ``r1`` and ``r05`` give the
phase error ``β = atan((r05/r1 − 1)/√3)`` (since ``cos(60° − β)/cos 60° = cos β +
√3·sin β``; for small errors this is STANDARDS.md's ``asin(error/√3)``) and the gain
``cos β / r1`` (:func:`fit_phase_and_gain`, for any phase step's PF, lead or lag).
Every step is measured by :func:`average_whole_cycles`, over whole line cycles after a
settling time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from minimeter.drive import SampleChunk, measure_samples
from minimeter.lab.averaging import CycleAverages, average_cycles
from minimeter.meter.snapshot import snapshot_state_type
from minimeter.sources.frontend import (DELAY_QUANTUM_SAMPLES, HALF_TAPS, DelayState, FrontEnd, InvalidFrontEnd,
                                        SlidingState, check_current_table, delay_chunk, half_cycle_widths, interp_log,
                                        sliding_mean, through)
from minimeter.sources.service import Load, Service, ideal_source

FORMAT = "minimeter-calibration"
VERSION = 2
VERSIONS = (1, 2)            # 2 adds phase_angle_deg and frequency_hz
FREQUENCY_RANGE_HZ = (40.0, 70.0)   # [Hz] the line frequencies a calibration is fitted at or applied to
CALIBRATION_CURRENTS_FRACTION = (0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0)   # of the CT rating


# Physical bounds of a calibration (SPEC S15.1; docs/bench.md, "Calibration file"): a
# correction outside them is a broken front end or a hostile file, not a calibration.
GAIN_RANGE = (0.5, 2.0)            # volts_gain, amps_gain: a front end 50 % off is broken
MAX_OFFSET_V = 300.0               # [V] |offset_v|: beyond the meter's ±293 V full scale
MAX_OFFSET_A = 10_000.0            # [A primary] |offset_a|
MAX_PHASE_DELAY_S = 1e-3           # [s] |phase_delay_s|: 21.6° at 60 Hz, ten times a class-1 CT's error plus skew
MAX_PHASE_ANGLE_DEG = 20.0         # [°] |phase_angle_deg|
MAX_TABLE_A = 100_000.0            # [A rms] the largest table current
MAX_TABLE_POINTS = 64
MAX_ELEMENTS = 3
MAX_NOTES, MAX_NOTE_CHARS = 64, 2000
MAX_FILE_BYTES = 1 << 20


def _check_bounded(name: str, values: Iterable[float], lo: float, hi: float) -> None:
    for x in values:
        if not (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and lo <= x <= hi):
            raise InvalidFrontEnd(f"calibration {name} {x!r} is outside [{lo:g}, {hi:g}]")


@dataclass(frozen=True)
class ElementCalibration:
    """One element's corrections (see the module's docstring), each within the bounds
    above (else :class:`InvalidFrontEnd` naming the field and the bound). The current's
    phase correction at frequency ``f`` is a delay of ``phase_delay_s + phase_angle_deg
    / (360 · f)``: a delay part (a skew, phase ∝ f) and an angle part (a CT's phase
    displacement, the same at every frequency)."""

    offset_v: float = 0.0                     # [V]
    offset_a: float = 0.0                     # [A]
    volts_gain: float = 1.0
    current_a: tuple[float, ...] = (1.0,)     # table currents [A rms]
    amps_gain: tuple[float, ...] = (1.0,)
    phase_delay_s: tuple[float, ...] = (0.0,)  # delay of the current relative to the voltage [s]
    phase_angle_deg: tuple[float, ...] | None = None   # [°] the angle part; None: zeros

    def __post_init__(self) -> None:
        if self.phase_angle_deg is None:
            object.__setattr__(self, "phase_angle_deg", tuple(0.0 for _ in self.phase_delay_s))
        if len(self.current_a) > MAX_TABLE_POINTS:
            raise InvalidFrontEnd(f"calibration table has {len(self.current_a)} points (at most {MAX_TABLE_POINTS})")
        _check_bounded("offset_v [V]", (self.offset_v,), -MAX_OFFSET_V, MAX_OFFSET_V)
        _check_bounded("offset_a [A]", (self.offset_a,), -MAX_OFFSET_A, MAX_OFFSET_A)
        _check_bounded("volts_gain", (self.volts_gain,), *GAIN_RANGE)
        _check_bounded("current_a [A]", self.current_a, 0.0, MAX_TABLE_A)
        _check_bounded("amps_gain", self.amps_gain, *GAIN_RANGE)
        _check_bounded("phase_delay_s [s]", self.phase_delay_s, -MAX_PHASE_DELAY_S, MAX_PHASE_DELAY_S)
        _check_bounded("phase_angle_deg [°]", self.phase_angle_deg, -MAX_PHASE_ANGLE_DEG, MAX_PHASE_ANGLE_DEG)
        check_current_table("calibration", self.current_a, self.amps_gain, self.phase_delay_s, self.phase_angle_deg)

    def tables_at(self, level_a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(current gain, delay part [s], angle part [°]) at ``level_a`` [A rms]."""
        a = np.asarray(self.current_a, float)
        return (interp_log(level_a, a, np.asarray(self.amps_gain, float)),
                interp_log(level_a, a, np.asarray(self.phase_delay_s, float)),
                interp_log(level_a, a, np.asarray(self.phase_angle_deg, float)))

    def max_delay_s(self, frequency_hz: float) -> float:
        """The largest delay the correction asks for at ``frequency_hz`` [s]."""
        return max(abs(d + g / (360.0 * frequency_hz)) for d, g in zip(self.phase_delay_s, self.phase_angle_deg))


LEVEL_FREQUENCIES_HZ = (60.0, 50.0)    # the level's two half-period boxcars: null 2f at both line frequencies
ARM_V = 10.0                           # [V] the voltage must go below −ARM_V between two rising zero crossings


@snapshot_state_type
@dataclass(frozen=True)
class FrequencyState:
    """Per element: the line frequency from the last two rising zero crossings of the voltage."""

    next_index: int               # stream index of the next sample
    last_v: np.ndarray            # (e,) the previous sample [V]
    armed: np.ndarray             # (e,) went below −ARM_V since the last crossing
    last_crossing: np.ndarray     # (e,) stream index of the last crossing (fractional; NaN: none yet)
    frequency_hz: np.ndarray      # (e,) the current estimate [Hz]

    @staticmethod
    def start(elements: int, frequency_hz: float) -> "FrequencyState":
        return FrequencyState(0, np.zeros(elements), np.zeros(elements, bool), np.full(elements, np.nan),
                              np.full(elements, float(frequency_hz)))


def track_frequency(volts: np.ndarray, sample_rate_hz: float,
                    state: FrequencyState) -> tuple[np.ndarray, FrequencyState]:
    """Per sample, the line frequency measured from the voltage's rising zero crossings
    before it (causal; between 40 and 70 Hz, else the last estimate holds) [Hz]."""
    e, n = volts.shape
    out = np.empty((e, n))
    last_v, armed = state.last_v.copy(), state.armed.copy()
    last_x, freq = state.last_crossing.copy(), state.frequency_hz.copy()
    for r in range(e):
        v = volts[r]
        prev = np.concatenate(([last_v[r]], v[:-1]))
        idx = np.arange(n)
        last_below = np.maximum.accumulate(np.where(v < -ARM_V, idx, -1)) if n else idx
        cuts, values, crossed_at = [0], [freq[r]], -1
        for j in np.flatnonzero((prev < 0) & (v >= 0)).tolist():
            if not (last_below[j] > crossed_at or (crossed_at < 0 and armed[r])):
                continue
            t = state.next_index + j - 1 + (-prev[j]) / (v[j] - prev[j])
            if np.isfinite(last_x[r]) and FREQUENCY_RANGE_HZ[0] <= sample_rate_hz / (t - last_x[r]) <= FREQUENCY_RANGE_HZ[1]:
                freq[r] = sample_rate_hz / (t - last_x[r])
                cuts.append(j)
                values.append(freq[r])
            last_x[r], crossed_at, armed[r] = t, j, False
        if n:
            out[r] = np.repeat(values, np.diff(np.concatenate((cuts, [n]))))
            armed[r] = armed[r] or last_below[-1] > crossed_at
            last_v[r] = v[-1]
    return out, FrequencyState(state.next_index + n, last_v, armed, last_x, freq)


@snapshot_state_type
@dataclass(frozen=True)
class CalibrationState:
    level: SlidingState
    frequency: FrequencyState
    amps_delay: DelayState
    volts_delay: DelayState


@dataclass(frozen=True)
class Calibration:
    """The meter's calibration: one :class:`ElementCalibration` per element."""

    elements: tuple[ElementCalibration, ...]
    notes: tuple[str, ...] = field(default=())
    frequency_hz: float = 60.0      # [Hz] where it was fitted: the angle part's delay until a cycle is measured

    # ---------------------------------------------------------------- the meter's hook
    def initial_state(self, elements: int, sample_rate_hz: float) -> CalibrationState:
        if elements != len(self.elements):
            raise InvalidFrontEnd(
                f"the calibration is for {len(self.elements)} element(s); this meter has {elements}"
            )
        reach = HALF_TAPS / sample_rate_hz
        for k, c in enumerate(self.elements):
            worst = max(c.max_delay_s(f) for f in FREQUENCY_RANGE_HZ)
            if worst > reach:
                raise InvalidFrontEnd(f"calibration element {k + 1}: a phase correction of {worst * 1e6:.0f} µs is "
                                      f"beyond the correction filter's reach at {sample_rate_hz:g} Hz "
                                      f"(±{reach * 1e6:.0f} µs = {HALF_TAPS} samples)")
        return CalibrationState(SlidingState.start(elements, half_cycle_widths(sample_rate_hz, LEVEL_FREQUENCIES_HZ)),
                                FrequencyState.start(elements, self.frequency_hz), DelayState.start(elements),
                                DelayState.start(elements))

    def apply(self, volts: np.ndarray, amps: np.ndarray, sample_rate_hz: float,
              state: CalibrationState) -> tuple[np.ndarray, np.ndarray, CalibrationState]:
        """Corrected (volts, amps), both delayed by the group delay; and the new state.
        The tables are read, sample by sample, at the current's own level (the rms over
        the last half period at 60 Hz, then at 50 Hz: causal, within a cycle of a step);
        the angle part becomes a delay at the frequency measured on the voltage."""
        fs = float(sample_rate_hz)
        e, n = volts.shape
        off_v = np.array([c.offset_v for c in self.elements])[:, None]
        off_a = np.array([c.offset_a for c in self.elements])[:, None]
        gain_v = np.array([c.volts_gain for c in self.elements])[:, None]
        a0 = amps - off_a
        v0 = (volts - off_v) * gain_v
        mean_square, level_state = sliding_mean(a0 * a0, half_cycle_widths(fs, LEVEL_FREQUENCIES_HZ), state.level)
        levels = np.sqrt(np.maximum(mean_square, 0.0))
        frequency, frequency_state = track_frequency(v0, fs, state.frequency)
        gain = np.empty((e, n))
        delay = np.empty((e, n))
        for k, c in enumerate(self.elements):
            gain[k], delay_s, angle_deg = c.tables_at(levels[k])
            delay[k] = delay_s + angle_deg / (360.0 * frequency[k])
        delay = np.round(delay * fs / DELAY_QUANTUM_SAMPLES) * DELAY_QUANTUM_SAMPLES
        a, amps_delay = delay_chunk(a0 * gain, delay, state.amps_delay)
        v, volts_delay = delay_chunk(v0, np.zeros((e, n)), state.volts_delay)
        return v, a, CalibrationState(level_state, frequency_state, amps_delay, volts_delay)

    def group_delay_s(self, sample_rate_hz: float) -> float:
        """The bulk delay the correction adds to both channels [s]."""
        return HALF_TAPS / sample_rate_hz

    # ---------------------------------------------------------------- file
    def as_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "notes": list(self.notes), "frequency_hz": self.frequency_hz,
                "elements": [{"offset_v": c.offset_v, "offset_a": c.offset_a, "volts_gain": c.volts_gain,
                              "current_a": list(c.current_a), "amps_gain": list(c.amps_gain),
                              "phase_delay_us": [d * 1e6 for d in c.phase_delay_s],
                              "phase_angle_deg": list(c.phase_angle_deg)} for c in self.elements]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    @staticmethod
    def identity(elements: int) -> "Calibration":
        return Calibration(tuple(ElementCalibration() for _ in range(elements)))


def _field(where: str, e: dict, key: str, scale: float = 1.0, default: Any = None) -> Any:
    """``e[key]`` as a float, or a tuple of floats when it is a list (× ``scale``)."""
    if key not in e:
        if default is not None:
            return default
        raise InvalidFrontEnd(f"{where}.{key}: missing")
    value = e[key]

    def number(x: Any) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise InvalidFrontEnd(f"{where}.{key}: expected a number or a list of numbers, got {_short(x)}")
        try:
            return float(x) * scale
        except OverflowError:
            raise InvalidFrontEnd(f"{where}.{key}: {_short(x)} is not a finite number") from None

    if isinstance(value, list):
        if len(value) > MAX_TABLE_POINTS:
            raise InvalidFrontEnd(f"{where}.{key}: {len(value)} values (at most {MAX_TABLE_POINTS})")
        return tuple(number(x) for x in value)
    return number(value)


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


def _element(where: str, e: Any) -> ElementCalibration:
    if not isinstance(e, dict):
        raise InvalidFrontEnd(f"{where}: expected an object, got {_short(e)}")
    scalars = {k: _field(where, e, k) for k in ("offset_v", "offset_a", "volts_gain")}
    tables = {k: _field(where, e, k) for k in ("current_a", "amps_gain")}
    tables["phase_delay_s"] = _field(where, e, "phase_delay_us", 1e-6)
    tables["phase_angle_deg"] = _field(where, e, "phase_angle_deg", default=tuple(0.0 for _ in tables["current_a"])
                                       if isinstance(tables["current_a"], tuple) else ())
    for k, v in scalars.items():
        if isinstance(v, tuple):
            raise InvalidFrontEnd(f"{where}.{k}: expected a number, got a list")
    for k, v in tables.items():
        if not isinstance(v, tuple):
            raise InvalidFrontEnd(f"{where}.{k}: expected a list of numbers, got {v!r}")
    try:
        return ElementCalibration(**scalars, **tables)
    except InvalidFrontEnd as exc:
        raise InvalidFrontEnd(f"{where}: {exc}") from None


def _notes(where: str, notes: Any) -> tuple[str, ...]:
    if not isinstance(notes, list) or len(notes) > MAX_NOTES \
            or not all(isinstance(n, str) and len(n) <= MAX_NOTE_CHARS for n in notes):
        raise InvalidFrontEnd(f"{where}: notes must be a list of at most {MAX_NOTES} strings of at most "
                              f"{MAX_NOTE_CHARS} characters")
    return tuple(notes)


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration file written by :meth:`Calibration.save` (``minimeter calibrate``).
    Every problem — not JSON, too large, a wrong type, a value beyond its physical bound
    (docs/bench.md) — is one :class:`InvalidFrontEnd` naming the file and the field."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise InvalidFrontEnd(f"{p}: {p.stat().st_size} bytes — a calibration file is at most {MAX_FILE_BYTES}")
        data = json.loads(p.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise InvalidFrontEnd(f"{p}: no such calibration file") from None
    except OSError as exc:
        raise InvalidFrontEnd(f"{p}: cannot read the calibration file ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidFrontEnd(f"{p}: not a calibration file (not JSON: {str(exc)[:80]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidFrontEnd(f"{p}: not a calibration file (no \"format\": \"{FORMAT}\")")
    if data.get("version", 1) not in VERSIONS:
        raise InvalidFrontEnd(f"{p}: version {_short(data.get('version'))} unknown (this reader knows {VERSIONS})")
    raw = data.get("elements")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ELEMENTS:
        raise InvalidFrontEnd(f"{p}: elements must be a list of 1 to {MAX_ELEMENTS} objects")
    frequency = _field(f"{p}", data, "frequency_hz", default=60.0)
    if isinstance(frequency, tuple) or not FREQUENCY_RANGE_HZ[0] <= frequency <= FREQUENCY_RANGE_HZ[1]:
        raise InvalidFrontEnd(f"{p}: frequency_hz {_short(frequency)} outside {FREQUENCY_RANGE_HZ[0]:g}–"
                              f"{FREQUENCY_RANGE_HZ[1]:g} Hz")
    elements = tuple(_element(f"{p}: elements[{k}]", e) for k, e in enumerate(raw))
    return Calibration(elements, _notes(f"{p}", data.get("notes", [])), frequency)


# --------------------------------------------------------------------------- measuring
@dataclass(frozen=True)
class CalibratedAverages:
    """A steady signal measured through a calibration: per element, the averages over
    its whole line cycles after settling (:mod:`minimeter.lab.averaging`), and the mean
    of the raw (uncorrected) samples after settling — the offsets."""

    volts_rms: np.ndarray     # (e,) calibrated [V]
    amps_rms: np.ndarray      # (e,) calibrated [A]
    power_w: np.ndarray       # (e,) calibrated [W]
    mean_v: np.ndarray        # (e,) mean of the raw samples [V]
    mean_a: np.ndarray        # (e,) [A]
    frequency_hz: float       # mean of the whole cycles' frequencies, over the elements [Hz]
    seconds: float            # whole cycles averaged (the least over the elements) [s]
    cycles: int               # whole cycles averaged (the least over the elements)


class _SettledMeans:
    """Running means of raw samples from sample index ``settle`` on."""

    def __init__(self, settle: int) -> None:
        self.settle, self.seen, self.count = settle, 0, 0
        self.sum_v = self.sum_a = 0.0

    def add(self, volts: np.ndarray, amps: np.ndarray) -> None:
        lo = max(self.settle - self.seen, 0)
        if lo < volts.size:
            self.sum_v += float(volts[lo:].sum())
            self.sum_a += float(amps[lo:].sum())
            self.count += volts.size - lo
        self.seen += volts.size


ChunkSource = Callable[[], Iterable[SampleChunk]]     # a fresh stream of raw (volts, amps) chunks on each call


def _average_element(chunks: Iterable[SampleChunk], calibration: ElementCalibration, k: int, sample_rate_hz: float,
                     settle_s: float, hysteresis_v: float) -> tuple[CycleAverages, _SettledMeans]:
    """Element ``k`` of ``chunks`` alone, through its calibration, cut on its own voltage."""
    means = _SettledMeans(int(round(settle_s * sample_rate_hz)))

    def raw() -> Iterator[SampleChunk]:
        for volts, amps in chunks:
            means.add(volts[k], amps[k])
            yield volts[k:k + 1], amps[k:k + 1]

    corrected = through(Calibration((calibration,)), raw(), 1, sample_rate_hz)
    blocks = measure_samples(corrected, sample_rate_hz, hysteresis_v=hysteresis_v)
    return average_cycles(blocks, 1, settle_s=settle_s), means


def average_whole_cycles(chunks: ChunkSource, calibration: Calibration, sample_rate_hz: float, *,
                         settle_s: float, hysteresis_v: float) -> CalibratedAverages | None:
    """Stream raw ``(volts, amps)`` chunks, each (e, n), through ``calibration`` and the
    line-cycle metrology (:func:`minimeter.drive.measure_samples`); average each element
    over its whole cycles that start after ``settle_s`` [s], and its raw samples after it.
    None if an element had no whole cycle. The one measuring loop of both calibration
    sources.

    Each element is measured on its own voltage's cycles, one pass of ``chunks()`` per
    element: a bench may feed every element the same voltage, and then L1–L2 — what a
    two-element meter cuts on — is zero; the average of a steady signal over whole
    cycles does not depend on where the cycles start."""
    fs = sample_rate_hz
    per_element = [_average_element(chunks(), c, k, fs, settle_s, hysteresis_v)
                   for k, c in enumerate(calibration.elements)]
    if any(got.whole_cycles == 0 or means.count == 0 for got, means in per_element):
        return None
    cycles = [got for got, _ in per_element]
    means = [m for _, m in per_element]
    return CalibratedAverages(
        np.array([float(c.volts_rms[0]) for c in cycles]), np.array([float(c.amps_rms[0]) for c in cycles]),
        np.array([float(c.power_w[0]) for c in cycles]),
        np.array([m.sum_v / m.count for m in means]), np.array([m.sum_a / m.count for m in means]),
        float(np.mean([c.frequency_hz for c in cycles])), min(c.seconds for c in cycles),
        min(c.whole_cycles for c in cycles))


# --------------------------------------------------------------------------- the fit
@dataclass(frozen=True)
class PhaseFit:
    """The current's correction at one table current, per element."""

    amps_gain: np.ndarray     # (e,) the current's correction gain cos β / r1 (= 1/G)
    phase_deg: np.ndarray     # (e,) β [°]: positive, the current reads ahead of the voltage
    delay_s: np.ndarray       # (e,) the correction's delay of the current, β / (360° · f) [s]


def fit_phase_and_gain(r1: np.ndarray, r_phi: np.ndarray, power_factor: np.ndarray, lead: bool,
                       frequency_hz: float) -> PhaseFit:
    """The current's gain and phase error from two ratios of measured to true active
    power: ``r1`` at PF 1 and ``r_phi`` at ``power_factor`` = cos φ (lagging unless
    ``lead``). With the current reading ``G·i(t + β/ω)``, ``r1 = G·cos β`` and
    ``rφ = G·(cos β ± tan φ·sin β)`` (+ lag, − lead), so ``β = atan(±(rφ/r1 − 1)/tan φ)``
    (at PF 0.5 lag, ``tan φ = √3``), and the correction ``cos β / r1 = 1/G`` exactly:
    the phase error's cos β is not mistaken for a gain error. The current is delayed by
    ``β / (360° · frequency_hz)`` [s]."""
    r1 = np.asarray(r1, float)
    cos_phi = np.asarray(power_factor, float)
    tan_phi = np.sqrt(1.0 - cos_phi ** 2) / cos_phi
    sign = -1.0 if lead else 1.0
    beta = np.arctan(sign * (np.asarray(r_phi, float) / r1 - 1.0) / tan_phi)
    beta_deg = np.degrees(beta)
    return PhaseFit(np.cos(beta) / r1, beta_deg, beta_deg / (360.0 * frequency_hz))


@dataclass(frozen=True)
class SequenceStep:
    """One step of the makers' sequence: the reference's true values per element, and
    what the measuring function needs to produce the signal (``source``)."""

    name: str                 # for messages ('step[3]'), or '' for a synthetic step
    volts_rms: np.ndarray     # (e,) [V rms]
    amps_rms: np.ndarray      # (e,) [A rms]
    power_w: np.ndarray       # (e,) [W]
    lead: bool = False
    source: Any = None

    @property
    def power_factor(self) -> np.ndarray:
        """(e,) P / (Vrms · Irms)."""
        return np.asarray(self.power_w) / (np.asarray(self.volts_rms) * np.asarray(self.amps_rms))

    @property
    def current_a(self) -> float:
        """Mean over the elements [A rms]."""
        return float(np.mean(self.amps_rms))

    def where(self) -> str:
        """The step in a message: its name and current."""
        return f"{self.name}, {self.current_a:g} A" if self.name else f"{self.current_a:g} A"


@dataclass(frozen=True)
class CalibrationPlan:
    """The makers' sequence (STANDARDS.md, "Where the error comes from"): offsets at the
    PF 1 step of lowest current, the voltage gain at the PF 1 step of highest current,
    then per table current (rising) a PF 1 step and a phase step."""

    offsets: SequenceStep
    voltage_gain: SequenceStep
    points: tuple[tuple[SequenceStep, SequenceStep], ...]     # (PF 1 step, phase step)
    frequency_hz: float                                       # turns the phase error into a delay [Hz]


class CalibrationFitError(InvalidFrontEnd):
    """A sequence whose measurements give no usable calibration: ``key`` names the step."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


Measure = Callable[[SequenceStep, Calibration], CalibratedAverages]


def _listed(values: np.ndarray, fmt: str) -> str:
    return ", ".join(format(float(x), fmt) for x in values)


def _fit_offsets(plan: CalibrationPlan, measure: Measure, elements: int,
                 say: Callable[[str], None]) -> list[ElementCalibration]:
    step = plan.offsets
    low = measure(step, Calibration.identity(elements))
    say(f"offset ({step.where()}): V {_listed(low.mean_v, '+.4f')} V, I {_listed(low.mean_a, '+.4f')} A")
    return [ElementCalibration(offset_v=float(low.mean_v[k]), offset_a=float(low.mean_a[k])) for k in range(elements)]


def _fit_voltage_gain(plan: CalibrationPlan, measure: Measure, base: list[ElementCalibration],
                      say: Callable[[str], None]) -> list[ElementCalibration]:
    step = plan.voltage_gain
    m = measure(step, Calibration(tuple(base)))
    volts_gain = np.asarray(step.volts_rms) / m.volts_rms
    say(f"voltage gain ({step.where()}, PF 1): {_listed(volts_gain, '.5f')}")
    return [replace(b, volts_gain=float(volts_gain[k])) for k, b in enumerate(base)]


def _fit_point(plan: CalibrationPlan, measure: Measure, base: list[ElementCalibration], unity: SequenceStep,
               phase: SequenceStep, say: Callable[[str], None]) -> PhaseFit:
    """Current gain and phase at one table current, without current correction."""
    flat = Calibration(tuple(replace(b, current_a=(float(unity.amps_rms[k]),), amps_gain=(1.0,), phase_delay_s=(0.0,),
                                     phase_angle_deg=(0.0,))
                             for k, b in enumerate(base)))
    r1 = measure(unity, flat).power_w / np.asarray(unity.power_w)
    r_phi = measure(phase, flat).power_w / np.asarray(phase.power_w)
    fit = fit_phase_and_gain(r1, r_phi, phase.power_factor, phase.lead, plan.frequency_hz)
    if not (np.all(np.isfinite(fit.phase_deg)) and np.all(r1 > 0)):
        raise CalibrationFitError(unity.name or unity.where(), "no positive power measured at PF 1 — check the "
                                                               "channel map and the current's direction")
    pf_text = f"PF {float(np.mean(phase.power_factor)):.2f} {'lead' if phase.lead else 'lag'}"
    say(f"{unity.current_a:7.2f} A ({unity.name + ' ' if unity.name else ''}PF 1, "
        f"{phase.name + ' ' if phase.name else ''}{pf_text}): current gain {_listed(fit.amps_gain, '.5f')}; "
        f"phase {', '.join(f'{b:+.4f}°' for b in fit.phase_deg)} → current delayed "
        f"{', '.join(f'{d * 1e6:+.2f} µs' for d in fit.delay_s)}")
    return fit


def fit_sequence(plan: CalibrationPlan, measure: Measure, elements: int, notes: Sequence[str] = (),
                 on_step: Callable[[str], None] | None = None) -> Calibration:
    """Run the makers' sequence ``plan``, measuring each step with ``measure(step,
    calibration)``; the one fit of both the synthetic and the recorded reference.
    ``on_step(message)`` hears each result."""
    say = on_step or (lambda _msg: None)
    base = _fit_voltage_gain(plan, measure, _fit_offsets(plan, measure, elements, say), say)
    fits = [_fit_point(plan, measure, base, unity, phase, say) for unity, phase in plan.points]
    currents = np.array([unity.amps_rms for unity, _ in plan.points], float).T      # (e, points) [A rms]
    try:
        return Calibration(
            tuple(replace(b, current_a=tuple(float(x) for x in currents[k]),
                          amps_gain=tuple(float(f.amps_gain[k]) for f in fits),
                          phase_delay_s=tuple(float(f.delay_s[k]) for f in fits),
                          phase_angle_deg=tuple(0.0 for _ in fits)) for k, b in enumerate(base)),
            notes=tuple(notes), frequency_hz=plan.frequency_hz)
    except InvalidFrontEnd as exc:
        raise CalibrationFitError("step", f"the fitted calibration is unusable ({exc})") from None


# --------------------------------------------------------------------------- the synthetic reference
def _synthetic_chunks(front_end: FrontEnd, elements: int, step: SequenceStep, frequency_hz: float,
                      sample_rate_hz: float, seconds: float) -> ChunkSource:
    """A steady test signal, every element fed the same one through its own copy of the front end."""
    volts, amps, pf = float(step.volts_rms[0]), float(step.amps_rms[0]), float(step.power_factor[0])
    source = ideal_source(Service("single", volts, frequency_hz), (Load(volts * amps * pf, pf, leading=step.lead),), 1)

    def chunks() -> Iterator[SampleChunk]:
        raw = ((np.repeat(f.volts, elements, axis=0), np.repeat(f.amps, elements, axis=0))
               for f in source.frames(seconds, sample_rate_hz, 1 << 15))
        return through(front_end.at_frequency(frequency_hz), raw, elements, sample_rate_hz)

    return chunks


def _synthetic_step(volts_rms: float, amps: float, power_factor: float, elements: int) -> SequenceStep:
    ones = np.ones(elements)
    return SequenceStep("", volts_rms * ones, amps * ones, volts_rms * amps * power_factor * ones)


def calibrate(
    front_end: FrontEnd,
    elements: int,
    *,
    rated_a: float = 200.0,
    volts_rms: float = 120.0,
    frequency_hz: float | Sequence[float] = 60.0,
    sample_rate_hz: float = 2000.0,
    currents_a: Sequence[float] | None = None,
    seconds: float = 10.0,
    phase_as: str = "delay",
    on_step: Callable[[str], None] | None = None,
) -> Calibration:
    """The makers' calibration sequence against a synthetic reference (see the module's
    docstring). Every element is fed the same reference signal through its own copy of
    ``front_end``. Each step averages ``seconds`` of signal, longer at low current
    (``seconds · rated_a / (10 · I)``, so the noise's share of the measured power stays
    small). Returns the calibration; the meter loads it with ``calibration=``.

    ``frequency_hz`` may be several line frequencies (60 and 50 Hz): the sequence runs at
    each and :func:`combine_frequencies` splits each table point's phase error into an
    angle and a delay, which then transfer to any frequency. At one frequency the phase
    error is kept as a delay (``phase_as="delay"``: a skew) or as an angle (``"angle"``:
    a CT's displacement) — which one transfers depends on the front end."""
    frequencies = [float(frequency_hz)] if isinstance(frequency_hz, (int, float)) else [float(f) for f in frequency_hz]
    if phase_as not in ("delay", "angle"):
        raise InvalidFrontEnd(f"phase_as {phase_as!r}: 'delay' or 'angle'")
    cals = [_calibrate_at(front_end, elements, rated_a, volts_rms, f, sample_rate_hz, currents_a, seconds, on_step)
            for f in frequencies]
    if len(cals) > 1:
        return combine_frequencies(cals)
    return cals[0] if phase_as == "delay" else as_angles(cals[0])


def _calibrate_at(front_end: FrontEnd, elements: int, rated_a: float, volts_rms: float, frequency_hz: float,
                  sample_rate_hz: float, currents_a: Sequence[float] | None, seconds: float,
                  on_step: Callable[[str], None] | None) -> Calibration:
    """The sequence at one line frequency, the phase error kept as a delay."""
    currents = sorted(currents_a or [f * rated_a for f in CALIBRATION_CURRENTS_FRACTION])
    settle = 0.6

    def measure(step: SequenceStep, calibration: Calibration) -> CalibratedAverages:
        length = settle + max(seconds, seconds * rated_a / (10.0 * step.current_a))
        chunks = _synthetic_chunks(front_end, elements, step, frequency_hz, sample_rate_hz, length)
        got = average_whole_cycles(chunks, calibration, sample_rate_hz, settle_s=settle, hysteresis_v=0.1 * volts_rms)
        if got is None:
            raise InvalidFrontEnd("calibration run too short: no whole line cycle measured")
        return got

    plan = CalibrationPlan(
        _synthetic_step(volts_rms, currents[0], 1.0, elements), _synthetic_step(volts_rms, rated_a, 1.0, elements),
        tuple((_synthetic_step(volts_rms, a, 1.0, elements), _synthetic_step(volts_rms, a, 0.5, elements))
              for a in currents), frequency_hz)
    notes = (f"front end {front_end.name!r}: {front_end.description}",
             f"reference: synthetic {volts_rms:g} V, {frequency_hz:g} Hz, sampled at {sample_rate_hz:g} Hz",
             "sequence: offset at the lowest current; voltage gain at rated current PF 1; "
             "current gain at PF 1 and phase at PF 0.5 lag per table current")
    if on_step is not None:
        on_step(f"— at {frequency_hz:g} Hz —")
    return fit_sequence(plan, measure, elements, notes, on_step)


# --------------------------------------------------------------------------- transfer: frequencies and units
def as_angles(calibration: Calibration) -> Calibration:
    """The phase corrections of ``calibration`` as angles at its frequency (a CT whose
    displacement is the same at every frequency), instead of delays."""
    f = calibration.frequency_hz
    return replace(calibration, elements=tuple(
        replace(c, phase_delay_s=tuple(0.0 for _ in c.current_a),
                phase_angle_deg=tuple(g + 360.0 * f * d for d, g in zip(c.phase_delay_s, c.phase_angle_deg)))
        for c in calibration.elements), notes=calibration.notes + ("phase kept as an angle",))


def _on_currents(c: ElementCalibration, currents_a: Sequence[float]) -> np.ndarray:
    """(3, points): gain, delay part, angle part read at ``currents_a``."""
    return np.array(c.tables_at(np.asarray(currents_a, float)))


def _mean_scalars(calibrations: Sequence[Calibration], k: int) -> dict[str, float]:
    """Element ``k``'s offsets and voltage gain averaged over ``calibrations``."""
    return {name: float(np.mean([getattr(cal.elements[k], name) for cal in calibrations]))
            for name in ("offset_v", "offset_a", "volts_gain")}


def combine_frequencies(calibrations: Sequence[Calibration]) -> Calibration:
    """One calibration from the same sequence run at several line frequencies ``f_j``:
    per table current, the phase corrections ``β_j = 360 · f_j · delay_j + angle_j`` [°]
    fitted as ``β(f) = angle + 360 · f · delay`` (exact at two frequencies: the angle
    part a CT's displacement, the delay part a skew); offsets and gains averaged. The
    result corrects at any frequency the meter measures."""
    freqs = np.array([c.frequency_hz for c in calibrations])
    if len(calibrations) < 2 or np.ptp(freqs) < 1.0:
        raise InvalidFrontEnd(f"combining needs calibrations at two frequencies at least 1 Hz apart, got {freqs}")
    first = calibrations[0]
    design = np.stack([np.ones_like(freqs), 360.0 * freqs], axis=1)        # β = angle + 360 f · delay
    elements = []
    for k, c0 in enumerate(first.elements):
        at = [_on_currents(cal.elements[k], c0.current_a) for cal in calibrations]
        beta = np.array([360.0 * f * t[1] + t[2] for f, t in zip(freqs, at)])       # (freqs, points) [°]
        solved, *_ = np.linalg.lstsq(design, beta, rcond=None)
        elements.append(replace(
            c0, **_mean_scalars(calibrations, k), amps_gain=tuple(float(x) for x in np.mean([t[0] for t in at], axis=0)),
            phase_delay_s=tuple(float(x) for x in solved[1]), phase_angle_deg=tuple(float(x) for x in solved[0])))
    note = f"fitted at {', '.join(f'{f:g}' for f in freqs)} Hz: phase = angle + 360·f·delay per table current"
    return Calibration(tuple(elements), first.notes + (note,), float(freqs[0]))


def average_calibrations(calibrations: Sequence[Calibration], note: str = "") -> Calibration:
    """A CT *type*'s calibration from several units' (fit on units A and B, use on C):
    every correction averaged, the tables read at the first calibration's currents."""
    first = calibrations[0]
    if any(len(c.elements) != len(first.elements) for c in calibrations):
        raise InvalidFrontEnd("the calibrations to average have different numbers of elements")
    elements = []
    for k, c0 in enumerate(first.elements):
        at = np.mean([_on_currents(cal.elements[k], c0.current_a) for cal in calibrations], axis=0)
        elements.append(replace(
            c0, **_mean_scalars(calibrations, k), amps_gain=tuple(float(x) for x in at[0]), phase_delay_s=tuple(float(x) for x in at[1]),
            phase_angle_deg=tuple(float(x) for x in at[2])))
    return Calibration(tuple(elements), first.notes + ((note,) if note else ()), first.frequency_hz)


def calibrate_ct_type(front_end: FrontEnd, elements: int, units: Sequence[int], **options: Any) -> Calibration:
    """:func:`calibrate` on each of ``units`` of the front end's CT type
    (:meth:`FrontEnd.with_ct_unit`), averaged (:func:`average_calibrations`): one
    calibration for every CT of the type."""
    cals = [calibrate(front_end.with_ct_unit(u), elements, **options) for u in units]
    return average_calibrations(cals, f"CT type calibration: the average of units {', '.join(map(str, units))}")


__all__ = ["Calibration", "ElementCalibration", "CalibrationState", "CalibratedAverages", "CalibrationFitError",
           "CalibrationPlan", "FrequencyState", "PhaseFit", "SequenceStep", "as_angles", "average_calibrations",
           "average_whole_cycles", "calibrate", "calibrate_ct_type", "combine_frequencies", "fit_phase_and_gain",
           "fit_sequence", "load_calibration", "track_frequency"]
