"""One meter of a fleet, run alone (SPEC S14.2): the phasor path through
:func:`minimeter.lab.simulation.simulate`, its interval energy, registers, closures and
events, and the installation's diagnosis from its measurements — as plain tables.

Everything here is a pure function of (fleet, meter index): the same meter gives the
same rows on any worker. The diagnosis window is chosen from the meter's own
measurements — the line cycle where the smallest element current is largest (ties: the
first), so every CT carries current when the wiring is judged — and the fault naming
(:func:`minimeter.lab.diagnostics.diagnose_installation`, as ``minimeter diagnose``
does) sees only the samples of that window and the installer's word on generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from minimeter.lab.diagnostics import Diagnosis, diagnose_installation
from minimeter.lab.fault_campaign import named
from minimeter.lab.simulation import SimulationResult, simulate
from minimeter.meter import Meter, Update
from minimeter.meter.energy import split_runs
from minimeter.formats.fleet import Fleet
from minimeter.fleet.population import STATED_WIRING, Member, member
from minimeter.sources.installation import Installation

TABLES = ("meters", "intervals", "closures", "registers", "events")


EDGE_CYCLES = 1e-6      # a cycle starting within this fraction of a cycle before an interval's start belongs to it


class _Watch:
    """Bins each update's energy into intervals and keeps the diagnosis cycle.

    An update's cycles come as a :class:`~minimeter.meter.metrology.CycleBlock` or as
    runs of identical cycles (``CycleRuns``: ``cycles`` and ``repeats``); a run that
    crosses an interval's start is split there (:func:`~minimeter.meter.energy.split_runs`,
    all runs at once): cycle ``k`` of a run starting at ``s`` with cycles of ``d`` starts
    at ``s + k·d`` and belongs to the interval holding that instant (:data:`EDGE_CYCLES`
    absorbs the rounding of ``k·d``)."""

    def __init__(self, elements: int, interval_s: float, period_s: float) -> None:
        self.interval_s = interval_s
        self.energy_wh = np.zeros((elements, max(int(math.ceil(period_s / interval_s - 1e-9)), 1)))
        self.best = (-1.0, 0.0)          # (score, cycle start [s])

    def __call__(self, update: Update, reached_s: float) -> None:
        block = update.cycles
        if not block.count:
            return
        cycles = getattr(block, "cycles", block)                    # the runs' first cycles, or the cycles
        repeats = getattr(block, "repeats", np.ones(cycles.count, np.int64))
        self._bin(cycles.start_s, cycles.duration_s, repeats, cycles.energy_wh)
        self._watch(cycles)

    def _bin(self, start_s: np.ndarray, cycle_s: np.ndarray, repeats: np.ndarray, energy_wh: np.ndarray) -> None:
        row, slot, count = split_runs(start_s, cycle_s, repeats, self.interval_s, EDGE_CYCLES)
        slot = np.clip(slot, 0, self.energy_wh.shape[1] - 1)
        lo, hi = int(slot.min()), int(slot.max()) + 1            # the intervals this update reaches
        for k in range(energy_wh.shape[0]):
            self.energy_wh[k, lo:hi] += np.bincount(slot - lo, weights=energy_wh[k][row] * count, minlength=hi - lo)

    def _watch(self, cycles) -> None:
        amps, start_s = cycles.amps_rms, cycles.start_s
        if cycles.partial.any():                 # (the phasor path's partial cycle is the run's last, alone)
            whole = ~cycles.partial
            amps, start_s = amps[:, whole], start_s[whole]
        if start_s.size:
            score = amps.min(axis=0) + 1e-3 * amps.sum(axis=0)
            j = int(np.argmax(score))
            if score[j] > self.best[0]:
                self.best = (float(score[j]), float(start_s[j]))


def simulate_member(fleet: Fleet, m: Member) -> tuple[SimulationResult, _Watch, Meter]:
    """Run meter ``m`` over the fleet's period on the phasor path (the meter is returned for its registers)."""
    spec = m.installation.spec
    watch = _Watch(spec.elements, fleet.interval_s, fleet.period_s)
    meter = Meter(spec, quantities=fleet.quantities)
    result = simulate(meter, m.installation.source(), fleet.period_s, on_update=watch)
    return result, watch, meter


SUPPLY_AND_LOAD_FAULTS = ("supply-voltage", "frequency", "over-current")


def true_delivered_wh(inst: Installation, period_s: float) -> float:
    """What a correctly wired meter would register [Wh]: the installation with the
    model's correct terminals and CTs and its wiring faults undone (a wrong supply and
    an extra load are what the site really has)."""
    kept = tuple(f for f in inst.faults if f.kind in SUPPLY_AND_LOAD_FAULTS)
    return replace(inst, terminals=None, cts=None, faults=kept).source().delivered_energy_wh(0.0, period_s)


def _top(d: Diagnosis) -> tuple[str, str, float, float | None]:
    """What the diagnosis put first: (kind or 'no fault' / 'possible kind', subject, confidence, registration %)."""
    if not d.findings:
        return "no fault", "", 0.0, None
    f = d.findings[0]
    kind = f.kind if d.faults else f"possible {f.kind}"
    return kind, f.subject, float(f.confidence), f.registration_percent


