"""The sample path in one compiled pass per chunk (SPEC §4.2, §4.7; issue 12).

:func:`cycle_pass` takes a chunk cycle by cycle, in one pass over its samples: the
Schmitt trigger finds the next bound — a positive-going zero crossing of the reference
voltage (formed on the fly) with its interpolated position, or a forced cut of dead
voltage — reading the reference's samples only: the stretches where the trigger cannot act
are searched a block of samples at a time (vectorised), and it steps sample by sample
only where it may. The cycle that bound closes is then summed at once, while its samples
are in the first-level cache — Σv·i, Σv², Σi² of every element and each channel's peak
|x| for clipping, in one vectorised loop over its contiguous samples — and the
straddling sample's share moved to its cycle; so each sample comes from memory once.
P, rms, energy and frequency follow for all the chunk's cycles in a last loop.

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
from numba import njit, types
from numba.extending import intrinsic

from minimeter.meter import _judge

MAGNITUDE_BITS = 0x7FFFFFFFFFFFFFFF     # an IEEE double's bits less its sign
REFERENCE_GIVEN, REFERENCE_L1_L2, REFERENCE_L1 = 0, 1, 2     # where the reference voltage comes from
SECONDS_PER_HOUR = 3600.0


SKIP = np.uint64(32)      # samples the trigger searches at once for one where it may act


# What runs once per line cycle (~130 samples at 8 kHz) costs as much as the samples do, so:
# the per-cycle loop (:func:`_close_cycles`) never counts references to its arrays (each
# count is an atomic operation, a full memory barrier); helpers with array arguments are
# inlined into it in numba's IR (``inline="always"``) or take whole arrays and indices,
# never slices; indices into the chunk are unsigned where a loop must vectorise (no
# negative-index wrap).


@intrinsic
def _magnitude_bits(typingctx, x):  # pragma: no cover - compiled
    """The bits of the float64 ``x`` as an int64, its sign cleared: with the sign cleared
    an IEEE double's bits order as its magnitude and a NaN's lie above every number, so an
    integer maximum of them (exact, vectorised) is the largest |x|, or a NaN if there is one."""
    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], context.get_value_type(types.int64))
        return builder.and_(bits, context.get_constant(types.int64, MAGNITUDE_BITS))
    return types.int64(types.float64), codegen


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _run_sums(volts, amps, j, lo, hi):  # pragma: no cover - compiled
    """(Σv·i, Σv², Σi², max |v|, max |i| as bits) of element ``j`` over samples [lo, hi), in
    one loop.

    ``reassoc`` lets the compiler keep several partial sums in vector registers and
    ``contract`` fuse each product into its sum; the order depends only on the run's
    length, so the same samples give the same bits wherever they sit in a chunk. Indices
    are unsigned (no negative-index wrap, so it vectorises) and the arrays are whole (a
    slice would take a reference: an atomic operation, a memory barrier, per call)."""
    vi = vv = ii = 0.0
    top_v = top_a = np.int64(0)
    for k in range(np.uint64(lo), np.uint64(hi)):
        x = volts[j, k]
        y = amps[j, k]
        vi += x * y
        vv += x * x
        ii += y * y
        top_v = max(top_v, _magnitude_bits(x))
        top_a = max(top_a, _magnitude_bits(y))
    return vi, vv, ii, top_v, top_a


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _pair_sums(volts, amps, lo, hi):  # pragma: no cover - compiled
    """:func:`_run_sums` of both elements of a two-element meter at once: one loop, one
    set of partial sums to gather (a line cycle is only ~100–300 samples long, so
    gathering them is a good part of the cost)."""
    vi0 = vv0 = ii0 = vi1 = vv1 = ii1 = 0.0
    top_v0 = top_a0 = top_v1 = top_a1 = np.int64(0)
    for k in range(np.uint64(lo), np.uint64(hi)):
        x0 = volts[0, k]
        y0 = amps[0, k]
        x1 = volts[1, k]
        y1 = amps[1, k]
        vi0 += x0 * y0
        vv0 += x0 * x0
        ii0 += y0 * y0
        vi1 += x1 * y1
        vv1 += x1 * x1
        ii1 += y1 * y1
        top_v0 = max(top_v0, _magnitude_bits(x0))
        top_a0 = max(top_a0, _magnitude_bits(y0))
        top_v1 = max(top_v1, _magnitude_bits(x1))
        top_a1 = max(top_a1, _magnitude_bits(y1))
    return vi0, vv0, ii0, top_v0, top_a0, vi1, vv1, ii1, top_v1, top_a1


@njit(cache=True, nogil=True, inline="always")
def _segment_sums(volts, amps, lo, hi, out, column, peaks):  # pragma: no cover - compiled
    """Σv·i, Σv², Σi² of every element over samples [lo, hi) into ``out[:, column]``
    (rows: the e products v·i, then the e v², then the e i²), and ``peaks`` (2e bit
    patterns: volts then amps) raised to their max |x| there."""
    e = volts.shape[0]
    if e == 2:
        vi0, vv0, ii0, top_v0, top_a0, vi1, vv1, ii1, top_v1, top_a1 = _pair_sums(volts, amps, lo, hi)
        out[0, column], out[1, column], out[2, column] = vi0, vi1, vv0
        out[3, column], out[4, column], out[5, column] = vv1, ii0, ii1
        peaks[0], peaks[1] = max(peaks[0], top_v0), max(peaks[1], top_v1)
        peaks[2], peaks[3] = max(peaks[2], top_a0), max(peaks[3], top_a1)
        return
    for j in range(e):
        vi, vv, ii, top_v, top_a = _run_sums(volts, amps, j, lo, hi)
        out[j, column] = vi
        out[e + j, column] = vv
        out[2 * e + j, column] = ii
        peaks[j] = max(peaks[j], top_v)
        peaks[e + j] = max(peaks[e + j], top_a)


@njit(cache=True, nogil=True)
def _peaks(volts, amps, lo, hi, peaks):  # pragma: no cover - compiled
    """Raise ``peaks`` (2e bit patterns: volts then amps) to max |x| over samples [lo, hi)
    (the open cycle's samples, which no sum has passed over yet)."""
    e = volts.shape[0]
    for j in range(e):
        top_v, top_a = peaks[j], peaks[e + j]
        for k in range(np.uint64(lo), np.uint64(hi)):
            top_v = max(top_v, _magnitude_bits(volts[j, k]))
            top_a = max(top_a, _magnitude_bits(amps[j, k]))
        peaks[j], peaks[e + j] = top_v, top_a


@njit(cache=True, nogil=True)
def _joined_sums(volts, amps, tail_volts, tail_amps, stop, sums, column,
                 peaks):  # pragma: no cover - compiled
    """The first cycle of a chunk, which began in an earlier one: its sums over the carried
    tail joined to the chunk's samples [0, stop) (one contiguous run, so the same bits as
    if it had not been split) into ``sums[:, column]``; ``peaks`` raised to the chunk's
    samples only (the tail's belong to the chunk before)."""
    e, t = tail_volts.shape
    joined_v = np.empty((e, t + stop))
    joined_a = np.empty((e, t + stop))
    joined_v[:, :t] = tail_volts
    joined_a[:, :t] = tail_amps
    joined_v[:, t:] = volts[:, :stop]
    joined_a[:, t:] = amps[:, :stop]
    _segment_sums(joined_v, joined_a, np.int64(0), t + stop, sums, column, np.zeros_like(peaks))
    _peaks(volts, amps, np.int64(0), stop, peaks)


@njit(cache=True, nogil=True, inline="always")
def _reference_at(subtract, first, second, k):  # pragma: no cover - compiled
    """The reference voltage at sample ``k``: ``first - second``, or ``first`` alone."""
    return first[k] - second[k] if subtract else first[k]


@njit(cache=True, nogil=True, inline="always")
def _first_hit(subtract, first, second, k, stop, armed, hysteresis_v):  # pragma: no cover - compiled
    """The first sample in [k, stop) where the trigger may act — disarmed: a low one
    (``r < -hysteresis_v``); armed: one that is not negative (``not r < 0``, NaN included)
    — or ``stop`` if none. Each block of SKIP samples is first asked whether it holds one
    at all, without early exit (an or over the block: vectorised, a compare a sample);
    the first block that does is then walked sample by sample."""
    at = np.uint64(k)
    end = np.uint64(stop)
    while at + SKIP <= end:
        hit = False
        if armed:
            if subtract:
                for j in range(SKIP):
                    hit |= not first[at + j] - second[at + j] < 0.0
            else:
                for j in range(SKIP):
                    hit |= not first[at + j] < 0.0
        elif subtract:
            for j in range(SKIP):
                hit |= first[at + j] - second[at + j] < -hysteresis_v
        else:
            for j in range(SKIP):
                hit |= first[at + j] < -hysteresis_v
        if hit:
            break
        at += SKIP
    k = np.int64(at)
    while k < stop:
        r = _reference_at(subtract, first, second, k)
        if (not r < 0.0) if armed else r < -hysteresis_v:
            return k
        k += 1
    return stop


@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True, inline="always")
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
def _grown(bounds, positions, sums):  # pragma: no cover - compiled
    """The work arrays of :func:`cycle_pass` with twice the room, their contents kept."""
    m = bounds.shape[0]
    more_bounds = np.empty(2 * m, np.int64)
    more_positions = np.empty(2 * m)
    more_sums = np.empty((sums.shape[0], 2 * m))
    more_bounds[:m] = bounds
    more_positions[:m] = positions
    more_sums[:, :m] = sums
    return more_bounds, more_positions, more_sums


