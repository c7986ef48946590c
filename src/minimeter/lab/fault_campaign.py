"""Random installations with known faults, and how the fault naming fares on them (S11.3).

:func:`random_case` draws one installation from the whole rated range — every meter
model, single-element meters on 2-wire, split-phase and network services, two-element
meters on split phase and network, 104–136 V supplies at 50 or 60 Hz, 1–5 loads of
50 W–12 kW at PF 0.5 lead to lag on L1, L2 or L1–L2 with harmonics, legs left unloaded,
generation (a PV inverter back-feeding) declared or not — and makes on it no fault
(a third of the cases), one fault, or two at once (a terminal or a CT open with a CT
reversed). :func:`run_campaign` diagnoses each from the meter's samples only and
counts, per injected fault, what was named (:class:`Outcome`).

*Decisions:* a missing neutral on a two-element meter is injected on network services
only (on split phase with equal legs it changes nothing the meter sees — the diagnosis
says so in its note); a CT rating mismatch is not injected (it only scales a current);
generation is put on correct installations only (declared or not): on a faulty one an
undeclared PV inverter's export can make the faulty wiring read exactly like a correct
one with other loads, and a declared one explains reverse power by design — those
cases cannot be named from the measurements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from minimeter.lab.diagnostics import Diagnosis, diagnose_installation
from minimeter.meter.catalog import meter_spec
from minimeter.sources.installation import Installation
from minimeter.sources.service import Harmonic, Load, Service

MODELS = ("MO", "MK", "6S", "6F", "7B", "5B")
SUPPLY_V = (104.0, 136.0)            # in-range supplies drawn [V L–N]
LOAD_W = (50.0, 12000.0)             # one load [W]
SINGLE_FAULTS = ("ct-reversed", "ct-wrong-phase", "l1-l2-swapped", "voltage-open", "neutral-missing", "ct-open",
                 "ct-shorted", "over-current", "supply-voltage", "frequency")
TWO_FAULTS = (("voltage-open", "ct-reversed"), ("ct-open", "ct-reversed"))
Atom = tuple[str, str | None]        # (fault kind, subject or None for the supply)


@dataclass(frozen=True)
class Case:
    """An installation, the faults made on it (kind, subject), and the label of the case."""

    installation: Installation
    injected: tuple[Atom, ...]

    @property
    def label(self) -> str:
        return " + ".join(k for k, _ in self.injected) or "none"


def _loads(rng: np.random.Generator, service: Service, generation: bool) -> tuple[Load, ...]:
    connections = list(service.legs) + (["L1-L2"] if len(service.legs) == 2 else [])
    if len(connections) > 1 and rng.random() < 0.2:           # one leg unloaded
        connections = [connections[int(rng.integers(2))]]
    harmonics = [(), (Harmonic(3, 0.2),), (Harmonic(3, 0.3), Harmonic(5, 0.1))]
    loads = []
    for _ in range(int(rng.integers(1, 6))):
        watts = float(np.exp(rng.uniform(np.log(LOAD_W[0]), np.log(LOAD_W[1]))))
        loads.append(Load(watts, float(rng.uniform(0.5, 1.0)), bool(rng.random() < 0.3),
                          connections[int(rng.integers(len(connections)))], harmonics[int(rng.integers(3))]))
    if generation and rng.random() < 0.4:                       # a PV inverter back-feeding
        loads.append(Load(-float(rng.uniform(300.0, 8000.0)), float(rng.uniform(0.9, 1.0)), bool(rng.random() < 0.5),
                          connections[int(rng.integers(len(connections)))], name="PV inverter"))
    return tuple(loads)


def _within_rating(inst: Installation) -> Installation:
    """The loads scaled down until every CT carries at most the meter's rating."""
    spec = inst.spec
    peak = max(max((abs(c.amplitude) for c in sig if c.order == 1), default=0.0) for sig in inst.source().amps)
    limit = spec.rated_primary_a * np.sqrt(2)
    if peak <= limit:
        return inst
    factor = 0.9 * limit / peak
    return inst.with_loads([replace(ld, watts=ld.watts * factor) for ld in inst.loads])


def _other_ct(ct: str) -> str:
    return "CT2" if ct == "CT1" else "CT1"


