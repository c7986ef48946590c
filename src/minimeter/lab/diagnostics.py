"""Installation testing, troubleshooting and fault naming (SPEC §11).

Three things, each from what the meter measures and never from the installation file:

* :func:`check_installation` — the manual's §3.9 "Testing the Installation": supply
  voltage per leg against the maximum, the Power LED, the reverse phase LED (with its
  ≥ 1 A rule) and the Load LED's 50 % duty cycle, each a :class:`CheckLine`;
* :data:`FAQ_PROBLEMS` and :func:`troubleshoot` — the manual's §5 Troubleshooting/FAQ,
  its four problems and their checklists, quoted word for word, chosen from what a
  person sees;
* :func:`name_faults` — beyond the manual (S11.3): from per-element fundamental phasors
  (:func:`fundamental_phasors`, a least-squares fit at the tracked line frequency over
  whole cycles), name the fault, the CT or terminal, a confidence, and the registration
  it costs.

The meter is fed through :mod:`minimeter.drive` (samples for :func:`measure`, the phasor
path for :func:`check_installation`). An input the meter flags clipped (its ``clipped``
events, :class:`ClippedInput`) gives no measured figure: :class:`Measurements` withholds
its rms, phasor and power — and the line frequency when a voltage clipped — and says
what is known instead (its peak reached the input range); the wiring is then not judged.

Angles are in degrees, ``∠I − ∠V`` wrapped to (−180°, 180°]: negative means the current
lags its voltage. Phasors are rms [V], [A].
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from minimeter.drive import feed_samples, feed_source
from minimeter.errors import InvalidSamples
from minimeter.lab.averaging import average_cycles
from minimeter.meter.catalog import MeterSpec
from minimeter.meter.core import FREQUENCY_TOLERANCE, Meter, Update
from minimeter.meter.snapshot import EventKind

# --------------------------------------------------------------------------- thresholds
NO_VOLTAGE_V = 20.0            # a terminal below this reads "no voltage" [V rms]
SIGNIFICANT_A = 0.2            # a current whose angle is judged [A rms]
SAME_CURRENT_FRACTION = 0.02   # |I1 − I2| below this × max|I|: both CTs on one conductor
CONE_MARGIN_DEG = 5.0          # slack around the angles a PF ≥ 0.5 load can give
NETWORK_NEUTRAL_FACTOR = math.sqrt(3) / 2    # a missing neutral on 120/208 V: 104 V per terminal
FAULT_CONFIDENCE = 0.5         # findings at or above this are faults; below, possibilities
NOMINAL_FIT_HZ = 60.0          # phasors are fitted at this frequency when none was measured [Hz]


# --------------------------------------------------------------------------- phasors
def fundamental_phasors(samples: np.ndarray, sample_rate_hz: float, frequency_hz: float,
                        max_order: int = 15) -> np.ndarray:
    """The rms phasor of the fundamental of each row of ``samples`` (channels, n).

    A least-squares fit of DC plus cos/sin at orders 1 … ``max_order`` (those below
    Nyquist) of ``frequency_hz`` [Hz]: exact for a periodic signal over any window of
    whole or partial cycles, so the sample rate need not be a multiple of the line
    frequency. The phase is relative to the window's first sample. Returns complex
    (channels,) with ``x(t) ≈ √2·|X|·cos(2πf·t + ∠X)`` [same unit as the samples].
    """
    x = np.atleast_2d(np.asarray(samples, dtype=float))
    n = x.shape[1]
    if n < 8:
        raise InvalidSamples(f"a phasor needs at least 8 samples, got {n}")
    if not (sample_rate_hz > 0 and frequency_hz > 0):
        raise InvalidSamples("sample rate and frequency must be positive")
    orders = [h for h in range(1, max_order + 1) if h * frequency_hz < 0.45 * sample_rate_hz]
    orders = orders[: max(1, (n - 1) // 2)]
    t = np.arange(n) / sample_rate_hz
    cols = [np.ones(n)]
    for h in orders:
        w = 2.0 * math.pi * h * frequency_hz * t
        cols += [np.cos(w), np.sin(w)]
    design = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(design, x.T, rcond=None)
    a, b = coef[1], coef[2]          # x ≈ a·cos + b·sin = Re((a − jb)·e^{jωt})
    return (a - 1j * b) / math.sqrt(2.0)


def _wrap_deg(angle: float) -> float:
    """Wrapped to (−180°, 180°]."""
    a = (angle + 180.0) % 360.0 - 180.0
    return 180.0 if a == -180.0 else a


def _angle_deg(z: complex) -> float:
    return math.degrees(cmath.phase(z))


# --------------------------------------------------------------------------- measurements
@dataclass(frozen=True)
class ClippedInput:
    """An input the meter saw at or beyond its full scale (the meter's own ``clipped``
    event): its peak reached at least ``full_scale``, so no figure from its samples is a
    measurement."""

    quantity: str          # 'voltage' or 'current'
    element: int           # 1-based
    full_scale: float      # the meter's input range [V peak] or [A peak]

    @property
    def name(self) -> str:
        """``V1``, ``I2``, …"""
        return f"{'V' if self.quantity == 'voltage' else 'I'}{self.element}"

    @property
    def bound(self) -> str:
        """What is known of it: a lower bound on its peak."""
        return f"peak ≥ {self.full_scale:.1f} {'V' if self.quantity == 'voltage' else 'A'}"


@dataclass(frozen=True)
class Measurements:
    """What the meter measured over a short window: per element the fundamental voltage
    and current phasors [V], [A] (rms), the true rms values over whole cycles, and the
    tracked line frequency [Hz] (None when no voltage could be tracked).

    Figures from a clipped input (``clipped``) are withheld: its phasor and rms are
    None, and so are the power and angles that need them; the frequency is None when a
    voltage input clipped (the line cycles are cut on the voltages)."""

    volts: tuple[complex | None, ...]
    amps: tuple[complex | None, ...]
    frequency_hz: float | None
    volts_rms: tuple[float | None, ...] = ()
    amps_rms: tuple[float | None, ...] = ()
    clipped: tuple[ClippedInput, ...] = ()

    def __post_init__(self) -> None:
        if not self.volts_rms:
            object.__setattr__(self, "volts_rms", tuple(None if v is None else abs(v) for v in self.volts))
        if not self.amps_rms:
            object.__setattr__(self, "amps_rms", tuple(None if i is None else abs(i) for i in self.amps))

    @property
    def elements(self) -> int:
        return len(self.volts)

    def clipped_input(self, quantity: str, k: int) -> ClippedInput | None:
        """The clipped ``quantity`` ('voltage' or 'current') of element k (0-based), if it clipped."""
        return next((c for c in self.clipped if c.quantity == quantity and c.element == k + 1), None)

    def power_w(self, k: int) -> float | None:
        """Fundamental active power of element k (0-based) [W]; None if withheld."""
        v, i = self.volts[k], self.amps[k]
        return None if v is None or i is None else float((v * i.conjugate()).real)

    @property
    def net_power_w(self) -> float | None:
        """Σ elements' fundamental active power [W] (S4.3); None if any is withheld."""
        powers = [self.power_w(k) for k in range(self.elements)]
        return None if None in powers else sum(powers)

    def angle_deg(self, k: int) -> float | None:
        """∠I − ∠V of element k [°] (negative: lagging), None without V or I."""
        v, i = self.volts[k], self.amps[k]
        if v is None or i is None or abs(v) < NO_VOLTAGE_V or abs(i) == 0:
            return None
        return _wrap_deg(_angle_deg(i) - _angle_deg(v))

    @property
    def v2_to_v1_deg(self) -> float | None:
        """∠V2 − ∠V1 [°]: 180° on split phase, −120° on a 120/208 V network."""
        if self.elements < 2 or None in self.volts[:2] or min(abs(v) for v in self.volts[:2]) < NO_VOLTAGE_V:
            return None
        return _wrap_deg(_angle_deg(self.volts[1]) - _angle_deg(self.volts[0]))

    def _figure(self, quantity: str, k: int, width: int, digits: int) -> str:
        clip = self.clipped_input(quantity, k)
        if clip is not None:
            return f"clipped ({clip.bound})"
        z = self.volts[k] if quantity == "voltage" else self.amps[k]
        return f"{abs(z):{width}.{digits}f} {'V' if quantity == 'voltage' else 'A'}"

    def lines(self) -> list[str]:
        """One line per element, the voltage angle, the frequency, and what clipped."""
        out = []
        for k in range(self.elements):
            a, p = self.angle_deg(k), self.power_w(k)
            angle = "—" if a is None else f"{a:+7.1f}°"
            power = "—" if p is None else f"{p:+10.1f} W"
            out.append(f"element {k + 1}: V {self._figure('voltage', k, 6, 1)}   I {self._figure('current', k, 8, 2)}"
                       f"   angle I–V {angle}   P {power}")
        beta = self.v2_to_v1_deg
        if beta is not None:
            out.append(f"angle V2–V1 {beta:+.1f}°")
        out.append("frequency " + (f"— (not measured; phasors fitted at {NOMINAL_FIT_HZ:g} Hz)"
                                   if self.frequency_hz is None else f"{self.frequency_hz:.2f} Hz"))
        if self.clipped:
            out.append(f"clipped: {', '.join(c.name for c in self.clipped)} at or beyond the meter's input range — "
                       "figures from their samples are withheld, not measured"
                       + ("; the line frequency too (cycles are cut on the voltages)"
                          if any(c.quantity == "voltage" for c in self.clipped) else ""))
        return out


    def as_dict(self) -> dict:
        """Plain numbers for JSON: withheld figures are None, the clipped inputs listed."""
        return {
            "volts_rms": list(self.volts_rms), "amps_rms": list(self.amps_rms),
            "angle_deg": [self.angle_deg(k) for k in range(self.elements)],
            "power_w": [self.power_w(k) for k in range(self.elements)],
            "v2_to_v1_deg": self.v2_to_v1_deg, "frequency_hz": self.frequency_hz,
            "clipped": [{"input": c.name, "quantity": c.quantity, "element": c.element, "peak_at_least": c.full_scale}
                        for c in self.clipped],
        }


