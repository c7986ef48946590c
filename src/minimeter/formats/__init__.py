"""The user's text formats, in one place: each parser reads what a user types (on the
command line, in the web panel, in a file) and raises the project's own error, with a
one-line message that quotes the text and shows a valid form.

Here, the small languages:

* durations — ``"90s"``, ``"15 min"``, ``"2h"``, ``"1d"``, ``"60"`` or a number of seconds
  (:func:`parse_duration_s`, raises :class:`InvalidFormat`);
* power factors — ``0.9``, ``"0.9lag"``, ``"0.9lead"``, ``"1"`` (:func:`parse_power_factor`);
* harmonics — ``"h5=0.3@30"`` or ``"5=0.3"`` (:func:`parse_harmonic`);
* loads — ``WATTS[@L1|L2|L1-L2][,pf=0.9lag|0.9lead][,hN=MAG[@DEG]]…``
  (:func:`parse_load`, raises :class:`~minimeter.errors.InvalidLoad`) and profile loads
  ``FILE[@CONN][,pf=…][,hN=…]`` (:func:`parse_profile_load`);
* faults — ``"ct-reversed:ct=CT2"`` or ``"ct-reversed ct=CT2"`` (:func:`parse_fault`,
  raises :class:`~minimeter.sources.wiring.InvalidInstallation`).

The files: :mod:`.toml` (the located TOML table reader, ``file:line: key: problem``),
:mod:`.installation` (installation files), :mod:`.reference_run` (reference-run files).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from minimeter.errors import InvalidLoad, MinimeterError
from minimeter.sources.service import CONNECTIONS, Harmonic, Load, Profile
from minimeter.sources.wiring import Fault, InvalidInstallation


class InvalidFormat(MinimeterError, ValueError):
    """A duration, power factor or harmonic that cannot be read; the message quotes the
    text and shows a valid form."""


# --------------------------------------------------------------------------- durations
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_SECONDS_PER_UNIT = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(value: Any, *, allow_zero: bool = False) -> float:
    """``'90s'``, ``'15 min'``, ``'1.5h'``, ``'1d'``, ``'60'`` or a number of seconds →
    seconds [s]; positive (or zero with ``allow_zero``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidFormat(f"{value!r} is not a duration — e.g. 60s, 90min, 24h, 1d or a number of seconds")
        seconds = float(match.group(1)) * _SECONDS_PER_UNIT[(match.group(2) or "").lower()]
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise InvalidFormat(f"{value!r}: the duration must be {'zero or ' if allow_zero else ''}positive")
    return seconds


# --------------------------------------------------------------------------- ISO 8601 times
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ISO_SPAN_S = (-62135596800.0, 253402300799.0)        # 0001-01-01 … 9999-12-31T23:59:59 UTC


def iso8601(epoch_s: float) -> str:
    """UNIX time [s] → ``'2026-11-30T19:57:40.123456Z'`` (UTC, microseconds): the one
    spelling of a time leaving the program (edges, events, interval rows)."""
    if not (isinstance(epoch_s, (int, float)) and not isinstance(epoch_s, bool) and math.isfinite(epoch_s)
            and _ISO_SPAN_S[0] <= epoch_s <= _ISO_SPAN_S[1]):
        raise InvalidFormat(f"{epoch_s!r} is not a UNIX time between years 1 and 9999 [s]")
    moment = _EPOCH + timedelta(microseconds=round(epoch_s * 1e6))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso8601(text: str) -> float:
    """``'2026-11-30T19:57:40.123456Z'`` (or any ISO 8601 date-time; no zone means UTC) →
    UNIX time [s]."""
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFormat(f"{text!r} is not an ISO 8601 time — e.g. 2026-11-30T19:57:40.123456Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) / timedelta(seconds=1)


# --------------------------------------------------------------------------- power factors
_POWER_FACTOR = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(lag|lead)?\s*$", re.IGNORECASE)


def parse_power_factor(value: Any) -> tuple[float, bool]:
    """``0.9``, ``'0.9lag'``, ``'0.8 lead'``, ``'1'`` → (power factor in (0, 1], leading)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        pf, leading = float(value), False
    else:
        match = _POWER_FACTOR.match(str(value))
        if not match:
            raise InvalidFormat(f"{value!r} is not a power factor such as 0.9, '0.9lag' or '0.8lead'")
        pf, leading = float(match.group(1)), (match.group(2) or "").lower() == "lead"
    if not 0.0 < pf <= 1.0:
        raise InvalidFormat(f"{value!r} is outside (0, 1] — a power factor such as 0.9, '0.9lag' or '0.8lead'")
    return pf, leading


# --------------------------------------------------------------------------- harmonics
_HARMONIC = re.compile(r"^\s*h?(\d+)\s*=\s*([^@\s]+)\s*(?:@\s*(\S+))?\s*$", re.IGNORECASE)


def parse_harmonic(text: str) -> Harmonic:
    """``'h5=0.3@30'`` (order 5, 0.3 of the fundamental, at 30° [deg]) or ``'5=0.3'``."""
    match = _HARMONIC.match(str(text))
    try:
        if not match:
            raise ValueError
        order, magnitude, phase_deg = int(match.group(1)), float(match.group(2)), float(match.group(3) or 0.0)
        if not math.isfinite(phase_deg):
            raise ValueError
        return Harmonic(order, magnitude, phase_deg)
    except InvalidLoad as exc:              # (a ValueError too: first)
        raise InvalidFormat(f"harmonic {text!r}: {exc}") from None
    except ValueError:
        raise InvalidFormat(f"{text!r} is not a harmonic — expected hN=MAG[@DEG], e.g. h5=0.3@30") from None


# --------------------------------------------------------------------------- loads
LOAD_HELP = (
    "WATTS[@CONN][,pf=0.9lag|0.9lead][,hN=MAG[@DEG]]… — CONN is L1, L2 or L1-L2 (240 V); "
    "negative watts for generation. Example: 1500@L1,pf=0.8lag,h3=0.3"
)


def _load_options(parts: list[str], text: str) -> dict[str, Any]:
    """The ``pf=…`` and ``hN=…`` options after a load's head → keywords of :class:`Load`."""
    options: dict[str, Any] = {"power_factor": 1.0, "leading": False, "harmonics": ()}
    for part in parts:
        key = part.partition("=")[0].strip().lower()
        try:
            if key == "pf":
                options["power_factor"], options["leading"] = parse_power_factor(part.partition("=")[2])
            elif re.fullmatch(r"h\d+", key):
                options["harmonics"] += (parse_harmonic(part),)
            else:
                raise InvalidFormat("")
        except InvalidFormat as exc:
            detail = f": {exc}" if str(exc) else ""
            raise InvalidLoad(f"{part!r} in load {text!r} not understood{detail} — {LOAD_HELP}") from None
    return options


def _load_head(text: str) -> tuple[str, str, list[str]]:
    """``'1500@L1-L2,pf=0.9'`` → (``'1500'``, ``'L1-L2'``, [``'pf=0.9'``])."""
    head, *parts = text.split(",")
    body, _, connection = head.partition("@")
    connection = (connection or "L1").strip().upper()
    if connection not in CONNECTIONS:
        raise InvalidLoad(f"connection {connection!r} in {text!r} unknown — valid: {', '.join(CONNECTIONS)}")
    return body.strip(), connection, parts


def parse_load(text: str) -> Load:
    """A constant load from its text form (see :data:`LOAD_HELP`), e.g.
    ``'1500@L1,pf=0.8lag,h3=0.3'`` → 1500 W on L1 at PF 0.8 lagging with 30 % third harmonic."""
    body, connection, parts = _load_head(text)
    try:
        watts = float(body.upper().removesuffix("W"))
    except ValueError:
        raise InvalidLoad(f"{body!r} in load {text!r} is not a number of watts — {LOAD_HELP}") from None
    options = _load_options(parts, text)
    try:
        return Load(watts, connection=connection, name=text, **options)
    except InvalidLoad as exc:
        raise InvalidLoad(f"load {text!r}: {exc}") from None


def parse_profile_load(text: str) -> Load:
    """A load following a profile: ``FILE[@CONN][,pf=…][,hN=…]``; FILE holds
    ``time_s,watts`` rows."""
    path, connection, parts = _load_head(text)
    options = _load_options(parts, text)
    try:
        profile = Profile.from_csv(path)
    except OSError as exc:
        raise InvalidLoad(f"profile {path!r}: {exc.strerror or exc}") from None
    except InvalidLoad as exc:
        raise InvalidLoad(f"profile {path!r}: {str(exc).removeprefix(path + ': ')}") from None
    return Load(0.0, connection=connection, profile=profile, name=path, **options)


# --------------------------------------------------------------------------- faults
FAULT_HELP = "KIND[:NAME=VALUE,…] — e.g. ct-reversed:ct=CT2 or over-current:amps=250,connection=L1-L2"
_NUMERIC_FAULT_PARAMETERS = ("amps", "volts", "hz")


def parse_fault(text: str) -> Fault:
    """``'ct-reversed:ct=CT2'`` (or ``'ct-reversed ct=CT2'``, the web panel's spelling) →
    ``Fault('ct-reversed', (('ct', 'CT2'),))``; ``amps``, ``volts`` and ``hz`` are numbers.
    The kind and the parameter names are checked against
    :data:`~minimeter.sources.wiring.FAULT_PARAMETERS`."""
    kind, *rest = re.split(r"[:\s]", str(text).strip(), maxsplit=1)
    params: dict[str, Any] = {}
    for part in re.split(r"[,\s]+", rest[0] if rest else ""):
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not (eq and name.strip() and value.strip()):
            raise InvalidInstallation(f"fault parameter {part!r} in {text!r} must be NAME=VALUE — {FAULT_HELP}")
        name, value = name.strip(), value.strip()
        if name in _NUMERIC_FAULT_PARAMETERS:
            try:
                value = float(value)
            except ValueError:
                raise InvalidInstallation(f"fault parameter {part!r} in {text!r} needs a number") from None
        params[name] = value
    return Fault(kind, tuple(sorted(params.items())))


__all__ = ["InvalidFormat", "parse_duration_s", "parse_power_factor", "parse_harmonic", "LOAD_HELP", "parse_load",
           "parse_profile_load", "FAULT_HELP", "parse_fault", "iso8601", "parse_iso8601"]
