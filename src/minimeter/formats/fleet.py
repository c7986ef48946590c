"""Fleet files (TOML; README "Fleets", SPEC S14.1): many meters, given either as a list
of installation files or as a seeded population.

::

    name = "street"
    seed = 42                    # same fleet + seed → the same results, whatever the workers
    period = "1d"                # simulated time per meter
    start = "17h"                # clock time of simulated time 0 (the households' day), default 0h
    interval = "15min"           # interval-energy length
    quantities = true            # the S12.2 registers too (import/export, varh, VAh, max demand)
    installations = ["a.toml", "b.toml"]      # either: installation files (relative to this file)

    [population]                 # or: a seeded population
    meters = 200
    models = { "7B" = 0.8, "6S" = 0.2 }       # model mix (weights, normalised)
    ct_ratings = { "200A" = 0.7, "100A" = 0.3 }
    services = { split = 0.8, network = 0.2 } # for two-element meters; one-element meters: single
    volts = [114, 126]           # supply L–N drawn uniformly [V]
    frequency_hz = 60

    [population.household]       # the load model's randomness
    occupancy = [1, 5]           # people per home, uniform whole number
    appliances = { range = 0.8, dryer = 0.6, water_heater = 0.3, ev = 0.1 }   # share of homes with each
    pv = 0.15                    # share of homes with PV back-feed (declared as generation)
    pv_kw = [2, 8]               # PV peak [kW], uniform

    [population.faults]          # share of meters with each wiring fault (at most one per meter)
    ct-reversed = 0.02
    voltage-open = 0.01

:func:`load_fleet` reads one into a :class:`Fleet`; every problem raises
:class:`InvalidFleet` naming the file, the line and the key. Drawing the meters is
:mod:`minimeter.fleet.population`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minimeter.errors import MinimeterError
from minimeter.formats import InvalidFormat, parse_duration_s
from minimeter.formats.installation import MAX_DURATION_S, load_installation
from minimeter.formats.toml import Key, TomlReader, read_text
from minimeter.meter.catalog import meter_spec
from minimeter.sources.installation import Installation
from minimeter.sources.wiring import FAULT_KINDS

MAX_METERS = 1_000_000             # S15.1: meters in one fleet
MAX_SEED = (1 << 63) - 1
APPLIANCES = ("range", "dryer", "water_heater", "ev")
INTERVAL_RANGE_S = (60.0, 86400.0)  # S15.1: interval length 1 min … 1 day
_TOP_KEYS = ("name", "description", "seed", "period", "start", "interval", "quantities", "installations", "population")
_POP_KEYS = ("meters", "models", "ct_ratings", "services", "volts", "frequency_hz", "household", "faults")
_HOUSE_KEYS = ("occupancy", "appliances", "pv", "pv_kw")


class InvalidFleet(MinimeterError, ValueError):
    """A fleet file that cannot be read; the message names the file, the line and the key."""


@dataclass(frozen=True)
class Household:
    """The household load model's randomness (see :mod:`minimeter.fleet.population`)."""

    occupancy: tuple[int, int] = (1, 5)
    appliances: tuple[tuple[str, float], ...] = (("range", 0.8), ("dryer", 0.6), ("water_heater", 0.3),
                                                  ("ev", 0.1))
    pv_share: float = 0.15
    pv_kw: tuple[float, float] = (2.0, 8.0)


@dataclass(frozen=True)
class Population:
    """A seeded population: the mixes are (name, weight) pairs, weights normalised when drawn."""

    meters: int
    models: tuple[tuple[str, float], ...] = (("7B", 1.0),)
    ct_ratings: tuple[tuple[str, float], ...] = (("200A", 1.0),)
    services: tuple[tuple[str, float], ...] = (("split", 1.0),)
    volts: tuple[float, float] = (114.0, 126.0)
    frequency_hz: float = 60.0
    household: Household = field(default_factory=Household)
    faults: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Fleet:
    """Many meters: ``installations`` (files read) or a ``population``; ``period_s`` of
    simulated time each, interval energy every ``interval_s``; ``seed`` makes it repeatable."""

    name: str
    seed: int
    period_s: float
    interval_s: float = 900.0
    start_s: float = 0.0              # clock time of day at simulated time 0 [s] (population loads)
    quantities: bool = True           # meters with the S12.2 registers (Meter(quantities=True))
    installations: tuple[Installation, ...] = ()
    population: Population | None = None
    description: str = ""

    @property
    def meters(self) -> int:
        return self.population.meters if self.population is not None else len(self.installations)


def load_fleet(path: str | Path) -> Fleet:
    """Read a fleet file (see the module's docstring)."""
    path = Path(path)
    return parse_fleet(read_text(path, InvalidFleet, "fleet"), path)


def parse_fleet(text: str, path: str | Path = "<fleet>") -> Fleet:
    """Parse the text of a fleet file; ``path`` names it in errors and anchors relative paths."""
    r = TomlReader(path, text, InvalidFleet)
    r.known(r.data, (), _TOP_KEYS)
    if ("installations" in r.data) == ("population" in r.data):
        raise r.fail(("installations",), "give either installations = [...] or a [population] table (one of them)")
    installations = _installations(r) if "installations" in r.data else ()
    population = _population(r) if "population" in r.data else None
    return Fleet(name=r.string(r.data, ("name",), r.path.stem), seed=r.integer(r.data, ("seed",), 0, 0, MAX_SEED),
                 period_s=_duration(r, ("period",), "1d", (1.0, MAX_DURATION_S)),
                 interval_s=_duration(r, ("interval",), "15min", INTERVAL_RANGE_S),
                 start_s=_duration(r, ("start",), "0h", (0.0, 86399.0)),
                 quantities=r.boolean(r.data, ("quantities",), True),
                 installations=installations, population=population,
                 description=r.string(r.data, ("description",), ""))


