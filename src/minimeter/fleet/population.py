"""The meters of a fleet (SPEC S14.1): meter ``index`` of a :class:`~minimeter.formats.fleet.Fleet`
as an installation and the fault made on it (:func:`member`).

A population's meter ``index`` is drawn from its own generator, seeded by
``SeedSequence(fleet.seed, spawn_key=(index,))`` — the ``index``-th child of
``SeedSequence(fleet.seed).spawn(…)`` — so a meter is the same whichever worker draws
it, in whatever partition, and drawing it needs no other meter.

The household load model (every load repeats the same day, so a day's profile is the
household's; the randomness is between households):

* always-on electronics 60 W + 40 W per occupant on L1 (PF 0.9, 3rd and 5th harmonics);
* a fridge on L2 cycling (on 10–20 min, off 20–30 min, 100–200 W, PF 0.8);
* lighting on L1: a morning hour or two from 6–7:30 and an evening of 3–6 h from
  17–19 h, more with more occupants (PF 0.95);
* a microwave on L2 at midday (1–1.5 kW for 12–30 min, PF 0.9, 3rd harmonic);
* with their shares of homes, 240 V appliances on L1–L2: a range (2–4 kW, 30–70 min
  from 17–19:30), a dryer (4–5.5 kW, 1 h from 9–20 h), a water heater (4.5 kW, an hour
  from 6–8 h and from 18–21 h), an EV charger (6–7.7 kW, 3–5 h from 18–23 h, across
  midnight), and PV back-feed (negative, hourly steps of a half sine from 7 to 19 h,
  its peak drawn in ``pv_kw``; the installer declares generation);
* the fleet's ``start`` is the clock time of simulated time 0 (a short run can start
  in the evening peak);
* on a one-element meter (single service, 120 V 2-wire) every load is on L1.

Faults (at most one per meter, drawn with the fleet's shares): a CT fault on a CT drawn
among the meter's; voltage-open on L1 or L2 (L1 on one-element meters); over-current
an extra 1.15–1.9 × the rating on L1 (the households themselves are scaled to stay
within 90 % of the CT rating with every load at its peak, :func:`within_rating`); supply voltage 80–100 or 140–170 V; frequency
40–48.5 or 61.5–70 Hz; a CT rating mismatch with a CT of another rating.
*Decisions:* ct-wrong-phase and l1-l2-swapped need two legs, so they are made on
two-element meters only (a one-element meter drawn for them stays correct); a missing
neutral on a two-element meter puts the meter on a network service (on split phase
with equal legs the meter cannot see it — the diagnosis says so); PV goes on correct
installations only (as in :mod:`minimeter.lab.fault_campaign`: a declared PV inverter
explains reverse power by design, so a reversed CT behind it cannot be named from the
measurements).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from minimeter.formats.fleet import Fleet, Household, Population
from minimeter.lab.faultnaming import atom_of
from minimeter.meter.catalog import meter_spec
from minimeter.sources.installation import Installation
from minimeter.sources.service import Harmonic, Load, Profile, Service
from minimeter.sources.wiring import Fault, correct_cts, correct_terminals

DAY_S = 86400.0
HOUR_S = 3600.0
Atom = tuple[str, str]        # (fault kind, subject); ("none", "") for a correct installation
TWO_LEG_FAULTS = ("ct-wrong-phase", "l1-l2-swapped")
STATED_WIRING: Atom = ("stated-wiring", "")     # an installation file states a wiring other than the correct one


def miswired_as_stated(inst: Installation) -> bool:
    """Whether the file states terminals or CTs other than the model's correct ones (a
    fault written as wiring, not as a [[fault]]; judged named when any fault is reported)."""
    elements = inst.spec.elements
    return (inst.terminals is not None and tuple(inst.terminals) != tuple(correct_terminals(elements))) or \
        (inst.cts is not None and tuple(inst.cts) != tuple(correct_cts(elements)))


@dataclass(frozen=True)
class Member:
    """Meter ``index`` of a fleet: its installation and the faults made on it."""

    index: int
    installation: Installation
    injected: tuple[Atom, ...]

    @property
    def fault(self) -> str:
        """The injected fault's kind ('none' for a correct installation; kinds joined by '+')."""
        return "+".join(k for k, _ in self.injected) or "none"


