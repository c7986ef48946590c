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

from dataclasses import dataclass, field

import numpy as np

from minimeter.meter.snapshot import snapshot_state_type

SECONDS_PER_HOUR = 3600.0


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


def find_crossings(
    reference: np.ndarray,
    hysteresis_v: float,
    last_reference: float = np.nan,
    armed: bool = False,
    last_low: bool = False,
) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """Positive-going zero crossings of ``reference`` with hysteresis.

    A candidate is a sample ``k`` with ``v[k-1] < 0 <= v[k]`` (``k = 0`` uses
    ``last_reference``). It is a crossing if, since the previous crossing, the signal
    has entered the region ``v < -hysteresis_v``.

    Returns
    -------
    starts : int array, first sample of each new cycle (index into ``reference``)
    positions : float array, interpolated crossing positions [samples], ``k - 1 + v[k-1]/(v[k-1]-v[k])``
    armed, last_low : the trigger state after the last sample
    """
    n = reference.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0), armed, last_low
    negative = reference < 0.0
    candidates = np.flatnonzero(negative[:-1] & ~negative[1:]) + 1
    if last_reference < 0.0 and not negative[0]:
        candidates = np.concatenate(([0], candidates))
    low = reference < -hysteresis_v
    entries = np.flatnonzero(low[1:] & ~low[:-1]) + 1
    if low[0] and not last_low:
        entries = np.concatenate(([0], entries))
    new_last_low = bool(low[-1])
    if candidates.size == 0:
        return candidates.astype(np.int64), np.zeros(0), bool(armed or entries.size > 0), new_last_low

    # Merge the two kinds of event in time; a candidate is a crossing when the event
    # just before it is an entry into the low region (or, for the first, when armed).
    events = np.concatenate((entries, candidates))
    is_candidate = np.concatenate((np.zeros(entries.size, bool), np.ones(candidates.size, bool)))
    order = np.argsort(events, kind="stable")
    kinds = is_candidate[order]
    previous_is_entry = np.concatenate(([not armed], kinds[:-1])) == False  # noqa: E712
    valid = kinds & previous_is_entry
    starts = events[order][valid].astype(np.int64)
    new_armed = not bool(kinds[-1]) if kinds.size else armed

    before = np.where(starts > 0, reference[np.maximum(starts - 1, 0)], last_reference)
    after = reference[starts]
    positions = (starts - 1) + before / (before - after)
    return starts, positions, new_armed, new_last_low


