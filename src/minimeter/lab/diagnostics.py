"""Installation testing, troubleshooting and fault naming (SPEC §11).

Three things, each from what the meter measures and never from the installation file:

* :func:`check_installation` — the manual's §3.9 "Testing the Installation": supply
  voltage per leg against the maximum, the Power LED, the reverse phase LED (not tested
  below its 1 A) and the Load LED's 50 % duty cycle, each a :class:`CheckLine`;
* :data:`FAQ_PROBLEMS` and :func:`troubleshoot` — the manual's §5 Troubleshooting/FAQ,
  its four problems and their checklists, quoted word for word, chosen from what a
  person sees;
* :func:`name_faults` — beyond the manual (S11.3): from per-element fundamental phasors
  (:func:`fundamental_phasors`, a least-squares fit at the tracked line frequency over
  whole cycles), every reading the measurements allow (:mod:`minimeter.lab.faultnaming`):
  the fault, the CT or terminal, the readings it cannot be told from with the
  confidence split between them (generation among them), and the registration each
  costs on the service the legs show. A supply below what the meter tracks is named
  from the frequency its samples show (:func:`estimate_frequency_hz`).

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
from minimeter.lab.faultnaming import NO_VOLTAGE_V, Finding, explain
from minimeter.meter.catalog import MeterSpec
from minimeter.meter.core import FREQUENCY_TOLERANCE, Meter, Update
from minimeter.meter.snapshot import EventKind

# --------------------------------------------------------------------------- thresholds
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
    estimated_hz: float | None = None     # the window's frequency from its samples, when the meter tracked none [Hz]

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
            angle = f"{'—':>8}" if a is None else f"{a:+7.1f}°"
            power = "—" if p is None else f"{round(p, 1) + 0.0:+10.1f} W"        # no "-0.0 W"
            out.append(f"element {k + 1}: V {self._figure('voltage', k, 6, 1)}   I {self._figure('current', k, 8, 2)}"
                       f"   angle I–V {angle}   P {power}")
        beta = self.v2_to_v1_deg
        if beta is not None:
            out.append(f"angle V2–V1 {beta:+.1f}°")
        if self.frequency_hz is not None:
            out.append(f"frequency {self.frequency_hz:.2f} Hz")
        elif self.estimated_hz is not None:
            out.append(f"frequency — (not tracked by the meter; about {self.estimated_hz:.1f} Hz from the samples, "
                       "phasors fitted there)")
        else:
            out.append(f"frequency — (not measured; phasors fitted at {NOMINAL_FIT_HZ:g} Hz)")
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
            "estimated_hz": self.estimated_hz,
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
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(a))):
        raise InvalidSamples("the window holds samples that are not finite numbers (NaN or infinity)")
    meter = Meter(spec)
    try:
        updates = list(feed_samples(meter, [(v, a)], sample_rate_hz))
    except InvalidSamples:
        updates = []          # a supply far below what the meter tracks can trip the meter: judged as untracked
    clipped = clipped_inputs(meter, updates)
    averages = average_cycles((u.cycles for u in updates), spec.elements)
    estimated = None
    if averages.whole_cycles:
        volts_rms, amps_rms = averages.volts_rms, averages.amps_rms
        frequency = averages.frequency_hz
    else:
        volts_rms, amps_rms = np.sqrt(np.mean(v ** 2, axis=1)), np.sqrt(np.mean(a ** 2, axis=1))
        frequency = None
        estimated = estimate_frequency_hz(v, sample_rate_hz)
    if any(c.quantity == "voltage" for c in clipped):
        frequency = estimated = None
    f_fit = frequency or estimated or NOMINAL_FIT_HZ
    n = min(v.shape[1], int(round(cycles * sample_rate_hz / f_fit)))
    vz = fundamental_phasors(v[:, -n:], sample_rate_hz, f_fit)
    iz = fundamental_phasors(a[:, -n:], sample_rate_hz, f_fit)
    return Measurements(_withheld([complex(z) for z in vz], "voltage", clipped),
                        _withheld([complex(z) for z in iz], "current", clipped), frequency,
                        _withheld([float(x) for x in volts_rms], "voltage", clipped),
                        _withheld([float(x) for x in amps_rms], "current", clipped), clipped, estimated)


ESTIMATE_RANGE_HZ = (2.0, 400.0)      # frequencies searched when the meter tracks none [Hz]


def estimate_frequency_hz(volts: np.ndarray, sample_rate_hz: float) -> float | None:
    """The frequency of the strongest voltage row [Hz]: the sine (plus DC) that fits it
    best, searched on a log grid then refined; None when the window holds less than one
    cycle of it or no voltage (below NO_VOLTAGE_V rms)."""
    x = volts[int(np.argmax(np.sqrt(np.mean(volts ** 2, axis=1))))]
    n = x.size
    if n < 8 or np.sqrt(np.mean(x ** 2)) < NO_VOLTAGE_V:
        return None
    t = np.arange(n) / sample_rate_hz
    lo, hi = ESTIMATE_RANGE_HZ
    hi = min(hi, 0.45 * sample_rate_hz)

    def misfit(f: float) -> float:
        w = 2 * math.pi * f * t
        design = np.column_stack((np.ones(n), np.cos(w), np.sin(w)))
        return float(np.linalg.lstsq(design, x, rcond=None)[1].sum() if n > 3 else 0.0)

    grid = np.geomspace(lo, hi, 600)
    best = float(grid[int(np.argmin([misfit(f) for f in grid]))])
    for _ in range(3):
        fine = np.linspace(best * 0.985, best * 1.015, 41)
        best = float(fine[int(np.argmin([misfit(f) for f in fine]))])
    if best * n / sample_rate_hz < 1.0 or misfit(best) > 0.05 * float(np.sum((x - x.mean()) ** 2)):
        return None
    return best


# --------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class Diagnosis:
    """The findings, most confident first, and the measurements they came from."""

    findings: tuple[Finding, ...]
    measurements: Measurements
    notes: tuple[str, ...] = field(default=())

    @property
    def faults(self) -> tuple[Finding, ...]:
        """The findings that are faults: confident, and with no explanation that is not a fault."""
        return tuple(f for f in self.findings if f.is_fault)

    @property
    def possible(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.is_fault)

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def as_dict(self) -> dict:
        """Plain values for JSON: the faults, the possibilities, the measurements, the notes."""
        return {"faults": [f.as_dict() for f in self.faults], "possible": [f.as_dict() for f in self.possible],
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
UNDETECTABLE_NOTE_SINGLE = ("not visible in the measurements: a CT whose rating differs from the meter's "
                            "(check the CT's label against the meter's)")


def _percent(registered_w: float, true_w: float) -> float | None:
    if true_w <= 0:
        return None
    return 100.0 * max(registered_w, 0.0) / true_w


def name_faults(meas: Measurements, spec: MeterSpec, *, generation: bool | None = None) -> Diagnosis:
    """Name the installation's faults from the meter's measurements alone (S11.3):
    every explanation the measurements cannot separate, with the confidence split
    between them (:mod:`minimeter.lab.faultnaming`). ``generation``: the installer's
    declaration — True (PV back-feed expected), False (none on the site) or None (not
    said: reverse power is then "generation, or …"). With clipped inputs only the
    ranges are judged: the naming needs the phasors the clipping withholds."""
    notes = [UNDETECTABLE_NOTE if spec.elements > 1 else UNDETECTABLE_NOTE_SINGLE]   # no neutral note on one element
    if meas.clipped:
        findings = _clipped_findings(meas, spec) + _range_findings(meas, spec)
        notes.insert(0, CLIPPED_NOTE)
    elif meas.frequency_hz is None and max(meas.volts_rms) >= NO_VOLTAGE_V and \
            (meas.estimated_hz is None or meas.estimated_hz < WINDOW_MIN_HZ):
        findings = [_untracked_finding(meas, spec)]
    elif max(meas.volts_rms) < NO_VOLTAGE_V:
        findings = _range_findings(meas, spec, voltages=False) + [_dead_voltage_finding(meas)]
    else:
        registered_w = meas.net_power_w if max(meas.volts_rms) >= spec.supply_min_v else 0.0
        named, more = explain(meas, spec, registered_w, generation)
        findings = _range_findings(meas, spec, voltages=False) + named
        notes = more + notes
    if generation:
        notes.append("generation declared: reverse power from PV back-feed is expected, not a fault")
    findings.sort(key=lambda f: (not f.is_fault, -f.confidence))
    return Diagnosis(tuple(findings), meas, tuple(notes))


def _dead_voltage_finding(meas: Measurements) -> Finding:
    """No voltage on any terminal: the meter is unpowered."""
    if meas.elements == 1:
        return Finding("voltage-open", "L1 or N",
                       f"no voltage on L1–N ({meas.volts_rms[0]:.1f} V): L1 terminal open or neutral missing "
                       "(or no supply): meter unpowered", 0.9, 0.0, ("neutral-missing:N", "voltage-open:N"))
    return Finding("voltage-open", "L1, L2 or N",
                   "no voltage on L1–N nor L2–N: supply off, or L1 and L2 open, or neutral missing with one line "
                   "open: meter unpowered", 0.9, 0.0, ("neutral-missing:N",))


def _untracked_finding(meas: Measurements, spec: MeterSpec) -> Finding:
    """Voltage present but no line cycle tracked: the supply's frequency is outside what
    the meter tracks (its estimate from the samples, when one could be made)."""
    f = meas.estimated_hz
    seen = f"about {f:.1f} Hz" if f is not None else "not measurable in the window"
    return Finding("frequency", "supply",
                   f"line frequency {seen}: outside what the meter tracks ({WINDOW_MIN_HZ:g} Hz and up; rated "
                   f"{spec.frequency_min_hz:g}–{spec.frequency_max_hz:g} Hz) — no line cycle measured, the wiring is "
                   "not judged", 0.95, None)


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


def _range_findings(meas: Measurements, spec: MeterSpec, *, voltages: bool = True) -> list[Finding]:
    """Supply voltage (unless ``voltages`` is False: the naming judges the supply then,
    from the service it infers), frequency and current against the meter's ratings (S3.4,
    S8.1), from the figures measured (a withheld one is judged by :func:`_clipped_findings`)."""
    out = []
    volts = {k: v for k, v in enumerate(meas.volts_rms) if v is not None and voltages}
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
                     *, cycles: int = 4, generation: bool | None = None) -> Diagnosis:
    """:func:`measure` then :func:`name_faults` (``generation``: the installer's declaration)."""
    return name_faults(measure(spec, volts, amps, sample_rate_hz, cycles=cycles), spec, generation=generation)


_DECLARED = object()


def diagnose_installation(installation, *, at_s: float = 0.0, cycles: int = 4, sample_rate_hz: float = 4000.0,
                          generation: bool | None | object = _DECLARED) -> Diagnosis:
    """Diagnose a simulated installation from the samples its meter sees over a few
    cycles at ``at_s`` [s] — only the samples reach the naming, never the wiring; and
    the installer's declaration of generation (the installation's ``generation``
    unless ``generation`` is given)."""
    spec = installation.spec
    volts, amps = window_samples(installation.source(), at_s, cycles, sample_rate_hz)
    declared = installation.generation if generation is _DECLARED else generation
    return diagnose_samples(spec, volts, amps, sample_rate_hz, cycles=cycles, generation=declared)


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
    """One test of §3.9: PASS/FAIL, the measured value and, on FAIL, the manual's text;
    or not tested (``tested`` False: what it needs is missing — the manual's text says what)."""

    section: str           # 'Testing Voltage', 'CT Reverse Phase Indicator', 'Load LED'
    test: str
    passed: bool
    measured: str
    instruction: str = ""
    tested: bool = True

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL" if self.tested else "NOT TESTED"
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
        """No test failed (a test not made is not a failure)."""
        return all(line.passed or not line.tested for line in self.lines)


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
    net_w_min: float = 0.0                        # lowest per-cycle net power (negative: exporting) [W]


def _watch(meter: Meter, source, max_s: float) -> _Watched:
    """Feed ``source`` (:func:`minimeter.drive.feed_source`, phasor path, a minute a
    block) until the Load LED has come on three times after the first minute, or ``max_s``."""
    volts_max = np.zeros(meter.spec.elements)
    amps_max, power_off, reached, net_min = 0.0, False, 0.0, math.inf
    changes: list[tuple[float, bool]] = []
    for update, reached in feed_source(meter, source, max_s, cycles_per_block=int(round(60.0 * source.frequency_hz))):
        if update.cycles.count:
            volts_max = np.maximum(volts_max, update.cycles.volts_rms.max(axis=1))
            amps_max = max(amps_max, float(update.cycles.amps_rms.max()))
            net_min = min(net_min, float(update.cycles.power_w.sum(axis=0).min()))
        power_off |= any(not ch.state for ch in update.led_changes if ch.led == "power")
        changes += [(ch.time_s, ch.state) for ch in update.led_changes if ch.led == "load"]
        if sum(1 for _, on in changes if on) >= 3 and reached >= 60.0:
            break
    return _Watched(volts_max, amps_max, tuple(changes), power_off, reached, 0.0 if net_min == math.inf else net_min)


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


def _reverse_line(spec: MeterSpec, watched: _Watched, leds, generation: bool | None) -> CheckLine:
    led = "on" if leds.reverse else "off"
    if watched.amps_max < spec.reverse_led_min_current_a:
        return CheckLine("CT Reverse Phase Indicator", "Reverse phase LED", False,
                         f"not tested (needs ≥ {spec.reverse_led_min_current_a:g} A): largest CT current "
                         f"{watched.amps_max:.2f} A (LED {led})", MANUAL_3_9["reverse-load"], tested=False)
    if generation and leds.reverse and watched.net_w_min < 0:
        return CheckLine("CT Reverse Phase Indicator", "Reverse phase LED", True,
                         f"on with {watched.amps_max:.1f} A on a CT while exporting {-watched.net_w_min:.0f} W — "
                         "expected: generation declared")
    return CheckLine("CT Reverse Phase Indicator", "Reverse phase LED", not leds.reverse,
                     f"{led} with {watched.amps_max:.1f} A on a CT", MANUAL_3_9["reverse-on"])


def _load_line(meter: Meter, watched: _Watched, duty: tuple, generation: bool | None) -> CheckLine:
    on_s, off_s, percent = duty
    if percent is None:
        state = "on" if meter.leds.load else "off"
        seen = f"not pulsing in {watched.reached_s / 60:.0f} min (steady {state}, {meter.watt_hours:.2f} Wh registered)"
        if generation and watched.net_w_min < 0:
            return CheckLine("Load LED", "Load LED pulsing at 50 % duty", False,
                             f"not tested (exporting {-watched.net_w_min:.0f} W, generation declared): {seen}",
                             MANUAL_3_9["load"], tested=False)
        return CheckLine("Load LED", "Load LED pulsing at 50 % duty", False, seen, MANUAL_3_9["load"])
    return CheckLine("Load LED", "Load LED pulsing at 50 % duty", abs(percent - 50.0) <= DUTY_TOLERANCE_PERCENT,
                     f"on {_span(on_s)}, off {_span(off_s)} ({percent:.1f} % duty)", MANUAL_3_9["load"])


def check_installation(installation, *, max_s: float = CHECK_MAX_S) -> CheckResult:
    """The manual's §3.9 tests on a simulated installation, through the phasor path,
    long enough to see the Load LED pulse twice (at most ``max_s``). The installation's
    declared ``generation`` makes a lit reverse phase LED while exporting expected."""
    spec = installation.spec
    meter = Meter(spec)
    watched = _watch(meter, installation.source(), max_s)
    leds = meter.leds
    duty = load_led_duty(watched.load_led_changes, watched.reached_s)
    declared = installation.generation
    lines = _voltage_lines(spec, watched, leds) + [_reverse_line(spec, watched, leds, declared),
                                                   _load_line(meter, watched, duty, declared)]
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
