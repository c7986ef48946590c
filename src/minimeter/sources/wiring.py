"""What is connected, and what the meter's terminals see (SPEC S3.2, S3.4): the wiring
parts (:class:`CT`, :class:`Wiring`), the wiring faults (:data:`FAULT_KINDS`,
:class:`Fault`, :func:`apply_fault`) and the physics that turns a wiring into the
terminal voltages and CT currents (:func:`terminal_voltages`, :func:`ct_currents`).

The signals are built from the service conductors with the signal algebra of
:mod:`minimeter.sources.service`, so a fault is a change of wiring, service or loads and
its effect is the real electrical one, not a flag:

* a CT measures ``Σ direction × (current towards the loads)`` over the conductors through
  it (direction +1: arrow towards the source, the correct way; -1: reversed);
* a voltage terminal sees the conductor landed on it relative to the meter's neutral;
  an open terminal reads 0 V;
* neutral missing on a two-element meter: the meter's neutral floats to the midpoint of
  its two line terminals, so each sees ``±(V_L1 − V_L2)/2`` *(decision: equal input
  impedances on L1 and L2)*; on a single-element meter there is no return path and the
  meter is unpowered;
* a CT open or shorted delivers no current to the meter input;
* a CT rated differently from the meter scales the measured current by
  ``meter_rating / ct_rating``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from minimeter.errors import MinimeterError
from minimeter.meter.catalog import MeterSpec
from minimeter.sources.service import (
    CONNECTIONS,
    Load,
    Service,
    Signal,
    add_signals,
    conductor_currents,
    scale_signal,
)

FAULT_KINDS = (
    "ct-reversed",
    "ct-wrong-phase",
    "l1-l2-swapped",
    "voltage-open",
    "neutral-missing",
    "ct-open",
    "ct-shorted",
    "ct-rating-mismatch",
    "over-current",
    "supply-voltage",
    "frequency",
)
"""The wiring and supply faults of SPEC S3.4, by name."""

CONDUCTORS = ("L1", "L2", "N")
TERMINALS = ("L1", "L2", "N")
CT_STATES = ("ok", "open", "shorted")

# parameters each fault accepts (all optional), with what they mean
FAULT_PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "ct-reversed": ("ct",),                     # which CT (default CT1)
    "ct-wrong-phase": ("ct", "conductor"),      # CT moved onto the other leg's conductor
    "l1-l2-swapped": (),                        # the L1 and L2 voltage terminals exchanged
    "voltage-open": ("terminal",),              # L1 or L2 not connected (default L1)
    "neutral-missing": (),                      # the N terminal not connected
    "ct-open": ("ct",),
    "ct-shorted": ("ct",),
    "ct-rating-mismatch": ("ct", "rating"),     # the CT's rating, e.g. '100A'
    "over-current": ("amps", "connection"),     # an extra resistive load of this current
    "supply-voltage": ("volts",),               # the service's L–N voltage [V]
    "frequency": ("hz",),                       # the line frequency [Hz]
}


class InvalidInstallation(MinimeterError, ValueError):
    """An installation (file or object) that cannot be built; the message names the key."""


# --------------------------------------------------------------------------- wiring parts
@dataclass(frozen=True)
class CT:
    """A current transformer: the conductors through it, each with its direction
    (+1 arrow towards the source — correct; -1 reversed), its state, and its rating
    (primary amperes [A]; None: the meter's own)."""

    name: str
    conductors: tuple[tuple[str, int], ...]
    state: str = "ok"
    rating_a: float | None = None

    def __post_init__(self) -> None:
        if self.state not in CT_STATES:
            raise InvalidInstallation(f"{self.name}: state {self.state!r} unknown — valid: {', '.join(CT_STATES)}")
        for conductor, direction in self.conductors:
            if conductor not in CONDUCTORS:
                raise InvalidInstallation(
                    f"{self.name}: conductor {conductor!r} unknown — valid: {', '.join(CONDUCTORS)}")
            if direction not in (1, -1):
                raise InvalidInstallation(f"{self.name}: direction must be +1 or -1, got {direction!r}")
        if self.rating_a is not None and not (math.isfinite(self.rating_a) and self.rating_a > 0):
            raise InvalidInstallation(f"{self.name}: rating must be a positive current, got {self.rating_a!r}")

    def describe(self) -> str:
        through = " + ".join(f"{c}{'' if d > 0 else ' (reversed)'}" for c, d in self.conductors) or "nothing"
        extra = "" if self.state == "ok" else f", {self.state}"
        rating = "" if self.rating_a is None else f", rated {self.rating_a:g} A"
        return f"{self.name} on {through}{extra}{rating}"


@dataclass(frozen=True)
class Fault:
    """One fault of :data:`FAULT_KINDS` with its parameters (name → value pairs)."""

    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise InvalidInstallation(f"fault {self.kind!r} unknown — valid: {', '.join(FAULT_KINDS)}")
        allowed = FAULT_PARAMETERS[self.kind]
        for name, _ in self.params:
            if name not in allowed:
                raise InvalidInstallation(
                    f"fault {self.kind!r} takes no parameter {name!r}"
                    + (f" — its parameters: {', '.join(allowed)}" if allowed else " — it takes none"))

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.kind}({args})" if args else self.kind


