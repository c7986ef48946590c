"""Naming the fault by elimination (S11.3, S3.3): every wiring the measurements allow.

A *hypothesis* is a service (single, split or network), a set of wiring faults
(:data:`minimeter.sources.wiring.FAULT_KINDS`, applied by the project's own wiring
physics, :func:`~minimeter.sources.wiring.apply_fault`) and whether generation (PV
back-feed) is on the service. It predicts

* the terminal voltages, up to the supply's level and phase: one complex factor ``z``
  fitted to the measured voltages (the supply is ``z × 120 V``);
* the CT currents of any set of loads of power factor ≥ 0.5 lead or lag on L1–N, L2–N or
  L1–L2 (S3.3): the non-negative combinations of *basis loads* at the edges of that
  cone (:data:`CONE_DEG`), consuming — or, with generation, consuming and exporting.

A hypothesis is consistent when the measured voltages fit ``z × prediction`` and the
measured currents of the CTs carrying at least :data:`JUDGE_MIN_A` are a non-negative
combination of its basis loads' currents (:func:`nnls`). Currents below that are not
judged ("under 1 A: cannot tell"). The explanation is the consistent hypotheses with
the fewest faults (a supply outside the rated range counts as one, undeclared
generation as one, declared generation as none); when several remain, the measurements
cannot separate them and all are stated, the confidence split equally between them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from minimeter.meter.catalog import MeterSpec, meter_spec
from minimeter.sources.service import Load, Service
from minimeter.sources.wiring import (Fault, InvalidInstallation, Wiring, apply_fault, correct_cts,
                                      correct_terminals, ct_currents, terminal_voltages)

NOMINAL_V = 120.0            # hypotheses are built at this L–N voltage [V]
CONE_DEG = 65.0              # basis loads at ±this from their voltage: PF 0.5 (60°) with 5° of slack
JUDGE_MIN_A = 1.0            # a CT current below this is not judged [A] (the manual's 1 A, §3.9)
VOLTAGE_FIT = 0.02           # relative misfit of the voltages allowed (plus VOLTAGE_FIT_V)
VOLTAGE_FIT_V = 1.0          # [V]
CURRENT_FIT = 0.02           # relative misfit of the judged currents allowed (plus CURRENT_FIT_A)
CURRENT_FIT_A = 0.02         # [A]
BASIS_W = 1000.0             # power of a basis load at NOMINAL_V [W]

GENERATION = ("generation", "PV")
SUPPLY = ("supply-voltage", "supply L1")   # a supply out of range, seen on L1 (and L2)
Atom = tuple[str, str]       # (kind, subject), e.g. ('ct-reversed', 'CT2')


# --------------------------------------------------------------------------- non-negative least squares
def nnls(a: np.ndarray, b: np.ndarray, *, max_iter: int = 200) -> tuple[np.ndarray, float]:
    """min ‖a·x − b‖ over x ≥ 0 (Lawson–Hanson active set): (x, residual norm)."""
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    scale = max(float(np.abs(a).max(initial=0.0)) * max(float(np.abs(b).max(initial=0.0)), 1e-300), 1e-300)
    tol = 1e-12 * scale * max(m, n)
    w = a.T @ (b - a @ x)
    for _ in range(max_iter):
        if passive.all() or w[~passive].max(initial=-np.inf) <= tol:
            break
        passive[int(np.argmax(np.where(passive, -np.inf, w)))] = True
        for _ in range(max_iter):
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            bad = passive & (z <= 0)
            alpha = float(np.min(x[bad] / (x[bad] - z[bad])))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x, float(np.linalg.norm(a @ x - b))


# --------------------------------------------------------------------------- hypotheses
def _fundamental(signal) -> complex:
    """The rms fundamental phasor of a constant signal [V] or [A]."""
    return sum((c.amplitude / math.sqrt(2) * complex(math.cos(c.phase_rad), math.sin(c.phase_rad))
                for c in signal if c.order == 1), 0j)


def atom_of(fault: Fault) -> Atom:
    """(kind, subject) of a wiring fault."""
    subject = {"ct-reversed": "ct", "ct-wrong-phase": "ct", "ct-open": "ct", "voltage-open": "terminal"}.get(fault.kind)
    if subject is not None:
        return fault.kind, str(fault.get(subject))
    return fault.kind, {"l1-l2-swapped": "L1/L2", "neutral-missing": "N"}.get(fault.kind, "")


@dataclass(frozen=True, eq=False)
class Hypothesis:
    """A service, the faults made on the correct wiring, and what it predicts at
    NOMINAL_V: terminal voltages (e,), the basis loads' CT currents (e, m) and true
    powers (m,) [W] — consuming, then (with generation) exporting."""

    service: str
    faults: tuple[Fault, ...]
    generation: bool
    volts: np.ndarray
    basis: np.ndarray
    basis_w: np.ndarray

    @property
    def atoms(self) -> frozenset[Atom]:
        out = {atom_of(f) for f in self.faults}
        return frozenset(out | ({GENERATION} if self.generation else set()))


def _fault_menu(elements: int, service: str) -> list[Fault]:
    cts = [f"CT{k + 1}" for k in range(elements)]
    menu = [Fault("ct-reversed", (("ct", c),)) for c in cts]
    if service != "single":
        menu += [Fault("ct-wrong-phase", (("ct", c),)) for c in cts] + [Fault("l1-l2-swapped")]
    menu += [Fault("voltage-open", (("terminal", f"L{k + 1}"),)) for k in range(elements)]
    if service == "network" or elements == 1:          # on split phase a missing neutral changes nothing seen
        menu.append(Fault("neutral-missing"))
    menu += [Fault("ct-open", (("ct", c),)) for c in cts]
    return menu


def _compatible(pair: tuple[Fault, ...]) -> bool:
    """Two faults that are not one thing twice (both on one CT, both on one terminal)."""
    subjects = [atom_of(f)[1] for f in pair if f.kind.startswith("ct-")]
    return len(subjects) == len(set(subjects))


def _basis_loads(service: Service) -> list[Load]:
    pf = math.cos(math.radians(CONE_DEG))
    connections = service.legs + (("L1-L2",) if len(service.legs) == 2 else ())
    return [Load(BASIS_W, pf, leading, c) for c in connections for leading in (False, True)]


def _predict(spec: MeterSpec, service: Service, faults: tuple[Fault, ...],
             loads: list[Load]) -> tuple[np.ndarray, np.ndarray]:
    """Terminal voltages (e,) and each load's CT currents (e, m) under ``faults``."""
    e = spec.elements
    columns = []
    volts = None
    for load in loads:
        wiring = Wiring(service, correct_terminals(e), correct_cts(e), (load,))
        for fault in faults:
            wiring = apply_fault(fault, wiring, spec)
        if volts is None:
            volts = np.array([_fundamental(s) for s in terminal_voltages(wiring, e)])
        columns.append([_fundamental(s) for s in ct_currents(wiring, spec)])
    return volts, np.array(columns, dtype=complex).T


