"""SPEC §4.2 and §4.7: line cycles that tile the stream; energy within 0.01 % of the
analytic value for any frequency, power factor, sample rate and harmonics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter import Meter
from minimeter.meter.metrology import LineCycleState, measure_chunk

from .conftest import sine_frames


def test_s4_2_cycles_tile_the_stream_with_partial_edges():
    fs = 7812.5
    volts, amps = sine_frames(1.0, fs, amps_rms=(5.0,), volt_angle_deg=(37.0,))
    block, state = measure_chunk(volts, amps, LineCycleState.start(1, fs))
    tail, _ = measure_chunk(np.zeros((1, 0)), np.zeros((1, 0)), state, final=True)
    n = volts.shape[1]
    starts = np.concatenate((block.start_s, tail.start_s))
    durations = np.concatenate((block.duration_s, tail.duration_s))
    # no gap, no overlap, from the first sample to the last
    assert starts[0] == 0.0
    assert np.allclose(starts[1:], starts[:-1] + durations[:-1], rtol=0, atol=1e-12)
    assert (starts[-1] + durations[-1]) * fs == pytest.approx(n)
    # 60 whole cycles in one second, the stream starting mid-cycle: 59 whole + 2 partial
    assert block.partial[0] and tail.partial[-1]
    assert block.count + tail.count == 61
    assert not block.partial[1:].any()


def test_s4_2_frequency_per_cycle_and_quantities():
    fs, f = 4000.3, 57.3
    volts, amps = sine_frames(2.0, fs, volts_rms=(120.0,), amps_rms=(8.0,), angle_deg=(60.0,), frequency_hz=f)
    block, _ = measure_chunk(volts, amps, LineCycleState.start(1, fs))
    whole = ~block.partial
    assert np.allclose(block.frequency_hz[whole], f, rtol=1e-5)
    # per whole cycle, hand values: P = V·I·cos 60° = 480 W, Vrms 120, Irms 8, PF 0.5
    # (a cycle of N samples at a non-synchronous rate integrates to within ~1/N)
    assert np.allclose(block.power_w[0, whole], 480.0, rtol=2e-3)
    assert np.allclose(block.volts_rms[0, whole], 120.0, rtol=2e-3)
    assert np.allclose(block.amps_rms[0, whole], 8.0, rtol=2e-3)
    assert np.allclose(block.power_factor[0, whole], 0.5, rtol=5e-3)


def test_s4_2_noise_at_the_zero_crossing_does_not_split_cycles():
    fs = 8000.0
    volts, amps = sine_frames(1.0, fs)
    rng = np.random.default_rng(7)
    noisy = volts + rng.normal(0, 2.0, volts.shape)    # ±2 V of noise, hysteresis 10 V
    block, _ = measure_chunk(noisy, amps, LineCycleState.start(1, fs), hysteresis_v=10.0)
    # 60 cycles in the second, the stream starting at a crest: one crossing per cycle,
    # never a double: 60 closed cycles (the first partial), all but it one period long to
    # within the jitter of noise at the crossing (3σ = 6 V at a slope of 64 kV/s: ~0.1 ms
    # at each end; a split cycle would be ~8 ms short)
    assert block.count == 60
    assert np.allclose(block.duration_s[1:], 1 / 60, rtol=0, atol=2e-4)


def test_s4_2_dead_voltage_is_cut_into_bounded_pseudo_cycles():
    fs = 4000.0
    volts = np.zeros((1, 4000))
    amps = np.ones((1, 4000))
    block, state = measure_chunk(volts, amps, LineCycleState.start(1, fs), tracking_min_hz=40.0)
    # no zero crossing: cut every ceil(4000/40) = 100 samples, 39 closed, the 40th open
    assert block.count == 39
    assert np.all(block.duration_s == 0.025)
    assert np.all(np.isnan(block.frequency_hz))
    assert state.tail_volts.shape[1] == 100


# ----------------------------------------------------------------------------- S4.7
# Analytic energy, by hand: a load of P watts over 60 s is P/60 Wh; with integer line
# frequencies, 60 s is a whole number of cycles, so the 2ω ripple integrates to zero.

CASES = [
    # (line Hz, sample rate Hz, PF angle deg (+lag / -lead))
    (45.0, 2000.0, 60.0),
    (50.0, 7812.5, -60.0),
    (55.0, 3001.7, 60.0),
    (60.0, 7812.5, 60.0),
    (60.0, 4000.3, -60.0),
    (65.0, 2222.2, 0.0),
    (65.0, 8000.0, -60.0),
]


@pytest.mark.parametrize("frequency_hz,sample_rate_hz,angle_deg", CASES)
def test_s4_7_energy_within_0_01_percent(frequency_hz, sample_rate_hz, angle_deg):
    meter = Meter.for_model("MO", ct_rating="200A")
    volts, amps = sine_frames(60.0, sample_rate_hz, amps_rms=(40.0,), angle_deg=(angle_deg,),
                              frequency_hz=frequency_hz)
    chunk = 50_000
    for k in range(0, volts.shape[1], chunk):
        meter.feed(volts[:, k:k + chunk], amps[:, k:k + chunk], sample_rate_hz)
    meter.close()
    expected_wh = 120.0 * 40.0 * math.cos(math.radians(angle_deg)) * 60.0 / 3600.0
    assert meter.watt_hours == pytest.approx(expected_wh, rel=1e-4)


@pytest.mark.parametrize("sample_rate_hz", [2000.0, 7812.5])
def test_s4_7_harmonics_register_total_active_power(sample_rate_hz):
    """STANDARDS row 10: V 5th 10 % in phase, I 5th 40 % in phase; 3rd on I only.
    P = V1·I1 + V5·I5 = 120·50 + 12·20 = 6240 W (the 3rd carries no power: V has none)."""
    fs, f = sample_rate_hz, 60.0
    n = int(60 * fs)
    t = np.arange(n) / fs
    w = 2 * math.pi * f
    v = math.sqrt(2) * (120 * np.cos(w * t) + 12 * np.cos(5 * w * t))
    i = math.sqrt(2) * (50 * np.cos(w * t) + 20 * np.cos(5 * w * t) + 15 * np.cos(3 * w * t + 0.4))
    meter = Meter.for_model("6F")
    meter.feed(v, i, fs)
    meter.close()
    assert meter.watt_hours == pytest.approx(6240.0 * 60 / 3600, rel=1e-4)


def test_s4_7_two_elements_split_phase_unbalanced_and_240v():
    """L1: 1500 W at PF 0.8 lag; L2: 700 W; 240 V 4800 W across L1–L2 (20 A through both
    CTs): P1 = 1500 + 2400, P2 = 700 + 2400 → 7000 W → 116.667 Wh in 60 s."""
    fs, f = 7812.5, 60.0
    n = int(60 * fs)
    t = np.arange(n) / fs
    w = 2 * math.pi * f
    v1 = math.sqrt(2) * 120 * np.cos(w * t)
    v2 = -v1
    i_l1 = math.sqrt(2) * (1500 / (120 * 0.8)) * np.cos(w * t - math.acos(0.8))
    i_l2 = math.sqrt(2) * (700 / 120) * np.cos(w * t + math.pi)
    i_240 = math.sqrt(2) * 20 * np.cos(w * t)
    meter = Meter.for_model("7B")
    meter.feed(np.array([v1, v2]), np.array([i_l1 + i_240, i_l2 - i_240]), fs)
    meter.close()
    assert meter.watt_hours == pytest.approx(7000 * 60 / 3600, rel=1e-4)
