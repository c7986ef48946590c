"""SPEC S12.3: dips, swells and interruptions (IEC 61000-4-30) judged on the rms over
one cycle refreshed every half cycle, against the declared voltage (120 V for a Mini
Meter's 102–138 V supply)."""

from __future__ import annotations

import math
import re

import pytest

from minimeter.drive import feed_source
from minimeter.meter import EventKind, Meter
from minimeter.sources.service import Component, Profile, SyntheticSource

F = 60.0
T = 1.0 / F
DECLARED_V = 120.0


def _run(level: float, start_s: float, length_s: float, sample_rate_hz: float | None = 6000.0,
         seconds: float = 1.0, current_a: float = 10.0):
    """A 120 V supply at ``level`` × from ``start_s`` for ``length_s``; the events."""
    gain = Profile((0.0, start_s, start_s + length_s), (1.0, level, 1.0))
    volts = (Component(DECLARED_V * math.sqrt(2), 1, 0.0, gain),)
    amps = (Component(current_a * math.sqrt(2), 1, -0.3),)
    meter = Meter.for_model("MO", ct_rating="200A", quantities=True)
    events = [ev for update, _ in feed_source(meter, SyntheticSource(F, (volts,), (amps,)), seconds,
                                              sample_rate_hz=sample_rate_hz) for ev in update.events]
    return meter, events


def _one(events, kind: EventKind):
    raised = [ev for ev in events if ev.kind == kind and ev.active]
    cleared = [ev for ev in events if ev.kind == kind and not ev.active]
    assert len(raised) == 1 and len(cleared) == 1, [(ev.kind, ev.active, ev.time_s) for ev in events]
    return raised[0], cleared[0]


def _start_and_duration(cleared) -> tuple[float, float]:
    """The cleared event's message: '… lasted 58.3 ms from 0.351234 s'."""
    found = re.search(r"lasted ([0-9.]+) ms from ([0-9.]+) s", cleared.message)
    assert found, cleared.message
    duration_s, start_s = float(found.group(1)) / 1000, float(found.group(2))
    assert cleared.time_s == pytest.approx(start_s + duration_s, abs=1e-4)
    return start_s, duration_s


# the meter's cycles start where cos(2πft) rises through zero (0.75 T); "mid-cycle" starts
# at a quarter and at half of such a cycle
@pytest.mark.parametrize("into_cycle", [0.25, 0.5, 0.8])
def test_s12_3_dip_to_70_percent_for_7_half_cycles(into_cycle):
    start = 20.75 * T + into_cycle * T
    meter, events = _run(0.70, start, 3.5 * T)
    raised, cleared = _one(events, EventKind.DIP)
    assert cleared.value / DECLARED_V == pytest.approx(0.70, abs=0.01)        # residual 70 % ± 1 %
    begin, duration = _start_and_duration(cleared)
    assert abs(duration - 3.5 * T) <= 0.5 * T
    assert abs(begin - start) <= 0.5 * T
    assert start < raised.time_s <= start + T                                 # detected within the first window
    assert re.search(r"depth (29\.[5-9]|30\.[0-4]) %", cleared.message)
    assert not [ev for ev in events if ev.kind in (EventKind.SWELL, EventKind.INTERRUPTION)]


@pytest.mark.parametrize("into_cycle", [0.25, 0.5])
@pytest.mark.parametrize("kind, level, cycles", [(EventKind.SWELL, 1.20, 3.5), (EventKind.INTERRUPTION, 0.0, 5.0)])
def test_s12_3_swell_and_interruption(kind, level, cycles, into_cycle):
    """A swell to 120 % for 7 half cycles; an interruption for 10 half cycles (also a dip)."""
    start = 20.75 * T + into_cycle * T
    meter, events = _run(level, start, cycles * T)
    raised, cleared = _one(events, kind)
    assert cleared.value / DECLARED_V == pytest.approx(level, abs=0.01)       # height / residual ± 1 %
    begin, duration = _start_and_duration(cleared)
    assert abs(duration - cycles * T) <= 0.5 * T and abs(begin - start) <= 0.5 * T
    others = {ev.kind for ev in events} & {EventKind.DIP, EventKind.SWELL, EventKind.INTERRUPTION} - {kind}
    assert others == (set() if kind == EventKind.SWELL else {EventKind.DIP})


def test_s12_3_phasor_path_judges_whole_cycles():
    """No samples, no half cycles: a dip over cycles 30–33 (whole periods from 0) lasts 4 cycles."""
    meter, events = _run(0.70, 30 * T, 4 * T, sample_rate_hz=None)
    raised, cleared = _one(events, EventKind.DIP)
    assert cleared.value == pytest.approx(0.70 * DECLARED_V, rel=1e-9)
    begin, duration = _start_and_duration(cleared)
    assert duration == pytest.approx(4 * T, abs=1e-4) and begin == pytest.approx(30 * T, abs=1e-6)


def test_s12_3_steady_supply_raises_nothing_and_an_event_spans_chunks():
    _, events = _run(1.0, 0.5, 0.1)
    assert not [ev for ev in events if ev.kind in (EventKind.DIP, EventKind.SWELL, EventKind.INTERRUPTION)]
    meter = Meter.for_model("MO", ct_rating="200A", quantities=True)     # the same dip fed in 97-frame chunks
    gain = Profile((0.0, 21.25 * T, 24.75 * T), (1.0, 0.7, 1.0))
    source = SyntheticSource(F, ((Component(DECLARED_V * math.sqrt(2), 1, 0.0, gain),),), ((Component(1.0, 1, 0.0),),))
    small = [ev for update, _ in feed_source(meter, source, 0.6, sample_rate_hz=6000.0, chunk_frames=97)
             for ev in update.events if ev.kind == EventKind.DIP]
    _, whole = _run(0.7, 21.25 * T, 3.5 * T, seconds=0.6)
    assert [(ev.time_s, ev.value) for ev in small] == [(ev.time_s, ev.value) for ev in whole if ev.kind == EventKind.DIP]
