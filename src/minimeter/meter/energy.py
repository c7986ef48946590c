"""Registers beyond the forward kWh register (SPEC S12.2).

The Mini Meter's own register (:mod:`minimeter.meter.register`) is not touched: these sit
beside it, kept by a meter built with ``quantities=True``. Each is an exact integer count
of the same quantum (2⁻⁴⁰ Wh, varh or VAh), each cycle's energy rounded once
(:func:`~minimeter.meter.register.to_quanta`) and then only integers added:

* per element, imported (P > 0) and exported (P < 0) active energy;
* reactive energy in the four quadrants (IEC 62053-23), from each element's fundamental
  reactive power Q₁ per cycle: I import & Q₁ > 0 (lagging), II export & Q₁ > 0,
  III export & Q₁ < 0, IV import & Q₁ < 0 (magnitudes; total of the elements);
* apparent energy, Σ S·t with S = V·I per element (arithmetic sum of the elements);
* demand: the delivered energy (each cycle's net active energy where positive, as the
  forward register) of each 15-minute block of the meter's clock (blocks from time 0),
  a cycle counting in the block of its middle; the largest finished block is the
  maximum demand, kept with its block's start time until an explicit reset.

Every cycle measured counts (no starting-current gate): the extra registers show what
flowed, the forward register stays the Mini Meter's judgement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from minimeter.meter.register import to_quanta, watt_hours
from minimeter.meter.snapshot import snapshot_state_type

DEMAND_BLOCK_S = 900.0              # 15-minute demand blocks (S12.2)
SECONDS_PER_HOUR = 3600.0


@snapshot_state_type
@dataclass(frozen=True)
class EnergyRegisters:
    """The registers, exact (fields: integer quanta) with float views in Wh, varh, VAh and W
    (the properties, the names every surface reads)."""

    import_quanta: tuple[int, ...]
    export_quanta: tuple[int, ...]
    varh_quanta: tuple[int, int, int, int]          # quadrants I, II, III, IV
    vah_quanta: int
    block_start_s: float | None = None              # the demand block open now
    block_quanta: int = 0                           # its delivered energy so far
    max_block_quanta: int = 0
    max_block_start_s: float | None = None          # start of the block of the maximum demand

    @staticmethod
    def zero(elements: int) -> "EnergyRegisters":
        return EnergyRegisters((0,) * elements, (0,) * elements, (0, 0, 0, 0), 0)

    @property
    def import_wh(self) -> tuple[float, ...]:
        return tuple(watt_hours(q) for q in self.import_quanta)

    @property
    def export_wh(self) -> tuple[float, ...]:
        return tuple(watt_hours(q) for q in self.export_quanta)

    @property
    def varh(self) -> tuple[float, float, float, float]:
        """Reactive energy of quadrants I, II, III, IV [varh] (magnitudes)."""
        return tuple(watt_hours(q) for q in self.varh_quanta)     # type: ignore[return-value]

    @property
    def vah(self) -> float:
        return watt_hours(self.vah_quanta)

    @property
    def demand_w(self) -> float:
        """The open block's delivered energy so far over the block's 15 minutes [W]."""
        return watt_hours(self.block_quanta) * SECONDS_PER_HOUR / DEMAND_BLOCK_S

    @property
    def max_demand_w(self) -> float:
        return watt_hours(self.max_block_quanta) * SECONDS_PER_HOUR / DEMAND_BLOCK_S

    @property
    def max_demand_time_s(self) -> float | None:
        return self.max_block_start_s

    def as_dict(self) -> dict:
        return {"import_wh": list(self.import_wh), "export_wh": list(self.export_wh), "varh": list(self.varh),
                "vah": self.vah, "demand_w": self.demand_w, "max_demand_w": self.max_demand_w,
                "max_demand_time_s": self.max_demand_time_s}

    def check(self, elements: int) -> str | None:
        """What is wrong with these registers for a meter of ``elements``, or None."""
        counts = (*self.import_quanta, *self.export_quanta, *self.varh_quanta, self.vah_quanta,
                  self.block_quanta, self.max_block_quanta)
        if len(self.import_quanta) != elements or len(self.export_quanta) != elements or len(self.varh_quanta) != 4:
            return f"registers for {elements} element(s) and four quadrants"
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            return "registers must be non-negative integers"
        times = [t for t in (self.block_start_s, self.max_block_start_s) if t is not None]
        if not all(isinstance(t, (int, float)) and math.isfinite(t) and t >= 0 for t in times):
            return "demand block times must be finite, non-negative seconds"
        return None

    def reset_max_demand(self) -> "EnergyRegisters":
        """The registers with the maximum demand cleared (the caller logs it)."""
        return replace(self, max_block_quanta=0, max_block_start_s=None)


def register_cycles(regs: EnergyRegisters, start_s: np.ndarray, duration_s: np.ndarray, energy_wh: np.ndarray,
                    reactive_var: np.ndarray, apparent_va: np.ndarray,
                    repeats: np.ndarray | None = None) -> EnergyRegisters:
    """``regs`` after more cycles: their start [s] and length [s] (m,), active energy [Wh],
    fundamental reactive power Q₁ [var] and apparent power S [VA] per element (e, m). With
    ``repeats`` (m,), row ``k`` stands for that many identical cycles from ``start_s[k]``
    (each cycle rounded to the quantum once, as the forward register does)."""
    if start_s.size == 0:
        return regs
    n = np.ones(start_s.size, np.int64) if repeats is None else np.asarray(repeats, np.int64)
    hours = duration_s / SECONDS_PER_HOUR
    e_q = to_quanta(energy_wh)
    imports = tuple(a + x for a, x in zip(regs.import_quanta, _totals(np.where(e_q > 0, e_q, 0), n)))
    exports = tuple(a + x for a, x in zip(regs.export_quanta, _totals(np.where(e_q < 0, -e_q, 0), n)))
    vah = regs.vah_quanta + sum(_totals(to_quanta(apparent_va * hours), n))
    regs = replace(regs, import_quanta=imports, export_quanta=exports, vah_quanta=vah)  # type: ignore[arg-type]
    regs = register_reactive(regs, duration_s, energy_wh, reactive_var, n)
    return _demand(regs, *_by_block(start_s, duration_s, np.maximum(to_quanta(energy_wh.sum(axis=0)), 0), n))


def register_reactive(regs: EnergyRegisters, duration_s: np.ndarray, energy_wh: np.ndarray,
                      reactive_var: np.ndarray, n: np.ndarray | None = None) -> EnergyRegisters:
    """``regs`` with the reactive energy of cycles (m,) long [s] (each ``n`` times) added to
    the quadrants their active energy [Wh] and Q₁ [var] (e, m) give."""
    n = np.ones(duration_s.size, np.int64) if n is None else n
    e_q = to_quanta(energy_wh)
    q_q = to_quanta(reactive_var * (duration_s / SECONDS_PER_HOUR))
    lag = q_q > 0
    exp = e_q < 0
    quadrant = (lag & ~exp, lag & exp, ~lag & exp, ~lag & ~exp)
    varh = tuple(a + sum(_totals(np.abs(np.where(sel, q_q, 0)), n)) for a, sel in zip(regs.varh_quanta, quadrant))
    return replace(regs, varh_quanta=varh)  # type: ignore[arg-type]


def _totals(quanta: np.ndarray, n: np.ndarray) -> list[int]:
    """Σ_k quanta[j, k] · n[k] per row j, in Python integers (no int64 overflow)."""
    if float(np.abs(quanta).max(initial=0)) * float(n.sum()) < 2.0 ** 62:
        return [int(x) for x in (quanta * n).sum(axis=1)]     # int64 sums cannot overflow
    return [int(x) for x in (quanta.astype(object) * n.astype(object)).sum(axis=1)]


def split_runs(start_s: np.ndarray, cycle_s: np.ndarray, repeats: np.ndarray, period_s: float,
               at: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of identical cycles cut where they cross a multiple of ``period_s`` [s]: cycle
    ``k`` of run ``r`` belongs to the period holding ``start_s[r] + (k + at)·cycle_s[r]``
    (``at`` = 0.5: its middle). Returns, per piece in run order, (run, period index,
    cycles in it); a run inside one period is one piece."""
    first = np.floor((start_s + at * cycle_s) / period_s).astype(np.int64)
    last = np.floor((start_s + (repeats - 1 + at) * cycle_s) / period_s).astype(np.int64)
    spans = last - first + 1
    ends = np.cumsum(spans)
    row = np.repeat(np.arange(spans.size), spans)
    slot = first[row] + np.arange(row.size) - np.repeat(ends - spans, spans)
    upto = np.clip(np.ceil(((slot + 1) * period_s - start_s[row]) / cycle_s[row] - at), 0, repeats[row])
    upto = upto.astype(np.int64)                                 # cycles of the run before the period's end
    upto[ends - 1] = repeats                                     # a run's last piece takes the rest
    before = np.empty_like(upto)
    before[1:] = upto[:-1]
    before[ends - spans] = 0
    return row, slot, upto - before


