"""SPEC S4.5 (no creep with a realistic front end; the starting current registers) and
S8.1 (threshold events with hysteresis). Front-end samples come from the 'typical'
preset of :mod:`minimeter.sources.frontend` (12-bit ADC: 0.15 A rms noise, 0.9 A offset on
a 200 A input); energies are checked against sample sums and hand figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter import Meter
from minimeter.sources.frontend import preset

from .conftest import sine_frames


def _through_front_end(name: str, seconds: float, fs: float, chunk_s: float, **signal):
    """Chunks of (volts, amps) as the front end ``name`` reports them."""
    front = preset(name)
    state = front.initial_state(1, fs)
    for k in range(int(round(seconds / chunk_s))):
        volts, amps = sine_frames(chunk_s, fs, first_index=int(round(k * chunk_s * fs)), **signal)
        volts, amps, state = front.apply(volts, amps, fs, state)
        yield volts, amps


def test_s4_5_typical_front_end_ct_open_at_138_v_registers_nothing_in_250_minutes():
    """Issue 16: 138 V, CT open, the 'typical' front end: the register grew 0.172 Wh in
    10 minutes. Over 250 simulated minutes it stays at 0 — not under a pulse: zero — and
    no cycle is even counted as reverse. Sampled at 500 Hz, the harshest rate the meter
    takes: the fewer samples a cycle, the larger each cycle's noise."""
    fs = 500.0
    meter = Meter.for_model("MO", ct_rating="200A")
    events = []
    for volts, amps in _through_front_end("typical", 250 * 60.0, fs, 600.0, volts_rms=(138.0,), amps_rms=(0.0,)):
        events += meter.feed(volts, amps, fs).events
    events += meter.close().events
    assert meter.register_quanta == 0
    assert meter.reverse_quanta == 0
    assert meter.closures("10") == 0
    assert not [ev for ev in events if ev.kind in ("low-pf", "reverse-power", "power-loss")]


def test_s4_5_starting_current_registers_through_the_typical_front_end():
    """0.2 A at 120 V PF 1 (0.1 % of 200 A) through the 'typical' front end: every cycle
    registers — the register equals the delivered energy of the front end's own samples,
    Σ v·i / fs summed here cycle by cycle of the meter (the front end's error, about
    −2.3 % here, is the calibration's business, not the starting current's)."""
    fs = 4000.0
    meter = Meter.for_model("MO", ct_rating="200A")
    delivered_j = 0.0
    for volts, amps in _through_front_end("typical", 120.0, fs, 10.0, amps_rms=(0.2,)):
        update = meter.feed(volts, amps, fs)
        delivered_j += float(np.sum(volts * amps)) / fs
    meter.close()
    delivered_wh = delivered_j / 3600
    assert delivered_wh == pytest.approx(120 * 0.2 * 120 / 3600, rel=0.04)      # 0.8 Wh by hand
    assert meter.watt_hours == pytest.approx(delivered_wh, rel=2e-3)
    assert update.cycles.count > 0


@pytest.mark.parametrize("amps_rms, registers", [(0.17, False), (0.19, True), (0.2, True)])
def test_s4_5_starting_band_is_90_percent_of_the_starting_current(amps_rms, registers):
    """Decision (issue 16): the starting current is detected at 90 % of 0.2 A on the
    smoothed active current. Below 0.18 A nothing registers; at 0.19 and 0.2 A the load
    registers in full: 120 V · I · 300 s by hand, within S4.7's 0.01 %."""
    fs = 2000.0
    volts, amps = sine_frames(300.0, fs, amps_rms=(amps_rms,))
    meter = Meter.for_model("MO", ct_rating="200A")
    meter.feed(volts, amps, fs)
    meter.close()
    expected = 120 * amps_rms * 300 / 3600 if registers else 0.0
    assert meter.watt_hours == pytest.approx(expected, rel=1e-4, abs=0.0)


def test_s4_5_a_reactive_load_at_the_starting_current_does_not_fool_the_detector():
    """20 A at PF 0 carries no active current: nothing to register, and nothing does."""
    fs = 2000.0
    volts, amps = sine_frames(60.0, fs, amps_rms=(20.0,), angle_deg=(90.0,))
    meter = Meter.for_model("MO")
    meter.feed(volts, amps, fs)
    meter.close()
    assert meter.watt_hours < 1e-9


def _events(kind, **signal):
    fs = 4000.0
    volts, amps = sine_frames(120.0, fs, **signal)
    meter = Meter.for_model("MO", ct_rating="200A")
    events = []
    for k in range(0, volts.shape[1], 40_000):
        events += meter.feed(volts[:, k:k + 40_000], amps[:, k:k + 40_000], fs).events
    events += meter.close().events
    return [ev for ev in events if ev.kind == kind]


def test_s8_1_power_factor_held_at_exactly_0_5_raises_one_event():
    """Issue 16: PF exactly 0.5 for 120 s raised and cleared the low-PF event 51 times.
    With hysteresis (clears at 0.51) it is raised once and stays raised."""
    low = _events("low-pf", amps_rms=(10.0,), angle_deg=(60.0,))
    assert [ev.active for ev in low] == [True]


def test_s8_1_current_held_at_exactly_the_maximum_raises_one_event():
    """220 A (110 % of 200 A) held: one over-current event (clears at 98 % of it)."""
    over = _events("over-current", amps_rms=(220.0,))
    assert len(over) <= 1 and all(ev.active for ev in over)


def test_s8_1_low_pf_clears_once_back_inside_the_band():
    """PF 0.4 then 0.6: raised once, cleared once."""
    fs = 4000.0
    a1 = sine_frames(5.0, fs, amps_rms=(10.0,), angle_deg=(math.degrees(math.acos(0.4)),))
    a2 = sine_frames(5.0, fs, amps_rms=(10.0,), angle_deg=(math.degrees(math.acos(0.6)),), first_index=20_000)
    meter = Meter.for_model("MO")
    events = meter.feed(np.hstack((a1[0], a2[0])), np.hstack((a1[1], a2[1])), fs).events
    assert [ev.active for ev in events if ev.kind == "low-pf"] == [True, False]
