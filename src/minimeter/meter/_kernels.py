"""The sample path in one compiled pass (SPEC §4.2, §4.7; issue 12).

:func:`cycle_pass` walks a chunk once: the reference voltage, the Schmitt-triggered
positive-going zero crossings with their interpolated positions, the forced cuts of dead
voltage, the per-cycle sums Σv·i, Σv², Σi² of every element with the straddling sample's
share moved to its cycle, and each channel's peak |x| for clipping. Each cycle is summed
while its samples are still in the first-level cache, so the data comes from memory once.

A cycle's sums are formed with several partial sums (vectorised), in an order that
depends only on the cycle's length; crossing positions and shares are computed from
absolute sample indices; so every cycle is bit-identical whatever the chunking, and equal
to the plain vectorised path this replaced (kept in the tests as the reference) to
rounding (1e-12 relative). :mod:`minimeter.meter.metrology` documents the method; this
module is only its loop.

Compiled by numba on first use and cached on disk (``cache=True``), so the compile is paid
once per installation, not per process.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAGNITUDE_BITS = 0x7FFFFFFFFFFFFFFF     # an IEEE double's bits less its sign
REFERENCE_GIVEN, REFERENCE_L1_L2, REFERENCE_L1 = 0, 1, 2     # where the reference voltage comes from


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _products_sum(v, a, v_bits, a_bits, v_top, a_top):  # pragma: no cover - compiled
    """(Σv·a, Σv², Σa², peak v, peak a) over two equal runs ``v``, ``a`` and the same runs'
    bit patterns (``*_bits``), the peaks starting from ``v_top``, ``a_top``.

    ``reassoc`` lets the compiler keep several partial sums in vector registers; the order
    depends only on the run's length, so the same samples give the same bits wherever
    they sit in a chunk. A peak is kept on the bit patterns: with the sign cleared, an IEEE
    double's bits order as its magnitude and a NaN's lie above every number, so the
    integer maximum (exact, vectorised) is the largest |x|, or a NaN if there is one."""
    vi = vv = ii = 0.0
    for k in range(v.shape[0]):
        x = v[k]
        y = a[k]
        vi += x * y
        vv += x * x
        ii += y * y
        v_top = max(v_top, v_bits[k] & MAGNITUDE_BITS)
        a_top = max(a_top, a_bits[k] & MAGNITUDE_BITS)
    return vi, vv, ii, v_top, a_top


@njit(cache=True, nogil=True)
def _segment_sums(volts, amps, volt_bits, amp_bits, lo, hi, out, column, peaks):  # pragma: no cover
    """Σv·i, Σv², Σi² of every element over samples [lo, hi) into ``out[:, column]``
    (rows: the e products v·i, then the e v², then the e i²); ``peaks`` (2e bit patterns:
    volts then amps) raised to the run's."""
    e = volts.shape[0]
    for j in range(e):
        vi, vv, ii, peaks[j], peaks[e + j] = _products_sum(
            volts[j, lo:hi], amps[j, lo:hi], volt_bits[j, lo:hi], amp_bits[j, lo:hi], peaks[j], peaks[e + j])
        out[j, column] = vi
        out[e + j, column] = vv
        out[2 * e + j, column] = ii


@njit(cache=True, nogil=True)
def _peaks(volt_bits, amp_bits, lo, hi, peaks):  # pragma: no cover - compiled
    """Raise ``peaks`` (2e bit patterns: volts then amps) to max |x| over samples [lo, hi)."""
    e = volt_bits.shape[0]
    for c in range(e):
        for k in range(lo, hi):
            peaks[c] = max(peaks[c], volt_bits[c, k] & MAGNITUDE_BITS)
            peaks[e + c] = max(peaks[e + c], amp_bits[c, k] & MAGNITUDE_BITS)