def _duration(r: TomlReader, key: Key, default: str, bounds: tuple[float, float]) -> float:
    try:
        seconds = parse_duration_s(r.data.get(key[-1], default), allow_zero=bounds[0] == 0)
    except InvalidFormat as exc:
        raise r.fail(key, str(exc)) from None
    if not bounds[0] <= seconds <= bounds[1]:
        raise r.fail(key, f"{seconds:g} s is outside {bounds[0]:g} … {bounds[1]:g} s")
    return seconds


def _installations(r: TomlReader) -> tuple[Installation, ...]:
    files = r.array(r.data, ("installations",), 10_000)
    if not files:
        raise r.fail(("installations",), "the list is empty — give at least one installation file")
    out = []
    for j, written in enumerate(files):
        if not isinstance(written, str):
            raise r.fail(("installations", j), f"expected a file name, got {written!r}")
        out.append(load_installation(r.beside(written)))
    return tuple(out)


def _mix(r: TomlReader, data: dict, key: Key, default: tuple, check) -> tuple[tuple[str, float], ...]:
    """A ``{name = weight}`` table: each name checked by ``check(name)`` (returns a problem
    or None), weights ≥ 0 with a positive total (a fault table's are shares ≤ 1)."""
    if key[-1] not in data:
        return default
    table = r.table(data[key[-1]], key)
    pairs = []
    for name in table:
        problem = check(name)
        if problem:
            raise r.fail(key + (name,), problem)
        pairs.append((name, r.number(table, key + (name,), lo=0.0, hi=1e9)))
    if key[-1] != "faults" and not any(w > 0 for _, w in pairs):
        raise r.fail(key, "needs at least one positive weight")
    return tuple(pairs)


def _pair(r: TomlReader, data: dict, key: Key, default: tuple, lo: float, hi: float, whole: bool = False) -> tuple:
    if key[-1] not in data:
        return default
    values = r.array(data, key, 2)
    if len(values) != 2:
        raise r.fail(key, f"expected [low, high], got {values!r}")
    get = r.integer if whole else r.number
    low, high = (get({j: v}, key + (j,), lo=lo, hi=hi) for j, v in enumerate(values))
    if low > high:
        raise r.fail(key, f"low {low:g} is above high {high:g}")
    return (low, high)


def _model_problem(name: str) -> str | None:
    try:
        meter_spec(name, ct_rating="200A")
    except MinimeterError as exc:
        return str(exc)
    return None


def _rating_problem(name: str) -> str | None:
    try:
        meter_spec("7B", ct_rating=name)
    except MinimeterError as exc:
        return str(exc)
    return None


def _household(r: TomlReader, data: dict) -> Household:
    key = ("population", "household")
    h = r.table(data.get("household", {}), key)
    r.known(h, key, _HOUSE_KEYS)
    base = Household()
    appliances = _mix(r, h, key + ("appliances",), base.appliances,
                      lambda n: None if n in APPLIANCES else f"unknown appliance — valid: {', '.join(APPLIANCES)}")
    if any(w > 1 for _, w in appliances):
        raise r.fail(key + ("appliances",), "each appliance's share is at most 1")
    return Household(occupancy=_pair(r, h, key + ("occupancy",), base.occupancy, 1, 20, whole=True),
                     appliances=appliances,
                     pv_share=r.number(h, key + ("pv",), base.pv_share, 0.0, 1.0),
                     pv_kw=_pair(r, h, key + ("pv_kw",), base.pv_kw, 0.0, 100.0))


def _population(r: TomlReader) -> Population:
    key = ("population",)
    p = r.table(r.data["population"], key)
    r.known(p, key, _POP_KEYS)
    faults = _mix(r, p, key + ("faults",), (),
                  lambda n: None if n in FAULT_KINDS else f"unknown fault kind — valid: {', '.join(FAULT_KINDS)}")
    if sum(w for _, w in faults) > 1:
        raise r.fail(key + ("faults",), f"the fault shares add up to {sum(w for _, w in faults):g}, over 1")
    return Population(
        meters=r.integer(p, key + ("meters",), lo=1, hi=MAX_METERS),
        models=_mix(r, p, key + ("models",), Population.models, _model_problem),
        ct_ratings=_mix(r, p, key + ("ct_ratings",), Population.ct_ratings, _rating_problem),
        services=_mix(r, p, key + ("services",), Population.services,
                      lambda n: None if n in ("split", "network") else "two-element services: split or network"),
        volts=_pair(r, p, key + ("volts",), Population.volts, 90.0, 150.0),
        frequency_hz=r.number(p, key + ("frequency_hz",), 60.0, 45.0, 65.0),
        household=_household(r, p),
        faults=faults)


__all__ = ["Fleet", "Household", "Population", "InvalidFleet", "load_fleet", "parse_fleet", "APPLIANCES"]