@lru_cache(maxsize=4)
def hypotheses(elements: int) -> tuple[Hypothesis, ...]:
    """Every hypothesis for a meter of ``elements``: each service it can sit on, no fault,
    one fault or two, without and with generation."""
    spec = meter_spec("7B" if elements == 2 else "MO", ct_rating="200A")
    out = []
    for kind in (("split", "network") if elements == 2 else ("single", "split", "network")):
        service = Service(kind, NOMINAL_V)
        loads = _basis_loads(service)
        watts = np.array([ld.watts for ld in loads])
        menu = _fault_menu(elements, kind)
        sets = [()] + [(f,) for f in menu] + [p for p in itertools.combinations(menu, 2) if _compatible(p)]
        for faults in sets:
            try:
                volts, basis = _predict(spec, service, faults, loads)
            except InvalidInstallation:
                continue
            out.append(Hypothesis(kind, faults, False, volts, basis, watts))
            out.append(Hypothesis(kind, faults, True, volts, np.hstack((basis, -basis)), np.hstack((watts, -watts))))
    return tuple(out)


# --------------------------------------------------------------------------- judging one
@dataclass(frozen=True, eq=False)
class Fit:
    """A consistent hypothesis: its atoms (supply included when out of range), the supply
    it implies [V L–N], its cost, and what fixes the true power (:attr:`true_w`): the
    judged currents' basis (rows) and the loads fitted to them."""

    hypothesis: Hypothesis
    atoms: frozenset[Atom]
    supply_v: float                          # the L–N supply it implies [V]
    cost: int
    supply_range_v: tuple[float, float]      # the meter's rated L–N supply [V]
    design: np.ndarray                       # (judged rows, basis loads), real
    loads: np.ndarray                        # the fitted basis-load amounts (≥ 0)
    scale: float                             # |z|: measured over nominal voltage

    @property
    def true_w(self) -> float | None:
        """The true power this reading implies [W]; None when the measurements leave it open."""
        return _true_power(self.design, self.hypothesis.basis_w * self.scale, self.loads)


