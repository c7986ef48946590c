"""Line-cycle metrology (SPEC §4): pure functions on arrays, no I/O.

The stream is cut into line cycles at the positive-going zero crossings of a reference
voltage (L1–N for one element, L1–L2 for two: it crosses zero whatever leg is dead or
swapped). A crossing counts only after the reference has been below ``-hysteresis_v``
since the previous one (a Schmitt trigger), so noise near zero does not split a cycle.
Where no crossing comes within ``1 / tracking_min_hz`` (a dead or DC voltage), the cycle
is cut there, so the cycles always tile the stream without gap or overlap (S4.2).

Per cycle and element the sums Σv·i, Σv², Σi² over the cycle's samples give
P = Σv·i / N [W], Vrms, Irms and the cycle's energy Σv·i / fs [J]. Every sample belongs
to exactly one cycle, so the energy of the whole stream is the rectangle-rule integral
of v·i, whatever the sample rate and line frequency (S4.7).

Streaming: :func:`measure_chunk` takes and returns a :class:`LineCycleState` holding the
raw samples of the cycle still open at the chunk's end; they are joined to the next
chunk, so any split of a stream into chunks gives bit-identical cycles.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np

from minimeter.errors import InvalidSamples
from minimeter.meter import _kernels
from minimeter.meter.snapshot import snapshot_state_type

SECONDS_PER_HOUR = _kernels.SECONDS_PER_HOUR     # [s/h]


@dataclass(frozen=True)
class CycleBlock:
    """Per-line-cycle measurements of consecutive cycles.

    ``m`` cycles, ``e`` elements. Times are seconds since the meter started.
    """

    start_s: np.ndarray          # (m,) cycle start [s]
    duration_s: np.ndarray       # (m,) cycle length [s]
    frequency_hz: np.ndarray     # (m,) line frequency [Hz]; NaN where the cycle is partial
    partial: np.ndarray          # (m,) bool: not bounded by a zero crossing at both ends
    power_w: np.ndarray          # (e, m) active power per element [W]
    energy_wh: np.ndarray        # (e, m) energy per element [Wh]
    volts_rms: np.ndarray        # (e, m) [V]
    amps_rms: np.ndarray         # (e, m) [A]

    @property
    def count(self) -> int:
        """Number of cycles."""
        return int(self.start_s.shape[0])

    @property
    def elements(self) -> int:
        return int(self.power_w.shape[0])

    @property
    def end_s(self) -> np.ndarray:
        """(m,) cycle end [s]."""
        return self.start_s + self.duration_s

    @property
    def net_power_w(self) -> np.ndarray:
        """(m,) algebraic sum of the elements' active powers [W] (S4.3)."""
        return self.power_w.sum(axis=0)

    @property
    def net_energy_wh(self) -> np.ndarray:
        """(m,) algebraic sum of the elements' energies [Wh]."""
        return self.energy_wh.sum(axis=0)

    @property
    def power_factor(self) -> np.ndarray:
        """(e, m) P / (Vrms · Irms); NaN where either is zero."""
        apparent = self.volts_rms * self.amps_rms
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(apparent > 0, self.power_w / np.where(apparent > 0, apparent, 1.0), np.nan)

    def slice(self, start: int, stop: int) -> "CycleBlock":
        """Cycles ``start:stop`` as a new block."""
        s = np.s_[start:stop]
        return CycleBlock(
            self.start_s[s], self.duration_s[s], self.frequency_hz[s], self.partial[s],
            self.power_w[:, s], self.energy_wh[:, s], self.volts_rms[:, s], self.amps_rms[:, s],
        )

    @staticmethod
    def empty(elements: int) -> "CycleBlock":
        z = np.zeros(0)
        ze = np.zeros((elements, 0))
        return CycleBlock(z, z, z, np.zeros(0, bool), ze, ze, ze, ze)


@dataclass(frozen=True)
class CycleRuns:
    """Runs of identical consecutive line cycles (the phasor path by segment): run ``k``
    is ``repeats[k]`` cycles each equal to cycle ``k`` of ``cycles`` (its first cycle:
    start, one cycle's duration and quantities).

    As a block of rows it reads like a :class:`CycleBlock` whose rows are whole runs:
    ``count`` is the number of cycles, ``start_s``/``end_s``/``duration_s`` and
    ``energy_wh`` are the runs', the per-cycle quantities (power, rms, frequency) the
    run's cycle's.
    """

    cycles: CycleBlock
    repeats: np.ndarray          # (r,) int64 ≥ 1: cycles in each run

    @property
    def count(self) -> int:
        """Number of cycles (over all runs)."""
        return int(self.repeats.sum())

    @property
    def runs(self) -> int:
        return int(self.repeats.shape[0])

    @property
    def elements(self) -> int:
        return self.cycles.elements

    @property
    def duration_s(self) -> np.ndarray:
        """(r,) each run's length [s]."""
        return self.cycles.duration_s * self.repeats

    @property
    def end_s(self) -> np.ndarray:
        return self.cycles.start_s + self.duration_s

    @property
    def energy_wh(self) -> np.ndarray:
        """(e, r) each run's energy per element [Wh]."""
        return self.cycles.energy_wh * self.repeats


