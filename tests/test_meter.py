"""SPEC §4.3–§4.5, §7 and §8: net power, forward-only registration, no creep, the three
LEDs, events and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter import InvalidSamples, Meter, MinimeterError, Profile
from minimeter.sources.service import Component, SyntheticSource

from .conftest import sine_frames


def run(meter, volts, amps, fs, chunk=40_000):
    out = {"transitions": [], "leds": [], "events": []}
    for k in range(0, volts.shape[1], chunk):
        up = meter.feed(volts[:, k:k + chunk], amps[:, k:k + chunk], fs)
        out["transitions"] += up.transitions
        out["leds"] += up.led_changes
        out["events"] += up.events
    up = meter.close()
    out["transitions"] += up.transitions
    out["leds"] += up.led_changes
    out["events"] += up.events
    return out


def split_phase(seconds, fs, i1_rms, i2_rms, phi1=0.0, phi2=0.0, v_rms=120.0):
    """v2 = −v1; each CT's current at angle φ behind its own leg's voltage."""
    return sine_frames(seconds, fs, volts_rms=(v_rms, v_rms), amps_rms=(i1_rms, i2_rms),
                       angle_deg=(phi1, phi2), volt_angle_deg=(0.0, 180.0))


# ----------------------------------------------------------------------------- S4.3 / S4.4
def test_s4_3_s7_3_reversed_ct2_on_balanced_240v_load_registers_zero():
    """A 4800 W 240 V load: 20 A out on L1 and back on L2. CT2 reversed turns element
    2's +2400 W into −2400 W: net 0, registration 0 %; net is not negative, so the reverse
    LED stays off although both CTs carry 20 A (S7.3)."""
    fs = 4000.0
    volts, amps = split_phase(60.0, fs, 20.0, 20.0)
    amps[1] *= -1.0
    meter = Meter.for_model("7B")
    out = run(meter, volts, amps, fs)
    correct_wh = 4800 * 60 / 3600
    assert meter.watt_hours / correct_wh < 1e-6
    assert meter.leds.reverse is False
    assert not [c for c in out["leds"] if c.led == "reverse"]


def test_s4_3_reversed_ct2_unbalanced_registers_the_difference_and_lights_reverse_led():
    """L1 carries 10 A (1200 W), L2 30 A (3600 W); CT2 reversed: net = 1200 − 3600 < 0:
    nothing registers, the reverse register gets 2400 W, and the LED lights."""
    fs = 4000.0
    volts, amps = split_phase(30.0, fs, 10.0, 30.0)
    amps[1] *= -1.0
    meter = Meter.for_model("7B")
    out = run(meter, volts, amps, fs)
    assert meter.watt_hours == 0.0
    assert meter.reverse_watt_hours == pytest.approx(2400 * 30 / 3600, rel=1e-4)
    assert meter.leds.reverse is True
    assert any(ev.kind == "reverse-power" and ev.active for ev in out["events"])


def test_s4_4_sign_is_judged_per_cycle_not_per_sample():
    """PF 0.5 lag: instantaneous power is negative for a sixth of every cycle, yet the
    whole cycle's energy is positive and registers in full."""
    fs = 7812.5
    volts, amps = sine_frames(60.0, fs, amps_rms=(50.0,), angle_deg=(60.0,))
    assert (volts * amps < 0).mean() > 0.15
    meter = Meter.for_model("MO")
    run(meter, volts, amps, fs)
    assert meter.watt_hours == pytest.approx(120 * 50 * 0.5 * 60 / 3600, rel=1e-4)