def fault_atom(fault: Fault) -> Atom:
    """(kind, subject) of an injected fault — the CT for every CT fault."""
    if fault.kind in ("ct-shorted", "ct-rating-mismatch"):
        return fault.kind, str(fault.get("ct") or "CT1")
    kind, subject = atom_of(fault)
    return kind, subject or ""


def member(fleet: Fleet, index: int) -> Member:
    """Meter ``index`` (0-based) of ``fleet``."""
    if not 0 <= index < fleet.meters:
        raise IndexError(f"meter {index} is outside 0 … {fleet.meters - 1}")
    if fleet.population is None:
        inst = fleet.installations[index]
        stated = (STATED_WIRING,) if miswired_as_stated(inst) else ()
        return Member(index, inst, stated + tuple(fault_atom(f) for f in inst.faults))
    rng = np.random.default_rng(np.random.SeedSequence(fleet.seed, spawn_key=(index,)))
    return _draw(fleet.population, rng, index, f"{fleet.name}-{index:05d}", fleet.start_s)


def _choose(rng: np.random.Generator, mix: tuple[tuple[str, float], ...]) -> str:
    weights = np.array([w for _, w in mix], float)
    return mix[int(rng.choice(len(mix), p=weights / weights.sum()))][0]


def _fault_kind(rng: np.random.Generator, pop: Population, elements: int) -> str | None:
    """At most one fault kind, with the fleet's shares (one uniform draw)."""
    u, edge = rng.random(), 0.0
    for kind, share in pop.faults:
        edge += share
        if u < edge:
            return None if (kind in TWO_LEG_FAULTS and elements == 1) else kind
    return None


def _draw(pop: Population, rng: np.random.Generator, index: int, name: str, clock_s: float) -> Member:
    model = _choose(rng, pop.models)
    rating = _choose(rng, pop.ct_ratings)
    spec = meter_spec(model, ct_rating=rating)
    kind = _fault_kind(rng, pop, spec.elements)
    service_kind = "single" if spec.elements == 1 else _choose(rng, pop.services)
    if kind == "neutral-missing" and spec.elements == 2:
        service_kind = "network"
    service = Service(service_kind, float(rng.uniform(*pop.volts)), pop.frequency_hz)
    loads, pv = household_loads(rng, pop.household, spec.elements, clock_s, pv_allowed=kind is None)
    loads = within_rating(loads, service, spec.rated_primary_a)
    inst = Installation(model=model, ct_rating=rating, service=service, loads=loads,
                        generation=True if pv else None, name=name)
    if kind is None:
        return Member(index, inst, ())
    inst = _with_fault(rng, inst, kind)
    return Member(index, inst, (fault_atom(inst.faults[-1]),))


def _with_fault(rng: np.random.Generator, inst: Installation, kind: str) -> Installation:
    spec = inst.spec
    ct = f"CT{int(rng.integers(spec.elements)) + 1}"
    if kind in ("ct-reversed", "ct-wrong-phase", "ct-open", "ct-shorted"):
        return inst.with_fault(kind, ct=ct)
    if kind == "ct-rating-mismatch":
        return inst.with_fault(kind, ct=ct, rating="100A" if spec.rated_primary_a != 100 else "200A")
    if kind == "voltage-open":
        return inst.with_fault(kind, terminal=f"L{int(rng.integers(spec.elements)) + 1}")
    if kind == "over-current":
        return inst.with_fault(kind, amps=float(rng.uniform(1.15, 1.9)) * spec.rated_primary_a)
    if kind == "supply-voltage":
        return inst.with_fault(kind, volts=float(rng.uniform(80, 100) if rng.random() < 0.5 else rng.uniform(140, 170)))
    if kind == "frequency":
        return inst.with_fault(kind, hz=float(rng.uniform(40, 48.5) if rng.random() < 0.5 else rng.uniform(61.5, 70)))
    return inst.with_fault(kind)      # l1-l2-swapped, neutral-missing


# --------------------------------------------------------------------------- the household
RATING_USE = 0.9          # a household's worst case (every load at its peak at once) stays within this × the CT rating


