"""Fuzz target (issue 9, SPEC S15.1): mutated calibration JSON and reference-run TOML files.

``run_case(rng)`` writes one mutated file into a fresh temporary directory and reads it the
way ``minimeter bench --calibration`` / ``minimeter calibrate --reference-run`` do. A
calibration that loads is then put on a meter's hook for a tenth of a second of signal,
so a value that loads but cannot be used (a gain of 1e9) is caught too. The case returns,
or raises a :class:`minimeter.errors.MinimeterError`; anything else is a finding.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from minimeter.formats.reference_run import load_reference_run
from minimeter.lab.calibration import Calibration, ElementCalibration, load_calibration

_BASE_CAL = Calibration((ElementCalibration(offset_v=0.3, offset_a=0.05, volts_gain=0.992,
                                            current_a=(2.0, 20.0, 200.0), amps_gain=(1.03, 1.015, 1.01),
                                            phase_delay_s=(1.9e-4, 1.3e-4, 9.6e-5),
                                            phase_angle_deg=(0.1, 0.0, -0.1)),),
                        ("fuzz base",)).as_dict()

_BASE_RUN = """format = "minimeter-reference-run"
frequency_hz = 60.0
map = "V:I"
settle_s = 0.6
notes = ["fuzz base"]

[[step]]
recording = "a.csv"
volts_rms = 120.0
amps_rms = 200.0
power_w = 24000.0

[[step]]
recording = "a.csv"
volts_rms = [120.0]
amps_rms = 200.0
power_factor = 0.5
lead = false
columns = ["v", "i"]
sample_rate_hz = 2000.0
"""

_ODD_VALUES: list[Any] = [None, True, 0, -1, 1e9, -1e9, 1e308, 5e-324, "1.0", "", [], {}, [[]], [None], [1e9],
                          [0.0, -1.0], {"a": 1}, "\x00", "é" * 50, 10 ** 400, -0.0, 2 ** 63, [1.0] * 100]


def _odd(rng: np.random.Generator) -> Any:
    if rng.random() < 0.3:
        return float(rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-12, 12))
    value = _ODD_VALUES[int(rng.integers(len(_ODD_VALUES)))]
    if rng.random() < 0.05:
        return json.loads("[" * 200 + "]" * 200)
    return json.loads(json.dumps(value)) if isinstance(value, (list, dict)) else value


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if len(prefix) > 8:
        return out
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            out += _paths(v, prefix + (k,))
    return out


def _mutate_tree(doc: Any, rng: np.random.Generator) -> Any:
    for _ in range(int(rng.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            return _odd(rng)
        path = paths[int(rng.integers(len(paths)))]
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if rng.random() < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = _odd(rng)
    return doc


def _mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        op = int(rng.integers(5))
        pos = int(rng.integers(len(buf) + 1))
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = int(rng.integers(256))
        elif op == 1:
            buf[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8))
        elif op == 2:
            del buf[pos:pos + int(rng.integers(1, 40))]
        elif op == 3:
            buf[pos:pos] = rng.choice([b"\xff", b"\x1a", b"NaN", b"Infinity", b"-1e999", b"[[[[", b"\"\"\"",
                                       b"[[step]]\n", b"= 1e400\n", b"\n"])
        else:
            del buf[pos:]
    return bytes(buf)


def _calibration_case(rng: np.random.Generator, d: Path) -> None:
    doc = json.loads(json.dumps(_BASE_CAL))
    if rng.random() < 0.7:
        doc = _mutate_tree(doc, rng)
    try:
        text = json.dumps(doc, allow_nan=True).encode()
    except (ValueError, RecursionError):
        text = b"[]"
    if rng.random() < 0.4:
        text = _mutate_bytes(text, rng)
    if rng.random() < 0.02:
        text = b"[" * 100_000 + b"]" * 100_000          # nested beyond the JSON parser's recursion
    path = d / "calibration.json"
    path.write_bytes(text)
    cal = load_calibration(path)
    fs = 2000.0
    t = np.arange(200) / fs
    volts = np.repeat((170.0 * np.cos(2 * math.pi * 60 * t))[None], len(cal.elements), 0)
    amps = np.repeat((141.0 * np.cos(2 * math.pi * 60 * t - 0.5))[None], len(cal.elements), 0)
    v, a, _ = cal.apply(volts, amps, fs, cal.initial_state(len(cal.elements), fs))
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(a))):
        raise AssertionError("a loaded calibration gave non-finite samples")


def _reference_run_case(rng: np.random.Generator, d: Path) -> None:
    (d / "a.csv").write_text("v,i\n0,0\n")
    text = _BASE_RUN.encode()
    if rng.random() < 0.5:
        lines = text.split(b"\n")
        k = int(rng.integers(len(lines)))
        if b"=" in lines[k]:
            key = lines[k].split(b"=")[0]
            value = _odd(rng)
            rendered = json.dumps(value) if not isinstance(value, str) else json.dumps(value)
            lines[k] = key + b"= " + rendered.encode(errors="replace")[:20000]
        text = b"\n".join(lines)
    if rng.random() < 0.02:
        text += b"\ndeep = " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    if rng.random() < 0.6:
        text = _mutate_bytes(text, rng)
    path = d / "run.toml"
    path.write_bytes(text)
    load_reference_run(path)


def run_case(rng: np.random.Generator) -> None:
    """One mutated calibration or reference-run file, read; returns or raises MinimeterError."""
    with tempfile.TemporaryDirectory(prefix="fuzz-cal-") as tmp:
        if rng.random() < 0.6:
            _calibration_case(rng, Path(tmp))
        else:
            _reference_run_case(rng, Path(tmp))