@dataclass(frozen=True)
class Wiring:
    """What is actually connected, after the faults: the service, the voltage terminals
    (terminal → conductor, or None when open), the CTs and the loads."""

    service: Service
    terminals: tuple[tuple[str, str | None], ...]
    cts: tuple[CT, ...]
    loads: tuple[Load, ...]

    def terminal(self, name: str) -> str | None:
        return dict(self.terminals).get(name)


def correct_terminals(elements: int) -> tuple[tuple[str, str | None], ...]:
    """L1 (and L2) and N on their own conductors."""
    return tuple((t, t) for t in ("L1", "L2")[:elements]) + (("N", "N"),)


def correct_cts(elements: int) -> tuple[CT, ...]:
    """CT1 on L1 (and CT2 on L2), arrows towards the source."""
    return tuple(CT(f"CT{k + 1}", ((f"L{k + 1}", 1),)) for k in range(elements))


# --------------------------------------------------------------------------- physics
def _conductor_voltage(service: Service, conductor: str | None) -> Signal | None:
    if conductor is None:
        return None
    if conductor == "N":
        return ()
    if conductor not in service.legs:
        raise InvalidInstallation(
            f"a {service.kind} service has no conductor {conductor} — its conductors: "
            f"{', '.join(service.legs + ('N',))}")
    return service.leg_voltage(conductor)


def terminal_voltages(wiring: Wiring, elements: int) -> tuple[Signal, ...]:
    """The voltage of each line terminal (L1, L2) to the meter's neutral [V].

    An open line terminal reads 0 V. With the N terminal open, a two-element meter's
    neutral floats to the mean of its two line terminals (equal input impedances,
    a decision); with fewer than two line terminals connected there is no return path
    and every terminal reads 0 V (the meter is unpowered).
    """
    service = wiring.service
    lines = ("L1", "L2")[:elements]
    landed = {t: _conductor_voltage(service, wiring.terminal(t)) for t in lines}
    neutral = _conductor_voltage(service, wiring.terminal("N"))
    if neutral is None:
        connected = [landed[t] for t in lines if landed[t] is not None]
        if len(connected) < 2:
            return tuple(() for _ in lines)
        neutral = scale_signal(add_signals(*connected), 1.0 / len(connected))
    minus_n = scale_signal(neutral, -1.0)
    return tuple(() if landed[t] is None else add_signals(landed[t], minus_n) for t in lines)


def _towards_loads(currents: Mapping[str, Signal], conductor: str) -> Signal:
    """Current in ``conductor`` flowing from the source to the loads."""
    if conductor == "N":
        return scale_signal(currents["N"], -1.0)     # conductor_currents gives N back from the loads
    return currents[conductor]