def _true_power(a: np.ndarray, weights: np.ndarray, x: np.ndarray) -> float | None:
    """weights·x when it is fixed by the judged currents (weights in a's row space)."""
    if a.shape[0] == 0:
        return None
    y, *_ = np.linalg.lstsq(a.T, weights, rcond=None)
    if np.linalg.norm(a.T @ y - weights) > 1e-6 * max(np.linalg.norm(weights), 1.0):
        return None
    return float(weights @ x)


def judge(h: Hypothesis, volts: np.ndarray, amps: np.ndarray, judged: np.ndarray, spec: MeterSpec,
          generation: bool | None) -> Fit | None:
    """The :class:`Fit` of ``h`` to measured voltages and currents (e,) [V], [A], judging
    the currents where ``judged``; None when inconsistent or excluded."""
    if generation is False and h.generation:
        return None
    norm_p = float(np.vdot(h.volts, h.volts).real)
    if norm_p == 0.0:
        return None
    z = complex(np.vdot(h.volts, volts) / norm_p)
    if np.linalg.norm(volts - z * h.volts) > VOLTAGE_FIT * np.linalg.norm(volts) + VOLTAGE_FIT_V or abs(z) == 0:
        return None
    rotated = h.basis[judged] * (z / abs(z))
    a = np.vstack((rotated.real, rotated.imag))
    b = np.concatenate((amps[judged].real, amps[judged].imag))
    if a.shape[0]:
        x, residual = nnls(a, b)
        if residual > CURRENT_FIT * np.linalg.norm(b) + CURRENT_FIT_A:
            return None
    else:
        x = np.zeros(a.shape[1])
    supply_v = abs(z) * NOMINAL_V
    atoms = set(h.atoms)
    if not spec.supply_min_v <= supply_v <= spec.supply_max_v:
        atoms.add(SUPPLY if spec.elements == 1 else (SUPPLY[0], "supply L1, L2"))
    cost = len(atoms) - (1 if h.generation and generation else 0)
    return Fit(h, frozenset(atoms), supply_v, cost, (spec.supply_min_v, spec.supply_max_v), a, x, abs(z))


def consistent_fits(volts: np.ndarray, amps: np.ndarray, spec: MeterSpec, generation: bool | None) -> list[Fit]:
    """Every consistent hypothesis up to one fault more than the cheapest, cheapest first
    (hypotheses are tried by their number of faults; a fit costs at least that)."""
    judged = np.abs(amps) >= JUDGE_MIN_A
    fits: list[Fit] = []
    for h in sorted(hypotheses(spec.elements), key=lambda h: _base_cost(h, generation)):
        if fits and _base_cost(h, generation) > min(f.cost for f in fits) + 1:
            break
        fit = judge(h, volts, amps, judged, spec, generation)
        if fit is not None:
            fits.append(fit)
    return sorted(fits, key=lambda f: f.cost)


def _base_cost(h: Hypothesis, generation: bool | None) -> int:
    return len(h.faults) + (1 if h.generation and not generation else 0)


