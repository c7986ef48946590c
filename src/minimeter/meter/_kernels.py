"""The sample path in one compiled pass per chunk (SPEC §4.2, §4.7; issue 12).

:func:`cycle_pass` takes a chunk in two phases. First the Schmitt trigger finds the
chunk's bounds — the positive-going zero crossings of the reference voltage (formed on
the fly) with their interpolated positions, and the forced cuts of dead voltage —
reading the reference's samples only: the stretches where the trigger cannot act are
searched a block of samples at a time (vectorised), and it steps sample by sample only
where it may. Then each cycle's sums Σv·i, Σv², Σi² of every element are formed over its
contiguous samples (vectorised), with the straddling sample's share moved to its cycle,
and each channel's peak |x| for clipping raised while the cycle's samples are in cache.

A cycle's sums are formed with several partial sums, in an order that depends only on
the cycle's length; crossing positions and shares are computed from absolute sample
indices; so every cycle is bit-identical whatever the chunking, and equal to the plain
vectorised path (kept in the tests as the reference) to rounding (1e-12 relative).
:mod:`minimeter.meter.metrology` documents the method; this module is only its loops.

Compiled by numba on first use and cached on disk (``cache=True``), so the compile is paid
once per installation, not per process.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAGNITUDE_BITS = 0x7FFFFFFFFFFFFFFF     # an IEEE double's bits less its sign
REFERENCE_GIVEN, REFERENCE_L1_L2, REFERENCE_L1 = 0, 1, 2     # where the reference voltage comes from
SECONDS_PER_HOUR = 3600.0


SKIP = 64       # samples the trigger searches at once for one where it may act


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _products_sum(v, a):  # pragma: no cover - compiled
    """(Σv·a, Σv², Σa²) over two equal runs ``v``, ``a``.

    ``reassoc`` lets the compiler keep several partial sums in vector registers; the order
    depends only on the run's length, so the same samples give the same bits wherever
    they sit in a chunk."""
    vi = vv = ii = 0.0
    for k in range(v.shape[0]):     # from 0: no negative-index wrap, so it vectorises
        x = v[k]
        y = a[k]
        vi += x * y
        vv += x * x
        ii += y * y
    return vi, vv, ii


@njit(cache=True, nogil=True)
def _segment_sums(volts, amps, lo, hi, out, column):  # pragma: no cover - compiled
    """Σv·i, Σv², Σi² of every element over samples [lo, hi) into ``out[:, column]``
    (rows: the e products v·i, then the e v², then the e i²)."""
    e = volts.shape[0]
    for j in range(e):
        vi, vv, ii = _products_sum(volts[j, lo:hi], amps[j, lo:hi])
        out[j, column] = vi
        out[e + j, column] = vv
        out[2 * e + j, column] = ii


@njit(cache=True, nogil=True)
def _peak_bits(bits, top):  # pragma: no cover - compiled
    """max(top, the largest magnitude's bit pattern in ``bits``)."""
    for k in range(bits.shape[0]):
        top = max(top, bits[k] & MAGNITUDE_BITS)
    return top


@njit(cache=True, nogil=True)
def _peaks(volt_bits, amp_bits, lo, hi, peaks):  # pragma: no cover - compiled
    """Raise ``peaks`` (2e bit patterns: volts then amps) to max |x| over samples [lo, hi).

    A peak is kept on the bit patterns: with the sign cleared, an IEEE double's bits order
    as its magnitude and a NaN's lie above every number, so the integer maximum (exact,
    vectorised) is the largest |x|, or a NaN if there is one. Called on each cycle's
    samples right after its sums, while they are in the first-level cache."""
    e = volt_bits.shape[0]
    for c in range(e):
        peaks[c] = _peak_bits(volt_bits[c, lo:hi], peaks[c])
        peaks[e + c] = _peak_bits(amp_bits[c, lo:hi], peaks[e + c])


@njit(cache=True, nogil=True)
def _close_cycle(volts, amps, volt_bits, amp_bits, tail_volts, tail_amps, base, cycle_start, stop, sums, column,
                 peaks):  # pragma: no cover - compiled
    """Raw sums of the cycle [cycle_start, base + stop) (absolute indices) into
    ``sums[:, column]``, and the chunk's ``peaks`` raised to its samples in this chunk; the
    first cycle of a chunk joins the carried tail (whose samples belong to the previous
    chunk's peaks)."""
    lo = max(cycle_start - base, 0)
    if cycle_start >= base:
        _segment_sums(volts, amps, lo, stop, sums, column)
    else:
        e, t = tail_volts.shape
        joined_v = np.empty((e, t + stop))
        joined_a = np.empty((e, t + stop))
        joined_v[:, :t] = tail_volts
        joined_a[:, :t] = tail_amps
        joined_v[:, t:] = volts[:, :stop]
        joined_a[:, t:] = amps[:, :stop]
        _segment_sums(joined_v, joined_a, np.int64(0), t + stop, sums, column)
    _peaks(volt_bits, amp_bits, lo, stop, peaks)


@njit(cache=True, nogil=True)
def _reference_at(subtract, first, second, k):  # pragma: no cover - compiled
    """The reference voltage at sample ``k``: ``first - second``, or ``first`` alone."""
    return first[k] - second[k] if subtract else first[k]


@njit(cache=True, nogil=True)
def _first_hit(subtract, first, second, k, stop, armed, hysteresis_v):  # pragma: no cover - compiled
    """The first sample in [k, stop) where the trigger may act — disarmed: a low one
    (``r < -hysteresis_v``); armed: one that is not negative (``not r < 0``, NaN included)
    — or ``stop`` if none. Blocks of SKIP samples are searched without early exit (the
    index of the first hit as a minimum), so the search vectorises."""
    while k + SKIP <= stop:
        f = first[k:k + SKIP]
        s = second[k:k + SKIP]
        hit = SKIP
        if armed:
            if subtract:
                for j in range(SKIP):
                    hit = min(hit, SKIP if f[j] - s[j] < 0.0 else j)
            else:
                for j in range(SKIP):
                    hit = min(hit, SKIP if f[j] < 0.0 else j)
        elif subtract:
            for j in range(SKIP):
                hit = min(hit, j if f[j] - s[j] < -hysteresis_v else SKIP)
        else:
            for j in range(SKIP):
                hit = min(hit, j if f[j] < -hysteresis_v else SKIP)
        if hit < SKIP:
            return k + hit
        k += SKIP
    while k < stop:
        r = _reference_at(subtract, first, second, k)
        if (not r < 0.0) if armed else r < -hysteresis_v:
            return k
        k += 1
    return stop


@njit(cache=True, nogil=True)
def _next_crossing(subtract, first, second, k, stop, hysteresis_v, previous, armed, last_low):  # pragma: no cover
    """The Schmitt trigger from sample ``k`` up to ``stop`` on the reference
    ``first - second`` (``first`` alone unless ``subtract``). Disarmed, it waits for an
    entry into ``r < -hysteresis_v`` (a low sample after one that was not); armed, for a
    candidate ``r[k-1] < 0 <= r[k]``, which is the crossing. Returns ``(found, fraction,
    k, previous, armed, last_low)``: the crossing's sample (-1 if none before ``stop``) and
    where in the sample before it the reference crosses zero, ``r[k-1] / (r[k-1] - r[k])``
    (in [0, 1]), where the scan stopped, and the trigger's state there.

    The samples where nothing can happen are passed over (:func:`_first_hit`: disarmed,
    those not low; armed after a negative sample, the negative ones), the state taken
    from the last of them; the trigger then steps the one sample where something may."""
    while k < stop:
        if armed:
            if previous < 0.0:
                hit = _first_hit(subtract, first, second, k, stop, True, hysteresis_v)
                if hit > k:
                    k = hit
                    previous = _reference_at(subtract, first, second, k - 1)
                    last_low = previous < -hysteresis_v
                if k == stop:
                    break
            r = _reference_at(subtract, first, second, k)
            if previous < 0.0 and not r < 0.0:
                return k, previous / (previous - r), k + 1, r, False, r < -hysteresis_v
            previous = r
            last_low = r < -hysteresis_v
            k += 1
        else:
            hit = _first_hit(subtract, first, second, k, stop, False, hysteresis_v)
            if hit > k:
                k = hit
                previous = _reference_at(subtract, first, second, k - 1)
                last_low = False
            if k == stop:
                break
            r = _reference_at(subtract, first, second, k)
            low = r < -hysteresis_v
            entry = low and not last_low
            candidate = previous < 0.0 and not r < 0.0
            last_low = low
            k += 1
            if entry and candidate:          # both at once: only with a negative hysteresis
                return k - 1, previous / (previous - r), k, r, False, low
            previous = r
            armed = entry
    return -1, np.nan, k, previous, armed, last_low


@njit(cache=True, nogil=True)
def _crossing_share(volts, amps, tail_volts, tail_amps, found, fraction, share):  # pragma: no cover - compiled
    """Into ``share`` (3e): the part ``[x, found)`` of the sample before a bound at chunk
    index ``found`` — v·i, v², i² of that sample times ``1 - fraction`` — which moves to
    the cycle the bound starts. Zero for a cut (``fraction`` NaN) or with no sample before."""
    e = volts.shape[0]
    for row in range(share.shape[0]):
        share[row] = 0.0
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
def _find_bounds(subtract, first, second, n, base, tail_start, hysteresis_v, max_cycle, previous, armed,
                 last_low):  # pragma: no cover - compiled
    """The bounds the chunk closes, by the trigger alone (the first phase of
    :func:`cycle_pass`): ``(founds, fractions, m, previous, armed, last_low)`` — the chunk
    indices of ``m`` bounds in ``founds[:m]`` with their crossings' fractions (NaN for a
    forced cut, ``max_cycle`` after the bound before), and the trigger state after the chunk."""
    cap = 4 + n // max(1, max_cycle // 4)
    founds = np.empty(cap, np.int64)
    fractions = np.empty(cap)
    m = 0
    cycle_start = tail_start
    k = np.int64(0)
    while True:
        cut = cycle_start + max_cycle - base
        found, fraction, k, previous, armed, last_low = _next_crossing(
            subtract, first, second, k, min(n, cut + 1), hysteresis_v, previous, armed, last_low)
        if found < 0 and k == cut + 1:
            found = cut
        elif found < 0:
            break
        if m == founds.shape[0]:
            founds = np.concatenate((founds, np.empty(m, np.int64)))
            fractions = np.concatenate((fractions, np.empty(m)))
        founds[m] = found
        fractions[m] = fraction
        m += 1
        cycle_start = base + found
    return founds, fractions, m, previous, armed, last_low


@njit(cache=True, nogil=True)
def cycle_pass(volts, amps, reference, reference_mode, tail_volts, tail_amps, base, tail_start,
               tail_crossing, tail_share, last_reference, armed, last_low, hysteresis_v, max_cycle,
               final):  # pragma: no cover - compiled
    """One chunk through the sample path (the method: :func:`minimeter.meter.metrology.measure_chunk`),
    in two phases: the trigger finds the chunk's bounds (reading the reference's samples
    only, in a tight loop), then each cycle is summed over its contiguous samples
    (vectorised) and the chunk's peaks raised to them while they are in cache. (Long: the
    carried state of the open cycle comes in and goes out in one compiled call.)

    Returns ``(count, bounds, positions, sums, share, peaks, last_reference, armed,
    last_low)``: ``count`` cycles closed between ``bounds[:count + 1]`` (absolute
    sample indices; ``positions`` their interpolated crossings, NaN for cuts), ``sums``
    (3e, count) with the crossings' shares applied, the last bound's ``share`` (3e,),
    the chunk's ``peaks`` (2e,) max |x| (volts then amps; NaN where a NaN was seen), and
    the trigger state after the chunk.
    """
    e, n = volts.shape
    rows = 3 * e
    subtract = reference_mode == REFERENCE_L1_L2
    first = reference if reference_mode == REFERENCE_GIVEN else volts[0]
    second = volts[1] if subtract else first
    founds, fractions, m, previous, armed, last_low = _find_bounds(
        subtract, first, second, n, base, tail_start, hysteresis_v, max_cycle, last_reference, armed, last_low)
    bounds = np.empty(m + 2, np.int64)
    positions = np.empty(m + 2)
    sums = np.empty((rows, m + 1))
    share = tail_share.copy()
    next_share = np.zeros(rows)
    peaks = np.zeros(2 * e, np.int64)
    volt_bits = volts.view(np.int64)
    amp_bits = amps.view(np.int64)
    bounds[0] = tail_start
    positions[0] = tail_crossing
    cycle_start = tail_start
    count = np.int64(0)     # np.int64: a literal 0 would compile the callees twice
    for count in range(m):
        found = founds[count]
        fraction = fractions[count]
        if cycle_start >= base:
            _segment_sums(volts, amps, cycle_start - base, found, sums, count)
            _peaks(volt_bits, amp_bits, cycle_start - base, found, peaks)
        else:
            _close_cycle(volts, amps, volt_bits, amp_bits, tail_volts, tail_amps, base, cycle_start, found, sums,
                         count, peaks)
        _crossing_share(volts, amps, tail_volts, tail_amps, found, fraction, next_share)
        # the crossing's absolute position (from absolute indices: the same whatever the chunking)
        crossing = (base + found - 1) + fraction
        for row in range(rows):
            sums[row, count] += share[row] - next_share[row]
            share[row] = next_share[row]
        bounds[count + 1] = base + found
        positions[count + 1] = crossing
        cycle_start = base + found
    count = np.int64(m)
    _peaks(volt_bits, amp_bits, max(cycle_start - base, 0), n, peaks)     # the open cycle's samples
    if final and cycle_start < base + n:
        _close_cycle(volts, amps, volt_bits, amp_bits, tail_volts, tail_amps, base, cycle_start, n, sums, count,
                     peaks)
        for row in range(rows):
            sums[row, count] += share[row]
        share[:] = 0.0
        count += 1
        bounds[count] = base + n
        positions[count] = np.nan
    return count, bounds, positions, sums, share, peaks.view(np.float64), previous, armed, last_low


@njit(cache=True, nogil=True, error_model="numpy")
def cycle_fields(fs, bounds, positions, sums):  # pragma: no cover - compiled
    """Per cycle between consecutive ``bounds`` (their crossings ``positions``, NaN for
    cuts) from the rows Σv·i, Σv², Σi² of ``sums`` (3e, m), in one loop — the formulas of
    :func:`minimeter.meter.metrology.cycles_from_sums`, each operation as NumPy's
    elementwise one (so the same bits): (start [s], duration [s], frequency [Hz], partial,
    power [W], energy [Wh], volts rms, amps rms)."""
    m = bounds.shape[0] - 1
    e = sums.shape[0] // 3
    start, duration, frequency = np.empty(m), np.empty(m), np.empty(m)
    partial = np.empty(m, np.bool_)
    power, energy, volts, amps = np.empty((e, m)), np.empty((e, m)), np.empty((e, m)), np.empty((e, m))
    for c in range(m):
        a, b = positions[c], positions[c + 1]
        at = float(bounds[c]) if np.isnan(a) else a            # where the cycle starts [samples]
        bt = float(bounds[c + 1]) if np.isnan(b) else b
        width = bt - at
        start[c] = at / fs
        duration[c] = width / fs
        frequency[c] = fs / (b - a)
        partial[c] = np.isnan(a) or np.isnan(b)
        for j in range(e):
            vi, vv, ii = sums[j, c], sums[e + j, c], sums[2 * e + j, c]
            power[j, c] = vi / width
            energy[j, c] = vi / fs / SECONDS_PER_HOUR
            volts[j, c] = np.sqrt((0.0 if vv < 0.0 else vv) / width)      # NaN stays NaN, as np.maximum
            amps[j, c] = np.sqrt((0.0 if ii < 0.0 else ii) / width)
    return start, duration, frequency, partial, power, energy, volts, amps


@njit(cache=True, nogil=True)
def starting_pieces(active, repeats, at_once, smoothed, alpha, detect, settled):  # pragma: no cover - compiled
    """The starting-current decision (S4.5) over rows of ``repeats`` identical cycles.

    Per element the active current is smoothed cycle by cycle, y += α (x − y), from
    ``smoothed`` (e,) (updated in place), and set to x once within ``settled`` of it [A]
    (so it settles in a few hundred cycles, not the ~5,600 an exponential decay to 0
    takes to underflow); a cycle carries the starting current if ``at_once`` (its row's)
    or some element's |y| ≥ ``detect``. Within a row y moves monotonically towards the
    row's x, so the decision changes at most twice per element; once y stops changing
    every later cycle of the row is decided alike, so the rest of the row is skipped —
    exactly what iterating every cycle would give. Returns the pieces of constant decision: (row, first cycle in
    the row, cycles, decision) arrays and their number."""
    e, r = active.shape
    cap = r * (2 * e + 2)
    rows = np.empty(cap, np.int64)
    offsets = np.empty(cap, np.int64)
    counts = np.empty(cap, np.int64)
    flags = np.empty(cap, np.bool_)
    p = 0
    for j in range(r):
        n = repeats[j]
        seg = 0
        cur = False
        k = 0
        while k < n:
            moved = False
            flag = at_once[j]
            for el in range(e):
                x = active[el, j]
                y = smoothed[el] + alpha * (x - smoothed[el])
                if abs(y - x) <= settled:
                    y = x
                if y != smoothed[el]:
                    moved = True
                smoothed[el] = y
                if abs(y) >= detect:
                    flag = True
            if k == 0:
                cur = flag
            elif flag != cur:
                rows[p] = j
                offsets[p] = seg
                counts[p] = k - seg
                flags[p] = cur
                p += 1
                cur = flag
                seg = k
            k += 1
            if not moved:
                break
        rows[p] = j
        offsets[p] = seg
        counts[p] = n - seg
        flags[p] = cur
        p += 1
    return rows, offsets, counts, flags, p


def warm() -> None:
    """Load (or compile, the first time) the kernels now: a once-per-process cost that a
    timed run should not carry (``minimeter simulate`` reports its wall time after it)."""
    starting_pieces(np.zeros((1, 1)), np.ones(1, np.int64), np.zeros(1, np.bool_), np.zeros(1), 0.125, 1.0, 1e-6)
    cycle_pass(np.zeros((1, 4)), np.zeros((1, 4)), np.zeros(0), REFERENCE_L1, np.zeros((1, 0)), np.zeros((1, 0)),
               0, 0, np.nan, np.zeros(3), np.nan, False, False, 10.0, 200, False)
    cycle_fields(8000.0, np.zeros(2, np.int64), np.zeros(2), np.zeros((3, 1)))
