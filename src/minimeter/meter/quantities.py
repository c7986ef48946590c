"""The beyond-kWh pass of a :class:`~minimeter.meter.Meter` built with ``quantities=True``
(SPEC §12): per cycle and per IEC 61000-4-30 window, the IEEE 1459 quantities and
harmonics (:mod:`minimeter.meter.power`), the extra registers
(:mod:`minimeter.meter.energy`) and the dip/swell/interruption judgement
(:mod:`minimeter.meter.pq`).

Pure: :meth:`QuantityEngine.samples` and :meth:`QuantityEngine.cycles` take a
:class:`QuantityState` and return the next one with what was measured, so the meter
commits it with everything else, all or nothing. The state travels in the meter's
snapshot (``MeterSnapshot.quantities``).

The sample path keeps the samples of the window under way (at most 12 line cycles and
the chunk) to take the window's DFT when its last cycle completes; a partial cycle (a
cut where no zero crossing came) starts a new window. The phasor path gives its
quantities per cycle — or per run of identical cycles, whose windows are all alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from minimeter.meter.core import Event
from minimeter.meter.energy import EnergyRegisters, register_cycles, register_reactive
from minimeter.meter.metrology import CycleBlock
from minimeter.meter.pq import OpenEvent, PqState, half_cycle_rms, judge
from minimeter.meter.power import (HarmonicTable, PhasorCycles, PowerQuantities, cycle_fundamentals, phasor_quantities,
                                   phasor_table, window_cycles, windows_quantities)
from minimeter.meter.snapshot import snapshot_state_type


@snapshot_state_type
@dataclass(frozen=True)
class QuantityState:
    """What the beyond-kWh pass carries between two feeds."""

    registers: EnergyRegisters
    pq: PqState = field(default_factory=PqState)
    buffer_start: int = 0                          # sample path: absolute index of buffer's first sample
    buffer_volts: np.ndarray | None = None         # (e, L) samples from buffer_start on
    buffer_amps: np.ndarray | None = None
    window_start: float | None = None              # the window under way: its start [absolute samples], if any
    window_count: int = 0                          # … its whole cycles so far
    window_size: int = 0                           # … the cycles it needs (10 or 12)
    window_sums: tuple[float, ...] | None = None   # … Σ V²·t, I²·t per element, energy [J] per element, t [s]
    period: float | None = None                    # the last whole cycle's length [samples], if any
    deferred: np.ndarray | None = None             # cycles before the first period: (3 + e, k) a, b [samples],
    #                                                length [s], energy per element [Wh]; their Q₁ comes later


@dataclass(frozen=True)
class QuantityUpdate:
    """What one feed measured beyond kWh."""

    windows: PowerQuantities                        # sample path: the IEC 61000-4-30 windows completed (e, w);
    #                                                 phasor path: its cycles (or runs of identical cycles)
    harmonics: HarmonicTable | None                 # the last window's table (phasor path: the last cycle's)
    registers: EnergyRegisters                      # the registers after the feed
    events: tuple[Event, ...] = ()                  # dips, swells, interruptions raised or cleared


def _periods(width: np.ndarray, partial: np.ndarray, last: float) -> np.ndarray:
    """The period each cycle's fundamental is fitted to [samples]: a whole cycle's own
    length; a partial cycle's, the last whole cycle's before it (``last`` from the chunks
    before) — only the past, so the result does not depend on how the stream is chunked —
    or NaN where there is none yet (a stream's first fragment)."""
    if not partial.any():
        return width
    before = np.concatenate(([last], np.where(partial, np.nan, width)))
    idx = np.where(np.isnan(before), -1, np.arange(before.size))
    np.maximum.accumulate(idx, out=idx)
    prev = np.where(idx >= 0, before[np.maximum(idx, 0)], np.nan)[1:]          # the last whole one up to here
    return np.where(~partial, width, prev)


def _deferred(held: np.ndarray | None, a_pos: np.ndarray, b_pos: np.ndarray, block: CycleBlock,
              unknown: np.ndarray) -> np.ndarray | None:
    """The cycles whose reactive energy waits for a period: those held and this block's."""
    if not unknown.any():
        return held
    rows = np.vstack((a_pos[unknown], b_pos[unknown], block.duration_s[unknown], block.energy_wh[:, unknown]))
    return rows if held is None else np.concatenate((held, rows), axis=1)


class QuantityEngine:
    """The beyond-kWh pass for a meter of ``elements`` elements; dips, swells and
    interruptions are judged against ``declared_v`` [V rms]."""

    def __init__(self, elements: int, declared_v: float) -> None:
        self.elements = elements
        self.declared_v = float(declared_v)
        self._last_table: tuple = (None, None)          # (phasors, table): a cache, not state

    def initial(self) -> QuantityState:
        return QuantityState(EnergyRegisters.zero(self.elements))

    def check(self, state: object) -> str | None:
        """What is wrong with a state from a snapshot, or None."""
        if not isinstance(state, QuantityState) or not isinstance(state.registers, EnergyRegisters) \
                or not isinstance(state.pq, PqState):
            return "not a beyond-kWh state"
        e = self.elements
        buffers = (state.buffer_volts, state.buffer_amps)
        if any(b is not None for b in buffers) and not all(
                isinstance(b, np.ndarray) and b.ndim == 2 and b.shape == buffers[0].shape and b.shape[0] == e
                and np.isfinite(b).all() for b in buffers):
            return f"the window's samples must be two finite arrays of {e} rows"
        pq = state.pq
        per_element = [x for x in (pq.half_sq, pq.recent_v, state.window_sums) if x is not None]
        if any(not isinstance(x, tuple) for x in per_element) or (pq.half_sq is not None and len(pq.half_sq) != e) \
                or (pq.recent_v is not None and len(pq.recent_v) != e) \
                or (state.window_sums is not None and len(state.window_sums) != 3 * e + 1):
            return f"the power-quality and window sums must be per element ({e})"
        if not all(isinstance(ev, OpenEvent) and 1 <= ev.element <= e for ev in pq.open_events):
            return "the open power-quality events are malformed"
        held = state.deferred
        if held is not None and not (isinstance(held, np.ndarray) and held.ndim == 2 and held.shape[0] == 3 + e
                                     and np.isfinite(held).all()):
            return f"the cycles waiting for a period must be a finite array of {3 + e} rows"
        if not all(x is None or (isinstance(x, (int, float)) and math.isfinite(x) and x > 0)
                   for x in (state.period, state.window_start if state.window_start else 1.0)):
            return "the window's start and the period must be positive and finite"
        return state.registers.check(e)

    # ------------------------------------------------------------------ the sample path
    def samples(self, state: QuantityState, volts: np.ndarray, amps: np.ndarray, sample_rate_hz: float,
                first_index: int, block: CycleBlock) -> tuple[QuantityState, QuantityUpdate]:
        """Samples ``volts``, ``amps`` (e, n) from absolute index ``first_index`` and the
        cycles ``block`` the kWh pass completed with them."""
        fs = sample_rate_hz
        if state.buffer_volts is None:
            buf_v, buf_a, buf0 = volts, amps, first_index
        else:
            buf_v = np.concatenate((state.buffer_volts, volts), axis=1)
            buf_a = np.concatenate((state.buffer_amps, amps), axis=1)
            buf0 = state.buffer_start
        a_pos, b_pos = block.start_s * fs, block.end_s * fs
        period = _periods(b_pos - a_pos, block.partial, math.nan if state.period is None else state.period)
        unknown = np.isnan(period)                      # no period yet: the reactive energy waits for one
        period = np.where(unknown, b_pos - a_pos, period)
        # half cycles: a whole cycle's two halves; a cut cycle (no zero crossing) in pieces of half a period
        halves = np.where(block.partial, np.maximum(np.rint(2.0 * (b_pos - a_pos) / period), 1), 2).astype(np.int64)
        v1, i1, half_sq, half_w = cycle_fundamentals(buf_v, buf_a, buf0, a_pos, b_pos, period, halves)
        q1 = np.where(unknown, 0.0, (v1 * np.conj(i1)).imag)
        regs = register_cycles(state.registers, block.start_s, block.duration_s, block.energy_wh, q1,
                               block.volts_rms * block.amps_rms)
        deferred = _deferred(state.deferred, a_pos, b_pos, block, unknown)
        if deferred is not None and not unknown.all():
            regs = self._registered_later(regs, deferred, float(period[np.argmin(unknown)]), buf_v, buf_a, buf0)
            deferred = None
        rms, window, pq = half_cycle_rms(state.pq, half_sq, half_w)
        piece = np.arange(halves.sum()) - np.repeat(np.cumsum(halves) - halves, halves) + 1.0
        half_end = np.repeat(block.start_s, halves) + piece * np.repeat(block.duration_s / halves, halves)
        pq, events = judge(pq, half_end[half_end.size - rms.shape[1]:], window / fs, rms, self.declared_v)
        windows, table, win = self._windows(state, block, buf_v, buf_a, buf0, a_pos, b_pos, fs)
        keep_from = int(math.floor(min(win[0] if win[0] is not None else (b_pos[-1] if b_pos.size else buf0),
                                       math.inf if deferred is None else deferred[0].min()))) - 1
        keep_from = min(max(keep_from, buf0), buf0 + buf_v.shape[1])
        new = replace(state, registers=regs, pq=pq, buffer_start=keep_from,
                      buffer_volts=buf_v[:, keep_from - buf0:].copy(), buffer_amps=buf_a[:, keep_from - buf0:].copy(),
                      window_start=win[0], window_count=win[1], window_size=win[2], window_sums=win[3],
                      period=float(period[-1]) if period.size and not block.partial[-1] else state.period,
                      deferred=deferred)
        return new, QuantityUpdate(windows, table, regs, tuple(events))

    @staticmethod
    def _registered_later(regs: EnergyRegisters, deferred: np.ndarray, period: float, buf_v, buf_a,
                          buf0: int) -> EnergyRegisters:
        """The reactive energy of the cycles that came before the first whole cycle, fitted
        to its period now that it is known."""
        k = deferred.shape[1]
        v1, i1, _, _ = cycle_fundamentals(buf_v, buf_a, buf0, deferred[0], deferred[1], np.full(k, period))
        return register_reactive(regs, deferred[2], deferred[3:], (v1 * np.conj(i1)).imag)

    def _windows(self, state: QuantityState, block: CycleBlock, buf_v, buf_a, buf0: int, a_pos, b_pos, fs):
        """The windows completed by ``block`` (quantities, the last one's table) and the
        window under way after it: (start, cycles so far, cycles needed, its sums)."""
        start, count, size, sums = state.window_start, state.window_count, state.window_size, state.window_sums
        e = self.elements
        # per cycle: V²·t, I²·t, energy [J] per element, t — summed per window (what the kWh pass measured)
        t = block.duration_s
        rows = np.vstack((block.volts_rms ** 2 * t, block.amps_rms ** 2 * t, block.energy_wh * 3600.0, t))
        cum = np.concatenate((np.zeros((rows.shape[0], 1)), np.cumsum(rows, axis=1)), axis=1)
        carried = np.zeros(rows.shape[0]) if sums is None else np.array(sums, float)
        spans, totals = [], []                  # per window: (first sample, end sample, start [s], duration [s]); sums
        cuts = np.flatnonzero(block.partial)
        for lo, hi in zip(np.concatenate(([0], cuts + 1)).tolist(), np.concatenate((cuts, [block.count])).tolist()):
            if lo > 0:                                                    # after a cut: a new window
                start, count, carried = None, 0, np.zeros(rows.shape[0])
            if hi <= lo:
                continue
            if count == 0:
                size = window_cycles(float(block.frequency_hz[lo]))
            ends = lo + np.flatnonzero((count + np.arange(hi - lo) + 1) % size == 0)
            for end in ends.tolist():
                first = end - size + 1
                if first < lo:                                            # began before this block (or run)
                    total, begin = carried + cum[:, end + 1] - cum[:, lo], start
                else:
                    total, begin = cum[:, end + 1] - cum[:, first], float(a_pos[first])
                spans.append((int(round(begin)) - buf0, int(round(b_pos[end])) - buf0, begin / fs, (b_pos[end] - begin) / fs))
                totals.append(total)
            last = int(ends[-1]) if ends.size else None
            if last is None:                                              # no window ended: the one under way grows
                start = float(a_pos[lo]) if count == 0 else start
                carried = carried + cum[:, hi] - cum[:, lo]
                count += hi - lo
            else:
                count = hi - last - 1
                start = float(a_pos[last + 1]) if count else None
                carried = cum[:, hi] - cum[:, last + 1]
        windows, table = self._window_dfts(spans, totals, buf_v, buf_a, size, e)
        return windows, table, (start if count else None, count, size, tuple(float(x) for x in carried) if count else None)

    def _window_dfts(self, spans, totals, buf_v, buf_a, size: int, e: int):
        """The windows' quantities from their samples (a view when they lie end to end with
        equal lengths, as they do at a steady frequency) and their sums."""
        if not spans:
            return PowerQuantities.joined([], e), None
        lo, hi = np.array([s[0] for s in spans]), np.array([s[1] for s in spans])
        tot = np.array(totals).T                                           # (3e + 1, w)
        dur = tot[-1]
        rms_and_power = (np.sqrt(tot[:e] / dur), np.sqrt(tot[e:2 * e] / dur), tot[2 * e:3 * e] / dur)
        starts, durations = np.array([s[2] for s in spans]), np.array([s[3] for s in spans])
        length = int(hi[0] - lo[0])
        if (hi - lo == length).all() and (lo[1:] == hi[:-1]).all():
            w = lo.size
            v = buf_v[:, lo[0]:lo[0] + w * length].reshape(e, w, length)
            a = buf_a[:, lo[0]:lo[0] + w * length].reshape(e, w, length)
            return windows_quantities(v, a, size, starts, durations, rms_and_power)
        parts, table = [], None
        for k in range(lo.size):                                           # uneven: one window at a time
            q, table = windows_quantities(buf_v[:, None, lo[k]:hi[k]], buf_a[:, None, lo[k]:hi[k]], size, starts[k:k + 1],
                                          durations[k:k + 1], tuple(x[:, k:k + 1] for x in rms_and_power))
            parts.append(q)
        return PowerQuantities.joined(parts, e), table

    # ------------------------------------------------------------------ the phasor path
    def cycles(self, state: QuantityState, rows: CycleBlock,
               repeats: np.ndarray | None = None) -> tuple[QuantityState, QuantityUpdate]:
        """Per-cycle quantities; with ``repeats``, runs of identical cycles (each row stands
        for ``repeats[k]`` cycles and all their windows). A
        :class:`~minimeter.meter.power.PhasorCycles` carries the phasors; a plain block has
        none: no fundamental, no reactive energy, no harmonics."""
        per, table = self._per_cycle(rows)
        regs = register_cycles(state.registers, rows.start_s, rows.duration_s, rows.energy_wh,
                               np.nan_to_num(per.reactive_power_var), per.apparent_power_va, repeats)
        pq, events = judge(state.pq, rows.end_s, rows.duration_s, rows.volts_rms, self.declared_v)   # a row's first cycle
        if repeats is not None:
            per = replace(per, duration_s=per.duration_s * repeats)
        return replace(state, registers=regs, pq=pq), QuantityUpdate(per, table, regs, tuple(events))

    def _per_cycle(self, rows: CycleBlock) -> tuple[PowerQuantities, HarmonicTable | None]:
        if isinstance(rows, PhasorCycles) and rows.volts_phasors is not None and rows.count:
            orders = np.array(rows.orders)
            per = phasor_quantities(orders, rows.volts_phasors, rows.amps_phasors, rows.start_s, rows.duration_s,
                                    rows.power_w)
            v, i = rows.volts_phasors[:, :, -1], rows.amps_phasors[:, :, -1]
            key = (rows.orders, v.tobytes(), i.tobytes())
            if self._last_table[0] != key:                  # a steady load: the same table as last time
                self._last_table = (key, phasor_table(orders, v, i))
            return per, self._last_table[1]
        nan = np.full(rows.power_w.shape, np.nan)
        s = rows.volts_rms * rows.amps_rms
        per = PowerQuantities(rows.start_s, rows.duration_s, rows.power_w, nan, nan, nan, s,
                              np.sqrt(np.maximum(s * s - rows.power_w ** 2, 0.0)), nan, nan, rows.power_factor,
                              nan, nan, rows.volts_rms, rows.amps_rms)
        return per, None
