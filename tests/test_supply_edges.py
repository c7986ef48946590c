"""SPEC S4.8 (supply edges judged on the returning cycle), S4.7/S8.1 (slow signals and
frequency events on both paths). The samples are built here with NumPy and the expected
energies integrated by hand: v = √2·120·cos ωt, i = √2·40·cos(ωt − φ), cos φ = 0.8, so
P = 120 · 40 · 0.8 = 3840 W, and any whole number of periods removed removes P · T each."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter import Meter
from minimeter.drive import feed_cycles
from minimeter.sources.service import Component, SyntheticSource

from .conftest import sine_frames

FS = 8000.0
F = 60.0
T = 1 / F
P_W = 120 * 40 * 0.8
PHI_DEG = math.degrees(math.acos(0.8))
FIRST_CROSSING_S = 0.75 * T          # cos ωt rises through zero at ωt = 3π/2


def _run(volts, amps, chunk):
    meter = Meter.for_model("MO")
    events = []
    for k in range(0, volts.shape[1], chunk):
        events += meter.feed(volts[:, k:k + chunk], amps[:, k:k + chunk], FS).events
    events += meter.close().events
    return meter, events


def _service(seconds=60.0):
    volts, amps = sine_frames(seconds, FS, amps_rms=(40.0,), angle_deg=(PHI_DEG,))
    return volts, amps, np.arange(volts.shape[1]) / FS


def _power_events(events, kind="power-loss"):
    return [(ev.time_s, ev.active) for ev in events if ev.kind == kind]


@pytest.mark.parametrize("phase", [0.0, 0.25, 0.6, 0.9])
@pytest.mark.parametrize("chunk", [7_777, 480_000])
def test_s4_8_three_cycle_interruption_registers_the_powered_stretch(phase, chunk):
    """The issue's case (120 V / 40 A PF 0.8, a 3-cycle gap to 0 V), the gap starting at
    a zero crossing or anywhere in the cycle: the register holds P · (60 s − 3 T), by hand
    63.7867 Wh, within S4.7's 0.01 % (it was 0.028 % low: the first cycle back was lost),
    whatever the chunk sizes; power restored is stamped at the cycle the voltage came back in."""
    volts, amps, t = _service()
    t_off = FIRST_CROSSING_S + 600 * T + phase * T
    t_on = t_off + 3 * T
    gap = (t >= t_off) & (t < t_on)
    volts[:, gap] = 0.0
    amps[:, gap] = 0.0
    meter, events = _run(volts, amps, chunk)
    expected_wh = P_W * (60.0 - 3 * T) / 3600
    assert meter.watt_hours == pytest.approx(expected_wh, rel=1e-4)
    power = _power_events(events)
    assert [active for _, active in power] == [True, False]
    (t_loss, _), (t_restore, _) = power
    # the loss is noticed where the cycle the supply died in ends: no zero crossing for 25 ms
    assert t_off - T <= t_loss <= t_off + 1 / 40
    # restored at the start of the cycle that holds the return, not a cycle later
    assert t_on - 1 / 40 <= t_restore <= t_on


@pytest.mark.parametrize("chunk", [7_777, 480_000])
def test_s4_8_sag_starting_at_the_voltage_peak_registers_the_powered_stretch(chunk):
    """A 3-cycle interruption at 10 s and a dip to 50 % (60 V: the meter is unpowered)
    for 10 cycles starting at the voltage peak at 30 s. Powered stretch: 60 s − 13 T,
    P · (60 − 13 T) / 3600 = 63.7689 Wh by hand, within 0.01 %. The dip's edges are
    judged on each cycle's own voltage: the loss at the cycle the dip starts in, power
    restored at the cycle it ends in."""
    volts, amps, t = _service()
    t_off = FIRST_CROSSING_S + 600 * T
    gap = (t >= t_off) & (t < t_off + 3 * T)
    volts[:, gap] = 0.0
    amps[:, gap] = 0.0
    t_dip = FIRST_CROSSING_S + 1800 * T + 0.25 * T          # the positive peak
    dip = (t >= t_dip) & (t < t_dip + 10 * T)
    volts[:, dip] *= 0.5
    amps[:, dip] *= 0.5                                     # a constant-impedance load
    meter, events = _run(volts, amps, chunk)
    assert meter.watt_hours == pytest.approx(P_W * (60.0 - 13 * T) / 3600, rel=1e-4)
    power = _power_events(events)
    assert [active for _, active in power] == [True, False, True, False]
    dip_loss, dip_restore = power[2][0], power[3][0]
    assert dip_loss <= t_dip < dip_loss + T + 1e-9
    assert dip_restore <= t_dip + 10 * T < dip_restore + T + 1e-9


def test_s4_8_supply_edges_do_not_depend_on_chunk_sizes():
    """Every cycle judged with its neighbour whatever the chunking: bit-identical registers."""
    volts, amps, t = _service(5.0)
    gap = (t >= 2.0 + 0.3 * T) & (t < 2.0 + 3.3 * T)
    volts[:, gap] = 0.0
    quanta = {_run(volts, amps, chunk)[0].register_quanta for chunk in (101, 1_000, 8_191, 40_000)}
    assert len(quanta) == 1


def test_s4_7_s8_1_thirty_hertz_at_8_khz_is_measured_and_flagged():
    """Issue 9: a 30 Hz supply at 8 kHz failed with a false 'overflow to infinite
    products'. It is measured (120 V · 10 A · 60 s = 20 Wh by hand) and flagged as a
    frequency below the tracked 40 Hz, once, with no power events."""
    volts, amps = sine_frames(60.0, FS, frequency_hz=30.0)
    meter, events = _run(volts, amps, 7_777)
    assert meter.watt_hours == pytest.approx(20.0, rel=1e-4)
    frequency = [ev for ev in events if ev.kind == "frequency"]
    assert len(frequency) == 1 and frequency[0].active and "below 40 Hz" in frequency[0].message
    assert not _power_events(events)


def test_s8_1_frequency_below_40_hz_is_an_event_on_the_phasor_path_too():
    source = SyntheticSource(frequency_hz=30.0, volts=((Component(120 * math.sqrt(2), 1, 0.0),),),
                             amps=((Component(10 * math.sqrt(2), 1, 0.0),),))
    meter = Meter.for_model("MO")
    events = [ev for up in feed_cycles(meter, source.cycles(10.0)) for ev in up.events]
    frequency = [ev for ev in events if ev.kind == "frequency"]
    assert len(frequency) == 1 and frequency[0].active and frequency[0].value == pytest.approx(30.0)
    assert meter.watt_hours == pytest.approx(1200 * 10 / 3600, rel=1e-9)