for _name in ("start_s", "frequency_hz", "partial", "power_w", "volts_rms", "amps_rms", "net_power_w", "power_factor"):
    setattr(CycleRuns, _name, property(lambda runs, name=_name: getattr(runs.cycles, name),
                                       doc=f"The run's cycle's {_name} (see :class:`CycleBlock`)."))


@snapshot_state_type
@dataclass(frozen=True)
class LineCycleState:
    """What one chunk hands to the next: the open cycle's raw samples and the trigger."""

    elements: int
    sample_rate_hz: float
    next_index: int = 0                     # absolute index of the next sample to arrive
    tail_start: int = 0                     # absolute index where the open cycle starts
    tail_start_crossing: float = np.nan     # its interpolated crossing position [samples]; NaN if none
    tail_start_share: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (3e,) see measure_chunk
    tail_volts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    tail_amps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    last_reference: float = np.nan          # the reference voltage's last sample [V]
    armed: bool = False                     # the reference went below -hysteresis since the last crossing
    last_low: bool = False                  # the last sample was below -hysteresis

    @staticmethod
    def start(elements: int, sample_rate_hz: float) -> "LineCycleState":
        """The state of a stream before its first sample."""
        return LineCycleState(
            elements=elements,
            sample_rate_hz=float(sample_rate_hz),
            tail_volts=np.zeros((elements, 0)),
            tail_amps=np.zeros((elements, 0)),
            tail_start_share=np.zeros(3 * elements),
        )


def reference_voltage(volts: np.ndarray) -> np.ndarray:
    """The voltage line cycles are cut on [V]: L1–L2 for two elements (a dual-element
    Mini Meter), L1–N otherwise (one element, or a recording of three or more phases).

    L1–L2 crosses zero on a split-phase or network service whichever leg is dead,
    swapped or missing its neutral. The meter and metrology-only analysis both cut on
    this, so a recording measured either way gives the same cycles.
    """
    if volts.shape[0] == 2:
        return volts[0] - volts[1]
    return volts[0]


@dataclass(frozen=True)
class ChannelPeaks:
    """The largest |sample| of each input over one chunk: what clipping is judged on
    against full scale (S8.2). NaN for an input with a NaN sample; 0 for an empty chunk."""

    volts: np.ndarray            # (e,) max |v| per voltage input [V]
    amps: np.ndarray             # (e,) max |i| per current input [A]