def _fault(rng: np.random.Generator, inst: Installation, kind: str, ct: str) -> tuple[Installation, Atom]:
    """``inst`` with one fault of ``kind`` (on ``ct`` where it takes one) and its (kind, subject)."""
    two = inst.spec.elements == 2
    if kind in ("ct-reversed", "ct-wrong-phase", "ct-open", "ct-shorted"):
        return inst.with_fault(kind, ct=ct), (kind, ct)
    if kind == "l1-l2-swapped":
        return inst.with_fault(kind), (kind, "L1/L2")
    if kind == "voltage-open":
        # on split phase an open N on a two-element meter changes nothing seen: not injected there
        terminals = ("L1", "N") if not two else ("L1", "L2", "N") if inst.service.kind == "network" else ("L1", "L2")
        terminal = terminals[int(rng.integers(len(terminals)))]
        return inst.with_fault(kind, terminal=terminal), (kind, terminal)
    if kind == "neutral-missing":
        return inst.with_fault(kind), (kind, "N")
    if kind == "over-current":
        return inst.with_fault(kind, amps=float(rng.uniform(1.15, 1.9)) * inst.spec.rated_primary_a), (kind, "CT1")
    if kind == "supply-voltage":
        volts = float(rng.uniform(80.0, 100.0) if rng.random() < 0.5 else rng.uniform(140.0, 170.0))
        return inst.with_fault(kind, volts=volts), (kind, None)
    hz = float(rng.uniform(40.0, 48.5) if rng.random() < 0.5 else rng.uniform(61.5, 70.0))
    return inst.with_fault(kind, hz=hz), (kind, None)


def _service(rng: np.random.Generator, elements: int, faults: tuple[str, ...]) -> str:
    if elements == 2:
        kinds = ["split", "network"]
    else:
        kinds = ["single", "split", "network"]
        if {"ct-wrong-phase", "l1-l2-swapped"} & set(faults):
            kinds = ["split", "network"]
    return kinds[int(rng.integers(len(kinds)))]


def random_case(rng: np.random.Generator) -> Case:
    """One random installation and what was made on it (see the module's docstring)."""
    model = MODELS[int(rng.integers(len(MODELS)))]
    elements = meter_spec(model, ct_rating="200A").elements
    draw = rng.random()
    if draw < 1 / 3:
        faults: tuple[str, ...] = ()
    elif draw < 0.9 or elements == 1:
        faults = (SINGLE_FAULTS[int(rng.integers(len(SINGLE_FAULTS)))],)
    else:
        faults = TWO_FAULTS[int(rng.integers(len(TWO_FAULTS)))]
    kind = _service(rng, elements, faults)
    if elements == 2 and ("neutral-missing" in faults):
        kind = "network"
    service = Service(kind, float(rng.uniform(*SUPPLY_V)), (50.0, 60.0)[int(rng.integers(2))])
    inst = _within_rating(Installation(model=model, ct_rating="200A", service=service,
                                       loads=_loads(rng, service, not faults)))
    if not faults:
        declared = (None, True)[int(rng.integers(2))] if any(ld.watts < 0 for ld in inst.loads) else None
        return Case(replace(inst, generation=declared), ())
    ct = ("CT1", "CT2")[int(rng.integers(elements))]
    injected = []
    for j, kind_j in enumerate(faults):
        inst, atom = _fault(rng, inst, kind_j, _other_ct(ct) if j == 0 and len(faults) == 2 else ct)
        injected.append(atom)
    return Case(inst, tuple(injected))


# --------------------------------------------------------------------------- judging
def named(diagnosis: Diagnosis, atom: Atom) -> bool:
    """Whether any finding names the fault (kind, subject) or lists it among its alternatives."""
    kind, subject = atom
    return any(f.explains(kind, subject) for f in diagnosis.findings)


@dataclass(frozen=True)
class Outcome:
    """One diagnosed case: its label, whether every injected fault was named, whether a
    fault was reported, and the kinds the diagnosis named (its top finding first)."""

    label: str
    correct_install: bool
    all_named: bool
    reported_fault: bool
    top: str

    @property
    def ok(self) -> bool:
        return (not self.reported_fault) if self.correct_install else self.all_named


def judge_case(case: Case) -> Outcome:
    d = diagnose_installation(case.installation)
    top = "no fault" if not d.findings else (d.findings[0].kind if d.faults else f"possible {d.findings[0].kind}")
    return Outcome(case.label, not case.injected, all(named(d, a) for a in case.injected), bool(d.faults), top)


def run_campaign(cases: int, seed: int = 0) -> list[Outcome]:
    """Diagnose ``cases`` random installations drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return [judge_case(random_case(rng)) for _ in range(cases)]


def confusion_table(outcomes: list[Outcome]) -> list[str]:
    """Injected fault × what the diagnosis put first, plus named/total per row."""
    rows = sorted({o.label for o in outcomes}, key=lambda s: (s != "none", s))
    cols = sorted({o.top for o in outcomes})
    counts = Counter((o.label, o.top) for o in outcomes)
    width = max(len(r) for r in rows) + 2
    head = " " * width + "".join(f"{c[:16]:>17}" for c in cols) + f"{'named/total':>14}"
    lines = [head]
    for r in rows:
        mine = [o for o in outcomes if o.label == r]
        ok = sum(o.ok for o in mine)
        lines.append(f"{r:<{width}}" + "".join(f"{counts[(r, c)] or '.':>17}" for c in cols) + f"{ok:>8}/{len(mine)}")
    return lines
