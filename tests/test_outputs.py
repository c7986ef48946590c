"""SPEC §6 and S7.2: pulse outputs, their timestamps, and the load LED."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter import Load, Meter, Service, ideal_source

from .conftest import sine_frames


def test_s7_2_load_led_200w_on_90s_off_90s():
    """The manual's figure: at 200 W the load LED is on 1.5 min, off 1.5 min (5 Wh each).
    Energy starts at the first sample, so the LED changes at E = 5, 10, 15 … Wh, i.e. at
    t = 90, 180, 270 … s — to well within one line cycle (16.7 ms)."""
    fs = 4000.0
    volts, amps = sine_frames(12 * 60.0, fs, amps_rms=(200.0 / 120.0,))
    meter = Meter.for_model("MO")
    changes = []
    for k in range(0, volts.shape[1], 100_003):
        changes += [c for c in meter.feed(volts[:, k:k + 100_003], amps[:, k:k + 100_003], fs).led_changes
                    if c.led == "load"]
    energy_changes = changes[1:]                 # the first is the LED lighting at power-up
    assert changes[0].state is True and changes[0].time_s < 0.02
    times = np.array([c.time_s for c in energy_changes])
    states = [c.state for c in energy_changes]
    assert len(times) == 7                       # 90, 180, …, 630 s within 12 min
    assert np.allclose(times, 90.0 * np.arange(1, 8), atol=1.0 / 60)
    assert np.allclose(times, 90.0 * np.arange(1, 8), atol=2e-3)   # interpolated, not rounded (S6.3)
    assert states == [False, True, False, True, False, True, False]
    assert np.allclose(np.diff(times), 90.0, atol=2e-3)


def test_s7_2_load_led_with_no_load_stays_as_it_was():
    fs = 4000.0
    volts, amps = sine_frames(8 * 60.0, fs, amps_rms=(200.0 / 120.0,))
    meter = Meter.for_model("MO")
    meter.feed(volts, amps, fs)                  # 480 s: E = 26.67 Wh → mod 10 = 6.67 ≥ 5: off
    assert meter.leds.load is False
    v2, a2 = sine_frames(300.0, fs, amps_rms=(0.0,), first_index=volts.shape[1])
    up = meter.feed(v2, a2, fs)
    assert meter.leds.load is False and not [c for c in up.led_changes if c.led == "load"]


def test_s6_1_closures_equal_floor_energy_over_kh_with_1000_closures_on_each_output():
    """A 400 A 7B at full load on both legs (2 × 120 V × 440 A = 105.6 kW) for 34 213 s:
    E = 105 600 × 34 213 / 3600 = 1 003 581.33 Wh by hand → floor(E/10) = 100 358,
    floor(E/100) = 10 035 (also the kh 100 counter), floor(E/1000) = 1003 closures."""
    service = Service("split", 120.0, 60.0)
    loads = [Load(120 * 440, connection="L1"), Load(120 * 440, connection="L2")]
    meter = Meter.for_model("7B", ct_rating="400A", register="counter100")
    source = ideal_source(service, loads, 2)
    for block in source.cycles(34_213.0):
        meter.feed_cycles(block)
    assert meter.watt_hours == pytest.approx(1_003_581.333, abs=1e-3)
    assert meter.closures("10") == 100_358
    assert meter.closures("100") == 10_035
    assert meter.closures("1000") == 1003
    assert meter.closures("counter") == 10_035 == meter.counter_value


def test_s6_1_closures_floor_on_the_sample_path_and_50_percent_duty():
    """7B 400 A at 105.6 kW for 400 s: E = 11 733.33 Wh → 1173 closures of output 10,
    117 of output 100, 11 of output 1000 — and each output is on for as long as off."""
    fs = 2000.0
    seconds = 400.0
    v, a = sine_frames(seconds, fs, volts_rms=(120.0, 120.0), amps_rms=(440.0, 440.0),
                       angle_deg=(0.0, 0.0), volt_angle_deg=(0.0, 180.0))
    meter = Meter.for_model("7B", ct_rating="400A")
    transitions = []
    for k in range(0, v.shape[1], 65_536):
        transitions += meter.feed(v[:, k:k + 65_536], a[:, k:k + 65_536], fs).transitions
    meter.close()
    energy_wh = 2 * 120 * 440 * seconds / 3600
    assert meter.watt_hours == pytest.approx(energy_wh, rel=1e-4)
    for name, kh, expected in (("10", 10, 1173), ("100", 100, 117), ("1000", 1000, 11)):
        assert meter.closures(name) == expected == math.floor(energy_wh / kh)
        times = np.array([t.time_s for t in transitions if t.output == name and t.cause == "energy"])
        on_s = np.diff(times)[1::2]
        off_s = np.diff(times)[0::2]
        period_s = kh / (2 * 120 * 440) * 3600
        assert np.allclose(on_s, period_s / 2, rtol=1e-3) and np.allclose(off_s, period_s / 2, rtol=1e-3)


def test_s6_3_transition_timestamps_are_interpolated_inside_the_cycle():
    """At 6 kW the output 10 changes every 3 s exactly; a timestamp rounded to the cycle
    would be off by up to 16.7 ms, one rounded to a chunk (4099 samples ≈ 1 s) by up to 1 s."""
    fs = 7812.5
    volts, amps = sine_frames(31.0, fs, amps_rms=(50.0,))
    meter = Meter.for_model("MO")
    times = []
    for k in range(0, volts.shape[1], 4099):
        times += [t.time_s for t in meter.feed(volts[:, k:k + 4099], amps[:, k:k + 4099], fs).transitions
                  if t.output == "10" and t.cause == "energy"]
    assert np.allclose(times, 3.0 * np.arange(1, 11), atol=2e-4)
