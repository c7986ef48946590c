"""The plain-NumPy sample path, kept as the reference the compiled kernel
(:mod:`minimeter.meter._kernels`) is checked against (SPEC §4.2, issue 12): the
implementation of :func:`minimeter.meter.metrology.measure_chunk` before the kernel,
unchanged but for its name and its last step — sums to P, rms, energy and frequency —
which it shares with the kernel's path (:func:`cycles_from_sums`). About ten vectorised
passes over each chunk; slow, and obviously right.
"""

from __future__ import annotations

import numpy as np

from minimeter.meter.metrology import CycleBlock, LineCycleState, cycles_from_sums, reference_voltage


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


def measure_chunk_reference(
    volts: np.ndarray,
    amps: np.ndarray,
    state: LineCycleState,
    *,
    hysteresis_v: float = 10.0,
    tracking_min_hz: float = 40.0,
    final: bool = False,
    reference: np.ndarray | None = None,
) -> tuple[CycleBlock, LineCycleState]:
    """The old :func:`minimeter.meter.metrology.measure_chunk` (same parameters and
    returns, without ``peaks``): crossings by :func:`find_crossings`, bounds by
    :func:`_cycle_bounds`, sums by ``numpy.add.reduceat`` in :func:`_measure_cycles`."""
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
    return cycles_from_sums(fs, e, bounds, bound_pos, sums)     # P, rms, energy, f: one place


def _last_column(tail: np.ndarray, count: int) -> np.ndarray:
    """The tail's last sample per channel, broadcast to ``count`` columns (zeros if empty)."""
    if tail.shape[1] == 0:
        return np.zeros((tail.shape[0], count))
    return np.repeat(tail[:, -1:], count, axis=1)


def channel_peaks_reference(x: np.ndarray) -> np.ndarray:
    """(e,) max |x| per channel: the scans the meter made for clipping (0 for no samples)."""
    return np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0])