def within_rating(loads: tuple[Load, ...], service: Service, rated_a: float) -> tuple[Load, ...]:
    """The loads scaled down, if need be, so that every load at its peak at once draws at
    most :data:`RATING_USE` × the CT rating on any leg (an electrician sizes the CTs to
    the service; an over-current is a fault the fleet injects, not an accident)."""
    legs = {"L1": 0.0, "L2": 0.0}
    for load in loads:
        peak_w = max(abs(v) for v in load.profile.values) if load.profile is not None else abs(load.watts)
        amps = peak_w / (service.connection_voltage(load.connection)[0] * load.power_factor)
        for leg in ("L1", "L2"):
            legs[leg] += amps if leg in load.connection else 0.0
    worst = max(legs.values())
    if worst <= RATING_USE * rated_a:
        return loads
    factor = RATING_USE * rated_a / worst
    return tuple(replace(ld, watts=ld.watts * factor,
                         profile=ld.profile.scaled(factor) if ld.profile is not None else None) for ld in loads)

def daily(spans: list[tuple[float, float, float]], clock_s: float = 0.0) -> Profile:
    """A profile repeating every day from ``(start h, hours, watts)`` spans (a span may
    run across midnight; overlapping spans add), simulated time 0 being ``clock_s`` [s]
    past midnight."""
    spans = [(s - clock_s / HOUR_S, h, w) for s, h, w in spans]
    cuts = {0.0}
    for start_h, hours, _ in spans:
        cuts.update({(start_h * HOUR_S) % DAY_S, ((start_h + hours) * HOUR_S) % DAY_S})
    times = sorted(cuts)

    def level(t: float) -> float:
        return sum(w for s, h, w in spans if (t - s * HOUR_S) % DAY_S < h * HOUR_S)

    return Profile(tuple(times), tuple(level(t) for t in times), DAY_S)


def _pv(peak_w: float, clock_s: float) -> Profile:
    """Hourly steps of a half sine from 7 to 19 h, negative (back-feed) [W]."""
    return daily([(h, 1.0, -peak_w * math.sin(math.pi * (h + 0.5 - 7.0) / 12.0)) for h in range(7, 19)], clock_s)


def household_loads(rng: np.random.Generator, house: Household, elements: int, clock_s: float = 0.0,
                    pv_allowed: bool = True) -> tuple[tuple[Load, ...], bool]:
    """One household's loads (see the module's docstring) and whether it has PV (never
    unless ``pv_allowed``); simulated time 0 is ``clock_s`` [s] past midnight."""
    u = rng.uniform
    people = int(rng.integers(house.occupancy[0], house.occupancy[1] + 1))
    leg2, both = ("L2", "L1-L2") if elements == 2 else ("L1", "L1")
    loads = [
        Load(60.0 + 40.0 * people, 0.9, connection="L1", harmonics=(Harmonic(3, 0.3), Harmonic(5, 0.15)),
             name="electronics"),
        Load(power_factor=0.8, connection=leg2, name="fridge",
             profile=Profile.on_off(u(10, 20) * 60, u(20, 30) * 60, u(100, 200), u(0, 1800))),
        Load(power_factor=0.95, connection="L1", name="lighting",
             profile=daily([(u(6, 7.5), u(1, 2), 40 + 20 * people), (u(17, 19), u(3, 6), 100 + 60 * people)],
                           clock_s)),
        Load(power_factor=0.9, connection=leg2, harmonics=(Harmonic(3, 0.2),), name="microwave",
             profile=daily([(u(11.5, 13), u(0.2, 0.5), u(1000, 1500))], clock_s)),
    ]
    draws = {name: rng.random() < share for name, share in house.appliances}
    spans = {"range": lambda: [(u(17, 19.5), u(0.5, 1.2), u(2000, 4000))],
             "dryer": lambda: [(u(9, 20), 1.0, u(4000, 5500))],
             "water_heater": lambda: [(u(6, 8), 1.0, 4500.0), (u(18, 21), 1.0, 4500.0)],
             "ev": lambda: [(u(18, 23), u(3, 5), u(6000, 7700))]}
    pf = {"range": 1.0, "dryer": 0.97, "water_heater": 1.0, "ev": 0.99}
    for name, has in draws.items():
        if has:
            loads.append(Load(power_factor=pf[name], connection=both, profile=daily(spans[name](), clock_s), name=name))
    pv = rng.random() < house.pv_share and pv_allowed
    if pv:
        loads.append(Load(connection=both, profile=_pv(u(*house.pv_kw) * 1000.0, clock_s), name="PV"))
    return tuple(loads), pv


__all__ = ["Member", "member", "household_loads", "daily", "fault_atom"]