@njit(cache=True, nogil=True, inline="always")
def _record(volts, amps, tail_volts, tail_amps, base, found, fraction, sums, count, share, next_share, bounds,
            positions):  # pragma: no cover - compiled
    """Close cycle ``count`` (its raw sums already in ``sums[:, count]``) at the bound at
    chunk index ``found``: the crossing's share moved (``share``: the share it began with,
    replaced by the bound's own), the bound and its crossing's absolute position recorded."""
    _crossing_share(volts, amps, tail_volts, tail_amps, found, fraction, next_share)
    for row in range(share.shape[0]):
        sums[row, count] += share[row] - next_share[row]
        share[row] = next_share[row]
    bounds[count + 1] = base + found
    # the crossing's absolute position (from absolute indices: the same whatever the chunking)
    positions[count + 1] = (base + found - 1) + fraction


@njit(cache=True, nogil=True, _nrt=False)
def _close_cycles(volts, amps, first, second, subtract, tail_volts, tail_amps, base, k, count, cycle_start, previous,
                  armed, last_low, hysteresis_v, max_cycle, bounds, positions, sums, share, next_share,
                  peaks):  # pragma: no cover - compiled
    """The cycles the chunk closes from sample ``k`` on, while there is room for them in
    ``bounds``, ``positions``, ``sums`` (filled from ``count``): the trigger finds the next
    bound, then the cycle it closes is summed and recorded. Returns ``(k, count,
    cycle_start, previous, armed, last_low, found, fraction)``: the scan's state, and a
    bound (``found`` ≥ 0) that closes a cycle begun in an earlier chunk, for the caller to
    sum over the carried tail.

    Compiled without numba's reference counting (``_nrt=False``; it allocates nothing):
    counted references to the arrays would cost atomic operations — each a full memory
    barrier — a few per line cycle."""
    n = volts.shape[1]
    while count + 2 < bounds.shape[0]:
        cut = cycle_start + max_cycle - base
        found, fraction, k, previous, armed, last_low = _next_crossing(
            subtract, first, second, k, min(n, cut + 1), hysteresis_v, previous, armed, last_low)
        if found < 0 and k == cut + 1:
            found, fraction = cut, np.nan
        elif found < 0:
            break
        if cycle_start < base:
            return k, count, cycle_start, previous, armed, last_low, found, fraction
        _segment_sums(volts, amps, cycle_start - base, found, sums, count, peaks)
        _record(volts, amps, tail_volts, tail_amps, base, found, fraction, sums, count, share, next_share, bounds,
                positions)
        count += 1
        cycle_start = base + found
    return k, count, cycle_start, previous, armed, last_low, np.int64(-1), np.nan


