"""The front end (SPEC S9.1): what stands between the wires and the samples.

A :class:`FrontEnd` is a pure transform of frames, ``apply(volts, amps, fs, state) ->
(volts, amps, state)``, streaming like the meter (the state carries the filter history,
the current level and the noise generator's position). In order it models:

1. the current transformer: ratio error and phase displacement as functions of the
   primary current (:class:`CtErrors`, tables interpolated in log-current);
2. the voltage divider's gain error;
3. the time skew between the V and I samples of a multiplexed ADC (I converted
   ``skew_s`` after V);
4. DC offset and white noise at the ADC input;
5. the ADC: resolution, full scale, clipping.

Phase displacement and skew are applied as a fractional-sample delay of the current
relative to the voltage (:func:`lagrange_taps`: a Lagrange FIR, maximally flat at DC, so
at the line frequency it neither shrinks the amplitude (error < 1e-10 at 60 Hz and
2 kHz) nor bends the phase). Both channels then carry a bulk delay of
``HALF_TAPS`` samples: :meth:`FrontEnd.group_delay_s` reports it, and the bench shifts its
reference by it.

A stream goes through a front end (or a calibration, the same kind of hook) with
:func:`through`; :class:`FrontEndSource` is a synthetic source as the meter sees it
behind a front end, which :func:`minimeter.drive.feed_source` feeds like any source.

The current level the CT tables are read at follows the current within half a cycle:
the rms over the last half period of the line (:func:`sliding_mean`, causal; a half
period of a sine's square averages to its rms² exactly), so a CT's error follows a
load that steps or fires in bursts at once. ``line_frequency_hz`` is the signal's
frequency (:meth:`FrontEnd.at_frequency`): the CT's phase displacement moves with it by
its ``phase_law`` (a fixed angle, a fixed time lead, or ∝ 1/f), and the skew is a time.

Presets (:data:`PRESETS`):

* ``ideal`` — no error at all (S4.7).
* ``typical`` — a split-core CT and a 12-bit multiplexed SAR ADC, the front end of
  sound-card and microcontroller energy monitors. CT (200 A rating): ratio error −1.0 %
  at 200 A, −1.5 % at 40 A, −2.0 % at 10 A, −3.0 % at 2 A; phase lead 1.0°, 1.5°, 2.0°,
  3.0° at the same currents — at the edge of the class-1 limits of IEC 61869-2 Table 202
  (±1 % / ±60′ at 100–120 % of rating, ±1.5 % / ±90′ at 20 %, ±3 % / ±180′ at 5 %), the
  class split-core CTs are sold in, and like OpenEnergyMonitor's measurements of the
  YHDC SCT-013-000 (a phase lead of a few degrees growing at low current, "CT and AC
  adapter phase error", learn.openenergymonitor.org); the lead is the magnetising
  reactance's, so it is given at 60 Hz and grows as 1/f (``inductive``). Units of the type
  differ by up to ±0.08 % and ±0.03° (a convention of this project: a production spread
  a type calibration can hold class 0.2S against). ADC: 12 bits over ±1.5·138·√2 V and
  ±2·220·√2 A (the meter's full scales), offset 3 LSB and noise 0.5 LSB rms (STM32F1
  ADC datasheet figures: offset error ±1.5–2.5 LSB, total unadjusted error ±2–5 LSB), V
  and I converted one after the other, 50 µs apart (a 12-bit SAR at ~1 µs a conversion
  behind a multiplexer stepping through the other channels, as in EmonLibCM's
  sequential sampling; ~1.1° at 60 Hz).
* ``metering`` — a metering-class CT and a 24-bit simultaneous-sampling ADC (e.g.
  ADS131M04-class delta-sigma, one converter per channel, so no skew). CT: IEEE C57.13
  class 0.3 — ratio error −0.3 % and 15′ at rated current, twice that at 10 %, the
  displacement a fixed angle (``angle``), units within ±0.03 % and ±0.01° of the type
  (STANDARDS.md, "Where the error comes from"); offset 20 LSB and noise 2 LSB rms of 24
  bits (datasheet-order figures for delta-sigma metering ADCs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from minimeter.meter.snapshot import snapshot_state_type

from minimeter.errors import MinimeterError

HALF_TAPS = 4                  # Lagrange fractional delay of order 2·HALF_TAPS; bulk delay HALF_TAPS samples
LEVEL_BLOCK_S = 0.2            # block over which the current level is measured [s]
DELAY_QUANTUM_SAMPLES = 1e-4   # fractional delays are rounded to this (constant runs → one FIR per run)
FULL_SCALE_V = 1.5 * 138.0 * math.sqrt(2)        # [V peak], the meter's default input range
FULL_SCALE_A = 2.0 * 220.0 * math.sqrt(2)        # [A peak, primary] for a 200 A CT


class InvalidFrontEnd(MinimeterError, ValueError):
    """A front-end or calibration description that cannot be used."""


# --------------------------------------------------------------------------- fractional delay
def lagrange_taps(delay_samples: float, order: int = 2 * HALF_TAPS) -> np.ndarray:
    """FIR taps ``h[0…order]`` delaying a signal by ``delay_samples`` (Lagrange
    interpolation: exact for polynomials up to ``order``, maximally flat at DC).

    ``y[n] = Σ h[k] x[n−k]``. Best with the delay near ``order / 2``.
    """
    k = np.arange(order + 1)
    h = np.ones(order + 1)
    for m in range(order + 1):
        mask = k != m
        h[mask] *= (delay_samples - m) / (k[mask] - m)
    return h


@snapshot_state_type
@dataclass(frozen=True)
class DelayState:
    """History for :func:`delay_chunk`: the last ``2·HALF_TAPS`` input samples per row."""

    history: np.ndarray       # (rows, 2·HALF_TAPS)

    @staticmethod
    def start(rows: int) -> "DelayState":
        return DelayState(np.zeros((rows, 2 * HALF_TAPS)))


def lagrange_taps_many(delay_samples: np.ndarray, order: int = 2 * HALF_TAPS) -> np.ndarray:
    """:func:`lagrange_taps` for many delays at once: (n, order + 1)."""
    d = np.asarray(delay_samples, float)[:, None]
    k = np.arange(order + 1)
    h = np.ones((d.shape[0], order + 1))
    for m in range(order + 1):
        mask = k != m
        h[:, mask] *= (d - m) / (k[mask] - m)
    return h


def delay_chunk(x: np.ndarray, fractional: np.ndarray, state: DelayState) -> tuple[np.ndarray, DelayState]:
    """Delay each row of ``x`` (rows, n) by ``HALF_TAPS + fractional[row, j]`` samples,
    where ``fractional`` (rows, n) may change from sample to sample (each output sample
    uses its own Lagrange taps). Returns the delayed chunk and the new history."""
    rows, n = x.shape
    order = 2 * HALF_TAPS
    ext = np.concatenate((state.history, x), axis=1)
    out = np.empty_like(x)
    for r in range(rows):
        d = fractional[r]
        if not np.any(d):
            out[r] = ext[r, order - HALF_TAPS: n + order - HALF_TAPS]
            continue
        h = lagrange_taps_many(HALF_TAPS + d, order)
        acc = np.zeros(n)
        for k in range(order + 1):
            acc += h[:, k] * ext[r, order - k: n + order - k]
        out[r] = acc
    return out, DelayState(ext[:, -order:].copy() if n else state.history)


# --------------------------------------------------------------------------- current level
@snapshot_state_type
@dataclass(frozen=True)
class SlidingState:
    """History for :func:`sliding_mean`: the last samples of each stage's input."""

    history: tuple[np.ndarray, ...]      # per stage, (rows, ⌈width⌉ + 1)

    @staticmethod
    def start(rows: int, widths_samples: Sequence[float]) -> "SlidingState":
        return SlidingState(tuple(np.zeros((rows, int(math.ceil(w)) + 1)) for w in widths_samples))