def _by_block(start_s: np.ndarray, cycle_s: np.ndarray, quanta: np.ndarray, n: np.ndarray):
    """Rows of ``n`` cycles cut where they cross a demand block's start (a cycle counts in
    the block of its middle): (the start of each piece's block [s], its delivered quanta)."""
    if (n == 1).all() and float(np.abs(quanta).max(initial=0)) * quanta.size < 2.0 ** 62:
        return np.floor((start_s + 0.5 * cycle_s) / DEMAND_BLOCK_S) * DEMAND_BLOCK_S, quanta   # no int64 overflow
    row, block, count = split_runs(start_s, cycle_s, n, DEMAND_BLOCK_S, 0.5)
    keep = count > 0
    return block[keep] * DEMAND_BLOCK_S, quanta[row[keep]].astype(object) * count[keep].astype(object)


def _demand(regs: EnergyRegisters, block_s: np.ndarray, delivered_q: np.ndarray) -> EnergyRegisters:
    """Advance the 15-minute demand blocks over rows in the blocks starting at ``block_s``
    delivering ``delivered_q`` quanta each (the first block to reach the maximum keeps it)."""
    block = np.round(block_s / DEMAND_BLOCK_S)
    lo = np.flatnonzero(np.concatenate(([True], np.diff(block) != 0)))
    begins = (block[lo] * DEMAND_BLOCK_S).tolist()
    totals = [int(x) for x in np.add.reduceat(delivered_q, lo)]
    if regs.block_start_s is not None and begins[0] == regs.block_start_s:   # the open block goes on
        totals[0] += regs.block_quanta
    elif regs.block_start_s is not None:                                     # the open block has finished
        begins.insert(0, regs.block_start_s)
        totals.insert(0, regs.block_quanta)
    top_q, top_start = regs.max_block_quanta, regs.max_block_start_s
    if len(totals) > 1:
        k = max(range(len(totals) - 1), key=totals.__getitem__)          # the first of the finished maxima
        if totals[k] > top_q:
            top_q, top_start = totals[k], begins[k]
    return replace(regs, block_start_s=begins[-1], block_quanta=totals[-1], max_block_quanta=top_q,
                   max_block_start_s=top_start)