def clipped_inputs(meter: Meter, updates: Iterable[Update]) -> tuple[ClippedInput, ...]:
    """The inputs ``meter`` flagged clipped in ``updates`` (its ``clipped`` events), in order."""
    seen = {(str(ev.quantity), ev.element) for u in updates for ev in u.events if ev.kind == EventKind.CLIPPED}
    full = {"voltage": meter.full_scale_v, "current": meter.full_scale_a}
    return tuple(ClippedInput(q, int(e), full[q]) for q, e in sorted(seen, key=lambda x: (x[0] != "voltage", x[1])))


def _withheld(values: Sequence, quantity: str, clipped: tuple[ClippedInput, ...]) -> tuple:
    bad = {c.element - 1 for c in clipped if c.quantity == quantity}
    return tuple(None if k in bad else x for k, x in enumerate(values))


def measure(spec: MeterSpec, volts: np.ndarray, amps: np.ndarray, sample_rate_hz: float,
            *, cycles: int = 4) -> Measurements:
    """Measure a window of samples (elements, n) as the meter does: a :class:`Meter`,
    fed through :func:`minimeter.drive.feed_samples`, tracks the line frequency and
    gives the line cycles, averaged over the whole ones (:mod:`minimeter.lab.averaging`);
    the last ``cycles`` whole cycles give the fundamental phasors
    (:func:`fundamental_phasors`). Figures from the inputs the meter flags clipped are
    withheld (see :class:`Measurements`)."""
    v = np.atleast_2d(np.asarray(volts, float))
    a = np.atleast_2d(np.asarray(amps, float))
    meter = Meter(spec)
    updates = list(feed_samples(meter, [(v, a)], sample_rate_hz))
    clipped = clipped_inputs(meter, updates)
    averages = average_cycles((u.cycles for u in updates), spec.elements)
    if averages.whole_cycles:
        volts_rms, amps_rms = averages.volts_rms, averages.amps_rms
        frequency = averages.frequency_hz
    else:
        volts_rms, amps_rms = np.sqrt(np.mean(v ** 2, axis=1)), np.sqrt(np.mean(a ** 2, axis=1))
        frequency = None
    if any(c.quantity == "voltage" for c in clipped):
        frequency = None
    f_fit = frequency if frequency is not None else NOMINAL_FIT_HZ
    n = min(v.shape[1], int(round(cycles * sample_rate_hz / f_fit)))
    vz = fundamental_phasors(v[:, -n:], sample_rate_hz, f_fit)
    iz = fundamental_phasors(a[:, -n:], sample_rate_hz, f_fit)
    return Measurements(_withheld([complex(z) for z in vz], "voltage", clipped),
                        _withheld([complex(z) for z in iz], "current", clipped), frequency,
                        _withheld([float(x) for x in volts_rms], "voltage", clipped),
                        _withheld([float(x) for x in amps_rms], "current", clipped), clipped)


