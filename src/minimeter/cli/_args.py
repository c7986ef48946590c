"""Parsing of the command line's small languages: durations, loads, meter options."""

from __future__ import annotations

import re

import click

from minimeter.errors import InvalidLoad
from minimeter.sources.service import CONNECTIONS, Harmonic, Load, Profile

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_S = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """'60', '60s', '90min', '1.5h', '1d' → seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration — e.g. 60s, 90min, 24h, 1d")
    seconds = float(match.group(1)) * _UNIT_S[(match.group(2) or "").lower() or None]
    if seconds <= 0:
        raise click.BadParameter("the duration must be positive")
    return seconds


LOAD_HELP = (
    "WATTS[@CONN][,pf=0.9lag|0.9lead][,hN=MAG[@DEG]]… — CONN is L1, L2 or L1-L2 (240 V); "
    "negative watts for generation. Example: 1500@L1,pf=0.8lag,h3=0.3"
)


def _parse_options(parts: list[str], spec: str) -> dict:
    opts: dict = {"power_factor": 1.0, "leading": False, "harmonics": []}
    for part in parts:
        key, _, value = part.partition("=")
        key = key.strip().lower()
        value = value.strip().lower()
        try:
            if key == "pf":
                lead = value.endswith("lead")
                number = value.removesuffix("lead").removesuffix("lag")
                opts["power_factor"], opts["leading"] = float(number), lead
            elif re.fullmatch(r"h\d+", key):
                mag, _, phase = value.partition("@")
                opts["harmonics"].append(Harmonic(int(key[1:]), float(mag), float(phase or 0.0)))
            else:
                raise ValueError
        except (ValueError, InvalidLoad) as exc:
            detail = f": {exc}" if str(exc) else ""
            raise click.BadParameter(f"{part!r} in load {spec!r} not understood{detail} — {LOAD_HELP}") from None
    return opts


def _split_connection(head: str, spec: str) -> tuple[str, str]:
    body, _, conn = head.partition("@")
    conn = (conn or "L1").strip().upper()
    if conn not in CONNECTIONS:
        raise click.BadParameter(f"connection {conn!r} in {spec!r} unknown — valid: {', '.join(CONNECTIONS)}")
    return body.strip(), conn


def parse_load(spec: str) -> Load:
    """A constant load from its command-line form (see ``LOAD_HELP``)."""
    head, *parts = spec.split(",")
    body, conn = _split_connection(head, spec)
    try:
        watts = float(body.upper().removesuffix("W"))
    except ValueError:
        raise click.BadParameter(f"{body!r} in load {spec!r} is not a number of watts — {LOAD_HELP}") from None
    opts = _parse_options(parts, spec)
    try:
        return Load(watts, opts["power_factor"], opts["leading"], conn, tuple(opts["harmonics"]), name=spec)
    except InvalidLoad as exc:
        raise click.BadParameter(f"load {spec!r}: {exc}") from None


def parse_profile_load(spec: str) -> Load:
    """A profile load: FILE[@CONN][,pf=…][,hN=…]; FILE holds 'time_s,watts' rows."""
    head, *parts = spec.split(",")
    path, conn = _split_connection(head, spec)
    opts = _parse_options(parts, spec)
    try:
        profile = Profile.from_csv(path)
        return Load(0.0, opts["power_factor"], opts["leading"], conn, tuple(opts["harmonics"]), profile, name=path)
    except InvalidLoad as exc:
        raise click.BadParameter(str(exc)) from None
    except OSError as exc:
        raise click.BadParameter(f"profile {path!r}: {exc.strerror}") from None


def meter_options(func):
    """The model and its options, shared by the commands that build a meter."""
    options = [
        click.option("--model", "-m", default="7B", show_default=True, help="Model prefix: MO, MK, 6S, 6F, 7B, 5B."),
        click.option("--ct", "ct_rating", default="200A", show_default=True,
                     help="CT rating: 100A, 200A, 400A (primary) or 0.1A, 0.2A (secondary)."),
        click.option("--ct-ratio", default=None, help="CT ratio for secondary-rated models, e.g. 200:0.1."),
        click.option("--register", default="lcd", show_default=True,
                     type=click.Choice(["lcd", "counter100", "counter1000"]), help="LCD or mechanical counter."),
        click.option("--t-suffix", is_flag=True, help="T model: no 1000 Wh/pulse output."),
    ]
    for option in reversed(options):
        func = option(func)
    return func
