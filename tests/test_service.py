"""SPEC §3.1 and §3.3: services, loads, and the analytic energy the meter is judged by."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter import Harmonic, InvalidLoad, Load, Profile, Service, ideal_source
from minimeter.sources.service import conductor_currents, evaluate


def test_s3_1_split_phase_legs_are_180_degrees_apart_and_240v_across():
    svc = Service("split", 120.0, 60.0)
    t = np.linspace(0, 1 / 60, 1000, endpoint=False)
    v1 = evaluate(svc.leg_voltage("L1"), t, 60.0)
    v2 = evaluate(svc.leg_voltage("L2"), t, 60.0)
    assert np.allclose(v1, -v2)
    assert np.sqrt(np.mean((v1 - v2) ** 2)) == pytest.approx(240.0, rel=1e-9)


def test_s3_1_network_legs_are_120_degrees_apart_and_208v_across():
    svc = Service("network", 120.0, 50.0)
    t = np.linspace(0, 1 / 50, 1000, endpoint=False)
    v1 = evaluate(svc.leg_voltage("L1"), t, 50.0)
    v2 = evaluate(svc.leg_voltage("L2"), t, 50.0)
    assert np.sqrt(np.mean((v1 - v2) ** 2)) == pytest.approx(120 * math.sqrt(3), rel=1e-9)   # 207.8 V


def test_s3_3_load_current_magnitude_and_angle():
    """1200 W at PF 0.5 lag on 120 V: I = 1200 / (120 · 0.5) = 20 A, lagging by 60°."""
    svc = Service("single", 120.0, 60.0)
    (c,) = Load(1200.0, 0.5, connection="L1").current(svc)
    assert c.amplitude == pytest.approx(20 * math.sqrt(2))
    assert math.degrees(c.phase_rad) == pytest.approx(-60.0)
    (lead,) = Load(1200.0, 0.5, leading=True).current(svc)
    assert math.degrees(lead.phase_rad) == pytest.approx(60.0)


def test_s3_3_240v_load_flows_out_on_l1_and_back_on_l2():
    svc = Service("split", 120.0, 60.0)
    cur = conductor_currents(svc, [Load(4800.0, connection="L1-L2")])
    t = np.linspace(0, 1 / 60, 400, endpoint=False)
    i1 = evaluate(cur["L1"], t, 60.0)
    i2 = evaluate(cur["L2"], t, 60.0)
    assert np.allclose(i1, -i2)
    assert np.sqrt(np.mean(i1 ** 2)) == pytest.approx(20.0)
    assert not cur["N"]


@pytest.mark.parametrize("seconds", [1.0, 7.31])
def test_s3_3_analytic_energy_matches_hand_integral(seconds):
    """P = 1200 W fundamental + V5·I5 = 12 V · (0.4 · 10 A) = 48 W. Over a non-whole
    number of cycles the 2ω ripple adds ∫ V I cos(2ωt) dt, computed here by hand."""
    svc = Service("single", 120.0, 60.0, voltage_harmonics=(Harmonic(5, 0.1),))
    src = ideal_source(svc, [Load(1200.0, harmonics=(Harmonic(5, 0.4),))], 1)
    w = 2 * math.pi * 60
    ripple = 0.0
    # v·i = Σ over pairs (a,b) of Va Ib [cos((a−b)ωt) + cos((a+b)ωt)] with Va, Ib rms·√2/… :
    # peak products / 2 per pair; orders (1,1) 120·10, (5,5) 12·4, (1,5) 120·4, (5,1) 12·10
    for va, ha in ((120.0, 1), (12.0, 5)):
        for ib, hb in ((10.0, 1), (4.0, 5)):
            k_sum, k_diff = ha + hb, ha - hb
            ripple += va * ib * (math.sin(k_sum * w * seconds) / (k_sum * w))
            if k_diff:
                ripple += va * ib * (math.sin(k_diff * w * seconds) / (k_diff * w))
    expected_j = 1248.0 * seconds + ripple
    assert src.energy_wh(0.0, seconds)[0] * 3600 == pytest.approx(expected_j, rel=1e-12)


def test_s3_3_profile_and_generation():
    """A profile 1 kW for 10 s then −500 W (generation) for 10 s: 2.778 Wh then −1.389 Wh;
    a uni-directional meter should register only the first stretch."""
    prof = Profile((0.0, 10.0), (1000.0, -500.0))
    src = ideal_source(Service("single"), [Load(profile=prof)], 1)
    assert src.energy_wh(0.0, 20.0)[0] == pytest.approx((10_000 - 5_000) / 3600, rel=1e-9)
    assert src.delivered_energy_wh(0.0, 20.0) == pytest.approx(10_000 / 3600, rel=1e-9)


def test_s3_3_periodic_profile_integral():
    fridge = Profile.on_off(900.0, 1500.0, 150.0, start_s=300.0)   # on 5–20 min, off to 40 min
    t = np.array([0.0, 300.0, 1200.0, 2400.0, 2400.0 * 3 + 600.0])
    assert fridge.at(np.array([0.0, 299.0, 300.0, 1199.0, 1200.0])).tolist() == [0, 0, 150, 150, 0]
    assert fridge.integral(t).tolist() == pytest.approx([0, 0, 135_000, 135_000, 3 * 135_000 + 45_000])


@pytest.mark.parametrize("bad", [
    lambda: Service("delta"),
    lambda: Load(100.0, power_factor=1.5),
    lambda: Load(100.0, connection="L3"),
    lambda: Harmonic(1, 0.1),
    lambda: Profile((0.0, 0.0), (1.0, 2.0)),
    lambda: ideal_source(Service("single"), [Load(100.0, connection="L1-L2")], 1),
])
def test_s3_bad_descriptions_raise_clear_errors(bad):
    with pytest.raises(InvalidLoad):
        bad()


def test_s3_3_frames_stream_in_chunks_with_flat_memory():
    src = ideal_source(Service("split"), [Load(1000.0, connection="L1-L2")], 2)
    sizes = [f.count for f in src.frames(3600.0, 8000.0, chunk_frames=1 << 16)]
    assert sum(sizes) == 3600 * 8000
    assert max(sizes) == 1 << 16