# --------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding:
    """A named fault: ``kind`` (one of installation.FAULT_KINDS, or ``'wiring'`` for
    something odd that is none of them), ``subject`` (CT2, L1, …), a message, a confidence in [0, 1], the percent registration it leaves
    (None when the measurements cannot tell), and ``alternatives``: other faults that
    give the very same measurements."""

    kind: str
    subject: str
    message: str
    confidence: float
    registration_percent: float | None = None
    alternatives: tuple[str, ...] = ()

    def explains(self, kind: str, subject: str | None = None) -> bool:
        """Whether this finding names ``kind`` and, when given, ``subject`` — itself or
        through an alternative (``'kind'`` with this finding's subject, or
        ``'kind:subject'``)."""
        candidates = [(self.kind, self.subject)]
        for alt in self.alternatives:
            k, _, s = alt.partition(":")
            candidates.append((k, s or self.subject))
        return any(k == kind and (subject is None or subject in s) for k, s in candidates)

    def line(self) -> str:
        share = "" if self.registration_percent is None else f" (registering {self.registration_percent:.0f} % of true consumption)"
        alts = [" ".join(reversed(a.split(":"))) if ":" in a else f"{self.subject} {a}" for a in self.alternatives]
        alt = f" [same measurements: {', '.join(alts)}]" if alts else ""
        return f"{self.message}{share} — confidence {self.confidence:.0%}{alt}"


@dataclass(frozen=True)
class Diagnosis:
    """The findings, most confident first, and the measurements they came from."""

    findings: tuple[Finding, ...]
    measurements: Measurements
    notes: tuple[str, ...] = field(default=())

    @property
    def faults(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.confidence >= FAULT_CONFIDENCE)

    @property
    def possible(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.confidence < FAULT_CONFIDENCE)

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def as_dict(self) -> dict:
        """Plain values for JSON: the faults, the possibilities, the measurements, the notes."""
        return {"faults": [f.__dict__ for f in self.faults], "possible": [f.__dict__ for f in self.possible],
                "measurements": self.measurements.as_dict(), "notes": list(self.notes)}

    def lines(self) -> list[str]:
        out = [f"FAULT     {f.line()}" for f in self.faults]
        out += [f"possible  {f.line()}" for f in self.possible]
        if not self.faults:
            out.insert(0, "no fault found")
        return out + [f"note      {n}" for n in self.notes]


UNDETECTABLE_NOTE = ("not visible in the measurements: a CT whose rating differs from the meter's "
                     "(check the CT's label against the meter's), and a missing neutral on a "
                     "split-phase service with equal legs (it changes nothing the meter sees)")


def _percent(registered_w: float, true_w: float) -> float | None:
    if true_w <= 0:
        return None
    return 100.0 * max(registered_w, 0.0) / true_w


def _cone_deg(service: str, k: int) -> tuple[float, float]:
    """The angles ∠I − ∠V(own leg) loads of PF ≥ 0.5 can give on element k (0-based).
    Split phase: ±60°. Network 120/208 V: a 208 V load's current in L1 is in phase
    with V_L1 − V_L2, 30° ahead of V_L1, so L1's currents lie in [−60°, 90°] and L2's
    in [−90°, 60°]."""
    if service == "network":
        return (-60.0, 90.0) if k == 0 else (-90.0, 60.0)
    return (-60.0, 60.0)