# --------------------------------------------------------------------------- findings
NO_VOLTAGE_V = 20.0            # a terminal below this reads "no voltage" [V rms]
FAULT_CONFIDENCE = 0.5         # findings at or above this (and not benign) are faults; below, possibilities
CERTAIN = 0.9                  # confidence of a fault every consistent explanation shares

_LABEL = {"ct-reversed": "{s} reversed", "ct-wrong-phase": "{s} on the other leg", "l1-l2-swapped": "L1/L2 swapped",
          "voltage-open": "{s} open", "neutral-missing": "neutral missing", "ct-open": "{s} open",
          "ct-shorted": "{s} shorted", "generation": "generation (PV back-feed)",
          "supply-voltage": "supply out of range", "over-current": "{s} over-current", "frequency": "frequency"}


def label(alternative: str, subject: str = "") -> str:
    """'ct-reversed:CT1+generation:PV' → 'CT1 reversed + generation (PV back-feed)'."""
    parts = []
    for piece in alternative.split("+"):
        kind, _, s = piece.partition(":")
        parts.append(_LABEL.get(kind, kind).format(s=s or subject))
    return " + ".join(parts)


@dataclass(frozen=True)
class Finding:
    """A named fault: ``kind`` (one of FAULT_KINDS, ``'generation'``, or ``'wiring'`` for
    something odd that is none of them), ``subject`` (CT2, L1, …), a message, a confidence
    in [0, 1], the percent registration it leaves (None when the measurements cannot
    tell), ``alternatives`` that give the very same measurements (``'kind:subject'``,
    ``'+'`` joining faults that come together) with their shares of the confidence,
    and ``benign``: an explanation without any fault (generation, no load) fits too."""

    kind: str
    subject: str
    message: str
    confidence: float
    registration_percent: float | None = None
    alternatives: tuple[str, ...] = ()
    alternative_confidences: tuple[float, ...] = ()
    benign: bool = False

    @property
    def is_fault(self) -> bool:
        """Not benign, and confident — counting the alternatives, all faults, it shares with."""
        return not self.benign and self.confidence + sum(self.alternative_confidences) >= FAULT_CONFIDENCE

    def explains(self, kind: str, subject: str | None = None) -> bool:
        """Whether this finding names ``kind`` and, when given, ``subject`` — itself or
        through an alternative (``'kind'`` with this finding's subject, or
        ``'kind:subject'``, or one of several joined by ``'+'``)."""
        candidates = [(self.kind, self.subject)]
        for alt in self.alternatives:
            for piece in alt.split("+"):
                k, _, s = piece.partition(":")
                candidates.append((k, s or self.subject))
        if ("neutral-missing", "N") in candidates:       # one fault: the N terminal not connected
            candidates.append(("voltage-open", "N"))
        return any(k == kind and (subject is None or subject in s) for k, s in candidates)

    def line(self) -> str:
        share = "" if self.registration_percent is None else f" (registering {self.registration_percent:.0f} % of true consumption)"
        alts = [label(a, self.subject) for a in self.alternatives]
        # a finding with shares states its alternatives in its message
        alt = f" [same measurements: {', '.join(alts)}]" if alts and not self.alternative_confidences else ""
        return f"{self.message}{share} — confidence {self.confidence:.0%}{alt}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "message": self.message, "confidence": self.confidence,
                "registration_percent": self.registration_percent, "alternatives": list(self.alternatives),
                "alternative_confidences": list(self.alternative_confidences), "benign": self.benign,
                "is_fault": self.is_fault}


def _encode(atoms) -> str:
    return "+".join(f"{k}:{s}" for k, s in sorted(atoms))


_SAME_AS = {"ct-open": ("ct-shorted",), "neutral-missing": ("voltage-open:N",)}
_ORDER = ("supply-voltage", "voltage-open", "neutral-missing", "l1-l2-swapped", "ct-wrong-phase", "ct-reversed",
          "ct-open", "generation")


def _sorted_atoms(atoms) -> list[Atom]:
    return sorted(atoms, key=lambda a: (_ORDER.index(a[0]) if a[0] in _ORDER else 99, a[1]))


