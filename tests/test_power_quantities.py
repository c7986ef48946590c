"""SPEC S12.1: IEEE 1459 quantities and IEC 61000-4-7 harmonics, against closed forms.

Signals are sums of sinusoids built here; every expected figure is computed by hand from
their amplitudes and angles (rms values, IEEE 1459's definitions), never by the code
under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter.drive import feed_source
from minimeter.errors import InvalidOption
from minimeter.meter import Meter
from minimeter.meter.power import HarmonicTable, window_quantities
from minimeter.sources.service import Component, SyntheticSource

ROOT2 = math.sqrt(2.0)


def _source(v_parts, i_parts, frequency_hz=60.0):
    """One element: ``v_parts``/``i_parts`` are (order, rms, angle [rad]) triples."""
    sig = lambda parts: tuple(Component(rms * ROOT2, h, angle) for h, rms, angle in parts)      # noqa: E731
    return SyntheticSource(frequency_hz, (sig(v_parts),), (sig(i_parts),))


def _run(source, seconds, sample_rate_hz=None):
    """Feed a 1-element meter with quantities on; the updates' beyond-kWh parts."""
    meter = Meter.for_model("MO", ct_rating="200A", quantities=True)
    parts = [u.quantities for u, _ in feed_source(meter, source, seconds, sample_rate_hz=sample_rate_hz)]
    return meter, [q for q in parts if q is not None]


def _windows(parts):
    cols = [q.windows for q in parts if q.windows.count]
    return {name: np.concatenate([getattr(w, name) for w in cols], axis=-1)
            for name in ("reactive_power_var", "apparent_power_va", "fundamental_active_w", "active_power_w",
                         "displacement_pf", "power_factor", "non_active_var", "non_fundamental_va",
                         "thd_v_percent", "thd_i_percent", "fundamental_apparent_va")}


@pytest.mark.parametrize("phi_deg", [30.0, -25.0, 150.0, -120.0])     # lag, lead, export lag/lead
def test_s12_1_sinusoid_q1_and_s_one_window(phi_deg):
    V, I, phi = 120.0, 10.0, math.radians(phi_deg)
    fs, f, n = 6000.0, 60.0, 12
    t = np.arange(int(fs / f * n)) / fs
    v = V * ROOT2 * np.cos(2 * np.pi * f * t)
    i = I * ROOT2 * np.cos(2 * np.pi * f * t - phi)
    q, table = window_quantities(v, i, n)
    assert q.reactive_power_var[0, 0] == pytest.approx(V * I * math.sin(phi), rel=1e-9)
    assert q.apparent_power_va[0, 0] == pytest.approx(V * I, rel=1e-9)
    assert q.fundamental_active_w[0, 0] == pytest.approx(V * I * math.cos(phi), rel=1e-9)
    assert q.displacement_pf[0, 0] == pytest.approx(math.cos(phi), rel=1e-9)
    assert q.non_active_var[0, 0] == pytest.approx(V * I * abs(math.sin(phi)), rel=1e-9)
    assert isinstance(table, HarmonicTable) and table.orders == tuple(range(1, 41))


@pytest.mark.parametrize("sample_rate_hz", [6000.0, None])       # the sample path and the phasor path
def test_s12_1_sinusoid_through_the_meter(sample_rate_hz):
    V, I, phi = 120.0, 20.0, math.radians(37.0)
    meter, parts = _run(_source([(1, V, 0.0)], [(1, I, -phi)]), 2.0, sample_rate_hz)
    w = _windows(parts)
    q1, s = w["reactive_power_var"][0], w["apparent_power_va"][0]
    assert q1.size >= (1 if sample_rate_hz is None else 9)     # the phasor path: one run of identical cycles
    np.testing.assert_allclose(q1, V * I * math.sin(phi), rtol=1e-9)
    np.testing.assert_allclose(s, V * I, rtol=1e-9)


def _harmonic_case():
    """V: 120 V fundamental, 5 % 3rd, 3 % 5th; I: 30 A at −30°, 30 % 3rd, 15 % 5th, 8 % 7th."""
    v = [(1, 120.0, 0.0), (3, 6.0, 0.4), (5, 3.6, -1.0)]
    i = [(1, 30.0, -math.radians(30)), (3, 9.0, 0.1), (5, 4.5, 2.0), (7, 2.4, -0.5)]
    return v, i