@njit(cache=True, nogil=True)
def cycle_pass(volts, amps, reference, reference_mode, tail_volts, tail_amps, base, tail_start,
               tail_crossing, tail_share, last_reference, armed, last_low, hysteresis_v, max_cycle,
               final, fs, bounds, positions, sums):  # pragma: no cover - compiled
    """One chunk through the sample path (the method: :func:`minimeter.meter.metrology.measure_chunk`),
    in one pass: the trigger finds the next bound (reading the reference's samples only),
    then the cycle it closes is summed over its contiguous samples (vectorised) and the
    chunk's peaks raised to them while they are in the first-level cache, so each sample
    comes from memory once. (Long: the carried state of the open cycle comes in and goes
    out in one compiled call.)

    ``bounds``, ``positions``, ``sums`` (3e, ·) are work arrays for the bounds found, their
    crossings and the cycles' sums (:func:`work_arrays`; reused from call to call: no
    allocation per chunk proportional to it but the cycles handed back), grown here if
    too small.

    Returns ``(table, partial, last_bound, last_position, share, peaks, last_reference, armed,
    last_low)``: the cycles closed as :func:`_fields` gives them (``fs``: the sample rate
    [Hz]), the last bound (absolute sample index) and its interpolated crossing (NaN for
    a cut) where the open cycle starts, with its ``share`` (3e,), the chunk's ``peaks``
    (2e,) max |x| (volts then amps; NaN where a NaN was seen), and the trigger state after
    the chunk.
    """
    e, n = volts.shape
    rows = 3 * e
    subtract = reference_mode == REFERENCE_L1_L2
    first = reference if reference_mode == REFERENCE_GIVEN else volts[0]
    second = volts[1] if subtract else first
    share = tail_share.copy()
    next_share = np.zeros(rows)
    peaks = np.zeros(2 * e, np.int64)
    bounds[0] = tail_start
    positions[0] = tail_crossing
    cycle_start = tail_start
    previous = last_reference
    count = np.int64(0)     # np.int64: a literal 0 would compile the callees twice
    k = np.int64(0)
    while True:
        k, count, cycle_start, previous, armed, last_low, found, fraction = _close_cycles(
            volts, amps, first, second, subtract, tail_volts, tail_amps, base, k, count, cycle_start, previous, armed,
            last_low, hysteresis_v, max_cycle, bounds, positions, sums, share, next_share, peaks)
        if found >= 0:          # the first cycle, begun in an earlier chunk
            _joined_sums(volts, amps, tail_volts, tail_amps, found, sums, count, peaks)
            _record(volts, amps, tail_volts, tail_amps, base, found, fraction, sums, count, share, next_share, bounds,
                    positions)
            count += 1
            cycle_start = base + found
        elif k >= n and count + 2 < bounds.shape[0]:
            break
        else:
            bounds, positions, sums = _grown(bounds, positions, sums)
    _peaks(volts, amps, max(cycle_start - base, 0), n, peaks)     # the open cycle's samples
    if final and cycle_start < base + n:
        if cycle_start >= base:
            _segment_sums(volts, amps, cycle_start - base, n, sums, count, np.zeros_like(peaks))
        else:
            _joined_sums(volts, amps, tail_volts, tail_amps, n, sums, count, peaks)
        for row in range(rows):
            sums[row, count] += share[row]
        share[:] = 0.0
        count += 1
        bounds[count] = base + n
        positions[count] = np.nan
    table, partial = _fields(fs, bounds, positions, sums, count)
    return table, partial, bounds[count], positions[count], share, peaks.view(np.float64), previous, armed, last_low