def measure_chunk(
    volts: np.ndarray,
    amps: np.ndarray,
    state: LineCycleState,
    *,
    hysteresis_v: float = 10.0,
    tracking_min_hz: float = 40.0,
    final: bool = False,
    reference: np.ndarray | None = None,
    peaks: bool = False,
) -> tuple[CycleBlock, LineCycleState] | tuple[CycleBlock, LineCycleState, ChannelPeaks]:
    """Measure the line cycles completed by one chunk of samples, in one compiled pass
    (:func:`minimeter.meter._kernels.cycle_pass`). (Long for its documentation.)

    A crossing is a sample ``k`` with ``r[k-1] < 0 <= r[k]`` of the reference ``r``
    (``k = 0`` uses the previous chunk's last sample), counted only if ``r`` has entered
    ``r < -hysteresis_v`` since the previous crossing; its interpolated position is
    ``k - 1 + r[k-1] / (r[k-1] - r[k])`` [samples]. A gap of ``ceil(fs / tracking_min_hz)``
    samples without one is cut there (dead or DC voltage).

    Sample ``k`` stands for the interval ``[k, k+1)`` (in samples). A cycle runs from one
    interpolated zero crossing ``x_a`` to the next ``x_b``; the sample that straddles a
    crossing is shared between the two cycles in proportion (its *share*), so each
    cycle integrates exactly one period and the 2ω ripple of v·i cancels in every cycle,
    while the cycles still tile the stream: what one cycle gets, its neighbour gives up.

    Parameters
    ----------
    volts, amps : (e, n) float arrays, terminal voltage [V] and primary current [A]
    state : the stream's state before this chunk (:meth:`LineCycleState.start` for a new one)
    hysteresis_v : Schmitt-trigger depth below zero that arms the next crossing [V]
    tracking_min_hz : lowest frequency tracked; longer gaps are cut (dead voltage) [Hz]
    final : the stream ends with this chunk: the open cycle is measured as a partial one
    reference : (n,) voltage to cut cycles on [V]; None: :func:`reference_voltage` of
        ``volts``, formed inside the pass (pass the same choice with every chunk of a stream)
    peaks : also return the chunk's :class:`ChannelPeaks` (found in the same pass)

    Returns
    -------
    (block, state) : the cycles completed, and the state to pass with the next chunk;
    (block, state, peaks) with ``peaks=True``
    """
    fs = state.sample_rate_hz
    volts = np.ascontiguousarray(volts, dtype=np.float64)
    amps = np.ascontiguousarray(amps, dtype=np.float64)
    e, n = volts.shape
    if amps.shape != volts.shape:
        raise InvalidSamples(f"volts has shape {volts.shape} but amps has {amps.shape}; they must match")
    max_cycle = max(math.ceil(fs / tracking_min_hz), 2)
    if reference is None:
        mode, reference = (_kernels.REFERENCE_L1_L2 if e == 2 else _kernels.REFERENCE_L1), _NO_REFERENCE
    else:
        mode, reference = _kernels.REFERENCE_GIVEN, np.ascontiguousarray(reference, dtype=np.float64)
        if reference.shape != (n,):
            raise InvalidSamples(f"reference must have shape ({n},) like the chunk; got {reference.shape}")
    tail_v = np.ascontiguousarray(state.tail_volts, dtype=np.float64)
    tail_a = np.ascontiguousarray(state.tail_amps, dtype=np.float64)
    (table, partial, tail_from, tail_crossing, share, peak, last_reference, armed, last_low) = _kernels.cycle_pass(
        volts, amps, reference, mode, tail_v, tail_a, state.next_index, state.tail_start,
        float(state.tail_start_crossing), np.ascontiguousarray(state.tail_start_share, dtype=np.float64),
        float(state.last_reference), bool(state.armed), bool(state.last_low), float(hysteresis_v), max_cycle,
        bool(final), float(fs), *_work_arrays(e, n, max_cycle),
    )
    block = made(CycleBlock, start_s=table[0], duration_s=table[1], frequency_hz=table[2], partial=partial,
                  power_w=table[3:3 + e], energy_wh=table[3 + e:3 + 2 * e], volts_rms=table[3 + 2 * e:3 + 3 * e],
                  amps_rms=table[3 + 3 * e:])

    # The open cycle: from the last bound to the end of the chunk.
    base = state.next_index
    if tail_from >= base:
        tail_v = volts[:, tail_from - base:].copy()
        tail_a = amps[:, tail_from - base:].copy()
    else:
        tail_v = np.concatenate((tail_v, volts), axis=1)
        tail_a = np.concatenate((tail_a, amps), axis=1)
    new_state = made(
        LineCycleState,
        elements=e,
        sample_rate_hz=fs,
        next_index=base + n,
        tail_start=tail_from,
        tail_start_crossing=float(tail_crossing),
        tail_start_share=share,
        tail_volts=tail_v,
        tail_amps=tail_a,
        last_reference=float(last_reference),
        armed=bool(armed),
        last_low=bool(last_low),
    )
    if not peaks:
        return block, new_state
    return block, new_state, made(ChannelPeaks, volts=peak[:e], amps=peak[e:])


_NO_REFERENCE = np.zeros(0)


def made(cls: type, **fields):
    """An instance of the frozen dataclass ``cls`` (no ``__post_init__``, no slots) with
    every one of its ``fields`` given, made as its generated ``__init__`` would but in one
    dict update: that ``__init__`` sets each field through ``object.__setattr__``, ~0.1 µs
    a field — ~1.3 µs of :func:`measure_chunk`'s ~10 µs fixed cost a call (its block and
    state); the tests check every field is set."""
    made = object.__new__(cls)
    made.__dict__.update(fields)
    return made


_WORK = threading.local()      # each thread's work arrays for the kernel, by number of elements


def _work_arrays(elements: int, frames: int, max_cycle: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This thread's work arrays for :func:`~minimeter.meter._kernels.cycle_pass` (a chunk's
    bounds and raw sums), reused from chunk to chunk and made larger only when a chunk needs
    more room: no allocation per chunk proportional to it beyond the cycles handed back.
    They hold nothing between calls (the kernel is not reentrant within a thread); what
    stays allocated is the room of the largest chunk seen (~1.3 bytes a frame, 7B at 8 kHz)."""
    kept = _WORK.__dict__.setdefault("by_elements", {})
    kept[elements] = _kernels.work_arrays(elements, frames, max_cycle, kept.get(elements))
    return kept[elements]


def cycles_from_sums(fs: float, e: int, bounds: np.ndarray, bound_pos: np.ndarray, sums: np.ndarray) -> CycleBlock:
    """The cycles between consecutive ``bounds`` (absolute sample indices; ``bound_pos``
    their crossings, NaN for cuts) from their per-element sums Σv·i, Σv², Σi² (rows of
    ``sums``): a cycle runs from its start crossing (its bound, for a cut) to the next,
    ``width`` samples; P = Σv·i / width, energy Σv·i / fs [J] in Wh, rms √(Σx² / width),
    frequency fs / (distance between its two crossings), NaN for a partial cycle (one
    end a cut) — in one compiled loop (:func:`minimeter.meter._kernels.cycle_fields`)."""
    if bounds.size - 1 <= 0:
        return CycleBlock.empty(e)
    return CycleBlock(*_kernels.cycle_fields(float(fs), np.ascontiguousarray(bounds, dtype=np.int64),
                                             np.ascontiguousarray(bound_pos, dtype=np.float64),
                                             np.ascontiguousarray(sums, dtype=np.float64)))