def _atom_text(atom: Atom, meas, fit: Fit) -> str:
    """What the measurements show of one fault."""
    kind, subject = atom
    if kind in ("ct-reversed", "ct-wrong-phase", "ct-open"):
        k = int(subject[2:]) - 1
        a, p = meas.angle_deg(k), meas.power_w(k)
        seen = f"element {k + 1} angle {a:+.0f}°, power {p:+.0f} W" if a is not None else f"{abs(meas.amps[k]):.2f} A"
        if kind == "ct-reversed":
            return f"CT{k + 1} reversed ({seen})"
        if kind == "ct-open":
            return f"CT{k + 1} open or shorted (reads {abs(meas.amps[k]):.2f} A)"
        same = meas.elements == 2 and abs(meas.amps[0] - meas.amps[1]) <= 0.02 * max(abs(i) for i in meas.amps)
        return (f"CT{k + 1} on L{2 - k}" + (": both CTs carry the same current" if same else "") + f" ({seen}; "
                f"L{k + 1}'s own current is not measured)")
    if kind == "l1-l2-swapped":
        beta = meas.v2_to_v1_deg
        return ("L1 and L2 swapped on the voltage terminals" + ("" if beta is None else f" (V2–V1 {beta:+.0f}°)")
                if meas.elements == 2 else "the L1 terminal on the other leg (L2)")
    if kind == "voltage-open":
        k = int(subject[1:]) - 1
        return f"{subject} terminal open ({subject}–N reads {meas.volts_rms[k]:.1f} V)"
    if kind == "neutral-missing":
        v = " and ".join(f"{x:.1f} V" for x in meas.volts_rms)
        return (f"neutral missing on a 120/208 V network (L1–N and L2–N read {v}, exactly opposite: half of the "
                f"{fit.supply_v * math.sqrt(3):.0f} V between the lines; supply {fit.supply_v:.0f} V L–N)")
    if kind == "generation":
        out = [f"element {k + 1} {meas.power_w(k):+.0f} W" for k in range(meas.elements)
               if meas.power_w(k) is not None and meas.power_w(k) < 0]
        return "generation (PV back-feed) exporting" + (f" ({', '.join(out)})" if out else "")
    if kind == "supply-voltage":
        lo, hi = fit.supply_range_v
        low = fit.supply_v < lo
        return (f"supply {fit.supply_v:.1f} V L–N outside the rated {lo:g}–{hi:g} V: "
                + ("meter unpowered, Power LED off, register kept" if low else "over-voltage, Power LED off, still measuring"))
    return f"{kind} {subject}"


def _registration(fits: list[Fit], registered_w: float) -> tuple[float | None, str]:
    """The registration the fits imply: one figure, or one per service when they differ."""
    by_service: dict[str, float | None] = {}
    for f in fits:
        pct = None if f.true_w is None or f.true_w <= 0 else 100.0 * max(registered_w, 0.0) / f.true_w
        by_service.setdefault(f.hypothesis.service, pct)
    values = {None if v is None else round(v, 1) for v in by_service.values()}
    if len(values) == 1:
        return next(iter(by_service.values())), ""
    names = {"split": "on a 120/240 V split phase", "network": "on a 120/208 V network", "single": "on a 2-wire service"}
    known = [f"{v:.1f} % {names[s]}" for s, v in by_service.items() if v is not None]
    return None, (f" (registering {' or '.join(known)} — the measurements do not show which service)" if known else "")


def _options(fits: list[Fit], declared: bool | None) -> dict[frozenset, list[Fit]]:
    """The distinct explanations (fault sets), each with its fits; declared generation is not a fault."""
    out: dict[frozenset, list[Fit]] = {}
    for f in fits:
        atoms = f.atoms - {GENERATION} if declared else f.atoms
        out.setdefault(frozenset(atoms), []).append(f)
    return out


GENERATION_HINT = "if the site has PV, declare it (installation key generation = true, or --generation)"


def _option_text(atoms, fits: list[Fit], meas, registered_w: float, share: float) -> str:
    text = " and ".join(_atom_text(a, meas, fits[0]) for a in _sorted_atoms(atoms)) if atoms else "no fault"
    if atoms - {GENERATION}:
        pct, by_service = _registration(fits, registered_w)
        text += by_service if by_service else ("" if pct is None else f", registering {pct:.0f} %")
    return f"{text} — {share:.0%}"