@njit(cache=True, nogil=True, error_model="numpy")
def cycle_fields(fs, bounds, positions, sums):  # pragma: no cover - compiled
    """Per cycle between consecutive ``bounds`` (their crossings ``positions``, NaN for
    cuts) from the rows Σv·i, Σv², Σi² of ``sums`` (3e, m): the formulas of
    :func:`minimeter.meter.metrology.cycles_from_sums`, each operation as NumPy's
    elementwise one (so the same bits): (start [s], duration [s], frequency [Hz], partial,
    power [W], energy [Wh], volts rms, amps rms)."""
    e = sums.shape[0] // 3
    rows, partial = _fields(fs, bounds, positions, sums, bounds.shape[0] - 1)
    return (rows[0], rows[1], rows[2], partial, rows[3:3 + e], rows[3 + e:3 + 2 * e], rows[3 + 2 * e:3 + 3 * e],
            rows[3 + 3 * e:])


@njit(cache=True, nogil=True, error_model="numpy")
def _fields(fs, bounds, positions, sums, m):  # pragma: no cover - compiled
    """:func:`cycle_fields` of the first ``m`` cycles (``bounds[:m + 1]``, ``sums[:, :m]``)
    as one array of rows — start, duration, frequency, then the e rows each of power,
    energy, volts rms, amps rms — and ``partial``: two arrays to hand back to Python, not
    eight (each costs most of a microsecond). One quantity at a time over the cycles, so each loop
    vectorises (IEEE division and square root are exactly rounded in vector registers
    too: the same bits)."""
    e = sums.shape[0] // 3
    rows = np.empty((3 + 4 * e, m))
    partial = np.empty(m, np.bool_)
    for c in range(m):
        a, b = positions[c], positions[c + 1]
        at = float(bounds[c]) if np.isnan(a) else a            # where the cycle starts [samples]
        bt = float(bounds[c + 1]) if np.isnan(b) else b
        rows[1, c] = bt - at                                   # its width [samples], for now
        rows[0, c] = at / fs
        rows[2, c] = fs / (b - a)
        partial[c] = np.isnan(a) or np.isnan(b)
    for j in range(e):
        for c in range(m):
            vi, vv, ii, width = sums[j, c], sums[e + j, c], sums[2 * e + j, c], rows[1, c]
            rows[3 + j, c] = vi / width
            rows[3 + e + j, c] = vi / fs / SECONDS_PER_HOUR
            rows[3 + 2 * e + j, c] = np.sqrt((0.0 if vv < 0.0 else vv) / width)    # NaN stays NaN, as np.maximum
            rows[3 + 3 * e + j, c] = np.sqrt((0.0 if ii < 0.0 else ii) / width)
    for c in range(m):
        rows[1, c] = rows[1, c] / fs
    return rows, partial


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