def ct_currents(wiring: Wiring, spec: MeterSpec) -> tuple[Signal, ...]:
    """The current at each CT input of the meter, in primary amperes as the meter reads
    them [A]: the signed sum of the conductors through the CT, zero when it is open or
    shorted, scaled by ``meter rating / CT rating`` when the CT's rating differs."""
    currents = conductor_currents(wiring.service, wiring.loads)
    by_name = {ct.name: ct for ct in wiring.cts}
    out = []
    for k in range(spec.elements):
        ct = by_name.get(f"CT{k + 1}")
        if ct is None or ct.state != "ok":
            out.append(())
            continue
        parts = [scale_signal(_towards_loads(currents, c), float(d)) for c, d in ct.conductors]
        signal = add_signals(*parts) if parts else ()
        if ct.rating_a is not None and ct.rating_a != spec.rated_primary_a:
            signal = scale_signal(signal, spec.rated_primary_a / ct.rating_a)
        out.append(signal)
    return tuple(out)

def check_wiring(wiring: Wiring, spec: MeterSpec) -> None:
    """Raise :class:`InvalidInstallation` when ``wiring`` cannot exist on ``spec``'s meter: an
    unknown CT input or terminal, a conductor the service lacks, a 240 V load on a 2-wire service."""
    names = [ct.name for ct in wiring.cts]
    valid = [f"CT{k + 1}" for k in range(spec.elements)]
    for name in names:
        if name not in valid:
            raise InvalidInstallation(f"{spec.prefix} has CT inputs {', '.join(valid)}; there is no {name}")
    if len(set(names)) != len(names):
        raise InvalidInstallation("a CT is listed twice")
    valid_t = ("L1", "L2")[:spec.elements] + ("N",)
    for terminal, conductor in wiring.terminals:
        if terminal not in valid_t:
            raise InvalidInstallation(f"{spec.prefix} has voltage terminals {', '.join(valid_t)}; there is no {terminal}")
        _conductor_voltage(wiring.service, conductor)       # the conductor exists
    for ct in wiring.cts:
        for conductor, _ in ct.conductors:
            if conductor != "N" and conductor not in wiring.service.legs:
                raise InvalidInstallation(f"{ct.name} is on {conductor}, but a {wiring.service.kind} service has no {conductor}")
    for load in wiring.loads:
        if load.connection != "L1" and wiring.service.kind == "single":
            raise InvalidInstallation(f"load {load.name or load.watts!r} is on {load.connection}, "
                                      "but a single (1-phase 2-wire) service has only L1")



# --------------------------------------------------------------------------- faults
def _ct_name(fault: Fault, wiring: Wiring) -> str:
    name = str(fault.get("ct", "CT1")).upper()
    if name not in {ct.name for ct in wiring.cts}:
        raise InvalidInstallation(f"fault {fault.kind}: no {name} in this installation — "
                                  f"CTs: {', '.join(ct.name for ct in wiring.cts)}")
    return name


def _replace_ct(wiring: Wiring, name: str, **changes: Any) -> Wiring:
    return replace(wiring, cts=tuple(replace(ct, **changes) if ct.name == name else ct for ct in wiring.cts))


def ct_rating_a(value: Any, where: str) -> float:
    """A CT rating such as '100A', '100' or 100 → primary amperes [A]; ``where`` names it in errors."""
    text = str(value).strip().upper().removesuffix("A")
    try:
        amps = float(text)
    except ValueError:
        raise InvalidInstallation(f"{where}: {value!r} is not a CT rating such as '100A'") from None
    if not (math.isfinite(amps) and amps > 0):
        raise InvalidInstallation(f"{where}: the CT rating must be a positive current, got {value!r}")
    return amps


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInstallation(f"{where}: expected a number, got {value!r}") from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise InvalidInstallation(f"{where}: {x:g} is outside {lo:g}…{hi:g}")
    return x



def _ct(wiring: Wiring, name: str) -> CT:
    return next(c for c in wiring.cts if c.name == name)