def _meter_row(fleet: Fleet, m: Member, result: SimulationResult, d: Diagnosis, at_s: float) -> dict:
    inst, spec = m.installation, m.installation.spec
    top, subject, confidence, diag_reg = _top(d)
    rewired = m.injected or inst.terminals is not None or inst.cts is not None
    delivered = true_delivered_wh(inst, fleet.period_s) if rewired else result.analytic_delivered_wh
    all_named = all(bool(d.faults) if atom == STATED_WIRING else named(d, atom) for atom in m.injected)
    return {
        "meter": m.index, "name": inst.name, "model": spec.model_number, "elements": spec.elements,
        "ct_rating": spec.ct_rating, "service": inst.service.kind, "volts": float(inst.service.volts),
        "loads": len(inst.loads), "generation": bool(inst.generation),
        "injected": m.fault, "injected_subject": "+".join(s for _, s in m.injected),
        "registered_wh": result.registered_wh, "reverse_wh": result.reverse_wh,
        "true_delivered_wh": delivered, "seen_delivered_wh": result.analytic_delivered_wh,
        "registration_percent": 100.0 * result.registered_wh / delivered if delivered > 0 else float("nan"),
        "events": len(result.events), "events_dropped": result.events_dropped,
        "diagnosed": top, "diagnosed_subject": subject, "diagnosed_confidence": confidence,
        "diagnosed_registration_percent": float("nan") if diag_reg is None else float(diag_reg),
        "diagnosis_at_s": at_s, "diagnosis": "\n".join(d.lines()),
        "reported_fault": bool(d.faults), "named": all_named,
        "diagnosis_ok": all_named if m.injected else not d.faults,
    }


def run_member(fleet: Fleet, index: int) -> dict[str, dict]:
    """Meter ``index`` of ``fleet``, run and diagnosed: a dict of column dicts, one per
    table of :data:`TABLES`."""
    m = member(fleet, index)
    result, watch, meter = simulate_member(fleet, m)
    at_s = watch.best[1]
    diagnosis = diagnose_installation(m.installation, at_s=at_s)
    e, n = watch.energy_wh.shape
    intervals = {"meter": np.full(e * n, index, np.int64), "element": np.repeat(np.arange(1, e + 1), n),
                 "start_s": np.tile(np.arange(n) * fleet.interval_s, e), "energy_wh": watch.energy_wh.ravel()}
    closures = {"meter": [index] * len(result.closures), "output": list(result.closures),
                "closures": list(result.closures.values())}
    ev = result.events
    events = {"meter": [index] * len(ev), "time_s": [x.time_s for x in ev], "kind": [str(x.kind) for x in ev],
              "active": [x.active for x in ev], "element": [x.element for x in ev],
              "value": [float(x.value) for x in ev], "message": [x.message for x in ev]}
    row = _meter_row(fleet, m, result, diagnosis, at_s)
    return {"meters": {k: [v] for k, v in row.items()}, "intervals": intervals, "closures": closures,
            "registers": register_rows(index, result, meter), "events": events}


def register_rows(index: int, result: SimulationResult, meter: Meter) -> dict[str, list]:
    """The registers as rows (meter, register, element — 0 for the meter as a whole —, value):
    the forward register and the reverse one [Wh]; with the S12.2 quantities, import and
    export per element [Wh], reactive energy per quadrant [varh] (element = quadrant),
    apparent energy [VAh], maximum demand [W] and the start of its block [s]."""
    rows = [("registered_wh", 0, result.registered_wh), ("reverse_wh", 0, result.reverse_wh)]
    r = meter.registers
    if r is not None:
        rows += [("import_wh", k + 1, float(x)) for k, x in enumerate(r.import_wh)]
        rows += [("export_wh", k + 1, float(x)) for k, x in enumerate(r.export_wh)]
        rows += [("varh", q + 1, float(x)) for q, x in enumerate(r.varh)]
        rows += [("vah", 0, float(r.vah)), ("max_demand_w", 0, float(r.max_demand_w))]
        if r.max_demand_time_s is not None:
            rows.append(("max_demand_time_s", 0, float(r.max_demand_time_s)))
    return {"meter": [index] * len(rows), "register": [n for n, _, _ in rows], "element": [k for _, k, _ in rows],
            "value": [v for _, _, v in rows]}


_SCHEMAS = {
    "intervals": pa.schema([("meter", pa.int64()), ("element", pa.int64()), ("start_s", pa.float64()),
                            ("energy_wh", pa.float64())]),
    "closures": pa.schema([("meter", pa.int64()), ("output", pa.string()), ("closures", pa.int64())]),
    "registers": pa.schema([("meter", pa.int64()), ("register", pa.string()), ("element", pa.int64()),
                            ("value", pa.float64())]),
    "events": pa.schema([("meter", pa.int64()), ("time_s", pa.float64()), ("kind", pa.string()),
                         ("active", pa.bool_()), ("element", pa.int64()), ("value", pa.float64()),
                         ("message", pa.string())]),
}


@dataclass(frozen=True)
class PartitionResult:
    """The tables of some meters of a fleet (meters in index order), each as the bytes of
    a Parquet file: encoded where the meters ran (a worker, in parallel), so the client
    only writes them down (encoding them there took a tenth of a core on two workers)."""

    first: int
    meters: int
    parquet: dict[str, bytes]


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _stack(pieces: list) -> list | np.ndarray:
    if isinstance(pieces[0], np.ndarray):
        return np.concatenate(pieces)
    return [value for piece in pieces for value in piece]


def run_partition(fleet: Fleet, indices: list[int]) -> PartitionResult:
    """Run meters ``indices`` and stack their tables (one Dask task)."""
    runs = [run_member(fleet, i) for i in indices]
    tables = {}
    for name in TABLES:
        columns = {col: _stack([r[name][col] for r in runs]) for col in runs[0][name]}
        tables[name] = _parquet_bytes(pa.table(columns, schema=_SCHEMAS.get(name)))
    return PartitionResult(indices[0], len(indices), tables)


__all__ = ["TABLES", "run_member", "run_partition", "simulate_member", "PartitionResult"]