# ----------------------------------------------------------------------------- S4.5
def test_s4_5_no_creep_138v_with_noise_and_no_current():
    fs = 4000.0
    volts, amps = sine_frames(120.0, fs, volts_rms=(138.0,), amps_rms=(0.0,))
    rng = np.random.default_rng(1)
    volts = volts + rng.normal(0, 1.0, volts.shape)
    amps = amps + rng.normal(0, 0.05, amps.shape) + 0.01      # noise and a DC offset, far below 0.2 A
    meter = Meter.for_model("MO")
    out = run(meter, volts, amps, fs)
    assert meter.watt_hours == 0.0
    assert meter.closures("10") == 0
    assert meter.powered                       # powered and measuring: it just has nothing to register
    assert not [t for t in out["transitions"] if t.cause == "energy"]


@pytest.mark.parametrize("amps_rms,registers", [(0.15, False), (0.25, True)])
def test_s4_5_starting_current(amps_rms, registers):
    fs = 4000.0
    volts, amps = sine_frames(60.0, fs, amps_rms=(amps_rms,))
    meter = Meter.for_model("MO", ct_rating="200A")     # starting current 0.2 A
    run(meter, volts, amps, fs)
    expected = 120 * amps_rms * 60 / 3600 if registers else 0.0
    assert meter.watt_hours == pytest.approx(expected, rel=1e-4, abs=1e-12)


# ----------------------------------------------------------------------------- S7.1
def test_s7_1_supply_at_100v_meter_unpowered_register_kept():
    fs = 4000.0
    volts, amps = sine_frames(30.0, fs, volts_rms=(100.0,), amps_rms=(20.0,))
    meter = Meter.for_model("MO", register_wh=1234.5)
    out = run(meter, volts, amps, fs)
    assert meter.watt_hours == 1234.5
    assert meter.lcd_text == "000001.2"
    assert meter.leds == type(meter.leds)(power=False, load=False, reverse=False)
    assert not any(meter.output_on(name) for name in meter.output_names)
    assert not out["transitions"]
    assert any(ev.kind == "power-loss" and ev.active for ev in out["events"])


def test_s7_1_supply_at_150v_over_voltage_power_led_off_still_measuring():
    fs = 4000.0
    volts, amps = sine_frames(30.0, fs, volts_rms=(150.0,), amps_rms=(20.0,))
    meter = Meter.for_model("MO")
    out = run(meter, volts, amps, fs)
    assert meter.watt_hours == pytest.approx(150 * 20 * 30 / 3600, rel=1e-4)
    assert meter.leds.power is False
    assert any(ev.kind == "over-voltage" and ev.active and ev.value == pytest.approx(150, rel=1e-3)
               for ev in out["events"])
    assert not any(ev.kind == "power-loss" for ev in out["events"])


def test_s7_1_dual_element_powered_from_either_leg():
    fs = 4000.0
    volts, amps = split_phase(10.0, fs, 10.0, 0.0)
    volts[0] = 0.0                                   # L1 terminal dead, L2 at 120 V
    meter = Meter.for_model("7B")
    out = run(meter, volts, amps, fs)
    assert meter.leds.power is True
    assert any(ev.kind == "under-voltage" and ev.element == 1 for ev in out["events"])


def test_s7_1_s8_1_power_loss_and_restore_keep_the_register():
    """Voltage on for 10 s, off for 10 s, on for 10 s with a 6 kW load throughout: only
    the 20 powered seconds register (6000 W × 20 s = 33.33 Wh)."""
    f, fs = 60.0, 4000.0
    gain = Profile((0.0, 10.0, 20.0), (1.0, 0.0, 1.0))
    source = SyntheticSource(
        frequency_hz=f,
        volts=((Component(120 * math.sqrt(2), 1, 0.0, gain),),),
        amps=((Component(50 * math.sqrt(2), 1, 0.0),),),
    )
    meter = Meter.for_model("MO")
    transitions, events = [], []
    for frames in source.frames(30.0, fs, 7777):
        up = meter.feed(frames.volts, frames.amps, fs)
        transitions += up.transitions
        events += up.events
    meter.close()
    assert meter.watt_hours == pytest.approx(6000 * 20 / 3600, rel=1e-3)
    kinds = [(ev.kind, ev.active) for ev in events if ev.kind == "power-loss"]
    assert kinds == [("power-loss", True), ("power-loss", False)]
    loss = [t for t in transitions if t.cause == "power-loss"]
    # S4.8: the cycle the supply died in is registered; the loss is noticed where no zero
    # crossing came for 1/tracking_min_hz (25 ms) after the last one
    assert loss and all(t.state is False and 10.0 <= t.time_s <= 10.0 + 1 / 40 for t in loss)
    # closures still mark energy only: floor(E/10)
    assert meter.closures("10") == math.floor(6000 * 20 / 3600 / 10)


