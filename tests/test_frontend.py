"""The front end (SPEC S9.1): CT ratio and phase error against current, V/I skew, ADC
resolution and clipping, offset, noise — checked against hand calculations from the
presets' own table numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter.sources.frontend import (FULL_SCALE_A, HALF_TAPS, CtErrors, DelayState, FrontEnd, InvalidFrontEnd,
                                delay_chunk, lagrange_taps, preset)


def _sines(seconds, fs, v_rms, i_rms, lag_deg, f=60.0):
    t = np.arange(int(seconds * fs)) / fs
    v = math.sqrt(2) * v_rms * np.cos(2 * np.pi * f * t)
    i = math.sqrt(2) * i_rms * np.cos(2 * np.pi * f * t - math.radians(lag_deg))
    return v[None, :], i[None, :]


def _run(fe, v, a, fs, chunk=None):
    state = fe.initial_state(v.shape[0], fs)
    if chunk is None:
        vo, ao, _ = fe.apply(v, a, fs, state)
        return vo, ao
    outs = []
    for k in range(0, v.shape[1], chunk):
        vo, ao, state = fe.apply(v[:, k:k + chunk], a[:, k:k + chunk], fs, state)
        outs.append((vo, ao))
    return np.concatenate([o[0] for o in outs], axis=1), np.concatenate([o[1] for o in outs], axis=1)


def test_s9_1_fractional_delay_keeps_amplitude_and_moves_phase():
    fs, f = 2000.0, 60.0
    t = np.arange(4000) / fs
    x = np.cos(2 * np.pi * f * t)[None, :]
    for d in (-0.8, -0.25, 0.37, 0.5, 0.9):
        y, _ = delay_chunk(x, np.full(x.shape, d), DelayState.start(1))
        expected = np.cos(2 * np.pi * f * (t - (HALF_TAPS + d) / fs))
        assert np.abs(y[0, 2 * HALF_TAPS:] - expected[2 * HALF_TAPS:]).max() < 1e-8
    # the taps' response at 60 Hz: |H| = 1 to 1e-9 (linear interpolation would lose 0.1 %)
    h = lagrange_taps(HALF_TAPS + 0.5)
    response = np.sum(h * np.exp(-2j * np.pi * f / fs * np.arange(h.size)))
    assert abs(abs(response) - 1) < 1e-9


def test_s9_1_ideal_front_end_changes_nothing():
    v, a = _sines(1.0, 2000.0, 120, 10, 30)
    fe = preset("ideal")
    vo, ao = _run(fe, v, a, 2000.0)
    assert np.array_equal(vo, v) and np.array_equal(ao, a)
    assert fe.group_delay_s(2000.0) == 0.0


def test_s9_1_ct_phase_lead_at_pf_half_costs_three_percent_a_degree():
    """A CT leading by β: P_meas / P = g · cos(60° − β) / cos 60° = g · 2 sin(30° + β)."""
    fs = 4000.0
    ct = CtErrors((1.0, 1000.0), (-0.5, -0.5), (1.0, 1.0))
    fe = FrontEnd(name="ct", ct=ct)
    v, a = _sines(3.0, fs, 120, 50, 60)
    vo, ao = _run(fe, v, a, fs)
    sl = slice(int(0.5 * fs), int(2.5 * fs))         # whole cycles: 2 s = 120 cycles
    ratio = np.mean(vo[0, sl] * ao[0, sl]) / (120 * 50 * 0.5)
    expected = 0.995 * 2 * math.sin(math.radians(31.0))
    assert ratio == pytest.approx(expected, abs=2e-5)
    assert (expected - 0.995) * 100 == pytest.approx(3.0, abs=0.1)      # ≈ 3 % per degree


def test_s9_1_typical_preset_by_hand_at_100_amps():
    """Tables interpolated in log-current: at 100 A between 40 A (−1.5 %, 1.5°) and
    200 A (−1.0 %, 1.0°); skew 50 µs = 1.08° at 60 Hz; divider +0.8 %."""
    fs = 4000.0
    fe = preset("typical")
    w = math.log10(100 / 40) / math.log10(200 / 40)
    ratio_err = -1.5 + w * 0.5
    phase = 1.5 - w * 0.5 + 360 * 60 * 50e-6
    v, a = _sines(4.0, fs, 120, 100, 60)
    vo, ao = _run(fe, v, a, fs, chunk=3000)
    sl = slice(int(1.0 * fs), int(3.5 * fs))
    vo0, ao0 = vo[0, sl] - vo[0, sl].mean(), ao[0, sl] - ao[0, sl].mean()
    measured = np.mean(vo0 * ao0) / (120 * 100 * 0.5)
    expected = 1.008 * (1 + ratio_err / 100) * 2 * math.sin(math.radians(30 + phase))
    assert measured == pytest.approx(expected, abs=3e-4)
    assert (measured - 1) * 100 == pytest.approx(6.4, abs=0.2)    # PF 0.5 lag reads ~6 % high


def test_s9_1_adc_resolution_offset_and_clipping():
    bits = 12
    fe = FrontEnd(name="adc", adc_bits=bits, offset_a=1.0)
    lsb = 2 * FULL_SCALE_A / 2 ** bits
    fs = 2000.0
    v, a = _sines(0.5, fs, 120, 100, 0)
    a[0, 10] = 10 * FULL_SCALE_A          # far beyond full scale
    _, ao = _run(fe, v, a, fs)
    codes = ao / lsb
    assert np.allclose(codes, np.round(codes), atol=1e-9)
    assert ao[0, 10] == pytest.approx((2 ** (bits - 1) - 1) * lsb)        # clipped at the top code
    assert np.abs(ao - (a + 1.0))[:, np.arange(a.shape[1]) != 10].max() <= lsb / 2 + 1e-9


def test_s9_1_noise_rms_and_deterministic_parts_chunk_invariant():
    fs = 2000.0
    v, a = _sines(2.0, fs, 120, 0.0, 0)
    noisy = FrontEnd(name="n", noise_a_rms=0.05, noise_v_rms=0.2)
    vo, ao = _run(noisy, v, a, fs)
    assert np.std(ao) == pytest.approx(0.05, rel=0.05) and np.std(vo - v) == pytest.approx(0.2, rel=0.05)
    quiet = FrontEnd(name="q", ct=CtErrors((2.0, 200.0), (-3.0, -1.0), (3.0, 1.0)), skew_s=40e-6)
    v, a = _sines(2.0, fs, 120, 30, 20)
    whole = _run(quiet, v, a, fs)
    for chunk in (1, 333, 4096):
        parts = _run(quiet, v, a, fs, chunk)
        assert np.allclose(parts[0], whole[0], rtol=0, atol=1e-9)
        assert np.allclose(parts[1], whole[1], rtol=0, atol=1e-9)


def test_s9_1_bad_tables_are_refused():
    with pytest.raises(InvalidFrontEnd):
        CtErrors((10.0, 2.0), (0, 0), (0, 0))
    with pytest.raises(InvalidFrontEnd, match="unknown"):
        preset("golden")