@njit(cache=True, nogil=True)
def _grow(bounds, positions, sums):  # pragma: no cover - compiled
    """The output arrays with twice the room, contents kept."""
    cap = bounds.shape[0]
    new_bounds = np.empty(2 * cap, np.int64)
    new_positions = np.empty(2 * cap)
    new_sums = np.empty((sums.shape[0], 2 * cap))
    new_bounds[:cap] = bounds
    new_positions[:cap] = positions
    new_sums[:, :cap] = sums
    return new_bounds, new_positions, new_sums


@njit(cache=True, nogil=True)
def _close_cycle(volts, amps, volt_bits, amp_bits, tail_volts, tail_amps, base, cycle_start, stop, sums, column,
                 peaks):  # pragma: no cover - compiled
    """Raw sums of the cycle [cycle_start, base + stop) (absolute indices) into
    ``sums[:, column]``, and the chunk's ``peaks`` raised to its samples; the first cycle of
    a chunk joins the carried tail (whose samples belong to the previous chunk's peaks)."""
    if cycle_start >= base:
        _segment_sums(volts, amps, volt_bits, amp_bits, cycle_start - base, stop, sums, column, peaks)
        return
    e, t = tail_volts.shape
    joined_v = np.empty((e, t + stop))
    joined_a = np.empty((e, t + stop))
    joined_v[:, :t] = tail_volts
    joined_a[:, :t] = tail_amps
    joined_v[:, t:] = volts[:, :stop]
    joined_a[:, t:] = amps[:, :stop]
    _segment_sums(joined_v, joined_a, joined_v.view(np.int64), joined_a.view(np.int64), np.int64(0), t + stop, sums, column,
                  np.zeros(2 * e, np.int64))
    _peaks(volt_bits, amp_bits, np.int64(0), stop, peaks)


@njit(cache=True, nogil=True)
def _next_crossing(subtract, first, second, k, stop, hysteresis_v, previous, armed, last_low):  # pragma: no cover
    """The Schmitt trigger from sample ``k`` up to ``stop`` on the reference
    ``first - second`` (``first`` alone unless ``subtract``). Disarmed, it waits for an
    entry into ``r < -hysteresis_v`` (a low sample after one that was not); armed, for a
    candidate ``r[k-1] < 0 <= r[k]``, which is the crossing. Returns ``(found, fraction,
    k, previous, armed, last_low)``: the crossing's sample (-1 if none before ``stop``) and
    where in the sample before it the reference crosses zero, ``r[k-1] / (r[k-1] - r[k])``
    (in [0, 1]), where the scan stopped, and the trigger's state there."""
    while k < stop:
        if not armed:
            while k < stop:
                r = first[k] - second[k] if subtract else first[k]
                low = r < -hysteresis_v
                entry = low and not last_low
                candidate = previous < 0.0 and not r < 0.0
                last_low = low
                k += 1
                if entry and candidate:          # both at once: only with a negative hysteresis
                    return k - 1, previous / (previous - r), k, r, False, low
                previous = r
                if entry:
                    armed = True
                    break
        else:
            start = k
            while k < stop:
                r = first[k] - second[k] if subtract else first[k]
                if previous < 0.0 and not r < 0.0:
                    return k, previous / (previous - r), k + 1, r, False, r < -hysteresis_v
                previous = r
                k += 1
            if k > start:
                last_low = previous < -hysteresis_v
    return -1, np.nan, k, previous, armed, last_low


@njit(cache=True, nogil=True)
def _crossing_share(volts, amps, tail_volts, tail_amps, found, fraction, share):  # pragma: no cover - compiled
    """Into ``share`` (3e): the part ``[x, found)`` of the sample before a bound at chunk
    index ``found`` — v·i, v², i² of that sample times ``1 - fraction`` — which moves to
    the cycle the bound starts. Zero for a cut (``fraction`` NaN) or with no sample before."""
    e = volts.shape[0]
    share[:] = 0.0
    if np.isnan(fraction):
        return
    part = 1.0 - fraction
    for j in range(e):
        if found > 0:
            v, a = volts[j, found - 1], amps[j, found - 1]
        elif tail_volts.shape[1] > 0:
            v, a = tail_volts[j, -1], tail_amps[j, -1]
        else:
            continue
        share[j] = v * a * part
        share[e + j] = v * v * part
        share[2 * e + j] = a * a * part