# ----------------------------------------------------------------------------- S7.3
@pytest.mark.parametrize("amps_rms,lit", [(0.9, False), (1.1, True)])
def test_s7_3_reverse_led_needs_one_amp(amps_rms, lit):
    fs = 4000.0
    volts, amps = sine_frames(5.0, fs, amps_rms=(amps_rms,), angle_deg=(180.0,))  # CT reversed
    meter = Meter.for_model("MO")
    run(meter, volts, amps, fs)
    assert meter.leds.reverse is lit


def test_s7_3_reverse_led_keeps_its_state_below_one_amp():
    """Reversed CT at 5 A for 5 s (LED on), then 0.5 A: it may be on or off — it keeps on."""
    fs = 4000.0
    v1, a1 = sine_frames(5.0, fs, amps_rms=(5.0,), angle_deg=(180.0,))
    v2, a2 = sine_frames(5.0, fs, amps_rms=(0.5,), angle_deg=(180.0,), first_index=v1.shape[1])
    meter = Meter.for_model("MO")
    meter.feed(v1, a1, fs)
    assert meter.leds.reverse is True
    meter.feed(v2, a2, fs)
    assert meter.leds.reverse is True


# ----------------------------------------------------------------------------- S8
def test_s8_1_over_current_frequency_and_low_pf_events():
    fs = 4000.0
    volts, amps = sine_frames(2.0, fs, amps_rms=(250.0,), angle_deg=(70.0,), frequency_hz=45.0)
    meter = Meter.for_model("MO", ct_rating="200A")     # maximum 220 A
    out = run(meter, volts, amps, fs)
    kinds = {ev.kind for ev in out["events"] if ev.active}
    assert {"over-current", "frequency", "low-pf"} <= kinds       # cos 70° = 0.34 < 0.5
    oc = next(ev for ev in out["events"] if ev.kind == "over-current")
    assert oc.value == pytest.approx(250.0, rel=1e-2)
    # measuring goes on: P = 120 · 250 · cos 70° over 2 s. (Within 1 %: the stream's last
    # partial cycle ends on a negative lobe of v·i, which S4.4 does not register — an edge
    # effect of at most one cycle, which S4.7 bounds only over runs of 60 s or more.)
    assert meter.watt_hours == pytest.approx(120 * 250 * math.cos(math.radians(70)) * 2 / 3600, rel=1e-2)


def test_s8_2_clipped_samples_are_flagged():
    fs = 4000.0
    volts, amps = sine_frames(1.0, fs, amps_rms=(20.0,))
    meter = Meter.for_model("MO", full_scale_a=25.0)
    out = run(meter, volts, np.clip(amps, -25.0, 25.0), fs)
    clipped = [ev for ev in out["events"] if ev.kind == "clipped"]
    assert clipped and "full scale" in clipped[0].message


def _snapshot(meter):
    return (meter.register_quanta, meter.reverse_watt_hours, meter.leds,
            {n: (meter.closures(n), meter.output_on(n)) for n in meter.output_names})


