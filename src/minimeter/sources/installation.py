"""Installations: the meter, the service, the wiring, the loads, and wiring faults (SPEC §3).

An :class:`Installation` says what is landed where (SPEC S3.2): which service conductor
is on each voltage terminal (L1, L2, N), which conductor(s) pass through each CT and in
which direction, the CT's own rating, and the loads. The signals at the meter's
terminals are built from the service conductors with the signal algebra of
:mod:`minimeter.sources.service` — so a fault (SPEC S3.4) is a change of wiring, service or
loads, and its effect is the real electrical one, not a flag:

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

Faults are recorded on the installation (:meth:`Installation.with_fault`) and applied,
in order, when the terminal signals are built (:meth:`Installation.wiring`).
Installation files are TOML; see ``docs/installation-format.md`` and
:func:`load_installation`.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from minimeter.meter.catalog import MeterSpec, meter_spec
from minimeter.errors import InvalidLoad, InvalidOption, MinimeterError, UnknownModel
from minimeter.meter.core import Meter
from minimeter.sources.service import (
    CONNECTIONS,
    SERVICE_KINDS,
    Harmonic,
    Load,
    Profile,
    Service,
    Signal,
    SyntheticSource,
    add_signals,
    conductor_currents,
    household_day,
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


# --------------------------------------------------------------------------- the installation
@dataclass(frozen=True)
class Installation:
    """A meter as installed: model and options, service, wiring, loads, faults.

    ``terminals`` and ``cts`` are the wiring as stated (a file may state a faulty wiring
    directly); ``faults`` are applied on top of it (:meth:`wiring`).
    ``duration_s`` is how long to simulate [s], or None for the caller's default.
    """

    model: str = "7B"
    ct_rating: str = "200A"
    ct_ratio: str | None = None
    register: str = "lcd"
    t_suffix: bool = False
    service: Service = field(default_factory=Service)
    terminals: tuple[tuple[str, str | None], ...] | None = None     # None: correct for the model
    cts: tuple[CT, ...] | None = None                               # None: correct for the model
    loads: tuple[Load, ...] = ()
    faults: tuple[Fault, ...] = ()
    duration_s: float | None = None
    name: str = ""
    description: str = ""

    # ------------------------------------------------------------------ the meter
    @property
    def spec(self) -> MeterSpec:
        """The meter's validated spec (raises InvalidInstallation on a bad model/option)."""
        try:
            return meter_spec(self.model, ct_rating=self.ct_rating, ct_ratio=self.ct_ratio,
                              register=self.register, t_suffix=self.t_suffix)
        except (UnknownModel, InvalidOption) as exc:
            raise InvalidInstallation(f"meter: {exc}") from None

    def meter(self, **meter_keywords: Any) -> Meter:
        """A new :class:`Meter` of this installation's model and options."""
        return Meter(self.spec, **meter_keywords)

    # ------------------------------------------------------------------ changing it
    def with_fault(self, kind: str, **params: Any) -> "Installation":
        """A new installation with one more fault (see :data:`FAULT_KINDS` and
        :data:`FAULT_PARAMETERS`), e.g. ``inst.with_fault("ct-reversed", ct="CT2")``.
        The fault is checked against this installation at once."""
        fault = Fault(kind, tuple(sorted(params.items())))
        new = replace(self, faults=self.faults + (fault,))
        new.wiring()          # validate now, not at the first use
        return new

    def without_faults(self) -> "Installation":
        """The same installation with the added faults removed (the stated wiring stays)."""
        return replace(self, faults=())

    def with_loads(self, loads: Sequence[Load]) -> "Installation":
        """The same installation with other loads."""
        return replace(self, loads=tuple(loads))

    # ------------------------------------------------------------------ what is connected
    def wiring(self) -> Wiring:
        """The wiring as stated, with every fault applied in order."""
        spec = self.spec
        wiring = Wiring(
            service=self.service,
            terminals=self.terminals if self.terminals is not None else correct_terminals(spec.elements),
            cts=self.cts if self.cts is not None else correct_cts(spec.elements),
            loads=self.loads,
        )
        for fault in self.faults:
            wiring = apply_fault(fault, wiring, spec)
        _check_wiring(wiring, spec)
        return wiring

    def source(self, *, noise_v_rms: float = 0.0, noise_a_rms: float = 0.0, seed: int = 0) -> SyntheticSource:
        """What the meter's terminals see: per element, the terminal voltage and the CT
        current at the meter input (primary amperes as the meter reads them)."""
        spec = self.spec
        wiring = self.wiring()
        volts = terminal_voltages(wiring, spec.elements)
        amps = ct_currents(wiring, spec)
        return SyntheticSource(
            frequency_hz=wiring.service.frequency_hz,
            volts=volts,
            amps=amps,
            noise_v_rms=noise_v_rms,
            noise_a_rms=noise_a_rms,
            seed=seed,
            labels=tuple(f"L{k + 1}/CT{k + 1}" for k in range(spec.elements)),
        )

    def describe(self) -> list[str]:
        """Human-readable lines: meter, service, terminals, CTs, loads, faults."""
        spec = self.spec
        wiring = self.wiring()
        svc = wiring.service
        lines = [
            f"meter    {spec.model_number} ({spec.elements} element{'s' if spec.elements > 1 else ''})",
            f"service  {svc.kind}, {svc.volts:g} V L–N, {svc.frequency_hz:g} Hz",
            "voltage  " + ", ".join(f"{t}←{c or 'open'}" for t, c in wiring.terminals),
        ]
        lines += [f"CT       {ct.describe()}" for ct in wiring.cts]
        for load in wiring.loads:
            what = "profile" if load.profile is not None else f"{load.watts:g} W"
            pf = f"PF {load.power_factor:g} {'lead' if load.leading else 'lag'}" if load.power_factor < 1 else "PF 1"
            lines.append(f"load     {load.name or what} on {load.connection}, {what}, {pf}")
        lines += [f"fault    {f.describe()}" for f in self.faults]
        return lines


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