def _outside_deg(angle: float, cone: tuple[float, float]) -> float:
    """How far ``angle`` lies outside ``cone`` [°] (0 inside)."""
    lo, hi = cone[0] - CONE_MARGIN_DEG, cone[1] + CONE_MARGIN_DEG
    if lo <= angle <= hi:
        return 0.0
    return min(abs(_wrap_deg(angle - lo)), abs(_wrap_deg(angle - hi)))


def _looks_reversed(angle: float) -> bool:
    """A current at (or beyond) 85° from its voltage: its power is about zero or negative."""
    return math.cos(math.radians(angle)) < math.cos(math.radians(85.0))


def _low_pf(k: int, angle: float) -> Finding:
    """A current 65°–85° from its voltage: power still positive — a very reactive load
    more likely than a wiring fault."""
    pf = math.cos(math.radians(angle))
    return Finding("wiring", f"CT{k + 1}",
                   f"element {k + 1} angle {angle:+.0f}°: power factor {pf:.2f}, below 0.5 — a very reactive "
                   f"load, or CT{k + 1} on the wrong leg", 0.4)


def name_faults(meas: Measurements, spec: MeterSpec) -> Diagnosis:
    """Name the installation's faults from the meter's measurements alone (S11.3).
    With clipped inputs only the ranges are judged: the naming needs the phasors the
    clipping withholds."""
    notes = (UNDETECTABLE_NOTE,)
    if meas.clipped:
        findings = _clipped_findings(meas, spec) + _range_findings(meas, spec)
        notes = (CLIPPED_NOTE,) + notes
    elif meas.elements == 1:
        findings = _single_element(meas, spec)
    else:
        findings = _two_elements(meas, spec)
    findings.sort(key=lambda f: -f.confidence)
    return Diagnosis(tuple(findings), meas, notes)


CLIPPED_NOTE = ("wiring not judged: the inputs marked clipped reached the meter's input range, so their rms, "
                "phase and power are not measured — bring the supply and the loads within the meter's ratings first")


def _clipped_findings(meas: Measurements, spec: MeterSpec) -> list[Finding]:
    """A finding per kind of clipped input: voltages (over-voltage) and currents (over-current)."""
    out = []
    volts = [c for c in meas.clipped if c.quantity == "voltage"]
    if volts:
        legs = " and ".join(f"L{c.element}–N" for c in volts)
        rated_peak = spec.supply_max_v * math.sqrt(2)
        out.append(Finding("supply-voltage", ", ".join(f"L{c.element}" for c in volts),
                           f"{legs} clipped: {volts[0].bound}, {volts[0].full_scale / rated_peak:.2g} × the "
                           f"{spec.supply_max_v:g} V maximum's {rated_peak:.1f} V peak — over-voltage, a supply the "
                           "meter cannot measure", 0.9))
    for c in meas.clipped:
        if c.quantity == "current":
            out.append(Finding("over-current", f"CT{c.element}",
                               f"CT{c.element} clipped: {c.bound}, beyond the meter's input range (the "
                               f"{spec.max_primary_a:g} A maximum is {spec.max_primary_a * math.sqrt(2):.1f} A peak) "
                               "— over-current, not measured", 0.9))
    return out


def _range_findings(meas: Measurements, spec: MeterSpec) -> list[Finding]:
    """Supply voltage, frequency and current against the meter's ratings (S3.4, S8.1),
    from the figures measured (a withheld one is judged by :func:`_clipped_findings`)."""
    out = []
    volts = {k: v for k, v in enumerate(meas.volts_rms) if v is not None}
    live = [k for k, v in volts.items() if v >= NO_VOLTAGE_V]
    if live and len(volts) == meas.elements and max(volts[k] for k in live) < spec.supply_min_v:
        v = max(volts[k] for k in live)
        out.append(Finding("supply-voltage", "supply",
                           f"supply {v:.1f} V below {spec.supply_min_v:g} V: meter unpowered, Power LED off, register kept",
                           0.95, 0.0))
    high = [k for k in live if volts[k] > spec.supply_max_v]
    if high:
        legs = " and ".join(f"L{k + 1}–N {volts[k]:.1f} V" for k in high)
        out.append(Finding("supply-voltage", ", ".join(f"L{k + 1}" for k in high),
                           f"{legs} above {spec.supply_max_v:g} V: over-voltage, Power LED off, still measuring",
                           0.95, 100.0))
    f = meas.frequency_hz
    f_lo = spec.frequency_min_hz * (1 - FREQUENCY_TOLERANCE)
    f_hi = spec.frequency_max_hz * (1 + FREQUENCY_TOLERANCE)
    if f is not None and not (f_lo <= f <= f_hi):
        out.append(Finding("frequency", "supply",
                           f"line frequency {f:.2f} Hz outside {spec.frequency_min_hz:g}–{spec.frequency_max_hz:g} Hz: "
                           "still measuring, accuracy not guaranteed", 0.95))
    for k, amps in enumerate(meas.amps_rms):
        if amps is not None and amps > spec.max_primary_a:
            out.append(Finding("over-current", f"CT{k + 1}",
                               f"CT{k + 1} {amps:.1f} A above the {spec.max_primary_a:g} A maximum "
                               f"(110 % of {spec.ct_rating}): accuracy not guaranteed", 0.95))
    return out


