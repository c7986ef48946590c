"""Fuzz target (issue 9, SPEC S15.1, S15.2): the Meter API.

``run_case(rng)`` builds a meter from random keywords (in and out of their stated bounds,
wrong types), then applies a few random calls — ``feed`` with hostile arrays (complex,
object, text, NaN, ±inf, ×1e150, wrong shapes, odd rates), ``feed_cycles`` with hostile
per-cycle blocks, ``restore`` of mutated snapshots, ``close``, output look-ups. A call
may succeed or raise :class:`minimeter.errors.MinimeterError`; a refused call must leave
the meter exactly as before (S15.2), and the register never decreases (S5.2). Anything
else — another exception, or a broken invariant (AssertionError) — is a finding.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from minimeter import Meter
from minimeter.errors import MinimeterError
from minimeter.meter import CycleBlock, MeterSnapshot

_MODELS = ("MO", "MK", "6S", "6F", "7B", "5B")
_ODD = (0.0, -1.0, math.nan, math.inf, -math.inf, 1e-300, 1e300, 10 ** 400, True, "40", None, 1 + 1j)


def _number(rng: np.random.Generator, typical: float) -> object:
    """Mostly a plausible value, sometimes an odd one."""
    roll = rng.random()
    if roll < 0.6:
        return typical * float(rng.uniform(0.5, 1.5))
    if roll < 0.8:
        return float(10 ** rng.uniform(-6, 12)) * float(rng.choice([-1.0, 1.0]))
    return _ODD[int(rng.integers(len(_ODD)))]


def _meter(rng: np.random.Generator) -> Meter:
    keywords = {}
    for name, typical in (("tracking_min_hz", 40.0), ("hysteresis_v", 10.0), ("full_scale_v", 293.0),
                          ("full_scale_a", 622.0), ("register_wh", 1000.0), ("reverse_deadband_w", 1.0)):
        if rng.random() < 0.15:
            keywords[name] = _number(rng, typical)
    if rng.random() < 0.1:
        keywords["register_quanta"] = _ODD[int(rng.integers(len(_ODD)))] if rng.random() < 0.5 else int(rng.integers(0, 2 ** 62))
    return Meter.for_model(str(rng.choice(_MODELS)), **keywords)


def _samples(rng: np.random.Generator, elements: int, n: int, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """A line-frequency sine pair with hostile edits."""
    t = np.arange(n) / fs
    f = float(rng.choice([60.0, 50.0, 30.0, 5.0, 400.0, 0.0]))
    volts = np.array([rng.uniform(0, 200) * math.sqrt(2) * np.cos(2 * np.pi * f * t + k * np.pi) for k in range(elements)])
    amps = np.array([rng.uniform(0, 300) * math.sqrt(2) * np.cos(2 * np.pi * f * t - rng.uniform(-3, 3)) for _ in range(elements)])
    for x in (volts, amps):
        if n and rng.random() < 0.3:
            x[int(rng.integers(elements)), int(rng.integers(n))] = float(rng.choice([np.nan, np.inf, -np.inf, 1e150, 1e6, -1e308]))
        if rng.random() < 0.1:
            x *= float(rng.choice([1e150, 1e-150, 0.0, 30.0]))
    return volts, amps


def _hostile_array(rng: np.random.Generator, x: np.ndarray) -> object:
    roll = rng.random()
    if roll < 0.75:
        return x
    if roll < 0.8:
        return x.astype(complex)
    if roll < 0.85:
        return x.astype(object)
    if roll < 0.88:
        return x.astype(str)
    if roll < 0.92:
        return x[:, : max(x.shape[1] - 3, 0)]
    if roll < 0.96:
        return x.T
    return x.tolist() if rng.random() < 0.5 else "samples"


def _feed(rng: np.random.Generator, meter: Meter) -> None:
    e = meter.spec.elements
    fs = float(rng.choice([2000.0, 4000.0, 7680.0, 8000.0]))
    n = int(rng.integers(0, 3000))
    volts, amps = _samples(rng, e, n, fs)
    rate: object = fs if rng.random() < 0.9 else _number(rng, fs)
    amps_are = "primary" if rng.random() < 0.9 else str(rng.choice(["secondary", "tertiary", ""]))
    meter.feed(_hostile_array(rng, volts), _hostile_array(rng, amps), rate, amps_are=amps_are)


def _cycles(rng: np.random.Generator, meter: Meter) -> CycleBlock:
    e, m = meter.spec.elements, int(rng.integers(0, 200))
    duration = np.full(m, 1 / 60)
    start = meter.time_s + np.arange(m) / 60
    power = rng.uniform(-5000, 50_000, (e, m))
    block = CycleBlock(start, duration, np.full(m, 60.0), np.zeros(m, bool), power, power * duration / 3600,
                       rng.uniform(0, 140, (e, m)), rng.uniform(0, 250, (e, m)))
    if rng.random() < 0.5:
        name = str(rng.choice([f.name for f in dataclasses.fields(CycleBlock)]))
        value = np.array(getattr(block, name), dtype=float if name != "partial" else bool)
        if value.size and name != "partial":
            value.flat[int(rng.integers(value.size))] = float(rng.choice(
                [np.nan, np.inf, -1.0, 0.0, 2.0 ** 24, 1e300, -1e12, 3.6e12]))
        block = dataclasses.replace(block, **{name: value})
    return block


def _restore(rng: np.random.Generator, meter: Meter) -> None:
    snapshot = meter.state()
    if rng.random() < 0.4:
        snapshot = MeterSnapshot.from_dict(snapshot.as_dict())
    else:
        name = str(rng.choice([f.name for f in dataclasses.fields(MeterSnapshot)]))
        odd = [None, -1, 1.5, math.nan, "x", (), ((1, 2),), True, 10 ** 30, (math.inf,)]
        snapshot = dataclasses.replace(snapshot, **{name: odd[int(rng.integers(len(odd)))]})
    meter.restore(snapshot)


def _call(rng: np.random.Generator, meter: Meter) -> None:
    roll = rng.random()
    if roll < 0.55:
        _feed(rng, meter)
    elif roll < 0.8:
        meter.feed_cycles(_cycles(rng, meter))
    elif roll < 0.9:
        _restore(rng, meter)
    elif roll < 0.95:
        meter.close()
    else:
        meter.closures(str(rng.choice(["10", "100", "1000", "counter", "x"])))


def run_case(rng: np.random.Generator) -> None:
    """One meter and up to six calls; see the module's docstring."""
    with np.errstate(all="ignore"):       # the hostile inputs are made with overflowing arithmetic
        _run(rng)


def _run(rng: np.random.Generator) -> None:
    meter = _meter(rng)
    for _ in range(int(rng.integers(1, 7))):
        before = meter.state().as_dict()
        register = meter.register_quanta
        try:
            _call(rng, meter)
        except MinimeterError as exc:
            assert "\n" not in str(exc), f"a multi-line error: {exc!r}"
            after = meter.state().as_dict()
            assert after == before, f"a refused call changed the meter (S15.2): {exc}"
            continue
        assert meter.register_quanta >= register, "the register decreased (S5.2)"
        assert math.isfinite(meter.watt_hours)