@njit(cache=True, nogil=True)
def cycle_pass(volts, amps, reference, reference_mode, tail_volts, tail_amps, base, tail_start,
               tail_crossing, tail_share, last_reference, armed, last_low, hysteresis_v, max_cycle,
               final):  # pragma: no cover - compiled
    """One chunk through the sample path (the method: :func:`minimeter.meter.metrology.measure_chunk`).
    (One loop on purpose: the trigger, the per-cycle sums and the peaks share the walk
    over the samples while they are in cache; split, it would read the chunk again.)

    Returns ``(count, bounds, positions, sums, share, peaks, last_reference, armed,
    last_low)``: ``count`` cycles closed between ``bounds[:count + 1]`` (absolute
    sample indices; ``positions`` their interpolated crossings, NaN for cuts), ``sums``
    (3e, count) with the crossings' shares applied, the last bound's ``share`` (3e,),
    the chunk's ``peaks`` (2e,) max |x| (volts then amps; NaN where a NaN was seen), and
    the trigger state after the chunk.
    """
    e, n = volts.shape
    rows = 3 * e
    cap = 4 + n // max(1, max_cycle // 4)
    bounds = np.empty(cap, np.int64)
    positions = np.empty(cap)
    sums = np.empty((rows, cap))
    share = tail_share.copy()
    next_share = np.zeros(rows)
    peaks = np.zeros(2 * e, np.int64)
    volt_bits = volts.view(np.int64)
    amp_bits = amps.view(np.int64)
    bounds[0] = tail_start
    positions[0] = tail_crossing
    count = np.int64(0)     # np.int64: a literal 0 would compile the callees twice
    cycle_start = tail_start
    previous = last_reference
    subtract = reference_mode == REFERENCE_L1_L2
    first = reference if reference_mode == REFERENCE_GIVEN else volts[0]
    second = volts[1] if subtract else first
    k = np.int64(0)
    while True:
        # Scan to the next bound: a crossing, or the forced cut max_cycle after the last bound.
        cut = cycle_start + max_cycle - base
        found, fraction, k, previous, armed, last_low = _next_crossing(
            subtract, first, second, k, min(n, cut + 1), hysteresis_v, previous, armed, last_low)
        if found < 0 and k == cut + 1:
            found = cut
        elif found < 0:
            break
        # A bound at chunk index `found`: close the cycle before it.
        if count + 2 > bounds.shape[0]:
            bounds, positions, sums = _grow(bounds, positions, sums)
        _close_cycle(volts, amps, volt_bits, amp_bits, tail_volts, tail_amps, base, cycle_start, found, sums, count,
                     peaks)
        _crossing_share(volts, amps, tail_volts, tail_amps, found, fraction, next_share)
        # the crossing's absolute position (from absolute indices: the same whatever the chunking)
        crossing = (base + found - 1) + fraction
        for row in range(rows):
            sums[row, count] += share[row] - next_share[row]
        share[:] = next_share
        count += 1
        bounds[count] = base + found
        positions[count] = crossing
        cycle_start = base + found
    _peaks(volt_bits, amp_bits, max(cycle_start - base, 0), n, peaks)     # the open cycle's samples
    if final and cycle_start < base + n:
        if count + 2 > bounds.shape[0]:
            bounds, positions, sums = _grow(bounds, positions, sums)
        _close_cycle(volts, amps, volt_bits, amp_bits, tail_volts, tail_amps, base, cycle_start, n, sums, count,
                     peaks)
        for row in range(rows):
            sums[row, count] += share[row]
        share[:] = 0.0
        count += 1
        bounds[count] = base + n
        positions[count] = np.nan
    return count, bounds, positions, sums, share, peaks.view(np.float64), previous, armed, last_low