def _single_element(meas: Measurements, spec: MeterSpec) -> list[Finding]:
    out = _range_findings(meas, spec)
    if meas.volts_rms[0] < NO_VOLTAGE_V:
        out.append(Finding("voltage-open", "L1 or N",
                           f"no voltage on L1–N ({meas.volts_rms[0]:.1f} V): L1 terminal open or neutral missing "
                           "(or no supply): meter unpowered", 0.9, 0.0, ("neutral-missing:N",)))
        return out
    i = abs(meas.amps[0])
    if i < SIGNIFICANT_A:
        out.append(Finding("ct-open", "CT1",
                           f"CT1 reads {i:.2f} A: no load, or CT1 open or shorted", 0.3, None, ("ct-shorted",)))
        return out
    a = meas.angle_deg(0)
    if _outside_deg(a, _cone_deg("split", 0)) > 0 and not _looks_reversed(a):
        out.append(_low_pf(0, a))
    elif _outside_deg(a, _cone_deg("split", 0)) > 0:
        p = meas.power_w(0)
        conf = 0.9 if math.cos(math.radians(a)) < -0.1 else 0.55
        out.append(Finding("ct-reversed", "CT1",
                           f"CT1 reversed: element 1 angle {a:+.0f}°, power {p:+.0f} W", conf,
                           _percent(p, abs(p))))
    return out


def _two_elements(meas: Measurements, spec: MeterSpec) -> list[Finding]:
    """A dual-element meter: the supply's ranges, then the voltages (which service, the
    legs' true voltages), then the currents against their legs' voltages."""
    out = _range_findings(meas, spec)
    registered_w = meas.net_power_w if max(meas.volts_rms) >= spec.supply_min_v else 0.0
    dead = _dead_voltage_findings(meas, registered_w)
    if dead:
        return out + dead
    service, legs, phasing = _voltage_phasing(meas, spec, registered_w)
    return out + phasing + _current_findings(meas, service, legs, registered_w)


def _true_power_w(legs: Sequence[complex], meas: Measurements) -> float:
    """Σ of each CT's current against its leg's true voltage [W]."""
    return sum((legs[k] * meas.amps[k].conjugate()).real for k in range(2))


def _dead_voltage_findings(meas: Measurements, registered_w: float) -> list[Finding]:
    """No voltage on one terminal or on both."""
    live = [abs(v) >= NO_VOLTAGE_V for v in meas.volts]
    if not any(live):
        return [Finding("voltage-open", "L1, L2 or N",
                        "no voltage on L1–N nor L2–N: supply off, or L1 and L2 open, or neutral missing with one line "
                        "open: meter unpowered", 0.9, 0.0, ("neutral-missing:N",))]
    if all(live):
        return []
    dead = 0 if not live[0] else 1
    alive = 1 - dead
    v_true = [None, None]
    v_true[alive] = meas.volts[alive]
    v_true[dead] = -meas.volts[alive]                 # assumed split phase
    return [Finding("voltage-open", f"L{dead + 1}",
                    f"L{dead + 1} terminal open: L{dead + 1}–N reads {meas.volts_rms[dead]:.1f} V, "
                    f"element {dead + 1} registers nothing of its {abs(meas.amps[dead]):.1f} A "
                    "(share estimated assuming a split-phase service)",
                    0.9, _percent(registered_w, _true_power_w(v_true, meas)))]


def _voltage_phasing(meas: Measurements, spec: MeterSpec,
                     registered_w: float) -> tuple[str, list[complex], list[Finding]]:
    """From V2–V1: the service ('split' or 'network'), the legs' true voltages as far as
    they can be told, and the findings on the voltage terminals."""
    v1, v2 = meas.volts
    beta = meas.v2_to_v1_deg
    if abs(beta) >= 160.0:
        mags = (abs(v1), abs(v2))
        looks_halved = abs(mags[0] - mags[1]) <= 0.01 * max(mags) and spec.supply_min_v <= max(mags) <= 111.0
        if not looks_halved:
            return "split", [v1, v2], []
        leg1 = v1 / NETWORK_NEUTRAL_FACTOR * cmath.exp(-1j * math.radians(30.0))
        legs = [leg1, leg1 * cmath.exp(-1j * math.radians(120.0))]
        return "network", legs, [Finding(
            "neutral-missing", "N", f"neutral missing: L1–N and L2–N read {mags[0]:.1f} V and {mags[1]:.1f} V, "
                                    f"exactly opposite (V2–V1 {beta:+.0f}°) — half of 208 V on a 120/208 V network",
            0.6, _percent(registered_w, _true_power_w(legs, meas)))]
    if -140.0 <= beta <= -100.0:
        return "network", [v1, v2], []
    if 100.0 <= beta <= 140.0:
        legs = [v2, v1]
        return "network", legs, [Finding(
            "l1-l2-swapped", "L1/L2", f"L1 and L2 swapped on the voltage terminals: V2 leads V1 by {beta:.0f}° "
                                      "(a 120/208 V network's L2 lags L1 by 120°)",
            0.85, _percent(registered_w, _true_power_w(legs, meas)))]
    return "split", [v1, v2], [Finding(
        "wiring", "L1/L2/N", f"unusual voltage phasing: V2–V1 {beta:+.0f}° (expected 180° split phase or "
                             "−120° network) — check which conductors are landed on L1, L2 and N", 0.5)]