def _check_wiring(wiring: Wiring, spec: MeterSpec) -> None:
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


def _rating_a(value: Any, where: str) -> float:
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


def apply_fault(fault: Fault, wiring: Wiring, spec: MeterSpec) -> Wiring:
    """The wiring with ``fault`` made (a pure function)."""
    kind = fault.kind
    if kind == "ct-reversed":
        name = _ct_name(fault, wiring)
        ct = next(c for c in wiring.cts if c.name == name)
        return _replace_ct(wiring, name, conductors=tuple((c, -d) for c, d in ct.conductors))
    if kind == "ct-wrong-phase":
        name = _ct_name(fault, wiring)
        ct = next(c for c in wiring.cts if c.name == name)
        own = ct.conductors[0][0] if ct.conductors else "L1"
        default = "L2" if own == "L1" else "L1"
        conductor = str(fault.get("conductor", default)).upper()
        if conductor not in wiring.service.legs:
            raise InvalidInstallation(f"fault ct-wrong-phase: a {wiring.service.kind} service has no {conductor} "
                                      "(a wrong phase needs a split-phase or network service)")
        direction = ct.conductors[0][1] if ct.conductors else 1
        return _replace_ct(wiring, name, conductors=((conductor, direction),))
    if kind == "l1-l2-swapped":
        if spec.elements < 2 and wiring.service.kind == "single":
            raise InvalidInstallation("fault l1-l2-swapped needs a two-element meter on a split-phase or network service")
        terms = dict(wiring.terminals)
        if spec.elements < 2:
            terms["L1"] = {"L1": "L2", "L2": "L1"}.get(terms.get("L1"), terms.get("L1"))
        else:
            terms["L1"], terms["L2"] = terms.get("L2"), terms.get("L1")
        return replace(wiring, terminals=tuple(terms.items()))
    if kind == "voltage-open":
        terminal = str(fault.get("terminal", "L1")).upper()
        valid = ("L1", "L2")[:spec.elements] + ("N",)
        if terminal not in valid:
            raise InvalidInstallation(f"fault voltage-open: terminal {terminal!r} — valid: {', '.join(valid)}")
        terms = dict(wiring.terminals)
        terms[terminal] = None
        return replace(wiring, terminals=tuple(terms.items()))
    if kind == "neutral-missing":
        terms = dict(wiring.terminals)
        terms["N"] = None
        return replace(wiring, terminals=tuple(terms.items()))
    if kind in ("ct-open", "ct-shorted"):
        name = _ct_name(fault, wiring)
        return _replace_ct(wiring, name, state="open" if kind == "ct-open" else "shorted")
    if kind == "ct-rating-mismatch":
        name = _ct_name(fault, wiring)
        default = 100.0 if spec.rated_primary_a != 100.0 else 200.0
        rating = _rating_a(fault.get("rating", default), "fault ct-rating-mismatch")
        return _replace_ct(wiring, name, rating_a=rating)
    if kind == "over-current":
        connection = str(fault.get("connection", "L1")).upper()
        if connection not in CONNECTIONS:
            raise InvalidInstallation(f"fault over-current: connection {connection!r} — valid: {', '.join(CONNECTIONS)}")
        amps = _number(fault.get("amps", 1.25 * spec.rated_primary_a), "fault over-current amps", 0.0, 1e6)
        v_rms, _ = wiring.service.connection_voltage(connection)
        load = Load(amps * v_rms, 1.0, connection=connection, name=f"over-range load {amps:g} A")
        return replace(wiring, loads=wiring.loads + (load,))
    if kind == "supply-voltage":
        volts = _number(fault.get("volts", 100.0), "fault supply-voltage volts", 0.0, 1000.0)
        return replace(wiring, service=_rescaled_service(wiring, volts))
    if kind == "frequency":
        hz = _number(fault.get("hz", 45.0), "fault frequency hz", 1.0, 1000.0)
        return replace(wiring, service=replace(wiring.service, frequency_hz=hz))
    raise InvalidInstallation(f"fault {kind!r} unknown")        # pragma: no cover — Fault checks


