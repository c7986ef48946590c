"""Installation files (TOML; ``docs/installation-format.md``): :func:`load_installation`
reads one into a :class:`~minimeter.sources.installation.Installation`, a table per
function. Every problem raises :class:`~minimeter.sources.wiring.InvalidInstallation`
naming the file, the line, the key and what is wrong, e.g.
``bad.toml:14: load[2].power_factor: 1.5 is outside (0, 1] — …``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from minimeter.errors import InvalidLoad, InvalidOption, UnknownModel
from minimeter.formats import InvalidFormat, parse_duration_s, parse_power_factor
from minimeter.formats.toml import Key, TomlReader, read_text
from minimeter.meter.catalog import MeterSpec, meter_spec
from minimeter.sources.installation import Installation
from minimeter.sources.service import CONNECTIONS, SERVICE_KINDS, Harmonic, Load, Profile, Service
from minimeter.sources.wiring import (CONDUCTORS, CT, CT_STATES, FAULT_KINDS, FAULT_PARAMETERS, Fault,
                                      InvalidInstallation, ct_rating_a)

MAX_DURATION_S = 3650 * 86400.0     # S15.1: ten years of simulated time
MAX_LOAD_W = 1e6                    # S15.1: |watts| of one load (1 MW, ~4 kA at 240 V)
MAX_LOAD_A = 1e4                    # S15.1: amps of one load
MAX_HARMONICS = 100                 # harmonics in one list
_TOP_KEYS = ("name", "description", "duration", "generation", "meter", "service", "terminals", "ct", "load", "fault")
_LOAD_KEYS = ("name", "watts", "amps", "power_factor", "leading", "connection", "harmonics", "profile", "generation")


def load_installation(path: str | Path) -> Installation:
    """Read an installation file (TOML; see ``docs/installation-format.md``)."""
    path = Path(path)
    return parse_installation(read_text(path, InvalidInstallation, "installation"), path)


def parse_installation(text: str, path: str | Path = "<installation>") -> Installation:
    """Parse the text of an installation file; ``path`` names it in errors and anchors
    relative profile paths."""
    r = TomlReader(path, text, InvalidInstallation)
    r.known(r.data, (), _TOP_KEYS)
    spec, meter_keywords = _meter(r)
    service = _service(r, spec)
    installation = Installation(
        **meter_keywords,
        service=service,
        terminals=_terminals(r, spec, service) if "terminals" in r.data else None,
        cts=_cts(r, spec, service) if "ct" in r.data else None,
        loads=tuple(_load(r, key, table, service) for key, table in r.tables("load")),
        faults=tuple(_fault(r, key, table) for key, table in r.tables("fault")),
        generation=r.boolean(r.data, ("generation",), False) if "generation" in r.data else None,
        **_about(r),
    )
    _check_faults(r, installation)
    return installation


# --------------------------------------------------------------------------- [meter]
def _meter(r: TomlReader) -> tuple[MeterSpec, dict[str, Any]]:
    """The validated spec and the Installation's meter keywords."""
    m = r.table(r.data.get("meter", {}), ("meter",))
    r.known(m, ("meter",), ("model", "ct_rating", "ct_ratio", "register", "t_suffix"))
    model = r.string(m, ("meter", "model"), "7B")
    rating = m.get("ct_rating", "200A")
    if isinstance(rating, (int, float)) and not isinstance(rating, bool):
        rating = f"{rating:g}A"
    if not isinstance(rating, str):
        raise r.fail(("meter", "ct_rating"), f"expected a rating such as '200A', got {rating!r}")
    ct_ratio = m.get("ct_ratio")
    if ct_ratio is not None and (isinstance(ct_ratio, bool) or not isinstance(ct_ratio, (str, int, float))):
        raise r.fail(("meter", "ct_ratio"), f"expected a ratio such as '200:0.1', got {ct_ratio!r}")
    ct_ratio = None if ct_ratio is None else str(ct_ratio)
    register = r.string(m, ("meter", "register"), "lcd", ("lcd", "counter100", "counter1000"))
    t_suffix = r.boolean(m, ("meter", "t_suffix"), False)
    try:
        spec = meter_spec(model, ct_rating=rating, ct_ratio=ct_ratio, register=register, t_suffix=t_suffix)
    except UnknownModel as exc:
        raise r.fail(("meter", "model"), str(exc)) from None
    except InvalidOption as exc:
        raise r.fail(("meter",), str(exc)) from None
    return spec, dict(model=spec.prefix, ct_rating=spec.ct_rating, ct_ratio=ct_ratio, register=register,
                      t_suffix=spec.t_suffix)