def _current_findings(meas: Measurements, service: str, legs: list[complex], registered_w: float) -> list[Finding]:
    """The currents against their legs' voltages: one CT on the wrong leg, reversed
    CTs, swapped lines, open CTs, very reactive loads."""
    angles = [_wrap_deg(_angle_deg(meas.amps[k]) - _angle_deg(legs[k])) if abs(meas.amps[k]) > 0 else None
              for k in range(2)]
    sig = [abs(i) >= SIGNIFICANT_A for i in meas.amps]
    same = _same_current_finding(meas, service, angles, sig, registered_w)
    if same is not None:
        return [same]
    outside = [k for k in range(2) if sig[k] and _outside_deg(angles[k], _cone_deg(service, k)) > 0
               and _looks_reversed(angles[k])]
    out = [_low_pf(k, angles[k]) for k in range(2)
           if sig[k] and k not in outside and _outside_deg(angles[k], _cone_deg(service, k)) > 0]
    out += _reversed_findings(meas, service, legs, angles, sig, outside, registered_w)
    return out + _open_ct_findings(meas, sig, outside)


def _same_current_finding(meas: Measurements, service: str, angles: list, sig: list[bool],
                          registered_w: float) -> Finding | None:
    """Both CTs carry the same current: one of them is on the other leg."""
    i1, i2 = meas.amps
    if not (all(sig) and abs(i1 - i2) <= SAME_CURRENT_FRACTION * max(abs(i1), abs(i2))):
        return None
    dev = [_outside_deg(angles[k], _cone_deg(service, k)) for k in range(2)]
    k = 0 if (dev[0], abs(angles[0])) >= (dev[1], abs(angles[1])) else 1
    other = 1 - k
    # with only line-to-line loads I_L2 = −I_L1: a reversed CT then reads the other leg's current
    alternatives = ("ct-reversed",)
    if dev[k] == 0.0:            # both angles plausible: the other CT on the wrong leg reads the same
        alternatives += (f"ct-wrong-phase:CT{other + 1}",)
    return Finding("ct-wrong-phase", f"CT{k + 1}",
                   f"CT{k + 1} on L{other + 1}: both CTs carry the same current "
                   f"({abs(meas.amps[k]):.1f} A at the same angle); element {k + 1} angle "
                   f"{angles[k]:+.0f}°, power {meas.power_w(k):+.0f} W; L{k + 1}'s own current is not measured "
                   f"(net registered {max(registered_w, 0):.0f} W)",
                   0.8, None, alternatives)


def _reversed_findings(meas: Measurements, service: str, legs: list[complex], angles: list, sig: list[bool],
                       outside: list[int], registered_w: float) -> list[Finding]:
    """Currents 85° or more from their legs' voltages: reversed CTs, or swapped lines."""
    if len(outside) == 2 and service == "split":
        true_w = -registered_w if registered_w < 0 else sum(abs(meas.power_w(k)) for k in range(2))
        return [Finding("l1-l2-swapped", "L1/L2",
                        f"L1 and L2 swapped (or both CTs reversed or exchanged): element angles "
                        f"{angles[0]:+.0f}° and {angles[1]:+.0f}°, both powers negative",
                        0.8, _percent(registered_w, true_w), ("ct-reversed:CT1 and CT2", "ct-wrong-phase:CT1 and CT2"))]
    out = []
    for k in outside:
        p_true = [(legs[j] * meas.amps[j].conjugate()).real for j in range(2)]
        p_true[k] = -p_true[k]
        conf = 0.9 if math.cos(math.radians(angles[k])) < -0.1 else 0.55
        # on split phase with no current on the other CT, swapped voltage terminals look the same
        alternatives = ("l1-l2-swapped:L1/L2",) if service == "split" and not sig[1 - k] else ()
        out.append(Finding("ct-reversed", f"CT{k + 1}",
                           f"CT{k + 1} reversed: element {k + 1} angle {angles[k]:+.0f}°, "
                           f"power {meas.power_w(k):+.0f} W", conf,
                           _percent(registered_w, sum(p_true)), alternatives))
    return out


def _open_ct_findings(meas: Measurements, sig: list[bool], outside: list[int]) -> list[Finding]:
    """No current on either CT, or on one while the other carries some."""
    i1, i2 = meas.amps
    if not any(sig):
        return [Finding("ct-open", "CT1 or CT2",
                        f"neither CT carries current ({abs(i1):.2f} A, {abs(i2):.2f} A): no load, "
                        "or the CTs open or shorted", 0.3, None, ("ct-shorted",))]
    if outside:
        return []
    out = []
    for k in range(2):
        other = 1 - k
        if abs(meas.amps[other]) >= SIGNIFICANT_A and abs(meas.amps[k]) < max(0.05, 0.01 * abs(meas.amps[other])):
            out.append(Finding("ct-open", f"CT{k + 1}",
                               f"CT{k + 1} reads {abs(meas.amps[k]):.2f} A while CT{other + 1} carries "
                               f"{abs(meas.amps[other]):.1f} A: CT{k + 1} open or shorted — or no load on L{k + 1}",
                               0.4, None, ("ct-shorted",)))
    return out


# --------------------------------------------------------------------------- diagnosing an installation
WINDOW_MIN_HZ = 40.0      # windows are sized for the lowest frequency the meter tracks