def _forced_cuts(bounds: np.ndarray, max_cycle: int) -> np.ndarray:
    """Cut positions inserted into gaps longer than ``max_cycle`` samples, at multiples
    of ``max_cycle`` after each gap's start and strictly before its end."""
    gaps = np.diff(bounds)
    counts = np.maximum((gaps - 1) // max_cycle, 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    which = np.repeat(np.arange(gaps.size), counts)
    first_of = np.repeat(np.cumsum(counts) - counts, counts)
    step = np.arange(total) - first_of + 1
    return bounds[which] + step * max_cycle


def _segment_sums(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Σ over each segment ``[starts[j], starts[j+1])`` (the last to the end) of each
    row, one contiguous row at a time so a segment's sum does not depend on what
    surrounds it."""
    out = np.empty((rows.shape[0], starts.size))
    for r in range(rows.shape[0]):
        out[r] = np.add.reduceat(rows[r], starts)
    return out


def _products(volts: np.ndarray, amps: np.ndarray) -> np.ndarray:
    """Stack of v·i, v², i² per element: shape (3·e, n)."""
    e, n = volts.shape
    prods = np.empty((3 * e, n))
    np.multiply(volts, amps, out=prods[:e])
    np.multiply(volts, volts, out=prods[e:2 * e])
    np.multiply(amps, amps, out=prods[2 * e:])
    return prods


def measure_chunk(
    volts: np.ndarray,
    amps: np.ndarray,
    state: LineCycleState,
    *,
    hysteresis_v: float = 10.0,
    tracking_min_hz: float = 40.0,
    final: bool = False,
    reference: np.ndarray | None = None,
) -> tuple[CycleBlock, LineCycleState]:
    """Measure the line cycles completed by one chunk of samples. (Long for its
    documentation; the work is in :func:`find_crossings`, :func:`_cycle_bounds` and
    :func:`_measure_cycles`.)

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
        ``volts`` (pass the same choice with every chunk of a stream)

    Returns
    -------
    (block, state) : the cycles completed, and the state to pass with the next chunk
    """
    fs = state.sample_rate_hz
    e, n = volts.shape
    max_cycle = max(int(np.ceil(fs / tracking_min_hz)), 2)
    if reference is None:
        reference = reference_voltage(volts)
    starts, positions, armed, last_low = find_crossings(
        reference, hysteresis_v, state.last_reference, state.armed, state.last_low
    )
    # The share of each crossing: the part [x, s) of the sample before it, s − 1.
    if starts.size:
        prev_v = np.where(starts > 0, volts[:, np.maximum(starts - 1, 0)], _last_column(state.tail_volts, starts.size))
        prev_a = np.where(starts > 0, amps[:, np.maximum(starts - 1, 0)], _last_column(state.tail_amps, starts.size))
        shares = _products(prev_v, prev_a) * (starts - positions)
    else:
        shares = np.zeros((3 * e, 0))
    bounds, bound_pos, bound_share = _cycle_bounds(state, starts, positions, shares, n, max_cycle, final)
    block = _measure_cycles(volts, amps, state, bounds, bound_pos, bound_share)

    # The open cycle: from the last bound to the end of the chunk.
    base = state.next_index
    tail_from = int(bounds[-1])
    if tail_from >= base:
        tail_v = volts[:, tail_from - base:].copy()
        tail_a = amps[:, tail_from - base:].copy()
    else:
        tail_v = np.concatenate((state.tail_volts, volts), axis=1)
        tail_a = np.concatenate((state.tail_amps, amps), axis=1)
    new_state = LineCycleState(
        elements=e,
        sample_rate_hz=fs,
        next_index=base + n,
        tail_start=tail_from,
        tail_start_crossing=float(bound_pos[-1]),
        tail_start_share=bound_share[:, -1].copy(),
        tail_volts=tail_v,
        tail_amps=tail_a,
        last_reference=float(reference[-1]) if n else state.last_reference,
        armed=armed,
        last_low=last_low,
    )
    return block, new_state


def _cycle_bounds(state: LineCycleState, starts: np.ndarray, positions: np.ndarray, shares: np.ndarray,
                  n: int, max_cycle: int, final: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cycle boundary from the open cycle's start to the chunk's end, as absolute
    sample indices: the crossings (with their interpolated positions and shares), forced
    cuts in gaps longer than ``max_cycle`` samples (NaN position, no share), and the
    stream's end when ``final``."""
    base = state.next_index
    rows = shares.shape[0]
    real = np.concatenate(([state.tail_start], base + starts))
    real_pos = np.concatenate(([state.tail_start_crossing], base + positions))
    real_share = np.concatenate((state.tail_start_share[:, None], shares), axis=1)
    forced = _forced_cuts(real, max_cycle)
    last = int(real[-1])  # forced cuts lie strictly inside the gaps between crossings
    tail_cut_count = max((base + n - 1 - last) // max_cycle, 0)
    tail_forced = last + max_cycle * np.arange(1, tail_cut_count + 1, dtype=np.int64)
    forced = np.concatenate((forced, tail_forced))

    bounds = np.concatenate((real, forced))
    bound_pos = np.concatenate((real_pos, np.full(forced.size, np.nan)))
    bound_share = np.concatenate((real_share, np.zeros((rows, forced.size))), axis=1)
    order = np.argsort(bounds, kind="stable")
    bounds, bound_pos, bound_share = bounds[order], bound_pos[order], bound_share[:, order]
    end = base + n
    if final and bounds[-1] < end:
        bounds = np.concatenate((bounds, [end]))
        bound_pos = np.concatenate((bound_pos, [np.nan]))
        bound_share = np.concatenate((bound_share, np.zeros((rows, 1))), axis=1)
    return bounds, bound_pos, bound_share


def _measure_cycles(volts: np.ndarray, amps: np.ndarray, state: LineCycleState, bounds: np.ndarray,
                    bound_pos: np.ndarray, bound_share: np.ndarray) -> CycleBlock:
    """The cycles between consecutive ``bounds``: per element Σv·i, Σv², Σi² with each
    crossing's share moved to the cycle it belongs to, turned into P, rms, energy, f."""
    fs = state.sample_rate_hz
    e = volts.shape[0]
    base = state.next_index
    m = bounds.size - 1
    if m <= 0:
        return CycleBlock.empty(e)
    sums = np.empty((3 * e, m))
    first_end = int(bounds[1])
    # First cycle: the carried tail joined to the head of this chunk (small).
    head_v = np.concatenate((state.tail_volts, volts[:, : first_end - base]), axis=1)
    head_a = np.concatenate((state.tail_amps, amps[:, : first_end - base]), axis=1)
    sums[:, :1] = _segment_sums(_products(head_v, head_a), np.zeros(1, np.int64))
    if m > 1:
        lo, hi = first_end - base, int(bounds[-1]) - base
        rel = (bounds[1:-1] - base - lo).astype(np.int64)
        sums[:, 1:] = _segment_sums(_products(volts[:, lo:hi], amps[:, lo:hi]), rel)
    sums += bound_share[:, :-1] - bound_share[:, 1:]
    edge = np.where(np.isnan(bound_pos), bounds, bound_pos)     # where each cycle starts [samples]
    width = np.diff(edge)                                       # its length [samples]
    vi, vv, ii = sums[:e], sums[e:2 * e], sums[2 * e:]
    a_pos, b_pos = bound_pos[:-1], bound_pos[1:]
    with np.errstate(invalid="ignore"):
        frequency = fs / (b_pos - a_pos)
    return CycleBlock(
        start_s=edge[:-1] / fs,
        duration_s=width / fs,
        frequency_hz=frequency,
        partial=np.isnan(a_pos) | np.isnan(b_pos),
        power_w=vi / width,
        energy_wh=vi / fs / SECONDS_PER_HOUR,
        volts_rms=np.sqrt(np.maximum(vv, 0.0) / width),
        amps_rms=np.sqrt(np.maximum(ii, 0.0) / width),
    )


def _last_column(tail: np.ndarray, count: int) -> np.ndarray:
    """The tail's last sample per channel, broadcast to ``count`` columns (zeros if empty)."""
    if tail.shape[1] == 0:
        return np.zeros((tail.shape[0], count))
    return np.repeat(tail[:, -1:], count, axis=1)