def _ambiguity(options: dict[frozenset, list[Fit]], common: frozenset, meas, registered_w: float) -> Finding:
    """One finding for the explanations the measurements cannot separate, equal shares:
    the message states each with its share and registration; a reading without a fault
    among them (generation) makes the finding a possibility, not a fault."""
    rest = {atoms - common: fits for atoms, fits in options.items()}
    ranked = sorted(rest, key=lambda r: (bool(r - {GENERATION}), [(_ORDER.index(a[0]), a[1]) for a in _sorted_atoms(r)]))
    share = 1.0 / len(ranked)
    top_atoms = _sorted_atoms(ranked[0]) or [("none", "")]
    kind, subject = top_atoms[0]
    benign = any(not (r - {GENERATION}) for r in ranked)
    pct = None if benign else _registration(rest[ranked[0]], registered_w)[0]
    texts = [_option_text(r, rest[r], meas, registered_w, share) for r in ranked]
    hint = f" ({GENERATION_HINT})" if any(GENERATION in r for r in ranked) else ""
    alts = [_encode(top_atoms[1:])] if len(top_atoms) > 1 else []
    return Finding(kind, subject, f"the measurements cannot tell apart: {'; or '.join(texts)}{hint}", share, pct,
                   tuple(alts + [_encode(r) or "none" for r in ranked[1:]]),
                   tuple([share] * len(alts) + [share] * (len(ranked) - 1)), benign)


def _common_finding(atom: Atom, fits: list[Fit], meas, registered_w: float, only: bool) -> Finding:
    if atom == GENERATION:
        return Finding(*atom, f"{_atom_text(atom, meas, fits[0])}: not a fault if the site has PV — {GENERATION_HINT}",
                       CERTAIN, None, (), (), True)
    pct, by_service = _registration(fits, registered_w) if only else (None, "")
    return Finding(atom[0], atom[1], _atom_text(atom, meas, fits[0]) + by_service, CERTAIN, pct,
                   _SAME_AS.get(atom[0], ()))


def _small_currents(meas) -> list[Finding]:
    """CTs whose current is too small to judge, on live voltages. With no current judged
    at all, swapped voltage terminals cannot be seen either (only the currents' angles
    show them on a single element or on split phase)."""
    small = [k for k in range(meas.elements) if abs(meas.amps[k]) < JUDGE_MIN_A]
    swapped = ("l1-l2-swapped:L1/L2",) if len(small) == meas.elements else ()
    out = []
    for k in small:
        out.append(Finding("ct-open", f"CT{k + 1}",
                           f"CT{k + 1} reads {abs(meas.amps[k]):.2f} A — under {JUDGE_MIN_A:g} A: cannot tell whether "
                           f"CT{k + 1} is reversed, on the wrong leg, open or shorted, or L{k + 1} has little load"
                           + (", nor whether the voltage terminals are swapped" if swapped else ""),
                           0.3, None, ("ct-shorted", "ct-reversed", "ct-wrong-phase") + swapped, (), True))
    return out


def _hidden_neutral(fits: list[Fit], cheapest: list[Fit], meas, registered_w: float) -> list[Finding]:
    """A missing neutral on a 120/208 V network reads like a split phase at 90–119 V (L1–N
    and L2–N exactly opposite, in range): when the cheapest reading lacks it, the readings
    with it (at most one fault more) are stated as a possibility."""
    nm = ("neutral-missing", "N")
    if any(nm in f.atoms for f in cheapest):
        return []
    judged = {f"CT{k + 1}" for k in range(meas.elements) if abs(meas.amps[k]) >= JUDGE_MIN_A}
    cost = cheapest[0].cost + 1
    group = [f for f in fits if f.cost <= cost and nm in f.atoms and GENERATION not in f.atoms
             and all(a[1] in judged or not a[0].startswith("ct-") for a in f.atoms)]
    if not group:
        return []
    options = _options(group, None)
    texts = [_option_text(atoms, g, meas, registered_w, 1.0) .rsplit(" — ", 1)[0] for atoms, g in options.items()]
    return [Finding(*nm, "if the service is a 120/208 V network, the same measurements read: " + "; or ".join(texts),
                    0.2, None, ("voltage-open:N",) + tuple(_encode(a - {nm}) for a in options if a - {nm}), (), True)]


