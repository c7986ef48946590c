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
                                        LevelState, block_levels, check_current_table, delay_chunk, interp_log,
                                        through)
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
        check_current_table("calibration", self.current_a, self.amps_gain, self.phase_delay_s)
        if not all(math.isfinite(x) for x in (self.offset_v, self.offset_a, self.volts_gain, *self.amps_gain,
                                               *self.phase_delay_s)):
            raise InvalidFrontEnd("calibration values must be finite numbers")

    def tables_at(self, level_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(self.current_a, float)
        return (interp_log(level_a, a, np.asarray(self.amps_gain, float)),
                interp_log(level_a, a, np.asarray(self.phase_delay_s, float)))


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
    flat = Calibration(tuple(replace(b, current_a=(float(unity.amps_rms[k]),), amps_gain=(1.0,), phase_delay_s=(0.0,))
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
                          phase_delay_s=tuple(float(f.delay_s[k]) for f in fits)) for k, b in enumerate(base)),
            notes=tuple(notes))
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
        return through(front_end, raw, elements, sample_rate_hz)

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
    return fit_sequence(plan, measure, elements, notes, on_step)


__all__ = ["Calibration", "ElementCalibration", "CalibrationState", "CalibratedAverages", "CalibrationFitError",
           "CalibrationPlan", "PhaseFit", "SequenceStep", "average_whole_cycles", "calibrate", "fit_phase_and_gain",
           "fit_sequence", "load_calibration"]
