"""Fuzz target (issue 9, SPEC S15.1): the user's text formats — installation files,
load/profile/duration/power-factor/harmonic/fault texts and profile CSV files.

``run_case(rng)`` takes a valid seed (the project's ``examples/*.toml`` and a file using
every key; valid load, fault and other texts), mutates it (a value replaced by an
extreme or a wrong type, lines dropped or repeated, bytes flipped or inserted, a
profile path pointed at a device) and parses it. The case returns, or raises a
:class:`minimeter.errors.MinimeterError`; anything else is a finding.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from minimeter.formats import (parse_duration_s, parse_fault, parse_harmonic, parse_load, parse_power_factor,
                               parse_profile_load)
from minimeter.formats.installation import parse_installation

_WORK = Path(tempfile.mkdtemp(prefix="fuzz-formats-"))
atexit.register(shutil.rmtree, _WORK, True)
_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

_FULL = """name = "every key"
description = "a file using every key"
duration = "60s"

[meter]
model = "7B"
ct_rating = "200A"
register = "lcd"
t_suffix = false

[service]
kind = "split"
volts = 120
frequency_hz = 60
phase_deg = 0
voltage_harmonics = [{ order = 5, magnitude = 0.03, phase_deg = 10 }]

[terminals]
L1 = "L1"
L2 = "L2"
N = "N"

[[ct]]
name = "CT1"
conductors = ["L1"]
state = "ok"
rating = "200A"

[[ct]]
name = "CT2"
conductors = [{ conductor = "L2", direction = "towards-source" }]

[[load]]
name = "heater"
watts = 2400
power_factor = "0.9lag"
connection = "L1-L2"
harmonics = [{ order = 3, magnitude = 0.3, phase_deg = 0 }]

[[load]]
amps = 10
connection = "L2"
generation = true

[[load]]
profile = "profile.csv"
connection = "L1"

[[fault]]
kind = "over-current"
amps = 250
connection = "L1"
"""
_PROFILE = "time_s,watts\n0,4500\n1800,1000\n3600,0\n"
_TEXTS = ["1500@L1,pf=0.8lag,h3=0.3", "-2000@L1-L2,pf=0.95lead", "100", "90s", "15 min", "1.5h", "0.9lag", "0.8lead",
          "h5=0.3@30", "5=0.1", "ct-reversed:ct=CT2", "over-current:amps=250,connection=L1-L2",
          "supply-voltage volts=100", "frequency:hz=45"]
_PARSERS = [parse_load, parse_duration_s, parse_power_factor, parse_harmonic, parse_fault]
_VALUES = ["0", "-1", "1e308", "-1e308", "nan", "inf", "-inf", "1e-320", "99999999999999999999999", '"x"', '""',
           "true", "[]", "{}", "[[[[[[[[[[]]]]]]]]]]", '"/dev/zero"', '"' + "x" * 5000 + '"', "2.5", "-0.0",
           '"0.9lag"', '"1e9A"', '"200:0"', '["L1", "-L1"]', "[1, 2, 3]", '{ order = 1e9 }']
_VALUE = re.compile(r"(=\s*)([^\n]+)")


def _seeds() -> list[str]:
    return [_FULL] + [p.read_text() for p in sorted(_EXAMPLES.glob("*.toml"))]


def _mutate_text(text: str, rng: np.random.Generator) -> str:
    kind = int(rng.integers(5))
    lines = text.splitlines()
    if kind <= 1:                                              # a value replaced
        spots = list(_VALUE.finditer(text))
        if spots:
            m = spots[int(rng.integers(len(spots)))]
            return text[:m.start(2)] + _VALUES[int(rng.integers(len(_VALUES)))] + text[m.end(2):]
    if kind == 2 and lines:                                    # a line dropped or repeated
        k = int(rng.integers(len(lines)))
        lines[k:k + 1] = [] if rng.random() < 0.5 else [lines[k]] * int(rng.integers(2, 5))
        return "\n".join(lines)
    data = bytearray(text.encode("utf-8", errors="surrogateescape"))
    if kind == 3 and data:                                     # bytes flipped
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
    else:                                                      # bytes inserted
        at = int(rng.integers(len(data) + 1))
        blobs = [b"\xff", b"[", b"[[load]]\n", b'"', b"=", b"\n[meter]\n", b"\x00", b"[" * 2000]
        data[at:at] = blobs[int(rng.integers(len(blobs)))]
    return data.decode("utf-8", errors="replace" if rng.random() < 0.5 else "surrogateescape")


def _installation(rng: np.random.Generator) -> None:
    seeds = _seeds()
    text = seeds[int(rng.integers(len(seeds)))]
    for _ in range(int(rng.integers(1, 4))):
        text = _mutate_text(text, rng)
    profile = _PROFILE if rng.random() < 0.7 else _mutate_text(_PROFILE, rng)
    (_WORK / "profile.csv").write_text(profile, errors="surrogateescape")
    parse_installation(text, _WORK / "case.toml")


def _text(rng: np.random.Generator) -> None:
    text = _TEXTS[int(rng.integers(len(_TEXTS)))]
    if rng.random() < 0.8:
        text = _mutate_text(text, rng)
    if rng.random() < 0.2:
        path = _WORK / "p.csv"
        path.write_text(_mutate_text(_PROFILE, rng), errors="surrogateescape")
        parse_profile_load(f"{path}{text[text.find('@'):] if '@' in text else ''}")
        return
    _PARSERS[int(rng.integers(len(_PARSERS)))](text)


def run_case(rng: np.random.Generator) -> None:
    """One mutated installation file or one mutated text, parsed."""
    if rng.random() < 0.6:
        _installation(rng)
    else:
        _text(rng)