# --------------------------------------------------------------------------- [service]
def _harmonics(r: TomlReader, data: dict, key: Key) -> tuple[Harmonic, ...]:
    """An array of ``{order, magnitude, phase_deg}`` tables."""
    out = []
    for j, h in enumerate(r.array(data, key, MAX_HARMONICS)):
        hk = key + (j,)
        h = r.table(h, hk)
        r.known(h, hk, ("order", "magnitude", "phase_deg"))
        try:
            out.append(Harmonic(r.integer(h, hk + ("order",), lo=2, hi=1000),
                                r.number(h, hk + ("magnitude",), lo=0.0, hi=10.0),
                                r.number(h, hk + ("phase_deg",), 0.0, -360.0, 360.0)))
        except InvalidLoad as exc:
            raise r.fail(hk, str(exc)) from None
    return tuple(out)


def _service(r: TomlReader, spec: MeterSpec) -> Service:
    s = r.table(r.data.get("service", {}), ("service",))
    r.known(s, ("service",), ("kind", "volts", "frequency_hz", "voltage_harmonics", "phase_deg"))
    kind = r.string(s, ("service", "kind"), "single" if spec.elements == 1 else "split", SERVICE_KINDS)
    try:
        return Service(kind,
                       r.number(s, ("service", "volts"), 120.0, 0.0, 1000.0),
                       r.number(s, ("service", "frequency_hz"), 60.0, 1.0, 1000.0),
                       _harmonics(r, s, ("service", "voltage_harmonics")),
                       r.number(s, ("service", "phase_deg"), 0.0, -360.0, 360.0))
    except InvalidLoad as exc:
        raise r.fail(("service",), str(exc)) from None


# --------------------------------------------------------------------------- [terminals]
def _terminals(r: TomlReader, spec: MeterSpec, service: Service) -> tuple[tuple[str, str | None], ...]:
    """Each voltage terminal's conductor (None: open)."""
    t = r.table(r.data["terminals"], ("terminals",))
    names = ("L1", "L2")[:spec.elements] + ("N",)
    r.known(t, ("terminals",), names)
    landed = []
    for name in names:
        value = t.get(name, name)
        if not isinstance(value, str):
            raise r.fail(("terminals", name), f"expected a conductor name or 'open', got {value!r}")
        value = value.strip()
        if value.lower() in ("open", "none", ""):
            landed.append((name, None))
            continue
        if value.upper() not in CONDUCTORS or (value.upper() != "N" and value.upper() not in service.legs):
            raise r.fail(("terminals", name), f"{value!r} is not a conductor of a {service.kind} service — valid: "
                                              f"{', '.join(service.legs + ('N',))} or 'open'")
        landed.append((name, value.upper()))
    return tuple(landed)


# --------------------------------------------------------------------------- [[ct]]
def _conductor_entry(r: TomlReader, value: Any, key: Key) -> tuple[str, int]:
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


def _ct(r: TomlReader, key: Key, c: dict, spec: MeterSpec, service: Service) -> CT:
    r.known(c, key, ("name", "conductors", "state", "rating"))
    name = r.string(c, key + ("name",), f"CT{key[-1] + 1}").upper()
    if name not in spec.ct_inputs:
        raise r.fail(key + ("name",), f"{spec.prefix} has CT inputs {', '.join(spec.ct_inputs)}; there is no {name}")
    conductors = c.get("conductors", [f"L{key[-1] + 1}"])
    if isinstance(conductors, str):
        conductors = [conductors]
    if not isinstance(conductors, list) or not 1 <= len(conductors) <= len(CONDUCTORS):
        raise r.fail(key + ("conductors",), f"expected an array of 1 to {len(CONDUCTORS)} conductors such as "
                                            f"['L1'] or ['L1', '-L2'], got {conductors!r}")
    pairs = tuple(_conductor_entry(r, v, key + ("conductors",)) for v in conductors)
    for conductor, _ in pairs:
        if conductor != "N" and conductor not in service.legs:
            raise r.fail(key + ("conductors",), f"a {service.kind} service has no conductor {conductor}")
    state = r.string(c, key + ("state",), "ok", CT_STATES)
    rating_a = None
    if "rating" in c:
        try:
            rating_a = ct_rating_a(c["rating"], "rating")
        except InvalidInstallation:
            raise r.fail(key + ("rating",), f"{c['rating']!r} is not a CT rating such as '100A'") from None
    return CT(name, pairs, state, rating_a)