def _ct_reversed(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    name = _ct_name(fault, wiring)
    return _replace_ct(wiring, name, conductors=tuple((c, -d) for c, d in _ct(wiring, name).conductors))


def _ct_wrong_phase(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    name = _ct_name(fault, wiring)
    ct = _ct(wiring, name)
    own = ct.conductors[0][0] if ct.conductors else "L1"
    conductor = str(fault.get("conductor", "L2" if own == "L1" else "L1")).upper()
    if conductor not in wiring.service.legs:
        raise InvalidInstallation(f"fault ct-wrong-phase: a {wiring.service.kind} service has no {conductor} "
                                  "(a wrong phase needs a split-phase or network service)")
    direction = ct.conductors[0][1] if ct.conductors else 1
    return _replace_ct(wiring, name, conductors=((conductor, direction),))


def _l1_l2_swapped(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    if spec.elements < 2 and wiring.service.kind == "single":
        raise InvalidInstallation("fault l1-l2-swapped needs a two-element meter on a split-phase or network service")
    terms = dict(wiring.terminals)
    if spec.elements < 2:
        terms["L1"] = {"L1": "L2", "L2": "L1"}.get(terms.get("L1"), terms.get("L1"))
    else:
        terms["L1"], terms["L2"] = terms.get("L2"), terms.get("L1")
    return replace(wiring, terminals=tuple(terms.items()))


def _terminal_open(wiring: Wiring, terminal: str) -> Wiring:
    terms = dict(wiring.terminals)
    terms[terminal] = None
    return replace(wiring, terminals=tuple(terms.items()))


def _voltage_open(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    terminal = str(fault.get("terminal", "L1")).upper()
    valid = ("L1", "L2")[:spec.elements] + ("N",)
    if terminal not in valid:
        raise InvalidInstallation(f"fault voltage-open: terminal {terminal!r} — valid: {', '.join(valid)}")
    return _terminal_open(wiring, terminal)


def _neutral_missing(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    return _terminal_open(wiring, "N")


def _ct_open(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    return _replace_ct(wiring, _ct_name(fault, wiring), state="open")


def _ct_shorted(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    return _replace_ct(wiring, _ct_name(fault, wiring), state="shorted")


def _ct_rating_mismatch(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    name = _ct_name(fault, wiring)
    default = 100.0 if spec.rated_primary_a != 100.0 else 200.0
    return _replace_ct(wiring, name, rating_a=ct_rating_a(fault.get("rating", default), "fault ct-rating-mismatch"))


def _over_current(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    connection = str(fault.get("connection", "L1")).upper()
    if connection not in CONNECTIONS:
        raise InvalidInstallation(f"fault over-current: connection {connection!r} — valid: {', '.join(CONNECTIONS)}")
    amps = _number(fault.get("amps", 1.25 * spec.rated_primary_a), "fault over-current amps", 0.0, 1e6)
    v_rms, _ = wiring.service.connection_voltage(connection)
    load = Load(amps * v_rms, 1.0, connection=connection, name=f"over-range load {amps:g} A")
    return replace(wiring, loads=wiring.loads + (load,))


def _supply_voltage(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    """The service at another L–N voltage [V]. *(decision: the loads keep their stated
    watts — constant-power loads — so their current scales with 1/V.)*"""
    volts = _number(fault.get("volts", 100.0), "fault supply-voltage volts", 0.0, 1000.0)
    return replace(wiring, service=replace(wiring.service, volts=volts))


def _frequency(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    hz = _number(fault.get("hz", 45.0), "fault frequency hz", 1.0, 1000.0)
    return replace(wiring, service=replace(wiring.service, frequency_hz=hz))


_FAULTS: Mapping[str, Callable[[Fault, Wiring, MeterSpec], Wiring]] = {
    "ct-reversed": _ct_reversed,
    "ct-wrong-phase": _ct_wrong_phase,
    "l1-l2-swapped": _l1_l2_swapped,
    "voltage-open": _voltage_open,
    "neutral-missing": _neutral_missing,
    "ct-open": _ct_open,
    "ct-shorted": _ct_shorted,
    "ct-rating-mismatch": _ct_rating_mismatch,
    "over-current": _over_current,
    "supply-voltage": _supply_voltage,
    "frequency": _frequency,
}
assert tuple(_FAULTS) == FAULT_KINDS


def apply_fault(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    """The wiring with ``fault`` made (a pure function; :class:`Fault` has checked its kind)."""
    return _FAULTS[fault.kind](fault, wiring, spec)


__all__ = ["FAULT_KINDS", "FAULT_PARAMETERS", "CONDUCTORS", "TERMINALS", "CT_STATES", "InvalidInstallation", "CT",
           "Fault", "Wiring", "correct_terminals", "correct_cts", "terminal_voltages", "ct_currents", "check_wiring",
           "ct_rating_a", "apply_fault"]