def work_arrays(elements, frames, max_cycle, work=None):
    """Work arrays for :func:`cycle_pass` (``bounds``, ``positions``, ``sums``) with room
    for the cycles of ``frames`` samples of ``elements`` elements at up to four times the
    lowest line frequency tracked (``max_cycle`` samples a cycle at the lowest): ``work``
    itself if it has that room, else new ones."""
    room = 4 + frames // max(1, max_cycle // 4)
    if work is not None and work[0].shape[0] >= room and work[2].shape[0] == 3 * elements:
        return work
    return np.empty(room, np.int64), np.empty(room), np.empty((3 * elements, room))


def warm() -> None:
    """Load (or compile, the first time) the meter's kernels now — these and the
    judgement's (:mod:`minimeter.meter._judge`): a once-per-process cost that a timed run
    should not carry (``minimeter simulate`` reports its wall time after it)."""
    _judge.warm()
    starting_pieces(np.zeros((1, 1)), np.ones(1, np.int64), np.zeros(1, np.bool_), np.zeros(1), 0.125, 1.0, 1e-6)
    cycle_pass(np.zeros((1, 4)), np.zeros((1, 4)), np.zeros(0), REFERENCE_L1, np.zeros((1, 0)), np.zeros((1, 0)),
               0, 0, np.nan, np.zeros(3), np.nan, False, False, 10.0, 200, False, 8000.0, *work_arrays(1, 4, 200))
    cycle_fields(8000.0, np.zeros(2, np.int64), np.zeros(2), np.zeros((3, 1)))