def _cts(r: TomlReader, spec: MeterSpec, service: Service) -> tuple[CT, ...]:
    cts = tuple(_ct(r, key, table, spec, service) for key, table in r.tables("ct"))
    names = [ct.name for ct in cts]
    if len(set(names)) != len(names):
        raise r.fail(("ct",), f"a CT is listed twice: {', '.join(names)}")
    return cts


# --------------------------------------------------------------------------- [[load]]
def _load_power_factor(r: TomlReader, key: Key, ld: dict) -> tuple[float, bool]:
    try:
        pf, leading = parse_power_factor(ld.get("power_factor", 1.0))
    except InvalidFormat as exc:
        raise r.fail(key + ("power_factor",), str(exc)) from None
    return pf, r.boolean(ld, key + ("leading",), leading)


def _load_profile(r: TomlReader, key: Key, ld: dict) -> Profile:
    if "watts" in ld or "amps" in ld:
        raise r.fail(key + ("profile",), "give either a profile or watts/amps, not both")
    path = r.beside(r.string(ld, key + ("profile",)))
    try:
        return Profile.from_csv(str(path))
    except OSError:
        raise r.fail(key + ("profile",), f"cannot read the profile file {path}") from None
    except InvalidLoad as exc:
        raise r.fail(key + ("profile",), str(exc)) from None


def _load_watts(r: TomlReader, key: Key, ld: dict, service: Service, connection: str, pf: float) -> float:
    """``watts``, or ``amps`` × the connection's voltage × PF [W]."""
    if "amps" not in ld:
        return r.number(ld, key + ("watts",), lo=-MAX_LOAD_W, hi=MAX_LOAD_W)
    if "watts" in ld:
        raise r.fail(key + ("amps",), "give either watts or amps, not both")
    amps = r.number(ld, key + ("amps",), lo=0.0, hi=MAX_LOAD_A)
    v_rms, _ = service.connection_voltage(connection)
    return amps * v_rms * pf


def _load(r: TomlReader, key: Key, ld: dict, service: Service) -> Load:
    r.known(ld, key, _LOAD_KEYS)
    connection = r.string(ld, key + ("connection",), "L1", CONNECTIONS)
    if connection != "L1" and service.kind == "single":
        raise r.fail(key + ("connection",), f"{connection!r}: a single (1-phase 2-wire) service has only L1")
    pf, leading = _load_power_factor(r, key, ld)
    profile = _load_profile(r, key, ld) if "profile" in ld else None
    watts = 0.0 if profile is not None else _load_watts(r, key, ld, service, connection, pf)
    if r.boolean(ld, key + ("generation",), False):
        watts = -abs(watts)
        profile = profile.scaled(-1.0) if profile is not None else None
    harmonics = _harmonics(r, ld, key + ("harmonics",))
    try:
        return Load(watts, pf, leading, connection, harmonics, profile, name=r.string(ld, key + ("name",), ""))
    except InvalidLoad as exc:
        raise r.fail(key, str(exc)) from None


# --------------------------------------------------------------------------- [[fault]]
def _fault(r: TomlReader, key: Key, f: dict) -> Fault:
    kind = r.string(f, key + ("kind",), choices=FAULT_KINDS)
    r.known(f, key, ("kind",) + FAULT_PARAMETERS[kind])
    return Fault(kind, tuple(sorted((k, v) for k, v in f.items() if k != "kind")))


def _check_faults(r: TomlReader, installation: Installation) -> None:
    """The stated wiring, then each fault in turn, must be possible."""
    try:
        installation.without_faults().wiring()
    except InvalidInstallation as exc:
        raise InvalidInstallation(f"{r.path}: {exc}") from None
    faults = installation.faults
    for j, fault in enumerate(faults):
        try:
            replace(installation, faults=faults[:j + 1]).wiring()
        except InvalidInstallation as exc:
            raise r.fail(("fault", j), str(exc).removeprefix(f"fault {fault.kind}: ")) from None


# --------------------------------------------------------------------------- the rest
def _about(r: TomlReader) -> dict[str, Any]:
    """``duration`` [s], ``name`` (default: the file's stem) and ``description``."""
    duration_s = None
    if "duration" in r.data:
        try:
            duration_s = parse_duration_s(r.data["duration"])
        except InvalidFormat as exc:
            raise r.fail(("duration",), str(exc)) from None
        if duration_s > MAX_DURATION_S:
            raise r.fail(("duration",), f"{duration_s:g} s is over the limit of {MAX_DURATION_S:g} s (ten years)")
    name = r.string(r.data, ("name",), r.path.stem)
    description = r.string(r.data, ("description",), "")
    return dict(duration_s=duration_s, name=name, description=description)


__all__ = ["load_installation", "parse_installation"]
