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

The current level the CT tables are read at is the rms of the previous block of
``LEVEL_BLOCK_S`` (blocks aligned to the stream's sample index, so any chunking gives
the same result); the first block is read at the table's lowest current.

Presets (:data:`PRESETS`):

* ``ideal`` — no error at all (S4.7).
* ``typical`` — a split-core CT and a 12-bit multiplexed SAR ADC, the front end of
  sound-card and microcontroller energy monitors. CT (200 A rating): ratio error −1.0 %
  at 200 A, −1.5 % at 40 A, −2.0 % at 10 A, −3.0 % at 2 A; phase lead 1.0°, 1.5°, 2.0°,
  3.0° at the same currents — at the edge of the class-1 limits of IEC 61869-2 Table 202
  (±1 % / ±60′ at 100–120 % of rating, ±1.5 % / ±90′ at 20 %, ±3 % / ±180′ at 5 %), the
  class split-core CTs are sold in, and like OpenEnergyMonitor's measurements of the
  YHDC SCT-013-000 (a phase lead of a few degrees growing at low current, "CT and AC
  adapter phase error", learn.openenergymonitor.org). ADC: 12 bits over ±1.5·138·√2 V and
  ±2·220·√2 A (the meter's full scales), offset 3 LSB and noise 0.5 LSB rms (STM32F1
  ADC datasheet figures: offset error ±1.5–2.5 LSB, total unadjusted error ±2–5 LSB), V
  and I converted one after the other, 50 µs apart (a 12-bit SAR at ~1 µs a conversion
  behind a multiplexer stepping through the other channels, as in EmonLibCM's
  sequential sampling; ~1.1° at 60 Hz).
* ``metering`` — a metering-class CT and a 24-bit simultaneous-sampling ADC (e.g.
  ADS131M04-class delta-sigma, one converter per channel, so no skew). CT: IEEE C57.13
  class 0.3 — ratio error −0.3 % and 15′ at rated current, twice that at 10 %
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


def delay_chunk(x: np.ndarray, fractional: np.ndarray, state: DelayState) -> tuple[np.ndarray, DelayState]:
    """Delay each row of ``x`` (rows, n) by ``HALF_TAPS + fractional[row, j]`` samples,
    where ``fractional`` (rows, n) may change from sample to sample (it is applied in
    runs of equal value). Returns the delayed chunk and the new history."""
    rows, n = x.shape
    order = 2 * HALF_TAPS
    ext = np.concatenate((state.history, x), axis=1)
    out = np.empty_like(x)
    for r in range(rows):
        d = fractional[r]
        cuts = np.flatnonzero(d[1:] != d[:-1]) + 1
        edges = np.concatenate(([0], cuts, [n]))
        for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist()):
            if d[lo] == 0.0:
                out[r, lo:hi] = ext[r, lo + order - HALF_TAPS: hi + order - HALF_TAPS]
                continue
            h = lagrange_taps(HALF_TAPS + float(d[lo]), order)
            acc = np.zeros(hi - lo)
            for k in range(order + 1):
                acc += h[k] * ext[r, lo + order - k: hi + order - k]
            out[r, lo:hi] = acc
    return out, DelayState(ext[:, -order:].copy() if n else state.history)


# --------------------------------------------------------------------------- current level
@snapshot_state_type
@dataclass(frozen=True)
class LevelState:
    """Block-rms tracker: blocks of ``block`` samples aligned to the stream index."""

    block: int
    next_index: int
    previous_rms: np.ndarray    # (rows,) rms of the last complete block; NaN before the first
    open_sumsq: np.ndarray      # (rows,) Σx² of the open block so far

    @staticmethod
    def start(rows: int, sample_rate_hz: float, block_s: float = LEVEL_BLOCK_S) -> "LevelState":
        return LevelState(max(int(round(block_s * sample_rate_hz)), 1), 0, np.full(rows, np.nan), np.zeros(rows))


def block_levels(x: np.ndarray, state: LevelState) -> tuple[np.ndarray, LevelState]:
    """Per sample, the rms of the previous complete block (NaN in the first block)
    [units of x]; and the new state."""
    rows, n = x.shape
    b = state.block
    base = state.next_index
    if n == 0:
        return np.zeros((rows, 0)), state
    first_cut = (-base) % b
    cuts = np.arange(first_cut if first_cut else b, n, b)
    starts = np.concatenate(([0], cuts))
    sums = np.add.reduceat(x * x, starts, axis=1)
    levels = np.empty((rows, starts.size))
    prev = state.previous_rms.copy()
    open_sum = state.open_sumsq.copy()
    for j in range(starts.size):
        levels[:, j] = prev
        open_sum = open_sum + sums[:, j]
        seg_end = starts[j + 1] if j + 1 < starts.size else n
        if (base + seg_end) % b == 0:
            prev = np.sqrt(open_sum / b)
            open_sum = np.zeros(rows)
    lengths = np.diff(np.concatenate((starts, [n])))
    per_sample = np.repeat(levels, lengths, axis=1)
    return per_sample, LevelState(b, base + n, prev, open_sum)


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


@dataclass(frozen=True)
class CtErrors:
    """A CT's errors against primary current [A rms]: ratio error [%] (measured/true − 1)
    and phase displacement [degrees, positive = secondary leads, IEEE C57.13 sign]."""

    current_a: tuple[float, ...]
    ratio_error_percent: tuple[float, ...]
    phase_displacement_deg: tuple[float, ...]

    def __post_init__(self) -> None:
        check_current_table("CT error", self.current_a, self.ratio_error_percent, self.phase_displacement_deg)

    def at(self, amps_rms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(gain = 1 + ratio error, phase displacement [deg]) at ``amps_rms`` [A]."""
        a = np.asarray(self.current_a, float)
        ratio = interp_log(amps_rms, a, np.asarray(self.ratio_error_percent, float))
        phase = interp_log(amps_rms, a, np.asarray(self.phase_displacement_deg, float))
        return 1.0 + ratio / 100.0, phase


@snapshot_state_type
@dataclass(frozen=True)
class FrontEndState:
    level: LevelState
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
    line_frequency_hz: float = 60.0      # converts the CT's phase displacement to a time [Hz]
    seed: int = 1
    description: str = ""

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
        return FrontEndState(LevelState.start(elements, sample_rate_hz), DelayState.start(elements),
                             DelayState.start(elements))

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
            levels, level_state = block_levels(amps, state.level)
            if self.ct is not None:
                gain, phase_deg = self.ct.at(levels)
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
                    phase_displacement_deg=(3.0, 2.0, 1.5, 1.0, 1.0)),
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
                    phase_displacement_deg=(0.5, 0.5, 0.25, 0.25)),
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