def _by_hand(v, i):
    """IEEE 1459 by hand from (order, rms, angle) lists."""
    vr = {h: (r, a) for h, r, a in v}
    ir = {h: (r, a) for h, r, a in i}
    V = math.sqrt(sum(r * r for r, _ in vr.values()))
    I = math.sqrt(sum(r * r for r, _ in ir.values()))
    P = sum(vr[h][0] * ir[h][0] * math.cos(vr[h][1] - ir[h][1]) for h in vr if h in ir)
    V1, I1 = vr[1][0], ir[1][0]
    S, S1 = V * I, V1 * I1
    return {"S": S, "P": P, "N": math.sqrt(S * S - P * P), "S1": S1, "SN": math.sqrt(S * S - S1 * S1),
            "Q1": V1 * I1 * math.sin(vr[1][1] - ir[1][1]), "P1": V1 * I1 * math.cos(vr[1][1] - ir[1][1]),
            "THDV": 100 * math.sqrt(V * V - V1 * V1) / V1, "THDI": 100 * math.sqrt(I * I - I1 * I1) / I1,
            "PF": P / S, "DPF": math.cos(vr[1][1] - ir[1][1])}


@pytest.mark.parametrize("sample_rate_hz, frequency_hz", [(6000.0, 60.0), (4000.0, 60.0), (5000.0, 50.0), (None, 60.0)])
def test_s12_1_harmonics_thd_and_ieee1459_by_hand(sample_rate_hz, frequency_hz):
    v, i = _harmonic_case()
    hand = _by_hand(v, i)
    meter, parts = _run(_source(v, i, frequency_hz), 1.0, sample_rate_hz)
    if sample_rate_hz is not None:                      # IEC 61000-4-30 windows: 10 cycles at 50 Hz, 12 at 60 Hz
        durations = np.concatenate([q.windows.duration_s for q in parts])
        np.testing.assert_allclose(durations, (10 if frequency_hz == 50.0 else 12) / frequency_hz, rtol=1e-9)
    w = _windows(parts)
    for name, key in (("thd_v_percent", "THDV"), ("thd_i_percent", "THDI")):
        np.testing.assert_allclose(w[name][0], hand[key], rtol=1e-3)
    for name, key in (("apparent_power_va", "S"), ("active_power_w", "P"), ("non_active_var", "N"),
                      ("non_fundamental_va", "SN"), ("reactive_power_var", "Q1"), ("fundamental_active_w", "P1"),
                      ("power_factor", "PF"), ("displacement_pf", "DPF"), ("fundamental_apparent_va", "S1")):
        np.testing.assert_allclose(w[name][0], hand[key], rtol=1e-3, err_msg=name)
    table = [q.harmonics for q in parts if q.harmonics is not None][-1]
    for h, rms, _ in v:
        assert table.volts_rms[0][h - 1] == pytest.approx(rms, rel=1e-3)
    for h, rms, _ in i:
        assert table.amps_rms[0][h - 1] == pytest.approx(rms, rel=1e-3)
    assert table.amps_rms[0][1] < 1e-3 and table.amps_rms[0][39] < 1e-3          # absent orders
    # phases relative to h × the fundamental voltage's angle (0 here)
    assert table.amps_phase_deg[0][2] == pytest.approx(math.degrees(0.1), abs=0.1)
    assert table.as_dict()["orders"] == list(range(1, 41))


def test_s12_1_iec_61000_4_7_grouping_adds_interharmonics_to_their_group():
    """A 185 Hz interharmonic (line 37 of a 12-cycle 60 Hz window, 5 Hz from the 3rd
    harmonic's 180 Hz) belongs to group 3: G3² = C180² + C185²; line 39 (195 Hz, half-way
    to the 4th) counts half in each group."""
    fs, f, n = 6000.0, 60.0, 12
    t = np.arange(int(fs / f * n)) / fs
    v = 120 * ROOT2 * np.cos(2 * np.pi * f * t)
    i = ROOT2 * (10 * np.cos(2 * np.pi * f * t) + 3 * np.cos(2 * np.pi * 180 * t) + 2 * np.cos(2 * np.pi * 185 * t)
                 + 1 * np.cos(2 * np.pi * 210 * t))
    _, table = window_quantities(v, i, n)
    assert table.amps_rms[0][2] == pytest.approx(math.sqrt(9 + 4 + 0.5), rel=1e-9)
    assert table.amps_rms[0][3] == pytest.approx(math.sqrt(0.5), rel=1e-9)


def test_s12_4_quantities_keyword_must_be_a_bool():
    with pytest.raises(InvalidOption, match="quantities"):
        Meter.for_model("MO", quantities="yes")
    assert Meter.for_model("MO").registers is None            # off by default