def _network_only(fits: list[Fit], cheapest: list[Fit], meas, registered_w: float) -> list[Finding]:
    """A single element whose current is more than 65° from its voltage is correct only
    on a 120/208 V network with a 208 V load through the CT: the wiring faults that read
    the same (one more fault) are stated as a possibility."""
    if meas.elements != 1 or cheapest[0].cost != 0 or any(f.hypothesis.service != "network" for f in cheapest):
        return []
    group = [f for f in fits if f.cost == 1 and GENERATION not in f.atoms and abs(meas.amps[0]) >= JUDGE_MIN_A]
    options = _options(group, None)
    if not options:
        return []
    share = 1.0 / (len(options) + 1)
    texts = [f"no fault, a 208 V load through CT1 on a 120/208 V network — {share:.0%}"]
    texts += [_option_text(atoms, g, meas, registered_w, share) for atoms, g in options.items()]
    first = _sorted_atoms(next(iter(options)))[0]
    return [Finding(*first, f"element 1 angle {meas.angle_deg(0):+.0f}°: the measurements cannot tell apart: "
                    + "; or ".join(texts), share, None, tuple(_encode(a) for a in list(options)[1:]) + ("none",),
                    (share,) * len(options), True)]


def explain(meas, spec: MeterSpec, registered_w: float, generation: bool | None) -> tuple[list[Finding], list[str]]:
    """The findings and notes from powered, unclipped measurements (at least one live
    voltage): see the module's docstring."""
    volts = np.array(meas.volts, dtype=complex)
    amps = np.array(meas.amps, dtype=complex)
    fits = consistent_fits(volts, amps, spec, generation)
    small = _small_currents(meas)
    if not fits:
        angles = ", ".join("—" if meas.angle_deg(k) is None else f"{meas.angle_deg(k):+.0f}°" for k in range(meas.elements))
        return [Finding("wiring", "L1/L2/N", f"the measurements fit no wiring with one or two faults and loads of "
                        f"PF ≥ 0.5 (element angles {angles}): very reactive loads (PF below 0.5), or an unusual "
                        "wiring — check which conductors are landed on L1, L2 and N and through each CT", 0.4)] + small, []
    cheapest = [f for f in fits if f.cost == fits[0].cost]
    notes = [_service_note(cheapest, meas)]
    options = _options(cheapest, generation)
    hidden = _hidden_neutral(fits, cheapest, meas, registered_w) + _network_only(fits, cheapest, meas, registered_w)
    if fits[0].cost == 0 or options.keys() == {frozenset()}:
        return small + hidden, notes
    common = frozenset.intersection(*options.keys())
    findings = [_common_finding(a, cheapest, meas, registered_w, len(options) == 1 and len(common) == 1)
                for a in _sorted_atoms(common)]
    if len(options) > 1:
        findings.append(_ambiguity(options, common, meas, registered_w))
    elif len(common) > 1:
        pct, text = _registration(cheapest, registered_w)
        findings = [replace(f, registration_percent=pct) for f in findings[:1]] + findings[1:]
    return findings + small + hidden, notes


def _service_note(fits: list[Fit], meas) -> str:
    services = sorted({f.hypothesis.service for f in fits}, key=("single", "split", "network").index)
    names = {"single": "1-phase 2-wire", "split": "120/240 V split phase", "network": "120/208 V network"}
    beta = meas.v2_to_v1_deg
    seen = "" if beta is None else f" (V2–V1 {beta:+.0f}°)"
    if len(services) == 1:
        return f"service: {names[services[0]]}{seen}"
    return f"service: {' or '.join(names[s] for s in services)} — the measurements do not tell which{seen}"