def _rescaled_service(wiring: Wiring, volts: float) -> Service:
    """The service at another L–N voltage [V]. *(decision: the loads keep their stated
    watts — constant-power loads — so their current scales with 1/V.)*"""
    return replace(wiring.service, volts=volts)


# --------------------------------------------------------------------------- the built-in one
def default_installation() -> Installation:
    """The built-in 24-hour household (:func:`minimeter.sources.service.household_day`) on a
    7B meter with 200 A CTs, correctly wired."""
    service, loads = household_day()
    return Installation(model="7B", ct_rating="200A", service=service, loads=tuple(loads),
                        name="household", description="built-in 24-hour household, correctly wired")


# --------------------------------------------------------------------------- TOML files
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_S = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_TOP_KEYS = {"name", "description", "duration", "meter", "service", "terminals", "ct", "load", "fault"}


class _Reader:
    """Reads the parsed TOML, naming the exact key (and its line) on every error."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def fail(self, key: tuple, problem: str) -> InvalidInstallation:
        line = self._line_of(key)
        where = f"{self.path}:{line}" if line else str(self.path)
        dotted = ".".join(f"[{k + 1}]" if isinstance(k, int) else str(k) for k in key).replace(".[", "[")
        return InvalidInstallation(f"{where}: {dotted}: {problem}")

    def _line_of(self, key: tuple) -> int | None:
        """Best-effort line number of a key path such as ('load', 1, 'power_factor')."""
        table: list = []
        counts: dict[str, int] = {}
        found_table = None
        for number, raw in enumerate(self.lines, 1):
            text = raw.split("#", 1)[0].strip()
            m = re.match(r"^\[\[\s*([\w.-]+)\s*\]\]$", text)
            if m:
                name = m.group(1)
                counts[name] = counts.get(name, 0) + 1
                table = [name, counts[name] - 1]
                if tuple(table) == tuple(key[:2]) and len(key) == 2:
                    return number
                if tuple(table) == tuple(key[:2]):
                    found_table = number
                continue
            m = re.match(r"^\[\s*([\w.-]+)\s*\]$", text)
            if m:
                table = m.group(1).split(".")
                if tuple(table) == tuple(key[:len(table)]) and len(key) == len(table):
                    return number
                if tuple(table) == tuple(key[:len(table)]):
                    found_table = number
                continue
            rest = [k for k in key[len(table):] if not isinstance(k, int)] if tuple(key[:len(table)]) == tuple(table) else None
            if rest:
                m = re.match(r"^([\w.\"'-]+)\s*=", text)
                if m and m.group(1).strip("\"'") == str(rest[0]):
                    return number
        return found_table

    # typed getters -------------------------------------------------------------
    def table(self, data: Any, key: tuple) -> dict:
        if not isinstance(data, dict):
            raise self.fail(key, f"expected a table, got {type(data).__name__}")
        return data

    def known(self, data: dict, key: tuple, allowed: Sequence[str]) -> None:
        for name in data:
            if name not in allowed:
                raise self.fail(key + (name,), f"unknown key — valid here: {', '.join(sorted(allowed))}")

    def string(self, data: dict, key: tuple, default: Any = ..., choices: Sequence[str] | None = None) -> Any:
        name = key[-1]
        if name not in data:
            if default is ...:
                raise self.fail(key, "missing (required)")
            return default
        value = data[name]
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"{value!r} is not one of: {', '.join(choices)}")
        return value

    def number(self, data: dict, key: tuple, default: Any = ..., lo: float = -math.inf, hi: float = math.inf) -> Any:
        name = key[-1]
        if name not in data:
            if default is ...:
                raise self.fail(key, "missing (required)")
            return default
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {value!r}")
        if not (math.isfinite(value) and lo <= value <= hi):
            raise self.fail(key, f"{value!r} is outside {lo:g} … {hi:g}")
        return float(value)

    def boolean(self, data: dict, key: tuple, default: bool) -> bool:
        value = data.get(key[-1], default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def array(self, data: dict, key: tuple) -> list:
        value = data.get(key[-1], [])
        if not isinstance(value, list):
            raise self.fail(key, f"expected an array, got {value!r}")
        return value


def parse_duration_s(value: Any) -> float:
    """'60s', '90min', '1.5h', '1d' or a number of seconds → seconds [s]."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration — e.g. 60s, 90min, 24h, 1d or a number of seconds")
        seconds = float(m.group(1)) * _UNIT_S[(m.group(2) or "").lower()]
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError("the duration must be positive")
    return seconds


