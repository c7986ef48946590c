"""The one whole-cycle averaging (duration-weighted, after a settling time) and the one
calibration fit (phase and gain from the PF 1 and phase-step ratios), against figures
worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimeter.lab.averaging import WholeCycleAverager, average_cycles
from minimeter.lab.calibration import fit_phase_and_gain
from minimeter.meter import CycleBlock

HOUR = 3600.0


def _block(start, duration, volts, amps, power, partial):
    """One element's cycles from per-cycle figures."""
    duration = np.asarray(duration, float)
    power = np.asarray(power, float)
    return CycleBlock(np.asarray(start, float), duration, np.where(partial, np.nan, 1.0 / duration),
                      np.asarray(partial, bool), power[None], (power * duration / HOUR)[None],
                      np.asarray(volts, float)[None], np.asarray(amps, float)[None])


def test_whole_cycles_are_weighted_by_their_duration():
    """Whole cycles of 10 ms at 100 V, 5 A, 400 W and 30 ms at 200 V, 10 A, 1200 W:
    Vrms = √((100²·0.01 + 200²·0.03) / 0.04) = √32500 V, Irms = √((25·0.01 + 100·0.03) / 0.04)
    = √81.25 A, P = (4 + 36) J / 0.04 s = 1000 W — not the plain means (150 V, 800 W).
    The partial cycle (5 ms at 1000 W) counts only in the energy of every cycle."""
    first = _block([0.0, 0.005], [0.005, 0.01], [120.0, 100.0], [1.0, 5.0], [1000.0, 400.0], [True, False])
    second = _block([0.015], [0.03], [200.0], [10.0], [1200.0], [False])
    got = average_cycles([first, second], 1)
    assert got.volts_rms[0] == pytest.approx(math.sqrt(32500.0), rel=1e-12)
    assert got.amps_rms[0] == pytest.approx(math.sqrt(81.25), rel=1e-12)
    assert got.power_w[0] == pytest.approx(1000.0, rel=1e-12)
    assert got.energy_wh[0] == pytest.approx(40.0 / HOUR, rel=1e-12)
    assert got.energy_all_wh[0] == pytest.approx(45.0 / HOUR, rel=1e-12)
    assert got.power_factor[0] == pytest.approx(1000.0 / (math.sqrt(32500.0) * math.sqrt(81.25)), rel=1e-12)
    assert got.frequency_hz == pytest.approx((100.0 + 1 / 0.03) / 2, rel=1e-12)
    assert (got.whole_cycles, got.cycles, got.seconds) == (2, 3, pytest.approx(0.04))


def test_cycles_starting_before_the_settling_time_are_left_out():
    """settle 10 ms: the 10 ms cycle starting at 5 ms is left out, the 30 ms one at 15 ms
    kept — Vrms 200 V, P 1200 W; the energy of every cycle still counts all three."""
    blocks = [_block([0.0, 0.005, 0.015], [0.005, 0.01, 0.03], [120.0, 100.0, 200.0], [1.0, 5.0, 10.0],
                     [1000.0, 400.0, 1200.0], [True, False, False])]
    averager = WholeCycleAverager(1, settle_s=0.01)
    for block in blocks:
        averager.add(block)
    got = averager.result()
    assert got.volts_rms[0] == pytest.approx(200.0) and got.power_w[0] == pytest.approx(1200.0)
    assert got.whole_cycles == 1 and got.energy_all_wh[0] == pytest.approx(45.0 / HOUR)


def test_no_whole_cycle_gives_nan_figures():
    got = average_cycles([_block([0.0], [0.004], [120.0], [1.0], [50.0], [True])], 1)
    assert got.whole_cycles == 0 and math.isnan(got.volts_rms[0]) and math.isnan(got.frequency_hz)
    assert got.energy_all_wh[0] == pytest.approx(50.0 * 0.004 / HOUR)


@pytest.mark.parametrize("gain, beta_deg, pf, lead", [(0.97, 4.08, 0.5, False), (1.02, -0.7, 0.5, True),
                                                      (0.99, 2.08, 0.52, False), (1.0, 0.0, 0.5, False)])
def test_the_fit_recovers_a_hand_made_gain_and_phase(gain, beta_deg, pf, lead):
    """A current read as G·i(t + β/ω): at PF 1 P reads G·cos β of the truth; at cos φ lag
    G·cos(φ − β)/cos φ (lead: G·cos(φ + β)/cos φ). The fit gives the current gain
    cos β / r1 = 1/G, the phase β and the delay β / (360° · 60 Hz)."""
    beta, phi = math.radians(beta_deg), math.acos(pf)
    r1 = gain * math.cos(beta)
    r_phi = gain * math.cos(phi + beta if lead else phi - beta) / math.cos(phi)
    fit = fit_phase_and_gain(np.array([r1]), np.array([r_phi]), np.array([pf]), lead, 60.0)
    assert fit.amps_gain[0] == pytest.approx(1.0 / gain, rel=1e-12)
    assert fit.phase_deg[0] == pytest.approx(beta_deg, abs=1e-10)
    assert fit.delay_s[0] == pytest.approx(beta_deg / (360.0 * 60.0), abs=1e-15)
