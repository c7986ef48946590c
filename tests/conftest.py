"""Shared helpers for the tests: hand-built signals, so expected figures never come from
the code under test."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from minimeter import Meter

REPO = Path(__file__).resolve().parents[1]


def sine_frames(
    seconds: float,
    sample_rate_hz: float,
    *,
    volts_rms=(120.0,),
    amps_rms=(10.0,),
    angle_deg=(0.0,),
    volt_angle_deg=(0.0,),
    frequency_hz: float = 60.0,
    first_index: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain NumPy sinusoids: element k has v = √2·V·cos(ωt + α), i = √2·I·cos(ωt + α − φ)
    where φ = angle_deg[k] (positive = current lags)."""
    n = int(round(seconds * sample_rate_hz))
    t = (first_index + np.arange(n)) / sample_rate_hz
    w = 2 * math.pi * frequency_hz
    volts = np.array([math.sqrt(2) * v * np.cos(w * t + math.radians(a)) for v, a in zip(volts_rms, volt_angle_deg)])
    amps = np.array([
        math.sqrt(2) * i * np.cos(w * t + math.radians(a) - math.radians(phi))
        for i, phi, a in zip(amps_rms, angle_deg, volt_angle_deg)
    ])
    return volts, amps


def feed_in_chunks(meter: Meter, volts: np.ndarray, amps: np.ndarray, sample_rate_hz: float, sizes):
    """Feed consecutive chunks of the given sizes (the rest in one last chunk); return
    all transitions, LED changes and events."""
    transitions, leds, events = [], [], []
    start = 0
    n = volts.shape[1]
    for size in list(sizes) + [n]:
        stop = min(n, start + size)
        if stop > start:
            up = meter.feed(volts[:, start:stop], amps[:, start:stop], sample_rate_hz)
            transitions += up.transitions
            leds += up.led_changes
            events += up.events
        start = stop
        if start >= n:
            break
    up = meter.close()
    return transitions + list(up.transitions), leds + list(up.led_changes), events + list(up.events)


@pytest.fixture
def meter_7b() -> Meter:
    return Meter.for_model("7B", ct_rating="200A")
