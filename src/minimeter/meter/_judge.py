"""The per-cycle judgement's loops, compiled (issue 12, item 2).

:func:`steady_cycles` judges cycles of a block in the meter's common case — every cycle
whole and powered on every element, within every event's limits, the net power not below
the reverse deadband — in one pass: it finds from which cycle on the cycles are all
common ones and, if that is all of them (and the meter's state allows), judges them: the
starting-current smoothing (SPEC S4.5) carried through, the register's quanta, the
outputs' transitions and their tally, and the values the next block is judged against.
Otherwise it changes nothing, and :class:`minimeter.meter.core.Meter` judges the cycles
the general way. Each formula is the general path's NumPy operation on the same values
(the same operation order, no fused or reordered arithmetic), so both give the same bits.

:func:`energy_edges` finds the pulse outputs' energy transitions (SPEC S6.1, S6.3) over
consecutive stretches of constant power, for several outputs at once, in time order:
the one transition finder (:func:`minimeter.meter.outputs.output_edges`).

Compiled by numba on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Positions in the ``limits`` array of steady_cycles (see Meter._judge_limits).
(LOW_V, HIGH_V, MAX_A, F_LO, F_HI, PF_MIN, PF_MIN_A, DEADBAND_W, DETECT_A, ALPHA, SETTLED_A, MAX_CYCLE_WH,
 QUANTA_PER_WH, QUANTA_MAX, PF_NEAR, LIMITS) = range(16)
# |P| ≥ PF_NEAR · V·I (PF_NEAR = PF_MIN · (1 + 2⁻⁴⁸), each product rounded) proves the rounded
# |P / (V·I)| above PF_MIN: the division is made only for a power factor near the minimum.
PF_MARGIN = 1 + 2.0 ** -48


@njit(cache=True, nogil=True)
def steady_cycles(partial, start_s, duration, frequency, power, energy, volts, amps, limits, lo, hi,
                  judge, smoothed, fresh, halves, register, load_code, load):  # pragma: no cover - compiled
    """Cycles [lo, hi) of a block (``e`` ≤ 2 elements) in the common case, in one pass.

    ``start``: the first cycle in [lo, hi] from which every cycle up to ``hi`` is a
    common one — whole and not empty, powered on every element, meeting none of the
    raising conditions of ``Meter._judge_events`` (frequency, under- and over-voltage,
    over-current, a power factor below the minimum where the current is in the accuracy
    range), with no net power below the reverse deadband and an energy within the
    register's per-cycle bound (``hi`` where the quanta of [lo, hi) would leave the int64
    sums no headroom); ``limits``: the thresholds at the positions named above.

    If ``start == lo`` and ``judge``, the cycles are judged in the same pass: the
    starting current from ``smoothed`` (e,), the smoothing before them (``fresh``: none
    yet, it starts from the first cycle's active current); the register's forward and
    reverse quanta; then the energy transitions of outputs of half periods ``halves``
    (k,) [quanta] from ``register`` [quanta] modulo a common multiple of their full
    periods (:func:`energy_edges`), and their tally (:func:`tally_edges`, ``load_code``
    and ``load`` as there). The register modulo that multiple stands for the register: it
    gives each output's remainder past its last multiple of Kh/2 and that multiple's parity.

    Returns int64 [start, judged, forward quanta, reverse quanta, each output's last
    state (-1: none)…, its closures…]; float [the smoothing after the cycles (e), the last
    cycle's Vrms, Irms, P (3e), the end of the last cycle [s]]; the transitions as the
    meter records them — columns (output index, state, time, cause 0: energy) — and the
    load LED's changes among them (LED index 1, state, time): what the meter keeps as it
    is, so nothing is left to convert in Python. All but ``start`` meaningless where not
    ``judged``. (Long for its documentation.)"""
    e = power.shape[0]
    outputs = halves.shape[0]
    ints = np.zeros(4 + 2 * outputs, np.int64)
    floats = np.zeros(4 * e + 1)
    none = np.zeros(0, np.int64)
    moves = (none, np.zeros(0, np.bool_), np.zeros(0), none)
    lights = (none, moves[1], moves[2])
    forward = np.zeros(max(hi - lo, 0), np.int64)
    judge = judge and e <= 2 and hi > lo
    state = floats[:e]
    if judge:
        for j in range(e):
            state[j] = power[j, lo] / max(volts[j, lo], limits[LOW_V]) if fresh else smoothed[j]
    start = _one_pass(lo, hi, partial, duration, frequency, power, energy, volts, amps, limits, judge, state,
                      forward, ints)
    ints[0] = start
    if start > lo or not judge:
        return ints, floats, moves, lights
    ints[1] = 1
    for j in range(e):
        floats[e + j] = volts[j, hi - 1]
        floats[2 * e + j] = amps[j, hi - 1]
        floats[3 * e + j] = power[j, hi - 1]
    floats[4 * e] = start_s[hi - 1] + duration[hi - 1]
    levels = np.empty((3, outputs), np.int64)
    reached = np.empty(outputs, np.int64)
    for o in range(outputs):
        levels[0, o] = halves[o]
        levels[1, o] = register % halves[o]
        levels[2, o] = (register // halves[o]) % 2
        reached[o] = (levels[1, o] + ints[2]) // halves[o]
    if reached.any():
        codes, states, times = energy_edges(forward, start_s[lo:hi], duration[lo:hi], levels, reached)
        causes = np.zeros(codes.shape[0], np.int64)
        last_on, closures, flips = tally_edges(codes, states, causes, outputs, load_code, load)
        ints[4:4 + outputs] = last_on
        ints[4 + outputs:] = closures
        moves = (codes, states, times, causes)
        lights = (np.ones(flips.shape[0], np.int64), states[flips], times[flips])
    return ints, floats, moves, lights


@njit(cache=True, nogil=True)
def _one_pass(lo, hi, partial, duration, frequency, power, energy, volts, amps, limits, judge, state, forward,
              ints):  # pragma: no cover - compiled
    """The pass of :func:`steady_cycles` over cycles [lo, hi): returns ``start``; while
    every cycle so far is common and ``judge``, each element's active current x = P / V
    is smoothed, y += α (x − y), y = x once within the settled band (``state``, updated),
    a cycle carries the starting current where some |x| ≥ 2 × or |y| ≥ the threshold
    (S4.5), and its quanta rint(E·2⁴⁰) go to ``forward`` and to the sums ``ints[2]``
    (forward), ``ints[3]`` (reverse). The two elements' smoothings are kept in registers
    side by side (one element: the same twice). (Tests and judgement inline, not in
    helpers taking the arrays: a call per cycle costs ten times the loop.)"""
    e = power.shape[0]
    i = min(1, e - 1)
    low = limits[LOW_V]
    detect = limits[DETECT_A]
    alpha = limits[ALPHA]
    settled = limits[SETTLED_A]
    at_twice = 2 * detect
    # every limit in a local: the loop stores to ``forward``, which the compiler cannot
    # tell apart from ``limits``, so it would load each limit again every cycle
    f_lo, f_hi, high_v, max_a = limits[F_LO], limits[F_HI], limits[HIGH_V], limits[MAX_A]
    pf_min_a, pf_near, pf_min = limits[PF_MIN_A], limits[PF_NEAR], limits[PF_MIN]
    deadband_w, max_cycle_wh, per_wh = limits[DEADBAND_W], limits[MAX_CYCLE_WH], limits[QUANTA_PER_WH]
    y = state[0] if judge else 0.0
    z = state[i] if judge else 0.0
    total_f = 0
    total_r = 0
    bad = lo - 1
    magnitude = 0.0                    # Σ|quanta|, kept below the int64 sums' headroom
    for k in range(lo, hi):
        f = frequency[k]               # NaN compares False: not judged
        ok = not partial[k] and duration[k] > 0 and not (f < f_lo or f > f_hi)
        net_w = power[0, k]
        net_e = energy[0, k]
        for j in range(e):
            v = volts[j, k]
            a = amps[j, k]
            if not (v >= low) or v > high_v or a > max_a:
                ok = False
            apparent = v * a
            if a >= pf_min_a and apparent > 0 and abs(power[j, k]) < pf_near * apparent \
                    and abs(power[j, k] / apparent) < pf_min:
                ok = False
            if j > 0:
                net_w += power[j, k]
                net_e += energy[j, k]
        if net_w < -deadband_w or not abs(net_e) <= max_cycle_wh:
            ok = False
        if not ok:
            bad = k
            judge = False
            continue
        magnitude += abs(net_e) * per_wh
        if judge:
            x = power[0, k] / max(volts[0, k], low)          # the active current (volts ≥ low here)
            w = power[i, k] / max(volts[i, k], low)
            y = y + alpha * (x - y)
            z = z + alpha * (w - z)
            if abs(y - x) <= settled:
                y = x
            if abs(z - w) <= settled:
                z = w
            q = np.int64(np.rint(net_e * per_wh))
            if abs(x) >= at_twice or abs(y) >= detect or abs(w) >= at_twice or abs(z) >= detect:
                if q > 0:
                    forward[k - lo] = q
                    total_f += q
                elif q < 0:
                    total_r -= q
    if judge:
        state[0] = y
        state[i] = z
    ints[2] = total_f
    ints[3] = total_r
    return hi if magnitude >= limits[QUANTA_MAX] else bad + 1


@njit(cache=True, nogil=True)
def energy_edges(quanta, start_s, duration_s, levels, reached):  # pragma: no cover - compiled
    """The energy transitions of several outputs over stretches of constant power.

    ``quanta`` (m,) int64 ≥ 0: each stretch's energy; ``start_s``, ``duration_s`` (m,)
    its start and length [s]. ``levels`` (3, outputs) int64: output ``o`` changes state
    each ``levels[0, o]`` quanta (its Kh/2); before the first stretch the register is
    ``levels[1, o]`` quanta past a multiple of it, the ``levels[2, o]``-th mod 2; it
    reaches ``reached[o]`` thresholds.
    Threshold ``n`` (1-based) is reached in the first stretch whose end is at or beyond
    it, at the time interpolated linearly inside it; the new state is ON where the
    half-period's index is even. Returns (output index, state, time) columns in time
    order, ties in output order."""
    halves, remainders, parities = levels[0], levels[1], levels[2]
    total = 0
    for o in range(reached.shape[0]):
        total += reached[o]
    codes = np.empty(total, np.int64)
    states = np.empty(total, np.bool_)
    times = np.empty(total)
    end = np.cumsum(quanta)
    p = 0
    for o in range(reached.shape[0]):
        for n in range(1, reached[o] + 1):
            level = n * halves[o] - remainders[o]
            c = np.searchsorted(end, level)        # the first stretch whose end reaches it
            start = end[c] - quanta[c]
            fraction = (level - start) / quanta[c]
            codes[p] = o
            states[p] = (parities[o] + n) % 2 == 0
            times[p] = start_s[c] + fraction * duration_s[c]
            p += 1
    if reached.shape[0] > 1:
        order = _stable_order(times, reached)
        return codes[order], states[order], times[order]
    return codes, states, times


@njit(cache=True, nogil=True)
def _stable_order(times, counts):  # pragma: no cover - compiled
    """The stable sort order of ``times``, made of consecutive blocks of ``counts``
    values: merged block by block where each block is in order (an output's transitions
    are), ties to the earlier block — else a stable sort."""
    k = counts.shape[0]
    heads = np.zeros(k, np.int64)
    ends = np.cumsum(counts)
    heads[1:] = ends[:-1]
    for o in range(k):
        for p in range(heads[o] + 1, ends[o]):
            if times[p] < times[p - 1]:
                return np.argsort(times, kind="mergesort")
    order = np.empty(times.shape[0], np.int64)
    for p in range(times.shape[0]):
        best = -1
        for o in range(k):
            if heads[o] < ends[o] and (best < 0 or times[heads[o]] < times[heads[best]]):
                best = o
        order[p] = heads[best]
        heads[best] += 1
    return order


@njit(cache=True, nogil=True)
def tally_edges(codes, states, causes, outputs, load_code, load):  # pragma: no cover - compiled
    """Over transition columns in time order: each output's state after its last
    transition (-1 where it has none), its closures (OFF→ON transitions caused by energy,
    cause 0), and the indices of the transitions of output ``load_code`` that change its
    state from ``load`` (where the load LED, which follows output 10, changes). Returns
    ((outputs,) int8, (outputs,) int64, (changes,) int64)."""
    last = np.full(outputs, -1, np.int8)
    closures = np.zeros(outputs, np.int64)
    flips = np.empty(codes.shape[0], np.int64)
    n = 0
    for p in range(codes.shape[0]):
        o = codes[p]
        last[o] = 1 if states[p] else 0
        if states[p] and causes[p] == 0:
            closures[o] += 1
        if o == load_code and states[p] != load:
            flips[n] = p
            n += 1
            load = states[p]
    return last, closures, flips[:n]


def warm() -> None:
    """Load (or compile, the first time) these kernels now: a once-per-process cost that
    a timed run should not carry (as :func:`minimeter.meter._kernels.warm`)."""
    one = np.ones(1)
    codes, states, times = energy_edges(np.ones(1, np.int64), one, one, np.ones((3, 1), np.int64),
                                        np.zeros(1, np.int64))
    tally_edges(codes, states, codes, 1, 0, False)
    for rows in (np.ones((1, 1)), np.ones((2, 2))[:, :1]):
        # both layouts of the per-element rows: a whole block's (contiguous) and a slice's,
        # as the general path's steps and the live runner's pieces hand them over
        steady_cycles(np.zeros(1, np.bool_), one, one, one, rows, rows, rows, rows, np.zeros(LIMITS), 0, 1, True,
                      one, False, np.ones(1, np.int64), 0, 0, False)