def _parse_pf(value: Any) -> tuple[float, bool]:
    """0.9, '0.9lag', '0.9 lead' → (power factor, leading)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), False
    text = str(value).strip().lower().replace(" ", "")
    lead = text.endswith("lead")
    number = text.removesuffix("lead").removesuffix("lag")
    return float(number), lead


def _conductor_entry(r: _Reader, value: Any, key: tuple) -> tuple[str, int]:
    """'L1' (arrow towards the source), '-L1' (reversed), or {conductor, direction}."""
    if isinstance(value, str):
        text = value.strip().upper()
        direction = -1 if text.startswith("-") else 1
        conductor = text.lstrip("+-").strip()
    elif isinstance(value, dict):
        r.known(value, key, ("conductor", "direction"))
        conductor = r.string(value, key + ("conductor",)).upper()
        dir_text = r.string(value, key + ("direction",), "towards-source",
                            ("towards-source", "towards-load", "correct", "reversed"))
        direction = 1 if dir_text in ("towards-source", "correct") else -1
    else:
        raise r.fail(key, f"expected 'L1', '-L1' or {{conductor = 'L1', direction = 'reversed'}}, got {value!r}")
    if conductor not in CONDUCTORS:
        raise r.fail(key, f"conductor {conductor!r} unknown — valid: {', '.join(CONDUCTORS)}")
    return conductor, direction


def _harmonics(r: _Reader, items: list, key: tuple) -> tuple[Harmonic, ...]:
    out = []
    for j, h in enumerate(items):
        hk = key + (j,)
        h = r.table(h, hk)
        r.known(h, hk, ("order", "magnitude", "phase_deg"))
        try:
            out.append(Harmonic(int(r.number(h, hk + ("order",), lo=2, hi=1000)),
                                r.number(h, hk + ("magnitude",), lo=0.0, hi=10.0),
                                r.number(h, hk + ("phase_deg",), 0.0)))
        except InvalidLoad as exc:
            raise r.fail(hk, str(exc)) from None
    return tuple(out)


def load_installation(path: str | Path) -> Installation:
    """Read an installation file (TOML; see ``docs/installation-format.md``).

    Every problem raises :class:`InvalidInstallation` naming the file, the line, the key
    and what is wrong, e.g. ``bad.toml:14: load[2].power_factor: 1.5 is outside 0.01 … 1``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInstallation(f"{path}: no such installation file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInstallation(f"{path}: cannot be read ({exc})") from None
    return parse_installation(text, path)


def parse_installation(text: str, path: str | Path = "<installation>") -> Installation:
    """Parse the text of an installation file; ``path`` names it in errors and anchors
    relative profile paths."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInstallation(f"{path}: not valid TOML: {exc}") from None
    r = _Reader(path, text)
    r.known(data, (), sorted(_TOP_KEYS))

    # meter ----------------------------------------------------------------------
    m = r.table(data.get("meter", {}), ("meter",))
    r.known(m, ("meter",), ("model", "ct_rating", "ct_ratio", "register", "t_suffix"))
    model = r.string(m, ("meter", "model"), "7B")
    rating = m.get("ct_rating", "200A")
    if isinstance(rating, (int, float)) and not isinstance(rating, bool):
        rating = f"{rating:g}A"
    if not isinstance(rating, str):
        raise r.fail(("meter", "ct_rating"), f"expected a rating such as '200A', got {rating!r}")
    ct_ratio = m.get("ct_ratio")
    if ct_ratio is not None and not isinstance(ct_ratio, (str, int, float)):
        raise r.fail(("meter", "ct_ratio"), f"expected a ratio such as '200:0.1', got {ct_ratio!r}")
    register = r.string(m, ("meter", "register"), "lcd", ("lcd", "counter100", "counter1000"))
    t_suffix = r.boolean(m, ("meter", "t_suffix"), False)
    try:
        spec = meter_spec(model, ct_rating=rating, ct_ratio=None if ct_ratio is None else str(ct_ratio),
                          register=register, t_suffix=t_suffix)
    except UnknownModel as exc:
        raise r.fail(("meter", "model"), str(exc)) from None
    except InvalidOption as exc:
        raise r.fail(("meter",), str(exc)) from None

    # service --------------------------------------------------------------------
    s = r.table(data.get("service", {}), ("service",))
    r.known(s, ("service",), ("kind", "volts", "frequency_hz", "voltage_harmonics", "phase_deg"))
    default_kind = "single" if spec.elements == 1 else "split"
    kind = r.string(s, ("service", "kind"), default_kind, SERVICE_KINDS)
    try:
        service = Service(
            kind,
            r.number(s, ("service", "volts"), 120.0, 0.0, 1000.0),
            r.number(s, ("service", "frequency_hz"), 60.0, 1.0, 1000.0),
            _harmonics(r, r.array(s, ("service", "voltage_harmonics")), ("service", "voltage_harmonics")),
            r.number(s, ("service", "phase_deg"), 0.0),
        )
    except InvalidLoad as exc:
        raise r.fail(("service",), str(exc)) from None

    # terminals ------------------------------------------------------------------
    terminals = None
    if "terminals" in data:
        t = r.table(data["terminals"], ("terminals",))
        valid_t = ("L1", "L2")[:spec.elements] + ("N",)
        r.known(t, ("terminals",), valid_t)
        landed = []
        for name in valid_t:
            value = t.get(name, name)
            if not isinstance(value, str):
                raise r.fail(("terminals", name), f"expected a conductor name or 'open', got {value!r}")
            value = value.strip()
            if value.lower() in ("open", "none", ""):
                landed.append((name, None))
                continue
            if value.upper() not in CONDUCTORS or (value.upper() != "N" and value.upper() not in service.legs):
                raise r.fail(("terminals", name), f"{value!r} is not a conductor of a {kind} service — valid: "
                             f"{', '.join(service.legs + ('N',))} or 'open'")
            landed.append((name, value.upper()))
        terminals = tuple(landed)

    # CTs --------------------------------------------------------------------------
    cts = None
    if "ct" in data:
        items = data["ct"]
        if not isinstance(items, list):
            raise r.fail(("ct",), "expected [[ct]] tables")
        out = []
        for j, c in enumerate(items):
            key = ("ct", j)
            c = r.table(c, key)
            r.known(c, key, ("name", "conductors", "state", "rating"))
            name = r.string(c, key + ("name",), f"CT{j + 1}").upper()
            if name not in spec.ct_inputs:
                raise r.fail(key + ("name",), f"{spec.prefix} has CT inputs {', '.join(spec.ct_inputs)}; there is no {name}")
            conductors = c.get("conductors", [f"L{j + 1}"])
            if isinstance(conductors, str):
                conductors = [conductors]
            if not isinstance(conductors, list):
                raise r.fail(key + ("conductors",), f"expected an array such as ['L1'] or ['L1', '-L2'], got {conductors!r}")
            pairs = tuple(_conductor_entry(r, v, key + ("conductors",)) for v in conductors)
            for conductor, _ in pairs:
                if conductor != "N" and conductor not in service.legs:
                    raise r.fail(key + ("conductors",), f"a {kind} service has no conductor {conductor}")
            state = r.string(c, key + ("state",), "ok", CT_STATES)
            rating_a = None
            if "rating" in c:
                try:
                    rating_a = _rating_a(c["rating"], "rating")
                except InvalidInstallation:
                    raise r.fail(key + ("rating",), f"{c['rating']!r} is not a CT rating such as '100A'") from None
            out.append(CT(name, pairs, state, rating_a))
        names = [ct.name for ct in out]
        if len(set(names)) != len(names):
            raise r.fail(("ct",), f"a CT is listed twice: {', '.join(names)}")
        cts = tuple(out)

    # loads ------------------------------------------------------------------------
    loads = []
    items = data.get("load", [])
    if not isinstance(items, list):
        raise r.fail(("load",), "expected [[load]] tables")
    for j, ld in enumerate(items):
        key = ("load", j)
        ld = r.table(ld, key)
        r.known(ld, key, ("name", "watts", "amps", "power_factor", "leading", "connection", "harmonics",
                          "profile", "generation"))
        connection = r.string(ld, key + ("connection",), "L1", CONNECTIONS)
        if connection != "L1" and kind == "single":
            raise r.fail(key + ("connection",), f"{connection!r}: a single (1-phase 2-wire) service has only L1")
        try:
            pf, leading = _parse_pf(ld.get("power_factor", 1.0))
        except ValueError:
            raise r.fail(key + ("power_factor",), f"{ld['power_factor']!r} is not a power factor such as 0.9, "
                         "'0.9lag' or '0.8lead'") from None
        if not (0.0 < pf <= 1.0):
            raise r.fail(key + ("power_factor",), f"{pf:g} is outside (0, 1] (say 'lead' for leading)")
        leading = r.boolean(ld, key + ("leading",), leading)
        profile = None
        watts = 0.0
        if "profile" in ld:
            ppath = Path(r.string(ld, key + ("profile",)))
            if not ppath.is_absolute():
                ppath = path.parent / ppath
            try:
                profile = Profile.from_csv(str(ppath))
            except OSError:
                raise r.fail(key + ("profile",), f"cannot read the profile file {ppath}") from None
            except InvalidLoad as exc:
                raise r.fail(key + ("profile",), str(exc)) from None
            if "watts" in ld or "amps" in ld:
                raise r.fail(key + ("profile",), "give either a profile or watts/amps, not both")
        elif "amps" in ld:
            if "watts" in ld:
                raise r.fail(key + ("amps",), "give either watts or amps, not both")
            amps = r.number(ld, key + ("amps",), lo=0.0, hi=1e6)
            v_rms, _ = service.connection_voltage(connection)
            watts = amps * v_rms * pf
        else:
            watts = r.number(ld, key + ("watts",), lo=-1e7, hi=1e7)
        if r.boolean(ld, key + ("generation",), False):
            watts = -abs(watts)
            if profile is not None:
                profile = profile.scaled(-1.0)
        harmonics = _harmonics(r, r.array(ld, key + ("harmonics",)), key + ("harmonics",))
        name = r.string(ld, key + ("name",), "")
        try:
            loads.append(Load(watts, pf, leading, connection, harmonics, profile, name=name))
        except InvalidLoad as exc:
            raise r.fail(key, str(exc)) from None

    # faults -----------------------------------------------------------------------
    faults = []
    items = data.get("fault", [])
    if not isinstance(items, list):
        raise r.fail(("fault",), "expected [[fault]] tables")
    for j, f in enumerate(items):
        key = ("fault", j)
        f = r.table(f, key)
        kind_f = r.string(f, key + ("kind",), ..., FAULT_KINDS)
        allowed = ("kind",) + FAULT_PARAMETERS[kind_f]
        r.known(f, key, allowed)
        faults.append(Fault(kind_f, tuple(sorted((k, v) for k, v in f.items() if k != "kind"))))

    # the rest ---------------------------------------------------------------------
    duration_s = None
    if "duration" in data:
        try:
            duration_s = parse_duration_s(data["duration"])
        except ValueError as exc:
            raise r.fail(("duration",), str(exc)) from None
    name = data.get("name", path.stem)
    description = data.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise r.fail((key,), f"expected a string, got {value!r}")

    inst = Installation(
        model=spec.prefix, ct_rating=spec.ct_rating, ct_ratio=None if ct_ratio is None else str(ct_ratio),
        register=register, t_suffix=spec.t_suffix, service=service, terminals=terminals, cts=cts,
        loads=tuple(loads), faults=tuple(faults), duration_s=duration_s, name=name, description=description,
    )
    try:
        replace(inst, faults=()).wiring()
    except InvalidInstallation as exc:
        raise InvalidInstallation(f"{path}: {exc}") from None
    for j in range(len(faults)):
        try:
            replace(inst, faults=tuple(faults[:j + 1])).wiring()
        except InvalidInstallation as exc:
            raise r.fail(("fault", j), str(exc).removeprefix(f"fault {faults[j].kind}: ")) from None
    return inst