def _boxcar(x: np.ndarray, width: float, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Causal mean over the last ``width`` samples (fractional: the oldest sample
    weighted by the fraction), with ``history`` the samples before ``x``."""
    h = history.shape[1]
    ext = np.concatenate((history, x), axis=1)
    m = int(math.floor(width))
    frac = width - m
    c = np.concatenate((np.zeros((x.shape[0], 1)), np.cumsum(ext, axis=1)), axis=1)
    j = np.arange(x.shape[1]) + h            # index of each new sample in ext
    total = c[:, j + 1] - c[:, j + 1 - m] + frac * ext[:, j - m]
    return total / width, ext[:, -h:]


def sliding_mean(x: np.ndarray, widths_samples: Sequence[float], state: SlidingState) -> tuple[np.ndarray, SlidingState]:
    """``x`` (rows, n) through a cascade of causal boxcar means of ``widths_samples``
    (each ≥ 1, fractional allowed); the state carries each stage's history, so any
    chunking gives the same result. A boxcar of half a line period nulls the 2f ripple
    of a sine's square: the mean of ``i²`` over it is the rms² of that half cycle."""
    if x.shape[1] == 0:
        return x, state
    stages = []
    y = x
    for width, history in zip(widths_samples, state.history):
        y, kept = _boxcar(y, width, history)
        stages.append(kept)
    return y, SlidingState(tuple(stages))


def half_cycle_widths(sample_rate_hz: float, frequencies_hz: Sequence[float]) -> tuple[float, ...]:
    """Boxcar widths [samples] of half a period at each of ``frequencies_hz``."""
    return tuple(max(sample_rate_hz / (2.0 * f), 1.0) for f in frequencies_hz)


def interp_log(level: np.ndarray, table_a: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation in log10(current), clamped to the table's ends; NaN level →
    the lowest current's value."""
    lv = np.where(np.isfinite(level) & (level > 0), level, table_a[0])
    return np.interp(np.log10(lv), np.log10(table_a), values)


# --------------------------------------------------------------------------- the model
def check_current_table(what: str, current_a: Sequence[float], *columns: Sequence[float]) -> None:
    """A table against current [A rms] (CT errors, calibration corrections): columns of
    the table's length, currents positive and increasing; else :class:`InvalidFrontEnd`."""
    n = len(current_a)
    if n == 0 or any(len(column) != n for column in columns):
        raise InvalidFrontEnd(f"{what} tables need equal, non-zero lengths")
    if any(a <= 0 for a in current_a) or list(current_a) != sorted(current_a):
        raise InvalidFrontEnd(f"{what} table currents must be positive and increasing")


PHASE_LAWS = ("angle", "delay", "inductive")


@dataclass(frozen=True)
class CtErrors:
    """A CT's errors against primary current [A rms]: ratio error [%] (measured/true − 1)
    and phase displacement [degrees, positive = secondary leads, IEEE C57.13 sign].

    ``phase_law`` says how the displacement moves with the line frequency ``f``: the
    table's degrees are at ``reference_hz``; ``angle`` keeps them at every frequency (a
    CT's own displacement, as its data sheet states it), ``delay`` scales them with
    ``f / reference_hz`` (a fixed time lead, like a skew), ``inductive`` with
    ``reference_hz / f`` (a lead set by the magnetising reactance, ∝ 1/f).

    A CT *type* has a production spread: :meth:`unit` is one unit of the type, its own
    errors within ``±unit_ratio_spread_percent`` and ``±unit_phase_spread_deg`` of the
    type's tables (a fixed offset and a slope in log-current, drawn from the unit's
    number)."""

    current_a: tuple[float, ...]
    ratio_error_percent: tuple[float, ...]
    phase_displacement_deg: tuple[float, ...]
    phase_law: str = "angle"
    reference_hz: float = 60.0
    unit_ratio_spread_percent: float = 0.0
    unit_phase_spread_deg: float = 0.0

    def __post_init__(self) -> None:
        check_current_table("CT error", self.current_a, self.ratio_error_percent, self.phase_displacement_deg)
        if self.phase_law not in PHASE_LAWS:
            raise InvalidFrontEnd(f"CT phase law {self.phase_law!r} unknown — valid: {', '.join(PHASE_LAWS)}")

    def at(self, amps_rms: np.ndarray, frequency_hz: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(gain = 1 + ratio error, phase displacement [deg] at ``frequency_hz``, default
        ``reference_hz``) at ``amps_rms`` [A]."""
        a = np.asarray(self.current_a, float)
        ratio = interp_log(amps_rms, a, np.asarray(self.ratio_error_percent, float))
        phase = interp_log(amps_rms, a, np.asarray(self.phase_displacement_deg, float))
        f = self.reference_hz if frequency_hz is None else frequency_hz
        scale = {"angle": 1.0, "delay": f / self.reference_hz, "inductive": self.reference_hz / f}[self.phase_law]
        return 1.0 + ratio / 100.0, phase * scale

    def unit(self, number: int) -> "CtErrors":
        """Unit ``number`` of this CT type: the type's tables moved within its spread."""
        rng = np.random.default_rng([2026, 16, int(number)])
        u = rng.uniform(-1.0, 1.0, 4)
        x = np.log10(np.asarray(self.current_a, float))
        pos = 2.0 * (x - x[0]) / (x[-1] - x[0]) - 1.0 if x[-1] > x[0] else np.zeros_like(x)

        def moved(values: Sequence[float], spread: float, u0: float, u1: float) -> tuple[float, ...]:
            return tuple(float(v) for v in np.asarray(values, float) + spread * (0.6 * u0 + 0.4 * u1 * pos))

        return replace(self, ratio_error_percent=moved(self.ratio_error_percent, self.unit_ratio_spread_percent,
                                                       u[0], u[1]),
                       phase_displacement_deg=moved(self.phase_displacement_deg, self.unit_phase_spread_deg, u[2], u[3]))


@snapshot_state_type
@dataclass(frozen=True)
class FrontEndState:
    level: SlidingState
    delay: DelayState
    volts_history: DelayState
    chunk_index: int = 0


@dataclass(frozen=True)
class FrontEnd:
    """A front-end model (see the module's docstring). Currents in primary amperes."""

    name: str = "ideal"
    ct: CtErrors | None = None
    voltage_gain_error_percent: float = 0.0
    skew_s: float = 0.0                  # I sampled this long after V [s]
    offset_v: float = 0.0                # [V] at the ADC input, referred to the terminals
    offset_a: float = 0.0                # [A primary]
    noise_v_rms: float = 0.0             # [V rms]
    noise_a_rms: float = 0.0             # [A rms]
    adc_bits: int | None = None          # None: no quantisation
    full_scale_v: float = FULL_SCALE_V   # [V peak]
    full_scale_a: float = FULL_SCALE_A   # [A peak]
    line_frequency_hz: float = 60.0      # the signal's line frequency: the CT's phase law, its level's window [Hz]
    seed: int = 1
    description: str = ""

    def at_frequency(self, frequency_hz: float) -> "FrontEnd":
        """This front end on a line of ``frequency_hz`` (the physics a bench point sets)."""
        return replace(self, line_frequency_hz=float(frequency_hz))

    def with_ct_unit(self, number: int) -> "FrontEnd":
        """This front end with unit ``number`` of its CT type (:meth:`CtErrors.unit`)."""
        if self.ct is None:
            return self
        return replace(self, ct=self.ct.unit(number), name=f"{self.name} CT #{number}")

    @property
    def is_ideal(self) -> bool:
        return (self.ct is None and self.voltage_gain_error_percent == 0 and self.skew_s == 0 and self.offset_v == 0
                and self.offset_a == 0 and self.noise_v_rms == 0 and self.noise_a_rms == 0 and self.adc_bits is None)

    @property
    def _delays(self) -> bool:
        return self.ct is not None or self.skew_s != 0

    def group_delay_s(self, sample_rate_hz: float) -> float:
        """The bulk delay both channels carry [s]."""
        return HALF_TAPS / sample_rate_hz if self._delays else 0.0

    def lsb_v(self) -> float:
        return 2 * self.full_scale_v / 2 ** self.adc_bits if self.adc_bits else 0.0

    def lsb_a(self) -> float:
        return 2 * self.full_scale_a / 2 ** self.adc_bits if self.adc_bits else 0.0

    def initial_state(self, elements: int, sample_rate_hz: float) -> FrontEndState:
        return FrontEndState(SlidingState.start(elements, half_cycle_widths(sample_rate_hz, [self.line_frequency_hz])),
                             DelayState.start(elements), DelayState.start(elements))

    def apply(self, volts: np.ndarray, amps: np.ndarray, sample_rate_hz: float,
              state: FrontEndState) -> tuple[np.ndarray, np.ndarray, FrontEndState]:
        """Terminal voltage [V] and primary current [A], (e, n) → what the ADC reports."""
        if self.is_ideal:
            return volts, amps, replace(state, chunk_index=state.chunk_index + 1)
        fs = float(sample_rate_hz)
        e, n = volts.shape
        level_state, delay_state, vhist = state.level, state.delay, state.volts_history
        v = volts * (1.0 + self.voltage_gain_error_percent / 100.0)
        a = amps
        if self._delays:
            mean_square, level_state = sliding_mean(amps * amps, half_cycle_widths(fs, [self.line_frequency_hz]),
                                                    state.level)
            if self.ct is not None:
                gain, phase_deg = self.ct.at(np.sqrt(np.maximum(mean_square, 0.0)), self.line_frequency_hz)
                a = amps * gain
                lead_s = phase_deg / (360.0 * self.line_frequency_hz)
            else:
                lead_s = np.zeros((e, n))
            delay = -(lead_s + self.skew_s) * fs
            delay = np.round(delay / DELAY_QUANTUM_SAMPLES) * DELAY_QUANTUM_SAMPLES
            a, delay_state = delay_chunk(a, delay, state.delay)
            v, vhist = delay_chunk(v, np.zeros((e, n)), state.volts_history)
        if self.noise_v_rms or self.noise_a_rms:
            rng = np.random.default_rng([self.seed, state.chunk_index])
            if self.noise_v_rms:
                v = v + rng.normal(0.0, self.noise_v_rms, v.shape)
            if self.noise_a_rms:
                a = a + rng.normal(0.0, self.noise_a_rms, a.shape)
        if self.offset_v:
            v = v + self.offset_v
        if self.offset_a:
            a = a + self.offset_a
        if self.adc_bits:
            v = _quantise(v, self.full_scale_v, self.adc_bits)
            a = _quantise(a, self.full_scale_a, self.adc_bits)
        return v, a, FrontEndState(level_state, delay_state, vhist, state.chunk_index + 1)


# --------------------------------------------------------------------------- streams through a hook
SampleChunk = tuple[np.ndarray, np.ndarray]      # (volts (e, n) [V], amps (e, n) [A])


class SampleHook(Protocol):
    """A pure transform of sampled chunks carried by a state: a :class:`FrontEnd`, or a
    calibration (:class:`minimeter.lab.calibration.Calibration`)."""

    def initial_state(self, elements: int, sample_rate_hz: float) -> Any: ...

    def apply(self, volts: np.ndarray, amps: np.ndarray, sample_rate_hz: float,
              state: Any) -> tuple[np.ndarray, np.ndarray, Any]: ...


def through(hook: SampleHook, chunks: Iterable[SampleChunk], elements: int,
            sample_rate_hz: float) -> Iterator[SampleChunk]:
    """``chunks`` of ``elements`` rows passed through ``hook``, its state carried from
    one chunk to the next (so the result does not depend on the chunking)."""
    state = hook.initial_state(elements, sample_rate_hz)
    for volts, amps in chunks:
        volts, amps, state = hook.apply(volts, amps, sample_rate_hz, state)
        yield volts, amps


@dataclass(frozen=True)
class FrontEndSource:
    """A synthetic source (:class:`~minimeter.sources.service.SyntheticSource`) as the
    meter sees it through ``front_end``: its frames are the ADC's output, its analytic
    energy the source's own (the truth a bench compares against)."""

    source: Any
    front_end: "FrontEnd"

    @property
    def elements(self) -> int:
        return self.source.elements

    def frames(self, duration_s: float, sample_rate_hz: float, chunk_frames: int = 65536) -> Iterator[Any]:
        """The source's frames (:meth:`SyntheticSource.frames`) through the front end."""
        state = self.front_end.initial_state(self.elements, sample_rate_hz)
        for frames in self.source.frames(duration_s, sample_rate_hz, chunk_frames):
            volts, amps, state = self.front_end.apply(frames.volts, frames.amps, sample_rate_hz, state)
            yield replace(frames, volts=volts, amps=amps)

    def energy_wh(self, t1_s: float, t2_s: float) -> np.ndarray:
        """The source's exact energy per element over [t1, t2] [Wh]."""
        return self.source.energy_wh(t1_s, t2_s)


def _quantise(x: np.ndarray, full_scale: float, bits: int) -> np.ndarray:
    """Round to the ADC's codes; clip at full scale [same unit as x]."""
    lsb = 2.0 * full_scale / 2 ** bits
    codes = np.clip(np.round(x / lsb), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return codes * lsb


def _typical() -> FrontEnd:
    bits = 12
    lsb_v, lsb_a = 2 * FULL_SCALE_V / 2 ** bits, 2 * FULL_SCALE_A / 2 ** bits
    return FrontEnd(
        name="typical",
        ct=CtErrors(current_a=(2.0, 10.0, 40.0, 200.0, 240.0),
                    ratio_error_percent=(-3.0, -2.0, -1.5, -1.0, -1.0),
                    phase_displacement_deg=(3.0, 2.0, 1.5, 1.0, 1.0), phase_law="inductive",
                    unit_ratio_spread_percent=0.08, unit_phase_spread_deg=0.03),
        voltage_gain_error_percent=0.8,
        skew_s=50e-6,
        offset_v=3 * lsb_v, offset_a=3 * lsb_a,
        noise_v_rms=0.5 * lsb_v, noise_a_rms=0.5 * lsb_a,
        adc_bits=bits,
        description="split-core CT (class 1) + 12-bit multiplexed SAR ADC, V→I skew 50 µs",
    )


def _metering() -> FrontEnd:
    bits = 24
    lsb_v, lsb_a = 2 * FULL_SCALE_V / 2 ** bits, 2 * FULL_SCALE_A / 2 ** bits
    return FrontEnd(
        name="metering",
        ct=CtErrors(current_a=(2.0, 20.0, 200.0, 240.0),
                    ratio_error_percent=(-0.6, -0.6, -0.3, -0.3),
                    phase_displacement_deg=(0.5, 0.5, 0.25, 0.25), phase_law="angle",
                    unit_ratio_spread_percent=0.03, unit_phase_spread_deg=0.01),
        voltage_gain_error_percent=0.1,
        offset_v=20 * lsb_v, offset_a=20 * lsb_a,
        noise_v_rms=2 * lsb_v, noise_a_rms=2 * lsb_a,
        adc_bits=bits,
        description="metering-class CT (IEEE C57.13 class 0.3) + 24-bit simultaneous-sampling ADC",
    )


PRESETS: dict[str, FrontEnd] = {"ideal": FrontEnd(description="no front-end error"), "typical": _typical(),
                                "metering": _metering()}


def preset(name: str) -> FrontEnd:
    """A front-end preset by name: ideal, typical or metering."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidFrontEnd(f"front end {name!r} unknown — presets: {', '.join(PRESETS)}") from None