@pytest.mark.parametrize("bad", ["nan", "inf", "lengths", "rate0", "rate-", "shape", "text"])
def test_s8_2_bad_input_is_refused_and_leaves_the_register_untouched(bad):
    fs = 4000.0
    volts, amps = sine_frames(10.0, fs, amps_rms=(30.0,))
    first, second = 20_000, volts.shape[1]
    clean = Meter.for_model("MO")
    clean.feed(volts[:, :first], amps[:, :first], fs)
    clean.feed(volts[:, first:second], amps[:, first:second], fs)
    meter = Meter.for_model("MO")
    meter.feed(volts[:, :first], amps[:, :first], fs)
    before = _snapshot(meter)
    v, a, rate = volts[:, first:second].copy(), amps[:, first:second].copy(), fs
    if bad == "nan":
        v[0, 1234] = np.nan
        match = "non-finite sample .* at index 1234"
    elif bad == "inf":
        a[0, 77] = np.inf
        match = "non-finite"
    elif bad == "lengths":
        a = a[:, :-5]
        match = "mismatched lengths"
    elif bad == "rate0":
        rate = 0.0
        match = "sample_rate_hz must be ≥ 500"
    elif bad == "rate-":
        rate = -8000.0
        match = "sample_rate_hz must be ≥ 500"
    elif bad == "shape":
        v = np.vstack([v, v])
        match = "shape"
    else:
        v = "not samples"
        match = "real samples"
    with pytest.raises(InvalidSamples, match=match):
        meter.feed(v, a, rate)
    assert _snapshot(meter) == before
    # the stream goes on as if the bad chunk had never come
    meter.feed(volts[:, first:second], amps[:, first:second], fs)
    assert meter.register_quanta == clean.register_quanta
    assert meter.register_quanta > 0


def test_s8_2_sample_rate_cannot_change_mid_stream_and_closed_meter_refuses():
    volts, amps = sine_frames(1.0, 4000.0)
    meter = Meter.for_model("MO")
    meter.feed(volts, amps, 4000.0)
    with pytest.raises(InvalidSamples, match="sample rate changed"):
        meter.feed(volts, amps, 8000.0)
    meter.close()
    with pytest.raises(MinimeterError, match="closed"):
        meter.feed(volts, amps, 4000.0)


def test_s4_1_secondary_amps_are_multiplied_by_the_ct_ratio():
    fs = 4000.0
    volts, amps = sine_frames(60.0, fs, amps_rms=(0.05,))            # 0.05 A secondary
    meter = Meter.for_model("MO", ct_rating="0.1A", ct_ratio="200:0.1")
    run_secondary = meter.feed(volts, amps, fs, amps_are="secondary")
    meter.close()
    assert run_secondary.cycles.amps_rms[0, 5] == pytest.approx(100.0, rel=2e-3)   # 0.05 × 2000
    assert meter.watt_hours == pytest.approx(120 * 100 * 60 / 3600, rel=1e-4)


@pytest.mark.parametrize("supply_v", [102.0, 138.0])
def test_s7_1_supply_exactly_at_the_limits_is_in_range(supply_v):
    """The manual's range is 102–138 V inclusive: a supply held exactly at a limit powers
    the meter, lights the Power LED and registers in full (6 A for 60 s, hand figure)."""
    fs = 2000.0
    volts, amps = sine_frames(60.0, fs, volts_rms=(supply_v,), amps_rms=(6.0,))
    meter = Meter.for_model("MO")
    out = run(meter, volts, amps, fs)
    assert meter.leds.power is True
    assert not [ev for ev in out["events"] if ev.kind in ("power-loss", "over-voltage", "under-voltage")]
    assert meter.watt_hours == pytest.approx(supply_v * 6.0 * 60 / 3600, rel=1e-4)


def test_s4_5_registers_at_exactly_the_starting_current():
    """STANDARDS row 11: 0.2 A on a 200 A meter must register: 120 V · 0.2 A · 600 s = 4 Wh."""
    fs = 2000.0
    volts, amps = sine_frames(600.0, fs, amps_rms=(0.2,))
    meter = Meter.for_model("MO", ct_rating="200A")
    run(meter, volts, amps, fs)
    assert meter.watt_hours == pytest.approx(4.0, rel=1e-4)