def window_samples(source, start_s: float, cycles: int, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """A window of a source's samples from ``start_s`` [s] long enough for ``cycles``
    line cycles, plus a lead-in for the meter's frequency tracker, at any frequency the
    meter tracks (sized for 40 Hz: the window does not depend on the source's frequency)."""
    n = int(round((cycles + 1.5) * sample_rate_hz / WINDOW_MIN_HZ))
    first = int(round(start_s * sample_rate_hz))
    frames = source.frames_at(first, n, sample_rate_hz)
    return frames.volts, frames.amps


def diagnose_samples(spec: MeterSpec, volts: np.ndarray, amps: np.ndarray, sample_rate_hz: float,
                     *, cycles: int = 4) -> Diagnosis:
    """:func:`measure` then :func:`name_faults`."""
    return name_faults(measure(spec, volts, amps, sample_rate_hz, cycles=cycles), spec)


def diagnose_installation(installation, *, at_s: float = 0.0, cycles: int = 4,
                          sample_rate_hz: float = 4000.0) -> Diagnosis:
    """Diagnose a simulated installation from the samples its meter sees over a few
    cycles at ``at_s`` [s] — only the samples reach the naming, never the wiring."""
    spec = installation.spec
    volts, amps = window_samples(installation.source(), at_s, cycles, sample_rate_hz)
    return diagnose_samples(spec, volts, amps, sample_rate_hz, cycles=cycles)


# --------------------------------------------------------------------------- §3.9 testing
MANUAL_3_9 = {
    "voltage": ("The power LED illuminates when the Mini Meter or Epoxy Encapsulated Module has a proper "
                "power supply. Voltage should also be tested using an AC Voltmeter to verify that the voltage "
                "across voltage line terminals (L1 to Neutral and L2 to Neutral) is not in excess of the "
                "maximum rated voltage."),
    "reverse-load": ("There must be a load drawing a minimum of 1 A connected to the meter in order for the "
                     "reverse phase LED to function correctly."),
    "reverse-on": ("If a proper load is connected, and the LED is illuminated, power down the voltage supply "
                   "and verify that CTs are installed correctly."),
    "load": ("These LEDs should be pulsing at 50% duty cycle when the meter is connected properly and a "
             "constant load is applied."),
}
"""The manual's §3.9 "Testing the Installation", word for word, in its order."""

DUTY_TOLERANCE_PERCENT = 2.0          # Load LED duty judged 50 % ± this
CHECK_MAX_S = 2 * 3600.0              # simulate at most this long looking for Load LED pulses [s]


@dataclass(frozen=True)
class CheckLine:
    """One test of §3.9: PASS/FAIL, the measured value and, on FAIL, the manual's text."""

    section: str           # 'Testing Voltage', 'CT Reverse Phase Indicator', 'Load LED'
    test: str
    passed: bool
    measured: str
    instruction: str = ""

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = f"{verdict}  {self.test}: {self.measured}"
        return text if self.passed or not self.instruction else f"{text}\n      manual §3.9: {self.instruction}"


@dataclass(frozen=True)
class CheckResult:
    """The §3.9 lines, the simulated time [s], and what a person would see at its end."""

    lines: tuple[CheckLine, ...]
    simulated_s: float
    power_led: bool = False
    reverse_led: bool = False
    load_led_pulsing: bool = False

    @property
    def passed(self) -> bool:
        return all(line.passed for line in self.lines)


def load_led_duty(changes: Sequence[tuple[float, bool]], end_s: float) -> tuple[float | None, float | None, float | None]:
    """(on time [s], off time [s], duty [%]) of the Load LED over its complete on/off
    periods, from its changes (time [s], state); Nones without a complete period."""
    ons = [t for t, s in changes if s]
    offs = [t for t, s in changes if not s]
    if len(ons) < 2 or not offs:
        return None, None, None
    # complete periods between the first and the last "on"
    first, last = ons[0], ons[-1]
    on_total = 0.0
    for t_on in ons[:-1]:
        t_off = min((t for t in offs if t > t_on), default=None)
        if t_off is None:
            return None, None, None
        on_total += t_off - t_on
    periods = len(ons) - 1
    period = (last - first) / periods
    on = on_total / periods
    return on, period - on, 100.0 * on / period


def _span(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 60.0 else f"{seconds / 60:.2f} min"


@dataclass(frozen=True)
class _Watched:
    """What the §3.9 tests read off a meter run through the phasor path."""

    volts_max: np.ndarray                         # (e,) largest per-cycle rms per leg [V]
    amps_max: float                               # largest per-cycle CT current [A]
    load_led_changes: tuple[tuple[float, bool], ...]
    power_led_ever_off: bool
    reached_s: float                              # simulated time [s]


def _watch(meter: Meter, source, max_s: float) -> _Watched:
    """Feed ``source`` (:func:`minimeter.drive.feed_source`, phasor path, a minute a
    block) until the Load LED has come on three times after the first minute, or ``max_s``."""
    volts_max = np.zeros(meter.spec.elements)
    amps_max, power_off, reached = 0.0, False, 0.0
    changes: list[tuple[float, bool]] = []
    for update, reached in feed_source(meter, source, max_s, cycles_per_block=int(round(60.0 * source.frequency_hz))):
        if update.cycles.count:
            volts_max = np.maximum(volts_max, update.cycles.volts_rms.max(axis=1))
            amps_max = max(amps_max, float(update.cycles.amps_rms.max()))
        power_off |= any(not ch.state for ch in update.led_changes if ch.led == "power")
        changes += [(ch.time_s, ch.state) for ch in update.led_changes if ch.led == "load"]
        if sum(1 for _, on in changes if on) >= 3 and reached >= 60.0:
            break
    return _Watched(volts_max, amps_max, tuple(changes), power_off, reached)


def _voltage_lines(spec: MeterSpec, watched: _Watched, leds) -> list[CheckLine]:
    lines = []
    for k in range(spec.elements):
        v = float(watched.volts_max[k])
        ok = spec.supply_min_v <= v <= spec.supply_max_v
        lines.append(CheckLine("Testing Voltage", f"L{k + 1} to Neutral voltage", ok,
                               f"{v:.1f} V (maximum rated {spec.supply_max_v:g} V, minimum {spec.supply_min_v:g} V)",
                               MANUAL_3_9["voltage"]))
    lines.append(CheckLine("Testing Voltage", "Power LED", leds.power and not watched.power_led_ever_off,
                           "on" if leds.power else "off", MANUAL_3_9["voltage"]))
    return lines


def _reverse_line(spec: MeterSpec, watched: _Watched, leds) -> CheckLine:
    if watched.amps_max < spec.reverse_led_min_current_a:
        return CheckLine("CT Reverse Phase Indicator", "Reverse phase LED", False,
                         f"cannot be judged: largest CT current {watched.amps_max:.2f} A, below "
                         f"{spec.reverse_led_min_current_a:g} A (LED {'on' if leds.reverse else 'off'})",
                         MANUAL_3_9["reverse-load"])
    return CheckLine("CT Reverse Phase Indicator", "Reverse phase LED", not leds.reverse,
                     f"{'on' if leds.reverse else 'off'} with {watched.amps_max:.1f} A on a CT", MANUAL_3_9["reverse-on"])


def _load_line(meter: Meter, watched: _Watched, duty: tuple) -> CheckLine:
    on_s, off_s, percent = duty
    if percent is None:
        state = "on" if meter.leds.load else "off"
        return CheckLine("Load LED", "Load LED pulsing at 50 % duty", False,
                         f"not pulsing in {watched.reached_s / 60:.0f} min (steady {state}, "
                         f"{meter.watt_hours:.2f} Wh registered)", MANUAL_3_9["load"])
    return CheckLine("Load LED", "Load LED pulsing at 50 % duty", abs(percent - 50.0) <= DUTY_TOLERANCE_PERCENT,
                     f"on {_span(on_s)}, off {_span(off_s)} ({percent:.1f} % duty)", MANUAL_3_9["load"])


def check_installation(installation, *, max_s: float = CHECK_MAX_S) -> CheckResult:
    """The manual's §3.9 tests on a simulated installation, through the phasor path,
    long enough to see the Load LED pulse twice (at most ``max_s``)."""
    spec = installation.spec
    meter = Meter(spec)
    watched = _watch(meter, installation.source(), max_s)
    leds = meter.leds
    duty = load_led_duty(watched.load_led_changes, watched.reached_s)
    lines = _voltage_lines(spec, watched, leds) + [_reverse_line(spec, watched, leds), _load_line(meter, watched, duty)]
    return CheckResult(tuple(lines), watched.reached_s, leds.power, leds.reverse, duty[2] is not None)


# --------------------------------------------------------------------------- §5 FAQ
@dataclass(frozen=True)
class Problem:
    number: int
    title: str
    checklist: tuple[str, ...]


FAQ_PROBLEMS = (
    Problem(1, "Power LED not illuminated", (
        "Check to make sure all connections are wired",
        "Test the voltage being supplied to the meter using an AC voltmeter",
        "With power off, remove any additional line fuses and test with ohmmeter",
    )),
    Problem(2, "Load LED not flashing", (
        "Verify CT connections and orientations",
        "Make sure there is sufficient load to draw a significant current",
        "Test the voltage being supplied to the meter using an AC voltmeter",
    )),
    Problem(3, "Registered consumption low", (
        "Check to make sure the reverse phase LED is not on",
        "Even if the reverse phase light is off, double-check CT orientations. One CT installed in the "
        "incorrect direction doesn't always illuminate the reverse phase LED",
        "Make sure that current and voltage connections are in phase",
        "Check power connections and fuses",
    )),
    Problem(4, "Reverse phase LED illuminated", (
        "Verify orientation and connection of CT wires",
        "Ensure that phasing is correct (CT1 on Line 1, CT2 on Line 2)",
        "Verify that a load drawing more than 1 Amp is connected to the meter",
    )),
)
"""The manual's §5 Troubleshooting/FAQ, word for word."""


def troubleshoot(*, power_led_on: bool | None = None, load_led_flashing: bool | None = None,
                 reverse_led_on: bool | None = None, registration_low: bool | None = None) -> tuple[Problem, ...]:
    """The FAQ problems matching what a person sees, most likely cause first: a dark
    Power LED explains everything else (the meter is unpowered), a lit reverse LED
    explains a still Load LED and low registration, a still Load LED comes before low
    registration. None: not observed."""
    by_number = {p.number: p for p in FAQ_PROBLEMS}
    order = []
    if power_led_on is False:
        order.append(1)
    if reverse_led_on:
        order.append(4)
    if load_led_flashing is False:
        order.append(2)
    if registration_low:
        order.append(3)
    return tuple(by_number[n] for n in order)
